from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.utils import timezone

from glabella.charting import services as charting
from glabella.inventory import services
from glabella.inventory.models import ClosedHow, Lot, MoveKind, StockMove, Vial, VialState
from glabella.inventory.tests.helpers import (
    GTIN_DAXXIFY_100,
    datamatrix,
    draw_session,
    glabellar_session,
    outsider_injector,
    receive_botox_cosmetic,
)


@pytest.fixture
def opened(world):
    """A 50 U Botox Cosmetic vial reconstituted with 1.25 mL (4 U per 0.1 mL), one sealed."""
    receipt = receive_botox_cosmetic(world, count=2)
    vial = services.reconstitute(world.actor("injector"), receipt.vials[0], "1.25")
    return vial


def test_reconstitution_takes_concentration_and_use_by_from_the_core(world):
    receipt = receive_botox_cosmetic(world, count=1)
    at = timezone.now() - timedelta(minutes=10)
    vial = services.reconstitute(world.actor("injector"), receipt.vials[0], Decimal("1.25"), at=at)
    assert vial.state == VialState.RECONSTITUTED
    assert vial.concentration == Decimal("4")  # the label's table: 50 U + 1.25 mL
    assert vial.use_by == at + timedelta(hours=24)
    assert (vial.opened_by, vial.diluent_ml) == (world.users["injector"], Decimal("1.25"))
    move = StockMove.objects.get(kind=MoveKind.RECONSTITUTE)
    assert (move.vial, move.units, move.vials) == (vial, 0, -1)
    [stock] = services.on_hand(world.org)
    assert (stock.sealed_vials, stock.open_units, stock.total_units) == (0, 50, 50)


def test_a_vial_is_reconstituted_once_and_not_when_its_lot_has_expired(world, opened):
    with pytest.raises(ValidationError, match="already reconstituted"):
        services.reconstitute(world.actor("injector"), opened, "1.25")
    sealed = Vial.objects.get(state=VialState.SEALED)
    # Time passes: the lot in the fridge is now past its expiry date.
    Lot.objects.filter(pk=sealed.lot_id).update(expiry=timezone.localdate() - timedelta(days=1))
    with pytest.raises(ValidationError) as err:
        services.reconstitute(world.actor("injector"), sealed, "1.25")
    assert "expired on" in err.value.message_dict["vial"][0]
    assert Vial.objects.get(pk=sealed.pk).state == VialState.SEALED


def test_bad_diluent_volumes_are_refused_with_the_cores_words(world):
    receipt = receive_botox_cosmetic(world, count=1)
    actor = world.actor("injector")
    with pytest.raises(ValidationError, match="not a volume"):
        services.reconstitute(actor, receipt.vials[0], "lots")
    with pytest.raises(ValidationError, match="more than 0 mL"):
        services.reconstitute(actor, receipt.vials[0], "0")
    assert Vial.objects.get(pk=receipt.vials[0].pk).state == VialState.SEALED


def test_draw_for_each_point_of_a_charting_session(world, opened):
    session = glabellar_session(world)
    moves = draw_session(world, session, opened)
    assert [(m.kind, m.units, m.point_number) for m in moves] == [
        (MoveKind.ADMINISTER, Decimal(-4), n) for n in range(1, 6)
    ]
    assert services.units_left(opened) == Decimal(30)
    assert [d.point_number for d in services.session_draws(session)] == [1, 2, 3, 4, 5]
    [usable] = services.usable_vials(world.org, world.clinic, "botox_cosmetic")
    assert (usable, usable.units_left) == (opened, Decimal(30))


def test_one_session_may_draw_from_several_vials_and_an_emptied_vial_is_finished(world, opened):
    second = services.reconstitute(
        world.actor("injector"), Vial.objects.filter(state=VialState.SEALED).get(), "1.25"
    )
    session = glabellar_session(world)
    actor = world.actor("injector")
    charting.update_point(actor, session, session.version, 1, units="46")
    session.refresh_from_db()
    services.draw(actor, opened, "46", session=session, point_number=1)
    services.draw(actor, opened, "4", session=session, point_number=2)  # empties it
    services.draw(actor, second, "4", session=session, point_number=3)
    opened.refresh_from_db()
    assert (opened.state, opened.closed_how) == (VialState.FINISHED, ClosedHow.EMPTIED)
    assert services.usable_vials(world.org, world.clinic, "botox_cosmetic") == [second]


def test_a_point_cannot_draw_more_than_the_vial_holds(world, opened):
    session = glabellar_session(world)
    actor = world.actor("injector")
    services.draw(actor, opened, "48", session=session, point_number=1)
    with pytest.raises(ValidationError) as err:
        services.draw(actor, opened, "4", session=session, point_number=2)
    assert err.value.message_dict["units"] == [
        "This vial holds only 2 U; 4 U cannot be drawn from it. Draw the rest from another vial."
    ]
    assert services.units_left(opened) == 2


