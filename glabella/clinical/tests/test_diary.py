"""Headache diary: counts per window and per cycle, medication overuse, continue or stop."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glabella.clinical import sources
from glabella.clinical.diary import (
    MEDICATION_KINDS,
    DiaryDay,
    DiaryError,
    MedicationKind,
    collate,
    continuation,
    medication_overuse,
    per_cycle,
    summarise,
)
from glabella.clinical.scales import ScaleError

D = Decimal
day = dt.date


def assert_sourced(text: str) -> None:
    for sid in re.findall(r"\bS\d+\b", text):
        sources.get(sid)
    assert re.search(r"\((confirmed|secondary|unconfirmed)\)", text), text


def run(
    start: dt.date,
    n: int,
    headache: Callable[[int], bool],
    migraine: Callable[[int], bool] = lambda i: False,
    meds: Callable[[int], frozenset[MedicationKind]] = lambda i: frozenset(),
) -> list[DiaryDay]:
    """``n`` consecutive recorded days from ``start``; i is the day's index (0-based)."""
    out = []
    for i in range(n):
        h = headache(i)
        out.append(
            DiaryDay(
                date=start + dt.timedelta(days=i),
                headache=h,
                migraine=h and migraine(i),
                severity=2 if h else None,
                hours=D("4.5") if h else None,
                acute_medication=meds(i),
            )
        )
    return out


TRIPTAN: frozenset[MedicationKind] = frozenset({"triptan"})
SIMPLE: frozenset[MedicationKind] = frozenset({"simple_analgesic"})
OPIOID: frozenset[MedicationKind] = frozenset({"opioid"})
NONE: frozenset[MedicationKind] = frozenset()


# --------------------------------------------------------------------------------------------
# Entries


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headache": False, "migraine": True}, "migraine day must also be a headache day"),
        ({"headache": True, "severity": 4}, r"severity: 4 is outside 0-3"),
        ({"headache": True, "severity": -1}, r"severity: -1 is outside 0-3"),
        ({"headache": True, "severity": True}, "not a whole number"),
        ({"headache": True, "severity": 2.0}, "not a whole number"),
        ({"headache": True, "hours": D(25)}, r"hours: 25 is outside 0-24"),
        ({"headache": True, "hours": 3.5}, "not a Decimal"),
        ({"headache": True, "hours": D("NaN")}, "not a Decimal"),
        ({"headache": False, "severity": 2}, "without headache"),
        ({"headache": False, "hours": D(1)}, "without headache"),
        ({"headache": 1}, "not yes/no"),
        ({"headache": True, "acute_medication": {"triptan"}}, "expected a frozenset"),
        ({"headache": True, "acute_medication": frozenset({"aspirin"})}, "unknown kind.*aspirin"),
    ],
)
def test_invalid_entries_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DiaryError, match=message):
        DiaryDay(date=day(2026, 1, 5), **kwargs)  # type: ignore[arg-type]


def test_a_datetime_is_not_a_date() -> None:
    with pytest.raises(DiaryError, match="not a calendar date"):
        DiaryDay(date=dt.datetime(2026, 1, 5, 9, 0), headache=True)


def test_valid_entry_and_no_headache_day_with_zero_severity() -> None:
    entry = DiaryDay(day(2026, 1, 5), True, True, 3, D("24"), frozenset({"triptan", "opioid"}))
    assert entry.migraine and entry.severity == 3
    assert DiaryDay(day(2026, 1, 6), False, severity=0, hours=D(0)).headache is False


def test_collate_refuses_future_dates_and_later_entry_replaces_earlier() -> None:
    today = day(2026, 3, 10)
    with pytest.raises(DiaryError, match=r"future date.*today is 2026-03-10"):
        collate([DiaryDay(day(2026, 3, 11), headache=True)], today)
    first = DiaryDay(day(2026, 3, 9), headache=False)
    again = DiaryDay(day(2026, 3, 9), headache=True, severity=1)
    other = DiaryDay(day(2026, 3, 10), headache=False)
    result = collate([first, other, again], today)
    assert result.days == (again, other)
    assert result.replaced == (day(2026, 3, 9),)


# --------------------------------------------------------------------------------------------
# Windows


