"""Charting draws from vials: every point's units come out of a reconstituted vial in the stock
ledger, in the same transaction as the change of the point; the ledger then reconciles."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from glabella.charting import record, services
from glabella.charting.models import Amendment, Status, TreatmentSession
from glabella.charting.tests.test_record import pdf_text
from glabella.inventory import services as stock
from glabella.inventory.models import ClosedHow, Lot, StockMove, Vial, VialState
from glabella.inventory.tests.helpers import (
    GTIN_BOTOX_COSMETIC_50,
    datamatrix,
    in_a_year,
    outsider_injector,
    receive_botox_cosmetic,
    second_patient,
)
from glabella.inventory.tests.test_concurrent_draws import race_world  # noqa: F401  (fixture)

HX = {"HTTP_HX_REQUEST": "true"}
GLABELLAR = "protocol:glabellar-lines-botox-cosmetic"
PROCERUS = {"diagram": "face-front", "x": "50", "y": "35"}  # inside the procerus


@pytest.fixture
def stocked(consented):
    """Two 50 U vials of Botox Cosmetic lot C1234AB received from a GS1 DataMatrix scan; the
    first reconstituted with 1.25 mL (4 U per 0.1 mL, use within 24 hours)."""
    world = consented
    world.receipt = receive_botox_cosmetic(world, lot="C1234AB", count=2)
    world.vial = stock.reconstitute(world.actor("injector"), world.receipt.vials[0], "1.25")
    world.sealed = world.receipt.vials[1]
    return world


def _start(world, start_from=GLABELLAR, patient=None, **kw):
    kw.setdefault("indication", "glabellar-lines")
    kw.setdefault("product_id", "botox_cosmetic")
    kw.setdefault("prescriber", world.users["prescriber"])
    return services.start_session(
        world.actor("injector"), patient or world.patient, start_from=start_from, **kw
    )


def _fresh(session):
    return TreatmentSession.objects.get(pk=session.pk)


def _left(vial):
    return stock.units_left(Vial.objects.get(pk=vial.pk))


def _choose(world, session, vial):
    return services.select_vial(world.actor("injector"), session, _fresh(session).version, vial)


def _open_second(world):
    return stock.reconstitute(world.actor("injector"), world.sealed, "1.25")


def _use_up(world, vial, units):
    """Another patient's session draws UNITS from VIAL (one point)."""
    other = _start(world, "blank", patient=second_patient(world))
    _choose(world, other, vial)
    services.add_point(
        world.actor("injector"), other, _fresh(other).version, units=units, **PROCERUS
    )
    return other


def _state(session):
    """Everything a refused change could touch, to prove nothing was written."""
    s = _fresh(session)
    return (
        s.version,
        s.status,
        s.vial_id,
        s.lot_number,
        tuple(s.points.values_list("number", "units", "removed", "vial_id")),
        StockMove.objects.filter(session=s).count(),
        s.amendments.count(),
    )


def _ledger(vial):
    return (
        _left(vial),
        StockMove.objects.filter(vial=vial).count(),
        Vial.objects.get(pk=vial.pk).state,
    )


def _reconcile(world, start):
    [row] = stock.reconciliation(
        world.org, world.clinic, start=start, end=timezone.now() + timedelta(seconds=1)
    )
    return row


def _times_out_after_the_draws(session, vial):
    """The vial's use-by time: just after the session's last draw (so it has passed now)."""
    last = max(d.at for d in stock.session_draws(session))
    Vial.objects.filter(pk=vial.pk).update(use_by=last + timedelta(microseconds=1))
    assert Vial.objects.get(pk=vial.pk).use_by < timezone.now()


def _url(name, session, *args):
    return reverse(f"charting:{name}", args=[session.pk, *args])


# --- through the charting pages --------------------------------------------------------------


