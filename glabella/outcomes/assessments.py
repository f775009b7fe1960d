"""Assessments: scored scales at a time point, by a clinician or by the patient.

Scales (scored by :func:`glabella.clinical.scales.score`, which cites the source of each band):

- ``facial-wrinkle-scale`` (0-3) and ``merz-aesthetics-scale`` (0-4): one grade per area, at
  rest or at maximum contraction (both needed: the area and the contraction);
- ``hdss`` (1-4), ``hit-6`` (six answers, 36-78, with its bands), ``midas`` (five day counts,
  score and grade I-IV): the patient-rated questionnaires of :data:`QUESTIONNAIRES`;
- ``headache-days``: headache days (and migraine days) over a period, as days per 28.

None of these instruments may be scored with an answer missing: a missing answer is refused
with the question named (:class:`AssessmentRefused`). A mistake is marked entered in error with
a reason (:func:`mark_in_error`); nothing is deleted.

Which questionnaires are due (:func:`due_questionnaires`):

- chronic migraine (a signed chronic-migraine session, or a migraine cycle booked): HIT-6 and
  MIDAS when none was answered in the last 28 days: at baseline before the first cycle, then
  before each next cycle;
- axillary hyperhidrosis (a signed session, or a treatment booked for it): HDSS at baseline
  (booked, not yet treated), two weeks after a treatment (days 14-30, when none since day 7),
  and before the next one (from day 90 after the last treatment, when none in 28 days).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record as audit
from glabella.charting.models import TreatmentSession
from glabella.clinical import scales
from glabella.outcomes.diary import SIGNED, check_patient, fmt, local_today
from glabella.outcomes.models import Assessment, Contraction, Rater, TimePoint, Via
from glabella.patients.models import Patient

WRINKLE_SCALES = ("facial-wrinkle-scale", "merz-aesthetics-scale")
WRINKLE_AREAS: dict[str, tuple[str, str]] = {
    # area id (as on the charting diagrams) -> (words, indication)
    "glabella": ("Frown lines (glabella)", "glabellar-lines"),
    "forehead": ("Forehead lines", "forehead-lines"),
    "lateral-canthus": ("Crow's feet (lateral canthus)", "lateral-canthal-lines"),
    "neck": ("Platysma bands (neck)", "platysma-bands"),
}
SCALE_INDICATION = {
    "hit-6": "chronic-migraine",
    "midas": "chronic-migraine",
    "headache-days": "chronic-migraine",
    "hdss": "axillary-hyperhidrosis",
}
SCALE_SHORT = {
    "facial-wrinkle-scale": "Facial Wrinkle Scale (0-3)",
    "merz-aesthetics-scale": "Merz Aesthetics Scale (0-4)",
    "hit-6": "HIT-6",
    "midas": "MIDAS",
    "hdss": "HDSS",
    "headache-days": "Headache days per month",
}


class AssessmentRefused(ValueError):
    """An assessment that cannot be recorded; ``field`` names the question or field at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Item:
    key: str
    text: str
    choices: list[tuple[int, str]] | None  # None: a number of days (MIDAS, 0-92)


@dataclass(frozen=True)
class Questionnaire:
    scale_id: str
    name: str
    intro: str
    items: list[Item]


def _hit6_choices() -> list[tuple[int, str]]:
    labels = {"6": "Never", "8": "Rarely", "10": "Sometimes", "11": "Very often", "13": "Always"}
    return [(int(k), v) for k, v in labels.items()]


# HIT-6 is copyrighted (QualityMetric / GlaxoSmithKline): its item wording is not reproduced.
# The short neutral labels below name what each item is about; a clinic with a licence uses
# the printed form beside them. The answers and their points are the instrument's scoring.
_HIT6_TOPICS = (
    "Severe pain",
    "Headaches limit usual daily activities",
    "Wish to lie down",
    "Too tired to work or do daily activities",
    "Fed up or irritated",
    "Headaches limit concentration",
)

