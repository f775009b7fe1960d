"""Outcome scales and responder rules, scored exactly as the reference defines them.

``score(scale_id, answers)`` returns a :class:`Score` (value, band, grade, source). Scales:

============================  ==============================================  ==================
scale id                      answers                                         value
============================  ==============================================  ==================
``facial-wrinkle-scale``      one grade, 0-3 (none, mild, moderate, severe)   0-3
``merz-aesthetics-scale``     one grade, 0-4 (... very severe)                0-4
``hit-6``                     6 item scores, each 6, 8, 10, 11 or 13          36-78
``midas``                     5 item day counts, each 0-92 (3-month recall)   0-460, grade I-IV
``hdss``                      one grade, 1-4                                  1-4
``headache-days``             {"headache_days": n, "period_days": d}          days per 28 days
============================  ==============================================  ==================

Invalid answers raise :class:`ScaleError` (a ``ValueError``) saying what is wrong. Responder
rules (:func:`wrinkle_responder`, :func:`headache_days_responder`, :func:`nice_continuation`,
:func:`hit6_responder`, :func:`hdss_responder`) return a :class:`Response` with their source.
Values are ``Decimal``; nothing is rounded here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from glabella.clinical import _reference
from glabella.clinical._reference import Status

__all__ = [
    "SCALE_IDS",
    "Answers",
    "Response",
    "ScaleError",
    "Score",
    "hdss_responder",
    "headache_days_reduction_pct",
    "headache_days_responder",
    "hit6_responder",
    "nice_continuation",
    "responder_rules",
    "scale_name",
    "score",
    "wrinkle_responder",
]

SCALE_IDS: tuple[str, ...] = (
    "facial-wrinkle-scale",
    "merz-aesthetics-scale",
    "hit-6",
    "midas",
    "hdss",
    "headache-days",
)

Answers = int | Sequence[int] | Mapping[str, int]


class ScaleError(ValueError):
    """Answers that cannot be scored (wrong count, out of range, not a whole number...)."""


@dataclass(frozen=True, slots=True)
class Score:
    """A scored scale. ``band`` is the reference's words for the value (e.g. "some impact");
    ``grade`` is the MIDAS grade (I-IV) where there is one."""

    value: Decimal
    band: str
    scale_id: str
    grade: str | None
    source: str
    status: Status


@dataclass(frozen=True, slots=True)
class Response:
    """The result of a responder rule: ``change`` is the improvement (positive = better) in the
    rule's unit (grades, points or percent), ``threshold`` the improvement needed."""

    responder: bool
    change: Decimal
    threshold: Decimal
    rule: str
    text: str
    source: str
    status: Status


# --------------------------------------------------------------------------------------------
# Reference


@cache
def _data() -> Mapping[str, Any]:
    data: Mapping[str, Any] = _reference.load("scales")
    if tuple(data["scales"]) != SCALE_IDS:
        raise ValueError(f"reference/scales.json: scale ids differ from {SCALE_IDS}")
    return data


def _scale(scale_id: str) -> Mapping[str, Any]:
    scales: Mapping[str, Any] = _data()["scales"]
    if scale_id not in scales:
        raise ScaleError(f"Unknown scale {scale_id!r}: known scales are {', '.join(SCALE_IDS)}")
    entry: Mapping[str, Any] = scales[scale_id]
    return entry


def _cite(basis: str, sources: Sequence[str], status: Status) -> str:
    ids = ", ".join(sources) if sources else "no source in the reference"
    return f"{basis} [{ids}] ({status})"


def _scale_source(scale_id: str) -> tuple[str, Status]:
    entry = _scale(scale_id)
    ref = entry["reference"]
    st = _reference.status(ref["status"])
    return _cite(str(entry["name"]), [str(s) for s in ref["sources"]], st), st


def scale_name(scale_id: str) -> str:
    """Display name of a scale (unknown ids raise :class:`ScaleError`)."""
    return str(_scale(scale_id)["name"])


def _rule(rule_id: str) -> Mapping[str, Any]:
    for row in _data()["responders"]:
        if row["id"] == rule_id:
            found: Mapping[str, Any] = row
            return found
    raise LookupError(f"reference/scales.json has no responder rule {rule_id!r}")


def responder_rules() -> list[tuple[str, str, str]]:
    """(rule id, what it says, source citation) of every responder rule."""
    return [
        (
            str(row["id"]),
            str(row["text"]),
            _cite(
                str(row["text"]),
                [str(s) for s in row["sources"]],
                _reference.status(row["status"]),
            ),
        )
        for row in _data()["responders"]
    ]


# --------------------------------------------------------------------------------------------
# Validation


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScaleError(f"{what}: {value!r} is not a whole number")
    return value


