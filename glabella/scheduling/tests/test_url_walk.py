"""Every scheduling URL, every role, and another organization's objects: one table for the app.

The calendar's own walk (test_calendar_views.py) goes deeper into its forms; this one makes sure
no page of the scheduling app (calendar, recalls, messages, feeds) is added without an entry,
that each answers each role by its permission, and that every URL naming an object of another
organization is a 404 that changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from glabella.accounts.roles import can
from glabella.audit.models import AuditEvent
from glabella.scheduling import booking, feeds, messages, urls
from glabella.scheduling.models import (
    Appointment,
    CalendarFeed,
    MessageChannel,
    MessageKind,
    Recall,
    Reminder,
    ReminderStatus,
)
from glabella.scheduling.tests.test_calendar_views import URLS as CALENDAR_URLS

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]
PUBLIC = "public (secret token in the URL)"

# name -> (permission, methods the URL answers); the calendar's own table, then the rest.
URLS: dict[str, tuple[str, frozenset[str]]] = {
    **CALENDAR_URLS,
    "recalls": ("appointment.view", frozenset({"get"})),
    "recall_state": ("appointment.edit", frozenset({"post"})),
    "cycles": ("appointment.view", frozenset({"get"})),
    "cycles_book": ("appointment.edit", frozenset({"post"})),
    "messages": ("appointment.view", frozenset({"get"})),
    "message_resend": ("appointment.edit", frozenset({"post"})),
    "message_templates": ("organization.manage", frozenset({"get"})),
    "message_template": ("organization.manage", frozenset({"get", "post"})),
    "opt_out": (PUBLIC, frozenset({"get", "post"})),
    "feeds": ("appointment.edit", frozenset({"get"})),
    "feed_create": ("appointment.edit", frozenset({"post"})),
    "feed_revoke": ("appointment.edit", frozenset({"post"})),
    "feed": (PUBLIC, frozenset({"get"})),
}


def test_the_walk_covers_every_scheduling_url():
    patterns = urls.urlpatterns
    assert all(isinstance(p, URLPattern) for p in patterns)
    assert sorted(p.name for p in patterns) == sorted(URLS), "add the new URL to URLS here"
    for p in patterns:
        permission = URLS[p.name][0]
        declared = getattr(p.callback, "required_permission", PUBLIC)
        assert declared == permission, p.name


def _objects(world, clinic, actor, patient, practitioner):
    """An appointment, a current recall, a failed reminder and a feed of one organization."""
    when = timezone.now() + timedelta(days=3)
    appt = Appointment.objects.create(
        organization=clinic.organization,
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        kind="treatment",
        starts_at=when,
        ends_at=when + timedelta(minutes=30),
    )
    today = timezone.localdate()
    recall = Recall.objects.create(
        organization=clinic.organization,
        patient=patient,
        clinic=clinic,
        indication="glabellar-lines",
        kind="retreatment",
        basis_on=today - timedelta(days=120),
        due_on=today,
        earliest_on=today - timedelta(days=30),
    )
    reminder = Reminder.objects.create(
        organization=clinic.organization,
        clinic=clinic,
        patient=patient,
        appointment=appt,
        kind=MessageKind.REMINDER,
        key=f"walk:{appt.pk}",
        due_at=when - timedelta(hours=48),
        next_attempt_at=when - timedelta(hours=48),
        channel=MessageChannel.EMAIL,
        status=ReminderStatus.FAILED,
        last_error="the mail server refused the address",
    )
    new = feeds.create_feed(actor)
    return {
        "appointment": appt,
        "recall": recall,
        "reminder": reminder,
        "feed": new.feed,
        "token": new.token,
        "patient": patient,
    }


@pytest.fixture
def both(world):
    from glabella.accounts.models import Clinic
    from glabella.accounts.services import add_member
    from glabella.conftest import PASSWORD

    theirs = Clinic.objects.get(organization=world.outsider_org)
    their_injector = add_member(
        world.outsider_actor(),
        email="injector@beta.test",
        clinic=theirs,
        role="injector",
        password=PASSWORD,
    ).user
    booking.settings_for(world.clinic)
    booking.settings_for(theirs)
    world.ours = _objects(
        world,
        world.clinic,
        world.actor("prescriber"),
        world.patient,
        world.users["prescriber"],
    )
    from glabella.accounts.actor import Actor
    from glabella.accounts.models import Membership

    their_actor = Actor(world.outsider_org, their_injector, theirs, "injector")
    assert Membership.objects.filter(user=their_injector).exists()
    world.theirs = _objects(world, theirs, their_actor, world.outsider_patient, their_injector)
    return world


def _address(name, objs):
    by_object = {
        "appointment": "appointment",
        "appointment_edit": "appointment",
        "appointment_status": "appointment",
        "move": "appointment",
        "recall_state": "recall",
        "cycles": "patient",
        "cycles_book": "patient",
        "message_resend": "reminder",
        "feed_revoke": "feed",
    }
    if name in by_object:
        return reverse(f"scheduling:{name}", args=[objs[by_object[name]].pk])
    if name == "message_template":
        return reverse(f"scheduling:{name}", args=[MessageKind.REMINDER, MessageChannel.SMS])
    if name == "opt_out":
        return reverse("scheduling:opt_out", args=[messages.opt_out_token(objs["patient"])])
    if name == "feed":
        return reverse("scheduling:feed", args=[objs["token"]])
    return reverse(f"scheduling:{name}")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_by_its_permission(both, role):
    client = both.client(role)
    for name, (permission, methods) in URLS.items():
        if permission == PUBLIC:
            continue
        response = client.get(_address(name, both.ours))
        if "get" not in methods:
            # A POST-only page: a GET is 405 (or 403 first, for a role that may not use it).
            allowed = {405} if can(role, permission) else {403, 405}
            assert response.status_code in allowed, (name, role, response.status_code)
            continue
        expected = 200 if can(role, permission) else 403
        assert response.status_code == expected, (name, role, response.status_code)


def test_signed_out_people_are_sent_to_sign_in_except_on_the_token_pages(both):
    client = Client()
    for name, (permission, methods) in URLS.items():
        response = client.get(_address(name, both.ours))
        if permission == PUBLIC:
            assert response.status_code == 200, name
        elif "get" in methods:
            assert response.status_code == 302, name
            assert "/accounts/login/" in response["Location"], name


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_another_organizations_objects_are_404_and_nothing_changes(both, role):
    client = both.client(role)
    foreign = both.ours if role == "outsider" else both.theirs
    acting = "owner" if role == "outsider" else role

    def snapshot():
        return (
            list(Appointment.objects.values_list("pk", "status", "starts_at", "version")),
            list(Recall.objects.values_list("pk", "state", "due_on")),
            list(Reminder.objects.values_list("pk", "status")),
            list(CalendarFeed.objects.values_list("pk", "revoked_at")),
        )

    before = snapshot()
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    for name in (
        "appointment",
        "cycles",
        "appointment_edit",
        "appointment_status",
        "move",
        "recall_state",
        "cycles_book",
        "message_resend",
        "feed_revoke",
    ):
        permission, methods = URLS[name]
        method = "get" if "get" in methods else "post"
        address = _address(name, foreign)
        response = getattr(client, method)(address, {"version": 1, "action": "contacted"})
        expected = 404 if can(acting, permission) else 403
        assert response.status_code == expected, (name, role, response.status_code)
    assert snapshot() == before
    assert not AuditEvent.objects.filter(seq__gt=last).exclude(action="view").exists()


def test_the_lists_never_show_another_organizations_rows(both):
    client = both.client("owner")
    for name in ("day", "week", "recalls", "messages", "feeds"):
        page = client.get(reverse(f"scheduling:{name}"), {"tab": "overdue"}).content.decode()
        assert "Outside" not in page, name  # Bob Outside is Beta's patient


def test_a_tampered_token_opens_nothing(both):
    client = Client()
    good = messages.opt_out_token(both.patient)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    response = client.post(reverse("scheduling:opt_out", args=[bad]))
    assert response.status_code == 404
    assert "Lovelace" not in response.content.decode()
    both.patient.refresh_from_db()
    assert both.patient.reminder_opt_out_at is None
    feed_token = both.ours["token"]
    altered = feed_token[:-2] + ("xy" if feed_token[-2:] != "xy" else "yz")
    response = client.get(reverse("scheduling:feed", args=[altered]))
    assert response.status_code == 404