def test_drawing_from_a_timed_out_vial_is_blocked_with_the_reason(world):
    receipt = receive_botox_cosmetic(world, count=1)
    vial = services.reconstitute(
        world.actor("injector"), receipt.vials[0], "1.25", at=timezone.now() - timedelta(hours=25)
    )
    session = glabellar_session(world)
    with pytest.raises(ValidationError) as err:
        services.draw(world.actor("injector"), vial, 4, session=session, point_number=1)
    message = err.value.message_dict["vial"][0]
    assert message.startswith("Blocked: this reconstituted vial had to be used by")
    assert "Discard it and use a new vial" in message
    assert not StockMove.objects.filter(kind=MoveKind.ADMINISTER).exists()
    assert services.usable_vials(world.org, world.clinic, "botox_cosmetic") == []


def test_drawing_from_a_vial_whose_lot_has_expired_is_blocked_with_the_reason(world):
    # Daxxify keeps 72 h after reconstitution, so only the lot's expiry blocks here.
    receipt = services.receive(
        world.actor("front_desk"),
        world.clinic,
        barcode=datamatrix(GTIN_DAXXIFY_100, "DX1", timezone.localdate() + timedelta(days=1)),
        product_id="daxxify",
        vial_units=100,
        vial_count=1,
    )
    vial = services.reconstitute(world.actor("injector"), receipt.vials[0], "1.2")
    session = charting.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="daxxify",
        start_from="protocol:glabellar-lines-daxxify",
    )
    later = timezone.now() + timedelta(days=2)
    with pytest.raises(ValidationError) as err:
        services.draw(world.actor("injector"), vial, 8, session=session, point_number=1, now=later)
    [message] = err.value.message_dict["vial"]
    assert message.startswith("Blocked: the lot expired on")
    assert services.usable_vials(world.org, world.clinic, "daxxify", later) == []
    assert services.vial_info(vial, later).blocks == [message]


def test_a_sealed_or_finished_vial_cannot_be_drawn_from(world, opened):
    session = glabellar_session(world)
    actor = world.actor("injector")
    sealed = Vial.objects.get(state=VialState.SEALED)
    with pytest.raises(ValidationError, match="still sealed"):
        services.draw(actor, sealed, 4, session=session, point_number=1)
    services.waste(actor, opened, rest=True, reason="end of vial")
    with pytest.raises(ValidationError, match="finished"):
        services.draw(actor, opened, 4, session=session, point_number=1)


def test_units_of_another_product_are_not_drawn(world, opened):
    session = charting.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="dysport",
        start_from="blank",
    )
    charting.add_point(
        world.actor("injector"),
        session,
        session.version,
        diagram="face-front",
        x=50,
        y=35,
        units=10,
    )
    with pytest.raises(ValidationError, match="not interchangeable"):
        services.draw(world.actor("injector"), opened, 10, session=session, point_number=1)


@pytest.mark.parametrize("units", ["0", "-4", "abc", "1.234"])
def test_draw_units_must_be_a_sensible_amount(world, opened, units):
    session = glabellar_session(world)
    with pytest.raises(ValidationError):
        services.draw(world.actor("injector"), opened, units, session=session, point_number=1)


def test_draw_needs_a_live_point_of_the_session(world, opened):
    session = glabellar_session(world)
    with pytest.raises(ValidationError, match="no point 9"):
        services.draw(world.actor("injector"), opened, 4, session=session, point_number=9)


def test_reversing_a_sessions_draws_puts_the_units_back_and_is_idempotent(world, opened):
    session = glabellar_session(world)
    draw_session(world, session, opened)
    actor = world.actor("injector")
    reversals = services.reverse_session_draws(actor, session, "session voided: wrong patient")
    assert sorted(m.units for m in reversals) == [Decimal(4)] * 5
    assert all(m.reverses.session == session for m in reversals)
    assert services.units_left(opened) == 50
    assert services.session_draws(session) == []
    assert services.reverse_session_draws(actor, session, "again") == []
    with pytest.raises(ValidationError):
        services.reverse_session_draws(actor, session, "")


def test_reversing_one_point_then_drawing_again_reopens_an_emptied_vial(world, opened):
    session = glabellar_session(world)
    actor = world.actor("injector")
    charting.update_point(actor, session, session.version, 1, units="50")
    session.refresh_from_db()
    services.draw(actor, opened, "50", session=session, point_number=1)
    opened.refresh_from_db()
    assert opened.state == VialState.FINISHED
    services.reverse_session_draws(actor, session, "point changed to 46 U", point_number=1)
    opened.refresh_from_db()
    assert opened.state == VialState.RECONSTITUTED
    services.draw(actor, opened, "46", session=session, point_number=1)
    assert services.units_left(opened) == 4


