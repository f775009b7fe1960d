"""API: outcomes. A patient's assessments (scored scales) and headache diary.

Thin: an assessment is scored and kept by :func:`glabella.outcomes.assessments.record`, a diary
day by :func:`glabella.outcomes.diary.record_day`: the calls the outcome pages make, with their
checks (no instrument is scored with an answer missing, and the refusal names the question; no
date in the future) and their audit rows. Reading a patient's outcomes is audited as a view of
the patient, as on the pages. Clinical staff and auditors read (``outcome.view``); clinical
staff record (``outcome.record``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field, StrictInt

from glabella.charting.models import TreatmentSession
from glabella.clinical import diary as diary_core
from glabella.interop.api.base import (
    ERRORS,
    ApiError,
    Day,
    DayRange,
    Hours,
    Id,
    IdPath,
    Page,
    Paging,
    StrictIn,
    get_or_404,
    page,
    patient_or_404,
    require,
    today_at,
    user_label,
)
from glabella.outcomes import assessments
from glabella.outcomes import diary as diary_service
from glabella.outcomes.models import Assessment, DiaryEntry, Rater, Via
from glabella.patients import services as patient_services

router = Router(tags=["outcomes"])

ScaleId = Literal[
    "facial-wrinkle-scale", "merz-aesthetics-scale", "hdss", "hit-6", "midas", "headache-days"
]
TimePointName = Literal["baseline", "two_weeks", "day_30", "before_next", "other"]
MedicationKind = Literal[tuple(diary_core.MEDICATION_KINDS)]  # type: ignore[valid-type]
MAX_DIARY_DAYS = 366

# An answer is a whole number (a grade, a HIT-6 answer's points, a count of days) or nothing.
Answer = StrictInt | None


# --- schemas ------------------------------------------------------------------------------------


class AssessmentOut(Schema):
    id: int
    patient_id: int
    session_id: int | None
    indication: str
    scale_id: str
    area: str
    contraction: str
    time_point: TimePointName
    assessed_on: date
    answers: Any = Field(description="The answers as kept (grade, list, or day counts).")
    value: Decimal = Field(description="The score.")
    band: str
    grade: str
    source: str = Field(description="Where the scoring and its bands come from.")
    rater: Literal["clinician", "patient"]
    via: Literal["staff", "paper", "portal"]
    recorded_by: str | None
    recorded_at: datetime
    entered_in_error: bool
    error_reason: str


class AssessmentIn(StrictIn):
    scale_id: ScaleId
    answers: list[Answer] | dict[str, Answer] | StrictInt = Field(
        description=(
            "Wrinkle scales: the grade. HDSS: the grade (1-4). HIT-6: six answers (6, 8, 10, "
            "11 or 13 points), as a list or by key q1..q6. MIDAS: five day counts (0-92). "
            "headache-days: {headache_days, period_days (default 28), migraine_days}."
        )
    )
    time_point: TimePointName
    assessed_on: Day = Field(description="Not in the future.")
    area: str = Field("", max_length=60, description="Wrinkle scales: glabella, forehead...")
    contraction: Literal["", "rest", "maximum"] = Field("", description="Wrinkle scales.")
    session_id: Id | None = Field(None, description="The treatment this measures.")
    rater: Literal["clinician", "patient"] = "clinician"


class DiaryOut(Schema):
    id: int
    day: date
    headache: bool
    migraine: bool
    severity: int | None
    hours: Decimal | None
    acute_medication: list[str]
    via: Literal["staff", "paper", "portal"]
    recorded_by: str | None
    recorded_at: datetime


class DiaryDayIn(StrictIn):
    day: Day = Field(description="Not in the future.")
    headache: bool
    migraine: bool = Field(False, description="Migraine features (a headache day too).")
    severity: int | None = Field(None, ge=0, le=3, description="0 none, 1 mild, 2, 3 severe.")
    hours: Hours | None = Field(None, description="Hours of headache (0 to 24, e.g. 6.5).")
    acute_medication: list[MedicationKind] = Field(default_factory=list, max_length=10)


class DiaryIn(StrictIn):
    days: list[DiaryDayIn] = Field(min_length=1, max_length=MAX_DIARY_DAYS)
    via: Literal["paper", "staff"] = Field(
        "paper", description="paper: copied from the patient's paper diary."
    )


class DiaryWritten(Schema):
    saved: int = Field(description="Days recorded or replaced (unchanged days are not counted).")
    entries: list[DiaryOut]


# --- helpers ------------------------------------------------------------------------------------


def _assessment_out(a: Assessment) -> dict[str, Any]:
    kept = a.answers.get("answers") if isinstance(a.answers, dict) else a.answers
    return {
        "id": a.pk,
        "patient_id": a.patient_id,
        "session_id": a.session_id,
        "indication": a.indication,
        "scale_id": a.scale_id,
        "area": a.area,
        "contraction": a.contraction,
        "time_point": a.time_point,
        "assessed_on": a.assessed_on,
        "answers": kept,
        "value": a.value,
        "band": a.band,
        "grade": a.grade,
        "source": a.source,
        "rater": a.rater,
        "via": a.via,
        "recorded_by": user_label(a.recorded_by),
        "recorded_at": a.recorded_at,
        "entered_in_error": a.entered_in_error,
        "error_reason": a.error_reason,
    }


def _diary_out(e: DiaryEntry) -> dict[str, Any]:
    return {
        "id": e.pk,
        "day": e.day,
        "headache": e.headache,
        "migraine": e.migraine,
        "severity": e.severity,
        "hours": e.hours,
        "acute_medication": list(e.acute_medication or []),
        "via": e.via,
        "recorded_by": user_label(e.recorded_by),
        "recorded_at": e.recorded_at,
    }


_TOP_FIELDS = {"scale_id", "time_point", "assessed_on", "area", "contraction", "rater"}


def _answer_field(field: str) -> str:
    """The service's field (``q3``, ``headache_days``, ``grade``) as a path in the body."""
    if not field or field in _TOP_FIELDS:
        return field or "answers"
    if field in ("grade", "answers"):
        return "answers"
    return f"answers.{field}"


