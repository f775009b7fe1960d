"""Booking confirmations, appointment reminders and recall invitations: planning and sending.

One ``Reminder`` row is one message to one patient. Its ``key`` names what it is for
(``appt:<appointment>:<start>:48h``, ``appt:<appointment>:<start>:confirm``, ``recall:<recall>``,
``resend:<reminder>``) and is unique, so planning twice, or two workers planning at once, never
makes two.

Planning (``plan``) looks at booked appointments and open recalls and makes the rows that are due
within a day; it decides the channel from the patient's preference and records why a message
will not be sent (no consent, opted out, prefers a phone call, no address, quiet hours would make
it too late). It keeps not-yet-sent rows in step with the patient and the appointment: a moved
or cancelled appointment's pending messages are cancelled (the new time gets fresh ones, its
start time is part of the key), a patient who agrees to reminders again gets them back.

Sending (``send_due``) takes one due row at a time by a conditional UPDATE pending -> sending;
only the worker whose UPDATE changed the row sends it, and the claim is committed before the
message leaves, so:

- two workers never send the same row;
- a worker killed mid-send leaves at most that one row in ``sending``; after the lease it becomes
  ``uncertain`` (it may have gone out) and waits for a person to decide - it is never resent by
  itself;
- a failure known to be before delivery (connection refused, recipient refused, the SMS gateway
  refused or timed out on an idempotent request) puts the row back to pending with a back-off
  (5 min, 30 min, 2 h, 6 h), and marks it failed after the last attempt, with the reason in words.

Everything is re-checked when a message is about to go: the appointment still booked at that
time, the patient still agreeing, the address still there.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Min, Q, QuerySet, Value, When
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.patients.models import Channel, Patient
from glabella.scheduling import ics, messages, sms
from glabella.scheduling.booking import clinic_zone, settings_for
from glabella.scheduling.models import (
    Appointment,
    AppointmentStatus,
    MessageChannel,
    MessageKind,
    Recall,
    RecallState,
    Reminder,
    ReminderStatus,
    SchedulingSettings,
)

log = logging.getLogger(__name__)

BACKOFF = (
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
"""How long to wait after the 1st, 2nd, 3rd and 4th failed attempt."""
MAX_ATTEMPTS = len(BACKOFF) + 1
TOO_LATE = timedelta(minutes=30)
"""A reminder that cannot go out at least this long before the appointment is not sent."""
PLAN_AHEAD = timedelta(days=1)
"""Rows are made this long before they are due (the log shows what is coming)."""
CONFIRM_WITHIN = timedelta(days=2)
"""Appointments booked or moved this recently get a confirmation (older ones were confirmed
when they were booked, or before reminders were switched on)."""
RECALL_AT = time(10, 0)
"""The clinic's local time at which a recall invitation is due on its day."""
BATCH = 500
KEY_CHUNK = 500

UNCERTAIN_TEXT = "The worker stopped while sending; it may have gone out — check before resending."


def lease() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "GLABELLA_REMINDER_LEASE_SECONDS", 600)))


# --- small helpers ----------------------------------------------------------------------------


def _day(value: datetime | date, clinic: Clinic | None) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(clinic_zone(clinic))
    return f"{value:%d/%m/%Y}"


def _when(value: datetime, clinic: Clinic | None) -> str:
    local = value.astimezone(clinic_zone(clinic))
    return f"{local:%d/%m/%Y %H:%M}"


def _stamp(value: datetime) -> str:
    return timezone.localtime(value, ZoneInfo("UTC")).strftime("%Y%m%dT%H%MZ")


def appointment_key(appointment_pk: int, starts_at: datetime, slot: str) -> str:
    """``slot`` is ``confirm`` or ``<hours>h``."""
    return f"appt:{appointment_pk}:{_stamp(starts_at)}:{slot}"


def _key_start(key: str) -> str | None:
    parts = key.split(":")
    return parts[2] if len(parts) == 4 and parts[0] == "appt" else None


def hours_of(config: SchedulingSettings) -> list[int]:
    """The clinic's reminder times in whole hours before the appointment (sensible ones only)."""
    found: set[int] = set()
    for raw in config.reminder_hours or []:
        try:
            hours = int(raw)
        except (TypeError, ValueError):
            continue
        if 0 < hours <= 24 * 30:
            found.add(hours)
    return sorted(found, reverse=True)


