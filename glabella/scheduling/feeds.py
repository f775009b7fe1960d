"""Practitioners' calendar feeds: a secret ICS address a practitioner subscribes to in Google,
Apple or Outlook calendar, showing their own appointments.

Secret: the token is 32 random bytes (43 URL-safe characters), shown once when the link is
created; only its SHA-256 is stored, so the database (or a backup) cannot be used to read
anyone's feed. The feed is found by looking the hash up in a unique index, so no timing
comparison of secrets happens in Python. Tokens never reach the logs: the feed view marks its
404s as already logged (Django would otherwise log the path), and nothing here logs a token.
Revoking a link (or the user losing their last active membership, or their account being
deactivated) makes it a 404 at once; a 404 says nothing about why.

Privacy: a subscribed feed is copied into a third party's calendar service and onto phones,
so it carries the minimum a practitioner needs to plan the day:

- SUMMARY: the appointment type and the patient's initials ("Treatment - A. L.", written
  with an en dash), never the full name;
- LOCATION: the clinic and the room;
- DESCRIPTION / URL: a link to the appointment in Glabella (which needs a sign-in);
- never: the indication, notes, status reasons, date of birth, phone, e-mail or address.

Window: from 30 days ago to 180 days ahead, across every clinic of the organization. A
cancelled appointment stays in the feed as STATUS:CANCELLED so subscribed calendars remove it;
a no-show is left as it was (the time really was held). UIDs are stable per appointment and
SEQUENCE is the appointment's version, so a moved appointment moves in the calendar.

Reads of the feed are not audited one by one (calendar services poll it every hour or so,
which would bury the audit log); the feed's ``last_used_at`` shows when it was last read, and
creating and revoking a link are audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, User
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.scheduling import ics
from glabella.scheduling.booking import display_name
from glabella.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    CalendarFeed,
)

TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
PAST = timedelta(days=30)
AHEAD = timedelta(days=180)
MAX_ACTIVE_FEEDS = 5
REFRESH_MINUTES = 60
USED_AGAIN_AFTER = timedelta(minutes=1)  # last_used_at is not rewritten more often than this


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feed_path(token: str) -> str:
    return reverse("scheduling:feed", kwargs={"token": token})


@dataclass(frozen=True)
class NewFeed:
    """A link just created: the token exists only here, for the one page that shows it."""

    feed: CalendarFeed
    token: str

    @property
    def path(self) -> str:
        return feed_path(self.token)


# --- managing links --------------------------------------------------------------------------


def feeds_of(actor: Actor, user: User | None = None) -> QuerySet[CalendarFeed]:
    """ACTOR's own feed links (or USER's), newest first, within the organization."""
    actor.require("appointment.edit")
    owner = user or actor.user
    return (
        CalendarFeed.objects.for_org(actor.organization)
        .filter(user=owner)
        .order_by("-created_at", "-pk")
    )


def others_feeds(actor: Actor) -> QuerySet[CalendarFeed]:
    """For the owner: the active feed links of everyone else in the organization."""
    actor.require("organization.manage")
    return (
        CalendarFeed.objects.for_org(actor.organization)
        .filter(revoked_at__isnull=True)
        .exclude(user=actor.user)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "user__email", "-created_at")
    )


def create_feed(actor: Actor) -> NewFeed:
    """A new secret feed link for ACTOR's own appointments (at most five active at once)."""
    actor.require("appointment.edit")
    if actor.user is None:
        raise PermissionDenied("A calendar feed belongs to a person.")
    with transaction.atomic():
        # Lock the user row so two quick taps cannot both pass the limit.
        User.objects.select_for_update().filter(pk=actor.user.pk).first()
        active = CalendarFeed.objects.for_org(actor.organization).filter(
            user=actor.user, revoked_at__isnull=True
        )
        if active.count() >= MAX_ACTIVE_FEEDS:
            raise ValidationError(
                {
                    "feed": f"You already have {MAX_ACTIVE_FEEDS} calendar feed links. "
                    "Revoke one you no longer use, then create a new one."
                }
            )
        token = secrets.token_urlsafe(TOKEN_BYTES)
        feed = CalendarFeed.objects.create(
            organization=actor.organization, user=actor.user, token_hash=hash_token(token)
        )
        record(
            actor,
            Action.CREATE,
            feed,
            label=f"calendar feed link for {display_name(actor.user)}",
            detail={"user": actor.user.pk},
        )
    return NewFeed(feed, token)