# --- assessments --------------------------------------------------------------------------------


class AssessmentsQuery(Paging):
    scale: ScaleId | None = None
    include_errors: bool = Field(True, description="Include those marked entered in error.")


@router.get(
    "/patients/{patient_id}/assessments",
    response={200: Page[AssessmentOut], **ERRORS},
    summary="A patient's assessments",
)
def list_assessments(request: HttpRequest, patient_id: IdPath, q: Query[AssessmentsQuery]) -> Any:
    """Newest first. Entered-in-error ones stay in the list, marked, unless left out."""
    actor = require(request, "outcome.view")
    patient = patient_or_404(actor, patient_id)
    rows = (
        Assessment.objects.for_org(actor.organization)
        .filter(patient=patient)
        .select_related("recorded_by")
        .order_by("-assessed_on", "-recorded_at", "-pk")
    )
    if q.scale is not None:
        rows = rows.filter(scale_id=q.scale)
    if not q.include_errors:
        rows = rows.filter(entered_in_error=False)
    found = page(rows, q, _assessment_out)
    patient_services.view_patient(actor, patient, part="assessments (API)")
    return found


@router.post(
    "/patients/{patient_id}/assessments",
    response={201: AssessmentOut, **ERRORS},
    summary="Record an assessment",
)
def record_assessment(request: HttpRequest, patient_id: IdPath, payload: AssessmentIn) -> Any:
    """Score and keep one assessment. An instrument is never scored with an answer missing:
    the refusal names the question (``field``: ``answers.q3``). Nothing is written when
    refused."""
    actor = require(request, "outcome.record")
    patient = patient_or_404(actor, patient_id)
    session = None
    if payload.session_id is not None:
        session = get_or_404(
            TreatmentSession.objects.for_org(actor.organization).filter(patient=patient),
            payload.session_id,
            "session_id",
        )
    try:
        row = assessments.record(
            actor,
            patient,
            payload.scale_id,
            payload.answers,
            time_point=payload.time_point,
            assessed_on=payload.assessed_on,
            area=payload.area,
            contraction=payload.contraction,
            session=session,
            rater=payload.rater or Rater.CLINICIAN,
            via=Via.STAFF,
            today=today_at(actor),
        )
    except assessments.AssessmentRefused as exc:
        raise ApiError(str(exc), field=_answer_field(exc.field), status=422) from None
    row = Assessment.objects.select_related("recorded_by").get(pk=row.pk)
    return Status(201, _assessment_out(row))


