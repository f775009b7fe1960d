"""How long the toxin lasts for one patient: Kaplan-Meier duration, personal recall, fading.

An :class:`Episode` is one treatment and the day its effect was recorded as returned. Its
duration of effect is ``returned_on - treated_on`` days (an *event*). When no return was
recorded the episode is *censored*: at ``next_treated_on`` (re-treated before it wore off) or
else at ``today`` (still working).

- :func:`kaplan_meier` is the standard product-limit estimator over those durations, in
  ``float`` arithmetic (survival is a probability, not a dose).
- :func:`personal_duration` turns a patient's own median into a
  :class:`~glabella.clinical.schedule.DurationOutcome` for ``schedule.next_due``; the labelled
  minimum-interval clamp stays in :mod:`~glabella.clinical.schedule`.
- :func:`fading_response` flags a response that shortens cycle after cycle at a steady or
  rising dose (possible resistance). Its thresholds are Glabella's own heuristic
  (status ``unconfirmed``), not a label figure.

The caller passes the episodes of one indication and one product family (Botox and Botox
Cosmetic share one); mixing them raises ``ValueError``. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from glabella.clinical import catalogue
from glabella.clinical._reference import Status
from glabella.clinical.schedule import DurationOutcome

__all__ = [
    "FADING_MIN_EPISODES",
    "FADING_SHORTER_BY",
    "FADING_STEADY_DOSE",
    "Episode",
    "FadingResponse",
    "KMStep",
    "KaplanMeier",
    "fading_response",
    "kaplan_meier",
    "personal_duration",
]

FADING_MIN_EPISODES = 3
"""Recorded episodes in a row needed for the fading flag (Glabella's heuristic, unconfirmed)."""
FADING_SHORTER_BY = Decimal("0.15")
"""Each duration at least this fraction shorter than the one before (heuristic, unconfirmed)."""
FADING_STEADY_DOSE = Decimal("0.95")
"""Each dose at least this fraction of the one before (heuristic, unconfirmed)."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One treatment and when its effect returned (``returned_on`` None: not recorded)."""

    treated_on: date
    units: Decimal
    product_id: str
    indication: str
    returned_on: date | None = None
    next_treated_on: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.units, Decimal) or not self.units.is_finite() or self.units <= 0:
            raise ValueError(f"units must be a positive Decimal, got {self.units!r}")
        if self.returned_on is not None and self.returned_on < self.treated_on:
            raise ValueError(
                f"The effect cannot return ({self.returned_on.isoformat()}) before the "
                f"treatment ({self.treated_on.isoformat()})"
            )
        if self.next_treated_on is not None and self.next_treated_on < self.treated_on:
            raise ValueError(
                f"The next treatment ({self.next_treated_on.isoformat()}) cannot be before "
                f"this one ({self.treated_on.isoformat()})"
            )

    @property
    def recorded_days(self) -> int | None:
        """Days until the effect returned, when recorded; else None."""
        if self.returned_on is None:
            return None
        return (self.returned_on - self.treated_on).days

    def observation(self, today: date) -> tuple[int, bool]:
        """``(days, event)``: the recorded duration, or the censoring time and ``False``."""
        days = self.recorded_days
        if days is not None:
            return days, True
        end = self.next_treated_on if self.next_treated_on is not None else today
        if end < self.treated_on:
            raise ValueError(
                f"today ({end.isoformat()}) is before the treatment "
                f"({self.treated_on.isoformat()}) whose effect is still running"
            )
        return (end - self.treated_on).days, False


@dataclass(frozen=True, slots=True)
class KMStep:
    """One distinct day of the curve: survival just after ``day``, and who was at risk."""

    day: int
    survival: float
    at_risk: int
    events: int
    censored: int


@dataclass(frozen=True, slots=True)
class KaplanMeier:
    """The product-limit curve (one step per distinct day, sorted) and its median."""

    steps: tuple[KMStep, ...]
    median_days: int | None

    @property
    def events(self) -> int:
        return sum(step.events for step in self.steps)


def _check_one_series(episodes: Sequence[Episode]) -> None:
    indications = {e.indication for e in episodes}
    families = {_family(e.product_id) for e in episodes}
    if len(indications) > 1 or len(families) > 1:
        raise ValueError(
            "Duration of effect is estimated per indication and product family; got "
            f"indications {sorted(indications)} and families {sorted(families)}"
        )


def _family(product_id: str) -> str:
    try:
        return catalogue.product(product_id).generic
    except catalogue.UnknownProduct:
        return product_id


