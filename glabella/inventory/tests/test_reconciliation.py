import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from glabella.accounts.services import add_clinic
from glabella.charting import services as charting
from glabella.inventory import services
from glabella.inventory.tests.helpers import (
    clinic_today,
    draw_session,
    glabellar_session,
    receive_botox_cosmetic,
    second_patient,
)


def _period():
    """The start of a period that holds everything the test does next."""
    return timezone.now() - timedelta(seconds=1)


def test_receive_reconstitute_chart_waste_and_the_period_balances_to_zero(world):
    start = _period()
    receipt = receive_botox_cosmetic(world, count=2)  # 2 x 50 U
    injector = world.actor("injector")
    vial = services.reconstitute(injector, receipt.vials[0], "1.25")
    first = glabellar_session(world)  # 5 x 4 U
    draw_session(world, first, vial)
    other = glabellar_session(world, patient=second_patient(world))
    draw_session(world, other, vial)
    services.waste(injector, vial, rest=True, reason="end of vial")
    end = timezone.now() + timedelta(seconds=1)

    [row] = services.reconciliation(world.org, world.clinic, start=start, end=end)
    assert (row.opening, row.received, row.administered, row.wasted) == (0, 100, 40, 10)
    assert (row.transferred_in, row.transferred_out, row.destroyed, row.adjusted) == (0, 0, 0, 0)
    assert row.closing == row.expected == Decimal(50)
    assert (row.sealed_vials, row.physical, row.discrepancy) == (1, 50, 0)
    assert row.balanced


def test_an_unrecorded_unit_shows_up_as_a_discrepancy(world):
    start = _period()
    receipt = receive_botox_cosmetic(world, count=1)
    injector = world.actor("injector")
    vial = services.reconstitute(injector, receipt.vials[0], "1.25")
    session = glabellar_session(world)
    draw_session(world, session, vial)  # 20 U
    services.waste(injector, vial, "28", reason="end of the clinic day")
    left = services.finish(injector, vial)  # 2 U neither drawn nor wasted
    assert left == 2
    end = timezone.now() + timedelta(seconds=1)

    [row] = services.reconciliation(world.org, world.clinic, start=start, end=end)
    assert row.closing == row.expected == 2  # the books still hold 2 U...
    assert row.physical == 0  # ...that no vial holds
    assert row.discrepancy == 2
    assert row.unaccounted_vials == ((vial.pk, Decimal(2)),)
    assert not row.balanced
    [stock] = services.on_hand(world.org)
    assert stock.unaccounted == 2

    # Recording the forgotten waste afterwards clears it.
    services.waste(injector, vial, rest=True, reason="forgotten at the end of the day")
    later = timezone.now() + timedelta(seconds=1)
    [row] = services.reconciliation(world.org, world.clinic, start=start, end=later)
    assert row.balanced and row.closing == 0


def test_a_draw_reversed_after_its_vial_was_emptied_and_thrown_away_is_flagged(world):
    start = _period()
    receipt = receive_botox_cosmetic(world, count=1)
    injector = world.actor("injector")
    vial = services.reconstitute(injector, receipt.vials[0], "1.25")
    session = glabellar_session(world)
    draw_session(world, session, vial)
    services.waste(injector, vial, rest=True, reason="end of vial")
    services.reverse_session_draws(injector, session, "voided: charted on the wrong patient")
    [row] = services.reconciliation(
        world.org, world.clinic, start=start, end=timezone.now() + timedelta(seconds=1)
    )
    assert (row.administered, row.discrepancy) == (0, 20)


def test_opening_balance_and_transfers_with_day_boundaries_at_the_clinic(world):
    second = add_clinic(world.actor("owner"), name="Alpha North", timezone="Europe/London")
    receipt = receive_botox_cosmetic(world, count=4)
    services.transfer(world.actor("front_desk"), world.clinic, second, receipt.lot, 1)
    today = clinic_today(world)  # the day boundaries are the clinic's
    tomorrow = today + timedelta(days=1)
    after = today + timedelta(days=7)
    rows = services.reconciliation(world.org, start=tomorrow, end=after)
    assert {(r.clinic.name, r.opening, r.closing, r.balanced) for r in rows} == {
        ("Alpha Central", 150, 150, True),
        ("Alpha North", 50, 50, True),
    }
    yesterday = today - timedelta(days=1)
    central = services.reconciliation(world.org, world.clinic, start=yesterday, end=after)
    [row] = central
    assert (row.opening, row.received, row.transferred_out, row.closing) == (0, 200, 50, 150)


def test_reconciliation_csv_has_one_line_per_clinic_and_lot(world):
    receive_botox_cosmetic(world, count=2)
    receive_botox_cosmetic(world, lot="=HYPERLINK(1)", count=1)
    text = services.reconciliation_csv(
        world.org,
        start=clinic_today(world) - timedelta(days=1),
        end=clinic_today(world),
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["lot"], r["received"], r["discrepancy units"]) for r in rows] == [
        ("'=HYPERLINK(1)", "50.00", "0.00"),
        ("BC1001", "100.00", "0.00"),
    ]
    assert rows[0]["product"] == "Botox Cosmetic"


def test_reconciliation_is_scoped_to_the_organization(world):
    receive_botox_cosmetic(world, count=2)
    day = timezone.localdate()
    assert services.reconciliation(world.outsider_org, start=day, end=day) == []
    assert services.on_hand(world.outsider_org) == []


def test_a_void_session_and_reversal_restore_the_balance(world):
    """What the charting integration will do on void: reverse; the vial gets its units back."""
    start = _period()
    receipt = receive_botox_cosmetic(world, count=1)
    injector = world.actor("injector")
    vial = services.reconstitute(injector, receipt.vials[0], "1.25")
    session = glabellar_session(world)
    draw_session(world, session, vial)
    charting.void(injector, session, "entered on the wrong patient")
    services.reverse_session_draws(injector, session, "session voided")
    services.waste(injector, vial, rest=True, reason="end of vial")
    [row] = services.reconciliation(
        world.org, world.clinic, start=start, end=timezone.now() + timedelta(seconds=1)
    )
    assert (row.administered, row.wasted, row.closing) == (0, 50, 0)
    assert row.balanced


def test_a_period_that_ends_before_it_starts_is_refused(world):
    receive_botox_cosmetic(world)
    day = timezone.localdate()
    with pytest.raises(ValidationError):
        services.reconciliation(world.org, start=day, end=day - timedelta(days=2))
