from datetime import date

import pytest
from django.core.exceptions import ValidationError

from glabella.inventory import gs1
from glabella.inventory.tests.helpers import (
    GS,
    GTIN_BOTOX_COSMETIC_50,
    check_digit,
    datamatrix,
    gs1_128,
    gtin14,
    hri,
)

EXPIRY = date(2027, 9, 30)
WRONG_CHECK_DIGIT = GTIN_BOTOX_COSMETIC_50[:-1] + str((int(GTIN_BOTOX_COSMETIC_50[-1]) + 1) % 10)


def test_check_digits_are_the_gs1_ones():
    # GS1's own worked example: 0950110153000 -> 3 ... and the classic 629104150021 -> 3
    assert check_digit("629104150021") == "3"
    assert gtin14("0950110153000") == "09501101530003"


def test_datamatrix_scan_with_symbology_prefix_and_serial():
    code = gs1.parse(datamatrix(GTIN_BOTOX_COSMETIC_50, "C1234AB", EXPIRY, serial="SN0001"))
    assert code == gs1.CartonCode(GTIN_BOTOX_COSMETIC_50, "C1234AB", EXPIRY, "SN0001")


def test_gs1_128_scan_with_group_separator_after_the_lot():
    code = gs1.parse(gs1_128(GTIN_BOTOX_COSMETIC_50, "C1234AB", EXPIRY))
    assert (code.gtin, code.lot_number, code.expiry) == (GTIN_BOTOX_COSMETIC_50, "C1234AB", EXPIRY)


def test_human_readable_form_with_parentheses_and_spaces():
    code = gs1.parse(
        f"(01) {GTIN_BOTOX_COSMETIC_50} (17) 270930 (10) c1234ab (21) X9".replace(" ", "  ")
    )
    assert (code.gtin, code.lot_number, code.expiry, code.serial) == (
        GTIN_BOTOX_COSMETIC_50,
        "C1234AB",  # lot numbers are stored in upper case
        EXPIRY,
        "X9",
    )


def test_plain_element_string_without_prefix_and_a_leading_fnc1():
    code = gs1.parse(f"{GS}01{GTIN_BOTOX_COSMETIC_50}1727093010LOT7{GS}21S1\n")
    assert (code.lot_number, code.serial) == ("LOT7", "S1")


def test_expiry_day_00_means_the_last_day_of_the_month():
    code = gs1.parse(f"(01){GTIN_BOTOX_COSMETIC_50}(17)280200(10)L1")
    assert code.expiry == date(2028, 2, 29)


def test_gs1_digital_link_qr_code_is_read_too():
    code = gs1.parse(f"https://id.gs1.org/01/{GTIN_BOTOX_COSMETIC_50}/10/ABC9?17=270930")
    assert (code.lot_number, code.expiry) == ("ABC9", EXPIRY)


@pytest.mark.parametrize(
    ("barcode", "why"),
    [
        ("", "empty"),
        ("hello world", "not a GS1 code"),
        (datamatrix(WRONG_CHECK_DIGIT, "L1", EXPIRY), "check digit is wrong"),
        (f"]d201{GTIN_BOTOX_COSMETIC_50}10L1", "no expiry date"),
        (f"]d201{GTIN_BOTOX_COSMETIC_50}17270930", "no lot number"),
        ("]d21727093010L1", "no product code"),
        (f"]d201{GTIN_BOTOX_COSMETIC_50}1727139910L1", "expiry date (AI 17)"),
        (f"]E0{GTIN_BOTOX_COSMETIC_50[1:]}", "only the product code"),
        ("(01)12(17)x", "product code (AI 01)"),
    ],
)
def test_unreadable_barcodes_say_why_and_ask_to_type_instead(barcode, why):
    with pytest.raises(ValidationError) as err:
        gs1.parse(barcode)
    message = err.value.message_dict["barcode"][0]
    assert message.startswith("This barcode could not be read: ")
    assert message.endswith("type the lot and expiry instead.")
    assert why in message


def test_hri_helper_builds_the_printed_line():
    assert (
        hri(GTIN_BOTOX_COSMETIC_50, "L1", EXPIRY) == f"(01){GTIN_BOTOX_COSMETIC_50}(17)270930(10)L1"
    )