def kaplan_meier(episodes: Iterable[Episode], today: date) -> KaplanMeier:
    """The Kaplan-Meier survival curve of the duration of effect (float probabilities).

    At each distinct day t with d returns among n episodes still at risk (duration >= t),
    S(t) = S(previous) * (1 - d / n). An episode censored on day t is still at risk for the
    returns on day t and leaves the risk set after them. The median is the first day with
    S(t) <= 0.5, or None when the curve never gets there.
    """
    episodes = list(episodes)
    _check_one_series(episodes)
    observed = [e.observation(today) for e in episodes]
    days = sorted({day for day, _ in observed})
    survival = 1.0
    at_risk = len(observed)
    median: int | None = None
    steps: list[KMStep] = []
    for day in days:
        events = sum(1 for d, event in observed if d == day and event)
        censored = sum(1 for d, event in observed if d == day and not event)
        if events:
            survival *= 1.0 - events / at_risk
        steps.append(KMStep(day, survival, at_risk, events, censored))
        if median is None and events and survival <= 0.5:
            median = day
        at_risk -= events + censored
    return KaplanMeier(tuple(steps), median)


def personal_duration(
    episodes: Iterable[Episode], today: date, min_events: int = 2
) -> DurationOutcome | None:
    """This patient's own median duration, for ``schedule.next_due(..., outcomes=...)``.

    None when fewer than ``min_events`` returns were recorded, or when the Kaplan-Meier curve
    never falls to 0.5. ``next_due`` still applies the labelled minimum interval.
    """
    if min_events < 1:
        raise ValueError(f"min_events must be at least 1, got {min_events}")
    curve = kaplan_meier(episodes, today)
    if curve.events < min_events or curve.median_days is None:
        return None
    return DurationOutcome(max(curve.median_days, 1))


@dataclass(frozen=True, slots=True)
class FadingResponse:
    """The possible-resistance flag: Glabella's heuristic, not a label figure."""

    flagged: bool
    reason: str
    status: Status = "unconfirmed"
    rule: str = (
        f"Glabella's heuristic (unconfirmed, not from a label): the last "
        f"{FADING_MIN_EPISODES} or more recorded durations are each at least "
        f"{FADING_SHORTER_BY:.0%} shorter than the one before, while each dose is at least "
        f"{FADING_STEADY_DOSE:.0%} of the one before"
    )


def fading_response(episodes: Iterable[Episode]) -> FadingResponse:
    """Flag a response fading cycle after cycle despite a steady or rising dose.

    Rule (Glabella's heuristic, status ``unconfirmed``): take the episodes with a recorded
    return, in treatment order; flag when the most recent run of at least
    ``FADING_MIN_EPISODES`` (3) of them has each duration at most 85 % of the one before
    (at least 15 % shorter) and each dose at least 95 % of the one before. A run that ended
    earlier (the duration since recovered) does not flag. Episodes without a recorded return
    are left out.
    """
    episodes = list(episodes)
    _check_one_series(episodes)
    recorded = sorted(
        (e for e in episodes if e.recorded_days is not None), key=lambda e: e.treated_on
    )
    if len(recorded) < FADING_MIN_EPISODES:
        return FadingResponse(
            False,
            f"Only {len(recorded)} recorded return(s) of effect; "
            f"{FADING_MIN_EPISODES} are needed to judge a fading response.",
        )
    run = [recorded[-1]]
    for earlier in reversed(recorded[:-1]):
        later = run[0]
        later_days, earlier_days = later.recorded_days, earlier.recorded_days
        assert later_days is not None and earlier_days is not None
        shorter = Decimal(later_days) <= (1 - FADING_SHORTER_BY) * earlier_days
        steady = later.units >= FADING_STEADY_DOSE * earlier.units
        if not (shorter and steady):
            break
        run.insert(0, earlier)
    if len(run) < FADING_MIN_EPISODES:
        return FadingResponse(
            False,
            f"The last {FADING_MIN_EPISODES} recorded durations do not each shorten by at "
            f"least {FADING_SHORTER_BY:.0%} at a steady or rising dose.",
        )
    durations = ", ".join(f"{e.recorded_days}" for e in run)
    doses = ", ".join(f"{e.units}" for e in run)
    return FadingResponse(
        True,
        f"Possible resistance: the effect lasted {durations} days over the last {len(run)} "
        f"treatments, each at least {FADING_SHORTER_BY:.0%} shorter, while the dose stayed "
        f"steady or rose ({doses} units). Glabella's heuristic, not a label rule: review.",
    )
