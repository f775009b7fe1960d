"""Headache diary: daily entries -> headache, migraine and acute-medication days.

Pure arithmetic over :class:`DiaryDay` entries (no I/O):

- :func:`collate` checks a batch of entries against ``today`` (future dates refused; a second
  entry for a day replaces the first, and the replacement is recorded);
- :func:`summarise` counts a window (start and end inclusive) and normalises to 28 days;
- :func:`per_cycle` gives a baseline window (the 28 days before the first injection) and one
  summary per injection cycle;
- :func:`medication_overuse` applies the ICHD-3 8.2 acute-medication thresholds;
- :func:`continuation` gives, after 2 and after 3 cycles, the reduction in headache days, the
  trial responder rule (>= 50 %), the NICE TA260 rule (>= 30 %) and the stop suggestion, using
  the rules of :mod:`glabella.clinical.scales`.

Every threshold is read from ``reference/scales.json`` and returned with its source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, Literal

from glabella.clinical import _reference, scales
from glabella.clinical._reference import Status

__all__ = [
    "MEDICATION_KINDS",
    "Collated",
    "ContinuationStep",
    "CycleReport",
    "DiaryDay",
    "DiaryError",
    "MedicationKind",
    "OveruseResult",
    "OveruseRule",
    "Summary",
    "collate",
    "continuation",
    "medication_overuse",
    "per_cycle",
    "summarise",
]

MedicationKind = Literal["simple_analgesic", "triptan", "ergot", "opioid", "combination"]
MEDICATION_KINDS: tuple[MedicationKind, ...] = (
    "simple_analgesic",
    "triptan",
    "ergot",
    "opioid",
    "combination",
)
SEVERITY_RANGE = (0, 3)
ONE_PLACE = Decimal("0.1")


class DiaryError(ValueError):
    """A diary entry or request that cannot be used (future date, severity out of range...)."""


# --------------------------------------------------------------------------------------------
# Reference


@cache
def _data() -> Mapping[str, Any]:
    data: Mapping[str, Any] = _reference.load("scales")
    return data


def _cite(text: str, entry: Mapping[str, Any]) -> tuple[str, Status]:
    st = _reference.status(entry["status"])
    ids = [str(s) for s in entry.get("sources", [])]
    where = ", ".join(ids) if ids else str(entry.get("citation") or "no source in the reference")
    return f"{text} [{where}] ({st})", st


def _per_days() -> int:
    return int(_data()["scales"]["headache-days"]["per_days"])


# --------------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True, slots=True)
class DiaryDay:
    """One day of the diary. ``acute_medication`` holds the kinds of acute medication taken that
    day (empty: none). Severity is 0-3 (none, mild, moderate, severe); hours 0-24."""

    date: dt.date
    headache: bool
    migraine: bool = False
    severity: int | None = None
    hours: Decimal | None = None
    acute_medication: frozenset[MedicationKind] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.date, dt.datetime) or not isinstance(self.date, dt.date):
            raise DiaryError(f"date: {self.date!r} is not a calendar date")
        when = self.date.isoformat()
        for name in ("headache", "migraine"):
            if not isinstance(getattr(self, name), bool):
                raise DiaryError(f"{when} {name}: {getattr(self, name)!r} is not yes/no (bool)")
        if self.migraine and not self.headache:
            raise DiaryError(f"{when}: a migraine day must also be a headache day")
        if self.severity is not None:
            low, high = SEVERITY_RANGE
            if isinstance(self.severity, bool) or not isinstance(self.severity, int):
                raise DiaryError(f"{when} severity: {self.severity!r} is not a whole number")
            if not low <= self.severity <= high:
                raise DiaryError(f"{when} severity: {self.severity} is outside {low}-{high}")
        if self.hours is not None:
            if not isinstance(self.hours, Decimal) or not self.hours.is_finite():
                raise DiaryError(f"{when} hours: {self.hours!r} is not a Decimal number")
            if not 0 <= self.hours <= 24:
                raise DiaryError(f"{when} hours: {self.hours} is outside 0-24")
        if not self.headache and ((self.severity or 0) > 0 or (self.hours or 0) > 0):
            raise DiaryError(f"{when}: severity or hours given for a day without headache")
        if not isinstance(self.acute_medication, frozenset):
            raise DiaryError(
                f"{when} acute_medication: expected a frozenset of kinds, "
                f"got {self.acute_medication!r}"
            )
        unknown = sorted(map(str, self.acute_medication - set(MEDICATION_KINDS)))
        if unknown:
            raise DiaryError(
                f"{when} acute_medication: unknown kind(s) {', '.join(unknown)}; "
                f"known kinds are {', '.join(MEDICATION_KINDS)}"
            )


@dataclass(frozen=True, slots=True)
class Collated:
    """Entries by date (one per day, in date order) and the dates where a later entry
    replaced an earlier one."""

    days: tuple[DiaryDay, ...]
    replaced: tuple[dt.date, ...]


def collate(days: Iterable[DiaryDay], today: dt.date) -> Collated:
    """One entry per day, the later one replacing the earlier; future dates raise."""
    by_date: dict[dt.date, DiaryDay] = {}
    replaced: list[dt.date] = []
    for day in days:
        if day.date > today:
            raise DiaryError(
                f"{day.date.isoformat()}: a diary entry cannot be for a future date "
                f"(today is {today.isoformat()})"
            )
        if day.date in by_date and day.date not in replaced:
            replaced.append(day.date)
        by_date[day.date] = day
    return Collated(
        days=tuple(by_date[d] for d in sorted(by_date)), replaced=tuple(sorted(replaced))
    )


def _by_date(days: Iterable[DiaryDay]) -> dict[dt.date, DiaryDay]:
    return {day.date: day for day in days}  # a later entry for a day replaces the earlier


# --------------------------------------------------------------------------------------------
# Windows


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts over ``start``-``end`` (inclusive). ``*_per_28`` are normalised to 28 days over the
    days recorded, rounded to 1 place (``None`` when no day is recorded)."""

    start: dt.date
    end: dt.date
    period_days: int
    days_recorded: int
    days_missing: int
    headache_days: int
    migraine_days: int
    acute_medication_days: int
    medication_days_by_kind: tuple[tuple[MedicationKind, int], ...]
    headache_days_per_28: Decimal | None
    migraine_days_per_28: Decimal | None
    acute_medication_days_per_28: Decimal | None
    enough_data: bool
    note: str | None
    source: str