def test_summary_worked_example_21_of_28_days_recorded() -> None:
    # Window 1-28 Jan 2026 (28 days); days 1-21 recorded (index 0-20), 7 missing.
    # Headache on index 0-11 -> 12 days; migraine on index 0-5 -> 6 days.
    # Triptan index 0-4 (5 days), simple analgesic index 5-8 (4 days) -> 9 medication days.
    # Per 28 days over the 21 recorded: 12 * 28 / 21 = 16.0; 6 * 28 / 21 = 8.0;
    # 9 * 28 / 21 = 12.0. 21 of 28 recorded >= 20 of 28: enough to judge.
    days = run(
        day(2026, 1, 1),
        21,
        headache=lambda i: i < 12,
        migraine=lambda i: i < 6,
        meds=lambda i: TRIPTAN if i < 5 else SIMPLE if i < 9 else NONE,
    )
    s = summarise(days, day(2026, 1, 1), day(2026, 1, 28))
    assert (s.period_days, s.days_recorded, s.days_missing) == (28, 21, 7)
    assert (s.headache_days, s.migraine_days, s.acute_medication_days) == (12, 6, 9)
    assert dict(s.medication_days_by_kind) == {
        "simple_analgesic": 4,
        "triptan": 5,
        "ergot": 0,
        "opioid": 0,
        "combination": 0,
    }
    assert s.headache_days_per_28 == D("16.0")
    assert s.migraine_days_per_28 == D("8.0")
    assert s.acute_medication_days_per_28 == D("12.0")
    assert s.enough_data and s.note is None
    assert_sourced(s.source)
    assert "S13" in s.source


def test_summary_rounds_to_one_place_and_ignores_days_outside_the_window() -> None:
    # 30-day window 1-30 Apr 2026, all recorded, headache on index 0-9 -> 10 days.
    # 10 * 28 / 30 = 9.333... -> 9.3. A day in May is outside the window.
    days = run(day(2026, 4, 1), 31, headache=lambda i: i < 10 or i == 30)
    s = summarise(days, day(2026, 4, 1), day(2026, 4, 30))
    assert (s.days_recorded, s.headache_days, s.headache_days_per_28) == (30, 10, D("9.3"))


def test_summary_with_too_few_days_recorded_says_so() -> None:
    # 19 of 28 days recorded: 19 < 20 -> not enough. 19 headache days -> 19 * 28 / 19 = 28.0.
    days = run(day(2026, 1, 1), 19, headache=lambda i: True)
    s = summarise(days, day(2026, 1, 1), day(2026, 1, 28))
    assert not s.enough_data
    assert s.note is not None and "19 of 28 days recorded" in s.note
    assert s.headache_days_per_28 == D("28.0")
    assert "(unconfirmed)" in s.source  # the 20-of-28 convention is Glabella's


def test_empty_window_and_window_backwards() -> None:
    s = summarise([], day(2026, 1, 1), day(2026, 1, 28))
    assert (s.days_recorded, s.days_missing, s.headache_days_per_28) == (0, 28, None)
    assert not s.enough_data
    with pytest.raises(DiaryError, match="before start"):
        summarise([], day(2026, 1, 2), day(2026, 1, 1))


def baseline_and_two_cycles(cycle2: Callable[[int], bool]) -> list[DiaryDay]:
    # Baseline 1-28 Feb 2026: headache on index % 28 < 20 -> 20 of 28.
    # Cycle 1, 1 Mar - 23 May (84 days): headache on index % 7 < 3 -> 12 weeks * 3 = 36.
    # Cycle 2, 24 May - 15 Aug (84 days): headache per cycle2.
    return (
        run(day(2026, 2, 1), 28, lambda i: i % 28 < 20)
        + run(day(2026, 3, 1), 84, lambda i: i % 7 < 3)
        + run(day(2026, 5, 24), 84, cycle2)
    )


def test_per_cycle_baseline_and_cycles_worked_example() -> None:
    days = baseline_and_two_cycles(lambda i: i % 28 < 9)  # 3 blocks * 9 = 27 days
    report = per_cycle(days, [day(2026, 5, 24), day(2026, 3, 1)])  # order does not matter
    b = report.baseline
    assert (b.start, b.end, b.headache_days, b.headache_days_per_28) == (
        day(2026, 2, 1),
        day(2026, 2, 28),
        20,
        D("20.0"),
    )
    c1, c2 = report.cycles
    # cycle 1: 36 * 28 / 84 = 12.0; ends the day before the next injection
    assert (c1.start, c1.end, c1.period_days) == (day(2026, 3, 1), day(2026, 5, 23), 84)
    assert (c1.headache_days, c1.headache_days_per_28) == (36, D("12.0"))
    # cycle 2 ends on the last recorded day, 24 May + 83 days = 15 Aug: 27 * 28 / 84 = 9.0
    assert (c2.start, c2.end, c2.days_recorded) == (day(2026, 5, 24), day(2026, 8, 15), 84)
    assert (c2.headache_days, c2.headache_days_per_28) == (27, D("9.0"))


