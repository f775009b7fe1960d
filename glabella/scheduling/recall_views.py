"""The recall worklist and the migraine cycle planner (pages).

Thin views: the rules are in ``recalls`` and ``cycles``. Everything is looked up inside the
signed-in person's organization (another organization's patient or recall is a 404). Seeing
needs ``appointment.view`` (every role); acting needs ``appointment.edit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.accounts.models import Clinic, Organization, User
from glabella.charting.models import TreatmentSession
from glabella.clinical import catalogue, indications
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.scheduling import booking, cycles, recalls
from glabella.scheduling.forms import NameChoiceField, org_clinics, org_practitioners, org_rooms
from glabella.scheduling.models import (
    DEFAULT_MINUTES,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Recall,
    RecallKind,
    RecallState,
    Room,
)
from glabella.web.forms_util import apply_errors

# --- helpers ---------------------------------------------------------------------------------


def _zone(actor: Actor) -> ZoneInfo:
    return booking.clinic_zone(actor.clinic)


def _today(actor: Actor) -> date:
    return timezone.localtime(timezone.now(), _zone(actor)).date()


_brand = catalogue.brand_name


INDICATION_NAMES = {i.id: i.name for i in indications.indications()}
STATE_CHOICES = [
    ("", "To act on (to contact, contacted)"),
    ("all", "Any state"),
    *[(s.value, s.label) for s in RecallState if s != RecallState.TREATED],
]


class WorklistFilters(forms.Form):
    clinic = forms.ModelChoiceField(
        queryset=Clinic.objects.none(),
        required=False,
        empty_label="All clinics",
        error_messages={"invalid_choice": "Choose one of your organization's clinics."},
    )
    practitioner = NameChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="Anyone",
        label="Last treated by",
        error_messages={"invalid_choice": "Choose one of the listed practitioners."},
    )
    indication = forms.ChoiceField(
        required=False,
        choices=[("", "Any indication"), *INDICATION_NAMES.items()],
        error_messages={"invalid_choice": "Choose one of the listed indications."},
    )
    state = forms.ChoiceField(
        required=False,
        choices=STATE_CHOICES,
        error_messages={"invalid_choice": "Choose one of the listed states."},
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = org_clinics(organization)  # type: ignore[attr-defined]
        self.fields["practitioner"].queryset = org_practitioners(  # type: ignore[attr-defined]
            organization, active_users_only=False
        )

    def filters(self) -> recalls.Filters:
        """The valid filters (a field in error filters nothing, and says so)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        clinic = data.get("clinic")
        practitioner = data.get("practitioner")
        return recalls.Filters(
            clinic_id=clinic.pk if clinic else None,
            practitioner_id=practitioner.pk if practitioner else None,
            indication=data.get("indication") or "",
            state=data.get("state") or "",
        )


def book_url(recall: Recall) -> str:
    if recall.kind == RecallKind.REVIEW:
        kind = AppointmentType.REVIEW
    elif recall.indication == cycles.INDICATION:
        kind = AppointmentType.MIGRAINE_CYCLE
    else:
        kind = AppointmentType.TREATMENT
    query: dict[str, Any] = {
        "patient": recall.patient_id,
        "recall": recall.pk,
        "indication": recall.indication,
        "kind": kind,
    }
    if recall.clinic_id:
        query["clinic"] = recall.clinic_id
    if recall.practitioner_id:
        query["practitioner"] = recall.practitioner_id
    return f"{reverse('scheduling:book')}?{urlencode(query)}"


@dataclass
class Row:
    recall: Recall
    indication: str
    product: str
    no_reminder: str
    book_url: str
    cycles_url: str
    appointment: Appointment | None
    can_act: bool
    can_reopen: bool
    open_action: str = ""
    error: str = ""
    reason: str = ""


