"""The clinician's outcome pages for a patient: the outcomes page (assessments, diary figures,
continue-or-stop, plots), recording an assessment, copying a paper diary, marking an assessment
in error and the prescriber's decision.

Thin views: the rules are in ``assessments``, ``diary``, ``continuation`` and ``series``. The
patient is looked up inside the signed-in person's organization (another organization's is a
404). Seeing needs ``outcome.view``; recording ``outcome.record``; deciding ``outcome.decide``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.charting.models import TreatmentSession
from glabella.clinical import catalogue, indications
from glabella.outcomes import assessments, continuation, series
from glabella.outcomes import diary as diary_service
from glabella.outcomes.diary import SIGNED, fmt, local_today
from glabella.outcomes.measure_forms import (
    MEDICATION_CHOICES,
    MEDICATION_SHORT,
    SCALE_CHOICES,
    SCALE_NAMES,
    SEVERITY_CHOICES,
    AssessForm,
    DecisionForm,
    ErrorForm,
    cell_name,
    month_days,
    read_month,
    rows_from_entries,
)
from glabella.outcomes.models import Assessment, Decision, Via
from glabella.patients import services as patient_services
from glabella.patients.models import Patient

INDICATION_NAMES = {i.id: i.name for i in indications.indications()}


def _patient(actor: Actor, pk: int) -> Patient:
    return get_object_or_404(Patient.objects.for_org(actor.organization), pk=pk)


_brand = catalogue.brand_name


# --- the outcomes page ------------------------------------------------------------------------


@dataclass
class AssessmentGroup:
    indication: str
    rows: list[Assessment]


def _groups(rows: list[Assessment]) -> list[AssessmentGroup]:
    groups: dict[str, AssessmentGroup] = {}
    for r in rows:
        r.scale_name = assessments.scale_label(r.scale_id)  # type: ignore[attr-defined]
        r.area_words = assessments.area_label(r.area)  # type: ignore[attr-defined]
        key = r.indication or ""
        name = INDICATION_NAMES.get(key, "Other") if key else "No indication given"
        groups.setdefault(key, AssessmentGroup(name, [])).rows.append(r)
    return list(groups.values())


def _render_patient(
    request: HttpRequest,
    actor: Actor,
    patient: Patient,
    *,
    decision_form: DecisionForm | None = None,
    error_for: int | None = None,
    error_form: ErrorForm | None = None,
    status: int = 200,
) -> HttpResponse:
    today = local_today(actor, patient)
    rows = assessments.assessments_of(patient)
    diary = diary_service.summary(patient, today)
    steps = continuation.figures(patient, today) if diary.injections else []
    past = continuation.decisions(patient)
    migraine = bool(diary.injections or diary.has_entries or past) or (
        decision_form is not None and decision_form.is_bound
    )
    given = len(diary.injections)
    if decision_form is None:
        decision_form = DecisionForm(initial={"after_cycles": given or 2})
    context = {
        "patient": patient,
        "today": today,
        "groups": _groups(rows),
        "any_assessment": bool(rows),
        "due": assessments.due_questionnaires(patient, today),
        "diary": diary,
        "migraine": migraine,
        "steps": steps,
        "cycles_given": given,
        "decisions": past,
        "decision_form": decision_form,
        "error_for": error_for,
        "error_form": error_form or ErrorForm(),
        "headache_chart": series.headache_days_chart(patient, today),
        "wrinkle_chart": series.wrinkle_chart(patient),
        "units_chart": series.units_chart(patient),
        "scale_names": SCALE_NAMES,
        "medication_names": dict(MEDICATION_CHOICES),
    }
    return render(request, "outcomes/measures_patient.html", context, status=status)


@require("outcome.view")
def patient_outcomes(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    patient_services.view_patient(actor, patient, part="outcomes")
    return _render_patient(request, actor, patient)


@require_POST
@require("outcome.record")
def assessment_error(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    row = get_object_or_404(
        Assessment.objects.for_org(actor.organization).select_related("patient"), pk=pk
    )
    form = ErrorForm(request.POST)
    if form.is_valid():
        try:
            assessments.mark_in_error(actor, row, form.cleaned_data["reason"])
        except assessments.AssessmentRefused as exc:
            form.add_error("reason", str(exc))
    if form.errors:
        return _render_patient(
            request, actor, row.patient, error_for=row.pk, error_form=form, status=422
        )
    messages.success(
        request,
        f"{assessments.scale_label(row.scale_id)} of {fmt(row.assessed_on)} marked entered in "
        "error.",
    )
    return redirect(reverse("outcomes:patient", args=[row.patient_id]) + "#assessments")


@require_POST
@require("outcome.decide")
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    form = DecisionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            row = continuation.record_decision(
                actor,
                patient,
                after_cycles=data["after_cycles"],
                decision=data["decision"],
                reason=data["reason"],
            )
        except continuation.DecisionRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
    if form.errors:
        return _render_patient(request, actor, patient, decision_form=form, status=422)
    word = "continue" if row.decision == Decision.CONTINUE else "stop"
    messages.success(
        request, f"Decision recorded: {word} treatment after {row.after_cycles} cycles."
    )
    return redirect(reverse("outcomes:patient", args=[patient.pk]) + "#continuation")


# --- recording an assessment ------------------------------------------------------------------


def _sessions(actor: Actor, patient: Patient) -> list[TreatmentSession]:
    return list(
        TreatmentSession.objects.for_org(actor.organization)
        .filter(patient=patient, status__in=SIGNED)
        .order_by("-treated_on")[:30]
    )


def _session_choices(sessions: list[TreatmentSession]) -> list[tuple[int, str]]:
    return [
        (
            s.pk,
            f"{fmt(s.treated_on)} · {indications.display_name(s.indication)} · "
            f"{_brand(s.product_id)}",
        )
        for s in sessions
    ]


@require("outcome.record")
def assess(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    scale_id = request.POST.get("scale") or request.GET.get("scale") or ""
    if scale_id not in SCALE_NAMES:
        scale_id = ""
    sessions = _sessions(actor, patient)
    today = local_today(actor, patient)
    form = None
    status = 200
    if scale_id:
        if request.method == "POST":
            form = AssessForm(request.POST, scale_id=scale_id, sessions=_session_choices(sessions))
            saved = _save_assessment(actor, patient, form, sessions, today)
            if saved:
                messages.success(request, saved)
                return redirect(reverse("outcomes:patient", args=[patient.pk]) + "#assessments")
            status = 422
        else:
            initial = {"assessed_on": today, "time_point": request.GET.get("time_point", "")}
            if sessions:
                initial["session"] = str(sessions[0].pk)
            form = AssessForm(
                initial=initial, scale_id=scale_id, sessions=_session_choices(sessions)
            )
    context = {
        "patient": patient,
        "scale_id": scale_id,
        "scale_name": SCALE_NAMES.get(scale_id, ""),
        "scales": SCALE_CHOICES,
        "form": form,
        "questionnaire": assessments.QUESTIONNAIRES.get(scale_id),
        "today": today,
    }
    return render(request, "outcomes/measures_assess.html", context, status=status)


def _save_assessment(
    actor: Actor,
    patient: Patient,
    form: AssessForm,
    sessions: list[TreatmentSession],
    today: date,
) -> str:
    """Record what the form says; '' with errors on the form when nothing was saved."""
    if not form.is_valid():
        return ""
    data = form.cleaned_data
    by_pk = {str(s.pk): s for s in sessions}
    session = by_pk.get(data.get("session") or "")
    common: dict[str, Any] = {
        "time_point": data["time_point"],
        "assessed_on": data["assessed_on"],
        "session": session,
        "rater": data["rater"],
        "via": Via.STAFF,
        "today": today,
    }
    scale_id = form.scale_id
    try:
        with transaction.atomic():
            if scale_id in assessments.WRINKLE_SCALES:
                graded = form.grades()
                if not graded:
                    form.add_error(None, "Grade at least one area, at rest or at maximum.")
                    return ""
                for area, contraction, grade in graded:
                    try:
                        assessments.record(
                            actor,
                            patient,
                            scale_id,
                            grade,
                            area=area,
                            contraction=contraction,
                            **common,
                        )
                    except assessments.AssessmentRefused as exc:
                        exc.field = (
                            cell_name(area, contraction) if exc.field == "grade" else exc.field
                        )
                        raise
                return (
                    f"{len(graded)} wrinkle grade{'s' if len(graded) != 1 else ''} recorded "
                    f"for {patient.full_name}."
                )
            row = assessments.record(actor, patient, scale_id, form.answers(), **common)
    except assessments.AssessmentRefused as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return ""
    extra = f", {row.band}" if row.band else ""
    grade = f" (grade {row.grade})" if row.grade else ""
    return (
        f"{assessments.scale_label(scale_id)} recorded for {patient.full_name}: "
        f"{row.value.normalize():f}{grade}{extra}."
    )


# --- the paper diary --------------------------------------------------------------------------


def _month(request: HttpRequest, today: date) -> date:
    raw = request.POST.get("month") or request.GET.get("month") or ""
    try:
        year, month = (int(p) for p in raw.split("-")[:2])
        chosen = date(year, month, 1)
    except (ValueError, TypeError):
        chosen = today.replace(day=1)
    return min(chosen, today.replace(day=1))


def _shift(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


@require("outcome.view")
def diary(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    if request.method == "POST":
        actor.require("outcome.record")
    today = local_today(actor, patient)
    month = _month(request, today)
    days = month_days(month, today)
    end = days[-1] if days else month
    entries = diary_service.current_entries(patient, month, end)
    rows = rows_from_entries(days, entries)
    refused = ""
    status = 200
    if request.method == "POST":
        extra = []
        for key in request.POST:
            if key.startswith("d") and key.endswith("-headache"):
                try:
                    d = date.fromisoformat(key[1 : -len("-headache")])
                except ValueError:
                    continue
                if d not in {r.day for r in rows}:
                    extra.append(d)
        sent = read_month(request.POST, rows, sorted(extra))
        saved = 0
        try:
            with transaction.atomic():
                for s in sent:
                    before = next((e for e in entries if e.day == s.day), None)
                    try:
                        entry = diary_service.record_day(
                            actor,
                            patient,
                            s.day,
                            headache=s.headache,
                            migraine=s.migraine,
                            severity=s.severity,
                            hours=s.hours,  # type: ignore[arg-type]
                            acute_medication=s.medication,
                            via=Via.PAPER,
                            today=today,
                        )
                    except diary_service.DiaryRefused as exc:
                        for r in rows:
                            if r.day == s.day:
                                r.error, r.error_field = str(exc), exc.field
                        refused = f"{fmt(s.day)}: {exc}"
                        raise
                    if before is None or entry.pk != before.pk:
                        saved += 1
        except diary_service.DiaryRefused:
            status = 422
        else:
            if saved:
                messages.success(
                    request,
                    f"{saved} diary day{'s' if saved != 1 else ''} saved for {patient.full_name}.",
                )
            else:
                messages.info(request, "Nothing changed in the diary.")
            return redirect(reverse("outcomes:diary", args=[patient.pk]) + f"?month={month:%Y-%m}")
    else:
        patient_services.view_patient(actor, patient, part="headache diary")
    history = diary_service.replaced_entries(patient, month, end)
    context = {
        "patient": patient,
        "month": month,
        "rows": rows,
        "refused": refused,
        "previous": _shift(month, -1),
        "next": _shift(month, 1) if _shift(month, 1) <= today else None,
        "history": history,
        "medications": [(k, name, MEDICATION_SHORT[k]) for k, name in MEDICATION_CHOICES],
        "severities": SEVERITY_CHOICES,
        "today": today,
        "summary": diary_service.summary(patient, today),
    }
    return render(request, "outcomes/measures_diary.html", context, status=status)
