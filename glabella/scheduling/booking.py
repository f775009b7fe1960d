"""Booking, moving and changing the status of appointments.

Every write names its actor, checks the role, stays inside the actor's organization, and is
audited. The checks a person booking can fix (a time already passed, outside opening hours,
an overlap) come back as ``ValidationError`` keyed by field, in plain words; the database
refuses overlaps too (migration 0002), and a race lost to another tablet comes back as the
same message.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, User
from glabella.accounts.roles import Role
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.clinical import indications
from glabella.patients.models import Patient
from glabella.prepared import Prepared
from glabella.scheduling.models import (
    ACTIVE_STATUSES,
    DEFAULT_MINUTES,
    DEFAULT_OPENING_HOURS,
    DEFAULT_REMINDER_HOURS,
    STATUS_MOVES,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    OpeningHours,
    Recall,
    RecallState,
    Room,
    SchedulingSettings,
)

PRACTITIONER_ROLES = (Role.PRESCRIBER, Role.INJECTOR)
"""Who can be booked: the roles that treat patients."""

MAX_MINUTES = 8 * 60
PAST_GRACE = timedelta(minutes=5)  # a walk-in booked "now" is not "in the past"


class Stale(Exception):
    """Someone else changed the appointment since the page was loaded."""


# --- clinic settings -------------------------------------------------------------------------


def settings_for(clinic: Clinic) -> SchedulingSettings:
    """The clinic's scheduling settings; the first call creates them with the default opening
    hours (Mon-Fri 09:00-18:00, Sat 09:00-13:00) and reminders 48 h and 2 h before."""
    found = SchedulingSettings.objects.filter(clinic=clinic).first()
    if found is not None:
        return found
    with transaction.atomic():
        found, created = SchedulingSettings.objects.get_or_create(
            clinic=clinic,
            defaults={
                "organization_id": clinic.organization_id,
                "reminder_hours": list(DEFAULT_REMINDER_HOURS),
            },
        )
        if created and not OpeningHours.objects.filter(clinic=clinic).exists():
            _create_hours(clinic, DEFAULT_OPENING_HOURS)
    return found


def _create_hours(clinic: Clinic, spans: Iterable[tuple[int, time, time]]) -> None:
    """Opening intervals (weekday, opens, closes) for CLINIC."""
    OpeningHours.objects.bulk_create(
        OpeningHours(
            organization_id=clinic.organization_id,
            clinic=clinic,
            weekday=day,
            opens=opens,
            closes=closes,
        )
        for day, opens, closes in spans
    )


def clinic_zone(clinic: Clinic | None) -> ZoneInfo:
    """The clinic's time zone (UTC when there is no clinic or it has none)."""
    return ZoneInfo((clinic.timezone if clinic else "") or "UTC")


def opening_intervals(clinic: Clinic, day: date) -> list[tuple[datetime, datetime]]:
    """The clinic's open intervals on DAY (its own local date), as aware datetimes."""
    settings_for(clinic)
    zone = clinic_zone(clinic)
    rows = OpeningHours.objects.filter(clinic=clinic, weekday=day.weekday()).order_by("opens")
    return [
        (datetime.combine(day, r.opens, tzinfo=zone), datetime.combine(day, r.closes, tzinfo=zone))
        for r in rows
    ]


def is_open(clinic: Clinic, starts_at: datetime, ends_at: datetime) -> bool:
    """True when the whole appointment falls inside one opening interval of its day."""
    local_day = starts_at.astimezone(clinic_zone(clinic)).date()
    return any(
        opens <= starts_at and ends_at <= closes
        for opens, closes in opening_intervals(clinic, local_day)
    )


def hours_text(clinic: Clinic, day: date) -> str:
    intervals = opening_intervals(clinic, day)
    if not intervals:
        return f"The clinic is closed on {day:%A}s."
    spans = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in intervals)
    return f"On {day:%A}s the clinic is open {spans}."


def practitioners(clinic: Clinic) -> QuerySet[User]:
    """Staff who can be booked at CLINIC (active prescribers and injectors)."""
    return (
        User.objects.filter(
            is_active=True,
            memberships__clinic=clinic,
            memberships__is_active=True,
            memberships__role__in=PRACTITIONER_ROLES,
        )
        .distinct()
        .order_by("last_name", "first_name", "email")
    )


def display_name(user: User) -> str:
    return user.get_full_name() or user.email


