"""Duration-of-effect pages: one patient's treatments and when their effect returned, and the
clinic's Kaplan-Meier curves. Thin views: the rules are in ``durations``; everything is looked
up inside the signed-in person's organization (another organization's patient is a 404)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.charting.models import TreatmentSession
from glabella.db_router import reading_from_replica
from glabella.outcomes import durations as services
from glabella.outcomes.duration_forms import CohortForm, InErrorForm, ReturnForm
from glabella.outcomes.models import EffectReturn, Rater
from glabella.patients.models import Patient
from glabella.scheduling import recalls


@dataclass
class RowView:
    row: services.TreatmentRow
    form: ReturnForm
    error_form: InErrorForm | None


def _patient(actor: Actor, pk: int) -> Patient:
    return get_object_or_404(Patient.objects.for_org(actor.organization), pk=pk)


def _render(
    request: HttpRequest,
    actor: Actor,
    patient: Patient,
    *,
    bound: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page; BOUND holds a form with errors ({"session": id, "form": f} or {"return": ...})."""
    bound = bound or {}
    services.view_durations(actor, patient)
    today = services.clinic_today(actor.clinic)
    series = []
    for s in services.overview(patient, today):
        rows = []
        for row in s.rows:
            sid = row.treatment.session_id
            if bound.get("session") == sid:
                form = bound["form"]
            else:
                initial = {"rater": Rater.CLINICIAN}
                if row.current is not None:
                    initial.update(
                        returned_on=row.current.returned_on,
                        rater=row.current.rater,
                        note=row.current.note,
                    )
                form = ReturnForm(session_id=sid, initial=initial)
            error_form = None
            if row.current is not None:
                rid = row.current.pk
                error_form = (
                    bound["form"] if bound.get("return") == rid else InErrorForm(return_id=rid)
                )
            rows.append(RowView(row, form, error_form))
        series.append((s, rows))
    context = {
        "patient": patient,
        "series": series,
        "today": today,
        "failed": bound.get("session") or bound.get("return"),
    }
    return render(request, "outcomes/duration_patient.html", context, status=status)


@require("outcome.view")
def patient_durations(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    return _render(request, actor, _patient(actor, pk))


def _page(patient: Patient, anchor: str = "") -> str:
    url = reverse("outcomes:durations", args=[patient.pk])
    return f"{url}#{anchor}" if anchor else url


@require_POST
@require("outcome.record")
def return_record(request: HttpRequest, pk: int, session_pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    session = get_object_or_404(
        TreatmentSession.objects.for_org(actor.organization), pk=session_pk, patient=patient
    )
    form = ReturnForm(request.POST, session_id=session.pk)
    if form.is_valid():
        data = form.cleaned_data
        try:
            row = services.record_return(
                actor, session, data["returned_on"], rater=data["rater"], note=data["note"]
            )
        except services.ReturnRefused as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            days = (row.returned_on - row.session.treated_on).days
            text = (
                f"Recorded: the treatment of {row.session.treated_on:%d/%m/%Y} lasted {days} days."
            )
            recall = recalls.current_for(patient, row.session.indication)
            if recall is not None:
                text += f" Recall due {recall.due_on:%d/%m/%Y}" + (
                    " (from this patient's own durations)." if recall.personalised else "."
                )
            messages.success(request, text)
            return redirect(_page(patient, f"treatment-{row.session_id}"))
    return _render(request, actor, patient, bound={"session": session.pk, "form": form}, status=422)


@require_POST
@require("outcome.record")
def return_in_error(request: HttpRequest, pk: int, return_pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(actor, pk)
    report = get_object_or_404(
        EffectReturn.objects.for_org(actor.organization), pk=return_pk, patient=patient
    )
    form = InErrorForm(request.POST, return_id=report.pk)
    if form.is_valid():
        try:
            services.mark_in_error(actor, report, form.cleaned_data["reason"])
        except services.ReturnRefused as exc:
            form.add_error("reason", exc.message)
        else:
            messages.success(
                request,
                f"The report of {report.returned_on:%d/%m/%Y} is marked entered in error; "
                "it stays on record, struck through.",
            )
            return redirect(_page(patient, f"treatment-{report.session_id}"))
    return _render(request, actor, patient, bound={"return": report.pk, "form": form}, status=422)


# --- the clinic's cohort ---------------------------------------------------------------------


PREFERRED = "chronic-migraine"


@require("outcome.view")
def cohort(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    org = actor.organization
    form = CohortForm(organization=org)
    choices = [value for value, _ in form.fields["indication"].choices]  # type: ignore[attr-defined]
    data = request.GET.dict()
    if not data.get("indication") and choices:
        data["indication"] = PREFERRED if PREFERRED in choices else choices[0]
    form = CohortForm(data, organization=org)
    curves: list[services.CohortCurve] = []
    chart = None
    indication = ""
    today = services.clinic_today(actor.clinic)
    if choices and form.is_valid():
        indication = form.cleaned_data["indication"]
        clinic = form.cleaned_data["clinic"]
        services.view_cohort(actor, indication, clinic)
        with reading_from_replica():  # a report: from the replica when there is one
            curves = services.cohort(org, indication=indication, clinic=clinic, today=today)
        from glabella.outcomes.charts import Series, survival_chart

        name = services.indication_name(indication)
        chart = survival_chart(
            f"How long the effect lasted: {name}"
            + (f", {clinic.name}" if clinic is not None else ""),
            [Series(c.label, c.points, kind="step") for c in curves],
            empty_text=f"No signed treatments for {name.lower()} yet.",
        )
    context = {
        "form": form,
        "curves": curves,
        "chart": chart,
        "indication": indication,
        "indication_name": services.indication_name(indication) if indication else "",
        "has_choices": bool(choices),
        "today": today,
    }
    return render(request, "outcomes/cohort.html", context)
