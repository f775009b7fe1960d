"""Patient pages. Thin: look up within the organization, call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.charting import services as charting_services
from glabella.consent import services as consent_services
from glabella.outcomes import durations
from glabella.patients import screening, services
from glabella.patients.forms import (
    CloseItemForm,
    HistoryItemForm,
    NotesForm,
    PatientForm,
    ScreeningForm,
)
from glabella.patients.models import HistoryItem, HistoryKind, Patient
from glabella.prepared import Prepared
from glabella.scheduling import booking
from glabella.web import plain_html
from glabella.web.forms_util import apply_errors


def _patient(request: HttpRequest, pk: int) -> Patient:
    # Another organization's patient is simply not found.
    return get_object_or_404(Patient.objects.for_org(request.org), pk=pk)  # type: ignore[attr-defined]


@require("patient.view_contact")
def patient_list(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    query = request.GET.get("q", "")
    patients = list(services.search_patients(actor, query, fields=services.RESULT_FIELDS))
    services.view_patient_list(actor, patients, "search", query)
    context = {"patients": patients, "q": query}
    if request.headers.get("HX-Request"):
        return render(request, "patients/_results.html", context)
    return render(request, "patients/list.html", context)


@require("patient.create")
def patient_new(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    form = PatientForm(request.POST or None, organization=actor.organization)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.create_patient(actor, form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"{patient.full_name} registered.")
            if actor.can("patient.edit_clinical"):
                return redirect("patients:screening", pk=patient.pk)
            return redirect("patients:detail", pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "creating": True})


# What the patient's page shows of the patient's own links comes in the same query: the
# organization (read by the treatments list), the home clinic and who screened them. Compiled
# once (glabella/prepared.py): this page is opened all day.
_PATIENT_PAGE = Prepared(
    lambda org, patient: Patient.objects.filter(organization_id=org, pk=patient).select_related(
        "organization", "home_clinic", "screened_by"
    )
)


@require("patient.view_contact")
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    # What the page shows of the patient's own links comes in the same query: the
    # organization (read by the treatments list), the home clinic and who screened them.
    patient = _PATIENT_PAGE.first(request.org.pk, pk)  # type: ignore[attr-defined]
    if patient is None:
        raise Http404("No patient matches the given query.")
    clinical = actor.can("patient.view_clinical")
    services.view_patient(actor, patient, part="record" if clinical else "contact")
    context: dict[str, object] = {"patient": patient, "today": None}
    if actor.can("consent.view"):
        context["consent_summary"] = consent_services.summary_for(
            patient, consent_services.today_for(actor)
        )
    sessions = None
    if actor.can("session.view"):
        sessions = charting_services.sessions_for(patient)
        context["sessions"] = sessions
    if actor.can("appointment.view"):
        context["appointments"] = booking.next_appointments(patient)
    if actor.can("outcome.view"):
        # The sessions just read serve the flags too (one query fewer).
        context["fading_flags"] = durations.fading(
            patient, sessions=None if sessions is None else [row.session for row in sessions]
        )
    if clinical:
        items = services.history_items(patient)
        flags = services.patient_flags(patient, items)
        context.update(
            {
                "flags": [(f, screening.FLAG_LABELS.get(f, f)) for f in sorted(flags)],
                "active_items": [
                    i for i in items if i.is_active and i.kind != HistoryKind.OUTSIDE_TREATMENT
                ],
                "outside": [i for i in items if i.kind == HistoryKind.OUTSIDE_TREATMENT],
                "closed_items": [
                    i for i in items if not i.is_active and i.kind != HistoryKind.OUTSIDE_TREATMENT
                ],
                "notes_form": plain_html.plain(
                    NotesForm(initial={"clinical_notes": patient.clinical_notes})
                ),
                "history_kinds": [
                    (k, label)
                    for k, label in HistoryKind.choices
                    if k
                    not in (HistoryKind.PREGNANCY, HistoryKind.BREASTFEEDING, HistoryKind.INFECTION)
                ],
            }
        )
    return render(request, "patients/detail.html", context)


@require("patient.edit_contact")
def patient_edit(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    initial = {f: getattr(patient, f) for f in services.PATIENT_FIELDS}
    form = PatientForm(request.POST or None, initial=initial, organization=actor.organization)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_patient(actor, patient, form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Changes saved.")
            return redirect("patients:detail", pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": patient})


@require("patient.edit_clinical")
def patient_screening(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    current = frozenset(services.active_history(patient).values_list("kind", "code"))
    form = ScreeningForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        answers, details = form.answers()
        try:
            changes = services.record_screening(actor, patient, answers, details)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            if changes:
                messages.success(request, "Screening saved: " + "; ".join(changes) + ".")
            else:
                messages.success(request, "Screening saved: nothing has changed.")
            return redirect("patients:detail", pk=patient.pk)
    if request.method == "GET":
        services.view_patient(actor, patient, part="screening")
    return render(request, "patients/screening.html", {"form": form, "patient": patient})


@require("patient.edit_clinical")
def history_add(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    kind = request.POST.get("kind") or request.GET.get("kind") or HistoryKind.CONDITION
    if kind not in HistoryKind.values:
        kind = HistoryKind.CONDITION
    form = HistoryItemForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid():
        try:
            services.add_history_item(actor, patient, form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Added to the medical history.")
            return redirect("patients:detail", pk=patient.pk)
    return render(
        request,
        "patients/history_form.html",
        {"form": form, "patient": patient, "kind_label": HistoryKind(kind).label},
    )


@require_POST
@require("patient.edit_clinical")
def history_close(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    item = get_object_or_404(
        HistoryItem.objects.for_org(actor.organization), pk=item_pk, patient=patient
    )
    form = CloseItemForm(request.POST)
    if form.is_valid():
        try:
            services.close_history_item(
                actor,
                item,
                reason=form.cleaned_data["reason"],
                entered_in_error=form.cleaned_data["how"] == "error",
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "History updated.")
    else:
        messages.error(request, "Choose whether it no longer applies or was entered in error.")
    return redirect("patients:detail", pk=patient.pk)


@require_POST
@require("patient.edit_clinical")
def notes_edit(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    form = NotesForm(request.POST)
    if form.is_valid():
        services.update_clinical_notes(actor, patient, form.cleaned_data["clinical_notes"])
        messages.success(request, "Notes saved.")
    return redirect("patients:detail", pk=patient.pk)