def local(value: datetime, clinic: Clinic) -> datetime:
    return timezone.localtime(value, clinic_zone(clinic))


# --- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    clinic: Clinic
    practitioner: User
    room: Room | None
    starts_at: datetime
    ends_at: datetime


def _check_scope(actor: Actor, *objects: Any) -> None:
    for obj in objects:
        if obj is not None and getattr(obj, "organization_id", actor.organization.pk) != (
            actor.organization.pk
        ):
            raise PermissionError("That record belongs to another organization.")


def _minutes(raw: Any, kind: str) -> int:
    if raw in (None, ""):
        return DEFAULT_MINUTES.get(kind, 30)
    try:
        minutes = int(raw)
    except (TypeError, ValueError):
        raise ValidationError({"minutes": "Give the length in whole minutes."}) from None
    if not 5 <= minutes <= MAX_MINUTES:
        raise ValidationError({"minutes": "An appointment lasts between 5 minutes and 8 hours."})
    return minutes


def _aware(value: Any, clinic: Clinic, field: str = "starts_at") -> datetime:
    """VALUE as an aware UTC datetime; a naive one is the clinic's wall-clock time.

    Converted to UTC so that lengths and comparisons are in real minutes even on the day the
    clocks change (Python compares and subtracts two datetimes of one zone by wall clock)."""
    if not isinstance(value, datetime):
        raise ValidationError({field: "Choose a date and a time."})
    if timezone.is_naive(value):
        value = value.replace(tzinfo=clinic_zone(clinic))
    return value.replace(second=0, microsecond=0).astimezone(UTC)


def overlaps(slot: Slot, exclude: Appointment | None = None) -> dict[str, str]:
    """What the slot collides with, as messages keyed by field (empty when free)."""
    # scoped: a practitioner's clash anywhere blocks the slot; narrowed to practitioner/room below
    clash = Appointment.objects.filter(
        status__in=ACTIVE_STATUSES, starts_at__lt=slot.ends_at, ends_at__gt=slot.starts_at
    )
    if exclude is not None and exclude.pk:
        clash = clash.exclude(pk=exclude.pk)
    errors: dict[str, str] = {}
    mine = clash.filter(practitioner=slot.practitioner).select_related("clinic").first()
    if mine is not None:
        where = "" if mine.clinic_id == slot.clinic.pk else f" at {mine.clinic.name}"
        errors["practitioner"] = (
            f"{display_name(slot.practitioner)} already has an appointment "
            f"{_span(mine, slot.clinic)}{where}. Choose another time or practitioner."
        )
    if slot.room is not None:
        taken = clash.filter(room=slot.room).first()
        if taken is not None:
            errors["room"] = (
                f"{slot.room.name} is already booked {_span(taken, slot.clinic)}. "
                "Choose another time or room."
            )
    return errors


def _span(appointment: Appointment, clinic: Clinic) -> str:
    start = local(appointment.starts_at, clinic)
    end = local(appointment.ends_at, clinic)
    return f"{start:%d/%m/%Y} {start:%H:%M}-{end:%H:%M}"


def _validate(
    actor: Actor,
    slot: Slot,
    *,
    exclude: Appointment | None = None,
    now: datetime | None = None,
    check_past: bool = True,
) -> None:
    errors: dict[str, str] = {}
    now = now or timezone.now()
    if check_past and slot.starts_at < now - PAST_GRACE:
        errors["starts_at"] = "That time has already passed. Choose a time from now on."
    if slot.ends_at <= slot.starts_at:
        errors["minutes"] = "The appointment must end after it starts."
    elif not is_open(slot.clinic, slot.starts_at, slot.ends_at):
        day = local(slot.starts_at, slot.clinic).date()
        errors.setdefault(
            "starts_at",
            f"That is outside {slot.clinic.name}'s opening hours. {hours_text(slot.clinic, day)}",
        )
    if not practitioners(slot.clinic).filter(pk=slot.practitioner.pk).exists():
        errors["practitioner"] = (
            f"{display_name(slot.practitioner)} does not treat patients at {slot.clinic.name}."
        )
    if slot.room is not None and (slot.room.clinic_id != slot.clinic.pk or not slot.room.is_active):
        errors["room"] = f"{slot.room.name} is not a room in use at {slot.clinic.name}."
    if not errors:
        errors.update(overlaps(slot, exclude))
    if errors:
        raise ValidationError(errors)


