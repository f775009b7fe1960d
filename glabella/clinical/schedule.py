"""When a patient is due again: recall dates from the last treatment and the labels' intervals.

``next_due(history, indication)`` is the last treatment for the indication plus an interval:

- cosmetic indications: the clinic's cosmetic recall (``ClinicalSettings.cosmetic_recall_days``,
  3-4 months);
- other indications: the sourced usual interval for the product family (e.g. chronic migraine
  every 12 weeks = 84 days; overactive bladder median 169 days to retreatment), or else the
  labelled minimum interval;
- a patient's own duration of effect (:class:`DurationOutcome`) replaces either when given.

The result is never earlier than the labelled minimum interval for that indication and family
(:func:`min_interval_days`). No I/O; the intervals come from the packaged reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from glabella.clinical import catalogue, indications
from glabella.clinical.indications import AgeGroup
from glabella.clinical.safety import PastTreatment
from glabella.clinical.settings import ClinicalSettings

__all__ = ["DurationOutcome", "min_interval_days", "next_due", "usual_interval_days"]


@dataclass(frozen=True, slots=True)
class DurationOutcome:
    """A patient's own measured duration of effect (median days from treatment to wearing off)."""

    median_days: int

    def __post_init__(self) -> None:
        days = self.median_days
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            raise ValueError(f"median_days must be a positive whole number of days, got {days!r}")


def min_interval_days(
    indication: str, product_family: str, population: AgeGroup | None = None
) -> int | None:
    """The labelled minimum days between two treatments of this family for this indication.

    ``population`` narrows to adult or paediatric figures; None (the default) takes the
    strictest figure of any population. None when the reference gives no minimum (e.g. Botox
    cervical dystonia) or for the catch-all indication ``other``.
    """
    if indication == "other":
        return None
    limits = indications.limits()
    rows = limits.min_intervals(indication, product_family, population)
    if not rows and population is not None:
        rows = limits.min_intervals(indication, product_family)
    return max((row.days for row in rows), default=None)


def usual_interval_days(
    indication: str,
    product_family: str,
    settings: ClinicalSettings | None = None,
    population: AgeGroup | None = None,
) -> int | None:
    """The recall interval before the minimum-interval clamp (see the module docstring)."""
    effective = settings if settings is not None else ClinicalSettings()
    if indications.is_cosmetic(indication):
        return effective.cosmetic_recall_days
    usual = indications.recall(indication, product_family)
    if usual is not None:
        return usual.days
    return min_interval_days(indication, product_family, population)


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _family(product_id: str) -> str | None:
    try:
        return catalogue.product(product_id).generic
    except catalogue.UnknownProduct:
        return None


def next_due(
    history: Sequence[PastTreatment],
    indication: str,
    outcomes: DurationOutcome | None = None,
    settings: ClinicalSettings | None = None,
    *,
    population: AgeGroup | None = None,
) -> date | None:
    """The date the patient is due again for ``indication``.

    None when the patient was never treated for it, or when neither the clinic, the patient's
    own duration nor the reference gives an interval (the catch-all ``other``; a product used
    off-label, e.g. Dysport for chronic migraine): the clinic then sets the recall by hand.
    ``population`` (adult / paediatric) picks that age group's minimum interval; without it
    the strictest one applies. Unknown indication ids raise
    :class:`~glabella.clinical.indications.UnknownIndication`.
    """
    indications.get(indication)
    treated = [t for t in history if t.indication == indication]
    if not treated:
        return None
    last = max(treated, key=lambda t: _day(t.date))
    family = _family(last.product_id)
    if outcomes is not None:
        interval: int | None = outcomes.median_days
    elif family is None:
        effective = settings if settings is not None else ClinicalSettings()
        interval = effective.cosmetic_recall_days if indications.is_cosmetic(indication) else None
    else:
        interval = usual_interval_days(indication, family, settings, population)
    minimum = min_interval_days(indication, family, population) if family is not None else None
    if interval is None:
        interval = minimum
    if interval is None:
        return None
    if minimum is not None:
        interval = max(interval, minimum)
    return _day(last.date) + timedelta(days=interval)
