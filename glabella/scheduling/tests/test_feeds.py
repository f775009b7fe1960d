"""Practitioners' calendar feeds: a secret link shown once, only its hash stored; the feed holds
the practitioner's appointments in the window with initials only; revoking ends it."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

import icalendar
import pytest
from django.test import Client
from django.urls import reverse

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.accounts.roles import Role
from glabella.accounts.services import add_clinic, add_member
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD
from glabella.scheduling import booking, feeds, ics
from glabella.scheduling.models import AppointmentStatus, CalendarFeed, Room
from glabella.scheduling.tests.conftest import next_monday_at
from glabella.scheduling.tests.test_ics import assert_rfc5545_lines

FEEDS = reverse("scheduling:feeds")
CREATE = reverse("scheduling:feed_create")
URL_IN_PAGE = re.compile(r'value="(https?://[^"]+/scheduling/feed/([A-Za-z0-9_-]+)\.ics)"')


def _create_link(client: Client) -> tuple[str, str]:
    response = client.post(CREATE)
    assert response.status_code == 200
    page = response.content.decode()
    found = URL_IN_PAGE.search(page)
    assert found, page
    return found.group(1), found.group(2)


def _book(world, starts_at, *, who=Role.PRESCRIBER, clinic=None, past=False, **extra):
    return booking.book(
        world.actor(Role.FRONT_DESK),
        patient=extra.pop("patient", world.patient),
        clinic=clinic or world.clinic,
        practitioner=world.users[who],
        starts_at=starts_at,
        kind=extra.pop("kind", "treatment"),
        now=starts_at - timedelta(hours=1) if past else None,
        **extra,
    )


def _fetch(token: str):
    return Client().get(feeds.feed_path(token))


def _events(response) -> dict[str, icalendar.Event]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    text = response.content.decode("utf-8")
    assert_rfc5545_lines(text)
    calendar = icalendar.Calendar.from_ical(text)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


# --- creating a link ---------------------------------------------------------------------------


def test_create_shows_the_address_once_and_stores_only_its_hash(world):
    client = world.client(Role.PRESCRIBER)
    url, token = _create_link(client)
    assert url.startswith("http://testserver/scheduling/feed/")
    assert len(token) >= 43  # 32 random bytes
    feed = CalendarFeed.objects.get(user=world.users[Role.PRESCRIBER])
    assert feed.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert feed.organization == world.org and feed.revoked_at is None
    # The token itself is kept nowhere: not in the feed row, not in the audit log...
    row = CalendarFeed.objects.filter(pk=feed.pk).values().get()
    assert token not in repr(row)
    assert not any(
        token in repr(e) for e in AuditEvent.objects.values("object_label", "detail", "object_id")
    )
    # ...and the page never shows it again.
    again = client.get(FEEDS)
    assert again.status_code == 200
    assert token not in again.content.decode()
    assert "not yet" in again.content.decode()  # never read by a calendar so far
    assert again["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(object_type="scheduling.calendarfeed", action="create")
    assert event.object_id == str(feed.pk) and event.actor == world.users[Role.PRESCRIBER]


def test_each_link_is_different_and_five_is_the_most_at_once(world):
    client = world.client(Role.INJECTOR)
    tokens = {_create_link(client)[1] for _ in range(feeds.MAX_ACTIVE_FEEDS)}
    assert len(tokens) == feeds.MAX_ACTIVE_FEEDS
    refused = client.post(CREATE)
    assert refused.status_code == 400
    assert "You already have 5 calendar feed links" in refused.content.decode()
    assert CalendarFeed.objects.filter(user=world.users[Role.INJECTOR]).count() == 5
    assert "Create feed link" not in refused.content.decode()


def test_the_page_explains_what_the_feed_shows(world):
    page = world.client(Role.FRONT_DESK).get(FEEDS).content.decode()
    assert "You have no feed link" in page
    assert "patient's initials" in page and "never shows full names" in page


def test_an_auditor_cannot_create_feed_links(world):
    client = world.client(Role.AUDITOR)
    assert client.get(FEEDS).status_code == 403
    assert client.post(CREATE).status_code == 403
    assert not CalendarFeed.objects.exists()


def test_signed_out_people_are_sent_to_sign_in(world):
    response = Client().post(CREATE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not CalendarFeed.objects.exists()


# --- what the feed holds -----------------------------------------------------------------------


def test_the_feed_holds_exactly_the_practitioners_appointments_in_the_window(world):
    prescriber = world.users[Role.PRESCRIBER]
    owner = Actor(world.org, world.users[Role.OWNER], world.clinic, Role.OWNER)
    leeds = add_clinic(owner, name="Alpha Leeds", timezone="Europe/London")
    add_member(owner, email=prescriber.email, clinic=leeds, role=Role.PRESCRIBER, password=PASSWORD)
    room = Room.objects.create(organization=world.org, clinic=world.clinic, name="Room 1")
    monday = next_monday_at(10)
    inside = {
        "next week": _book(
            world,
            monday,
            room=room,
            indication="glabellar-lines",
            notes="Anxious about needles; 20 U last time",
        ),
        "at another clinic": _book(world, monday + timedelta(days=1), clinic=leeds),
        "weeks ago": _book(world, monday - timedelta(weeks=3), past=True, kind="review"),
        "far ahead": _book(world, next_monday_at(10, weeks=20), kind="migraine_cycle"),
    }
    cancelled = _book(world, monday + timedelta(hours=2))
    booking.set_status(
        world.actor(Role.FRONT_DESK), cancelled, AppointmentStatus.CANCELLED, reason="Has flu"
    )
    no_show = _book(world, monday - timedelta(weeks=3, hours=-2), past=True)
    booking.set_status(world.actor(Role.FRONT_DESK), no_show, AppointmentStatus.NO_SHOW)
    outside = [
        _book(world, monday, who=Role.INJECTOR),  # another practitioner
        _book(world, monday - timedelta(weeks=7), past=True),  # more than 30 days ago
        _book(world, next_monday_at(10, weeks=30)),  # more than 180 days ahead
    ]
    _, token = _create_link(world.client(Role.PRESCRIBER))

    response = _fetch(token)
    events = _events(response)
    expected = {**inside, "cancelled": cancelled, "no-show": no_show}
    assert set(events) == {ics.appointment_uid(a.pk) for a in expected.values()}
    assert not {ics.appointment_uid(a.pk) for a in outside} & set(events)

    first = events[ics.appointment_uid(inside["next week"].pk)]
    assert str(first["SUMMARY"]) == "Treatment \u2013 A. L."
    assert str(first["LOCATION"]) == "Alpha Central, Room 1"
    assert first.decoded("DTSTART") == monday
    assert first.decoded("DTEND") == monday + timedelta(minutes=30)
    assert first["STATUS"] == "CONFIRMED"
    assert first.decoded("SEQUENCE") == inside["next week"].version
    assert str(events[ics.appointment_uid(inside["at another clinic"].pk)]["LOCATION"]) == (
        "Alpha Leeds"
    )
    assert str(events[ics.appointment_uid(inside["weeks ago"].pk)]["SUMMARY"]) == (
        "Two-week review \u2013 A. L."
    )
    gone = events[ics.appointment_uid(cancelled.pk)]
    assert gone["STATUS"] == "CANCELLED"
    assert gone.decoded("SEQUENCE") == 2
    assert events[ics.appointment_uid(no_show.pk)]["STATUS"] == "CONFIRMED"

    # Initials only: no name, contact details, indication, notes or reasons.
    text = response.content.decode()
    for private in (
        "Ada",
        "Lovelace",
        "LOVELACE",
        "07700",
        "900123",
        "ada@example.org",
        "1985",
        "glabellar",
        "Anxious",
        "20 U",
        "flu",
    ):
        assert private not in text, private


def test_a_moved_appointment_keeps_its_uid_with_a_higher_sequence(world):
    appointment = _book(world, next_monday_at(10))
    _, token = _create_link(world.client(Role.PRESCRIBER))
    uid = ics.appointment_uid(appointment.pk)
    assert _events(_fetch(token))[uid].decoded("SEQUENCE") == 1
    booking.change(
        world.actor(Role.FRONT_DESK),
        appointment,
        appointment.version,
        starts_at=next_monday_at(14),
    )
    moved = _events(_fetch(token))[uid]
    assert moved.decoded("SEQUENCE") == 2
    assert moved.decoded("DTSTART") == next_monday_at(14)


def test_reading_the_feed_records_when_it_was_last_used(world):
    _, token = _create_link(world.client(Role.PRESCRIBER))
    feed = CalendarFeed.objects.get()
    assert feed.last_used_at is None
    assert _fetch(token).status_code == 200
    feed.refresh_from_db()
    assert feed.last_used_at is not None
    page = world.client(Role.PRESCRIBER).get(FEEDS).content.decode()
    assert "not yet" not in page


def test_an_empty_feed_is_a_valid_calendar(world):
    _, token = _create_link(world.client(Role.FRONT_DESK))
    assert _events(_fetch(token)) == {}


def test_the_feed_costs_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    monday = next_monday_at(9)
    for n in range(12):
        _book(world, monday + timedelta(minutes=30 * n))
    _, token = _create_link(world.client(Role.PRESCRIBER))
    with django_assert_max_num_queries(5):
        assert len(_events(_fetch(token))) == 12


# --- ending a link -----------------------------------------------------------------------------


def test_revoking_makes_the_address_a_bare_404_and_is_audited(world):
    client = world.client(Role.PRESCRIBER)
    _, token = _create_link(client)
    assert _fetch(token).status_code == 200
    feed = CalendarFeed.objects.get()
    response = client.post(reverse("scheduling:feed_revoke", args=[feed.pk]), follow=True)
    assert "Feed link revoked" in response.content.decode()
    feed.refresh_from_db()
    assert feed.revoked_at is not None
    gone = _fetch(token)
    assert gone.status_code == 404
    assert gone.content == b"Not found"
    event = AuditEvent.objects.get(object_type="scheduling.calendarfeed", action="update")
    assert event.object_id == str(feed.pk) and event.detail["revoked"] is True
    # Revoking again changes nothing and writes nothing more.
    client.post(reverse("scheduling:feed_revoke", args=[feed.pk]))
    assert AuditEvent.objects.filter(object_type="scheduling.calendarfeed").count() == 2
    assert "Revoked" in client.get(FEEDS).content.decode()


@pytest.mark.parametrize(
    "token",
    ["x" * 43, "short", "A" * 80, "no%20such%20thing", "../../etc/passwd"],
)
def test_an_unknown_token_is_a_bare_404(world, token):
    _create_link(world.client(Role.PRESCRIBER))
    response = Client().get(f"/scheduling/feed/{token}.ics")
    assert response.status_code == 404
    if response["Content-Type"].startswith("text/plain"):
        assert response.content == b"Not found"


def test_a_person_who_left_loses_the_feed(world):
    _, token = _create_link(world.client(Role.PRESCRIBER))
    prescriber = world.users[Role.PRESCRIBER]
    Membership.objects.filter(user=prescriber).update(is_active=False)
    assert _fetch(token).status_code == 404
    Membership.objects.filter(user=prescriber).update(is_active=True)
    assert _fetch(token).status_code == 200
    prescriber.is_active = False
    prescriber.save(update_fields=["is_active"])
    assert _fetch(token).status_code == 404


def test_tokens_never_reach_the_logs(world, caplog):
    client = world.client(Role.PRESCRIBER)
    _, token = _create_link(client)
    caplog.set_level(logging.DEBUG)
    assert _fetch(token).status_code == 200
    client.post(reverse("scheduling:feed_revoke", args=[CalendarFeed.objects.get().pk]))
    assert _fetch(token).status_code == 404
    assert Client().get(feeds.feed_path("y" * 43)).status_code == 404
    assert token not in caplog.text and "y" * 43 not in caplog.text


# --- whose link ------------------------------------------------------------------------------


def test_colleagues_and_outsiders_can_neither_see_nor_revoke_a_link(world):
    _, token = _create_link(world.client(Role.PRESCRIBER))
    feed = CalendarFeed.objects.get()
    revoke = reverse("scheduling:feed_revoke", args=[feed.pk])
    outsider = world.client("outsider")
    assert outsider.post(revoke).status_code == 404
    assert world.client(Role.INJECTOR).post(revoke).status_code == 404
    feed.refresh_from_db()
    assert feed.revoked_at is None and _fetch(token).status_code == 200
    # The outsider's own page lists only the outsider's links.
    _create_link(outsider)
    outsider_feed = CalendarFeed.objects.get(user=world.outsider)
    assert outsider_feed.organization == world.outsider_org
    page = outsider.get(FEEDS).content.decode()
    assert revoke not in page
    # Alpha's owner sees (and may revoke) Alpha's links, never Beta's.
    owner = world.client(Role.OWNER)
    page = owner.get(FEEDS).content.decode()
    assert revoke in page
    assert reverse("scheduling:feed_revoke", args=[outsider_feed.pk]) not in page
    beta = reverse("scheduling:feed_revoke", args=[outsider_feed.pk])
    assert owner.post(beta).status_code == 404
    assert owner.post(revoke).status_code == 302
    feed.refresh_from_db()
    assert feed.revoked_at is not None
    event = AuditEvent.objects.get(object_type="scheduling.calendarfeed", action="update")
    assert event.actor == world.users[Role.OWNER] and event.detail["user"] == feed.user_id


def test_the_revoke_service_refuses_another_organization(world):
    new = feeds.create_feed(world.outsider_actor())
    with pytest.raises(PermissionError):
        feeds.revoke_feed(world.actor(Role.OWNER), new.feed)
    new.feed.refresh_from_db()
    assert new.feed.revoked_at is None
