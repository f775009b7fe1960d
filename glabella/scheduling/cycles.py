"""The migraine cycle planner: after a chronic migraine (PREEMPT) session, the next cycles.

:func:`propose` lays out the next N cycles (4 by default) 12 weeks apart: 84 days, and never
less than the minimum interval the clinical core gives for the product
(``schedule.min_interval_days``). Each cycle is on the same weekday as the one before it, at the
chosen time with the chosen practitioner (and room). A cycle that would fall on a day the
clinic is closed, or when the practitioner or the room is already taken, moves *later* to the
next day that works (never earlier), and says why; the cycles after it count their 12 weeks from
the day it moved to, so no two cycles are ever closer than the interval. A cycle whose date has
already passed (the last treatment was long ago) moves on by whole weeks to the next such
weekday from today.

:func:`book_series` books the cycles the person saw, all in one transaction through
``booking.book`` with one ``series`` id: if any one of them cannot be booked (someone took the
slot in the meantime), nothing is booked and :class:`SeriesRefused` says which cycle and why.
The first cycle answers the patient's current chronic migraine recall (it becomes booked).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, User
from glabella.clinical import schedule
from glabella.patients.models import Patient
from glabella.scheduling import booking, recalls
from glabella.scheduling.models import (
    DEFAULT_MINUTES,
    OPEN_RECALL_STATES,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Recall,
    RecallKind,
    Room,
)

INDICATION = "chronic-migraine"
PREEMPT_INTERVAL_DAYS = 84
"""PREEMPT: every 12 weeks."""
DEFAULT_CYCLES = 4
MAX_CYCLES = 8
MAX_SHIFT_DAYS = 14
"""How many days later a cycle may move to find an open day and a free slot."""


def _fmt(day: date) -> str:
    return f"{day:%d/%m/%Y}"


@dataclass(frozen=True)
class LastTreatment:
    on: date
    product_id: str
    session_id: int | None


def last_treatment(patient: Patient) -> LastTreatment | None:
    """The patient's last chronic migraine treatment (a signed session here or an outside
    record), as the recalls count it."""
    facts = recalls._load_facts(
        patient.organization_id, [(patient.pk, patient.date_of_birth, patient.home_clinic_id)]
    )[patient.pk]
    treated = [t for t in facts.treated if t.indication == INDICATION]
    if not treated:
        return None
    last = max(treated, key=lambda t: t.key)
    return LastTreatment(last.on, last.product_id, last.session_id)


def intervals(product_id: str) -> tuple[int, int | None]:
    """(interval, minimum) in days between two cycles of this product: the minimum from the
    core (84 days for Botox in chronic migraine), and the interval never shorter than it."""
    family = recalls._family(product_id)
    minimum = schedule.min_interval_days(INDICATION, family) if family is not None else None
    return max(PREEMPT_INTERVAL_DAYS, minimum or 0), minimum


@dataclass
class Proposal:
    number: int
    planned_on: date
    starts_at: datetime | None  # aware, in the clinic's zone; None when no day worked
    ends_at: datetime | None
    moves: list[str] = field(default_factory=list)  # why it moved later, day by day

    @property
    def ok(self) -> bool:
        return self.starts_at is not None

    @property
    def moved(self) -> bool:
        return self.ok and self.starts_at is not None and self.starts_at.date() != self.planned_on

    @property
    def local_start(self) -> datetime | None:
        """Naive wall-clock time in the clinic (for display)."""
        return self.starts_at.replace(tzinfo=None) if self.starts_at else None

    @property
    def local_end(self) -> datetime | None:
        return self.ends_at.replace(tzinfo=None) if self.ends_at else None


@dataclass
class CyclePlan:
    patient: Patient
    clinic: Clinic
    practitioner: User
    room: Room | None
    at: time
    minutes: int
    last: LastTreatment
    after: date  # the cycles count from this day: the last treatment or the last booked cycle
    after_what: str
    interval: int
    minimum: int | None
    proposals: list[Proposal]
    recall: Recall | None

    @property
    def bookable(self) -> bool:
        return bool(self.proposals) and all(p.ok for p in self.proposals)

    @property
    def not_before(self) -> date:
        return self.after + timedelta(days=self.minimum or self.interval)


class SeriesRefused(Exception):
    """One cycle of the series could not be booked; nothing was."""

    def __init__(self, number: int, starts_at: datetime, messages: Sequence[str]) -> None:
        self.number = number
        self.starts_at = starts_at
        self.messages = list(messages)
        when = f"{starts_at:%d/%m/%Y} at {starts_at:%H:%M}"
        super().__init__(
            f"Nothing was booked: cycle {number} on {when} cannot be booked. "
            + " ".join(self.messages)
        )


def _why_not(
    clinic: Clinic, practitioner: User, room: Room | None, start: datetime, end: datetime
) -> str:
    """Why this slot does not work ('' when it does)."""
    day = start.date()
    if not booking.opening_intervals(clinic, day):
        return f"{day:%a} {_fmt(day)}: the clinic is closed on {day:%A}s"
    if not booking.is_open(clinic, start, end):
        return f"{day:%a} {_fmt(day)}: outside opening hours ({booking.hours_text(clinic, day)})"
    clash = booking.overlaps(booking.Slot(clinic, practitioner, room, start, end))
    if clash:
        return f"{day:%a} {_fmt(day)}: " + " ".join(clash.values())
    return ""


def _validate_inputs(
    actor: Actor, patient: Patient, clinic: Clinic, practitioner: User, room: Room | None
) -> None:
    actor.require("appointment.view")
    for obj in (patient, clinic, room):
        if obj is not None and obj.organization_id != actor.organization.pk:
            raise PermissionError("That record belongs to another organization.")
    errors: dict[str, str] = {}
    if not booking.practitioners(clinic).filter(pk=practitioner.pk).exists():
        errors["practitioner"] = (
            f"{booking.display_name(practitioner)} does not treat patients at {clinic.name}."
        )
    if room is not None and (room.clinic_id != clinic.pk or not room.is_active):
        errors["room"] = f"{room.name} is not a room in use at {clinic.name}."
    if errors:
        raise ValidationError(errors)


def propose(
    actor: Actor,
    patient: Patient,
    *,
    clinic: Clinic,
    practitioner: User,
    at: time,
    count: int = DEFAULT_CYCLES,
    minutes: int | None = None,
    room: Room | None = None,
    first_on: date | None = None,
    now: datetime | None = None,
) -> CyclePlan:
    """The next COUNT cycles for PATIENT (see the module docstring). Reads only."""
    _validate_inputs(actor, patient, clinic, practitioner, room)
    if not 1 <= count <= MAX_CYCLES:
        raise ValidationError({"count": f"Plan between 1 and {MAX_CYCLES} cycles."})
    minutes = minutes or DEFAULT_MINUTES[AppointmentType.MIGRAINE_CYCLE]
    if not 5 <= minutes <= booking.MAX_MINUTES:
        raise ValidationError({"minutes": "An appointment lasts between 5 minutes and 8 hours."})
    last = last_treatment(patient)
    if last is None:
        raise ValidationError(
            {
                "patient": f"{patient.full_name} has no signed chronic migraine treatment yet: "
                "the cycles are planned from the last one."
            }
        )
    interval, minimum = intervals(last.product_id)
    zone = booking.clinic_zone(clinic)
    now = now or timezone.now()
    today = timezone.localtime(now, zone).date()
    after, after_what = anchor(patient, last, now)
    earliest = after + timedelta(days=minimum or interval)
    if first_on is not None and first_on < earliest:
        raise ValidationError(
            {
                "first_on": f"The first cycle cannot be before {_fmt(earliest)}: "
                f"{minimum or interval} days after {after_what}."
            }
        )
    candidate = first_on or after + timedelta(days=interval)
    proposals: list[Proposal] = []
    for number in range(1, count + 1):
        moves: list[str] = []
        planned = candidate
        start = datetime.combine(candidate, at, tzinfo=zone)
        if start < now:
            weeks = max(1, -(-(today - planned).days // 7))
            candidate = planned + timedelta(weeks=weeks)
            if datetime.combine(candidate, at, tzinfo=zone) < now:
                candidate += timedelta(weeks=1)
                weeks += 1
            moves.append(
                f"{planned:%a} {_fmt(planned)} has passed: moved on {weeks} "
                f"week{'s' if weeks > 1 else ''} to the same weekday"
            )
        chosen: tuple[datetime, datetime] | None = None
        for shift in range(MAX_SHIFT_DAYS + 1):
            day = candidate + timedelta(days=shift)
            start = datetime.combine(day, at, tzinfo=zone)
            end = start + timedelta(minutes=minutes)
            why = _why_not(clinic, practitioner, room, start, end)
            if not why:
                chosen = (start, end)
                break
            moves.append(why)
        if chosen is None:
            proposals.append(Proposal(number, planned, None, None, moves))
            candidate = candidate + timedelta(days=interval)
            continue
        proposals.append(Proposal(number, planned, chosen[0], chosen[1], moves))
        candidate = chosen[0].date() + timedelta(days=interval)
    return CyclePlan(
        patient=patient,
        clinic=clinic,
        practitioner=practitioner,
        room=room,
        at=at,
        minutes=minutes,
        last=last,
        after=after,
        after_what=after_what,
        interval=interval,
        minimum=minimum,
        proposals=proposals,
        recall=_open_recall(patient),
    )


def anchor(patient: Patient, last: LastTreatment, now: datetime | None = None) -> tuple[date, str]:
    """The day the next cycle counts from, and what it is: the last treatment, or the last
    migraine cycle already booked after it (planning again continues the series)."""
    booked = booked_cycles(patient, now)
    if booked:
        final = booked[-1]
        day = timezone.localtime(final.starts_at, booking.clinic_zone(final.clinic)).date()
        if day > last.on:
            return day, f"the cycle already booked for {_fmt(day)}"
    return last.on, f"the last treatment on {_fmt(last.on)}"


def _open_recall(patient: Patient) -> Recall | None:
    recall = recalls.current_for(patient, INDICATION, RecallKind.RETREATMENT)
    return recall if recall is not None and recall.state in OPEN_RECALL_STATES else None


def booked_cycles(patient: Patient, now: datetime | None = None) -> list[Appointment]:
    """The patient's migraine cycles still to come (booked or arrived)."""
    now = now or timezone.now()
    return list(
        Appointment.objects.filter(
            organization_id=patient.organization_id,
            patient=patient,
            kind=AppointmentType.MIGRAINE_CYCLE,
            status__in=(AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED),
            ends_at__gte=now,
        )
        .select_related("practitioner", "clinic", "room")
        .order_by("starts_at")
    )


