from decimal import Decimal

import pytest

from glabella.web.templatetags.glabella_tags import units


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("20.00"), "20"),
        (Decimal("12.50"), "12.5"),
        (Decimal("1.25"), "1.25"),
        (Decimal("100"), "100"),
        (None, ""),
        (Decimal("0.10"), "0.1"),
    ],
)
def test_units_are_shown_without_trailing_zeros_and_never_rounded(value, shown):
    assert units(value) == shown
