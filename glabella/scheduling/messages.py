"""What a reminder says: default wording per kind and channel, a clinic's own wording, and the
opt-out link every message ends with.

Templates use a deliberately small syntax: ``{placeholder}`` from a fixed list, nothing else.
There is no attribute access, no filters, no code: a template is text with named holes, filled
from a dictionary of plain strings. An unknown placeholder or a stray curly bracket is refused
when the owner saves the template, with the list of what may be used.

Messages carry as little clinical information as possible: who, where and when. Never the
product, the units, the indication or the type of treatment (a text message is read on a
locked phone screen).
"""

from __future__ import annotations

import re
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import base36_to_int, int_to_base36

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, User
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.patients.models import Patient
from glabella.scheduling.booking import clinic_zone
from glabella.scheduling.models import (
    Appointment,
    MessageChannel,
    MessageKind,
    MessageTemplate,
    Recall,
)

SMS_MAX_CHARS = 306
"""Two concatenated text messages (2 x 153 characters): the most an SMS may be, opt-out included."""

SUBJECT_MAX_CHARS = 150

# --- placeholders ---------------------------------------------------------------------------

COMMON_PLACEHOLDERS: dict[str, str] = {
    "patient_first_name": "the patient's given name",
    "patient_name": "the patient's full name",
    "clinic_name": "the clinic's name",
    "clinic_address": "the clinic's address",
}
APPOINTMENT_PLACEHOLDERS: dict[str, str] = {
    "date": "the appointment's date, DD/MM/YYYY",
    "time": "the appointment's time, HH:MM",
    "weekday": "the appointment's day of the week",
    "practitioner": "who the patient will see",
}
RECALL_PLACEHOLDERS: dict[str, str] = {
    "due_date": "the date the patient is due again, DD/MM/YYYY",
}


def placeholders(kind: str) -> dict[str, str]:
    """The placeholders a template of KIND may use, with what each one becomes."""
    extra = RECALL_PLACEHOLDERS if kind == MessageKind.RECALL else APPOINTMENT_PLACEHOLDERS
    return {**COMMON_PLACEHOLDERS, **extra}


_TOKEN = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"\{([a-z_]+)\}")


def check_text(text: str, kind: str) -> list[str]:
    """Problems with TEXT as a template of KIND, in words (empty when it is fine)."""
    allowed = placeholders(kind)
    problems: list[str] = []
    unknown = [name for name in _TOKEN.findall(text) if name not in allowed]
    if unknown:
        listed = ", ".join("{" + n + "}" for n in allowed)
        shown = ", ".join("{" + n + "}" for n in dict.fromkeys(unknown))
        problems.append(
            f"{shown} {'is not a placeholder' if len(unknown) == 1 else 'are not placeholders'} "
            f"this message can use. You can use: {listed}."
        )
    if "{" in _TOKEN.sub("", text) or "}" in _TOKEN.sub("", text):
        problems.append(
            "Curly brackets { } are only for placeholders such as {clinic_name}; "
            "remove the unmatched one."
        )
    return problems


def fill(text: str, values: dict[str, str]) -> str:
    """TEXT with each known ``{placeholder}`` replaced by its value (others left as written)."""
    return _NAME.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# --- default wording ------------------------------------------------------------------------