# MIDAS questions: free for clinical use (Stewart and Lipton; Innovative Medical Research).
_MIDAS_ITEMS = (
    "On how many days in the last 3 months did you miss work or school because of your headaches?",
    "How many days in the last 3 months was your productivity at work or school reduced by half "
    "or more because of your headaches? (Do not count days you counted in question 1.)",
    "On how many days in the last 3 months did you not do household work because of your "
    "headaches?",
    "How many days in the last 3 months was your productivity in household work reduced by half "
    "or more because of your headaches? (Do not count days you counted in question 3.)",
    "On how many days in the last 3 months did you miss family, social or leisure activities "
    "because of your headaches?",
)

_HDSS_ANSWERS = [
    (1, "My sweating is never noticeable and never interferes with my daily activities"),
    (2, "My sweating is tolerable but sometimes interferes with my daily activities"),
    (3, "My sweating is barely tolerable and frequently interferes with my daily activities"),
    (4, "My sweating is intolerable and always interferes with my daily activities"),
]

QUESTIONNAIRES: Mapping[str, Questionnaire] = {
    "hit-6": Questionnaire(
        "hit-6",
        "HIT-6 (Headache Impact Test)",
        "About the last 4 weeks: how often did your headaches affect you? One answer per line.",
        [
            Item(f"q{n}", f"{n}. {topic}", _hit6_choices())
            for n, topic in enumerate(_HIT6_TOPICS, start=1)
        ],
    ),
    "midas": Questionnaire(
        "midas",
        "MIDAS (Migraine Disability Assessment)",
        "About the last 3 months. Write 0 if it did not happen.",
        [Item(f"q{n}", text, None) for n, text in enumerate(_MIDAS_ITEMS, start=1)],
    ),
    "hdss": Questionnaire(
        "hdss",
        "Hyperhidrosis Disease Severity Scale (HDSS)",
        "How would you rate the severity of your sweating?",
        [Item("q1", "Severity of your sweating", _HDSS_ANSWERS)],
    ),
}

MIDAS_MAX_DAYS = 92
SCALE_IDS = scales.SCALE_IDS


def scale_label(scale_id: str) -> str:
    return SCALE_SHORT.get(scale_id, scale_id)


def area_label(area: str) -> str:
    if area in WRINKLE_AREAS:
        return WRINKLE_AREAS[area][0]
    text = area.replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# --- answers ----------------------------------------------------------------------------------


def _whole(value: Any, message: str, field: str) -> int:
    if isinstance(value, bool):
        raise AssessmentRefused(message, field)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise AssessmentRefused(message, field)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _item_answers(q: Questionnaire, answers: Any) -> list[Any]:
    """The answers in item order (a list, or a mapping by item key or 1-based number)."""
    if isinstance(answers, Mapping):
        return [
            answers.get(item.key, answers.get(str(n), answers.get(n)))  # type: ignore[call-overload]
            for n, item in enumerate(q.items, start=1)
        ]
    if isinstance(answers, (str, bytes)) or not isinstance(answers, Sequence):
        if len(q.items) == 1:
            return [answers]
        raise AssessmentRefused(f"{q.name}: the answers were not understood.", "answers")
    values = list(answers)
    return values + [None] * (len(q.items) - len(values))


_COUNT_WORDS = {1: "the question", 5: "all five questions", 6: "all six questions"}