def test_chart_from_a_vial_through_the_pages_sign_waste_and_the_period_balances(stocked):
    world = stocked
    vial, start = world.vial, timezone.now() - timedelta(hours=1)
    client = world.client("injector")
    response = client.post(
        reverse("charting:start", args=[world.patient.pk]),
        {"quick": GLABELLAR, "treated_on": timezone.localdate().isoformat()},
    )
    assert response.status_code == 302
    session = TreatmentSession.objects.get()

    page = client.get(_url("session", session)).text
    assert f"Vial #{vial.pk} · lot C1234AB · 50 U left · 23 h left" in page
    assert "Save lot" not in page  # the lot comes from the vial, it is not typed
    assert "Points 1 to 5 have no vial" in page
    assert f'id="vial-{world.sealed.pk}"' not in page  # a sealed vial is not offered

    response = client.post(
        _url("vial", session), {"version": _fresh(session).version, "vial": vial.pk}, **HX
    )
    assert response.status_code == 200
    assert "points 1 to 5 drawn from it, 30 U left" in response.text
    assert "data-vial-left>30 U<" in response.text
    assert "Every point drawn from a vial" in response.text
    assert _left(vial) == 30
    fresh = _fresh(session)
    assert (fresh.vial, fresh.lot_number, fresh.lot_expiry) == (
        vial,
        "C1234AB",
        world.receipt.lot.expiry,
    )

    # Every change draws or puts back, and the units left follow.
    response = client.post(
        _url("point_add", session), {"version": fresh.version, "units": "4", **PROCERUS}, **HX
    )
    assert response.status_code == 200 and "data-vial-left>26 U<" in response.text
    assert f'<td class="point-vial">#{vial.pk}<span class="cell-sub">lot C1234AB' in response.text
    response = client.post(
        _url("point_update", session, 6), {"version": _fresh(session).version, "units": "5"}, **HX
    )
    assert response.status_code == 200 and "data-vial-left>25 U<" in response.text
    response = client.post(
        _url("point_remove", session, 6), {"version": _fresh(session).version}, **HX
    )
    assert "data-vial-left>30 U<" in response.text
    response = client.post(
        _url("point_restore", session, 6), {"version": _fresh(session).version}, **HX
    )
    assert "data-vial-left>25 U<" in response.text
    assert [(d.point_number, -d.units) for d in stock.session_draws(session)] == [
        (1, 4),
        (2, 4),
        (3, 4),
        (4, 4),
        (5, 4),
        (6, 5),
    ]

    response = client.post(_url("sign", session), {"version": _fresh(session).version}, **HX)
    assert response.status_code == 200 and response["HX-Redirect"] == _url("session", session)
    signed = client.get(_url("session", session)).text
    assert _fresh(session).status == Status.SIGNED
    assert f"vial #{vial.pk} (points 1 to 6)" in signed and "<b>C1234AB</b>" in signed
    assert signed.count(f'<td class="point-vial">#{vial.pk}') == 6

    # Waste the rest: every unit of the vial is accounted for.
    stock.waste(world.actor("injector"), vial, rest=True, reason="end of the vial")
    row = _reconcile(world, start)
    assert (row.received, row.administered, row.wasted, row.closing) == (100, 25, 25, 50)
    assert row.sealed_vials == 1 and row.discrepancy == 0 and row.balanced

    # Void: the draws are reversed. The vial was thrown away, so the 25 U put back in it are
    # flagged until they are recorded as wasted; then it balances again.
    response = client.post(_url("void", session), {"reason": "Charted on the wrong patient"})
    assert response.status_code == 302 and _fresh(session).status == Status.VOIDED
    assert stock.session_draws(session) == []
    row = _reconcile(world, start)
    assert (row.administered, row.discrepancy, row.balanced) == (0, 25, False)
    stock.waste(world.actor("injector"), vial, rest=True, reason="voided session's units")
    row = _reconcile(world, start)
    assert (row.administered, row.wasted, row.discrepancy, row.balanced) == (0, 50, 0, True)