def book_series(
    actor: Actor,
    patient: Patient,
    *,
    clinic: Clinic,
    practitioner: User,
    starts: Sequence[datetime],
    minutes: int | None = None,
    room: Room | None = None,
    now: datetime | None = None,
) -> list[Appointment]:
    """Book every cycle in STARTS (aware, or naive clinic wall-clock times) as one series, all
    or nothing. Raises :class:`SeriesRefused` naming the cycle that could not be booked."""
    actor.require("appointment.edit")
    _validate_inputs(actor, patient, clinic, practitioner, room)
    if not starts:
        raise ValidationError({"starts": "There are no cycles to book."})
    if len(starts) > MAX_CYCLES:
        raise ValidationError({"count": f"Book at most {MAX_CYCLES} cycles at once."})
    zone = booking.clinic_zone(clinic)
    local = [
        (s if timezone.is_aware(s) else s.replace(tzinfo=zone)).astimezone(zone) for s in starts
    ]
    last = last_treatment(patient)
    if last is None:
        raise ValidationError(
            {"patient": f"{patient.full_name} has no signed chronic migraine treatment yet."}
        )
    interval, minimum = intervals(last.product_id)
    gap = minimum or interval
    previous, what = anchor(patient, last, now)
    for number, start in enumerate(local, start=1):
        if (start.date() - previous).days < gap:
            raise ValidationError(
                {
                    "starts": f"Cycle {number} on {_fmt(start.date())} is less than {gap} days "
                    f"after {what}: nothing was booked."
                }
            )
        previous = start.date()
        what = f"cycle {number} ({_fmt(previous)})"
    series = uuid.uuid4()
    recall = _open_recall(patient)
    booked: list[Appointment] = []
    with transaction.atomic():
        for number, start in enumerate(local, start=1):
            try:
                booked.append(
                    booking.book(
                        actor,
                        patient=patient,
                        clinic=clinic,
                        practitioner=practitioner,
                        starts_at=start,
                        kind=AppointmentType.MIGRAINE_CYCLE,
                        minutes=minutes or DEFAULT_MINUTES[AppointmentType.MIGRAINE_CYCLE],
                        room=room,
                        indication=INDICATION,
                        notes=f"Migraine cycle {number} of {len(local)}",
                        recall=recall if number == 1 else None,
                        series=series,
                        now=now,
                    )
                )
            except ValidationError as exc:
                raise SeriesRefused(number, start, exc.messages) from None
    return booked