def test_per_cycle_responder_on_a_synthetic_diary() -> None:
    # Baseline 20.0, after 2 cycles 9.0: (20 - 9) / 20 = 55 % -> responder (>= 50), continue.
    report = per_cycle(
        baseline_and_two_cycles(lambda i: i % 28 < 9), [day(2026, 3, 1), day(2026, 5, 24)]
    )
    assert report.baseline.headache_days_per_28 is not None
    figures = [c.headache_days_per_28 for c in report.cycles]
    assert None not in figures
    (step,) = continuation(report.baseline.headache_days_per_28, [f or D(0) for f in figures])
    assert step.reduction_pct == D(55)
    assert step.responder.responder and step.nice.responder and not step.stop_suggested


def test_per_cycle_non_responder_on_a_synthetic_diary() -> None:
    # Cycle 2 headache on index % 28 < 16 -> 48 days -> 48 * 28 / 84 = 16.0.
    # (20 - 16) / 20 = 20 % < 30 % -> not a responder, NICE stop after 2 cycles.
    report = per_cycle(
        baseline_and_two_cycles(lambda i: i % 28 < 16), [day(2026, 3, 1), day(2026, 5, 24)]
    )
    assert report.cycles[1].headache_days_per_28 == D("16.0")
    (step,) = continuation(D("20.0"), [D("12.0"), D("16.0")])
    assert step.reduction_pct == D(20)
    assert not step.responder.responder and not step.nice.responder and step.stop_suggested


def test_per_cycle_last_cycle_with_nothing_recorded_and_bad_injection_dates() -> None:
    report = per_cycle(run(day(2026, 2, 1), 28, lambda i: True), [day(2026, 3, 1)])
    (only,) = report.cycles
    assert (only.start, only.end, only.days_recorded) == (day(2026, 3, 1), day(2026, 3, 1), 0)
    with pytest.raises(DiaryError, match="at least one injection date"):
        per_cycle([], [])
    with pytest.raises(DiaryError, match="same date is given twice"):
        per_cycle([], [day(2026, 3, 1), day(2026, 3, 1)])


# --------------------------------------------------------------------------------------------
# Medication overuse

END = day(2026, 6, 30)
# Three 30-day months ending 30 Jun 2026: 2 Apr - 1 May, 2 May - 31 May, 1 Jun - 30 Jun;
# the diary below covers all 90 days (index 0 = 2 Apr; each month is index 30k .. 30k + 29).
START = day(2026, 4, 2)


def test_months_counted_for_overuse() -> None:
    result = medication_overuse(run(START, 90, lambda i: True), END)
    assert result.months == (
        (day(2026, 4, 2), day(2026, 5, 1)),
        (day(2026, 5, 2), day(2026, 5, 31)),
        (day(2026, 6, 1), day(2026, 6, 30)),
    )
    assert not result.overuse and result.days_missing == 0 and result.note is None


def test_triptan_on_10_days_a_month_for_3_months_is_overuse() -> None:
    # triptan on index % 30 < 10 -> 10 days in each month; 10 >= 10 in all 3 months.
    days = run(START, 90, lambda i: True, meds=lambda i: TRIPTAN if i % 30 < 10 else NONE)
    result = medication_overuse(days, END)
    assert result.overuse
    assert result.fired == ("10-days-triptan-ergot-opioid-combination",)
    triptan_rule = result.rules[0]
    assert triptan_rule.days_per_month == (10, 10, 10)
    assert triptan_rule.min_days_per_month == 10
    assert "ICHD-3" in result.source and "[S106]" in result.source
    from glabella.clinical import sources

    assert "Cephalalgia 2018;38(1):1-211" in sources.get("S106").citation
    assert result.status == "secondary" and "(secondary)" in result.source
    assert "triptans" in result.source


def test_simple_analgesic_on_15_days_a_month_is_overuse() -> None:
    # simple analgesic on index % 30 < 15 -> 15 days a month; 15 >= 15.
    days = run(START, 90, lambda i: True, meds=lambda i: SIMPLE if i % 30 < 15 else NONE)
    result = medication_overuse(days, END)
    assert result.fired == ("15-days-simple-analgesic",)
    assert result.rules[1].days_per_month == (15, 15, 15)


def test_triptan_and_opioid_days_add_up() -> None:
    # triptan index % 30 < 5, opioid 5 <= index % 30 < 10 -> 5 + 5 = 10 days a month of the
    # 10-day classes together.
    days = run(
        START,
        90,
        lambda i: True,
        meds=lambda i: TRIPTAN if i % 30 < 5 else OPIOID if i % 30 < 10 else NONE,
    )
    assert medication_overuse(days, END).overuse