def _number(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ScaleError(f"{what}: {value!r} is not a number (use a whole number or Decimal)")
    number = Decimal(value)
    if not number.is_finite():
        raise ScaleError(f"{what}: {value!r} is not a finite number")
    return number


def _grade_in(value: object, low: int, high: int, what: str) -> int:
    grade = _whole(value, what)
    if not low <= grade <= high:
        raise ScaleError(f"{what}: {grade} is outside {low}-{high}")
    return grade


def _items(answers: object, count: int, what: str) -> list[object]:
    if isinstance(answers, (str, bytes, Mapping)) or not isinstance(answers, Sequence):
        raise ScaleError(f"{what}: expected a list of {count} item answers, got {answers!r}")
    if len(answers) != count:
        raise ScaleError(f"{what}: expected {count} item answers, got {len(answers)}")
    return list(answers)


# --------------------------------------------------------------------------------------------
# Scoring


def _grade_scale(scale_id: str, answers: object) -> Score:
    entry = _scale(scale_id)
    ref = entry["reference"]
    low, high = (int(v) for v in ref["range"])
    grade = _grade_in(answers, low, high, scale_name(scale_id))
    source, st = _scale_source(scale_id)
    return Score(
        value=Decimal(grade),
        band=str(ref["grades"][str(grade)]),
        scale_id=scale_id,
        grade=None,
        source=source,
        status=st,
    )


def _hit6(answers: object) -> Score:
    entry = _scale("hit-6")
    ref = entry["reference"]
    allowed = [int(v) for v in entry["item_values"]]
    items = _items(answers, int(entry["items"]), "HIT-6")
    total = 0
    for n, item in enumerate(items, start=1):
        value = _whole(item, f"HIT-6 item {n}")
        if value not in allowed:
            raise ScaleError(
                f"HIT-6 item {n}: {value} is not an answer score; each item scores "
                f"{', '.join(map(str, allowed))}"
            )
        total += value
    band = ""
    for row in ref["bands"]:
        if int(row.get("min", total)) <= total <= int(row["max"]):
            band = str(row["label"])
            break
    source, st = _scale_source("hit-6")
    item_status = _reference.status(entry["item_values_status"])
    if item_status == "unconfirmed":
        source += (
            "; item answer scores 6/8/10/11/13 from the HIT-6 instrument "
            f"[{', '.join(entry['item_values_sources'])}] (unconfirmed)"
        )
    return Score(
        value=Decimal(total), band=band, scale_id="hit-6", grade=None, source=source, status=st
    )


def _midas(answers: object) -> Score:
    entry = _scale("midas")
    ref = entry["reference"]
    top = int(entry["item_max_days"])
    items = _items(answers, int(entry["items"]), "MIDAS")
    total = 0
    for n, item in enumerate(items, start=1):
        days = _whole(item, f"MIDAS item {n}")
        if not 0 <= days <= top:
            raise ScaleError(
                f"MIDAS item {n}: {days} days is outside 0-{top} (days in the last 3 months)"
            )
        total += days
    for row in ref["grades"]:
        upper = row["max"]
        if int(row["min"]) <= total and (upper is None or total <= int(upper)):
            source, st = _scale_source("midas")
            return Score(
                value=Decimal(total),
                band=str(row["label"]),
                scale_id="midas",
                grade=str(row["grade"]),
                source=source,
                status=st,
            )
    raise ScaleError(f"MIDAS: total {total} fits no grade")  # pragma: no cover


def _headache_days(answers: object) -> Score:
    entry = _scale("headache-days")
    if not isinstance(answers, Mapping):
        raise ScaleError(
            f"headache-days: expected {{'headache_days': n, 'period_days': d}}, got {answers!r}"
        )
    unknown = set(answers) - {"headache_days", "period_days"}
    if unknown or "headache_days" not in answers or "period_days" not in answers:
        raise ScaleError(
            "headache-days: expected exactly the keys 'headache_days' and 'period_days', "
            f"got {sorted(map(str, answers))}"
        )
    days = _whole(answers["headache_days"], "headache-days headache_days")
    period = _whole(answers["period_days"], "headache-days period_days")
    if period < 1:
        raise ScaleError(f"headache-days period_days: {period} must be at least 1 day")
    if not 0 <= days <= period:
        raise ScaleError(
            f"headache-days headache_days: {days} is outside 0-{period} (the days counted)"
        )
    per = int(entry["per_days"])
    value = Decimal(days) * per / Decimal(period)
    threshold = int(entry["chronic_threshold_days"])
    band = (
        f"chronic range ({threshold} or more per {per} days)"
        if value >= threshold
        else f"episodic range (fewer than {threshold} per {per} days)"
    )
    st = _reference.status(entry["per_days_status"])
    source = (
        _cite(
            f"Headache days per {per} days (diary)", [str(s) for s in entry["per_days_sources"]], st
        )
        + "; "
        + _cite(
            f"chronic threshold {threshold} headache days a month",
            [str(s) for s in entry["chronic_threshold_sources"]],
            _reference.status(entry["chronic_threshold_status"]),
        )
    )
    return Score(
        value=value, band=band, scale_id="headache-days", grade=None, source=source, status=st
    )


def score(scale_id: str, answers: Answers) -> Score:
    """Score one assessment; invalid answers raise :class:`ScaleError`."""
    if scale_id in ("facial-wrinkle-scale", "merz-aesthetics-scale", "hdss"):
        return _grade_scale(scale_id, answers)
    if scale_id == "hit-6":
        return _hit6(answers)
    if scale_id == "midas":
        return _midas(answers)
    if scale_id == "headache-days":
        return _headache_days(answers)
    raise ScaleError(f"Unknown scale {scale_id!r}: known scales are {', '.join(SCALE_IDS)}")


# --------------------------------------------------------------------------------------------
# Responder rules


def _response(rule_id: str, responder: bool, change: Decimal, threshold: Decimal) -> Response:
    row = _rule(rule_id)
    st = _reference.status(row["status"])
    return Response(
        responder=responder,
        change=change,
        threshold=threshold,
        rule=rule_id,
        text=str(row["text"]),
        source=_cite(str(row["text"]), [str(s) for s in row["sources"]], st),
        status=st,
    )


def wrinkle_responder(
    baseline: int, follow_up: int, scale_id: str = "facial-wrinkle-scale"
) -> Response:
    """Responder when the wrinkle grade improved by 2 grades or more (FWS 0-3 or MAS 0-4)."""
    if scale_id not in ("facial-wrinkle-scale", "merz-aesthetics-scale"):
        raise ScaleError(f"wrinkle_responder: {scale_id!r} is not a wrinkle scale")
    before = score(scale_id, baseline).value
    after = score(scale_id, follow_up).value
    threshold = Decimal(int(_rule("wrinkle-2-grade")["improvement"]))
    change = before - after
    return _response("wrinkle-2-grade", change >= threshold, change, threshold)


def hdss_responder(baseline: int, follow_up: int) -> Response:
    """Responder when HDSS improved by 2 grades or more (Botox label definition)."""
    before = score("hdss", baseline).value
    after = score("hdss", follow_up).value
    threshold = Decimal(int(_rule("hdss-2-grades")["improvement"]))
    change = before - after
    return _response("hdss-2-grades", change >= threshold, change, threshold)


def _hit6_total(value: object, what: str) -> Decimal:
    low, high = (int(v) for v in _scale("hit-6")["reference"]["range"])
    total = _whole(value, what)
    if not low <= total <= high:
        raise ScaleError(f"{what}: HIT-6 total {total} is outside {low}-{high}")
    return Decimal(total)


def hit6_responder(baseline: int, follow_up: int) -> Response:
    """Responder when the HIT-6 total fell by 5 points or more (totals 36-78)."""
    before = _hit6_total(baseline, "baseline")
    after = _hit6_total(follow_up, "follow_up")
    threshold = Decimal(int(_rule("hit-6-5-points")["improvement"]))
    change = before - after
    return _response("hit-6-5-points", change >= threshold, change, threshold)


def _rate(value: object, what: str) -> Decimal:
    number = _number(value, what)
    per = int(_scale("headache-days")["per_days"])
    if not 0 <= number <= per:
        raise ScaleError(f"{what}: {value} headache days per {per} days is outside 0-{per}")
    return number


def headache_days_reduction_pct(baseline: Decimal | int, follow_up: Decimal | int) -> Decimal:
    """Percent reduction in headache days per 28 days from baseline (negative: worse)."""
    before = _rate(baseline, "baseline")
    after = _rate(follow_up, "follow_up")
    if before == 0:
        raise ScaleError("baseline: 0 headache days; a reduction cannot be computed")
    return (before - after) * 100 / before


def headache_days_responder(baseline: Decimal | int, follow_up: Decimal | int) -> Response:
    """Responder when headache days fell by 50% or more (trial responder definition)."""
    change = headache_days_reduction_pct(baseline, follow_up)
    threshold = Decimal(int(_rule("headache-days-50-percent")["reduction_pct"]))
    return _response("headache-days-50-percent", change >= threshold, change, threshold)


def nice_continuation(baseline: Decimal | int, follow_up: Decimal | int) -> Response:
    """NICE TA260: continue when headache days fell by 30% or more (assessed after 2 cycles).

    ``responder`` False means the NICE rule says stop (below 30% reduction).
    """
    change = headache_days_reduction_pct(baseline, follow_up)
    threshold = Decimal(int(_rule("headache-days-30-percent")["reduction_pct"]))
    return _response("headache-days-30-percent", change >= threshold, change, threshold)
