"""Recall dates: last treatment + interval, never earlier than the labelled minimum interval."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glabella.clinical import catalogue, indications
from glabella.clinical.indications import UnknownIndication
from glabella.clinical.safety import PastTreatment
from glabella.clinical.schedule import (
    DurationOutcome,
    min_interval_days,
    next_due,
    usual_interval_days,
)
from glabella.clinical.settings import ClinicalSettings

D = Decimal
LAST = date(2026, 3, 2)


def treated(product: str, indication: str, on: date = LAST, units: str = "20") -> PastTreatment:
    return PastTreatment(on, product, indication, D(units))


def test_never_treated_for_the_indication_has_no_due_date() -> None:
    assert next_due([], "glabellar-lines") is None
    assert next_due([treated("botox", "chronic-migraine")], "glabellar-lines") is None


def test_cosmetic_recall_uses_the_clinic_setting_default_120_days() -> None:
    history = [treated("botox_cosmetic", "glabellar-lines")]
    assert next_due(history, "glabellar-lines") == LAST + timedelta(days=120)
    short = ClinicalSettings(cosmetic_recall_days=90)
    assert next_due(history, "glabellar-lines", settings=short) == LAST + timedelta(days=90)


def test_due_date_counts_from_the_latest_treatment_for_the_indication() -> None:
    history = [
        treated("botox_cosmetic", "glabellar-lines", LAST - timedelta(days=200)),
        treated("botox_cosmetic", "glabellar-lines", LAST),
        treated("botox", "chronic-migraine", LAST + timedelta(days=30)),
    ]
    assert next_due(history, "glabellar-lines") == LAST + timedelta(days=120)


@pytest.mark.parametrize(
    ("product", "indication", "days"),
    [
        ("botox", "chronic-migraine", 84),  # every 12 weeks
        ("botox", "overactive-bladder", 169),  # median time to qualify for retreatment
        ("botox", "axillary-hyperhidrosis", 197),  # median duration of effect
        ("botox", "blepharospasm", 90),  # about 3 months
        ("botox", "cervical-dystonia", 81),  # Ranoux 2002 time to retreatment
        ("dysport", "cervical-dystonia", 84),
        ("myobloc", "cervical-dystonia", 84),
        ("botox", "upper-limb-spasticity", 84),  # no usual interval: the minimum interval
        ("xeomin", "upper-limb-spasticity", 84),
    ],
)
def test_medical_recall_uses_the_sourced_interval_for_the_family(
    product: str, indication: str, days: int
) -> None:
    assert next_due([treated(product, indication)], indication) == LAST + timedelta(days=days)


def test_population_picks_the_age_groups_minimum_interval() -> None:
    history = [treated("dysport", "upper-limb-spasticity")]
    assert next_due(history, "upper-limb-spasticity", population="adult") == LAST + timedelta(
        days=84
    )
    assert next_due(history, "upper-limb-spasticity", population="paediatric") == LAST + timedelta(
        days=112
    )
    assert next_due(history, "upper-limb-spasticity") == LAST + timedelta(days=112)  # strictest


def test_personal_duration_of_effect_replaces_the_usual_interval() -> None:
    history = [treated("botox", "chronic-migraine")]
    assert next_due(history, "chronic-migraine", DurationOutcome(100)) == LAST + timedelta(days=100)
    cosmetic = [treated("daxxify", "glabellar-lines", units="40")]
    assert next_due(cosmetic, "glabellar-lines", DurationOutcome(168)) == LAST + timedelta(days=168)


def test_personal_duration_shorter_than_the_minimum_interval_is_clamped() -> None:
    assert next_due(
        [treated("botox", "chronic-migraine")], "chronic-migraine", DurationOutcome(30)
    ) == LAST + timedelta(days=84)
    assert next_due(
        [treated("botox_cosmetic", "glabellar-lines")], "glabellar-lines", DurationOutcome(60)
    ) == LAST + timedelta(days=90)


def test_no_due_date_is_invented_when_nothing_gives_an_interval() -> None:
    history = [treated("xeomin", "other")]
    assert next_due(history, "other") is None
    assert next_due(history, "other", DurationOutcome(120)) == LAST + timedelta(days=120)
    off_label = [treated("dysport", "chronic-migraine")]  # no Dysport migraine figure
    assert next_due(off_label, "chronic-migraine") is None


def test_unknown_indication_raises() -> None:
    with pytest.raises(UnknownIndication, match="frown"):
        next_due([], "frown")


@pytest.mark.parametrize("days", [0, -1, True, 1.5])
def test_duration_outcome_must_be_positive_whole_days(days: object) -> None:
    with pytest.raises(ValueError, match="median_days"):
        DurationOutcome(days)  # type: ignore[arg-type]


def test_minimum_interval_days_per_indication_and_family() -> None:
    assert min_interval_days("glabellar-lines", "onabotulinumtoxinA") == 90
    assert min_interval_days("platysma-bands", "onabotulinumtoxinA") == 90
    assert min_interval_days("chronic-migraine", "onabotulinumtoxinA") == 84
    assert min_interval_days("overactive-bladder", "onabotulinumtoxinA") == 84
    assert min_interval_days("upper-limb-spasticity", "abobotulinumtoxinA", "adult") == 84
    assert min_interval_days("upper-limb-spasticity", "abobotulinumtoxinA", "paediatric") == 112
    assert min_interval_days("upper-limb-spasticity", "abobotulinumtoxinA") == 112
    assert (
        min_interval_days("cervical-dystonia", "onabotulinumtoxinA") is None
    )  # none in the reference
    assert min_interval_days("other", "incobotulinumtoxinA") is None


FAMILY_PRODUCTS = [p.id for p in catalogue.products()]


@settings(max_examples=300)
@given(
    st.lists(
        st.builds(
            PastTreatment,
            date=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
            product_id=st.sampled_from(FAMILY_PRODUCTS),
            indication=st.sampled_from(indications.INDICATION_IDS),
            units=st.decimals(min_value=1, max_value=500, places=1),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(indications.INDICATION_IDS),
    st.one_of(st.none(), st.integers(min_value=1, max_value=400).map(DurationOutcome)),
    st.sampled_from([90, 100, 120, 123]),
    st.sampled_from([None, "adult", "paediatric"]),
)
def test_next_due_is_never_earlier_than_the_minimum_interval(
    history: list[PastTreatment],
    indication: str,
    outcome: DurationOutcome | None,
    recall: int,
    population: str | None,
) -> None:
    due = next_due(
        history,
        indication,
        outcome,
        ClinicalSettings(cosmetic_recall_days=recall),
        population=population,
    )  # type: ignore[arg-type]
    treated_for = [t for t in history if t.indication == indication]
    if not treated_for:
        assert due is None
        return
    last = max(treated_for, key=lambda t: t.date)
    family = catalogue.product(last.product_id).generic
    minimum = min_interval_days(indication, family, population)  # type: ignore[arg-type]
    if due is None:  # only when nothing gives an interval
        assert outcome is None and not indications.is_cosmetic(indication)
        assert usual_interval_days(indication, family, population=population) is None  # type: ignore[arg-type]
        return
    assert due > last.date
    if minimum is not None:
        assert due >= last.date + timedelta(days=minimum)
    if indications.is_cosmetic(indication) and outcome is None:
        assert due >= last.date + timedelta(days=recall)
