"""The demo's rooms, fortnight of appointments and calendar feed: booked through the services,
inside opening hours, with statuses that agree with the clock."""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from glabella.accounts.models import Organization, User
from glabella.audit.models import AuditEvent
from glabella.scheduling import booking, feeds
from glabella.scheduling.models import Appointment, AppointmentStatus, CalendarFeed, Room
from glabella.web import demo

LONDON = ZoneInfo("Europe/London")


def _expected(a: Appointment, at: datetime) -> set[str]:
    if a.ends_at <= at:
        return {AppointmentStatus.DONE, AppointmentStatus.NO_SHOW}
    if a.starts_at <= at:
        return {AppointmentStatus.ARRIVED}
    return {AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED}


def _check_schedule(
    org: Organization, now: datetime, loaded_from: datetime | None = None
) -> list[Appointment]:
    loaded_from = loaded_from or now
    london = org.clinics.get(name="Marylebone")
    leeds = org.clinics.get(name="Headache Centre Leeds")
    rooms = set(Room.objects.for_org(org).values_list("clinic__name", "name"))
    assert rooms == {
        ("Marylebone", "Room 1"),
        ("Marylebone", "Room 2"),
        ("Headache Centre Leeds", "Clinic room A"),
    }
    appointments = list(Appointment.objects.for_org(org).select_related("clinic", "room"))
    assert len(appointments) >= 40
    today = booking.local(now, london).date()
    open_days = [
        today + timedelta(days=d)
        for d in range(1, 14)
        if booking.opening_intervals(london, today + timedelta(days=d))
    ]
    booked_days = {booking.local(a.starts_at, a.clinic).date() for a in appointments}
    # Every open day of the coming two weeks has appointments, and nothing is beyond them.
    assert set(open_days) <= booked_days
    assert max(booked_days) <= today + timedelta(days=13)
    assert min(booked_days) >= today - timedelta(days=3)
    assert {a.clinic for a in appointments} == {london, leeds}
    assert {a.kind for a in appointments if a.clinic == leeds} >= {"migraine_cycle"}
    for a in appointments:
        assert booking.is_open(a.clinic, a.starts_at, a.ends_at), a
        assert a.room is not None and a.room.clinic_id == a.clinic_id
        # Statuses agree with the clock (at some moment while the demo was loading).
        assert a.status in _expected(a, loaded_from) | _expected(a, now), a
    statuses = [a.status for a in appointments]
    assert statuses.count(AppointmentStatus.NO_SHOW) == 1
    assert statuses.count(AppointmentStatus.DONE) >= 5
    (cancelled,) = [a for a in appointments if a.status == AppointmentStatus.CANCELLED]
    assert "cold" in cancelled.status_reason
    # Through the booking service: every appointment has its audit event.
    created = set(
        AuditEvent.objects.filter(
            organization=org, object_type="scheduling.appointment", action="create"
        ).values_list("object_id", flat=True)
    )
    assert created == {str(a.pk) for a in appointments}
    return appointments


def test_demo_books_a_fortnight_in_both_clinics_inside_opening_hours(db, client):
    started = timezone.now()
    call_command("demo", "--if-empty", stdout=io.StringIO())
    now = timezone.now()
    org = Organization.objects.get(name=demo.DEMO_ORG)
    london = org.clinics.get(name="Marylebone")
    today = booking.local(now, london).date()
    appointments = _check_schedule(org, now, loaded_from=started)

    # The prescriber has a live calendar feed link (its token was never kept).
    prescriber = User.objects.get(email="prescriber@demo.glabella.test")
    feed = CalendarFeed.objects.get(user=prescriber, revoked_at__isnull=True)
    text = feeds.feed_text(feed)
    events = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert len(events) == sum(a.practitioner_id == prescriber.pk for a in appointments)

    # The front desk's dashboard shows the day (or says plainly there is nothing today).
    client.force_login(User.objects.get(email="frontdesk@demo.glabella.test"))
    page = client.get(reverse("web:dashboard")).content.decode()
    todays = [a for a in appointments if booking.local(a.starts_at, london).date() == today]
    if any(a.clinic == london and a.status != "cancelled" for a in todays):
        assert "still to come" in page
    else:
        assert "No appointments today at Marylebone" in page


def test_demo_loaded_on_a_wednesday_morning_shows_done_arrived_and_booked(db):
    today = datetime.now(LONDON).date()
    wednesday = today + timedelta(days=(2 - today.weekday()) % 7 or 7)
    now = datetime.combine(wednesday, time(11, 40), tzinfo=LONDON)
    org = demo.load(now=now)
    appointments = _check_schedule(org, now)
    todays = [a for a in appointments if booking.local(a.starts_at, a.clinic).date() == wednesday]
    statuses = {a.status for a in todays}
    assert statuses == {
        AppointmentStatus.DONE,
        AppointmentStatus.ARRIVED,
        AppointmentStatus.BOOKED,
    }
    (arrived,) = [a for a in appointments if a.status == AppointmentStatus.ARRIVED]
    assert arrived.starts_at <= now < arrived.ends_at
    # Nothing on the Sunday before (the clinics are closed on Sundays).
    sunday = wednesday - timedelta(days=3)
    assert not [a for a in appointments if booking.local(a.starts_at, a.clinic).date() == sunday]
