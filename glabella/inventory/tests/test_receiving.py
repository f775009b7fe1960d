from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.utils import timezone

from glabella.accounts.services import add_clinic
from glabella.inventory import services
from glabella.inventory.models import GtinProduct, Lot, MoveKind, StockMove, Vial, VialState
from glabella.inventory.tests.helpers import (
    GTIN_BOTOX_COSMETIC_50,
    GTIN_BOTOX_COSMETIC_100,
    GTIN_DAXXIFY_100,
    datamatrix,
    gs1_128,
    hri,
    in_a_year,
    receive_botox_cosmetic,
)


def _nothing_written():
    return not (
        Lot.objects.exists()
        or Vial.objects.exists()
        or StockMove.objects.exists()
        or GtinProduct.objects.exists()
    )


@pytest.mark.parametrize("form", [datamatrix, gs1_128, hri])
def test_receive_from_every_real_format_gs1_string(world, form):
    expiry = in_a_year()
    receipt = services.receive(
        world.actor("front_desk"),
        world.clinic,
        barcode=form(GTIN_BOTOX_COSMETIC_100, "c77x", expiry),
        product_id="botox_cosmetic",
        vial_units=100,
        vial_count=3,
    )
    lot = receipt.lot
    assert (lot.product_id, lot.lot_number, lot.expiry, lot.gtin, lot.vial_units) == (
        "botox_cosmetic",
        "C77X",
        expiry,
        GTIN_BOTOX_COSMETIC_100,
        100,
    )
    assert [v.state for v in receipt.vials] == [VialState.SEALED] * 3
    move = receipt.move
    assert (move.kind, move.units, move.vials, move.vial_id) == (
        MoveKind.RECEIVE,
        Decimal(300),
        3,
        None,
    )
    [stock] = services.on_hand(world.org, world.clinic)
    assert (stock.sealed_vials, stock.total_units, stock.open_units) == (3, 300, 0)


def test_an_unknown_gtin_asks_for_the_product_once_then_is_remembered(world):
    actor = world.actor("front_desk")
    barcode = datamatrix(GTIN_DAXXIFY_100, "DX1", in_a_year())
    with pytest.raises(ValidationError) as err:
        services.receive(actor, world.clinic, barcode=barcode, vial_count=1)
    assert "new here: choose which product it is" in err.value.message_dict["product_id"][0]
    assert _nothing_written()

    first = services.receive(
        actor, world.clinic, barcode=barcode, product_id="daxxify", vial_units=100, vial_count=1
    )
    assert first.gtin_remembered
    mapping = GtinProduct.objects.get(organization=world.org, gtin=GTIN_DAXXIFY_100)
    assert (mapping.product_id, mapping.vial_units) == ("daxxify", 100)

    # Next delivery: just scan and count.
    again = services.receive(
        actor, world.clinic, barcode=datamatrix(GTIN_DAXXIFY_100, "DX2", in_a_year()), vial_count=4
    )
    assert (again.lot.product_id, again.lot.vial_units, len(again.vials)) == ("daxxify", 100, 4)
    assert not again.gtin_remembered


def test_a_remembered_gtin_refuses_another_product(world):
    receive_botox_cosmetic(world)
    with pytest.raises(ValidationError, match="is Botox Cosmetic in your stock records"):
        services.receive(
            world.actor("front_desk"),
            world.clinic,
            barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "Z1", in_a_year()),
            product_id="dysport",
            vial_count=1,
        )


def test_gtin_mappings_belong_to_one_organization(world):
    receive_botox_cosmetic(world)
    outsider = world.outsider_actor()
    with pytest.raises(ValidationError, match="new here"):
        services.receive(
            outsider,
            outsider.clinic,
            barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "BC1001", in_a_year()),
            vial_count=1,
        )


def test_plain_typed_entry_without_a_barcode(world):
    receipt = services.receive(
        world.actor("owner"),
        world.clinic,
        product_id="dysport",
        lot_number=" d300-9 ",
        expiry=(timezone.localdate() + timedelta(days=90)).isoformat(),
        vial_units="300",
        vial_count="2",
    )
    assert (receipt.lot.lot_number, receipt.lot.gtin, receipt.move.units) == ("D300-9", "", 600)


def test_a_second_delivery_of_the_same_lot_adds_to_it(world):
    receive_botox_cosmetic(world, count=2)
    receive_botox_cosmetic(world, count=3)
    assert Lot.objects.count() == 1
    [stock] = services.on_hand(world.org)
    assert stock.sealed_vials == 5


def test_unparseable_barcode_is_refused_and_nothing_is_added(world):
    with pytest.raises(ValidationError) as err:
        services.receive(
            world.actor("front_desk"),
            world.clinic,
            barcode="]d2NOT-A-GS1-CODE",
            product_id="botox_cosmetic",
            vial_units=50,
            vial_count=1,
        )
    assert err.value.message_dict["barcode"][0].startswith("This barcode could not be read")
    assert "type the lot and expiry instead" in err.value.message_dict["barcode"][0]
    assert _nothing_written()