def after_quiet_hours(moment: datetime, config: SchedulingSettings, clinic: Clinic) -> datetime:
    """MOMENT, or the end of the clinic's quiet hours when MOMENT falls inside them (in the
    clinic's own time zone; quiet hours may run over midnight)."""
    start, end = config.quiet_start, config.quiet_end
    if start == end:
        return moment
    zone = clinic_zone(clinic)
    local = moment.astimezone(zone)
    now = local.time()
    if start < end:
        quiet = start <= now < end
        day = local.date()
    else:
        quiet = now >= start or now < end
        day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not quiet:
        return moment
    return datetime.combine(day, end, tzinfo=zone)


@dataclass(frozen=True)
class Route:
    channel: str
    address: str
    reason: str  # empty when the message may be sent


def route(patient: Patient, clinic: Clinic | None) -> Route:
    """How PATIENT wants messages, or why none may be sent."""
    channel = (
        MessageChannel.SMS if patient.preferred_channel == Channel.SMS else MessageChannel.EMAIL
    )
    if not patient.reminder_consent:
        if patient.reminder_opt_out_at is not None:
            when = _day(patient.reminder_opt_out_at, clinic)
            return Route(channel, "", f"Patient opted out on {when}.")
        return Route(channel, "", "Patient has not agreed to reminders.")
    if patient.preferred_channel == Channel.PHONE:
        return Route(channel, "", "Patient prefers a phone call: no message is sent.")
    if patient.preferred_channel == Channel.NONE:
        return Route(channel, "", "Patient asked for no reminders.")
    if channel == MessageChannel.SMS:
        number = sms.normalise_number(patient.phone)
        if not number:
            return Route(channel, "", "No mobile number for this patient.")
        return Route(channel, number, "")
    if not patient.email.strip():
        return Route(channel, "", "No e-mail address for this patient.")
    return Route(channel, patient.email.strip(), "")


# --- planning ---------------------------------------------------------------------------------


@dataclass
class Wanted:
    key: str
    organization_id: int
    clinic: Clinic
    patient: Patient
    kind: str
    due_at: datetime
    appointment_id: int | None = None
    recall_id: int | None = None
    status: str = ReminderStatus.PENDING
    channel: str = MessageChannel.EMAIL
    skip_reason: str = ""


def _decide(item: Wanted, config: SchedulingSettings, starts_at: datetime | None) -> None:
    """Channel, quiet hours and 'too late' for ITEM (sets status, channel, due_at, reason)."""
    found = route(item.patient, item.clinic)
    item.channel = found.channel
    planned = item.due_at
    item.due_at = after_quiet_hours(planned, config, item.clinic)
    if found.reason:
        item.status, item.skip_reason = ReminderStatus.SKIPPED, found.reason
        return
    if starts_at is not None and item.due_at > starts_at - TOO_LATE:
        starts = _when(starts_at, item.clinic)
        quiet_end = config.quiet_end.strftime("%H:%M")
        why = f"quiet hours until {quiet_end} and " if item.due_at != planned else ""
        item.status = ReminderStatus.SKIPPED
        item.skip_reason = f"Too late: {why}the appointment starts at {starts}."


def _clinic_settings() -> dict[int, SchedulingSettings]:
    # scoped: the reminder worker runs over every organization
    found = {s.clinic_id: s for s in SchedulingSettings.objects.select_related("clinic")}
    for clinic in Clinic.objects.exclude(pk__in=list(found)):
        made = settings_for(clinic)
        made.clinic = clinic
        found[clinic.pk] = made
    return found