DEFAULTS: dict[tuple[str, str], tuple[str, str]] = {
    (MessageKind.CONFIRMATION, MessageChannel.EMAIL): (
        "Your appointment at {clinic_name} on {date} at {time}",
        "Dear {patient_first_name},\n\n"
        "Your appointment at {clinic_name} is booked for {weekday} {date} at {time} "
        "with {practitioner}.\n\n"
        "{clinic_address}\n\n"
        "The attached calendar file adds it to your calendar. If you cannot come, please let "
        "us know as early as you can so that someone else can have the time.\n\n"
        "With best wishes,\n{clinic_name}",
    ),
    (MessageKind.CONFIRMATION, MessageChannel.SMS): (
        "",
        "{clinic_name}: your appointment is booked for {date} at {time}.",
    ),
    (MessageKind.REMINDER, MessageChannel.EMAIL): (
        "Reminder: your appointment at {clinic_name} on {date} at {time}",
        "Dear {patient_first_name},\n\n"
        "This is a reminder of your appointment at {clinic_name} on {weekday} {date} at {time} "
        "with {practitioner}.\n\n"
        "{clinic_address}\n\n"
        "If you cannot come, please let us know as early as you can.\n\n"
        "With best wishes,\n{clinic_name}",
    ),
    (MessageKind.REMINDER, MessageChannel.SMS): (
        "",
        "{clinic_name}: reminder of your appointment on {date} at {time}.",
    ),
    (MessageKind.RECALL, MessageChannel.EMAIL): (
        "Time to book your next appointment at {clinic_name}",
        "Dear {patient_first_name},\n\n"
        "You are due for your next appointment at {clinic_name} from {due_date}. "
        "Please get in touch to book a time that suits you.\n\n"
        "With best wishes,\n{clinic_name}",
    ),
    (MessageKind.RECALL, MessageChannel.SMS): (
        "",
        "{clinic_name}: you are due for your next appointment from {due_date}. "
        "Please get in touch to book.",
    ),
}


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str
    custom: bool


def wording(clinic: Clinic, kind: str, channel: str, cache: dict | None = None) -> Wording:
    """The clinic's own wording for KIND on CHANNEL, or the default. CACHE (a dict kept for a
    sending pass) saves a query per message."""
    if cache is not None and clinic.pk not in cache:
        cache[clinic.pk] = {
            (t.kind, t.channel): t for t in MessageTemplate.objects.filter(clinic=clinic)
        }
    found = (
        cache[clinic.pk].get((kind, channel))
        if cache is not None
        else MessageTemplate.objects.filter(clinic=clinic, kind=kind, channel=channel).first()
    )
    subject, body = DEFAULTS[(kind, channel)]
    if found is None:
        return Wording(subject, body, False)
    return Wording(found.subject or subject, found.body, True)


# --- values ---------------------------------------------------------------------------------


def practitioner_name(user: User | None) -> str:
    return (user.get_full_name() if user else "") or "your practitioner"


def values_for(
    kind: str,
    *,
    patient: Patient,
    clinic: Clinic,
    appointment: Appointment | None = None,
    recall: Recall | None = None,
) -> dict[str, str]:
    """The placeholders' values for one message (times in the clinic's time zone)."""
    values = {
        "patient_first_name": patient.given_name,
        "patient_name": patient.full_name,
        "clinic_name": clinic.name,
        "clinic_address": clinic.address.strip(),
    }
    if kind == MessageKind.RECALL:
        due = recall.due_on if recall is not None else None
        values["due_date"] = f"{due:%d/%m/%Y}" if due else ""
    elif appointment is not None:
        start = appointment.starts_at.astimezone(clinic_zone(clinic))
        values.update(
            date=f"{start:%d/%m/%Y}",
            time=f"{start:%H:%M}",
            weekday=f"{start:%A}",
            practitioner=practitioner_name(appointment.practitioner),
        )
    return values


def sample_values(kind: str, clinic: Clinic, now: datetime) -> dict[str, str]:
    """Made-up values for the preview on the template page."""
    local = now.astimezone(clinic_zone(clinic))
    day = local.date() + timedelta(days=(7 - local.weekday()) % 7 or 7)
    values = {
        "patient_first_name": "Sam",
        "patient_name": "Sam Taylor",
        "clinic_name": clinic.name,
        "clinic_address": clinic.address.strip(),
    }
    if kind == MessageKind.RECALL:
        values["due_date"] = f"{day + timedelta(days=7):%d/%m/%Y}"
    else:
        values.update(
            date=f"{day:%d/%m/%Y}", time="10:30", weekday=f"{day:%A}", practitioner="Dr Jo Smith"
        )
    return values