def test_voiding_before_the_vial_is_wasted_puts_the_units_back_and_it_still_balances(stocked):
    world = stocked
    vial, start = world.vial, timezone.now() - timedelta(hours=1)
    session = _start(world)
    _choose(world, session, vial)
    signed = services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)
    assert _reconcile(world, start).administered == 20
    services.void(world.actor("injector"), signed, "Entered on the wrong patient")
    reversals = StockMove.objects.filter(session=session, reverses__isnull=False)
    assert reversals.count() == 5
    assert {m.reason for m in reversals} == {"voided: Entered on the wrong patient"}
    assert _left(vial) == 50
    row = _reconcile(world, start)
    assert (row.administered, row.closing, row.balanced) == (0, 100, True)
    stock.waste(world.actor("injector"), vial, rest=True, reason="end of the vial")
    row = _reconcile(world, start)
    assert (row.administered, row.wasted, row.closing, row.balanced) == (0, 50, 50, True)


def test_voiding_a_draft_puts_its_units_back(stocked):
    world = stocked
    session = _start(world)
    _choose(world, session, world.vial)
    assert _left(world.vial) == 30
    response = world.client("injector").post(
        _url("void", session), {"reason": "Patient changed her mind"}
    )
    assert response.status_code == 302 and _fresh(session).status == Status.VOIDED
    assert _left(world.vial) == 50 and stock.session_draws(session) == []
    # The record still says where each point's dose was drawn from.
    html = world.client("injector").get(_url("session", session)).text
    assert f"vial #{world.vial.pk} (points 1 to 5)" in html


def test_an_unrecorded_unit_shows_as_a_discrepancy(stocked):
    world = stocked
    vial, start = world.vial, timezone.now() - timedelta(hours=1)
    session = _start(world)
    _choose(world, session, vial)
    services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)
    stock.waste(world.actor("injector"), vial, "29", reason="end of the clinic day")
    assert stock.finish(world.actor("injector"), vial) == 1  # 1 U neither given nor wasted
    row = _reconcile(world, start)
    assert (row.administered, row.wasted, row.discrepancy) == (20, 29, 1)
    assert row.unaccounted_vials == ((vial.pk, Decimal(1)),) and not row.balanced


# --- what can be drawn from ------------------------------------------------------------------


def test_only_usable_vials_are_offered_and_any_other_is_refused_with_the_reason(stocked):
    world = stocked
    injector = world.actor("injector")
    timed_out = _open_second(world)
    Vial.objects.filter(pk=timed_out.pk).update(use_by=timezone.now() - timedelta(minutes=5))
    expired_lot = receive_botox_cosmetic(world, lot="OLD1", count=1)
    expired = stock.reconstitute(injector, expired_lot.vials[0], "1.25")
    Lot.objects.filter(pk=expired_lot.lot.pk).update(expiry=timezone.localdate() - timedelta(1))
    sealed = receive_botox_cosmetic(world, lot="SEALED1", count=1).vials[0]
    daxxify = stock.receive(
        world.actor("front_desk"),
        world.clinic,
        product_id="daxxify",
        lot_number="DX1",
        expiry=in_a_year(),
        vial_units=100,
        vial_count=1,
    ).vials[0]
    daxxify = stock.reconstitute(injector, daxxify, "0.8")
    session = _start(world)
    client = world.client("injector")

    page = client.get(_url("session", session)).text
    assert f'id="vial-{world.vial.pk}"' in page
    for vial in (timed_out, expired, sealed, daxxify):
        assert f'id="vial-{vial.pk}"' not in page

    refused = {
        timed_out: "had to be used by",
        expired: "expired on",
        sealed: "still sealed: record its reconstitution first",
        daxxify: "Units of different products are not interchangeable",
    }
    for vial, why in refused.items():
        before = _state(session)
        response = client.post(
            _url("vial", session), {"version": _fresh(session).version, "vial": vial.pk}, **HX
        )
        assert response.status_code == 422, vial
        assert why in response.text and f"Vial #{vial.pk}" in response.text
        assert "Nothing was saved." in response.text
        assert _state(session) == before
        with pytest.raises(ValidationError, match=why):
            services.select_vial(injector, session, _fresh(session).version, vial)
    assert _left(timed_out) == 50 and _left(expired) == 50