def _chunks(items: list[Any], size: int = KEY_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _horizon(now: datetime, configs: dict[int, SchedulingSettings]) -> datetime:
    longest = max((max(hours_of(c), default=0) for c in configs.values()), default=0)
    return now + timedelta(hours=longest) + PLAN_AHEAD


def _appointment_candidates(now: datetime, horizon: datetime) -> QuerySet[Appointment]:
    """Booked appointments that may need a message now: starting soon, or booked recently."""
    return (
        # scoped: the reminder worker runs over every organization
        Appointment.objects.filter(status=AppointmentStatus.BOOKED, starts_at__gt=now)
        .filter(Q(starts_at__lte=horizon) | Q(updated_at__gte=now - CONFIRM_WITHIN))
        .order_by()
    )


def _recall_candidates(now: datetime, configs: dict[int, SchedulingSettings]) -> QuerySet[Recall]:
    """Open recalls due within the longest invitation notice (and a day)."""
    longest = max((c.recall_invite_days for c in configs.values()), default=0)
    today = now.date()
    # scoped: the reminder worker runs over every organization
    return Recall.objects.filter(
        is_current__in=[True],  # see recalls._filtered: lets SQLite use the index
        state=RecallState.OPEN,
        due_on__gte=today - timedelta(days=1),
        due_on__lte=today + timedelta(days=longest) + PLAN_AHEAD + timedelta(days=1),
    ).order_by()


def _wanted_for_appointments(now: datetime, configs: dict[int, SchedulingSettings]) -> list[Wanted]:
    horizon = _horizon(now, configs)
    rows = _appointment_candidates(now, horizon).select_related("patient")
    wanted: list[Wanted] = []
    for appt in rows:
        config = configs.get(appt.clinic_id)
        if config is None:
            continue
        clinic = config.clinic
        common = {
            "organization_id": appt.organization_id,
            "clinic": clinic,
            "patient": appt.patient,
            "appointment_id": appt.pk,
        }
        if config.send_confirmations and appt.updated_at >= now - CONFIRM_WITHIN:
            item = Wanted(
                key=appointment_key(appt.pk, appt.starts_at, "confirm"),
                kind=MessageKind.CONFIRMATION,
                due_at=appt.updated_at,
                **common,
            )
            _decide(item, config, appt.starts_at)
            wanted.append(item)
        for hours in hours_of(config):
            due = appt.starts_at - timedelta(hours=hours)
            if due > now + PLAN_AHEAD:
                continue  # planned on a later pass
            if due < appt.updated_at - timedelta(minutes=1):
                continue  # it was already past when the appointment was booked or moved
            item = Wanted(
                key=appointment_key(appt.pk, appt.starts_at, f"{hours}h"),
                kind=MessageKind.REMINDER,
                due_at=due,
                **common,
            )
            _decide(item, config, appt.starts_at)
            wanted.append(item)
    return wanted


def _wanted_for_recalls(now: datetime, configs: dict[int, SchedulingSettings]) -> list[Wanted]:
    rows = list(_recall_candidates(now, configs).select_related("patient"))
    if not rows:
        return []
    first_clinic: dict[int, int] = {}
    for org_id, clinic_id in Clinic.objects.order_by("pk").values_list("organization_id", "pk"):
        first_clinic.setdefault(org_id, clinic_id)
    booked = dict(
        # scoped: the reminder worker runs over every organization
        Appointment.objects.filter(
            status=AppointmentStatus.BOOKED,
            starts_at__gt=now,
            patient_id__in={r.patient_id for r in rows},
        )
        .values("patient_id")
        .annotate(first=Min("starts_at"))
        .values_list("patient_id", "first")
    )
    wanted: list[Wanted] = []
    for recall in rows:
        clinic_id = (
            recall.clinic_id
            or recall.patient.home_clinic_id
            or first_clinic.get(recall.organization_id)
        )
        config = configs.get(clinic_id) if clinic_id else None
        if config is None:
            continue
        clinic = config.clinic
        if recall.due_on < now.astimezone(clinic_zone(clinic)).date():
            continue  # overdue: the worklist shows it; an invitation is for before the due date
        invite_on = recall.due_on - timedelta(days=config.recall_invite_days)
        due = max(
            datetime.combine(invite_on, RECALL_AT, tzinfo=clinic_zone(clinic)), recall.created_at
        )
        if due > now + PLAN_AHEAD:
            continue
        item = Wanted(
            key=f"recall:{recall.pk}",
            organization_id=recall.organization_id,
            clinic=clinic,
            patient=recall.patient,
            kind=MessageKind.RECALL,
            due_at=due,
            recall_id=recall.pk,
        )
        _decide(item, config, None)
        first = booked.get(recall.patient_id)
        if item.status == ReminderStatus.PENDING and first is not None:
            item.status = ReminderStatus.SKIPPED
            item.skip_reason = f"Already booked for {_when(first, clinic)}."
        wanted.append(item)
    return wanted


def _stale_reason(
    key: str,
    appt_status: str | None,
    starts_at: datetime | None,
    clinic: Clinic | None,
    now: datetime,
) -> str:
    """Why a planned appointment message no longer fits its appointment ('' when it does)."""
    if appt_status is None or starts_at is None:
        return ""
    if appt_status == AppointmentStatus.CANCELLED:
        return "The appointment was cancelled."
    if appt_status != AppointmentStatus.BOOKED:
        return f"The appointment is marked {AppointmentStatus(appt_status).label.lower()}."
    planned_for = _key_start(key)
    if planned_for is not None and planned_for != _stamp(starts_at):
        return f"The appointment moved to {_when(starts_at, clinic)}."
    if starts_at - TOO_LATE < now:
        return f"Too late: the appointment starts at {_when(starts_at, clinic)}."
    return ""


def _cancel_stale(now: datetime, wanted_keys: set[str]) -> int:
    """Cancel pending planned messages whose appointment was cancelled or moved, or whose
    recall was closed."""
    cancelled = 0
    rows = (
        # scoped: the reminder worker runs over every organization
        Reminder.objects.filter(status=ReminderStatus.PENDING)
        .filter(Q(appointment__isnull=False) | Q(recall__isnull=False))
        .values_list(
            "pk",
            "key",
            "appointment__status",
            "appointment__starts_at",
            "recall__is_current",
            "recall__state",
            "clinic_id",
        )
    )
    clinics: dict[int, Clinic] = {}
    reasons: dict[str, list[int]] = defaultdict(list)
    for pk, key, appt_status, starts_at, recall_current, recall_state, clinic_id in rows:
        if key in wanted_keys:
            continue
        if clinic_id and clinic_id not in clinics:
            clinics[clinic_id] = Clinic.objects.get(pk=clinic_id)
        clinic = clinics.get(clinic_id) if clinic_id else None
        reason = _stale_reason(key, appt_status, starts_at, clinic, now)
        if not reason and recall_state is not None:
            reason = _recall_closed(recall_current, recall_state)
        if reason:
            reasons[reason].append(pk)
    for reason, pks in reasons.items():
        # scoped: the reminder worker runs over every organization
        cancelled += Reminder.objects.filter(pk__in=pks, status=ReminderStatus.PENDING).update(
            status=ReminderStatus.CANCELLED, skip_reason=reason[:300]
        )
    return cancelled


def _recall_closed(is_current: bool, state: str) -> str:
    """Why a recall no longer wants an invitation ('' while it is open)."""
    if not is_current:
        return "The patient has been treated since."
    if state != RecallState.OPEN:
        return f"The recall is now “{RecallState(state).label.lower()}”."
    return ""


@dataclass
class Planned:
    planned: int = 0
    skipped: int = 0
    cancelled: int = 0
    updated: int = 0


def plan(now: datetime | None = None) -> Planned:
    """Make the reminder rows that are due within a day, and keep unsent ones up to date.

    Idempotent (rows are unique by key) and safe to run in several workers at once. A pass over
    thousands of appointments is a handful of queries, plus one INSERT per batch of new rows and
    one UPDATE per unsent row whose state changed (consent, channel, a moved appointment)."""
    now = now or timezone.now()
    configs = _clinic_settings()
    wanted = _wanted_for_appointments(now, configs) + _wanted_for_recalls(now, configs)
    by_key = {w.key: w for w in wanted}
    result = Planned()

    # The rows already made for these appointments and recalls: one query, whatever their number.
    existing: dict[str, dict[str, Any]] = {}
    if wanted:
        appointments = _appointment_candidates(now, _horizon(now, configs)).values("pk")
        recalls = _recall_candidates(now, configs).values("pk")
        # scoped: the reminder worker runs over every organization
        for row in Reminder.objects.filter(
            Q(appointment_id__in=appointments) | Q(recall_id__in=recalls)
        ).values("pk", "key", "status", "attempts", "channel", "skip_reason", "due_at"):
            if row["key"] in by_key:
                existing[row["key"]] = row

    new = [w for w in wanted if w.key not in existing]
    Reminder.objects.bulk_create(
        [
            Reminder(
                organization_id=w.organization_id,
                clinic=w.clinic,
                patient=w.patient,
                appointment_id=w.appointment_id,
                recall_id=w.recall_id,
                kind=w.kind,
                channel=w.channel,
                key=w.key,
                due_at=w.due_at,
                next_attempt_at=w.due_at,
                status=w.status,
                skip_reason=w.skip_reason[:300],
            )
            for w in new
        ],
        ignore_conflicts=True,  # another worker planning at the same moment made it
    )
    result.planned = sum(1 for w in new if w.status == ReminderStatus.PENDING)
    result.skipped = sum(1 for w in new if w.status == ReminderStatus.SKIPPED)

    # Rows not yet sent follow the patient and the clinic: consent given or withdrawn, another
    # channel, quiet hours changed. Each update is conditional on the state we read, so it never
    # touches a row a worker has just claimed.
    for key, row in existing.items():
        want = by_key[key]
        status = row["status"]
        editable = (status == ReminderStatus.PENDING and row["attempts"] == 0) or (
            status in (ReminderStatus.SKIPPED, ReminderStatus.CANCELLED) and want.due_at > now
        )
        if not editable:
            continue
        target = (want.status, want.skip_reason[:300], want.channel, want.due_at)
        if target == (row["status"], row["skip_reason"], row["channel"], row["due_at"]):
            continue
        # scoped: the reminder worker runs over every organization
        result.updated += Reminder.objects.filter(
            pk=row["pk"], status=status, attempts=row["attempts"]
        ).update(
            status=want.status,
            skip_reason=want.skip_reason[:300],
            channel=want.channel,
            due_at=want.due_at,
            next_attempt_at=want.due_at,
        )
    result.cancelled = _cancel_stale(now, set(by_key))
    return result


# --- sending ----------------------------------------------------------------------------------


class _Retry(Exception):
    """Not delivered, and certainly so: try again later."""


class _Uncertain(Exception):
    """It may or may not have been delivered: a person must decide."""


_REFUSALS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPHeloError,
    smtplib.SMTPNotSupportedError,
    smtplib.SMTPAuthenticationError,
)


