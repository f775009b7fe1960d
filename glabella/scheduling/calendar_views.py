"""Calendar pages: the day and week views, booking, one appointment, the drag-to-move endpoint
and the clinic's scheduling settings. Thin: look up within the organization, call the booking
service, render.

Every object named in a URL, a query or a form (clinic, practitioner, patient, room, recall,
appointment) is looked up within ``request.org``: another organization's is a 404. A service's
``ValidationError`` goes beside the field it names and nothing is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.accounts.models import Clinic, User
from glabella.audit.models import Action, AuditEvent
from glabella.clinical import indications
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.scheduling import booking
from glabella.scheduling.forms import (
    STATUS_BUTTONS,
    UNDO_MOVES,
    BookForm,
    CancelForm,
    EditForm,
    HoursForm,
    MoveForm,
    RoomForm,
    SettingsForm,
    StatusForm,
    apply_service_errors,
    org_clinics,
    org_practitioners,
)
from glabella.scheduling.models import (
    DEFAULT_MINUTES,
    STATUS_MOVES,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Recall,
    Room,
)

SLOT_MINUTES = 15
MOVABLE = (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED)
PREFILL = ("clinic", "practitioner", "starts_at", "kind", "indication", "recall", "next")
"""The booking form's query parameters that survive choosing a patient."""


# --- lookups -------------------------------------------------------------------------------