def test_another_organizations_vial_is_not_found(stocked):
    world = stocked
    outsider = outsider_injector(world)
    theirs = stock.receive(
        world.outsider_actor(),
        outsider.clinic,
        barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "C1234AB", in_a_year()),
        product_id="botox_cosmetic",
        vial_units=50,
        vial_count=1,
    ).vials[0]
    theirs = stock.reconstitute(outsider, theirs, "1.25")
    session = _start(world)
    before = _state(session)
    client = world.client("injector")
    response = client.post(
        _url("vial", session), {"version": _fresh(session).version, "vial": theirs.pk}, **HX
    )
    assert response.status_code == 404
    response = client.post(
        _url("point_update", session, 1),
        {"version": _fresh(session).version, "vial": theirs.pk},
        **HX,
    )
    assert response.status_code == 404
    with pytest.raises(Vial.DoesNotExist):
        services.select_vial(world.actor("injector"), session, _fresh(session).version, theirs)
    assert _state(session) == before and _left(theirs) == 50
    # ...and their session cannot use our vial either.
    their_session = services.start_session(
        outsider,
        world.outsider_patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from="blank",
    )
    with pytest.raises(Vial.DoesNotExist):
        services.select_vial(outsider, their_session, their_session.version, world.vial)
    response = world.client("outsider").post(
        _url("vial", session), {"version": _fresh(session).version, "vial": world.vial.pk}
    )
    assert response.status_code in (403, 404)


def test_the_page_warns_when_the_vial_in_use_nears_its_use_by_time(stocked):
    world = stocked
    session = _start(world)
    _choose(world, session, world.vial)
    use_by = timezone.now() + timedelta(minutes=90, seconds=30)
    Vial.objects.filter(pk=world.vial.pk).update(use_by=use_by)
    html = world.client("injector").get(_url("session", session)).text
    local = timezone.localtime(use_by, services.clinic_tz(session))
    assert f"Vial #{world.vial.pk} must be used by {local:%H:%M} (in 1 h 30 min)." in html
    assert f"use by {local:%H:%M on %d/%m} (1 h 30 min left)" in html


def test_a_vial_that_times_out_blocks_in_the_checks_and_cannot_be_overridden(stocked):
    world = stocked
    session = _start(world, "blank")
    _choose(world, session, world.vial)
    Vial.objects.filter(pk=world.vial.pk).update(use_by=timezone.now() - timedelta(minutes=1))
    [block] = [f for f in services.findings(_fresh(session)) if f.rule == "vial-use-by"]
    assert block.severity == "block" and "had to be used by" in block.message
    page = world.client("prescriber").get(_url("session", session)).text
    assert "This cannot be overridden." in page
    assert f"Vial #{world.vial.pk} had to be used by" in page
    with pytest.raises(ValidationError):
        services.override(
            world.actor("prescriber"), session, "vial-use-by", "No other vial in the fridge."
        )
    before = _state(session)
    response = world.client("injector").post(
        _url("point_add", session),
        {"version": _fresh(session).version, "units": "4", **PROCERUS},
        **HX,
    )
    assert response.status_code == 422 and "had to be used by" in response.text
    assert _state(session) == before


def test_points_drawn_in_time_are_not_blocked_when_the_vial_times_out_before_signing(stocked):
    world = stocked
    session = _start(world)
    _choose(world, session, world.vial)
    _times_out_after_the_draws(session, world.vial)
    assert not [f for f in services.findings(_fresh(session)) if f.rule == "vial-use-by"]
    signed = services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)
    assert signed.status == Status.SIGNED


