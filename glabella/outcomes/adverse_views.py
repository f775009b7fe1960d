"""Side effect pages: a patient's events, recording one against a session, the follow-up, the
printable summary for the regulator and the organization's list of serious events to report.

Thin views: the rules are in ``glabella.outcomes.adverse``. Everything is looked up inside the
signed-in person's organization (another organization's patient, session or event is a 404).
Seeing needs ``outcome.view``; recording and changing need ``outcome.record``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.charting import services as charting
from glabella.charting.models import TreatmentSession
from glabella.outcomes import adverse
from glabella.outcomes.adverse_forms import AdverseForm, FollowUpForm, InErrorForm, ReportedForm
from glabella.outcomes.models import AdverseEvent, AdverseKind
from glabella.patients import services as patient_services
from glabella.patients.models import Patient


def _event(actor: Actor, pk: int) -> AdverseEvent:
    return get_object_or_404(
        AdverseEvent.objects.for_org(actor.organization).select_related(
            "patient", "session", "session__clinic", "recorded_by"
        ),
        pk=pk,
    )


def _back(request: HttpRequest, default: str) -> str:
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return default


def _session_facts(session: TreatmentSession) -> dict[str, Any]:
    return {
        "session": session,
        "product": adverse._brand(session.product_id),
        "indication": adverse._indication_name(session.indication),
        "total": adverse._u(charting.totals(session).total),
    }


# --- a patient's events ----------------------------------------------------------------------


@require_GET
@require("outcome.view")
def event_list(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = get_object_or_404(Patient.objects.for_org(actor.organization), pk=pk)
    patient_services.view_patient(actor, patient, part="side effects")
    sessions = [_session_facts(s) for s in adverse.signed_sessions(patient)]
    context = {
        "patient": patient,
        "events": adverse.events_for(patient),
        "sessions": sessions,
    }
    return render(request, "outcomes/adverse_list.html", context)


# --- recording one ---------------------------------------------------------------------------


def _render_new(
    request: HttpRequest,
    actor: Actor,
    session: TreatmentSession,
    form: AdverseForm,
    *,
    status: int = 200,
) -> HttpResponse:
    context = {
        **_session_facts(session),
        "patient": session.patient,
        "form": form,
        "refusal": adverse.session_refusal(session),
        "lots": [
            {"text": adverse.lot_text(lot), "source": lot.get("source")}
            for lot in adverse.lots_snapshot(session)
        ],
        "other": AdverseKind.OTHER.value,
        "today": adverse.clinic_today(session),
    }
    return render(request, "outcomes/adverse_new.html", context, status=status)


@require("outcome.record")
def event_new(request: HttpRequest, session_pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = get_object_or_404(
        TreatmentSession.objects.for_org(actor.organization).select_related("patient", "clinic"),
        pk=session_pk,
    )
    if request.method != "POST":
        form = AdverseForm(initial={"onset_on": adverse.clinic_today(session)})
        return _render_new(request, actor, session, form)
    form = AdverseForm(request.POST)
    if not form.is_valid():
        return _render_new(request, actor, session, form, status=422)
    try:
        event = adverse.record(actor, session, **form.cleaned_data)
    except adverse.AdverseRefused as exc:
        if exc.field == "session":
            return _render_new(request, actor, session, form, status=409)
        form.apply(exc)
        return _render_new(request, actor, session, form, status=422)
    flag = " It is serious: it is on the list to report." if event.serious else ""
    messages.success(request, f"Side effect recorded: {event.get_kind_display()}.{flag}")
    return redirect("outcomes:adverse_detail", pk=event.pk)


# --- one event -------------------------------------------------------------------------------


def _follow_up_initial(event: AdverseEvent) -> dict[str, Any]:
    return {
        "version": event.version,
        "severity": event.severity,
        "serious": event.serious,
        "serious_criteria": list(event.serious_criteria),
        "outcome": event.outcome,
        "outcome_on": event.outcome_on,
        "action_taken": event.action_taken,
        "description": event.description,
    }


def _render_detail(
    request: HttpRequest,
    actor: Actor,
    event: AdverseEvent,
    *,
    follow_up: FollowUpForm | None = None,
    reported: ReportedForm | None = None,
    in_error: InErrorForm | None = None,
    stale: str = "",
    status: int = 200,
) -> HttpResponse:
    today = adverse.clinic_today(event.session)
    context = {
        **_session_facts(event.session),
        "event": event,
        "patient": event.patient,
        "criteria": adverse.criteria_labels(event),
        "follow_up": follow_up or FollowUpForm(initial=_follow_up_initial(event)),
        "reported": reported
        or ReportedForm(
            initial={
                "reported_on": event.reported_on or today,
                "reference": event.report_reference,
            }
        ),
        "in_error": in_error or InErrorForm(),
        "stale": stale,
        "lots": [adverse.lot_text(lot) for lot in event.lots],
        "history": [{"entry": h, "text": adverse.history_text(h)} for h in adverse.history(event)],
        "today": today,
    }
    with timezone.override(charting.clinic_tz(event.session)):
        return render(request, "outcomes/adverse_detail.html", context, status=status)


@require_GET
@require("outcome.view")
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    event = _event(actor, pk)
    adverse.view_event(actor, event)
    return _render_detail(request, actor, event)


@require_POST
@require("outcome.record")
def event_update(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    event = _event(actor, pk)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, actor, event, follow_up=form, status=422)
    try:
        updated = adverse.update(actor, event, form.cleaned_data["version"], **form.changes())
    except adverse.StaleEvent as exc:
        fresh = _event(actor, pk)
        return _render_detail(request, actor, fresh, stale=exc.message, status=409)
    except adverse.AdverseRefused as exc:
        form.apply(exc)
        return _render_detail(request, actor, event, follow_up=form, status=422)
    if updated.version == event.version:
        messages.info(request, "Nothing had changed: nothing was saved.")
    else:
        messages.success(request, "Follow-up saved.")
    return redirect("outcomes:adverse_detail", pk=pk)


@require_POST
@require("outcome.record")
def event_reported(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    event = _event(actor, pk)
    form = ReportedForm(request.POST)
    back = _back(request, reverse("outcomes:adverse_detail", args=[pk]))
    if form.is_valid():
        try:
            adverse.mark_reported(
                actor,
                event,
                reported_on=form.cleaned_data["reported_on"],
                reference=form.cleaned_data["reference"],
            )
        except adverse.AdverseRefused as exc:
            form.apply(exc)
    if form.errors:
        if back == reverse("outcomes:adverse_reporting"):
            return _render_reporting(request, actor, errors={event.pk: form}, status=422)
        return _render_detail(request, actor, event, reported=form, status=422)
    messages.success(
        request,
        f"{event.patient.full_name}, {event.get_kind_display()}: marked reported "
        f"(ref {form.cleaned_data['reference']}).",
    )
    return redirect(back)


@require_POST
@require("outcome.record")
def event_in_error(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    event = _event(actor, pk)
    form = InErrorForm(request.POST)
    if form.is_valid():
        try:
            adverse.mark_in_error(actor, event, form.cleaned_data["reason"])
        except adverse.AdverseRefused as exc:
            form.apply(exc)
    if form.errors:
        return _render_detail(request, actor, event, in_error=form, status=422)
    messages.success(request, "Marked entered in error. It stays on record, struck through.")
    return redirect("outcomes:adverse_list", pk=event.patient_id)


# --- the regulator's summary -----------------------------------------------------------------


@require_GET
@require("outcome.view")
def event_report(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    event = _event(actor, pk)
    adverse.view_event(actor, event, part="report summary")
    context = {
        "event": event,
        "patient": event.patient,
        "summary": adverse.report_summary(event),
        "printed_on": adverse.clinic_today(event.session),
    }
    with timezone.override(charting.clinic_tz(event.session)):
        return render(request, "outcomes/adverse_report.html", context)


# --- the organization's serious events to report --------------------------------------------


def _render_reporting(
    request: HttpRequest,
    actor: Actor,
    *,
    errors: dict[int, ReportedForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    events = adverse.to_report(actor.organization)
    patient_services.view_patient_list(
        actor, list({e.patient_id: e.patient for e in events}.values()), "side effects to report"
    )
    zone = ZoneInfo(actor.clinic.timezone) if actor.clinic else None
    today = timezone.localtime(timezone.now(), zone).date()
    errors = errors or {}
    rows = [
        {
            "event": e,
            "form": errors.get(e.pk) or ReportedForm(initial={"reported_on": today}),
            "waiting": (today - e.recorded_at.date()).days,
        }
        for e in events
    ]
    return render(
        request, "outcomes/adverse_reporting.html", {"rows": rows, "today": today}, status=status
    )


@require_GET
@require("outcome.view")
def reporting(request: HttpRequest) -> HttpResponse:
    return _render_reporting(request, Actor.from_request(request))
