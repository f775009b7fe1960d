"""Outcome scales scored as the reference defines them; responder rules with their sources."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glabella.clinical import sources
from glabella.clinical.scales import (
    SCALE_IDS,
    ScaleError,
    hdss_responder,
    headache_days_reduction_pct,
    headache_days_responder,
    hit6_responder,
    nice_continuation,
    responder_rules,
    score,
    wrinkle_responder,
)

D = Decimal
HIT6_VALUES = (6, 8, 10, 11, 13)
HIT6_BY_TOTAL: dict[int, tuple[int, ...]] = {}
for combo in itertools.combinations_with_replacement(HIT6_VALUES, 6):
    HIT6_BY_TOTAL.setdefault(sum(combo), combo)


def assert_sourced(text: str) -> None:
    ids = re.findall(r"\bS\d+\b", text)
    assert ids, text
    for sid in ids:
        sources.get(sid)
    assert re.search(r"\((confirmed|secondary|unconfirmed)\)", text)


@pytest.mark.parametrize(
    ("grade", "band"), [(0, "none"), (1, "mild"), (2, "moderate"), (3, "severe")]
)
def test_facial_wrinkle_scale_grades_0_to_3(grade: int, band: str) -> None:
    result = score("facial-wrinkle-scale", grade)
    assert (result.value, result.band) == (grade, band)
    assert_sourced(result.source)


def test_merz_aesthetics_scale_has_a_fifth_grade() -> None:
    assert score("merz-aesthetics-scale", 4).band == "very severe"
    with pytest.raises(ScaleError, match="outside 0-3"):
        score("facial-wrinkle-scale", 4)


@pytest.mark.parametrize("answer", [-1, 5, "2", 2.0, True, None, [2]])
def test_wrinkle_grade_must_be_a_whole_number_in_range(answer: object) -> None:
    with pytest.raises(ScaleError):
        score("merz-aesthetics-scale", answer)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (36, "little or no impact"),
        (49, "little or no impact"),
        (50, "some impact"),
        (55, "some impact"),
        (56, "substantial impact"),
        (59, "substantial impact"),
        (60, "severe impact"),
        (78, "severe impact"),
    ],
)
def test_hit6_total_and_band_boundaries(total: int, band: str) -> None:
    result = score("hit-6", list(HIT6_BY_TOTAL[total]))
    assert result.value == total and result.band == band
    assert_sourced(result.source)
    assert (
        "(unconfirmed)" in result.source
    )  # the 6/8/10/11/13 answer scores are not in the reference


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([6, 6, 6, 6, 6, 7], "item 6: 7 is not an answer score"),
        ([6, 6, 6, 6, 6], "expected 6 item answers, got 5"),
        ([6, 6, 6, 6, 6, 6, 6], "expected 6 item answers, got 7"),
        ([6, 6, 6, 6, 6, "13"], "item 6: '13' is not a whole number"),
        ("666666", "expected a list of 6"),
        (60, "expected a list of 6"),
    ],
)
def test_hit6_rejects_invalid_answers_with_a_clear_message(answers: object, message: str) -> None:
    with pytest.raises(ScaleError, match=re.escape(message)):
        score("hit-6", answers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answers", "grade", "band"),
    [
        ([0, 0, 0, 0, 0], "I", "little or no disability"),
        ([1, 1, 1, 1, 1], "I", "little or no disability"),
        ([2, 1, 1, 1, 1], "II", "mild"),
        ([2, 2, 2, 2, 2], "II", "mild"),
        ([3, 2, 2, 2, 2], "III", "moderate"),
        ([4, 4, 4, 4, 4], "III", "moderate"),
        ([5, 4, 4, 4, 4], "IV", "severe"),
        ([92, 92, 92, 92, 92], "IV", "severe"),
    ],
)
def test_midas_grades_at_their_boundaries(answers: list[int], grade: str, band: str) -> None:
    result = score("midas", answers)
    assert result.value == sum(answers)
    assert (result.grade, result.band) == (grade, band)
    assert_sourced(result.source)


@pytest.mark.parametrize(
    "answers", [[0, 0, 0, 0, 93], [0, 0, 0, 0, -1], [0, 0, 0, 0], [0, 0, 0, 0, 1.5]]
)
def test_midas_rejects_impossible_day_counts(answers: list[object]) -> None:
    with pytest.raises(ScaleError, match="MIDAS"):
        score("midas", answers)  # type: ignore[arg-type]


@pytest.mark.parametrize("grade", [1, 2, 3, 4])
def test_hdss_grades_1_to_4(grade: int) -> None:
    result = score("hdss", grade)
    assert result.value == grade and result.band
    assert_sourced(result.source)


@pytest.mark.parametrize("grade", [0, 5])
def test_hdss_rejects_grades_outside_1_to_4(grade: int) -> None:
    with pytest.raises(ScaleError, match="outside 1-4"):
        score("hdss", grade)


def test_headache_days_are_normalised_to_28_days() -> None:
    assert score("headache-days", {"headache_days": 14, "period_days": 28}).value == 14
    assert score("headache-days", {"headache_days": 15, "period_days": 30}).value == 14
    result = score("headache-days", {"headache_days": 10, "period_days": 14})
    assert result.value == 20 and result.band.startswith("chronic range")
    assert_sourced(result.source)


def test_headache_days_band_at_the_chronic_threshold() -> None:
    assert score("headache-days", {"headache_days": 14, "period_days": 28}).band.startswith(
        "episodic"
    )
    assert score("headache-days", {"headache_days": 15, "period_days": 28}).band.startswith(
        "chronic"
    )


@pytest.mark.parametrize(
    "answers",
    [
        {"headache_days": 29, "period_days": 28},
        {"headache_days": -1, "period_days": 28},
        {"headache_days": 1, "period_days": 0},
        {"headache_days": 1},
        {"headache_days": 1, "period_days": 28, "extra": 1},
        {"headache_days": "3", "period_days": 28},
        [3, 28],
    ],
)
def test_headache_days_reject_impossible_counts(answers: object) -> None:
    with pytest.raises(ScaleError, match="headache-days"):
        score("headache-days", answers)  # type: ignore[arg-type]


def test_unknown_scale_is_a_scale_error() -> None:
    with pytest.raises(ScaleError, match="Unknown scale 'vas'"):
        score("vas", 3)
    assert issubclass(ScaleError, ValueError)


# ------------------------------------------------------------------------------------------
# Responder rules


def test_wrinkle_responder_needs_two_grades_of_improvement() -> None:
    yes = wrinkle_responder(3, 1)
    assert yes.responder and yes.change == 2 and yes.threshold == 2
    assert not wrinkle_responder(3, 2).responder
    assert not wrinkle_responder(1, 3).responder
    assert wrinkle_responder(4, 2, "merz-aesthetics-scale").responder
    assert_sourced(yes.source)
    with pytest.raises(ScaleError):
        wrinkle_responder(4, 2)  # 4 is not on the 0-3 scale
    with pytest.raises(ScaleError, match="not a wrinkle scale"):
        wrinkle_responder(3, 1, "hdss")


def test_hdss_responder_needs_two_grades_of_improvement() -> None:
    assert hdss_responder(4, 2).responder
    assert not hdss_responder(4, 3).responder
    assert_sourced(hdss_responder(3, 1).source)


def test_hit6_responder_needs_a_five_point_fall() -> None:
    assert hit6_responder(65, 60).responder
    assert not hit6_responder(65, 61).responder
    with pytest.raises(ScaleError, match="outside 36-78"):
        hit6_responder(80, 60)
    assert_sourced(hit6_responder(65, 60).source)


def test_fifty_percent_headache_day_responder() -> None:
    yes = headache_days_responder(20, 10)
    assert yes.responder and yes.change == 50
    assert not headache_days_responder(20, 11).responder
    assert headache_days_responder(D("14.5"), D("7.25")).responder
    assert_sourced(yes.source)


def test_nice_ta260_continuation_needs_a_thirty_percent_reduction() -> None:
    assert nice_continuation(20, 14).responder  # 30 %
    stop = nice_continuation(20, 15)  # 25 %
    assert not stop.responder and stop.change == 25
    assert "S19" in stop.source
    assert headache_days_reduction_pct(20, 24) == -20


@pytest.mark.parametrize(
    ("baseline", "follow_up"), [(0, 0), (29, 3), (20, -1), (D("NaN"), 3), ("20", 3)]
)
def test_headache_day_responders_reject_impossible_counts(
    baseline: object, follow_up: object
) -> None:
    with pytest.raises(ScaleError):
        headache_days_responder(baseline, follow_up)  # type: ignore[arg-type]


def test_every_responder_rule_is_sourced() -> None:
    rules = responder_rules()
    assert {r[0] for r in rules} == {
        "wrinkle-2-grade",
        "headache-days-50-percent",
        "headache-days-30-percent",
        "hit-6-5-points",
        "hdss-2-grades",
    }
    for _, text, citation in rules:
        assert text
        assert_sourced(citation)


# ------------------------------------------------------------------------------------------
# Properties

RANGES = {
    "facial-wrinkle-scale": (0, 3),
    "merz-aesthetics-scale": (0, 4),
    "hdss": (1, 4),
    "hit-6": (36, 78),
    "midas": (0, 460),
    "headache-days": (0, 28),
}


@given(st.data())
def test_valid_answers_always_score_within_range(data: st.DataObject) -> None:
    scale = data.draw(st.sampled_from(SCALE_IDS))
    if scale in ("facial-wrinkle-scale", "merz-aesthetics-scale", "hdss"):
        low, high = RANGES[scale]
        answers: object = data.draw(st.integers(min_value=low, max_value=high))
    elif scale == "hit-6":
        answers = data.draw(st.lists(st.sampled_from(HIT6_VALUES), min_size=6, max_size=6))
    elif scale == "midas":
        answers = data.draw(
            st.lists(st.integers(min_value=0, max_value=92), min_size=5, max_size=5)
        )
    else:
        period = data.draw(st.integers(min_value=1, max_value=120))
        answers = {
            "headache_days": data.draw(st.integers(min_value=0, max_value=period)),
            "period_days": period,
        }
    result = score(scale, answers)  # type: ignore[arg-type]
    low, high = RANGES[scale]
    assert low <= result.value <= high
    assert result.band


@given(
    st.sampled_from(SCALE_IDS),
    st.one_of(
        st.integers(),
        st.lists(st.integers(min_value=-100, max_value=100), max_size=8),
        st.dictionaries(st.text(max_size=12), st.integers(), max_size=3),
        st.text(max_size=5),
        st.none(),
    ),
)
def test_any_answers_score_or_raise_scale_error_only(scale: str, answers: object) -> None:
    try:
        result = score(scale, answers)  # type: ignore[arg-type]
    except ScaleError:
        return
    low, high = RANGES[scale]
    assert low <= result.value <= high