def _questionnaire(scale_id: str, answers: Any) -> list[int]:
    q = QUESTIONNAIRES[scale_id]
    short = scale_label(scale_id)
    values = _item_answers(q, answers)
    if len(values) > len(q.items):
        raise AssessmentRefused(f"{short} has {len(q.items)} questions only.", "answers")
    out: list[int] = []
    for n, (item, value) in enumerate(zip(q.items, values, strict=True), start=1):
        if _blank(value):
            need = _COUNT_WORDS.get(len(q.items), f"all {len(q.items)} questions")
            if len(q.items) == 1:
                raise AssessmentRefused(f"{short}: choose an answer.", item.key)
            raise AssessmentRefused(
                f"Question {n} is not answered: {short} can only be scored when {need} "
                "are answered.",
                item.key,
            )
        if item.choices is not None:
            allowed = [c for c, _ in item.choices]
            number = _whole(value, f"Question {n}: choose one of the answers.", item.key)
            if number not in allowed:
                raise AssessmentRefused(f"Question {n}: choose one of the answers.", item.key)
        else:
            number = _whole(
                value,
                f"Question {n}: write a whole number of days (0 to {MIDAS_MAX_DAYS}).",
                item.key,
            )
            if not 0 <= number <= MIDAS_MAX_DAYS:
                raise AssessmentRefused(
                    f"Question {n}: {number} days is not possible in 3 months "
                    f"(0 to {MIDAS_MAX_DAYS}).",
                    item.key,
                )
        out.append(number)
    return out


