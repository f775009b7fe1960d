"""Break-glass pages: open a patient's emergency summary (front desk), read it while it is open,
and the owners' (and auditors') log with the owner's review. See patients/breakglass.py.

The patient (or break-glass record) is looked up in the organization first: another
organization's is a 404 for every role, before any question of role.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require, signed_in
from glabella.accounts.reauth import needs_reauth
from glabella.patients import breakglass
from glabella.patients.models import BreakGlass, Patient

NO_STORE = "private, no-store"


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        label="Why do you need it now?",
        help_text=(
            "In a few words: what is happening and who is asking. Owners read every one of these."
        ),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ReviewForm(forms.Form):
    note = forms.CharField(
        label="Review note", max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


def _patient(request: HttpRequest, pk: int) -> Patient:
    return get_object_or_404(Patient.objects.for_org(request.org), pk=pk)  # type: ignore[attr-defined]


@signed_in
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, pk: int) -> HttpResponse:
    patient = _patient(request, pk)
    actor = Actor.from_request(request)
    if not actor.can("patient.break_glass"):
        raise PermissionDenied("Your role does not allow this.")
    form = BreakGlassForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if (ask := needs_reauth(request, action="Break glass")) is not None:
            return ask
        if form.is_valid():
            try:
                breakglass.start(actor, patient, form.cleaned_data["reason"])
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("reason", message)
            else:
                return redirect("patients:emergency_summary", patient.pk)
        status = 422
    response = render(
        request,
        "patients/break_glass.html",
        {
            "patient": patient,
            "form": form,
            "minutes": breakglass.minutes(),
            "open": breakglass.open_access(actor, patient),
        },
        status=status,
    )
    response["Cache-Control"] = NO_STORE
    return response


@signed_in
@require_http_methods(["GET", "POST"])
def emergency_summary(request: HttpRequest, pk: int) -> HttpResponse:
    patient = _patient(request, pk)
    actor = Actor.from_request(request)
    if actor.can("patient.view_clinical"):
        # Nothing to break: the patient's page shows all of it.
        return redirect("patients:detail", patient.pk)
    if not actor.can("patient.break_glass"):
        raise PermissionDenied("Your role does not allow this.")
    access = breakglass.open_access(actor, patient)
    if access is not None and request.method == "POST" and request.POST.get("do") == "end":
        breakglass.end(actor, access)
        messages.success(request, f"Emergency access to {patient}'s record ended.")
        return redirect("patients:detail", patient.pk)
    if access is None:
        last = breakglass.last_access(actor, patient)
        ended = breakglass.clinic_time(breakglass.ended_at(last), last) if last else None
        response = render(
            request,
            "patients/emergency_closed.html",
            {
                "patient": patient,
                "last": last,
                "ended": ended,
                "ended_today": ended is not None
                and ended.date() == breakglass.clinic_time(timezone.now(), last).date(),
            },
            status=403,
        )
        response["Cache-Control"] = NO_STORE
        return response
    if request.method == "POST":
        return redirect("patients:emergency_summary", patient.pk)
    breakglass.record_view(actor, access)
    left = breakglass.seconds_left(access)
    response = render(
        request,
        "patients/emergency_summary.html",
        {
            "patient": patient,
            "access": access,
            "s": breakglass.summary(access),
            "seconds_left": left,
            "minutes_left": (left + 59) // 60,
            "ends_at": breakglass.clinic_time(access.expires_at, access),
            "started_at": breakglass.clinic_time(access.started_at, access),
        },
    )
    response["Cache-Control"] = NO_STORE
    return response


@require("audit.view")
def break_glass_log(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    accesses = list(
        BreakGlass.objects.for_org(actor.organization)
        .select_related("user", "patient", "clinic", "reviewed_by")
        # Not yet reviewed first, then newest first.
        .order_by(F("reviewed_at").asc(nulls_first=True), "-started_at", "-pk")[:200]
    )
    views = breakglass.views_made(actor.organization, accesses)
    rows = [
        {
            "access": a,
            "views": views.get(a.pk, 0),
            "started": breakglass.clinic_time(a.started_at, a),
            "reviewed": breakglass.clinic_time(a.reviewed_at, a) if a.reviewed_at else None,
            **breakglass.describe(a),
        }
        for a in accesses
    ]
    response = render(
        request,
        "patients/break_glass_log.html",
        {
            "rows": rows,
            "unreviewed": sum(1 for a in accesses if a.reviewed_at is None),
            "can_review": actor.can("organization.manage"),
            "form": ReviewForm(),
        },
    )
    response["Cache-Control"] = NO_STORE
    return response


@require_POST
@signed_in
def break_glass_review(request: HttpRequest, access_pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    access = get_object_or_404(
        BreakGlass.objects.for_org(actor.organization).select_related("patient", "user"),
        pk=access_pk,
    )
    if not actor.can("organization.manage"):
        raise PermissionDenied("Your role does not allow this.")
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write a short review note: was it a real emergency?")
        return redirect("patients:break_glass_log")
    try:
        breakglass.review(actor, access, form.cleaned_data["note"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Break-glass of {access.user} on {access.patient} reviewed.")
    return redirect("patients:break_glass_log")