def test_near_miss_is_not_overuse() -> None:
    # triptan index % 30 < 9 -> 9 days a month (< 10); simple analgesic 9 <= index % 30 < 23
    # -> 14 days a month (< 15). Neither rule fires.
    days = run(
        START,
        90,
        lambda i: True,
        meds=lambda i: TRIPTAN if i % 30 < 9 else SIMPLE if i % 30 < 23 else NONE,
    )
    result = medication_overuse(days, END)
    assert not result.overuse and result.fired == ()
    assert [r.days_per_month for r in result.rules] == [(9, 9, 9), (14, 14, 14)]
    assert "No ICHD-3 8.2" in result.source


def test_overuse_in_only_the_last_two_months_is_not_3_months() -> None:
    # triptan on 10 days a month from index 30 on only: months (0, 10, 10) -> not regular > 3 mo.
    days = run(
        START, 90, lambda i: True, meds=lambda i: TRIPTAN if i >= 30 and i % 30 < 10 else NONE
    )
    result = medication_overuse(days, END)
    assert result.rules[0].days_per_month == (0, 10, 10) and not result.overuse


def test_missing_days_make_the_counts_a_minimum() -> None:
    days = run(START, 80, lambda i: True)  # 90 - 80 = 10 days not recorded
    result = medication_overuse(iter(days), END)
    assert result.days_missing == 10
    assert result.note is not None and "10 of 90 days not recorded" in result.note


# --------------------------------------------------------------------------------------------
# Continue or stop


def test_continuation_responder_after_2_and_3_cycles() -> None:
    # after 2: (20 - 9) / 20 = 11 / 20 = 55 %; after 3: (20 - 8) / 20 = 60 %.
    two, three = continuation(20, [14, 9, 8])
    assert (two.after_cycles, two.reduction_pct) == (2, D(55))
    assert (three.after_cycles, three.reduction_pct) == (3, D(60))
    for step in (two, three):
        assert step.responder.responder and step.nice.responder and not step.stop_suggested
        assert step.responder.rule == "headache-days-50-percent"
        assert step.nice.rule == "headache-days-30-percent"
        assert "S19" in step.stop_source
        assert_sourced(step.responder.source)
        assert_sourced(step.stop_source)
    assert two.stop_text.startswith("Continue: 55.0% reduction after 2 cycles")


def test_continuation_nice_responder_but_not_trial_responder() -> None:
    # (20 - 13) / 20 = 35 %: >= 30 (continue) but < 50 (not a trial responder).
    (step,) = continuation(D("20.0"), [D("18.0"), D("13.0")])
    assert step.reduction_pct == D(35)
    assert not step.responder.responder and step.nice.responder and not step.stop_suggested


def test_continuation_non_responder_stop_suggested() -> None:
    # after 2: (20 - 16) / 20 = 20 %; after 3: (20 - 15) / 20 = 25 %; both < 30 -> stop.
    two, three = continuation(20, [19, 16, 15])
    assert (two.reduction_pct, three.reduction_pct) == (D(20), D(25))
    assert two.stop_suggested and three.stop_suggested
    assert two.stop_text.startswith("Stop suggested: 20.0% reduction after 2 cycles is below 30%")


def test_continuation_thresholds_are_inclusive() -> None:
    # (20 - 14) / 20 = 30 % exactly -> continue; (20 - 10) / 20 = 50 % exactly -> responder.
    (at30,) = continuation(20, [20, 14])
    assert at30.nice.responder and not at30.stop_suggested and not at30.responder.responder
    (at50,) = continuation(20, [20, 10])
    assert at50.responder.responder


def test_continuation_needs_two_cycles_and_a_baseline() -> None:
    assert continuation(20, [10]) == ()
    with pytest.raises(ScaleError, match="0 headache days"):
        continuation(0, [0, 0])


# --------------------------------------------------------------------------------------------
# Properties

diary_days = st.lists(
    st.builds(
        lambda offset, h, m, kinds: DiaryDay(
            date=day(2026, 1, 1) + dt.timedelta(days=offset),
            headache=h,
            migraine=h and m,
            acute_medication=frozenset(kinds),
        ),
        st.integers(min_value=-10, max_value=60),
        st.booleans(),
        st.booleans(),
        st.sets(st.sampled_from(MEDICATION_KINDS)),
    ),
    max_size=80,
)


@given(diary_days, st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_counts_never_exceed_days_recorded(days: list[DiaryDay], a: int, length: int) -> None:
    start = day(2026, 1, 1) + dt.timedelta(days=a)
    s = summarise(days, start, start + dt.timedelta(days=length))
    assert s.days_recorded + s.days_missing == s.period_days == length + 1
    assert s.migraine_days <= s.headache_days <= s.days_recorded
    assert s.acute_medication_days <= s.days_recorded
    for _, count in s.medication_days_by_kind:
        assert count <= s.acute_medication_days
    if s.headache_days_per_28 is not None:
        assert D(0) <= s.headache_days_per_28 <= D(28)
