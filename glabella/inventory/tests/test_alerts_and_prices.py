from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from glabella.charting import services as charting
from glabella.inventory import services
from glabella.inventory.models import PriceBasis
from glabella.inventory.tests.helpers import (
    clinic_today,
    glabellar_session,
    in_a_year,
    receive_botox_cosmetic,
)


def test_alerts_for_expiring_lots_low_stock_and_vials_nearing_use_by(world):
    soon = clinic_today(world) + timedelta(days=10)
    receive_botox_cosmetic(world, lot="SOON", count=1, expiry=soon)
    fine = receive_botox_cosmetic(world, lot="FINE", count=2, expiry=in_a_year())
    services.set_threshold(world.actor("owner"), world.clinic, "botox_cosmetic", 3)
    services.set_threshold(world.actor("owner"), world.clinic, "dysport", 1)
    opened_at = timezone.now() - timedelta(hours=23)
    vial = services.reconstitute(world.actor("injector"), fine.vials[0], "1.25", at=opened_at)

    found = {a.kind: a for a in services.alerts(world.org, world.clinic)}
    assert set(found) == {"lot-expiring", "low-stock", "vial-use-by-soon"}
    assert (
        "lot SOON" in found["lot-expiring"].message
        and "in 10 days" in found["lot-expiring"].message
    )
    low = [a for a in services.alerts(world.org, world.clinic) if a.kind == "low-stock"]
    assert [a.product_id for a in low] == ["botox_cosmetic", "dysport"]
    assert "2 sealed vials in date, below the minimum of 3" in low[0].message
    assert found["vial-use-by-soon"].vial_id == vial.pk

    later = timezone.now() + timedelta(hours=2)
    kinds = {a.kind for a in services.alerts(world.org, world.clinic, later)}
    assert "vial-timed-out" in kinds
    text = services.digest_text(world.org, world.clinic, later)
    assert text.startswith("Stock at Alpha Central")
    assert "URGENT: Botox Cosmetic vial" in text and "waste the rest" in text


def test_no_alerts_means_a_quiet_digest(world):
    assert services.alerts(world.org, world.clinic) == []
    assert "Nothing needs attention today." in services.digest_text(world.org, world.clinic)
    assert services.alerts(world.outsider_org, world.clinic) == []


def test_thresholds_and_prices_need_stock_manage(world):
    with pytest.raises(PermissionDenied):
        services.set_threshold(world.actor("injector"), world.clinic, "botox_cosmetic", 2)
    with pytest.raises(PermissionDenied):
        services.set_price(world.actor("front_desk"), world.clinic, "botox", "per_unit", 9, "GBP")
    with pytest.raises(ValidationError) as err:
        services.set_price(world.actor("owner"), world.clinic, "botox", "per_day", "-1", "pounds")
    assert set(err.value.message_dict) == {"basis", "amount", "currency"}


def test_session_price_per_unit_and_per_area(world):
    session = glabellar_session(world)  # 5 x 4 U in the glabella
    assert services.session_price(session) is None
    owner = world.actor("owner")
    services.set_price(owner, world.clinic, "botox_cosmetic", PriceBasis.PER_UNIT, "9.50", "gbp")
    price = services.session_price(session)
    assert (price.quantity, price.total, price.currency) == (20, Decimal("190.00"), "GBP")
    services.set_price(owner, world.clinic, "botox_cosmetic", PriceBasis.PER_AREA, "180", "GBP")
    price = services.session_price(session)
    assert (price.quantity, price.total) == (1, Decimal("180.00"))
    actor = world.actor("injector")
    session.refresh_from_db()
    charting.add_point(actor, session, session.version, diagram="face-front", x=50, y=15, units=2)
    price = services.session_price(session)
    assert price.quantity == len(price.lines) == 2