def _pk(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise Http404("No such object.") from None


def _clinic(request: HttpRequest, value: Any) -> Clinic:
    return get_object_or_404(org_clinics(request.org), pk=_pk(value))  # type: ignore[attr-defined]


def _chosen_clinic(request: HttpRequest) -> Clinic:
    params = request.POST if request.method == "POST" else request.GET
    value = params.get("clinic", "")
    if value in ("", None):
        return request.membership.clinic  # type: ignore[attr-defined,no-any-return]
    return _clinic(request, value)


def _practitioner(request: HttpRequest, value: Any) -> User | None:
    """A bookable person of this organization, or None for "everyone"."""
    if value in ("", None, "all"):
        return None
    return get_object_or_404(org_practitioners(request.org), pk=_pk(value))  # type: ignore[attr-defined]


def _appointment(request: HttpRequest, pk: Any) -> Appointment:
    return get_object_or_404(
        Appointment.objects.for_org(request.org).select_related(  # type: ignore[attr-defined]
            "patient", "practitioner", "room", "clinic", "recall", "created_by"
        ),
        pk=_pk(pk),
    )


def _refuse_foreign(request: HttpRequest, data: Any) -> None:
    """A form naming a patient, clinic, room, recall or person that is not this organization's
    is a 404, as in a URL (whether or not it exists elsewhere). Text that is no number at all is
    left to the form, which says so beside the field."""
    org = request.org  # type: ignore[attr-defined]
    rows = {
        "patient": Patient.objects.for_org(org),
        "clinic": org_clinics(org),
        "room": Room.objects.for_org(org),
        "recall": Recall.objects.for_org(org),
        "practitioner": User.objects.filter(memberships__organization=org),
    }
    for name, mine in rows.items():
        value = str(data.get(name) or "").strip()
        if value.isdigit() and not mine.filter(pk=int(value)).exists():
            raise Http404("No such object.")


def _day(request: HttpRequest, clinic: Clinic) -> date:
    raw = request.GET.get("date", "")
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(raw.strip(), fmt).date()
        except ValueError:
            continue
    return today_at(clinic)


def today_at(clinic: Clinic) -> date:
    return booking.local(timezone.now(), clinic).date()


def _safe_next(request: HttpRequest, value: Any) -> str:
    value = str(value or "")
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return ""


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _calendar_url(name: str, clinic: Clinic, day: date, practitioner: User | None = None) -> str:
    query = _query(
        clinic=clinic.pk, date=day.isoformat(), practitioner=practitioner.pk if practitioner else ""
    )
    return f"{reverse(f'scheduling:{name}')}?{query}"


def when_text(appointment: Appointment) -> str:
    start = booking.local(appointment.starts_at, appointment.clinic)
    end = booking.local(appointment.ends_at, appointment.clinic)
    return f"{start:%A} {start:%d/%m/%Y} {start:%H:%M}-{end:%H:%M}"


def _audit_patients(actor: Actor, appointments: list[Appointment], where: str) -> None:
    patients = list({a.patient_id: a.patient for a in appointments}.values())
    patient_services.view_patient_list(actor, patients, where)


# --- the day view --------------------------------------------------------------------------


@dataclass
class SlotCell:
    row: int
    at: datetime
    iso: str
    label: str
    open: bool
    bookable: bool
    hour: bool


@dataclass
class Block:
    appt: Appointment
    start: datetime
    end: datetime
    row: int
    span: int
    lane: int = 0
    lanes: int = 1
    movable: bool = False

    @property
    def iso(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M}"


@dataclass
class Column:
    practitioner: User
    name: str
    bookable: bool
    slots: list[SlotCell] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    lanes: int = 1


def _minute_of_day(value: datetime) -> int:
    return value.hour * 60 + value.minute


def _lay_out_lanes(blocks: list[Block], max_lanes: int = 4) -> int:
    """Side by side where appointments overlap in one column (a no-show under a new booking);
    returns the column's lane count."""
    blocks.sort(key=lambda b: (b.row, -b.span))
    cluster: list[Block] = []
    cluster_end = 0
    widest = 1

    def close(group: list[Block]) -> None:
        nonlocal widest
        lanes = max((b.lane for b in group), default=0) + 1
        for b in group:
            b.lanes = lanes
        widest = max(widest, lanes)

    for block in blocks:
        if cluster and block.row >= cluster_end:
            close(cluster)
            cluster = []
        ends = [c.row + c.span for c in cluster]
        used = {c.lane for c, e in zip(cluster, ends, strict=True) if e > block.row}
        block.lane = next((i for i in range(max_lanes) if i not in used), max_lanes - 1)
        cluster.append(block)
        cluster_end = max(cluster_end, block.row + block.span)
    if cluster:
        close(cluster)
    return widest


@dataclass
class DayGrid:
    clinic: Clinic
    day: date
    intervals: list[tuple[datetime, datetime]]
    columns: list[Column]
    times: list[SlotCell]
    appointments: list[Appointment]
    rows: int

    @property
    def closed(self) -> bool:
        return not self.intervals


def day_grid(
    actor: Actor, clinic: Clinic, day: date, practitioner: User | None, now: datetime
) -> DayGrid:
    zone = booking.clinic_zone(clinic)
    intervals = [
        (booking.local(a, clinic), booking.local(b, clinic))
        for a, b in booking.opening_intervals(clinic, day)
    ]
    start, end = booking.day_bounds(clinic, day)
    appointments = list(
        booking.appointments_between(actor, start, end, clinic=clinic, practitioner=practitioner)
    )
    bookable_people = list(booking.practitioners(clinic))
    people: list[User] = [practitioner] if practitioner else list(bookable_people)
    for appt in appointments:  # someone no longer bookable here still shows their day
        if appt.practitioner not in people:
            people.append(appt.practitioner)

    open_spans = [(_minute_of_day(a), _minute_of_day(b) or 24 * 60) for a, b in intervals]
    first = [a for a, _ in open_spans]
    last = [b for _, b in open_spans]
    for appt in appointments:
        s = booking.local(appt.starts_at, clinic)
        e = booking.local(appt.ends_at, clinic)
        first.append(_minute_of_day(s) if s.date() == day else 0)
        last.append(_minute_of_day(e) if e.date() == day else 24 * 60)
    if not first:
        return DayGrid(clinic, day, intervals, [], [], appointments, 0)
    grid_start = min(first) // 60 * 60
    grid_end = min(24 * 60, math.ceil(max(last) / 60) * 60)
    rows = (grid_end - grid_start) // SLOT_MINUTES
    may_edit = actor.can("appointment.edit")

    def cells(can_book: bool) -> list[SlotCell]:
        out = []
        for i in range(rows):
            minute = grid_start + i * SLOT_MINUTES
            at = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
            is_open = any(a <= minute and minute + SLOT_MINUTES <= b for a, b in open_spans)
            out.append(
                SlotCell(
                    row=i + 1,
                    at=at,
                    iso=f"{day.isoformat()}T{at:%H:%M}",
                    label=f"{at:%H:%M}",
                    open=is_open,
                    bookable=can_book and is_open and at >= now - booking.PAST_GRACE,
                    hour=minute % 60 == 0,
                )
            )
        return out

    columns: list[Column] = []
    for person in people:
        can_book = may_edit and person in bookable_people
        column = Column(person, booking.display_name(person), can_book, cells(can_book))
        for appt in appointments:
            if appt.practitioner_id != person.pk:
                continue
            s = booking.local(appt.starts_at, clinic)
            e = booking.local(appt.ends_at, clinic)
            first_minute = _minute_of_day(s) if s.date() == day else 0
            last_minute = _minute_of_day(e) if e.date() == day else 24 * 60
            row = (first_minute - grid_start) // SLOT_MINUTES + 1
            span = max(1, math.ceil((last_minute - grid_start) / SLOT_MINUTES) - row + 1)
            column.blocks.append(
                Block(appt, s, e, row, span, movable=may_edit and appt.status in MOVABLE)
            )
        column.lanes = _lay_out_lanes(column.blocks)
        columns.append(column)
    times = cells(False)
    return DayGrid(clinic, day, intervals, columns, times, appointments, rows)


def _nav(name: str, clinic: Clinic, day: date, practitioner: User | None, step: int) -> dict:
    return {
        "prev": _calendar_url(name, clinic, day - timedelta(days=step), practitioner),
        "next": _calendar_url(name, clinic, day + timedelta(days=step), practitioner),
        "today": _calendar_url(name, clinic, today_at(clinic), practitioner),
    }


def _calendar_context(request: HttpRequest, clinic: Clinic, practitioner: User | None) -> dict:
    return {
        "clinic": clinic,
        "clinics": list(org_clinics(request.org)),  # type: ignore[attr-defined]
        "practitioner": practitioner,
        "people": list(booking.practitioners(clinic)),
    }


def _next_open(clinic: Clinic, day: date, practitioner: User | None) -> dict[str, Any] | None:
    week = booking.week_hours(clinic)
    for offset in range(1, 8):
        later = day + timedelta(days=offset)
        if week[later.weekday()]:
            return {"day": later, "url": _calendar_url("day", clinic, later, practitioner)}
    return None


@require("appointment.view")
def day_view(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    clinic = _chosen_clinic(request)
    practitioner = _practitioner(request, request.GET.get("practitioner"))
    day = _day(request, clinic)
    now = timezone.now()
    grid = day_grid(actor, clinic, day, practitioner, now)
    _audit_patients(actor, grid.appointments, "calendar day")
    here = _calendar_url("day", clinic, day, practitioner)
    context = {
        **_calendar_context(request, clinic, practitioner),
        "grid": grid,
        "day": day,
        "is_today": day == today_at(clinic),
        "hours": booking.intervals_text((a.time(), b.time()) for a, b in grid.intervals),
        "nav": _nav("day", clinic, day, practitioner, 1),
        "week_url": _calendar_url("week", clinic, day, practitioner),
        "here": here,
        "next_param": urlencode({"next": here}),
        "focus": request.GET.get("focus", ""),
        "no_shows": sum(1 for a in grid.appointments if a.status == AppointmentStatus.NO_SHOW),
        "next_open": _next_open(clinic, day, practitioner) if grid.closed else None,
    }
    return render(request, "scheduling/calendar_day.html", context)


# --- the week view -------------------------------------------------------------------------


@dataclass
class WeekDay:
    day: date
    hours: str
    url: str
    rows: list[tuple[Appointment, datetime, datetime]]
    is_today: bool


@require("appointment.view")
def week_view(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    clinic = _chosen_clinic(request)
    practitioner = _practitioner(request, request.GET.get("practitioner"))
    anchor = _day(request, clinic)
    monday = anchor - timedelta(days=anchor.weekday())
    start, _ = booking.day_bounds(clinic, monday)
    _, end = booking.day_bounds(clinic, monday + timedelta(days=6))
    appointments = list(
        booking.appointments_between(actor, start, end, clinic=clinic, practitioner=practitioner)
    )
    _audit_patients(actor, appointments, "calendar week")
    week = booking.week_hours(clinic)
    today = today_at(clinic)
    days: list[WeekDay] = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        rows = []
        for appt in appointments:
            s = booking.local(appt.starts_at, clinic)
            if s.date() == day:
                rows.append((appt, s, booking.local(appt.ends_at, clinic)))
        days.append(
            WeekDay(
                day,
                booking.intervals_text(week[day.weekday()]),
                _calendar_url("day", clinic, day, practitioner),
                rows,
                day == today,
            )
        )
    context = {
        **_calendar_context(request, clinic, practitioner),
        "days": days,
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        "day": anchor,
        "nav": _nav("week", clinic, anchor, practitioner, 7),
        "day_url": _calendar_url("day", clinic, anchor, practitioner),
        "next_param": urlencode({"next": _calendar_url("week", clinic, anchor, practitioner)}),
    }
    return render(request, "scheduling/calendar_week.html", context)


# --- booking -------------------------------------------------------------------------------


def _recall(request: HttpRequest, value: Any) -> Recall | None:
    if value in (None, ""):
        return None
    return get_object_or_404(
        Recall.objects.for_org(request.org).select_related("patient"),  # type: ignore[attr-defined]
        pk=_pk(value),
    )


def _initial(request: HttpRequest) -> tuple[dict[str, Any], Patient | None, Recall | None]:
    """The form's starting values from the query (calendar slot, patient page, recall list)."""
    org = request.org  # type: ignore[attr-defined]
    q = request.GET
    recall = _recall(request, q.get("recall"))
    patient = None
    if q.get("patient"):
        patient = get_object_or_404(Patient.objects.for_org(org), pk=_pk(q["patient"]))
    elif recall is not None:
        patient = recall.patient
    clinic = _clinic(request, q["clinic"]) if q.get("clinic") else None
    if clinic is None and recall is not None and recall.clinic_id:
        clinic = recall.clinic
    clinic = clinic or request.membership.clinic  # type: ignore[attr-defined]
    practitioner = _practitioner(request, q.get("practitioner"))
    if practitioner is None and recall is not None and recall.practitioner_id:
        practitioner = recall.practitioner
    kind = q.get("kind") if q.get("kind") in AppointmentType.values else ""
    if not kind and recall is not None:
        kind = (
            AppointmentType.REVIEW
            if recall.kind == "review"
            else AppointmentType.MIGRAINE_CYCLE
            if recall.indication == "chronic-migraine"
            else AppointmentType.TREATMENT
        )
    kind = kind or AppointmentType.TREATMENT
    indication = q.get("indication", "") or (recall.indication if recall else "")
    if not indications.exists(indication):
        indication = ""
    initial: dict[str, Any] = {
        "clinic": clinic,
        "practitioner": practitioner,
        "kind": kind,
        "minutes": DEFAULT_MINUTES.get(kind, 30),
        "indication": indication,
        "recall": recall.pk if recall else None,
        "next": _safe_next(request, q.get("next")),
        "patient": patient.pk if patient else None,
    }
    raw = q.get("starts_at", "")
    if raw:
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            at = None
        if at is not None:
            if timezone.is_aware(at):
                at = booking.local(at, clinic)
            initial["date"], initial["time"] = at.date(), at.time().replace(second=0)
    elif q.get("date"):
        initial["date"] = _day(request, clinic)
    return initial, patient, recall


_indication_name = indications.display_name


def _kept(request: HttpRequest, source: Any) -> dict[str, str]:
    """The prefill parameters to carry along while the patient is being chosen."""
    return {k: str(source.get(k)) for k in PREFILL if source.get(k) not in (None, "")}


def _patient_results(request: HttpRequest, actor: Actor) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    patients = list(patient_services.search_patients(actor, query, limit=10)) if query else []
    patient_services.view_patient_list(actor, patients, "booking", query)
    base = reverse("scheduling:book")
    kept = _kept(request, request.GET)
    rows = [(p, f"{base}?{urlencode({**kept, 'patient': p.pk})}") for p in patients]
    return render(request, "scheduling/book_patients.html", {"rows": rows, "q": query})


@require("appointment.edit")
def book(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    org = actor.organization
    if request.method == "GET" and "q" in request.GET and request.headers.get("HX-Request"):
        return _patient_results(request, actor)
    patient: Patient | None = None
    recall: Recall | None = None
    if request.method == "POST":
        _refuse_foreign(request, request.POST)
        form = BookForm(request.POST, organization=org)
        recall = _recall(request, request.POST.get("recall"))
        if form.is_valid():
            data = form.cleaned_data
            patient = data["patient"]
            try:
                appointment = booking.book(
                    actor,
                    patient=data["patient"],
                    clinic=data["clinic"],
                    practitioner=data["practitioner"],
                    starts_at=form.starts_at(),
                    kind=data["kind"],
                    minutes=data["minutes"],
                    room=data["room"],
                    indication=data["indication"],
                    notes=data["notes"],
                    recall=recall,
                )
            except ValidationError as exc:
                existing = booking.same_booking(
                    actor,
                    patient=data["patient"],
                    clinic=data["clinic"],
                    practitioner=data["practitioner"],
                    starts_at=form.starts_at(),
                )
                if existing is not None:
                    # A second tap on "Book", or the form sent again: it is booked already.
                    messages.info(
                        request,
                        f"{existing.patient.full_name} is already booked for "
                        f"{when_text(existing)}: here is that appointment (nothing was "
                        "booked twice).",
                    )
                    return redirect("scheduling:appointment", pk=existing.pk)
                apply_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"Booked: {appointment.patient.full_name}, {when_text(appointment)} with "
                    f"{booking.display_name(appointment.practitioner)}.",
                )
                target = _safe_next(request, data.get("next"))
                if not target:
                    day = booking.local(appointment.starts_at, appointment.clinic).date()
                    target = _calendar_url("day", appointment.clinic, day)
                if target.startswith(reverse("scheduling:day")):
                    # Back on the day: the new appointment is outlined and scrolled to.
                    target += f"{'&' if '?' in target else '?'}focus={appointment.pk}"
                    target += f"#appt-{appointment.pk}"
                return redirect(target)
        elif form.data.get("patient"):
            patient = Patient.objects.for_org(org).filter(pk=form.data.get("patient")).first()
    else:
        initial, patient, recall = _initial(request)
        form = BookForm(initial=initial, organization=org)
    query = request.GET.get("q", "").strip()
    kept = _kept(request, request.POST if request.method == "POST" else request.GET)
    if request.method == "POST" and request.POST.get("date") and request.POST.get("time"):
        kept["starts_at"] = f"{request.POST['date']}T{request.POST['time']}"
    results = None
    if query and request.method == "GET":
        patients = list(patient_services.search_patients(actor, query, limit=10))
        patient_services.view_patient_list(actor, patients, "booking", query)
        base = reverse("scheduling:book")
        results = [(p, f"{base}?{urlencode({**kept, 'patient': p.pk})}") for p in patients]
    upcoming = list(booking.upcoming_for_patient(patient)[:5]) if patient is not None else []
    return render(
        request,
        "scheduling/book.html",
        {
            "form": form,
            "patient": patient,
            "recall": recall,
            "recall_name": _indication_name(recall.indication) if recall else "",
            "q": query,
            "kept": kept,
            "results": results,
            "upcoming": upcoming,
        },
    )


# --- one appointment -----------------------------------------------------------------------


def _edit_initial(appt: Appointment) -> dict[str, Any]:
    start = booking.local(appt.starts_at, appt.clinic)
    return {
        "date": start.date(),
        "time": start.time().replace(second=0),
        "minutes": int((appt.ends_at - appt.starts_at).total_seconds() // 60),
        "practitioner": appt.practitioner,
        "room": appt.room,
        "kind": appt.kind,
        "notes": appt.notes,
        "version": appt.version,
    }


def _history(request: HttpRequest, appt: Appointment) -> list[dict[str, Any]]:
    events = AuditEvent.objects.filter(
        organization=request.org,  # type: ignore[attr-defined]
        object_type="scheduling.appointment",
        object_id=str(appt.pk),
    ).exclude(action=Action.VIEW)
    events = list(events.order_by("seq"))
    ids: set[int] = set()
    for e in events:
        for key in ("practitioner", "room"):
            pair = e.detail.get(key) if isinstance(e.detail, dict) else None
            if isinstance(pair, list):
                ids.update(v for v in pair if isinstance(v, int))
    users = {u.pk: booking.display_name(u) for u in User.objects.filter(pk__in=ids)}
    rooms = {
        r.pk: r.name
        for r in Room.objects.for_org(request.org).filter(pk__in=ids)  # type: ignore[attr-defined]
    }
    rows = []
    for e in events:
        rows.append(
            {
                "at": booking.local(e.at, appt.clinic),
                "who": e.actor_label,
                "what": _history_text(e, appt, users, rooms),
            }
        )
    return rows


def _status_label(value: Any) -> str:
    return AppointmentStatus(value).label if value in AppointmentStatus.values else str(value)


def _history_text(
    event: AuditEvent, appt: Appointment, users: dict[int, str], rooms: dict[int, str]
) -> str:
    detail = event.detail if isinstance(event.detail, dict) else {}
    if event.action == Action.CREATE:
        return f"Booked: {event.object_label}"
    if "from" in detail and "to" in detail:
        text = f"{_status_label(detail['from'])} → {_status_label(detail['to'])}"
        return f"{text} ({detail['reason']})" if detail.get("reason") else text
    parts = []
    for key, pair in detail.items():
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        old, new = pair
        if key == "starts_at":
            a = booking.local(datetime.fromisoformat(old), appt.clinic)
            b = booking.local(datetime.fromisoformat(new), appt.clinic)
            parts.append(f"moved from {a:%d/%m/%Y %H:%M} to {b:%d/%m/%Y %H:%M}")
        elif key == "ends_at" and "starts_at" not in detail:
            b = booking.local(datetime.fromisoformat(new), appt.clinic)
            parts.append(f"now ends at {b:%H:%M}")
        elif key == "practitioner":
            parts.append(f"practitioner {users.get(old, '?')} → {users.get(new, '?')}")
        elif key == "room":
            parts.append(
                f"room {rooms.get(old, 'none') if old else 'none'} → "
                f"{rooms.get(new, 'none') if new else 'none'}"
            )
        elif key == "kind":
            parts.append(
                f"type {AppointmentType(old).label if old in AppointmentType.values else old} → "
                f"{AppointmentType(new).label if new in AppointmentType.values else new}"
            )
    if parts:
        return "Changed: " + "; ".join(parts)
    return "Notes changed" if "notes" in event.object_label else event.object_label


def _render_appointment(
    request: HttpRequest,
    actor: Actor,
    appt: Appointment,
    *,
    edit_form: EditForm | None = None,
    cancel_form: CancelForm | None = None,
    stale: str = "",
    status: int = 200,
) -> HttpResponse:
    org = actor.organization
    back = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    start = booking.local(appt.starts_at, appt.clinic)
    end = booking.local(appt.ends_at, appt.clinic)
    moves = STATUS_MOVES.get(appt.status, frozenset())
    buttons = [
        {"status": to, "label": label, "undo": (appt.status, to) in UNDO_MOVES}
        for (frm, to), label in STATUS_BUTTONS.items()
        if frm == appt.status and to in moves
    ]
    editable = actor.can("appointment.edit") and appt.status in MOVABLE
    if editable and edit_form is None:
        edit_form = EditForm(initial=_edit_initial(appt), organization=org, current_room=appt.room)
    rebook = ""
    if actor.can("appointment.edit") and appt.status in (
        AppointmentStatus.CANCELLED,
        AppointmentStatus.NO_SHOW,
        AppointmentStatus.DONE,
    ):
        rebook = (
            reverse("scheduling:book")
            + "?"
            + _query(
                patient=appt.patient_id,
                clinic=appt.clinic_id,
                practitioner=appt.practitioner_id,
                kind=appt.kind,
                indication=appt.indication,
            )
        )
    context = {
        "appt": appt,
        "start": start,
        "end": end,
        "minutes": int((appt.ends_at - appt.starts_at).total_seconds() // 60),
        "indication": _indication_name(appt.indication),
        "recall_name": _indication_name(appt.recall.indication) if appt.recall else "",
        "buttons": [b for b in buttons if not b["undo"]],
        "undo": [b for b in buttons if b["undo"]],
        "can_cancel": AppointmentStatus.CANCELLED in moves,
        "edit_form": edit_form if editable else None,
        "cancel_form": cancel_form or CancelForm(),
        "stale": stale,
        "history": _history(request, appt),
        "back": back or _calendar_url("day", appt.clinic, start.date()),
        "next": back,
        "rebook": rebook,
    }
    return render(request, "scheduling/appointment_detail.html", context, status=status)


@require("appointment.view")
def appointment(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    appt = _appointment(request, pk)
    patient_services.view_patient(actor, appt.patient, part="appointment")
    return _render_appointment(request, actor, appt)


def _back_to(request: HttpRequest, appt: Appointment) -> HttpResponse:
    target = reverse("scheduling:appointment", args=[appt.pk])
    back = _safe_next(request, request.POST.get("next"))
    if back:
        target += "?" + urlencode({"next": back})
    return redirect(target)


@require_POST
@require("appointment.edit")
def appointment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    appt = _appointment(request, pk)
    _refuse_foreign(request, request.POST)
    form = EditForm(request.POST, organization=actor.organization, current_room=appt.room)
    if form.is_valid():
        data = form.cleaned_data
        try:
            changed = booking.change(
                actor,
                appt,
                data["version"],
                starts_at=form.starts_at(),
                minutes=data["minutes"] or None,
                practitioner=data["practitioner"],
                room=data["room"],
                kind=data["kind"],
                notes=data["notes"],
            )
        except booking.Stale as exc:
            fresh = _appointment(request, pk)
            return _render_appointment(request, actor, fresh, stale=str(exc), status=409)
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Saved: {changed.patient.full_name}, {when_text(changed)} with "
                f"{booking.display_name(changed.practitioner)}.",
            )
            return _back_to(request, changed)
    return _render_appointment(request, actor, appt, edit_form=form)


@require_POST
@require("appointment.edit")
def appointment_status(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    appt = _appointment(request, pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That status change could not be read. Try again.")
        return _back_to(request, appt)
    status = form.cleaned_data["status"]
    reason = form.cleaned_data["reason"]
    try:
        changed = booking.set_status(
            actor, appt, status, reason=reason, expected_version=form.cleaned_data["version"]
        )
    except booking.Stale as exc:
        fresh = _appointment(request, pk)
        return _render_appointment(request, actor, fresh, stale=str(exc), status=409)
    except ValidationError as exc:
        if status == AppointmentStatus.CANCELLED and "reason" in getattr(exc, "error_dict", {}):
            cancel_form = CancelForm(request.POST)
            cancel_form.is_valid()
            apply_service_errors(cancel_form, exc)
            return _render_appointment(request, actor, appt, cancel_form=cancel_form)
        messages.error(request, " ".join(exc.messages))
        return _back_to(request, appt)
    name = changed.patient.full_name
    text = {
        AppointmentStatus.ARRIVED: f"{name} has arrived.",
        AppointmentStatus.DONE: f"{name}'s appointment is done.",
        AppointmentStatus.NO_SHOW: f"{name} did not attend.",
        AppointmentStatus.CANCELLED: f"{name}'s appointment is cancelled.",
        AppointmentStatus.BOOKED: f"{name}'s appointment is back to booked.",
    }[AppointmentStatus(changed.status)]
    if changed.recall_id and status in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW):
        text += " The recall is open again on the worklist."
    messages.success(request, text)
    return _back_to(request, changed)


@require_POST
@require("appointment.edit")
def move(request: HttpRequest, pk: int) -> HttpResponse:
    """The calendar's drag: a JSON answer the page's script shows (the block snaps back on a
    refusal). Without a script the appointment page's edit form does the same."""
    actor = Actor.from_request(request)
    appt = _appointment(request, pk)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return JsonResponse(
            {"error": "The move could not be read. Reload the page and try again."}, status=400
        )
    data = form.cleaned_data
    practitioner = _practitioner(request, data["practitioner"]) if data["practitioner"] else None
    try:
        moved = booking.change(
            actor, appt, data["version"], starts_at=data["starts_at"], practitioner=practitioner
        )
    except booking.Stale as exc:
        return JsonResponse({"error": str(exc), "stale": True}, status=409)
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=409)
    return JsonResponse(
        {
            "ok": True,
            "version": moved.version,
            "message": f"Moved: {moved.patient.full_name}, {when_text(moved)} with "
            f"{booking.display_name(moved.practitioner)}.",
        }
    )


# --- clinic scheduling settings ------------------------------------------------------------


def _settings_initial(clinic: Clinic) -> dict[str, Any]:
    current = booking.settings_for(clinic)
    return {
        "cosmetic_recall_days": current.cosmetic_recall_days,
        "quiet_start": current.quiet_start,
        "quiet_end": current.quiet_end,
        "reminder_hours": ", ".join(str(h) for h in current.reminder_hours or []),
        "recall_invite_days": current.recall_invite_days,
        "send_confirmations": current.send_confirmations,
    }


def _hours_initial(clinic: Clinic) -> dict[str, str]:
    return {f"day_{d}": booking.intervals_text(s) for d, s in booking.week_hours(clinic).items()}


@require("organization.manage")
def clinic_settings(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    clinic = _chosen_clinic(request)
    rooms = list(Room.objects.for_org(actor.organization).filter(clinic=clinic))
    what = request.POST.get("what", "") if request.method == "POST" else ""
    settings_form = SettingsForm(initial=_settings_initial(clinic))
    hours_form = HoursForm(initial=_hours_initial(clinic))
    room_form = RoomForm()
    rename_forms = {r.pk: RoomForm(prefix=f"room-{r.pk}", initial={"name": r.name}) for r in rooms}
    here = reverse("scheduling:clinic_settings") + "?" + _query(clinic=clinic.pk)
    try:
        if what == "settings":
            settings_form = SettingsForm(request.POST)
            if settings_form.is_valid():
                changed = booking.update_settings(actor, clinic, settings_form.cleaned_data)
                messages.success(
                    request, "Settings saved." if changed else "Nothing changed in the settings."
                )
                return redirect(here)
        elif what == "hours":
            hours_form = HoursForm(request.POST)
            if hours_form.is_valid():
                week = hours_form.week()
                if hours_form.is_valid():
                    changed = booking.set_opening_hours(actor, clinic, week)
                    messages.success(
                        request,
                        f"Opening hours saved ({', '.join(changed)})."
                        if changed
                        else "The opening hours are unchanged.",
                    )
                    return redirect(here)
        elif what == "room_add":
            room_form = RoomForm(request.POST)
            if room_form.is_valid():
                room = booking.add_room(actor, clinic, room_form.cleaned_data["name"])
                messages.success(request, f"{room.name} added.")
                return redirect(here)
        elif what in ("room_rename", "room_off", "room_on"):
            room = get_object_or_404(
                Room.objects.for_org(actor.organization).filter(clinic=clinic),
                pk=_pk(request.POST.get("room")),
            )
            if what == "room_rename":
                form = RoomForm(request.POST, prefix=f"room-{room.pk}")
                rename_forms[room.pk] = form
                if form.is_valid():
                    old = room.name
                    renamed = booking.rename_room(actor, room, form.cleaned_data["name"])
                    messages.success(request, f"{old} is now called {renamed.name}.")
                    return redirect(here)
            else:
                active = what == "room_on"
                booking.set_room_active(actor, room, active)
                if active:
                    messages.success(request, f"{room.name} can be booked again.")
                else:
                    kept = booking.upcoming_in_room(room)
                    messages.success(
                        request,
                        f"{room.name} is out of use: it is no longer offered for new bookings"
                        + (
                            f"; {kept} upcoming appointment{'s' if kept != 1 else ''} keep it."
                            if kept
                            else "."
                        ),
                    )
                return redirect(here)
        elif request.method == "POST":
            messages.error(request, "That form could not be read. Try again.")
            return redirect(here)
    except ValidationError as exc:
        target = {
            "settings": settings_form,
            "hours": hours_form,
            "room_add": room_form,
        }.get(what) or rename_forms[_pk(request.POST.get("room"))]
        apply_service_errors(target, exc)
    return render(
        request,
        "scheduling/clinic_settings.html",
        {
            "clinic": clinic,
            "clinics": list(org_clinics(actor.organization)),
            "settings_form": settings_form,
            "hours_form": hours_form,
            "room_form": room_form,
            "rooms": [(r, rename_forms[r.pk]) for r in rooms],
            "what": what,
        },
    )