def test_a_lot_that_expires_blocks_in_the_checks(stocked):
    world = stocked
    session = _start(world, "blank")
    _choose(world, session, world.vial)
    Lot.objects.filter(pk=world.receipt.lot.pk).update(
        expiry=timezone.localdate() - timedelta(days=1)
    )
    rules = {f.rule: f.severity for f in services.findings(_fresh(session))}
    assert rules["expired-lot"] == "block"


# --- how much can be drawn -------------------------------------------------------------------


def test_a_point_cannot_draw_more_than_the_vial_holds_and_nothing_changes(stocked):
    world = stocked
    _use_up(world, world.vial, "47")
    session = _start(world, "blank")
    _choose(world, session, world.vial)
    before, ledger = _state(session), _ledger(world.vial)
    response = world.client("injector").post(
        _url("point_add", session),
        {"version": _fresh(session).version, "units": "4", **PROCERUS},
        **HX,
    )
    assert response.status_code == 422
    assert (
        f"Vial #{world.vial.pk} has 3 U left; point 1 needs 4 U. Choose another vial for the "
        "remaining points." in response.text
    )
    assert (_state(session), _ledger(world.vial)) == (before, ledger)


def test_more_units_on_a_point_than_the_vial_has_changes_nothing(stocked):
    world = stocked
    session = _start(world)
    _choose(world, session, world.vial)  # 30 U left
    before, ledger = _state(session), _ledger(world.vial)
    with pytest.raises(ValidationError) as refused:
        services.update_point(
            world.actor("injector"), session, _fresh(session).version, 1, units="40"
        )
    assert refused.value.messages == [
        f"Vial #{world.vial.pk} has 30 U left besides the 4 U already drawn for point 1; "
        "point 1 needs 40 U. Choose another vial for this point."
    ]
    assert (_state(session), _ledger(world.vial)) == (before, ledger)


def test_a_protocol_that_does_not_fit_the_vial_is_not_laid_out_at_all(stocked):
    world = stocked
    _use_up(world, world.vial, "35")  # 15 U left: points 1-3 of the 5 x 4 U would fit
    session = _start(world, "blank")
    _choose(world, session, world.vial)
    before, ledger = _state(session), _ledger(world.vial)
    with pytest.raises(ValidationError) as refused:
        services.apply_protocol(
            world.actor("injector"),
            session,
            "glabellar-lines-botox-cosmetic",
            _fresh(session).version,
        )
    text = " ".join(refused.value.messages)
    assert f"Vial #{world.vial.pk} has 15 U left" in text and "runs out at point 4" in text
    assert "Choose another vial for the remaining points" in text
    assert (_state(session), _ledger(world.vial)) == (before, ledger)


def test_one_session_draws_from_several_vials(stocked):
    world = stocked
    _use_up(world, world.vial, "38")  # 12 U left
    second = _open_second(world)
    session = _start(world)  # 5 x 4 U laid out before any vial is chosen
    client = world.client("injector")
    response = client.post(
        _url("vial", session), {"version": _fresh(session).version, "vial": world.vial.pk}, **HX
    )
    assert response.status_code == 200
    assert "points 1, 2 and 3" not in response.text  # numbers are given as runs
    assert "points 1 to 3 drawn from it, 0 U left" in response.text
    assert "Not enough for points 4, 5: choose another vial for the remaining points." in (
        response.text
    )
    assert Vial.objects.get(pk=world.vial.pk).state == VialState.FINISHED  # emptied
    response = client.post(
        _url("vial", session), {"version": _fresh(session).version, "vial": second.pk}, **HX
    )
    assert "points 4, 5 drawn from it, 42 U left" in response.text
    assert [(d.point_number, d.vial_id) for d in stock.session_draws(session)] == [
        (1, world.vial.pk),
        (2, world.vial.pk),
        (3, world.vial.pk),
        (4, second.pk),
        (5, second.pk),
    ]
    signed = services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)
    [lot] = services.lots_used(services.live_points(signed))
    assert (
        lot.vials_text == f"vial #{world.vial.pk} (points 1 to 3); vial #{second.pk} (points 4, 5)"
    )
    pdf = pdf_text(record.render_pdf(signed), "charting-vial-record")
    assert f"#{world.vial.pk} · lot C1234AB" in pdf and f"#{second.pk} · lot C1234AB" in pdf
    assert f"vial #{second.pk} (points 4, 5)" in " ".join(pdf.split())