def test_waste_some_then_the_rest_finishes_the_vial(world, opened):
    actor = world.actor("injector")
    move = services.waste(actor, opened, "2.5", reason="spilled while drawing")
    assert (move.kind, move.units) == (MoveKind.WASTE, Decimal("-2.5"))
    rest = services.waste(actor, opened, rest=True, reason="end of vial")
    assert rest.units == Decimal("-47.5")
    opened.refresh_from_db()
    assert (opened.state, opened.closed_how) == (VialState.FINISHED, ClosedHow.WASTED)
    with pytest.raises(ValidationError, match="nothing to waste"):
        services.waste(actor, opened, rest=True, reason="again")


def test_waste_needs_a_reason_and_no_more_than_is_left(world, opened):
    actor = world.actor("injector")
    with pytest.raises(ValidationError) as err:
        services.waste(actor, opened, "2", reason="")
    assert "reason" in err.value.message_dict
    with pytest.raises(ValidationError, match="holds only 50 U"):
        services.waste(actor, opened, "51", reason="dropped")
    with pytest.raises(ValidationError, match="destroy it"):
        services.waste(actor, Vial.objects.get(state=VialState.SEALED), "1", reason="dropped")


def test_destroy_needs_a_witness_who_is_someone_else_of_the_organization(world, opened):
    actor = world.actor("injector")
    sealed = Vial.objects.get(state=VialState.SEALED)
    with pytest.raises(ValidationError) as err:
        services.destroy(actor, sealed, reason="cold chain broken", witness=None)
    assert err.value.message_dict["witness"] == [
        "Destruction needs a witness: choose the colleague who saw it."
    ]
    with pytest.raises(ValidationError, match="someone else"):
        services.destroy(actor, sealed, reason="cold chain broken", witness=actor.user)
    with pytest.raises(ValidationError, match="member of your organization"):
        services.destroy(actor, sealed, reason="cold chain broken", witness=world.outsider)
    assert not StockMove.objects.filter(kind=MoveKind.DESTROY).exists()

    [move] = services.destroy(
        actor, sealed, reason="cold chain broken", witness=world.users["prescriber"]
    )
    assert (move.units, move.vials, move.witness) == (-50, -1, world.users["prescriber"])
    [open_move] = services.destroy(
        actor, opened, reason="contaminated", witness=world.users["prescriber"]
    )
    assert (open_move.units, open_move.vials) == (-50, 0)
    assert set(Vial.objects.values_list("state", flat=True)) == {VialState.DISCARDED}
    assert services.on_hand(world.org) == []


def test_destroy_sealed_vials_of_a_lot(world):
    receipt = receive_botox_cosmetic(world, count=3)
    moves = services.destroy(
        world.actor("prescriber"),
        receipt.lot,
        vials=2,
        reason="recall by the manufacturer",
        witness=world.users["injector"],
    )
    assert [(m.units, m.vials) for m in moves] == [(-50, -1), (-50, -1)]
    [stock] = services.on_hand(world.org)
    assert stock.sealed_vials == 1
    with pytest.raises(ValidationError, match="has 1 sealed vials"):
        services.destroy(
            world.actor("prescriber"),
            receipt.lot,
            vials=2,
            reason="recall",
            witness=world.users["injector"],
        )


def test_adjust_needs_stock_manage_and_a_reason(world, opened):
    lot = opened.lot
    with pytest.raises(PermissionDenied):
        services.adjust(world.actor("injector"), world.clinic, lot, vials=1, reason="found one")
    owner = world.actor("owner")
    with pytest.raises(ValidationError):
        services.adjust(owner, world.clinic, lot, vials=1, reason="")
    [found] = services.adjust(owner, world.clinic, lot, vials=1, reason="found behind the milk")
    assert (found.kind, found.units, found.vials) == (MoveKind.ADJUST, 50, 1)
    [lost] = services.adjust(owner, world.clinic, lot, vials=-2, reason="count: 2 missing")[:1]
    assert (lost.units, lost.vials) == (-50, -1)
    with pytest.raises(ValidationError, match="would hold 55 U, outside 0-50 U"):
        services.adjust(owner, world.clinic, lot, units="5", vial=opened, reason="miscount")
    [fix] = services.adjust(owner, world.clinic, lot, units="-3", vial=opened, reason="spill")
    assert services.units_left(opened) == 47 and fix.units == -3


def test_another_organizations_vial_is_not_found(world, opened):
    outsider = outsider_injector(world)
    session = charting.start_session(
        outsider,
        world.outsider_patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    with pytest.raises(ObjectDoesNotExist):
        services.draw(outsider, opened, 4, session=session, point_number=1)
    with pytest.raises(ObjectDoesNotExist):
        services.reconstitute(outsider, opened, "1.25")
    with pytest.raises(ObjectDoesNotExist):
        services.waste(outsider, opened, rest=True, reason="not mine")
    assert services.usable_vials(world.outsider_org, world.clinic, "botox_cosmetic") == []
    assert services.units_left(opened) == 50


def test_front_desk_cannot_reconstitute_or_draw(world):
    receipt = receive_botox_cosmetic(world, count=1)
    with pytest.raises(PermissionDenied):
        services.reconstitute(world.actor("front_desk"), receipt.vials[0], "1.25")