# --- the opt-out link -----------------------------------------------------------------------

OPT_OUT_SALT = "glabella.scheduling.opt-out"
SIGNATURE_CHARS = 16  # 96 bits of HMAC-SHA256: short enough for a text message, unguessable


def _signature(value: str, secret: str) -> str:
    digest = salted_hmac(OPT_OUT_SALT, value, secret=secret, algorithm="sha256").digest()
    return urlsafe_b64encode(digest).decode()[:SIGNATURE_CHARS]


def opt_out_token(patient: Patient) -> str:
    """A short signed token naming PATIENT (``<id in base 36>.<signature>``). It does not
    expire: people open old messages. Tokens signed with a retired SECRET_KEY still work while
    that key is listed in SECRET_KEY_FALLBACKS."""
    value = int_to_base36(patient.pk)
    return f"{value}.{_signature(value, settings.SECRET_KEY)}"


def patient_pk_from_token(token: str) -> int | None:
    """The patient a token names, or None when it is not one of ours or was altered."""
    value, _, signature = (token or "").partition(".")
    if not value or len(signature) != SIGNATURE_CHARS or len(value) > 13:
        return None
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        if constant_time_compare(signature, _signature(value, secret)):
            try:
                return base36_to_int(value)
            except ValueError:
                return None
    return None


def opt_out_url(patient: Patient) -> str:
    return settings.GLABELLA_SITE_URL + reverse("scheduling:opt_out", args=[opt_out_token(patient)])


# --- a whole message ------------------------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    subject: str
    body: str
    opt_out_url: str


def email_footer(clinic_name: str, url: str) -> str:
    return (
        "\n\n-- \n"
        f"You receive these messages because you agreed to appointment reminders from "
        f"{clinic_name}. To stop them, open this link: {url}\n"
    )


def sms_footer(url: str) -> str:
    return f"\nStop: {url}"


def compose(
    kind: str,
    channel: str,
    *,
    patient: Patient,
    clinic: Clinic,
    appointment: Appointment | None = None,
    recall: Recall | None = None,
    cache: dict | None = None,
) -> Composed:
    """Subject and body of one message, the opt-out link at the end of the body."""
    words = wording(clinic, kind, channel, cache)
    values = values_for(
        kind, patient=patient, clinic=clinic, appointment=appointment, recall=recall
    )
    url = opt_out_url(patient)
    body = _tidy(fill(words.body, values))
    if channel == MessageChannel.SMS:
        return Composed("", body + sms_footer(url), url)
    subject = " ".join(fill(words.subject, values).split())[:SUBJECT_MAX_CHARS]
    return Composed(subject, body + email_footer(clinic.name, url), url)