def test_a_point_can_be_moved_to_another_vial(stocked):
    world = stocked
    second = _open_second(world)
    session = _start(world)
    _choose(world, session, world.vial)
    services.update_point(world.actor("injector"), session, _fresh(session).version, 2, vial=second)
    assert (_left(world.vial), _left(second)) == (34, 46)
    assert _fresh(session).points.get(number=2).vial == second
    reversed_draw = StockMove.objects.get(session=session, reverses__isnull=False)
    assert (reversed_draw.point_number, reversed_draw.vial_id) == (2, world.vial.pk)


# --- every change of a draft -----------------------------------------------------------------


def test_each_change_of_a_draft_draws_or_puts_back(stocked):
    world = stocked
    injector = world.actor("injector")
    session = _start(world, "protocol:lateral-canthal-lines", indication="lateral-canthal-lines")
    _choose(world, session, world.vial)
    laid = services.totals(_fresh(session)).total
    assert _left(world.vial) == 50 - laid
    first = services.live_points(session)[0]
    mirrored = services.mirror_point(injector, session, _fresh(session).version, first.number)
    assert mirrored.vial == world.vial and _left(world.vial) == 50 - laid - first.units
    services.remove_point(injector, session, _fresh(session).version, mirrored.number)
    assert _left(world.vial) == 50 - laid
    services.restore_point(injector, session, _fresh(session).version, mirrored.number)
    assert _left(world.vial) == 50 - laid - first.units
    services.update_point(
        injector, session, _fresh(session).version, mirrored.number, depth="ID", x="80"
    )
    assert _left(world.vial) == 50 - laid - first.units  # not the units: no new draw
    # Removing and restoring keeps the ledger a list of draws and their reversals.
    moves = StockMove.objects.filter(session=session, point_number=mirrored.number)
    assert [m.units for m in moves.order_by("pk")] == [-first.units, first.units, -first.units]


def test_repeat_last_draws_every_point_from_the_vial_in_use(stocked):
    world = stocked
    first = _start(world)
    _choose(world, first, world.vial)
    services.sign(world.actor("injector"), _fresh(first), _fresh(first).version)
    again = _start(world, "blank")
    _choose(world, again, world.vial)
    services.repeat_last(world.actor("injector"), again, _fresh(again).version)
    assert len(stock.session_draws(again)) == 5 and _left(world.vial) == 10


def test_with_a_vial_in_use_the_lot_is_not_typed(stocked):
    world = stocked
    session = _start(world)
    _choose(world, session, world.vial)
    before = _state(session)
    with pytest.raises(ValidationError, match="choose another vial"):
        services.update_details(
            world.actor("injector"), session, _fresh(session).version, {"lot_number": "X1"}
        )
    assert _state(session) == before
    services.update_details(
        world.actor("injector"), session, _fresh(session).version, {"pre_notes": "calm"}
    )
    assert _fresh(session).pre_notes == "calm"


def test_choosing_no_vial_stops_drawing(stocked):
    world = stocked
    session = _start(world, "blank")
    _choose(world, session, world.vial)
    response = world.client("injector").post(
        _url("vial", session), {"version": _fresh(session).version, "vial": ""}, **HX
    )
    assert response.status_code == 200 and "No vial in use" in response.text
    services.add_point(
        world.actor("injector"), session, _fresh(session).version, units="4", **PROCERUS
    )
    assert _left(world.vial) == 50 and stock.session_draws(session) == []


