"""Prices: shown on the session, totalled, and exported per period."""

import csv
import io
from datetime import date
from decimal import Decimal

from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.charting.tests.conftest import signed_glabellar
from glabella.inventory import services as stock


def test_a_per_unit_price_is_shown_and_totalled_on_the_session(consented):
    world = consented
    stock.set_price(
        world.actor("owner"), world.clinic, "botox_cosmetic", "per_unit", "12.50", "GBP"
    )
    session = signed_glabellar(world)
    price = stock.session_price(session)
    assert price is not None and price.total == Decimal("250.00")  # 20 U x 12.50
    html = world.client("prescriber").get(reverse("charting:session", args=[session.pk]))
    assert "GBP 250.00" in html.content.decode()


def test_prices_export_per_period_lists_signed_treatments_and_is_audited(consented):
    world = consented
    stock.set_price(world.actor("owner"), world.clinic, "botox_cosmetic", "per_area", "180", "GBP")
    session = signed_glabellar(world)
    day = session.treated_on.isoformat()
    response = world.client("owner").get(
        reverse("inventory:prices_csv"), {"clinic": world.clinic.pk, "start": day, "end": day}
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["patient"], r["units"], r["basis"], r["total"]) for r in rows] == [
        ("Ada Lovelace", "20", "per_area", "180.00")
    ]
    assert AuditEvent.objects.filter(action="export", object_type="inventory.prices").exists()
    # Another period: nothing; front desk and injectors may not export prices.
    other = world.client("owner").get(
        reverse("inventory:prices_csv"),
        {"clinic": world.clinic.pk, "start": "2020-01-01", "end": "2020-01-31"},
    )
    assert other.content.decode().count("\r\n") == 1
    for role in ("injector", "front_desk"):
        assert world.client(role).get(reverse("inventory:prices_csv")).status_code == 403
    assert date.fromisoformat(day)
