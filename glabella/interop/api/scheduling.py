"""API: the schedule. Appointments (book, move, change status) and re-treatment recalls.

Thin: writes are :mod:`glabella.scheduling.booking`'s ``book``, ``change`` and ``set_status``,
the calls the calendar pages make (same checks: opening hours, no double booking of a
practitioner or a room, times in the past, the status moves allowed; same audit rows). Anyone
may look (``appointment.view``); staff book, move and cancel (``appointment.edit``).

Times: answers are ISO 8601 in UTC; a time sent without a zone is the clinic's wall-clock time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from glabella.accounts.actor import Actor
from glabella.accounts.models import User
from glabella.clinical import indications
from glabella.interop.api.base import (
    ERRORS,
    ApiError,
    Day,
    DayRange,
    Id,
    IdPath,
    LongText,
    Moment,
    Page,
    Paging,
    StrictIn,
    Text,
    clinic_or_404,
    clinic_or_default,
    get_or_404,
    page,
    patient_or_404,
    require,
    today_at,
)
from glabella.scheduling import booking
from glabella.scheduling.models import (
    OPEN_RECALL_STATES,
    Appointment,
    AppointmentStatus,
    Recall,
    Room,
)

router = Router(tags=["schedule"])

Kind = Literal["consultation", "treatment", "review", "migraine_cycle", "other"]
StatusName = Literal["booked", "arrived", "done", "no_show", "cancelled"]
RecallStateName = Literal["open", "contacted", "booked", "declined", "not_due", "treated"]


# --- schemas ------------------------------------------------------------------------------------


class PersonOut(Schema):
    id: int
    name: str


class PractitionerOut(Schema):
    id: int
    name: str
    email: str


class AppointmentOut(Schema):
    id: int
    clinic_id: int
    patient: PersonOut
    practitioner: PractitionerOut
    room_id: int | None
    room: str | None
    kind: Kind
    indication: str
    starts_at: datetime
    ends_at: datetime
    minutes: int
    status: StatusName
    status_reason: str
    notes: str
    recall_id: int | None
    version: int = Field(description="Send it back when moving or changing the status.")


class BookIn(StrictIn):
    patient_id: Id
    practitioner_id: Id = Field(description="A prescriber or injector at the clinic.")
    starts_at: Moment = Field(description="ISO 8601; without a zone: the clinic's local time.")
    kind: Kind
    clinic_id: Id | None = Field(None, description="Default: the token's clinic.")
    minutes: int | None = Field(None, ge=5, le=booking.MAX_MINUTES)
    room_id: Id | None = None
    indication: str = Field("", max_length=40, description="An indication id, or empty.")
    notes: LongText = ""
    recall_id: Id | None = Field(None, description="Booking for this recall closes it.")


class ChangeIn(StrictIn):
    """Fields left out are kept. ``room_id: null`` takes the room away."""

    version: Id | None = Field(
        None, description="The version read: refused with 409 if it changed since."
    )
    starts_at: Moment | None = None
    minutes: int | None = Field(None, ge=5, le=booking.MAX_MINUTES)
    practitioner_id: Id | None = None
    room_id: Id | None = None
    kind: Kind | None = None
    notes: LongText | None = None


class StatusIn(StrictIn):
    status: StatusName
    reason: Text = Field("", description="Required to cancel.")
    version: Id | None = None


class RecallOut(Schema):
    id: int
    patient: PersonOut
    clinic_id: int | None
    practitioner_id: int | None
    indication: str
    kind: Literal["retreatment", "review"]
    product_id: str
    basis_on: date = Field(description="Last treated.")
    due_on: date
    earliest_on: date | None = Field(description="Not before (the minimum interval).")
    personalised: bool = Field(description="Due date from the patient's own duration of effect.")
    state: RecallStateName
    state_reason: str


# --- mapping and lookups ------------------------------------------------------------------------


def _appointment_out(a: Appointment) -> dict[str, Any]:
    return {
        "id": a.pk,
        "clinic_id": a.clinic_id,
        "patient": {"id": a.patient_id, "name": a.patient.full_name},
        "practitioner": {
            "id": a.practitioner_id,
            "name": booking.display_name(a.practitioner),
            "email": a.practitioner.email,
        },
        "room_id": a.room_id,
        "room": a.room.name if a.room else None,
        "kind": a.kind,
        "indication": a.indication,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "minutes": int((a.ends_at - a.starts_at).total_seconds() // 60),
        "status": a.status,
        "status_reason": a.status_reason,
        "notes": a.notes,
        "recall_id": a.recall_id,
        "version": a.version,
    }


def _appointments(actor: Actor) -> QuerySet[Appointment]:
    return Appointment.objects.for_org(actor.organization).select_related(
        "patient", "practitioner", "room", "clinic"
    )


def _read(actor: Actor, pk: int) -> dict[str, Any]:
    return _appointment_out(get_or_404(_appointments(actor), pk))


def _staff(actor: Actor, pk: int, field: str) -> User:
    """A member of the caller's organization (anyone else is not found)."""
    return get_or_404(
        User.objects.filter(memberships__organization=actor.organization).distinct(), pk, field
    )