def _per28(count: int, recorded: int) -> Decimal | None:
    if recorded == 0:
        return None
    value = Decimal(count) * _per_days() / Decimal(recorded)
    return value.quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def summarise(days: Iterable[DiaryDay], start: dt.date, end: dt.date) -> Summary:
    """Headache, migraine and acute-medication days from ``start`` to ``end`` inclusive."""
    if end < start:
        raise DiaryError(f"window: end {end.isoformat()} is before start {start.isoformat()}")
    inside = [d for d in _by_date(days).values() if start <= d.date <= end]
    period = (end - start).days + 1
    recorded = len(inside)
    headache = sum(1 for d in inside if d.headache)
    by_kind = tuple(
        (k, sum(1 for d in inside if k in d.acute_medication)) for k in MEDICATION_KINDS
    )
    completeness = _data()["diary_completeness"]
    need, per = int(completeness["min_recorded_days"]), int(completeness["per_days"])
    enough = recorded * per >= need * period
    note = None
    if not enough:
        note = (
            f"Only {recorded} of {period} days recorded: fewer than {need} of every {per} days, "
            "not enough to judge headache days"
        )
    if recorded:
        per_source = scales.score(
            "headache-days", {"headache_days": headache, "period_days": recorded}
        ).source
    else:
        per_source = scales.score("headache-days", {"headache_days": 0, "period_days": 1}).source
    completeness_source, _ = _cite(
        f"at least {need} of every {per} days recorded to judge", completeness
    )
    return Summary(
        start=start,
        end=end,
        period_days=period,
        days_recorded=recorded,
        days_missing=period - recorded,
        headache_days=headache,
        migraine_days=sum(1 for d in inside if d.migraine),
        acute_medication_days=sum(1 for d in inside if d.acute_medication),
        medication_days_by_kind=by_kind,
        headache_days_per_28=_per28(headache, recorded),
        migraine_days_per_28=_per28(sum(1 for d in inside if d.migraine), recorded),
        acute_medication_days_per_28=_per28(sum(1 for d in inside if d.acute_medication), recorded),
        enough_data=enough,
        note=note,
        source=f"{per_source}; {completeness_source}",
    )


@dataclass(frozen=True, slots=True)
class CycleReport:
    """The baseline window (28 days before the first injection) and one summary per cycle."""

    baseline: Summary
    cycles: tuple[Summary, ...]


def per_cycle(days: Iterable[DiaryDay], injection_dates: Sequence[dt.date]) -> CycleReport:
    """Summaries per injection cycle: each from its injection date to the day before the next;
    the last to the last recorded day (or its injection date when nothing is recorded after)."""
    if not injection_dates:
        raise DiaryError("injection_dates: at least one injection date is needed")
    injections = sorted(injection_dates)
    if len(set(injections)) != len(injections):
        raise DiaryError("injection_dates: the same date is given twice")
    entries = list(_by_date(days).values())
    first = injections[0]
    per = _per_days()
    baseline = summarise(entries, first - dt.timedelta(days=per), first - dt.timedelta(days=1))
    cycles = []
    for n, start in enumerate(injections):
        if n + 1 < len(injections):
            end = injections[n + 1] - dt.timedelta(days=1)
        else:
            end = max((d.date for d in entries if d.date >= start), default=start)
        cycles.append(summarise(entries, start, end))
    return CycleReport(baseline=baseline, cycles=tuple(cycles))


