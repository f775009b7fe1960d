"""What the dashboard shows about the day's scheduling: today's appointments at the clinic,
recalls due this week, and how the reminders went. Read-only; everything is scoped to the
actor's organization and, where a row names a clinic, to the actor's clinic.

Front desk sees who is coming and when, never clinical data: the indication of an
appointment or a recall is only filled in for roles that may see clinical data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic
from glabella.clinical import indications
from glabella.patients.models import Patient
from glabella.scheduling import booking
from glabella.scheduling.models import (
    OPEN_RECALL_STATES,
    Appointment,
    AppointmentStatus,
    Recall,
    Reminder,
    ReminderStatus,
)

RECALLS_SHOWN = 5
RECALL_WEEK_DAYS = 7


def url_or(name: str, fallback: str = "", *args: object) -> str:
    """The URL named NAME if that page exists yet, else FALLBACK (pages other people build)."""
    try:
        return reverse(name, args=args or None)
    except NoReverseMatch:
        return fallback


indication_name = indications.display_name


@dataclass(frozen=True)
class TodayRow:
    appointment: Appointment
    starts_at: datetime
    ends_at: datetime
    practitioner: str
    indication: str  # empty unless the role may see clinical data
    link: str


@dataclass(frozen=True)
class Today:
    day: date
    rows: list[TodayRow]
    arrived: int
    done: int
    to_come: int
    no_show: int
    cancelled: int
    day_link: str


@dataclass(frozen=True)
class RecallRow:
    recall: Recall
    indication: str
    overdue: bool


@dataclass(frozen=True)
class Recalls:
    until: date
    due_this_week: int
    overdue: int
    first: list[RecallRow]
    link: str


@dataclass(frozen=True)
class Messages:
    sent_today: int
    sent_week: int
    failed_today: int
    failed_week: int
    retrying: int
    link: str


@dataclass
class Scheduling:
    clinic: Clinic
    today: Today
    recalls: Recalls
    messages: Messages
    patients: list[Patient] = field(default_factory=list)  # shown by name: audited as viewed


def today_at(actor: Actor, clinic: Clinic, now: datetime) -> Today:
    day = booking.local(now, clinic).date()
    start, end = booking.day_bounds(clinic, day)
    rows = list(booking.appointments_between(actor, start, end, clinic=clinic))
    cancelled = (
        Appointment.objects.for_org(actor.organization)
        .filter(
            clinic=clinic,
            starts_at__gte=start,
            starts_at__lt=end,
            status=AppointmentStatus.CANCELLED,
        )
        .count()
    )
    clinical = actor.can("patient.view_clinical")
    has_page = bool(url_or("scheduling:appointment", "", 1))
    shown = [
        TodayRow(
            appointment=a,
            starts_at=booking.local(a.starts_at, clinic),
            ends_at=booking.local(a.ends_at, clinic),
            practitioner=booking.display_name(a.practitioner),
            indication=indication_name(a.indication) if clinical else "",
            link=reverse("scheduling:appointment", args=[a.pk]) if has_page else "",
        )
        for a in rows
    ]

    def count(status: str) -> int:
        return sum(a.status == status for a in rows)

    return Today(
        day=day,
        rows=shown,
        arrived=count(AppointmentStatus.ARRIVED),
        done=count(AppointmentStatus.DONE),
        to_come=count(AppointmentStatus.BOOKED),
        no_show=count(AppointmentStatus.NO_SHOW),
        cancelled=cancelled,
        day_link=url_or("scheduling:day"),
    )


def recalls_due(actor: Actor, clinic: Clinic, now: datetime) -> Recalls:
    """Open recalls (to contact, contacted) due within the next 7 days or overdue, for the
    clinic (or for no clinic in particular), overdue first."""
    actor.require("appointment.view")
    today = booking.local(now, clinic).date()
    until = today + timedelta(days=RECALL_WEEK_DAYS - 1)
    rows = Recall.objects.for_org(actor.organization).filter(
        Q(clinic=clinic) | Q(clinic__isnull=True),
        is_current__in=[True],  # see recalls._filtered: lets SQLite use the index
        state__in=OPEN_RECALL_STATES,
        due_on__lte=until,
    )
    counts = rows.aggregate(
        week=Count("pk", filter=Q(due_on__gte=today)),
        overdue=Count("pk", filter=Q(due_on__lt=today)),
    )
    clinical = actor.can("patient.view_clinical")
    first = [
        RecallRow(
            recall=r,
            indication=indication_name(r.indication) if clinical else "",
            overdue=r.due_on < today,
        )
        for r in rows.select_related("patient").order_by("due_on", "pk")[:RECALLS_SHOWN]
    ]
    return Recalls(
        until=until,
        due_this_week=counts["week"],
        overdue=counts["overdue"],
        first=first,
        link=url_or("scheduling:recalls", "/scheduling/recalls/"),
    )


def messages_sent(actor: Actor, clinic: Clinic, now: datetime) -> Messages:
    """Reminders, confirmations and recall invitations sent and failed (today, and today with
    the 6 days before), for the clinic."""
    actor.require("appointment.view")
    today = booking.local(now, clinic).date()
    day_start, day_end = booking.day_bounds(clinic, today)
    week_start = booking.day_bounds(clinic, today - timedelta(days=6))[0]
    rows = Reminder.objects.for_org(actor.organization).filter(
        Q(clinic=clinic) | Q(clinic__isnull=True)
    )
    failed = Q(status__in=(ReminderStatus.FAILED, ReminderStatus.UNCERTAIN))
    counts = rows.aggregate(
        sent_today=Count(
            "pk",
            filter=Q(status=ReminderStatus.SENT, sent_at__gte=day_start, sent_at__lt=day_end),
        ),
        sent_week=Count(
            "pk",
            filter=Q(status=ReminderStatus.SENT, sent_at__gte=week_start, sent_at__lt=day_end),
        ),
        failed_today=Count("pk", filter=failed & Q(due_at__gte=day_start, due_at__lt=day_end)),
        failed_week=Count("pk", filter=failed & Q(due_at__gte=week_start, due_at__lt=day_end)),
        retrying=Count("pk", filter=Q(status=ReminderStatus.PENDING, attempts__gt=0)),
    )
    return Messages(**counts, link=url_or("scheduling:messages", "/scheduling/messages/"))


def scheduling_for(actor: Actor, now: datetime | None = None) -> Scheduling | None:
    """The dashboard's scheduling panels, or None for a role that may not see appointments
    (or an actor with no clinic)."""
    if not actor.can("appointment.view") or actor.clinic is None:
        return None
    now = now or timezone.now()
    clinic = actor.clinic
    today = today_at(actor, clinic, now)
    recalls = recalls_due(actor, clinic, now)
    patients = {row.appointment.patient.pk: row.appointment.patient for row in today.rows}
    patients.update({row.recall.patient.pk: row.recall.patient for row in recalls.first})
    return Scheduling(
        clinic=clinic,
        today=today,
        recalls=recalls,
        messages=messages_sent(actor, clinic, now),
        patients=list(patients.values()),
    )