def _room(actor: Actor, pk: int) -> Room:
    return get_or_404(Room.objects.for_org(actor.organization), pk, "room_id")


def _known_indication(value: str) -> None:
    if value and value not in {i.id for i in indications.indications()}:
        raise ApiError(
            f"There is no indication “{value}”. Use an id such as glabellar-lines or "
            "chronic-migraine, or leave it empty.",
            field="indication",
            status=422,
        )


def _recall_out(r: Recall) -> dict[str, Any]:
    return {
        "id": r.pk,
        "patient": {"id": r.patient_id, "name": r.patient.full_name},
        "clinic_id": r.clinic_id,
        "practitioner_id": r.practitioner_id,
        "indication": r.indication,
        "kind": r.kind,
        "product_id": r.product_id,
        "basis_on": r.basis_on,
        "due_on": r.due_on,
        "earliest_on": r.earliest_on,
        "personalised": r.personalised,
        "state": r.state,
        "state_reason": r.state_reason,
    }


# --- appointments -------------------------------------------------------------------------------


class AppointmentsQuery(DayRange):
    patient: Id | None = Field(None, description="Patient id.")
    clinic: Id | None = Field(None, description="Clinic id.")
    practitioner: Id | None = Field(None, description="Practitioner (user) id.")
    status: StatusName | None = None


@router.get(
    "/appointments", response={200: Page[AppointmentOut], **ERRORS}, summary="List appointments"
)
def list_appointments(request: HttpRequest, q: Query[AppointmentsQuery]) -> Any:
    """Appointments in time order. Days are the caller's clinic's calendar days; with no
    ``from``, ``to`` or ``patient``, from today on. Cancelled ones only when asked for
    (``status=cancelled``)."""
    actor = require(request, "appointment.view")
    q.check_days()
    clinic = actor.clinic  # whose calendar days; UTC days when the token has no clinic
    rows = _appointments(actor).order_by("starts_at", "pk")
    date_from = q.date_from
    if date_from is None and q.date_to is None and q.patient is None:
        date_from = today_at(actor)
    if date_from is not None:
        rows = rows.filter(ends_at__gt=booking.day_bounds(clinic, date_from)[0])  # type: ignore[arg-type]
    if q.date_to is not None:
        rows = rows.filter(starts_at__lt=booking.day_bounds(clinic, q.date_to)[1])  # type: ignore[arg-type]
    if q.patient is not None:
        rows = rows.filter(patient=patient_or_404(actor, q.patient, "patient"))
    if q.clinic is not None:
        rows = rows.filter(clinic=clinic_or_404(actor, q.clinic, "clinic"))
    if q.practitioner is not None:
        rows = rows.filter(practitioner=_staff(actor, q.practitioner, "practitioner"))
    if q.status is not None:
        rows = rows.filter(status=q.status)
    else:
        rows = rows.exclude(status=AppointmentStatus.CANCELLED)
    return page(rows, q, _appointment_out)


@router.post(
    "/appointments",
    response={201: AppointmentOut, 200: AppointmentOut, **ERRORS},
    summary="Book an appointment",
)
def book(request: HttpRequest, payload: BookIn) -> Any:
    """Book a patient with a practitioner. Refused, with the reason, outside opening hours, in
    the past, or when the practitioner or room is taken. Sending the same booking again
    (same patient, practitioner, clinic and start) answers 200 with the appointment already
    made: nothing is booked twice."""
    actor = require(request, "appointment.edit")
    patient = patient_or_404(actor, payload.patient_id, "patient_id")
    clinic = clinic_or_default(actor, payload.clinic_id)
    practitioner = _staff(actor, payload.practitioner_id, "practitioner_id")
    room = _room(actor, payload.room_id) if payload.room_id is not None else None
    recall = (
        get_or_404(Recall.objects.for_org(actor.organization), payload.recall_id, "recall_id")
        if payload.recall_id is not None
        else None
    )
    _known_indication(payload.indication)
    try:
        appointment = booking.book(
            actor,
            patient=patient,
            clinic=clinic,
            practitioner=practitioner,
            starts_at=payload.starts_at,
            kind=payload.kind,
            minutes=payload.minutes,
            room=room,
            indication=payload.indication,
            notes=payload.notes,
            recall=recall,
        )
    except ValidationError:
        existing = booking.same_booking(
            actor,
            patient=patient,
            clinic=clinic,
            practitioner=practitioner,
            starts_at=payload.starts_at,
        )
        if existing is None:
            raise
        return Status(200, _read(actor, existing.pk))
    return Status(201, _read(actor, appointment.pk))