def _headache_days(answers: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(what is scored, what is kept) for monthly headache and migraine days."""
    if not isinstance(answers, Mapping):
        raise AssessmentRefused("Give the headache days and the days counted.", "headache_days")
    period_raw = answers.get("period_days", 28)
    if _blank(period_raw):
        period_raw = 28
    period = _whole(period_raw, "Days counted: write a whole number of days.", "period_days")
    if not 1 <= period <= 92:
        raise AssessmentRefused("Days counted must be between 1 and 92.", "period_days")
    raw = answers.get("headache_days")
    if _blank(raw):
        raise AssessmentRefused(
            "Headache days are not given: write how many days had a headache (0 if none).",
            "headache_days",
        )
    days = _whole(raw, "Headache days: write a whole number of days.", "headache_days")
    if not 0 <= days <= period:
        raise AssessmentRefused(
            f"Headache days must be between 0 and the {period} days counted.", "headache_days"
        )
    kept = {"headache_days": days, "period_days": period}
    raw_m = answers.get("migraine_days")
    if not _blank(raw_m):
        migraine = _whole(raw_m, "Migraine days: write a whole number of days.", "migraine_days")
        if not 0 <= migraine <= days:
            raise AssessmentRefused(
                "Migraine days are headache days too: between 0 and the headache days.",
                "migraine_days",
            )
        kept["migraine_days"] = migraine
    return {"headache_days": days, "period_days": period}, kept


def _grade(scale_id: str, answers: Any) -> int:
    if isinstance(answers, Mapping):
        answers = answers.get("grade")
    if _blank(answers):
        raise AssessmentRefused(f"{scale_label(scale_id)}: choose a grade.", "grade")
    low, high = (1, 4) if scale_id == "hdss" else (0, 4 if scale_id.startswith("merz") else 3)
    grade = _whole(answers, f"Choose a grade from {low} to {high}.", "grade")
    if not low <= grade <= high:
        raise AssessmentRefused(f"Choose a grade from {low} to {high}.", "grade")
    return grade


def score_answers(scale_id: str, answers: Any) -> tuple[scales.Score, Any]:
    """(the score, the answers as kept) or :class:`AssessmentRefused`."""
    if scale_id not in SCALE_IDS:
        raise AssessmentRefused("Choose one of the listed scales.", "scale_id")
    kept: Any
    if scale_id in ("hit-6", "midas"):
        scored: Any = _questionnaire(scale_id, answers)
        kept = scored
    elif scale_id == "hdss":
        as_items = isinstance(answers, (list, tuple))
        if as_items or (isinstance(answers, Mapping) and "grade" not in answers):
            scored = _questionnaire("hdss", answers)[0]
        else:
            scored = _grade("hdss", answers)
        kept = scored
    elif scale_id == "headache-days":
        scored, kept = _headache_days(answers)
    else:
        scored = _grade(scale_id, answers)
        kept = scored
    try:
        return scales.score(scale_id, scored), kept
    except scales.ScaleError as exc:  # the checks above come first; never a half-written row
        raise AssessmentRefused(f"These answers cannot be scored: {exc}.", "answers") from exc


# --- writing ----------------------------------------------------------------------------------


def _indication(scale_id: str, area: str, session: TreatmentSession | None) -> str:
    if session is not None:
        return session.indication
    if scale_id in WRINKLE_SCALES:
        return WRINKLE_AREAS.get(area, ("", ""))[1]
    return SCALE_INDICATION.get(scale_id, "")


def record(
    actor: Actor,
    patient: Patient,
    scale_id: str,
    answers: Any,
    *,
    time_point: str,
    assessed_on: date,
    area: str = "",
    contraction: str = "",
    session: TreatmentSession | None = None,
    rater: str = Rater.CLINICIAN,
    via: str = Via.STAFF,
    today: date | None = None,
    indication: str = "",
) -> Assessment:
    """Score and keep one assessment. Raises :class:`AssessmentRefused` (nothing written)."""
    check_patient(actor, patient, via, "outcome.record")
    if via == Via.PORTAL:
        rater = Rater.PATIENT
    if rater not in Rater.values:
        raise AssessmentRefused("Say who rated: the clinician or the patient.", "rater")
    if time_point not in TimePoint.values:
        raise AssessmentRefused("Choose the time point.", "time_point")
    if not isinstance(assessed_on, date):
        raise AssessmentRefused("Give the date of the assessment.", "assessed_on")
    today = today or local_today(actor, patient)
    if assessed_on > today:
        raise AssessmentRefused(
            f"{fmt(assessed_on)} is in the future: record an assessment on the day or after "
            f"(today is {fmt(today)}).",
            "assessed_on",
        )
    if scale_id in WRINKLE_SCALES:
        if not area:
            raise AssessmentRefused("Choose the area graded.", "area")
        if contraction not in Contraction.values:
            raise AssessmentRefused(
                "Say whether the area was graded at rest or at maximum contraction.",
                "contraction",
            )
    else:
        area, contraction = "", ""
    if session is not None and (
        session.organization_id != actor.organization.pk or session.patient_id != patient.pk
    ):
        raise PermissionError("That treatment session is not this patient's.")
    result, kept = score_answers(scale_id, answers)
    with transaction.atomic():
        row = Assessment.objects.create(
            organization=actor.organization,
            patient=patient,
            session=session,
            indication=indication or _indication(scale_id, area, session),
            scale_id=scale_id,
            area=area,
            contraction=contraction,
            time_point=time_point,
            assessed_on=assessed_on,
            answers={"answers": kept},
            value=result.value.quantize(Decimal("0.01")),
            band=result.band[:100],
            grade=result.grade or "",
            source=result.source,
            rater=rater,
            via=via,
            recorded_by=actor.user,
        )
        audit(
            actor,
            Action.CREATE,
            row,
            label=f"{patient}: {scale_label(scale_id)} {row.value} on {fmt(assessed_on)}",
            detail={
                "event": "assessment.record",
                "scale": scale_id,
                "area": area,
                "contraction": contraction,
                "time_point": time_point,
                "value": str(row.value),
                "band": row.band,
                "grade": row.grade,
                "rater": rater,
                "via": via,
            },
        )
    return row


def mark_in_error(actor: Actor, assessment: Assessment, reason: str) -> Assessment:
    """Mark an assessment entered in error, with the reason; it stays visible, struck through."""
    actor.require("outcome.record")
    if assessment.organization_id != actor.organization.pk:
        raise PermissionError("That assessment belongs to another organization.")
    reason = (reason or "").strip()
    if not reason:
        raise AssessmentRefused("Say why this assessment was entered in error.", "reason")
    if len(reason) > 300:
        raise AssessmentRefused("Keep the reason under 300 characters.", "reason")
    with transaction.atomic():
        row = (
            Assessment.objects.for_org(actor.organization).select_for_update().get(pk=assessment.pk)
        )
        if row.entered_in_error:
            raise AssessmentRefused("This assessment is already marked entered in error.", "reason")
        row.entered_in_error = True
        row.error_reason = reason
        row.save(update_fields=["entered_in_error", "error_reason"])
        audit(
            actor,
            Action.UPDATE,
            row,
            label=f"{row.patient}: {scale_label(row.scale_id)} entered in error",
            detail={"event": "assessment.error", "reason": reason},
        )
    return row


# --- reading ----------------------------------------------------------------------------------


def assessments_of(patient: Patient, *, include_errors: bool = True) -> list[Assessment]:
    qs = Assessment.objects.for_org(patient.organization_id).filter(patient=patient)
    if not include_errors:
        qs = qs.filter(entered_in_error=False)
    return list(qs.select_related("recorded_by").order_by("-assessed_on", "-recorded_at"))


@dataclass(frozen=True)
class Due:
    scale_id: str
    name: str
    time_point: str
    session_id: int | None
    why: str


def _last_taken(patient: Patient, scale_id: str) -> date | None:
    return (
        Assessment.objects.for_org(patient.organization_id)
        .filter(patient=patient, scale_id=scale_id, entered_in_error=False)
        .order_by("-assessed_on")
        .values_list("assessed_on", flat=True)
        .first()
    )


def _booked(patient: Patient, today: date, *, kind: str = "", indication: str = "") -> bool:
    from glabella.scheduling.models import Appointment, AppointmentStatus

    qs = Appointment.objects.for_org(patient.organization_id).filter(
        patient=patient,
        status__in=(AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED),
        starts_at__date__gte=today - timedelta(days=1),
    )
    if kind:
        qs = qs.filter(kind=kind)
    if indication:
        qs = qs.filter(indication=indication)
    return qs.exists()


def _last_session(patient: Patient, indication: str, today: date) -> TreatmentSession | None:
    return (
        TreatmentSession.objects.for_org(patient.organization_id)
        .filter(patient=patient, indication=indication, status__in=SIGNED, treated_on__lte=today)
        .order_by("-treated_on", "-signed_at")
        .first()
    )


def due_questionnaires(patient: Patient, today: date) -> list[Due]:
    """The questionnaires the patient should answer now (rule in the module docstring)."""
    due: list[Due] = []
    migraine = _last_session(patient, "chronic-migraine", today)
    if migraine is not None or _booked(patient, today, kind="migraine_cycle"):
        point = TimePoint.BEFORE_NEXT if migraine is not None else TimePoint.BASELINE
        when = "before your next treatment" if migraine else "before your first treatment"
        for scale_id in ("hit-6", "midas"):
            last = _last_taken(patient, scale_id)
            if last is None or last <= today - timedelta(days=28):
                due.append(
                    Due(
                        scale_id,
                        QUESTIONNAIRES[scale_id].name,
                        point,
                        migraine.pk if migraine else None,
                        f"Asked {when}, when not answered in the last 4 weeks.",
                    )
                )
    sweat = _last_session(patient, "axillary-hyperhidrosis", today)
    last = _last_taken(patient, "hdss")
    q = QUESTIONNAIRES["hdss"]
    if sweat is None:
        if _booked(patient, today, indication="axillary-hyperhidrosis") and (
            last is None or last <= today - timedelta(days=28)
        ):
            due.append(
                Due("hdss", q.name, TimePoint.BASELINE, None, "Asked before the first treatment.")
            )
    else:
        since = (today - sweat.treated_on).days
        if 14 <= since <= 30 and (last is None or last < sweat.treated_on + timedelta(days=7)):
            due.append(
                Due(
                    "hdss",
                    q.name,
                    TimePoint.TWO_WEEKS,
                    sweat.pk,
                    f"Asked two weeks after the treatment of {fmt(sweat.treated_on)}.",
                )
            )
        elif since >= 90 and (last is None or last <= today - timedelta(days=28)):
            due.append(
                Due(
                    "hdss",
                    q.name,
                    TimePoint.BEFORE_NEXT,
                    sweat.pk,
                    "Asked before the next treatment, when not answered in the last 4 weeks.",
                )
            )
    return due
