"""Clinic settings tighten label limits and never loosen them."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from glabella.clinical.settings import (
    COSMETIC_RECALL_MAX_DAYS,
    WINDOW_DAYS_CHOICES,
    ClinicalSettings,
    cosmetic_min_interval_days,
)

D = Decimal


def test_defaults_are_the_label_window_and_a_four_month_cosmetic_recall() -> None:
    default = ClinicalSettings()
    assert default.cumulative_window_days == 90
    assert default.cosmetic_recall_days == 120
    assert dict(default.session_caps) == {}
    assert default.session_cap("botox") is None


def test_the_two_readings_of_three_months_come_from_the_reference() -> None:
    assert WINDOW_DAYS_CHOICES == (84, 90)
    assert ClinicalSettings(cumulative_window_days=84).cumulative_window_days == 84


@pytest.mark.parametrize("days", [0, 30, 83, 85, 89, 91, 120, -90])
def test_any_window_other_than_84_or_90_days_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="84 or 90"):
        ClinicalSettings(cumulative_window_days=days)


@pytest.mark.parametrize("days", ["90", 90.0, True, None])
def test_window_must_be_a_whole_number(days: object) -> None:
    with pytest.raises(ValueError, match="cumulative_window_days"):
        ClinicalSettings(cumulative_window_days=days)  # type: ignore[arg-type]


def test_cosmetic_recall_may_be_three_to_four_months() -> None:
    assert cosmetic_min_interval_days() == 90
    assert ClinicalSettings(cosmetic_recall_days=90).cosmetic_recall_days == 90
    assert (
        ClinicalSettings(cosmetic_recall_days=COSMETIC_RECALL_MAX_DAYS).cosmetic_recall_days == 123
    )


def test_cosmetic_recall_below_the_minimum_interval_loosens_the_label_and_is_refused() -> None:
    with pytest.raises(ValueError, match="minimum interval of 90 days"):
        ClinicalSettings(cosmetic_recall_days=89)


@pytest.mark.parametrize("days", [124, 365, "120", True])
def test_cosmetic_recall_outside_four_months_or_not_whole_days_is_refused(days: object) -> None:
    with pytest.raises(ValueError, match="cosmetic_recall_days"):
        ClinicalSettings(cosmetic_recall_days=days)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("product", "cap"),
    [
        ("botox_cosmetic", D(64)),
        ("botox", D(400)),
        ("xeomin", D(400)),
        ("dysport", D(1500)),
        ("myobloc", D(5000)),
    ],
)
def test_tighter_session_caps_are_accepted(product: str, cap: Decimal) -> None:
    clinic = ClinicalSettings(session_caps={product: cap})
    assert clinic.session_cap(product) == cap


@pytest.mark.parametrize(
    ("product", "cap", "ceiling"),
    [
        ("botox", D(401), "400"),
        ("botox_cosmetic", D(500), "400"),
        ("xeomin", D("400.5"), "400"),
        ("dysport", D(1501), "1500"),
    ],
)
def test_a_session_cap_above_the_label_ceiling_loosens_it_and_is_refused(
    product: str, cap: Decimal, ceiling: str
) -> None:
    with pytest.raises(ValueError, match=f"loosen the label's {ceiling} U"):
        ClinicalSettings(session_caps={product: cap})


@pytest.mark.parametrize("cap", [D(0), D(-1), D("NaN"), D("Infinity"), "abc", True, 1.5])
def test_a_session_cap_must_be_a_positive_number(cap: object) -> None:
    with pytest.raises(ValueError, match="session_caps"):
        ClinicalSettings(session_caps={"botox": cap})  # type: ignore[dict-item]


def test_a_session_cap_for_an_unknown_product_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown product 'botux'"):
        ClinicalSettings(session_caps={"botux": D(10)})


def test_settings_are_frozen_and_caps_cannot_be_changed_afterwards() -> None:
    caps = {"botox": D(100)}
    clinic = ClinicalSettings(session_caps=caps)
    caps["botox"] = D(1000)
    assert clinic.session_cap("botox") == 100
    with pytest.raises(dataclasses.FrozenInstanceError):
        clinic.cumulative_window_days = 84  # type: ignore[misc]
    with pytest.raises(TypeError):
        clinic.session_caps["botox"] = D(1000)  # type: ignore[index]


def test_equal_settings_are_equal_and_hashable() -> None:
    a = ClinicalSettings(84, 100, {"botox": D(100)})
    b = ClinicalSettings(84, 100, {"botox": D("100.0")})
    assert a == b and hash(a) == hash(b)
    assert a != ClinicalSettings(84, 100, {"botox": D(99)})
    assert len({a, b, ClinicalSettings()}) == 2
