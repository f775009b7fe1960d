"""Duration of effect per patient: Kaplan-Meier, personal recall, the fading-response flag."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glabella.clinical.duration import (
    Episode,
    KMStep,
    fading_response,
    kaplan_meier,
    personal_duration,
)
from glabella.clinical.safety import PastTreatment
from glabella.clinical.schedule import DurationOutcome, next_due

D = Decimal
START = date(2025, 1, 6)
TODAY = date(2026, 6, 1)


def returned(days: int, units: str = "20", *, on: date = START, **kw: str) -> Episode:
    """An episode whose effect returned ``days`` after treatment."""
    return Episode(
        on,
        D(units),
        kw.get("product", "botox_cosmetic"),
        kw.get("indication", "glabellar-lines"),
        returned_on=on + timedelta(days=days),
    )


def retreated(days: int, units: str = "20", *, on: date = START) -> Episode:
    """Re-treated ``days`` after treatment, before any return was recorded (censored)."""
    return Episode(
        on, D(units), "botox_cosmetic", "glabellar-lines", next_treated_on=on + timedelta(days)
    )


def series(*durations: int, units: list[str] | None = None) -> list[Episode]:
    """Consecutive recorded episodes, each treated the day after the previous one returned."""
    doses = units if units is not None else ["20"] * len(durations)
    episodes, on = [], START
    for days, dose in zip(durations, doses, strict=True):
        episodes.append(returned(days, dose, on=on))
        on += timedelta(days=days + 1)
    return episodes


# --- Episode -----------------------------------------------------------------------------


def test_return_before_treatment_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"cannot return \(2025-01-05\) before the treatment"):
        Episode(START, D(20), "botox", "chronic-migraine", returned_on=START - timedelta(1))
    with pytest.raises(ValueError, match="next treatment"):
        Episode(START, D(20), "botox", "chronic-migraine", next_treated_on=START - timedelta(1))
    with pytest.raises(ValueError, match="units"):
        Episode(START, D(0), "botox", "chronic-migraine")


def test_observation_is_an_event_or_censored_at_retreatment_or_today() -> None:
    assert returned(95).observation(TODAY) == (95, True)
    assert retreated(80).observation(TODAY) == (80, False)
    still_working = Episode(TODAY - timedelta(30), D(20), "botox", "chronic-migraine")
    assert still_working.observation(TODAY) == (30, False)
    with pytest.raises(ValueError, match="before the treatment"):
        still_working.observation(TODAY - timedelta(31))


# --- Kaplan-Meier ------------------------------------------------------------------------


def test_kaplan_meier_matches_a_worked_example_with_ties_and_censoring() -> None:
    # Durations (+ = censored): 60, 70, 70, 80+, 90, 90+, 100, 120+   (n = 8)
    # day  at risk  events  censored  S(t)
    #  60     8       1        0      1 * (1 - 1/8)        = 7/8     = 0.875
    #  70     7       2        0      7/8 * (1 - 2/7)      = 5/8     = 0.625
    #  80     5       0        1      unchanged                      = 0.625
    #  90     4       1        1      5/8 * (1 - 1/4)      = 15/32   = 0.46875
    #         (the 90+ is still at risk on day 90: it leaves after that day's return)
    # 100     2       1        0      15/32 * (1 - 1/2)    = 15/64   = 0.234375
    # 120     1       0        1      unchanged                      = 0.234375
    # Median: first day with S <= 0.5 -> 90.
    episodes = [
        returned(60),
        returned(70),
        returned(70),
        retreated(80),
        returned(90),
        retreated(90),
        returned(100),
        retreated(120),
    ]
    curve = kaplan_meier(episodes, TODAY)
    assert curve.steps == (
        KMStep(60, pytest.approx(0.875), 8, 1, 0),  # type: ignore[arg-type]
        KMStep(70, pytest.approx(0.625), 7, 2, 0),  # type: ignore[arg-type]
        KMStep(80, pytest.approx(0.625), 5, 0, 1),  # type: ignore[arg-type]
        KMStep(90, pytest.approx(0.46875), 4, 1, 1),  # type: ignore[arg-type]
        KMStep(100, pytest.approx(0.234375), 2, 1, 0),  # type: ignore[arg-type]
        KMStep(120, pytest.approx(0.234375), 1, 0, 1),  # type: ignore[arg-type]
    )
    assert curve.median_days == 90
    assert curve.events == 5


def test_kaplan_meier_median_is_none_when_survival_never_reaches_half() -> None:
    # 100, 110+, 120+, 130+: S(100) = 3/4, never <= 0.5.
    curve = kaplan_meier([returned(100), retreated(110), retreated(120), retreated(130)], TODAY)
    assert curve.median_days is None
    assert kaplan_meier([], TODAY).steps == ()


def test_kaplan_meier_still_working_is_censored_at_today() -> None:
    # 90 (event), and one treated 40 days ago still working: censored at 40.
    # day 40: at risk 2, censored 1, S = 1; day 90: at risk 1, event -> S = 0; median 90.
    running = Episode(TODAY - timedelta(40), D(20), "botox_cosmetic", "glabellar-lines")
    curve = kaplan_meier([returned(90), running], TODAY)
    assert [(s.day, s.survival, s.at_risk) for s in curve.steps] == [(40, 1.0, 2), (90, 0.0, 1)]
    assert curve.median_days == 90


def test_mixing_indications_or_families_is_refused() -> None:
    with pytest.raises(ValueError, match="per indication and product family"):
        kaplan_meier([returned(90), returned(90, product="dysport")], TODAY)
    with pytest.raises(ValueError, match="per indication and product family"):
        kaplan_meier([returned(90), returned(90, indication="crows-feet")], TODAY)
    # Botox and Botox Cosmetic are one family.
    assert kaplan_meier([returned(90), returned(80, product="botox")], TODAY).median_days == 80


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.booleans()),
        min_size=0,
        max_size=30,
    )
)
def test_survival_is_non_increasing_within_0_1_and_median_within_event_range(
    observations: list[tuple[int, bool]],
) -> None:
    episodes = [returned(d) if event else retreated(d) for d, event in observations]
    curve = kaplan_meier(episodes, TODAY)
    previous = 1.0
    for step in curve.steps:
        assert 0.0 <= step.survival <= previous
        previous = step.survival
    assert [s.day for s in curve.steps] == sorted({d for d, _ in observations})
    event_days = [d for d, event in observations if event]
    if curve.median_days is not None:
        assert min(event_days) <= curve.median_days <= max(event_days)
    if not event_days:
        assert curve.median_days is None


# --- personal duration and next_due ------------------------------------------------------


def test_personal_duration_needs_min_events_recorded_returns() -> None:
    assert personal_duration([returned(100)], TODAY) is None
    assert personal_duration([returned(100), retreated(80), retreated(90)], TODAY) is None
    assert personal_duration([returned(100)], TODAY, min_events=1) == DurationOutcome(100)
    assert personal_duration([returned(100), returned(110)], TODAY) == DurationOutcome(100)
    with pytest.raises(ValueError, match="min_events"):
        personal_duration([returned(100)], TODAY, min_events=0)


def test_personal_duration_same_day_return_still_gives_a_positive_median() -> None:
    assert personal_duration([returned(0), returned(0)], TODAY) == DurationOutcome(1)


@pytest.mark.parametrize(
    ("product", "indication", "minimum"),
    [("botox", "chronic-migraine", 84), ("botox_cosmetic", "glabellar-lines", 90)],
)
def test_next_due_moves_with_recorded_durations_never_before_the_minimum(
    product: str, indication: str, minimum: int
) -> None:
    last = date(2026, 3, 2)
    history = [PastTreatment(last, product, indication, D(20))]

    def due(*durations: int) -> date | None:
        episodes = [returned(d, product=product, indication=indication) for d in durations]
        outcome = personal_duration(episodes, TODAY)
        return next_due(history, indication, outcomes=outcome)

    assert due(140, 150, 160) == last + timedelta(days=150)
    assert due(110, 120, 130) == last + timedelta(days=120)
    # A patient whose effect wears off sooner than the minimum is still not due before it.
    assert due(50, 60, 70) == last + timedelta(days=minimum)
    # Too few recorded returns: the usual interval applies (not the personal one).
    assert due(150) == next_due(history, indication)


# --- fading response ---------------------------------------------------------------------


def test_fading_with_steady_dose_is_flagged_as_an_unconfirmed_heuristic() -> None:
    # 120 -> 100 (-17 %) -> 80 (-20 %), dose 20 -> 20 -> 22.
    result = fading_response(series(120, 100, 80, units=["20", "20", "22"]))
    assert result.flagged
    assert result.status == "unconfirmed"
    assert "120, 100, 80 days" in result.reason
    assert "heuristic" in result.reason and "heuristic" in result.rule


def test_fading_allows_a_small_dose_dip_within_95_percent() -> None:
    # 20 -> 19 is 95 %: still steady.
    assert fading_response(series(120, 100, 80, units=["20", "19", "19"])).flagged


def test_fading_with_falling_dose_is_not_flagged() -> None:
    # 20 -> 18 is 90 % of the previous dose: the shortening may be the lower dose.
    result = fading_response(series(120, 100, 80, units=["20", "18", "16"]))
    assert not result.flagged
    assert result.status == "unconfirmed"


def test_noisy_but_not_monotonic_durations_are_not_flagged() -> None:
    assert not fading_response(series(120, 90, 110, 80)).flagged
    # Shorter each time but by less than 15 %: 120 -> 110 (-8 %).
    assert not fading_response(series(120, 110, 90)).flagged


def test_an_earlier_fading_run_that_recovered_is_not_flagged() -> None:
    assert fading_response(series(120, 100, 80, 120)).flagged is False
    assert fading_response(series(130, 120, 100, 80)).flagged


def test_too_few_recorded_episodes_are_not_flagged() -> None:
    result = fading_response([*series(120, 90), retreated(60)])
    assert not result.flagged
    assert "Only 2 recorded" in result.reason
    assert not fading_response([]).flagged