def _tidy(text: str) -> str:
    """No runs of blank lines where an empty placeholder (no clinic address) stood."""
    text = text.replace("\r\n", "\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# --- the owner's templates ------------------------------------------------------------------


def _clinic_of(actor: Actor, clinic: Clinic) -> None:
    if clinic.organization_id != actor.organization.pk:
        raise PermissionError("That clinic belongs to another organization.")


def validate(kind: str, channel: str, subject: str, body: str, clinic: Clinic) -> None:
    """Raise ValidationError keyed by field when the wording cannot be used."""
    if kind not in MessageKind.values or channel not in MessageChannel.values:
        raise ValidationError("Choose a kind of message and a channel.")
    errors: dict[str, list[str]] = {}
    if not body.strip():
        errors["body"] = ["Write the message (or use “Back to the standard wording”)."]
    else:
        errors["body"] = check_text(body, kind)
    if channel == MessageChannel.EMAIL:
        subject_problems = check_text(subject, kind)
        if "\n" in subject or "\r" in subject:
            subject_problems.append("The subject must fit on one line.")
        if len(subject) > SUBJECT_MAX_CHARS:
            subject_problems.append(
                f"Keep the subject under {SUBJECT_MAX_CHARS} characters (it has {len(subject)})."
            )
        errors["subject"] = subject_problems
    elif subject.strip():
        errors["subject"] = ["A text message has no subject: leave it empty."]
    if channel == MessageChannel.SMS and not errors["body"]:
        filled = fill(body.strip(), sample_values(kind, clinic, datetime.now().astimezone()))
        length = len(filled) + len(sms_footer(_sample_url()))
        if length > SMS_MAX_CHARS:
            errors["body"].append(
                f"Text messages must stay short: with the opt-out link this one would be about "
                f"{length} characters; keep it under {SMS_MAX_CHARS} (two text messages)."
            )
    errors = {k: v for k, v in errors.items() if v}
    if errors:
        raise ValidationError(errors)


def _sample_url() -> str:
    value = int_to_base36(10_000_000)
    token = f"{value}.{_signature(value, settings.SECRET_KEY)}"
    return settings.GLABELLA_SITE_URL + reverse("scheduling:opt_out", args=[token])


def preview(
    kind: str, channel: str, subject: str, body: str, clinic: Clinic, now: datetime
) -> Composed:
    """The message as a patient would see it, with made-up patient and appointment values."""
    default_subject, _ = DEFAULTS[(kind, channel)]
    values = sample_values(kind, clinic, now)
    url = _sample_url()
    text = _tidy(fill(body, values))
    if channel == MessageChannel.SMS:
        return Composed("", text + sms_footer(url), url)
    subject_text = " ".join(fill(subject or default_subject, values).split())
    return Composed(subject_text, text + email_footer(clinic.name, url), url)


def save_template(
    actor: Actor, clinic: Clinic, kind: str, channel: str, *, subject: str, body: str
) -> MessageTemplate:
    """Set the clinic's wording for KIND on CHANNEL (owners only; audited)."""
    actor.require("organization.manage")
    _clinic_of(actor, clinic)
    subject = subject.strip()
    body = body.replace("\r\n", "\n").strip()
    validate(kind, channel, subject, body, clinic)
    with transaction.atomic():
        template, created = MessageTemplate.objects.select_for_update().get_or_create(
            clinic=clinic,
            kind=kind,
            channel=channel,
            defaults={
                "organization": actor.organization,
                "subject": subject,
                "body": body,
                "updated_by": actor.user,
            },
        )
        before = {"subject": template.subject, "body": template.body}
        if not created:
            if before == {"subject": subject, "body": body}:
                return template
            template.subject, template.body, template.updated_by = subject, body, actor.user
            template.save(update_fields=["subject", "body", "updated_by", "updated_at"])
        record(
            actor,
            Action.CREATE if created else Action.UPDATE,
            template,
            label=f"{MessageKind(kind).label} ({MessageChannel(channel).label}) at {clinic.name}",
            detail={
                "kind": kind,
                "channel": channel,
                "before": None if created else before,
                "after": {"subject": subject, "body": body},
            },
        )
    return template


def reset_template(actor: Actor, clinic: Clinic, kind: str, channel: str) -> bool:
    """Go back to the standard wording (owners only; audited). False when already standard."""
    actor.require("organization.manage")
    _clinic_of(actor, clinic)
    with transaction.atomic():
        template = (
            MessageTemplate.objects.select_for_update()
            .filter(clinic=clinic, kind=kind, channel=channel)
            .first()
        )
        if template is None:
            return False
        record(
            actor,
            Action.UPDATE,
            template,
            label=f"{MessageKind(kind).label} ({MessageChannel(channel).label}) at "
            f"{clinic.name}: back to the standard wording",
            detail={"kind": kind, "channel": channel, "removed": template.body},
        )
        template.delete()
    return True


def local_date(value: datetime, clinic: Clinic | None) -> date:
    return value.astimezone(clinic_zone(clinic)).date()