# PostgreSQL's answers when tablets booking the same slot at once wait on each other inside the
# exclusion constraint: one of them is chosen to give way (deadlock detected, or a
# serialization failure). A single booking is simply saved again: it then waits for the others
# to finish and is refused as an overlap (or goes through, if they gave up). A transaction that
# already holds other bookings (a series of cycles) deadlocks again, and after the last attempt
# is refused like an overlap, so its whole series is rolled back and the other tablet goes on.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
SAVE_ATTEMPTS = 3


def _save_refusing_overlap(appointment: Appointment, slot: Slot) -> None:
    """Save in a savepoint; an overlap the database refuses (another tablet won the race)
    comes back as the same message the form would show."""
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                appointment.save()
            return
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRY_SQLSTATES:
                raise
            if attempt < SAVE_ATTEMPTS:
                continue
        except IntegrityError as exc:
            if "overlap" not in str(exc):
                raise
        errors = overlaps(slot, appointment) or {
            "starts_at": "Someone has just booked that time. Choose another time."
        }
        raise ValidationError(errors)


# --- booking ---------------------------------------------------------------------------------


def book(
    actor: Actor,
    *,
    patient: Patient,
    clinic: Clinic,
    practitioner: User,
    starts_at: datetime,
    kind: str,
    minutes: Any = None,
    room: Room | None = None,
    indication: str = "",
    notes: str = "",
    recall: Recall | None = None,
    series: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book PATIENT with PRACTITIONER at CLINIC. Booking for a recall closes the recall."""
    actor.require("appointment.edit")
    _check_scope(actor, patient, clinic, room, recall)
    if kind not in AppointmentType.values:
        raise ValidationError({"kind": "Choose the type of appointment."})
    if indication and indication not in {i.id for i in indications.indications()}:
        raise ValidationError({"indication": "Choose an indication from the list."})
    if recall is not None and recall.patient_id != patient.pk:
        raise ValidationError({"recall": "That recall is for another patient."})
    starts_at = _aware(starts_at, clinic)
    slot = Slot(
        clinic,
        practitioner,
        room,
        starts_at,
        starts_at + timedelta(minutes=_minutes(minutes, kind)),
    )
    with transaction.atomic():
        _validate(actor, slot, now=now)
        appointment = Appointment(
            organization=actor.organization,
            clinic=clinic,
            patient=patient,
            practitioner=practitioner,
            room=room,
            kind=kind,
            indication=indication or (recall.indication if recall else ""),
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            notes=notes.strip(),
            recall=recall,
            series=series,
            created_by=actor.user,
        )
        _save_refusing_overlap(appointment, slot)
        if recall is not None:
            _set_recall(
                actor, recall, RecallState.BOOKED, f"booked for {_span(appointment, clinic)}"
            )
        record(
            actor,
            Action.CREATE,
            appointment,
            label=f"{appointment.get_kind_display()} {_span(appointment, clinic)}",
            detail={
                "patient": patient.pk,
                "practitioner": practitioner.pk,
                "room": room.pk if room else None,
                "recall": recall.pk if recall else None,
            },
        )
    return appointment


def _claim(appointment: Appointment, expected_version: int | None) -> Appointment:
    fresh = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if expected_version is not None and fresh.version != expected_version:
        raise Stale(
            "Someone else changed this appointment while you were looking at it. "
            "The calendar now shows their change; make yours again if it is still needed."
        )
    return fresh


def change(
    actor: Actor,
    appointment: Appointment,
    expected_version: int | None,
    *,
    starts_at: datetime | None = None,
    minutes: Any = None,
    practitioner: User | None = None,
    room: Room | str | None = "keep",
    kind: str | None = None,
    notes: str | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move or edit an appointment (drag on the calendar, or the edit form)."""
    actor.require("appointment.edit")
    _check_scope(actor, appointment, practitioner, room if isinstance(room, Room) else None)
    with transaction.atomic():
        appt = _claim(appointment, expected_version)
        if appt.status not in (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED):
            raise ValidationError(
                {"status": f"A {appt.get_status_display().lower()} appointment cannot be moved."}
            )
        before = {
            "starts_at": appt.starts_at.isoformat(),
            "ends_at": appt.ends_at.isoformat(),
            "practitioner": appt.practitioner_id,
            "room": appt.room_id,
            "kind": appt.kind,
        }
        if kind is not None:
            if kind not in AppointmentType.values:
                raise ValidationError({"kind": "Choose the type of appointment."})
            appt.kind = kind
        length = appt.ends_at - appt.starts_at
        if minutes not in (None, ""):
            length = timedelta(minutes=_minutes(minutes, appt.kind))
        moved = starts_at is not None
        if starts_at is not None:
            appt.starts_at = _aware(starts_at, appt.clinic)
        appt.ends_at = appt.starts_at + length
        if practitioner is not None:
            appt.practitioner = practitioner
        if room != "keep":
            appt.room = room if isinstance(room, Room) else None
        if notes is not None:
            appt.notes = notes.strip()
        slot = Slot(appt.clinic, appt.practitioner, appt.room, appt.starts_at, appt.ends_at)
        _validate(actor, slot, exclude=appt, now=now, check_past=moved)
        appt.version += 1
        _save_refusing_overlap(appt, slot)
        after = {
            "starts_at": appt.starts_at.isoformat(),
            "ends_at": appt.ends_at.isoformat(),
            "practitioner": appt.practitioner_id,
            "room": appt.room_id,
            "kind": appt.kind,
        }
        changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        record(
            actor,
            Action.UPDATE,
            appt,
            label=f"changed: {', '.join(changed) or 'notes'}",
            detail=changed,
        )
    return appt


def set_status(
    actor: Actor,
    appointment: Appointment,
    status: str,
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> Appointment:
    """Arrived, done, did not attend, cancelled (with a reason), or one step back (undo)."""
    actor.require("appointment.edit")
    _check_scope(actor, appointment)
    with transaction.atomic():
        appt = _claim(appointment, expected_version)
        if status not in STATUS_MOVES.get(appt.status, frozenset()):
            wanted = (
                AppointmentStatus(status).label if status in AppointmentStatus.values else status
            )
            raise ValidationError(
                {
                    "status": f"A {appt.get_status_display().lower()} appointment cannot be "
                    f"marked {wanted.lower()}."
                }
            )
        reason = reason.strip()
        if status == AppointmentStatus.CANCELLED and len(reason) < 3:
            raise ValidationError({"reason": "Say why the appointment is cancelled."})
        slot = Slot(appt.clinic, appt.practitioner, appt.room, appt.starts_at, appt.ends_at)
        if status in ACTIVE_STATUSES and appt.status not in ACTIVE_STATUSES:
            # Undoing a no-show takes the time back: it must still be free.
            errors = overlaps(slot, appt)
            if errors:
                raise ValidationError(errors)
        previous = appt.status
        appt.status = status
        appt.status_reason = reason[:300]
        appt.status_at = timezone.now()
        appt.version += 1
        _save_refusing_overlap(appt, slot)
        if appt.recall_id is not None and status in (
            AppointmentStatus.CANCELLED,
            AppointmentStatus.NO_SHOW,
        ):
            recall = Recall.objects.select_for_update().get(pk=appt.recall_id)
            if recall.state == RecallState.BOOKED and recall.is_current:
                _set_recall(
                    actor,
                    recall,
                    RecallState.OPEN,
                    f"appointment {AppointmentStatus(status).label.lower()}: {reason}".strip(": "),
                )
        record(
            actor,
            Action.UPDATE,
            appt,
            label=f"{previous} -> {status}",
            detail={"from": previous, "to": status, "reason": reason},
        )
    return appt


def _set_recall(actor: Actor, recall: Recall, state: str, reason: str) -> None:
    Recall.objects.filter(pk=recall.pk).update(
        state=state, state_reason=reason[:300], state_at=timezone.now(), state_by=actor.user
    )
    recall.state = state
    record(actor, Action.UPDATE, recall, label=f"recall {state}", detail={"reason": reason})


# --- reading ---------------------------------------------------------------------------------


def appointments_between(
    actor: Actor,
    start: datetime,
    end: datetime,
    *,
    clinic: Clinic | None = None,
    practitioner: User | None = None,
    include_cancelled: bool = False,
) -> QuerySet[Appointment]:
    actor.require("appointment.view")
    rows = Appointment.objects.for_org(actor.organization).filter(
        starts_at__lt=end, ends_at__gt=start
    )
    if clinic is not None:
        rows = rows.filter(clinic=clinic)
    if practitioner is not None:
        rows = rows.filter(practitioner=practitioner)
    if not include_cancelled:
        rows = rows.exclude(status=AppointmentStatus.CANCELLED)
    return rows.select_related("patient", "practitioner", "room", "clinic").order_by(
        "starts_at", "pk"
    )


def day_bounds(clinic: Clinic, day: date) -> tuple[datetime, datetime]:
    """Midnight to midnight of DAY in the clinic, in UTC (23 or 25 hours when the clocks
    change: arithmetic on two times of one zone would count wall-clock hours)."""
    zone = clinic_zone(clinic)
    start = datetime.combine(day, time(0, 0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def upcoming_for_patient(patient: Patient, now: datetime | None = None) -> QuerySet[Appointment]:
    return _upcoming(patient.organization_id, patient.pk, now or timezone.now())


def _upcoming(org: int, patient: int, now: datetime) -> QuerySet[Appointment]:
    return (
        Appointment.objects.filter(organization_id=org, patient_id=patient)
        .filter(Q(ends_at__gte=now))
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("practitioner", "clinic", "room")
        # Two appointments may start together (two clinics, a double booking): the id decides,
        # so the same ten come in the same order whichever plan the database takes.
        .order_by("starts_at", "pk")
    )


# The patient's page lists the next ten on every opening: compiled once (glabella/prepared.py).
_NEXT_TEN = Prepared(
    lambda org, patient, now: _upcoming(org, patient, now)[:10], kinds=(int, int, datetime)
)


def next_appointments(patient: Patient, now: datetime | None = None) -> list[Appointment]:
    """The patient's next ten appointments not cancelled (ending from NOW on), soonest first,
    with their practitioner, clinic and room."""
    return _NEXT_TEN(patient.organization_id, patient.pk, now or timezone.now())


def member_of(user: User, clinic: Clinic) -> bool:
    return Membership.objects.filter(user=user, clinic=clinic, is_active=True).exists()


def same_booking(
    actor: Actor,
    *,
    patient: Patient,
    clinic: Clinic,
    practitioner: User,
    starts_at: datetime,
) -> Appointment | None:
    """An appointment already holding this very booking (same patient, practitioner and start):
    what a second tap on "Book" or a reload of the form would have created again."""
    try:
        start = _aware(starts_at, clinic)
    except ValidationError:
        return None
    return (
        Appointment.objects.for_org(actor.organization)
        .filter(
            patient=patient,
            practitioner=practitioner,
            clinic=clinic,
            starts_at=start,
            status__in=ACTIVE_STATUSES,
        )
        .first()
    )


# --- clinic scheduling settings (the owner's page) ------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_REMINDER_HOURS = 14 * 24

_CLOCK = r"(\d{1,2})(?:[:.h](\d{2}))?"
_INTERVAL = re.compile(rf"^{_CLOCK}\s*(?:-|\u2013|\u2014|to)\s*{_CLOCK}$", re.IGNORECASE)
_CLOSED_WORDS = {"", "closed", "-", "none", "shut"}


def _clock(hours: str, minutes: str | None) -> time | None:
    h, m = int(hours), int(minutes or 0)
    if h == 24 and m == 0:
        return time(23, 59)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return time(h, m)


def parse_intervals(text: str, day_name: str) -> list[tuple[time, time]]:
    """ "09:00-13:00, 14:00-18:00" -> [(09:00, 13:00), (14:00, 18:00)]; empty or "closed" -> [].

    Lenient about the way people write times ("9-13", "9.30 to 17.30", an en dash); refuses in
    words what it cannot read, a span that ends before it starts, and spans that overlap."""
    text = (text or "").strip()
    if text.lower() in _CLOSED_WORDS:
        return []
    spans: list[tuple[time, time]] = []
    for part in re.split(r"[,;]|\band\b", text):
        part = part.strip()
        if not part:
            continue
        match = _INTERVAL.match(part)
        opens = closes = None
        if match:
            opens = _clock(match.group(1), match.group(2))
            closes = _clock(match.group(3), match.group(4))
        if opens is None or closes is None:
            raise ValidationError(
                f"{day_name}: “{part}” is not a time span. Write the hours as 09:00-13:00, "
                "with a comma between spans (09:00-13:00, 14:00-18:00), or leave it empty "
                "when the clinic is closed."
            )
        if closes <= opens:
            raise ValidationError(
                f"{day_name}: {opens:%H:%M}-{closes:%H:%M} closes before it opens."
            )
        spans.append((opens, closes))
    spans.sort()
    for (a_open, a_close), (b_open, b_close) in itertools.pairwise(spans):
        if b_open < a_close:
            raise ValidationError(
                f"{day_name}: {a_open:%H:%M}-{a_close:%H:%M} and {b_open:%H:%M}-{b_close:%H:%M} "
                "overlap. Write each opening once."
            )
    return spans


def intervals_text(spans: Iterable[tuple[time, time]]) -> str:
    return ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans)


def week_hours(clinic: Clinic) -> dict[int, list[tuple[time, time]]]:
    """The clinic's opening hours by weekday (0 = Monday); a closed day has an empty list."""
    settings_for(clinic)
    week: dict[int, list[tuple[time, time]]] = {day: [] for day in range(7)}
    for row in OpeningHours.objects.filter(clinic=clinic).order_by("weekday", "opens"):
        week[row.weekday].append((row.opens, row.closes))
    return week


def parse_reminder_hours(text: Any) -> list[int]:
    """ "48, 2" -> [48, 2] (largest first); empty -> [] (no reminders)."""
    if isinstance(text, list | tuple):
        text = ", ".join(str(v) for v in text)
    parts = [p.strip() for p in re.split(r"[,;\s]+", str(text or "").strip()) if p.strip()]
    hours: set[int] = set()
    for part in parts:
        cleaned = part.lower().removesuffix("hours").removesuffix("h").strip()
        if not cleaned.isdigit():
            raise ValidationError(
                {
                    "reminder_hours": f"“{part}” is not a number of hours. Write whole hours "
                    "separated by commas, for example 48, 2 - or leave it empty for no reminders."
                }
            )
        value = int(cleaned)
        if not 1 <= value <= MAX_REMINDER_HOURS:
            raise ValidationError(
                {
                    "reminder_hours": "A reminder goes between 1 hour and 14 days (336 hours) "
                    "before the appointment."
                }
            )
        hours.add(value)
    if len(hours) > 4:
        raise ValidationError({"reminder_hours": "Four reminders per appointment at most."})
    return sorted(hours, reverse=True)


def _require_owner_of(actor: Actor, clinic: Clinic) -> None:
    actor.require("organization.manage")
    _check_scope(actor, clinic)


def set_opening_hours(
    actor: Actor, clinic: Clinic, week: Mapping[int, Sequence[tuple[time, time]]]
) -> list[str]:
    """Replace the clinic's opening hours. Returns the days that changed, as words.

    Appointments already booked keep their time even if it now falls outside the hours."""
    _require_owner_of(actor, clinic)
    errors: dict[str, str] = {}
    clean: dict[int, list[tuple[time, time]]] = {}
    for day in range(7):
        spans = list(week.get(day, []))
        try:
            clean[day] = parse_intervals(intervals_text(spans), WEEKDAYS[day])
        except ValidationError as exc:
            errors[f"day_{day}"] = " ".join(exc.messages)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        before = week_hours(clinic)
        changed = [WEEKDAYS[d] for d in range(7) if before[d] != clean[d]]
        if not changed:
            return []
        OpeningHours.objects.filter(clinic=clinic).delete()
        _create_hours(
            clinic,
            ((day, opens, closes) for day, spans in clean.items() for opens, closes in spans),
        )
        record(
            actor,
            Action.UPDATE,
            settings_for(clinic),
            label=f"opening hours of {clinic.name}: {', '.join(changed)}",
            detail={
                WEEKDAYS[d]: [
                    intervals_text(before[d]) or "closed",
                    intervals_text(clean[d]) or "closed",
                ]
                for d in range(7)
                if before[d] != clean[d]
            },
        )
    return changed


SETTING_FIELDS = (
    "cosmetic_recall_days",
    "quiet_start",
    "quiet_end",
    "reminder_hours",
    "recall_invite_days",
    "send_confirmations",
)


def _whole(value: Any, field: str, low: int, high: int, message: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError({field: message}) from None
    if not low <= number <= high:
        raise ValidationError({field: message})
    return number


def update_settings(actor: Actor, clinic: Clinic, data: Mapping[str, Any]) -> list[str]:
    """Save the clinic's recall, quiet-hours and reminder choices. Returns the changed fields."""
    _require_owner_of(actor, clinic)
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}

    def attempt(field: str, fn: Any) -> None:
        try:
            values[field] = fn()
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.messages)

    attempt(
        "cosmetic_recall_days",
        lambda: _whole(
            data.get("cosmetic_recall_days"),
            "cosmetic_recall_days",
            90,
            123,
            "Call cosmetic patients back after 90 to 123 days (3 to 4 months): toxin is not "
            "given again sooner than 90 days.",
        ),
    )
    attempt(
        "recall_invite_days",
        lambda: _whole(
            data.get("recall_invite_days"),
            "recall_invite_days",
            0,
            60,
            "Send recall invitations 0 to 60 days before the due date.",
        ),
    )
    attempt("reminder_hours", lambda: parse_reminder_hours(data.get("reminder_hours", "")))
    for field, words in (("quiet_start", "start"), ("quiet_end", "end")):
        value = data.get(field)
        if not isinstance(value, time):
            errors.setdefault(field, []).append(f"Give the time quiet hours {words}, as HH:MM.")
        else:
            values[field] = value.replace(second=0, microsecond=0)
    if "quiet_start" in values and values.get("quiet_start") == values.get("quiet_end"):
        errors.setdefault("quiet_end", []).append(
            "Quiet hours must end at another time than they start (for example 20:00 to 08:00)."
        )
    values["send_confirmations"] = bool(data.get("send_confirmations"))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        current = SchedulingSettings.objects.select_for_update().get(pk=settings_for(clinic).pk)
        changed: dict[str, list[Any]] = {}
        for field in SETTING_FIELDS:
            old, new = getattr(current, field), values[field]
            if old != new:
                changed[field] = [str(old), str(new)]
                setattr(current, field, new)
        if changed:
            current.save(update_fields=list(changed))
            record(
                actor,
                Action.UPDATE,
                current,
                label=f"scheduling settings of {clinic.name}: {', '.join(changed)}",
                detail=changed,
            )
        if "cosmetic_recall_days" in changed:
            # Cosmetic patients last treated here are due on the new interval at once.
            from glabella.scheduling import recalls

            recalls.clinic_interval_changed(clinic)
    return list(changed)


def _room_name(name: Any) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError({"name": "Give the room a name, for example “Room 1”."})
    if len(name) > 100:
        raise ValidationError({"name": "Keep the room's name under 100 characters."})
    return name


def _unique_room_name(clinic: Clinic, name: str, exclude: Room | None = None) -> None:
    taken = Room.objects.filter(clinic=clinic, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError({"name": f"{clinic.name} already has a room called {name}."})


def add_room(actor: Actor, clinic: Clinic, name: Any) -> Room:
    _require_owner_of(actor, clinic)
    name = _room_name(name)
    with transaction.atomic():
        _unique_room_name(clinic, name)
        room = Room.objects.create(organization=actor.organization, clinic=clinic, name=name)
        record(actor, Action.CREATE, room, label=f"room {name} at {clinic.name}")
    return room


def rename_room(actor: Actor, room: Room, name: Any) -> Room:
    actor.require("organization.manage")
    _check_scope(actor, room)
    name = _room_name(name)
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        if locked.name == name:
            return locked
        _unique_room_name(locked.clinic, name, exclude=locked)
        old = locked.name
        locked.name = name
        locked.save(update_fields=["name"])
        record(
            actor,
            Action.UPDATE,
            locked,
            label=f"room {old} renamed {name}",
            detail={"name": [old, name]},
        )
    return locked


def set_room_active(actor: Actor, room: Room, active: bool) -> Room:
    """Take a room out of use (no new bookings; booked appointments keep it) or back in."""
    actor.require("organization.manage")
    _check_scope(actor, room)
    with transaction.atomic():
        locked = Room.objects.select_for_update().get(pk=room.pk)
        if locked.is_active != active:
            locked.is_active = active
            locked.save(update_fields=["is_active"])
            record(
                actor,
                Action.UPDATE,
                locked,
                label=f"room {locked.name} {'back in use' if active else 'out of use'}",
                detail={"is_active": [not active, active]},
            )
    return locked


def upcoming_in_room(room: Room, now: datetime | None = None) -> int:
    return Appointment.objects.filter(
        room=room, status__in=ACTIVE_STATUSES, starts_at__gte=now or timezone.now()
    ).count()