# --------------------------------------------------------------------------------------------
# Medication overuse


@dataclass(frozen=True, slots=True)
class OveruseRule:
    """One ICHD-3 threshold checked month by month (most recent month last)."""

    rule: str
    text: str
    kinds: tuple[MedicationKind, ...]
    min_days_per_month: int
    days_per_month: tuple[int, ...]
    fired: bool


@dataclass(frozen=True, slots=True)
class OveruseResult:
    """``overuse`` is True when any rule fired; ``months`` are the (start, end) of each month
    counted (oldest first); ``note`` says when diary days are missing (counts are then a
    minimum)."""

    overuse: bool
    rules: tuple[OveruseRule, ...]
    fired: tuple[str, ...]
    months: tuple[tuple[dt.date, dt.date], ...]
    days_missing: int
    note: str | None
    source: str
    status: Status


def medication_overuse(days: Iterable[DiaryDay], end: dt.date) -> OveruseResult:
    """ICHD-3 8.2 acute-medication thresholds over the 3 months (30 days each) ending ``end``."""
    entries = list(_by_date(days).values())
    entry = _data()["medication_overuse"]
    month_days = int(entry["month_days"])
    n_months = int(entry["regular_overuse_months"])
    months = []
    for k in range(n_months - 1, -1, -1):
        month_end = end - dt.timedelta(days=k * month_days)
        months.append((month_end - dt.timedelta(days=month_days - 1), month_end))
    summaries = [summarise(entries, a, b) for a, b in months]
    rules = []
    for row in entry["rules"]:
        kinds = tuple(k for k in MEDICATION_KINDS if k in row["kinds"])
        need = int(row["min_days_per_month"])
        counts = tuple(
            sum(1 for d in entries if a <= d.date <= b and d.acute_medication & set(kinds))
            for a, b in months
        )
        rules.append(
            OveruseRule(
                rule=str(row["id"]),
                text=str(row["text"]),
                kinds=kinds,
                min_days_per_month=need,
                days_per_month=counts,
                fired=all(c >= need for c in counts),
            )
        )
    missing = sum(s.days_missing for s in summaries)
    note = None
    if missing:
        note = f"{missing} of {n_months * month_days} days not recorded: the counts are a minimum"
    fired = tuple(r.rule for r in rules if r.fired)
    if fired:
        text = "Medication overuse (ICHD-3 8.2): " + "; ".join(r.text for r in rules if r.fired)
    else:
        text = "No ICHD-3 8.2 medication-overuse threshold reached"
    source, st = _cite(text, entry)
    return OveruseResult(
        overuse=bool(fired),
        rules=tuple(rules),
        fired=fired,
        months=tuple(months),
        days_missing=missing,
        note=note,
        source=source,
        status=st,
    )


# --------------------------------------------------------------------------------------------
# Continue or stop


@dataclass(frozen=True, slots=True)
class ContinuationStep:
    """After ``after_cycles`` cycles: the reduction against baseline, the trial responder rule
    (>= 50 %), the NICE TA260 rule (>= 30 %) and whether the stop rule applies."""

    after_cycles: int
    baseline: Decimal
    follow_up: Decimal
    reduction_pct: Decimal
    responder: scales.Response
    nice: scales.Response
    stop_suggested: bool
    stop_text: str
    stop_source: str


_STOP_RULE = "headache-days-30-percent"


def continuation(
    baseline_days_per_28: Decimal | int, cycles_days_per_28: Sequence[Decimal | int]
) -> tuple[ContinuationStep, ...]:
    """Steps after 2 and after 3 cycles (as many as the cycles given allow). The follow-up figure
    after n cycles is the headache days per 28 days in cycle n."""
    stop_rule = next(r for r in _data()["responders"] if r["id"] == _STOP_RULE)
    evaluate_after = int(stop_rule["evaluate_after_cycles"])
    steps = []
    for n in (2, 3):
        if len(cycles_days_per_28) < n:
            break
        follow_up = cycles_days_per_28[n - 1]
        responder = scales.headache_days_responder(baseline_days_per_28, follow_up)
        nice = scales.nice_continuation(baseline_days_per_28, follow_up)
        stop = n >= evaluate_after and not nice.responder
        if stop:
            stop_text = (
                f"Stop suggested: {nice.change:.1f}% reduction after {n} cycles is below "
                f"{nice.threshold}% (NICE TA260)"
            )
        else:
            stop_text = (
                f"Continue: {nice.change:.1f}% reduction after {n} cycles reaches "
                f"{nice.threshold}% (NICE TA260)"
            )
        steps.append(
            ContinuationStep(
                after_cycles=n,
                baseline=Decimal(baseline_days_per_28),
                follow_up=Decimal(follow_up),
                reduction_pct=nice.change,
                responder=responder,
                nice=nice,
                stop_suggested=stop,
                stop_text=stop_text,
                stop_source=nice.source,
            )
        )
    return tuple(steps)