def _smtp_words(exc: BaseException) -> str:
    """An SMTP failure in words, with the server's own answer when there is one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = []
        for address, (code, text) in exc.recipients.items():
            said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            parts.append(f"the mail server refused the address {address}: {code} {said}")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        said = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        return f"The mail server refused the message: {exc.smtp_code} {said}."
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"Could not reach the mail server {settings.EMAIL_HOST}:{settings.EMAIL_PORT} "
            "(connection refused)."
        )
    if isinstance(exc, TimeoutError):
        return f"The mail server {settings.EMAIL_HOST} did not answer in time."
    if isinstance(exc, socket.gaierror):
        return f"The mail server name {settings.EMAIL_HOST} could not be found."
    return f"Could not talk to the mail server ({type(exc).__name__}: {exc})."


def _ics_for(appointment: Appointment, clinic: Clinic) -> str:
    location = ", ".join(p for p in (clinic.name, " ".join(clinic.address.split())) if p)
    event = ics.Event(
        uid=ics.appointment_uid(appointment.pk),
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        summary=f"Appointment at {clinic.name}",
        location=location,
        sequence=appointment.version,
    )
    return ics.calendar([event])


def _send_email(reminder: Reminder, to: str, composed: messages.Composed, clinic: Clinic) -> str:
    sender = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    domain = sender.rpartition("@")[2] or "glabella.invalid"
    message_id = make_msgid(domain=domain)
    message = EmailMessage(
        subject=composed.subject,
        body=composed.body,
        from_email=formataddr((clinic.name, sender)),
        to=[to],
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{composed.opt_out_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    if reminder.kind == MessageKind.CONFIRMATION and reminder.appointment is not None:
        message.attach("appointment.ics", _ics_for(reminder.appointment, clinic), "text/calendar")
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except Exception as exc:  # nothing was handed over
        raise _Retry(_smtp_words(exc)) from exc
    try:
        accepted = connection.send_messages([message])
    except _REFUSALS as exc:  # the server said no: not delivered
        raise _Retry(_smtp_words(exc)) from exc
    except Exception as exc:  # broke off while handing the message over
        raise _Uncertain(
            f"The connection to the mail server broke while the message was being handed over "
            f"({type(exc).__name__}: {exc}); it may have gone out — check before resending."
        ) from exc
    finally:
        with contextlib.suppress(Exception):  # already handed over or refused
            connection.close()
    if not accepted:
        raise _Retry("The mail server did not accept the message.")
    return message_id


def _send_sms(reminder: Reminder, to: str, composed: messages.Composed) -> str:
    try:
        gateway = sms.provider()
    except Exception as exc:  # not set up: nothing was sent
        reason = exc.reason if isinstance(exc, sms.SmsError) else f"{type(exc).__name__}: {exc}"
        raise _Retry(f"The SMS provider is not usable: {reason}") from exc
    try:
        ref = gateway.send(to, composed.body, f"glabella-{reminder.pk}-{reminder.key}")
    except sms.SmsError as exc:
        if exc.retry_safe:
            raise _Retry(exc.reason) from exc
        raise _Uncertain(f"{exc.reason} It may have gone out — check before resending.") from exc
    except Exception as exc:  # a provider of one's own that broke its contract
        raise _Uncertain(
            f"The SMS provider failed unexpectedly ({type(exc).__name__}: {exc}); "
            "it may have gone out — check before resending."
        ) from exc
    return str(ref)[:200]


@dataclass
class Sent:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    cancelled: int = 0
    uncertain: int = 0


def _mine(pk: int, worker_id: str) -> QuerySet[Reminder]:
    """The row, while this worker holds it (a late finish after the lease still counts)."""
    # scoped: the reminder worker runs over every organization
    return Reminder.objects.filter(
        pk=pk,
        claimed_by=worker_id,
        status__in=(ReminderStatus.SENDING, ReminderStatus.UNCERTAIN),
    )


def _still_wanted(reminder: Reminder, now: datetime) -> tuple[str, str] | None:
    """(status, reason) when the message must not go out any more; None when it may."""
    clinic = reminder.clinic
    appt = reminder.appointment
    if appt is not None:
        reason = _stale_reason(reminder.key, appt.status, appt.starts_at, clinic, now)
        if reason:
            status = (
                ReminderStatus.SKIPPED
                if reason.startswith("Too late")
                else ReminderStatus.CANCELLED
            )
            return status, reason
    recall = reminder.recall
    if recall is not None:
        reason = _recall_closed(recall.is_current, recall.state)
        if reason:
            return ReminderStatus.CANCELLED, reason
    return None


def _send_one(pk: int, worker_id: str, now: datetime, cache: dict, out: Sent) -> None:
    # scoped: the reminder worker runs over every organization
    reminder = Reminder.objects.select_related(
        "patient", "clinic", "appointment", "appointment__practitioner", "recall"
    ).get(pk=pk)
    clinic = reminder.clinic or reminder.patient.home_clinic
    if clinic is None:
        clinic = Clinic.objects.filter(organization_id=reminder.organization_id).order_by("pk")[0]
    stop = _still_wanted(reminder, now)
    if stop is None:
        found = route(reminder.patient, clinic)
        if found.reason:
            stop = (ReminderStatus.SKIPPED, found.reason)
    if stop is not None:
        status, reason = stop
        done = _mine(pk, worker_id).update(status=status, skip_reason=reason[:300])
        if done and status == ReminderStatus.SKIPPED:
            out.skipped += done
        else:
            out.cancelled += done
        return
    try:
        composed = messages.compose(
            reminder.kind,
            found.channel,
            patient=reminder.patient,
            clinic=clinic,
            appointment=reminder.appointment,
            recall=reminder.recall,
            cache=cache,
        )
    except Exception as exc:  # nothing was sent
        log.exception("reminder %s could not be written", pk)
        _failed_attempt(reminder, worker_id, now, f"The message could not be written ({exc}).", out)
        return
    try:
        if found.channel == MessageChannel.SMS:
            ref = _send_sms(reminder, found.address, composed)
        else:
            ref = _send_email(reminder, found.address, composed, clinic)
    except _Retry as exc:
        _failed_attempt(reminder, worker_id, now, str(exc), out)
        return
    except _Uncertain as exc:
        out.uncertain += _mine(pk, worker_id).update(
            status=ReminderStatus.UNCERTAIN,
            channel=found.channel,
            to_address=found.address[:254],
            subject=composed.subject[:200],
            attempts=reminder.attempts + 1,
            last_error=str(exc),
        )
        return
    out.sent += _mine(pk, worker_id).update(
        status=ReminderStatus.SENT,
        sent_at=timezone.now(),
        channel=found.channel,
        to_address=found.address[:254],
        subject=composed.subject[:200],
        provider_ref=ref[:200],
        attempts=reminder.attempts + 1,
        last_error="",
    )


def _failed_attempt(
    reminder: Reminder, worker_id: str, now: datetime, reason: str, out: Sent
) -> None:
    """Back to pending with a back-off, or failed after the last attempt or when a retry would
    arrive too late for the appointment."""
    attempts = reminder.attempts + 1
    reason = reason[:1000]
    if attempts >= MAX_ATTEMPTS:
        out.failed += _mine(reminder.pk, worker_id).update(
            status=ReminderStatus.FAILED,
            attempts=attempts,
            last_error=f"{reason} Gave up after {attempts} attempts.",
        )
        return
    clinic = reminder.clinic
    next_at = now + BACKOFF[attempts - 1]
    if clinic is not None:
        next_at = after_quiet_hours(next_at, settings_for(clinic), clinic)
    appt = reminder.appointment
    if appt is not None and next_at > appt.starts_at - TOO_LATE:
        out.failed += _mine(reminder.pk, worker_id).update(
            status=ReminderStatus.FAILED,
            attempts=attempts,
            last_error=f"{reason} No time left to try again before the appointment.",
        )
        return
    out.retrying += _mine(reminder.pk, worker_id).update(
        status=ReminderStatus.PENDING,
        attempts=attempts,
        next_attempt_at=next_at,
        last_error=f"{reason} Attempt {attempts} of {MAX_ATTEMPTS}; next try at "
        f"{_when(next_at, clinic)}.",
    )


def claim(pk: int, worker_id: str, now: datetime) -> bool:
    """Take one due reminder for WORKER_ID: True only for the one worker whose UPDATE moved it
    from pending to sending. Committed at once (no surrounding transaction)."""
    return bool(
        # scoped: the reminder worker runs over every organization
        Reminder.objects.filter(
            pk=pk, status=ReminderStatus.PENDING, next_attempt_at__lte=now
        ).update(status=ReminderStatus.SENDING, claimed_by=worker_id, claimed_at=timezone.now())
    )


def send_due(
    now: datetime | None = None,
    worker_id: str = "",
    *,
    should_stop: Callable[[], bool] | None = None,
) -> Sent:
    """Send every reminder that is due, one at a time, each claimed before it is sent."""
    now = now or timezone.now()
    worker_id = worker_id or default_worker_id()
    out = Sent()
    cache: dict = {}
    seen: set[int] = set()
    while True:
        # A row this pass has handled is no longer due (sent, failed, skipped, or waiting for a
        # later retry), so each batch brings new rows; `seen` only guards against a loop.
        # scoped: the reminder worker runs over every organization
        due = Reminder.objects.filter(
            status=ReminderStatus.PENDING, next_attempt_at__lte=now
        ).order_by("next_attempt_at", "pk")
        fresh = [pk for pk in due.values_list("pk", flat=True)[:BATCH] if pk not in seen]
        if not fresh:
            break
        for pk in fresh:
            seen.add(pk)
            if should_stop is not None and should_stop():
                return out
            if not claim(pk, worker_id, now):
                continue  # another worker has it
            try:
                _send_one(pk, worker_id, now, cache, out)
            except Exception:
                # Something broke around the send (the database went away...). Leave the row
                # in `sending`: after the lease it becomes uncertain for a person to check.
                log.exception("reminder %s: unexpected failure while sending", pk)
                raise
    return out


def sweep_stale(now: datetime | None = None, lease_for: timedelta | None = None) -> int:
    """Mark messages left in `sending` longer than the lease as uncertain (never resent)."""
    now = now or timezone.now()
    # scoped: the reminder worker runs over every organization
    return Reminder.objects.filter(
        status=ReminderStatus.SENDING, claimed_at__lt=now - (lease_for or lease())
    ).update(status=ReminderStatus.UNCERTAIN, last_error=UNCERTAIN_TEXT)


def default_worker_id() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@dataclass
class PassResult:
    planned: Planned
    sent: Sent
    swept: int

    def summary(self) -> str:
        s, p = self.sent, self.planned
        text = (
            f"Reminders: {p.planned} planned, {s.sent} sent, {s.failed} failed, "
            f"{p.skipped + s.skipped} skipped"
        )
        extra = []
        if s.retrying:
            extra.append(f"{s.retrying} to retry")
        if p.cancelled + s.cancelled:
            extra.append(f"{p.cancelled + s.cancelled} cancelled")
        if s.uncertain + self.swept:
            extra.append(f"{s.uncertain + self.swept} may not have gone out")
        return text + (f" ({', '.join(extra)})" if extra else "") + "."


def run_pass(
    now: datetime | None = None,
    worker_id: str = "",
    *,
    lease_for: timedelta | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PassResult:
    """One pass: sweep stale claims, plan, send what is due."""
    swept = sweep_stale(now, lease_for)
    planned = plan(now)
    sent = send_due(now, worker_id, should_stop=should_stop)
    return PassResult(planned, sent, swept)


# --- people acting on the log -----------------------------------------------------------------


def _check_org(actor: Actor, reminder: Reminder) -> None:
    if reminder.organization_id != actor.organization.pk:
        raise PermissionError("That message belongs to another organization.")


def resend(actor: Actor, reminder: Reminder, now: datetime | None = None) -> Reminder:
    """A new message for a failed or uncertain one (a person decided). Audited. At most one
    resend per message: a second click finds it already done."""
    actor.require("appointment.edit")
    _check_org(actor, reminder)
    now = now or timezone.now()
    if reminder.status not in (ReminderStatus.FAILED, ReminderStatus.UNCERTAIN):
        raise ValidationError(
            f"Only a failed message or one that may not have gone out can be sent again "
            f"(this one is “{reminder.get_status_display().lower()}”)."
        )
    clinic = reminder.clinic
    due = now
    if clinic is not None:
        due = after_quiet_hours(now, settings_for(clinic), clinic)
    try:
        with transaction.atomic():
            fresh = Reminder.objects.create(
                organization_id=reminder.organization_id,
                clinic=reminder.clinic,
                patient=reminder.patient,
                appointment=reminder.appointment,
                recall=reminder.recall,
                kind=reminder.kind,
                channel=reminder.channel,
                key=f"resend:{reminder.pk}",
                due_at=due,
                next_attempt_at=due,
            )
            record(
                actor,
                Action.CREATE,
                fresh,
                label=f"resend of {reminder.get_kind_display().lower()} to {reminder.patient}",
                detail={"resend_of": reminder.pk, "previous_status": reminder.status},
            )
    except IntegrityError:
        raise ValidationError("This message has already been sent again.") from None
    return fresh


def resent_ids(pks: Iterable[int]) -> set[int]:
    """Which of the reminders PKS have been sent again (a `resend:` row exists)."""
    keys = [f"resend:{pk}" for pk in pks]
    found: set[int] = set()
    for chunk in _chunks(keys):
        # scoped: the reminder worker runs over every organization
        for key in Reminder.objects.filter(key__in=chunk).values_list("key", flat=True):
            found.add(int(key.split(":")[1]))
    return found


def reminder_log(
    actor: Actor,
    *,
    status: str = "",
    kind: str = "",
    channel: str = "",
    day_from: date | None = None,
    day_to: date | None = None,
    clinic: Clinic | None = None,
) -> QuerySet[Reminder]:
    """The organization's messages, failed and uncertain first, then newest first."""
    actor.require("appointment.view")
    rows = Reminder.objects.for_org(actor.organization)
    if status:
        rows = rows.filter(status=status)
    if kind:
        rows = rows.filter(kind=kind)
    if channel:
        rows = rows.filter(channel=channel)
    zone = clinic_zone(clinic or actor.clinic)
    if day_from is not None:
        rows = rows.filter(due_at__gte=datetime.combine(day_from, time(0, 0), tzinfo=zone))
    if day_to is not None:
        rows = rows.filter(
            due_at__lt=datetime.combine(day_to + timedelta(days=1), time(0, 0), tzinfo=zone)
        )
    if clinic is not None:
        rows = rows.filter(clinic=clinic)
    attention = Case(
        When(status__in=(ReminderStatus.FAILED, ReminderStatus.UNCERTAIN), then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return (
        rows.select_related("patient", "clinic", "appointment")
        .annotate(attention=attention)
        .order_by("attention", "-due_at", "-pk")
    )


# --- the patient's opt-out ---------------------------------------------------------------------


@dataclass(frozen=True)
class OptOut:
    patient: Patient
    already: bool
    cancelled: int
    at: datetime


def opt_out(patient: Patient, now: datetime | None = None) -> OptOut:
    """The patient used the link in a message: no more reminders. Consent withdrawn, pending
    messages cancelled, audited as the patient (the organization's system, via the link)."""
    now = now or timezone.now()
    actor = Actor.system(patient.organization, via="opt-out link")
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if not locked.reminder_consent and locked.reminder_opt_out_at is not None:
            return OptOut(locked, True, 0, locked.reminder_opt_out_at)
        was = locked.reminder_consent
        Patient.objects.filter(pk=locked.pk).update(
            reminder_consent=False, reminder_consent_at=None, reminder_opt_out_at=now
        )
        locked.reminder_consent, locked.reminder_opt_out_at = False, now
        clinic = locked.home_clinic
        # scoped: the patient's own reminders (patient in hand)
        cancelled = Reminder.objects.filter(
            patient_id=locked.pk, status=ReminderStatus.PENDING
        ).update(
            status=ReminderStatus.CANCELLED,
            skip_reason=f"Patient opted out on {_day(now, clinic)}.",
        )
        record(
            actor,
            Action.UPDATE,
            locked,
            label=f"{locked} opted out of reminders",
            detail={
                "changes": {"reminder_consent": [was, False]},
                "cancelled_reminders": cancelled,
            },
        )
    return OptOut(locked, False, cancelled, now)


def patient_for_token(token: str) -> Patient | None:
    pk = messages.patient_pk_from_token(token)
    if pk is None:
        return None
    # scoped: pk from the signed opt-out token
    return Patient.objects.select_related("organization", "home_clinic").filter(pk=pk).first()