def _rows(
    actor: Actor, page: recalls.Page, zone: ZoneInfo, errors: dict[str, Any] | None
) -> list[Row]:
    booked = {
        a.recall_id: a
        for a in Appointment.objects.for_org(actor.organization)
        .filter(
            recall_id__in=[r.pk for r in page.rows if r.state == RecallState.BOOKED],
            status__in=(AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED),
        )
        .order_by("starts_at")
    }
    rows = []
    for r in page.rows:
        row = Row(
            recall=r,
            indication=indications.display_name(r.indication),
            product=_brand(r.product_id),
            no_reminder=recalls.why_no_reminder(r.patient, zone),
            book_url=book_url(r),
            cycles_url=(
                reverse("scheduling:cycles", args=[r.patient_id])
                if r.indication == cycles.INDICATION and r.kind == RecallKind.RETREATMENT
                else ""
            ),
            appointment=booked.get(r.pk),
            can_act=r.state in (RecallState.OPEN, RecallState.CONTACTED),
            can_reopen=r.state != RecallState.OPEN,
        )
        if errors and errors.get("pk") == r.pk:
            row.open_action = errors["action"]
            row.error = errors["message"]
            row.reason = errors.get("reason", "")
        rows.append(row)
    return rows


def _query(request: HttpRequest, **overrides: Any) -> str:
    keep = {k: request.GET.get(k, "") for k in ("clinic", "practitioner", "indication", "state")}
    keep.update(overrides)
    return urlencode({k: v for k, v in keep.items() if v not in ("", None)})


def _render_worklist(
    request: HttpRequest,
    actor: Actor,
    errors: dict[str, Any] | None = None,
    status: int = 200,
    here: str = "",
) -> HttpResponse:
    org = actor.organization
    form = WorklistFilters(request.GET, organization=org)
    filters = form.filters()
    tab = request.GET.get("tab", "overdue")
    if tab not in recalls.TABS:
        tab = "overdue"
    try:
        number = int(request.GET.get("page") or 1)
    except ValueError:
        number = 1
    zone = _zone(actor)
    today = _today(actor)
    page = recalls.worklist(org, today=today, tab=tab, filters=filters, page=number)
    rows = _rows(actor, page, zone, errors)
    patient_services.view_patient_list(
        actor, [r.patient for r in page.rows], "recall worklist", query=_query(request, tab=tab)
    )
    first, last = recalls.tab_range(tab, today)
    base = reverse("scheduling:recalls")
    tabs = [
        {
            "id": t,
            "label": recalls.TAB_LABELS[t],
            "count": page.counts[t],
            "url": f"{base}?{_query(request, tab=t)}",
            "current": t == tab,
        }
        for t in recalls.TABS
    ]
    filtered = any(request.GET.get(k) for k in ("clinic", "practitioner", "indication", "state"))
    context = {
        "form": form,
        "tab": tab,
        "tabs": tabs,
        "page": page,
        "rows": rows,
        "today": today,
        "first": first,
        "last": last,
        "filtered": filtered,
        "state_filter": filters.state,
        "base": base,
        "previous_url": f"{base}?{_query(request, tab=tab, page=page.number - 1)}",
        "next_url": f"{base}?{_query(request, tab=tab, page=page.number + 1)}",
        "here": here or request.get_full_path(),
        "any_recall": page.counts["overdue"] + page.counts["week"] + page.counts["upcoming"] > 0
        or Recall.objects.for_org(org).filter(is_current=True).exists(),
        "reason_prompts": recalls.REASON_PROMPTS,
    }
    with timezone.override(zone):
        return render(request, "scheduling/recalls.html", context, status=status)


# --- the worklist ----------------------------------------------------------------------------


@require("appointment.view")
def worklist(request: HttpRequest) -> HttpResponse:
    return _render_worklist(request, Actor.from_request(request))


