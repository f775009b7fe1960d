"""Units belong to one product; nothing converts between products."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glabella.clinical import catalogue, units
from glabella.clinical.units import UnitMismatch, Units

D = Decimal


def test_adding_botox_to_dysport_units_raises() -> None:
    with pytest.raises(UnitMismatch) as exc:
        Units(D(20), "botox") + Units(D(50), "dysport")
    assert str(exc.value) == (
        "Cannot add Botox units to Dysport units: units of different toxin products are not "
        "interchangeable (every label says so)"
    )


def test_unit_mismatch_is_a_value_error() -> None:
    assert issubclass(UnitMismatch, ValueError)


def test_subtracting_xeomin_from_botox_units_raises() -> None:
    with pytest.raises(UnitMismatch, match="Cannot subtract Xeomin units from Botox units"):
        Units(D(20), "botox") - Units(D(5), "xeomin")


def test_comparing_units_of_different_products_raises() -> None:
    with pytest.raises(UnitMismatch, match="Cannot compare Dysport units with Botox units"):
        _ = Units(D(50), "dysport") > Units(D(20), "botox")
    with pytest.raises(UnitMismatch):
        _ = Units(D(50), "dysport") <= Units(D(20), "botox")


def test_botox_and_botox_cosmetic_units_do_not_mix_even_though_same_generic() -> None:
    assert catalogue.product("botox").generic == catalogue.product("botox_cosmetic").generic
    with pytest.raises(UnitMismatch):
        Units(D(20), "botox") + Units(D(20), "botox_cosmetic")


def test_units_of_different_products_are_never_equal() -> None:
    assert Units(D(20), "botox") != Units(D(20), "xeomin")
    assert Units(D(20), "botox") == Units(D("20.0"), "botox")


def test_adding_and_subtracting_same_product_units() -> None:
    a = Units(D("12.5"), "dysport")
    b = Units(D("7.5"), "dysport")
    assert a + b == Units(D(20), "dysport")
    assert a - b == Units(D(5), "dysport")
    assert (a + b).product_id == "dysport"


def test_comparisons_within_one_product() -> None:
    small, big = Units(D(4), "botox_cosmetic"), Units(D(20), "botox_cosmetic")
    assert small < big and small <= big and big > small and big >= small
    assert small <= Units(D("4.00"), "botox_cosmetic")


def test_multiplying_units_by_a_decimal_or_int() -> None:
    per_site = Units(D(5), "botox")
    assert per_site * 31 == Units(D(155), "botox")
    assert 31 * per_site == Units(D(155), "botox")
    assert per_site * D("0.5") == Units(D("2.5"), "botox")


def test_multiplying_units_by_units_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Units(D(5), "botox") * Units(D(2), "botox")  # type: ignore[operator]


def test_multiplying_by_a_negative_number_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        _ = Units(D(5), "botox") * -1


def test_float_amount_is_refused_with_type_error() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        Units(1.25, "botox")  # type: ignore[arg-type]


def test_float_multiplier_is_refused_with_type_error() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        _ = Units(D(5), "botox") * 1.5  # type: ignore[operator]


def test_string_and_bool_amounts_are_refused() -> None:
    with pytest.raises(TypeError):
        Units("20", "botox")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Units(True, "botox")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Units(D(bad), "botox")


def test_negative_units_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Units(D(-1), "botox")


def test_negative_zero_is_normalised() -> None:
    assert str(Units(D("-0"), "botox").amount) == "0"


def test_int_amount_is_stored_as_decimal() -> None:
    amount = Units(20, "botox").amount  # type: ignore[arg-type]
    assert isinstance(amount, Decimal) and amount == 20


def test_unknown_product_is_refused() -> None:
    with pytest.raises(catalogue.UnknownProduct):
        Units(D(1), "botx")


def test_subtracting_more_than_there_is_raises() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        Units(D(4), "botox") - Units(D(5), "botox")


def test_sum_of_a_list_of_units() -> None:
    points = [Units(D(4), "botox_cosmetic")] * 5
    assert sum(points) == Units(D(20), "botox_cosmetic")
    assert units.total(points) == Units(D(20), "botox_cosmetic")


def test_total_of_an_empty_list_needs_a_product() -> None:
    assert units.total([], "dysport") == Units(D(0), "dysport")
    with pytest.raises(ValueError, match="product_id"):
        units.total([])


def test_total_of_mixed_products_raises() -> None:
    with pytest.raises(UnitMismatch):
        units.total([Units(D(4), "botox"), Units(D(10), "dysport")])
    with pytest.raises(UnitMismatch):
        units.total([Units(D(4), "botox")], "dysport")


def test_module_offers_no_conversion_function() -> None:
    public = {name for name in dir(units) if not name.startswith("_")}
    assert not {n for n in public if "convert" in n.lower()}


# -- literature ratios ---------------------------------------------------------------------------


def test_dysport_botox_literature_ratio_is_information_not_label() -> None:
    ratio = units.literature_ratio("dysport", "botox")
    assert ratio is not None
    assert (ratio.ratio_low, ratio.ratio_high) == (D("2.5"), D("3.0"))
    assert ratio.origin == "literature"
    assert ratio.on_label is False and ratio.apply is False
    assert "not from any label" in ratio.warning and "never apply" in ratio.warning
    assert "literature" in ratio.label and "not on any label" in ratio.label
    assert ratio.status == "confirmed"
    assert ratio.sources == ("S60", "S61", "S59", "S64")


def test_literature_ratio_keeps_literature_orientation_in_either_order() -> None:
    assert units.literature_ratio("botox", "dysport") == units.literature_ratio("dysport", "botox")
    ratio = units.literature_ratio("botox", "dysport")
    assert ratio is not None and ratio.numerator_product == "dysport"


def test_botox_cosmetic_matches_the_literature_botox_ratio_by_family() -> None:
    assert units.literature_ratio("botox_cosmetic", "dysport") == units.literature_ratio(
        "botox", "dysport"
    )


def test_myobloc_ratio_carries_its_partly_unconfirmed_range() -> None:
    ratio = units.literature_ratio("myobloc", "botox")
    assert ratio is not None
    assert ratio.ratio_low == ratio.ratio_high == 40
    assert ratio.often_quoted_range == (D(40), D(50))
    assert "50 unconfirmed" in ratio.status_note


def test_inferred_ratios_are_marked_secondary() -> None:
    for pid in ("jeuveau", "letybo", "daxxify"):
        ratio = units.literature_ratio(pid, "botox")
        assert ratio is not None and ratio.status == "secondary", pid


def test_pairs_without_a_literature_ratio_return_none() -> None:
    assert units.literature_ratio("dysport", "xeomin") is None
    assert units.literature_ratio("botox", "botox_cosmetic") is None
    assert units.literature_ratio("botox", "botox") is None


def test_literature_ratio_of_unknown_product_raises() -> None:
    with pytest.raises(catalogue.UnknownProduct):
        units.literature_ratio("botox", "nope")


# -- properties ----------------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False)
factors = st.one_of(
    st.integers(min_value=0, max_value=50),
    st.decimals(min_value=0, max_value=50, places=3, allow_nan=False),
)
operations = st.lists(
    st.tuples(st.sampled_from(["add", "sub", "mul"]), amounts, factors), max_size=30
)


@given(start=amounts, ops=operations)
def test_units_are_never_negative_after_valid_operations(
    start: Decimal, ops: list[tuple[str, Decimal, int | Decimal]]
) -> None:
    value = Units(start, "dysport")
    for op, amount, factor in ops:
        other = Units(amount, "dysport")
        if op == "add":
            value = value + other
        elif op == "sub":
            try:
                value = value - other
            except ValueError:
                assert other.amount > value.amount
        else:
            value = value * factor
        assert value.amount >= 0
        assert value.product_id == "dysport"
        assert isinstance(value.amount, Decimal)


@given(a=amounts, b=amounts)
def test_adding_then_subtracting_returns_the_start_exactly(a: Decimal, b: Decimal) -> None:
    x, y = Units(a, "xeomin"), Units(b, "xeomin")
    assert (x + y) - y == x


@given(
    pa=st.sampled_from(catalogue.PRODUCT_IDS),
    pb=st.sampled_from(catalogue.PRODUCT_IDS),
    a=amounts,
    b=amounts,
)
def test_any_two_different_products_never_combine(pa: str, pb: str, a: Decimal, b: Decimal) -> None:
    x, y = Units(a, pa), Units(b, pb)
    if pa == pb:
        assert (x + y).amount == a + b
    else:
        with pytest.raises(UnitMismatch):
            x + y
        with pytest.raises(UnitMismatch):
            x - y
        with pytest.raises(UnitMismatch):
            _ = x < y