def revoke_feed(actor: Actor, feed: CalendarFeed) -> CalendarFeed:
    """End FEED: from now on its address is a 404. Your own, or anyone's for the owner."""
    actor.require("appointment.edit")
    if feed.organization_id != actor.organization.pk:
        raise PermissionError("That record belongs to another organization.")
    if actor.user is None or (
        feed.user_id != actor.user.pk and not actor.can("organization.manage")
    ):
        raise PermissionDenied("Only the person it belongs to, or the owner, can revoke it.")
    with transaction.atomic():
        fresh = CalendarFeed.objects.select_for_update().select_related("user").get(pk=feed.pk)
        if fresh.revoked_at is not None:
            return fresh  # already revoked: nothing changes, nothing to audit
        fresh.revoked_at = timezone.now()
        fresh.save(update_fields=["revoked_at"])
        record(
            actor,
            Action.UPDATE,
            fresh,
            label=f"calendar feed link of {display_name(fresh.user)} revoked",
            detail={"user": fresh.user_id, "revoked": True},
        )
    return fresh


# --- serving a feed --------------------------------------------------------------------------


def feed_for_token(token: str) -> CalendarFeed | None:
    """The live feed for TOKEN, or None (unknown, revoked, or its person no longer works in
    the organization). The caller answers None with a bare 404."""
    if not TOKEN_PATTERN.match(token):
        return None
    feed = (
        # scoped: found by the hash of the secret feed token: the token is the key
        CalendarFeed.objects.filter(token_hash=hash_token(token), revoked_at__isnull=True)
        .select_related("user", "organization")
        .first()
    )
    if feed is None or not feed.user.is_active:
        return None
    member = Membership.objects.filter(
        user=feed.user, organization_id=feed.organization_id, is_active=True
    ).exists()
    return feed if member else None


def mark_used(feed: CalendarFeed, now: datetime | None = None) -> None:
    now = now or timezone.now()
    if feed.last_used_at is None or now - feed.last_used_at >= USED_AGAIN_AFTER:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=now)
        feed.last_used_at = now


def feed_appointments(feed: CalendarFeed, now: datetime | None = None) -> QuerySet[Appointment]:
    """The feed's appointments: the practitioner's, 30 days back to 180 days ahead, every
    clinic of the organization, cancelled ones included (so calendars remove them)."""
    now = now or timezone.now()
    return (
        Appointment.objects.for_org(feed.organization)
        .filter(practitioner=feed.user, starts_at__lt=now + AHEAD, ends_at__gt=now - PAST)
        .select_related("patient", "clinic", "room")
        .only(
            "pk",
            "kind",
            "status",
            "starts_at",
            "ends_at",
            "version",
            "updated_at",
            "patient__given_name",
            "patient__family_name",
            "clinic__name",
            "room__name",
        )
        .order_by("starts_at", "pk")
    )


def initials(given_name: str, family_name: str) -> str:
    """'Ada', 'Lovelace' -> 'A. L.'; 'Zoë', "O'Brien" -> 'Z. O.'. Letters only, never more."""
    out = []
    for name in (given_name, family_name):
        letter = next((c for c in name if c.isalpha()), "")
        if letter:
            out.append(f"{letter.upper()}.")
    return " ".join(out) or "?"


def summary(appointment: Appointment) -> str:
    kind = AppointmentType(appointment.kind).label if appointment.kind else "Appointment"
    who = initials(appointment.patient.given_name, appointment.patient.family_name)
    text = f"{kind} \N{EN DASH} {who}"
    if appointment.status == AppointmentStatus.CANCELLED:
        text = f"Cancelled: {text}"
    return text


def location(appointment: Appointment) -> str:
    if appointment.room is not None:
        return f"{appointment.clinic.name}, {appointment.room.name}"
    return appointment.clinic.name


def event(appointment: Appointment, link: str = "") -> ics.Event:
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    description = "Patient initials only. " + (
        f"Details in Glabella (sign-in needed): {link}" if link else "Details in Glabella."
    )
    return ics.Event(
        uid=ics.appointment_uid(appointment.pk),
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        summary=summary(appointment),
        location=location(appointment),
        description=description,
        status="CANCELLED" if cancelled else "CONFIRMED",
        sequence=appointment.version,
        stamp=appointment.updated_at,
        url=link,
    )


def feed_text(
    feed: CalendarFeed,
    *,
    link: Callable[[Appointment], str] | None = None,
    now: datetime | None = None,
) -> str:
    """The whole iCalendar text of FEED. LINK makes each appointment's absolute URL."""
    name = f"Glabella: {display_name(feed.user)} ({feed.organization.name})"
    return ics.calendar(
        (event(a, link(a) if link else "") for a in feed_appointments(feed, now)),
        name=name,
        refresh_minutes=REFRESH_MINUTES,
    )