@require_POST
@require("appointment.edit")
def recall_state(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    recall = get_object_or_404(Recall.objects.for_org(actor.organization), pk=pk)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    back = request.POST.get("next", "")
    if not back or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("scheduling:recalls")
    try:
        row = recalls.set_state(actor, recall, action, reason)
    except ValidationError as exc:
        message = " ".join(m for msgs in exc.message_dict.values() for m in msgs)
        # Show the list as it was, with the error beside the row's form.
        request.GET = _query_dict(back)
        errors = {"pk": recall.pk, "action": action, "message": message, "reason": reason}
        return _render_worklist(request, actor, errors=errors, status=422, here=back)
    patient = row.patient
    done = {
        RecallState.CONTACTED: "marked contacted",
        RecallState.DECLINED: "marked declined",
        RecallState.NOT_DUE: "marked not due",
        RecallState.OPEN: "reopened",
    }[RecallState(row.state)]
    messages.success(
        request,
        f"{patient.full_name}, {indications.display_name(row.indication)}: {done}.",
    )
    return redirect(back)


def _query_dict(url: str) -> Any:
    from urllib.parse import urlsplit

    from django.http import QueryDict

    return QueryDict(urlsplit(url).query)


# --- the migraine cycle planner --------------------------------------------------------------


class CycleForm(forms.Form):
    clinic = forms.ModelChoiceField(
        queryset=Clinic.objects.none(),
        empty_label=None,
        error_messages={
            "required": "Choose the clinic.",
            "invalid_choice": "Choose one of your organization's clinics.",
        },
    )
    practitioner = NameChoiceField(
        queryset=User.objects.none(),
        empty_label=None,
        error_messages={
            "required": "Choose who treats the patient.",
            "invalid_choice": "Choose one of the listed practitioners.",
        },
    )
    at = forms.TimeField(
        label="Time",
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={
            "required": "Choose the time (HH:MM).",
            "invalid": "Enter the time as HH:MM.",
        },
    )
    count = forms.IntegerField(
        label="Cycles",
        min_value=1,
        max_value=cycles.MAX_CYCLES,
        error_messages={
            "required": "How many cycles?",
            "invalid": "Enter a whole number of cycles.",
            "min_value": f"Plan between 1 and {cycles.MAX_CYCLES} cycles.",
            "max_value": f"Plan between 1 and {cycles.MAX_CYCLES} cycles.",
        },
    )
    minutes = forms.IntegerField(
        label="Minutes",
        min_value=5,
        max_value=booking.MAX_MINUTES,
        error_messages={
            "required": "Give the length in minutes.",
            "invalid": "Give the length in whole minutes.",
            "min_value": "An appointment lasts between 5 minutes and 8 hours.",
            "max_value": "An appointment lasts between 5 minutes and 8 hours.",
        },
    )
    room = forms.ModelChoiceField(
        queryset=Room.objects.none(),
        required=False,
        empty_label="No room",
        error_messages={"invalid_choice": "Choose one of the clinic's rooms."},
    )
    first_on = forms.DateField(
        label="First cycle on",
        required=False,
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Leave empty for 12 weeks after the last treatment.",
        error_messages={"invalid": "Enter the date as DD/MM/YYYY."},
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = org_clinics(organization)  # type: ignore[attr-defined]
        self.fields["practitioner"].queryset = org_practitioners(organization)  # type: ignore[attr-defined]
        self.fields["room"].queryset = org_rooms(organization)  # type: ignore[attr-defined]


def _defaults(actor: Actor, patient: Patient) -> dict[str, Any]:
    org = actor.organization
    last = (
        TreatmentSession.objects.for_org(org)
        .filter(patient=patient, indication=cycles.INDICATION, status__in=recalls.SIGNED)
        .order_by("-treated_on", "-signed_at")
        .first()
    )
    clinic = last.clinic if last else actor.clinic
    if clinic is None or clinic.organization_id != org.pk:
        clinic = org_clinics(org).first()
    practitioner = None
    if clinic is not None:
        can_book = booking.practitioners(clinic)
        if last is not None and can_book.filter(pk=last.practitioner_id).exists():
            practitioner = last.practitioner_id
        else:
            first = can_book.first()
            practitioner = first.pk if first else None
    return {
        "clinic": clinic.pk if clinic else "",
        "practitioner": practitioner or "",
        "at": "10:00",
        "count": cycles.DEFAULT_CYCLES,
        "minutes": DEFAULT_MINUTES[AppointmentType.MIGRAINE_CYCLE],
        "room": "",
        "first_on": "",
    }


def _plan(actor: Actor, patient: Patient, form: CycleForm) -> tuple[cycles.CyclePlan | None, str]:
    """The plan for a valid form; errors go beside the fields (or come back as text)."""
    if not form.is_valid():
        return None, ""
    data = form.cleaned_data
    try:
        plan = cycles.propose(
            actor,
            patient,
            clinic=data["clinic"],
            practitioner=data["practitioner"],
            at=data["at"],
            count=data["count"],
            minutes=data["minutes"],
            room=data["room"],
            first_on=data["first_on"],
        )
    except ValidationError as exc:
        if "patient" in exc.message_dict:
            return None, " ".join(exc.message_dict["patient"])
        apply_errors(form, exc)
        return None, ""
    return plan, ""


def _render_cycles(
    request: HttpRequest,
    actor: Actor,
    patient: Patient,
    form: CycleForm,
    *,
    refused: str = "",
    status: int = 200,
) -> HttpResponse:
    plan, no_plan = _plan(actor, patient, form)
    clinic = form.cleaned_data.get("clinic") if form.is_bound and form.is_valid() else None
    zone = booking.clinic_zone(clinic) if clinic else _zone(actor)
    last = cycles.last_treatment(patient)
    context = {
        "patient": patient,
        "form": form,
        "plan": plan,
        "no_plan": no_plan,
        "last": last,
        "last_product": _brand(last.product_id) if last else "",
        "booked": cycles.booked_cycles(patient),
        "refused": refused,
        "starts": [
            p.local_start.strftime("%Y-%m-%dT%H:%M") for p in plan.proposals if p.local_start
        ]
        if plan
        else [],
        "hidden": _cycle_fields(form.cleaned_data) if plan else [],
    }
    with timezone.override(zone):
        return render(request, "scheduling/cycles.html", context, status=status)


@require("appointment.view")
def cycle_planner(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = get_object_or_404(Patient.objects.for_org(actor.organization), pk=pk)
    patient_services.view_patient(actor, patient, part="migraine cycles")
    data = {**_defaults(actor, patient), **request.GET.dict()}
    form = CycleForm(data, organization=actor.organization)
    return _render_cycles(request, actor, patient, form)


@require_POST
@require("appointment.edit")
def cycle_book(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = get_object_or_404(Patient.objects.for_org(actor.organization), pk=pk)
    form = CycleForm(request.POST, organization=actor.organization)
    if not form.is_valid():
        return _render_cycles(request, actor, patient, form, status=422)
    starts: list[datetime] = []
    for raw in request.POST.getlist("starts"):
        try:
            starts.append(datetime.strptime(raw, "%Y-%m-%dT%H:%M"))
        except ValueError:
            form.add_error(None, "The cycle dates were not understood: plan them again.")
            return _render_cycles(request, actor, patient, form, status=422)
    data = form.cleaned_data
    try:
        booked = cycles.book_series(
            actor,
            patient,
            clinic=data["clinic"],
            practitioner=data["practitioner"],
            starts=starts,
            minutes=data["minutes"],
            room=data["room"],
        )
    except cycles.SeriesRefused as exc:
        return _render_cycles(request, actor, patient, form, refused=str(exc), status=409)
    except ValidationError as exc:
        text = " ".join(m for msgs in exc.message_dict.values() for m in msgs)
        return _render_cycles(request, actor, patient, form, refused=text, status=422)
    zone = booking.clinic_zone(data["clinic"])
    days = ", ".join(f"{timezone.localtime(a.starts_at, zone):%d/%m/%Y %H:%M}" for a in booked)
    messages.success(
        request,
        f"{len(booked)} migraine cycle{'s' if len(booked) != 1 else ''} booked for "
        f"{patient.full_name}: {days}.",
    )
    return redirect(f"{reverse('scheduling:cycles', args=[patient.pk])}?{_cycle_query(data)}")


def _cycle_fields(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """The planner's choices as form values (for the booking form and the page after it)."""
    at: time = data["at"]
    fields: list[tuple[str, Any]] = [
        ("clinic", data["clinic"].pk),
        ("practitioner", data["practitioner"].pk),
        ("at", f"{at:%H:%M}"),
        ("count", data["count"]),
        ("minutes", data["minutes"]),
    ]
    if data.get("room"):
        fields.append(("room", data["room"].pk))
    if data.get("first_on"):
        fields.append(("first_on", data["first_on"].isoformat()))
    return fields


def _cycle_query(data: dict[str, Any]) -> str:
    return urlencode([(k, v) for k, v in _cycle_fields(data) if k != "first_on"])