@router.get(
    "/appointments/{appointment_id}",
    response={200: AppointmentOut, **ERRORS},
    summary="Read an appointment",
)
def get_appointment(request: HttpRequest, appointment_id: IdPath) -> Any:
    actor = require(request, "appointment.view")
    return _read(actor, appointment_id)


def _stale(exc: booking.Stale, current: Appointment) -> ApiError:
    return ApiError(
        f"{exc} Nothing was saved. Read the appointment again (it is now version "
        f"{current.version}) and redo the change.",
        field="version",
        status=409,
        extra={"current_version": current.version},
    )


@router.patch(
    "/appointments/{appointment_id}",
    response={200: AppointmentOut, **ERRORS},
    summary="Move or edit an appointment",
)
def change(request: HttpRequest, appointment_id: IdPath, payload: ChangeIn) -> Any:
    """Move (``starts_at``, ``minutes``), or change the practitioner, room, type or notes, of a
    booked or arrived appointment, with the same checks as booking."""
    actor = require(request, "appointment.edit")
    appointment = get_or_404(_appointments(actor), appointment_id)
    sent = payload.model_fields_set
    room: Room | str | None = "keep"
    if "room_id" in sent:
        room = _room(actor, payload.room_id) if payload.room_id is not None else None
    practitioner = (
        _staff(actor, payload.practitioner_id, "practitioner_id")
        if payload.practitioner_id is not None
        else None
    )
    try:
        booking.change(
            actor,
            appointment,
            payload.version,
            starts_at=payload.starts_at,
            minutes=payload.minutes,
            practitioner=practitioner,
            room=room,
            kind=payload.kind,
            notes=payload.notes,
        )
    except booking.Stale as exc:
        raise _stale(exc, get_or_404(_appointments(actor), appointment_id)) from None
    return _read(actor, appointment_id)


@router.post(
    "/appointments/{appointment_id}/status",
    response={200: AppointmentOut, **ERRORS},
    summary="Arrived, done, did not attend, cancelled",
)
def set_status(request: HttpRequest, appointment_id: IdPath, payload: StatusIn) -> Any:
    """Change the status: booked → arrived → done; booked → did not attend; booked or arrived
    → cancelled (with a reason; final: book again). One step back undoes a mis-tap. Cancelling
    or a no-show of an appointment booked for a recall opens the recall again."""
    actor = require(request, "appointment.edit")
    appointment = get_or_404(_appointments(actor), appointment_id)
    try:
        booking.set_status(
            actor,
            appointment,
            payload.status,
            reason=payload.reason,
            expected_version=payload.version,
        )
    except booking.Stale as exc:
        raise _stale(exc, get_or_404(_appointments(actor), appointment_id)) from None
    return _read(actor, appointment_id)


# --- recalls ------------------------------------------------------------------------------------


class RecallsQuery(Paging):
    due_before: Day | None = Field(None, description="Due on or before this day, YYYY-MM-DD.")
    due_after: Day | None = Field(None, description="Due on or after this day, YYYY-MM-DD.")
    state: RecallStateName | Literal["all"] | None = Field(
        None, description="Default: still to act on (open, contacted)."
    )
    patient: Id | None = Field(None, description="Patient id.")
    clinic: Id | None = Field(None, description="Clinic id.")
    indication: str | None = Field(None, max_length=40)


@router.get("/recalls", response={200: Page[RecallOut], **ERRORS}, summary="List recalls")
def list_recalls(request: HttpRequest, q: Query[RecallsQuery]) -> Any:
    """The current recall of each patient and indication (the worklist's rows), soonest due
    first. ``due_before`` is inclusive."""
    actor = require(request, "appointment.view")
    if q.indication:
        _known_indication(q.indication)
    rows = (
        Recall.objects.for_org(actor.organization)
        .filter(is_current=True)
        .select_related("patient")
        .order_by("due_on", "pk")
    )
    if q.state is None:
        rows = rows.filter(state__in=[str(s) for s in OPEN_RECALL_STATES])
    elif q.state != "all":
        rows = rows.filter(state=q.state)
    if q.due_before is not None:
        rows = rows.filter(due_on__lte=q.due_before)
    if q.due_after is not None:
        rows = rows.filter(due_on__gte=q.due_after)
    if q.patient is not None:
        rows = rows.filter(patient=patient_or_404(actor, q.patient, "patient"))
    if q.clinic is not None:
        rows = rows.filter(clinic=clinic_or_404(actor, q.clinic, "clinic"))
    if q.indication:
        rows = rows.filter(indication=q.indication)
    return page(rows, q, _recall_out)