def test_an_expiry_already_past_is_refused(world):
    yesterday = timezone.localdate() - timedelta(days=1)
    with pytest.raises(ValidationError) as err:
        receive_botox_cosmetic(world, expiry=yesterday)
    assert "expired on" in err.value.message_dict["expiry"][0]
    assert _nothing_written()


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (-2, "at least 1"),
        (0, "at least 1"),
        ("0", "at least 1"),
        (2.5, "counted whole"),
        ("1.5", "counted whole"),
        (Decimal("0.5"), "counted whole"),
        ("two", "not a number of vials"),
        (None, "Enter the number of vials"),
        (True, "Enter the number of vials"),
        (10_000, "not plausible"),
    ],
)
def test_a_vial_count_must_be_a_positive_whole_number(world, count, message):
    with pytest.raises(ValidationError) as err:
        receive_botox_cosmetic(world, count=count)
    assert message in err.value.message_dict["vial_count"][0]
    assert _nothing_written()


def test_a_vial_size_the_product_does_not_come_in_is_refused(world):
    with pytest.raises(ValidationError) as err:
        services.receive(
            world.actor("front_desk"),
            world.clinic,
            product_id="botox_cosmetic",
            lot_number="L1",
            expiry=in_a_year(),
            vial_units=200,
            vial_count=1,
        )
    assert err.value.message_dict["vial_units"] == [
        "Botox Cosmetic does not come in a 200 U vial (it comes in 50 U, 100 U). Check the carton."
    ]
    assert _nothing_written()


def test_a_lot_keeps_its_expiry_and_vial_size(world):
    receive_botox_cosmetic(world, lot="L9")
    with pytest.raises(ValidationError, match="recorded with expiry"):
        receive_botox_cosmetic(world, lot="L9", expiry=in_a_year() + timedelta(days=31))
    with pytest.raises(ValidationError, match="one vial size"):
        services.receive(
            world.actor("front_desk"),
            world.clinic,
            product_id="botox_cosmetic",
            lot_number="L9",
            expiry=in_a_year(),
            vial_units=100,
            vial_count=1,
        )


def test_a_typed_gtin_must_have_a_valid_check_digit(world):
    wrong = GTIN_BOTOX_COSMETIC_50[:-1] + str((int(GTIN_BOTOX_COSMETIC_50[-1]) + 1) % 10)
    with pytest.raises(ValidationError) as err:
        services.receive(
            world.actor("front_desk"),
            world.clinic,
            gtin=wrong,
            product_id="botox_cosmetic",
            lot_number="L1",
            expiry=in_a_year(),
            vial_units=50,
            vial_count=1,
        )
    assert "not a valid product code" in err.value.message_dict["gtin"][0]


def test_only_staff_receive_and_an_auditor_cannot(world):
    with pytest.raises(PermissionDenied):
        services.receive(
            world.actor("auditor"),
            world.clinic,
            barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "L1", in_a_year()),
            product_id="botox_cosmetic",
            vial_units=50,
            vial_count=1,
        )


def test_receiving_into_another_organizations_clinic_is_not_found(world):
    with pytest.raises(ObjectDoesNotExist):
        receive_botox_cosmetic(world, clinic=world.outsider_actor().clinic)
    assert _nothing_written()


def test_transfer_moves_sealed_vials_between_clinics(world):
    second = add_clinic(world.actor("owner"), name="Alpha North", timezone="Europe/London")
    receipt = receive_botox_cosmetic(world, count=5)
    out, into = services.transfer(world.actor("front_desk"), world.clinic, second, receipt.lot, 2)
    assert (out.kind, out.units, out.vials, out.other_clinic) == (
        MoveKind.TRANSFER_OUT,
        -100,
        -2,
        second,
    )
    assert (into.kind, into.units, into.vials, into.clinic) == (
        MoveKind.TRANSFER_IN,
        100,
        2,
        second,
    )
    stock = {s.clinic.name: s.sealed_vials for s in services.on_hand(world.org)}
    assert stock == {"Alpha Central": 3, "Alpha North": 2}
    assert Vial.objects.filter(clinic=second).count() == 2


def test_cannot_transfer_more_than_is_on_hand_or_fractions(world):
    second = add_clinic(world.actor("owner"), name="Alpha North", timezone="Europe/London")
    receipt = receive_botox_cosmetic(world, count=2)
    actor = world.actor("front_desk")
    with pytest.raises(ValidationError, match="has 2 sealed vials"):
        services.transfer(actor, world.clinic, second, receipt.lot, 3)
    with pytest.raises(ValidationError, match="counted whole"):
        services.transfer(actor, world.clinic, second, receipt.lot, "1.5")
    with pytest.raises(ValidationError, match="another clinic"):
        services.transfer(actor, world.clinic, world.clinic, receipt.lot, 1)
    assert StockMove.objects.count() == 1


def test_transfer_to_a_clinic_of_another_organization_is_not_found(world):
    receipt = receive_botox_cosmetic(world, count=2)
    with pytest.raises(ObjectDoesNotExist):
        services.transfer(
            world.actor("front_desk"), world.clinic, world.outsider_actor().clinic, receipt.lot, 1
        )
    assert StockMove.objects.count() == 1
    assert Vial.objects.filter(clinic=world.clinic).count() == 2
