"""Reconstitution: concentration, units <-> volume, use-by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from glabella.clinical import catalogue, reconstitution
from glabella.clinical.reconstitution import ReconstitutionError
from glabella.clinical.units import UnitMismatch, Units

D = Decimal
NEW_YORK = ZoneInfo("America/New_York")


# -- concentration -------------------------------------------------------------------------------


def test_daxxify_uses_the_table_figure_not_arithmetic() -> None:
    assert reconstitution.concentration("daxxify", 100, D("1.2")) == D(8)
    info = reconstitution.concentration_info("daxxify", 100, D("1.2"))
    assert info.basis == "table"
    assert info.status == "unconfirmed"
    assert info.differs_from_arithmetic
    assert str(info.arithmetic_units_per_0_1ml).startswith("8.333333")
    assert info.units_per_ml == D(80)
    assert "S44" in info.sources


@pytest.mark.parametrize(
    ("pid", "vial", "diluent", "expected", "status"),
    [
        ("botox_cosmetic", 100, "2.5", "4", "secondary"),
        ("botox_cosmetic", 50, "1.25", "4", "secondary"),
        ("botox", 100, "2", "5", "confirmed"),
        ("botox", 200, "4", "5", "confirmed"),
        ("botox", 100, "4", "2.5", "confirmed"),
        ("botox", 100, "8", "1.25", "confirmed"),
        ("botox", 100, "10", "1", "confirmed"),
        ("dysport", 300, "2.5", "12", "confirmed"),
        ("dysport", 300, "1.5", "20", "confirmed"),
        ("dysport", 500, "2.5", "20", "secondary"),
        ("dysport", 300, "3", "10", "unconfirmed"),
        ("jeuveau", 100, "2.5", "4", "confirmed"),
        ("xeomin", 100, "2.5", "4", "secondary"),
        ("letybo", 50, "1.25", "4", "secondary"),
        ("myobloc", 5000, "0", "500", "confirmed"),
    ],
)
def test_table_rows_give_their_figure_and_status(
    pid: str, vial: int, diluent: str, expected: str, status: str
) -> None:
    info = reconstitution.concentration_info(pid, vial, D(diluent))
    assert info.basis == "table"
    assert info.units_per_0_1ml == D(expected)
    assert info.status == status


def test_every_table_row_is_what_concentration_returns() -> None:
    for item in catalogue.products():
        for row in item.reconstitution:
            value = reconstitution.concentration(item.id, row.vial_units, row.diluent_ml)
            assert value == row.units_per_0_1ml, (item.id, row)


def test_only_daxxify_table_rows_differ_from_arithmetic() -> None:
    differing = set()
    for item in catalogue.products():
        for row in item.reconstitution:
            info = reconstitution.concentration_info(item.id, row.vial_units, row.diluent_ml)
            if info.differs_from_arithmetic:
                differing.add((item.id, row.vial_units, row.diluent_ml))
    assert differing == {("daxxify", 100, D("1.2")), ("daxxify", 50, D("0.6"))}


def test_dysport_shared_row_takes_the_best_status_and_both_uses() -> None:
    info = reconstitution.concentration_info("dysport", 300, D("1.5"))
    assert info.status == "confirmed"
    assert info.use_for == "glabellar lines; therapeutic"
    assert info.label_expression == "10 U per 0.05 mL"


def test_arithmetic_is_used_off_table_and_marked_secondary() -> None:
    info = reconstitution.concentration_info("botox", 100, D("2.5"))
    assert info.basis == "arithmetic"
    assert info.units_per_0_1ml == D(4)
    assert info.status == "secondary"
    assert str(info.units_per_0_1ml) == "4"


def test_arithmetic_is_exact_decimal_and_plain() -> None:
    assert reconstitution.concentration("dysport", 500, D(4)) == D("12.5")
    assert str(reconstitution.concentration("botox", 200, D("0.5"))) == "40"
    third = reconstitution.concentration("botox", 100, D(3))
    assert isinstance(third, Decimal)
    assert str(third).startswith("3.33333333333")


def test_unconfirmed_vial_size_makes_the_result_unconfirmed() -> None:
    info = reconstitution.concentration_info("xeomin", 200, D(4))
    assert info.units_per_0_1ml == D(5)
    assert info.status == "unconfirmed"


def test_myobloc_is_500_units_per_0_1_ml_undiluted_in_every_vial() -> None:
    for vial in (2500, 5000, 10000):
        assert reconstitution.concentration("myobloc", vial, D(0)) == D(500)


def test_myobloc_dilution_counts_the_solution_already_in_the_vial() -> None:
    # 5000 U in 1 mL + 1 mL saline = 5000 U in 2 mL = 250 U / 0.1 mL
    info = reconstitution.concentration_info("myobloc", 5000, D(1))
    assert info.units_per_0_1ml == D(250)
    assert info.basis == "arithmetic"


def test_myobloc_negative_saline_is_refused() -> None:
    with pytest.raises(ReconstitutionError, match="cannot be negative"):
        reconstitution.concentration("myobloc", 5000, D(-1))


@pytest.mark.parametrize(
    ("pid", "vial", "match"),
    [
        ("xeomin", 300, "Xeomin does not come in a 300 U vial"),
        ("botox", 50, r"vial sizes: 100 U, 200 U"),
        ("jeuveau", 50, "Jeuveau does not come in a 50 U vial"),
        ("dysport", 100, "Dysport does not come in a 100 U vial"),
    ],
)
def test_vial_size_the_product_does_not_come_in_raises(pid: str, vial: int, match: str) -> None:
    with pytest.raises(ReconstitutionError, match=match):
        reconstitution.concentration(pid, vial, D("2.5"))


@pytest.mark.parametrize("diluent", [D(0), D("-2.5")])
def test_diluent_not_more_than_zero_raises_for_a_powder(diluent: Decimal) -> None:
    with pytest.raises(ReconstitutionError, match="more than 0 mL"):
        reconstitution.concentration("botox", 100, diluent)


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D("-Infinity"), D("sNaN")])
def test_nan_or_infinite_diluent_raises(bad: Decimal) -> None:
    with pytest.raises(ReconstitutionError):
        reconstitution.concentration("botox", 100, bad)


def test_float_diluent_raises_reconstitution_error() -> None:
    with pytest.raises(ReconstitutionError, match="exact decimal"):
        reconstitution.concentration("botox", 100, 2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("vial", [100.0, "100", True, D("100.5")])
def test_vial_units_must_be_a_whole_number(vial: object) -> None:
    with pytest.raises(ReconstitutionError, match="whole number"):
        reconstitution.concentration("botox", vial, D(2))  # type: ignore[arg-type]


def test_vial_units_given_as_integral_decimal_is_accepted() -> None:
    assert reconstitution.concentration("botox", D(100), D(2)) == D(5)  # type: ignore[arg-type]


def test_reconstitution_error_is_a_value_error() -> None:
    assert issubclass(ReconstitutionError, ValueError)


def test_unknown_product_raises_unknown_product() -> None:
    with pytest.raises(catalogue.UnknownProduct):
        reconstitution.concentration("botx", 100, D(2))


# -- units <-> volume ----------------------------------------------------------------------------


def test_label_volumes_for_label_doses() -> None:
    assert reconstitution.volume_ml("botox_cosmetic", D(20), D(4)) == D("0.5")
    assert reconstitution.volume_ml("botox_cosmetic", D(24), D(4)) == D("0.6")
    assert reconstitution.volume_ml("botox_cosmetic", D(40), D(4)) == D(1)
    assert reconstitution.volume_ml("botox_cosmetic", D(26), D(4)) == D("0.65")
    assert reconstitution.volume_ml("botox_cosmetic", D(31), D(4)) == D("0.775")
    assert reconstitution.volume_ml("botox_cosmetic", D(36), D(4)) == D("0.9")
    assert reconstitution.volume_ml("botox", D(5), D(5)) == D("0.1")
    assert reconstitution.volume_ml("botox", D(50), D("2.5")) == D(2)
    assert reconstitution.volume_ml("dysport", D(10), D(20)) == D("0.05")


def test_dysport_10_units_at_12_per_0_1_ml_is_unrounded() -> None:
    volume = reconstitution.volume_ml("dysport", D(10), D(12))
    assert str(volume).startswith("0.083333333")
    assert volume.quantize(D("0.01")) == D("0.08")


def test_units_for_volume() -> None:
    assert reconstitution.units_for_volume("botox_cosmetic", D("0.5"), D(4)) == D(20)
    assert reconstitution.units_for_volume("myobloc", D("0.5"), D(500)) == D(2500)


def test_volume_accepts_units_of_the_same_product_only() -> None:
    dose = Units(D(20), "botox_cosmetic")
    assert reconstitution.volume_ml("botox_cosmetic", dose, D(4)) == D("0.5")
    with pytest.raises(UnitMismatch):
        reconstitution.volume_ml("dysport", dose, D(12))


@pytest.mark.parametrize("conc", [D(0), D(-4), D("NaN")])
def test_bad_concentration_raises(conc: Decimal) -> None:
    with pytest.raises(ReconstitutionError):
        reconstitution.volume_ml("botox", D(5), conc)
    with pytest.raises(ReconstitutionError):
        reconstitution.units_for_volume("botox", D("0.1"), conc)


def test_negative_units_or_volume_raise() -> None:
    with pytest.raises(ReconstitutionError):
        reconstitution.volume_ml("botox", D(-5), D(5))
    with pytest.raises(ReconstitutionError):
        reconstitution.units_for_volume("botox", D("-0.1"), D(5))


def test_float_units_raise() -> None:
    with pytest.raises(ReconstitutionError):
        reconstitution.volume_ml("botox", 5.0, D(5))  # type: ignore[arg-type]


# -- use-by --------------------------------------------------------------------------------------


def test_use_by_is_24_hours_after_reconstitution() -> None:
    at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert reconstitution.use_by("botox", at) == at + timedelta(hours=24)


def test_daxxify_use_by_is_72_hours() -> None:
    at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert reconstitution.use_by("daxxify", at) == at + timedelta(hours=72)


def test_use_by_is_real_elapsed_time_across_a_daylight_saving_change() -> None:
    at = datetime(2024, 11, 2, 12, 0, tzinfo=NEW_YORK)  # EDT; clocks go back on 3 Nov
    result = reconstitution.use_by("botox", at)
    assert result is not None
    # (Subtracting two datetimes of the same tzinfo compares wall clocks, so compare in UTC.)
    assert result.astimezone(UTC) - at.astimezone(UTC) == timedelta(hours=24)
    assert result.tzinfo is NEW_YORK
    assert (result.hour, result.day) == (11, 3)


def test_myobloc_has_no_use_by() -> None:
    at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert reconstitution.use_by("myobloc", at) is None


def test_diluted_myobloc_uses_the_unconfirmed_4_hour_limit() -> None:
    at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert reconstitution.use_by("myobloc", at, diluted=True) == at + timedelta(hours=4)
    assert reconstitution.use_by("botox", at, diluted=True) == at + timedelta(hours=24)


def test_use_by_requires_an_aware_datetime() -> None:
    with pytest.raises(ReconstitutionError, match="time zone"):
        reconstitution.use_by("botox", datetime(2025, 3, 1, 9, 30))


# -- properties ----------------------------------------------------------------------------------

TERMINATING = [D(v) for v in ("1", "1.25", "2.5", "4", "5", "8", "10", "20", "50", "500")]
ALL_TABLE = sorted(
    {r.units_per_0_1ml for p in catalogue.products() for r in p.reconstitution}, key=str
)
unit_amounts = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False)
volumes = st.decimals(min_value=0, max_value=20, places=3, allow_nan=False)


@given(volume=volumes, conc=st.sampled_from(ALL_TABLE))
def test_volume_to_units_to_volume_round_trips_exactly(volume: Decimal, conc: Decimal) -> None:
    units = reconstitution.units_for_volume("botox", volume, conc)
    assert reconstitution.volume_ml("botox", units, conc) == volume


@given(units=unit_amounts, conc=st.sampled_from(TERMINATING))
def test_units_to_volume_to_units_round_trips_exactly(units: Decimal, conc: Decimal) -> None:
    volume = reconstitution.volume_ml("botox", units, conc)
    assert reconstitution.units_for_volume("botox", volume, conc) == units


@given(units=unit_amounts)
def test_non_terminating_volumes_round_trip_to_within_1e_20(units: Decimal) -> None:
    volume = reconstitution.volume_ml("dysport", units, D(12))
    back = reconstitution.units_for_volume("dysport", volume, D(12))
    assert abs(back - units) < D("1e-20")


@given(
    pid=st.sampled_from([p for p in catalogue.PRODUCT_IDS if p != "myobloc"]),
    data=st.data(),
    diluent=st.decimals(min_value=D("0.1"), max_value=20, places=2, allow_nan=False),
)
def test_the_whole_diluent_holds_the_whole_vial(
    pid: str, data: st.DataObject, diluent: Decimal
) -> None:
    item = catalogue.product(pid)
    vial = data.draw(st.sampled_from(item.vial_units))
    info = reconstitution.concentration_info(pid, vial, diluent)
    assume(info.basis == "arithmetic")
    held = reconstitution.units_for_volume(pid, diluent, info.units_per_0_1ml)
    assert abs(held - vial) < D("1e-20")
    assert info.units_per_0_1ml * 10 * diluent - vial < D("1e-20")


@given(
    a=st.decimals(min_value=D("0.1"), max_value=20, places=2, allow_nan=False),
    b=st.decimals(min_value=D("0.1"), max_value=20, places=2, allow_nan=False),
)
def test_more_diluent_never_gives_a_higher_concentration(a: Decimal, b: Decimal) -> None:
    assume(a < b)
    ca = reconstitution.concentration_info("xeomin", 100, a)
    cb = reconstitution.concentration_info("xeomin", 100, b)
    assert ca.arithmetic_units_per_0_1ml > cb.arithmetic_units_per_0_1ml
    assert ca.units_per_0_1ml > 0 and cb.units_per_0_1ml > 0