# --- signing ---------------------------------------------------------------------------------


def test_where_stock_is_kept_every_point_needs_a_vial_to_sign(stocked):
    world = stocked
    _use_up(world, world.vial, "37")  # 13 U left: points 1-3, not point 4
    session = _start(world)
    _choose(world, session, world.vial)
    services.remove_point(world.actor("injector"), session, _fresh(session).version, 5)
    with pytest.raises(services.SigningRefused) as refused:
        services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)
    assert "Point 4 has no vial: choose the vial it was drawn from." in refused.value.reasons
    assert not any("lot number" in r for r in refused.value.reasons)
    response = world.client("injector").post(
        _url("sign", session), {"version": _fresh(session).version}, **HX
    )
    assert response.status_code == 422 and "Point 4 has no vial" in response.text
    # The editor of point 4 offers the vials it can be drawn from.
    second = _open_second(world)
    page = world.client("injector").get(_url("session", session), {"select": 4}).text
    assert "Choose the vial it was drawn from" in page and f'id="point-vial-{second.pk}"' in page
    services.update_point(world.actor("injector"), session, _fresh(session).version, 4, vial=second)
    signed = services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)
    assert signed.status == Status.SIGNED


def test_a_clinic_that_keeps_no_stock_types_the_lot_as_before(consented):
    world = consented
    session = _start(world)
    assert not services.tracks_stock(session)
    html = world.client("injector").get(_url("session", session)).text
    assert "Save lot" in html and "Vial in use" not in html
    with pytest.raises(services.SigningRefused, match="lot number and expiry"):
        services.sign(world.actor("injector"), session, session.version)


# --- amending --------------------------------------------------------------------------------


def _signed(world):
    session = _start(world)
    _choose(world, session, world.vial)
    return services.sign(world.actor("injector"), _fresh(session), _fresh(session).version)


def test_an_amendment_draws_the_corrected_dose_again_when_it_was_given(stocked):
    world = stocked
    start = timezone.now() - timedelta(hours=1)
    signed = _signed(world)
    given = StockMove.objects.get(session=signed, point_number=1).at
    # The vial has timed out since: the correction is checked against when the dose was given.
    _times_out_after_the_draws(signed, world.vial)
    services.amend(world.actor("injector"), signed, "Point 1 was 5 U, typo", point_units={1: 5})
    assert _fresh(signed).status == Status.AMENDED
    assert _left(world.vial) == 29
    [redraw] = [d for d in stock.session_draws(signed) if d.point_number == 1]
    assert (redraw.units, redraw.at, redraw.vial_id) == (-5, given, world.vial.pk)
    undone = StockMove.objects.get(session=signed, point_number=1, reverses__isnull=False)
    assert (undone.units, undone.at, undone.reason) == (
        4,
        given,
        "amendment: Point 1 was 5 U, typo",
    )
    row = _reconcile(world, start)
    assert row.administered == 21 and row.balanced


def test_an_amendment_the_closed_vial_cannot_take_is_refused_whole(stocked):
    world = stocked
    signed = _signed(world)
    stock.waste(world.actor("injector"), world.vial, rest=True, reason="end of the vial")
    before, ledger = _state(signed), _ledger(world.vial)
    with pytest.raises(ValidationError) as refused:
        services.amend(
            world.actor("injector"), signed, "Points 1, 2 were 5 U", point_units={1: 5, 2: 5}
        )
    text = " ".join(refused.value.messages)
    assert f"vial #{world.vial.pk}" in text and "has since been finished" in text
    assert "owner's stock adjustment" in text
    assert (_state(signed), _ledger(world.vial)) == (before, ledger)
    assert Vial.objects.get(pk=world.vial.pk).closed_how == ClosedHow.WASTED
    # Through the page: the reason beside the form, nothing saved.
    data = {"reason": "Point 1 was 5 U", "units_1": "5"}
    data.update({f"units_{n}": "4" for n in range(2, 6)})
    response = world.client("injector").post(_url("amend", signed), data)
    assert response.status_code == 422 and "stock adjustment" in response.text
    assert Amendment.objects.count() == 0 and _state(signed) == before


