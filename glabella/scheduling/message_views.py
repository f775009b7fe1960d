"""Message pages: the reminder log, the clinic's message wording, and the patient's opt-out page.

Thin views: look up within the organization, call ``reminders`` or ``messages``, render. Another
organization's message or clinic is a 404. The opt-out page is public: its token is the only key,
a GET only asks (link scanners open links), a POST opts out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.accounts.models import Clinic
from glabella.patients import services as patient_services
from glabella.scheduling import booking, messages, reminders
from glabella.scheduling.models import (
    MessageChannel,
    MessageKind,
    Reminder,
    ReminderStatus,
)
from glabella.web.forms_util import apply_errors

PER_PAGE = 100


def _pk(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise Http404("No such object.") from None


def _clinics(request: HttpRequest) -> list[Clinic]:
    return list(Clinic.objects.filter(organization=request.org).order_by("name"))  # type: ignore[attr-defined]


CHANNEL_WORDS = {MessageChannel.EMAIL: "e-mail", MessageChannel.SMS: "SMS"}


def _label(kind: str, channel: str) -> str:
    return f"{MessageKind(kind).label} by {CHANNEL_WORDS[MessageChannel(channel)]}"


def _when(value: datetime | None, clinic: Clinic | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(booking.clinic_zone(clinic))
    return f"{local:%d/%m/%Y %H:%M}"


# --- the reminder log ------------------------------------------------------------------------


def _choices(choices: list[tuple[str, str]], everything: str) -> list[tuple[str, str]]:
    return [("", everything), *choices]


class LogFilter(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=_choices(ReminderStatus.choices, "Any status")
    )
    kind = forms.ChoiceField(
        label="Message", required=False, choices=_choices(MessageKind.choices, "Any message")
    )
    channel = forms.ChoiceField(
        required=False, choices=_choices(MessageChannel.choices, "E-mail and SMS")
    )
    day_from = forms.DateField(
        label="Due from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    day_to = forms.DateField(
        label="Due until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    clinic = forms.ChoiceField(label="Clinic", required=False)

    def __init__(self, *args: Any, clinics: list[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [("", "All clinics")] + [
            (str(c.pk), c.name) for c in clinics
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("day_from"), data.get("day_to")
        if start and end and end < start:
            self.add_error("day_to", "The end date is before the start date.")
        return data


def _row(reminder: Reminder, resent: set[int], may_resend: bool) -> dict[str, Any]:
    clinic = reminder.clinic
    reason = reminder.skip_reason or reminder.last_error
    return {
        "r": reminder,
        "due": _when(reminder.due_at, clinic),
        "sent": _when(reminder.sent_at, clinic),
        "next": _when(reminder.next_attempt_at, clinic)
        if reminder.status == ReminderStatus.PENDING and reminder.attempts
        else "",
        "reason": reason,
        "resent": reminder.pk in resent,
        "can_resend": may_resend
        and reminder.status in (ReminderStatus.FAILED, ReminderStatus.UNCERTAIN)
        and reminder.pk not in resent,
    }


@require("appointment.view")
def message_log(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    clinics = _clinics(request)
    form = LogFilter(request.GET or None, clinics=clinics)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "status": data["status"],
            "kind": data["kind"],
            "channel": data["channel"],
            "day_from": data["day_from"],
            "day_to": data["day_to"],
        }
        if data["clinic"]:
            filters["clinic"] = next((c for c in clinics if str(c.pk) == data["clinic"]), None)
    rows = reminders.reminder_log(actor, **filters)
    counts = dict(
        Reminder.objects.for_org(actor.organization)
        .filter(status__in=(ReminderStatus.FAILED, ReminderStatus.UNCERTAIN))
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    resent = reminders.resent_ids(
        r.pk for r in shown if r.status in (ReminderStatus.FAILED, ReminderStatus.UNCERTAIN)
    )
    patients = list({r.patient_id: r.patient for r in shown}.values())
    patient_services.view_patient_list(actor, patients, "message log")
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "scheduling/messages.html",
        {
            "form": form,
            "page": page,
            "rows": [_row(r, resent, actor.can("appointment.edit")) for r in shown],
            "failed": counts.get(ReminderStatus.FAILED, 0),
            "uncertain": counts.get(ReminderStatus.UNCERTAIN, 0),
            "query": query.urlencode(),
            "sms_console": (settings.GLABELLA_SMS_PROVIDER or "console") == "console",
        },
    )


@require("appointment.edit")
@require_POST
def resend(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    reminder = get_object_or_404(
        Reminder.objects.for_org(actor.organization).select_related("patient", "clinic"),
        pk=_pk(pk),
    )
    try:
        fresh = reminders.resend(actor, reminder)
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
    else:
        when = _when(fresh.due_at, fresh.clinic)
        flash.success(
            request,
            f"The {reminder.get_kind_display().lower()} to {reminder.patient.full_name} will be "
            f"sent again at {when} (the worker sends it on its next pass).",
        )
    back = request.POST.get("next", "")
    if back.startswith(reverse("scheduling:messages")):
        return redirect(back)
    return redirect("scheduling:messages")


# --- the clinic's wording --------------------------------------------------------------------


def _chosen_clinic(request: HttpRequest) -> Clinic:
    params = request.POST if request.method == "POST" else request.GET
    value = params.get("clinic", "")
    if value in ("", None):
        return request.membership.clinic  # type: ignore[attr-defined,no-any-return]
    return get_object_or_404(
        Clinic.objects.filter(organization=request.org),  # type: ignore[attr-defined]
        pk=_pk(value),
    )


@require("organization.manage")
def template_list(request: HttpRequest) -> HttpResponse:
    clinic = _chosen_clinic(request)
    cache: dict = {}
    items = []
    for kind in MessageKind.values:
        for channel in MessageChannel.values:
            words = messages.wording(clinic, kind, channel, cache)
            items.append(
                {
                    "kind": kind,
                    "channel": channel,
                    "label": _label(kind, channel),
                    "words": words,
                }
            )
    return render(
        request,
        "scheduling/message_templates.html",
        {"clinic": clinic, "clinics": _clinics(request), "items": items},
    )


class TemplateForm(forms.Form):
    subject = forms.CharField(required=False, max_length=200)
    body = forms.CharField(
        label="Message", widget=forms.Textarea(attrs={"rows": 10}), max_length=5000
    )


@require("organization.manage")
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, kind: str, channel: str) -> HttpResponse:
    if kind not in MessageKind.values or channel not in MessageChannel.values:
        raise Http404("No such message.")
    actor = Actor.from_request(request)
    clinic = _chosen_clinic(request)
    words = messages.wording(clinic, kind, channel)
    label = _label(kind, channel)
    is_email = channel == MessageChannel.EMAIL
    preview = None
    if request.method == "POST":
        action = request.POST.get("action", "save")
        if action == "reset":
            if messages.reset_template(actor, clinic, kind, channel):
                flash.success(request, f"{label} at {clinic.name} uses the standard wording again.")
            return redirect(f"{reverse('scheduling:message_templates')}?clinic={clinic.pk}")
        form = TemplateForm(request.POST)
        if form.is_valid():
            subject = form.cleaned_data["subject"] if is_email else ""
            body = form.cleaned_data["body"]
            try:
                messages.validate(kind, channel, subject.strip(), body.strip(), clinic)
                if action == "preview":
                    preview = messages.preview(kind, channel, subject, body, clinic, timezone.now())
                else:
                    messages.save_template(actor, clinic, kind, channel, subject=subject, body=body)
                    flash.success(request, f"{label} at {clinic.name} saved.")
                    return redirect(f"{reverse('scheduling:message_templates')}?clinic={clinic.pk}")
            except ValidationError as exc:
                apply_errors(form, exc)
    else:
        form = TemplateForm(
            initial={"subject": words.subject if is_email else "", "body": words.body}
        )
        preview = messages.preview(kind, channel, words.subject, words.body, clinic, timezone.now())
    return render(
        request,
        "scheduling/message_template.html",
        {
            "clinic": clinic,
            "kind": kind,
            "channel": channel,
            "label": label,
            "form": form,
            "is_email": is_email,
            "custom": words.custom,
            "preview": preview,
            "placeholders": messages.placeholders(kind),
            "sms_max": messages.SMS_MAX_CHARS,
        },
    )


# --- the patient's opt-out -------------------------------------------------------------------


@csrf_exempt  # the signed token is the credential; mail clients post one-click opt-outs here
@require_http_methods(["GET", "POST"])
def opt_out(request: HttpRequest, token: str) -> HttpResponse:
    patient = reminders.patient_for_token(token)
    if patient is None:
        response = render(request, "scheduling/opt_out_invalid.html", status=404)
        response["X-Robots-Tag"] = "noindex"
        return response
    organization = patient.organization.name
    if request.method == "POST":
        done = reminders.opt_out(patient)
        clinic = done.patient.home_clinic
        response = render(
            request,
            "scheduling/opt_out_done.html",
            {
                "organization": organization,
                "already": done.already,
                "day": f"{done.at.astimezone(booking.clinic_zone(clinic)):%d/%m/%Y}",
            },
        )
    else:
        already = not patient.reminder_consent and patient.reminder_opt_out_at is not None
        response = render(
            request,
            "scheduling/opt_out.html",
            {"organization": organization, "already": already},
        )
    response["X-Robots-Tag"] = "noindex"
    response["Cache-Control"] = "no-store"
    return response