# --- the headache diary -------------------------------------------------------------------------


class DiaryQuery(DayRange):
    """The diary between two days (both included)."""


@router.get(
    "/patients/{patient_id}/diary",
    response={200: Page[DiaryOut], **ERRORS},
    summary="A patient's headache diary",
)
def list_diary(request: HttpRequest, patient_id: IdPath, q: Query[DiaryQuery]) -> Any:
    """The diary as it stands, one entry per day, oldest first (a day entered twice shows
    its latest entry; the replaced one is kept, and audited)."""
    actor = require(request, "outcome.view")
    patient = patient_or_404(actor, patient_id)
    q.check_days()
    rows = (
        DiaryEntry.objects.for_org(actor.organization)
        .filter(patient=patient, replaced_at__isnull=True)
        .select_related("recorded_by")
        .order_by("day", "pk")
    )
    if q.date_from is not None:
        rows = rows.filter(day__gte=q.date_from)
    if q.date_to is not None:
        rows = rows.filter(day__lte=q.date_to)
    found = page(rows, q, _diary_out)
    patient_services.view_patient(actor, patient, part="headache diary (API)")
    return found


@router.post(
    "/patients/{patient_id}/diary",
    response={200: DiaryWritten, **ERRORS},
    summary="Record diary days",
)
def record_diary(request: HttpRequest, patient_id: IdPath, payload: DiaryIn) -> Any:
    """One day or several, all or nothing: if any day is refused, none is saved, and the
    refusal names the day and the field (``days[3].severity``). A day already in the diary is
    replaced (the old entry is kept); a day sent unchanged changes nothing."""
    actor = require(request, "outcome.record")
    patient = patient_or_404(actor, patient_id)
    seen: dict[date, int] = {}
    for n, d in enumerate(payload.days):
        if d.day in seen:
            raise ApiError(
                f"{d.day:%d/%m/%Y} is sent twice (days[{seen[d.day]}] and days[{n}]): send each "
                "day once. Nothing was saved.",
                field=f"days[{n}].day",
                status=422,
            )
        seen[d.day] = n
    today = today_at(actor)
    entries: list[DiaryEntry] = []
    saved = 0
    with transaction.atomic():
        for n, d in enumerate(payload.days):
            before = (
                DiaryEntry.objects.for_org(actor.organization)
                .filter(patient=patient, day=d.day, replaced_at__isnull=True)
                .values_list("pk", flat=True)
                .first()
            )
            try:
                entry = diary_service.record_day(
                    actor,
                    patient,
                    d.day,
                    headache=d.headache,
                    migraine=d.migraine,
                    severity=d.severity,
                    hours=d.hours,
                    acute_medication=d.acute_medication,
                    via=payload.via,
                    today=today,
                )
            except diary_service.DiaryRefused as exc:
                field = f"days[{n}].{exc.field or 'day'}"
                raise ApiError(
                    f"{d.day:%d/%m/%Y}: {exc} Nothing was saved.", field=field, status=422
                ) from None
            saved += entry.pk != before
            entries.append(entry)
    return {"saved": saved, "entries": [_diary_out(e) for e in entries]}