def test_the_amend_form_has_no_typed_lot_for_a_session_drawn_from_vials(stocked):
    world = stocked
    signed = _signed(world)
    html = world.client("injector").get(_url("session", signed)).text
    assert 'name="lot_number"' not in html and "Amend (units)" in html
    data = {"reason": "Point 2 was 2 U", "units_2": "2"}
    data.update({f"units_{n}": "4" for n in (1, 3, 4, 5)})
    response = world.client("injector").post(_url("amend", signed), data)
    assert response.status_code == 302 and _left(world.vial) == 32


# --- concurrency -----------------------------------------------------------------------------


def test_two_drafts_racing_for_the_last_units_never_overdraw_the_vial(race_world):  # noqa: F811
    world = race_world
    receipt = receive_botox_cosmetic(world, count=1)
    vial = stock.reconstitute(world.actor("injector"), receipt.vials[0], "1.25")
    _use_up(world, vial, "44")  # 6 U left
    drafts = [_start(world, "blank", patient=second_patient(world, given=g)) for g in "AB"]
    for draft in drafts:
        _choose(world, draft, vial)
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def chart(draft):
        try:
            barrier.wait(timeout=10)
            services.add_point(
                world.actor("injector"), draft, _fresh(draft).version, units="4", **PROCERUS
            )
            outcomes[draft.pk] = "drawn"
        except ValidationError as exc:
            outcomes[draft.pk] = " ".join(exc.messages)
        except Exception as exc:  # any other failure is reported, not hidden
            outcomes[draft.pk] = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=chart, args=(d,)) for d in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    results = sorted(outcomes.values())
    assert results == [
        f"Vial #{vial.pk} has 2 U left; point 1 needs 4 U. Choose another vial for the "
        "remaining points.",
        "drawn",
    ], results
    loser = next(d for d in drafts if outcomes[d.pk] != "drawn")
    assert _fresh(loser).points.count() == 0 and _fresh(loser).version == 2
    assert _left(vial) == 2


def test_the_second_of_two_drafts_is_refused_with_the_units_left(stocked):
    world = stocked
    _use_up(world, world.vial, "44")  # 6 U left
    a = _start(world, "blank", patient=second_patient(world, given="Ann"))
    b = _start(world, "blank", patient=second_patient(world, given="Bea"))
    for draft in (a, b):
        _choose(world, draft, world.vial)
    services.add_point(world.actor("injector"), a, _fresh(a).version, units="4", **PROCERUS)
    with pytest.raises(ValidationError, match="has 2 U left; point 1 needs 4 U"):
        services.add_point(world.actor("injector"), b, _fresh(b).version, units="4", **PROCERUS)
    assert _left(world.vial) == 2 and _fresh(b).points.count() == 0


# --- who may -------------------------------------------------------------------------------


def test_front_desk_and_auditor_cannot_choose_a_vial(stocked):
    world = stocked
    session = _start(world)
    before = _state(session)
    for role in ("front_desk", "auditor", "owner"):
        response = world.client(role).post(
            _url("vial", session), {"version": _fresh(session).version, "vial": world.vial.pk}
        )
        assert response.status_code == 403, role
    assert _state(session) == before


def test_a_signed_session_cannot_change_its_vial(stocked):
    world = stocked
    signed = _signed(world)
    second = _open_second(world)
    before = _state(signed)
    response = world.client("injector").post(
        _url("vial", signed), {"version": signed.version, "vial": second.pk}, **HX
    )
    assert response.status_code == 409
    assert _state(signed) == before
