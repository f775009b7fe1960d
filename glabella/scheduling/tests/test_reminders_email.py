"""Reminders by e-mail, over real SMTP: an aiosmtpd server started by the test receives them and
the test reads them back. A refused address, an unreachable server and a server that stops
answering mid-message are the real thing too."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlsplit

import icalendar
from django.test import Client

from glabella.accounts.roles import Role
from glabella.mail_testing import free_port
from glabella.scheduling import reminders
from glabella.scheduling.models import MessageTemplate, Reminder, ReminderStatus
from glabella.scheduling.tests import reminder_helpers
from glabella.scheduling.tests.conftest import LONDON, next_monday_at
from glabella.scheduling.tests.reminder_helpers import (
    agree,
    attachment,
    book,
    text_of,
)

smtp = reminder_helpers.smtp  # fixture

MINUTE = timedelta(minutes=1)


def _booked(world, hour: int = 10, **kw):
    """An appointment two Mondays ahead, booked on the Wednesday before at 11:00."""
    appt = book(world, next_monday_at(hour, weeks=2), **kw)
    wednesday = appt.starts_at.astimezone(LONDON).date() - timedelta(days=5)
    when = datetime.combine(wednesday, time(11, 0), tzinfo=LONDON)
    type(appt).objects.filter(pk=appt.pk).update(updated_at=when)
    appt.refresh_from_db()
    return appt


def test_the_confirmation_reaches_a_real_smtp_server_with_link_header_and_calendar_file(
    world, smtp
):
    world.users[Role.PRESCRIBER].first_name = "Grace"
    world.users[Role.PRESCRIBER].last_name = "Hopper"
    world.users[Role.PRESCRIBER].save()
    world.clinic.address = "1 Harley Street\nLondon W1G 9QD"
    world.clinic.save()
    agree(world.patient)
    appt = _booked(world)
    now = appt.updated_at + MINUTE

    result = reminders.run_pass(now=now, worker_id="test-worker")
    assert (result.planned.planned, result.sent.sent, result.sent.failed) == (1, 1, 0)
    assert result.summary() == "Reminders: 1 planned, 1 sent, 0 failed, 0 skipped."

    assert len(smtp.inbox.messages) == 1
    sender, recipients, message = smtp.inbox.messages[0]
    assert sender == "reminders@alpha.test" and recipients == ["ada@example.org"]
    assert message["From"] == "Alpha Central <reminders@alpha.test>"
    local = appt.starts_at.astimezone(LONDON)
    assert message["Subject"] == f"Your appointment at Alpha Central on {local:%d/%m/%Y} at 10:00"
    body = text_of(message)
    assert body.startswith("Dear Ada,")
    assert f"booked for Monday {local:%d/%m/%Y} at 10:00 with Grace Hopper." in body
    assert "1 Harley Street\nLondon W1G 9QD" in body
    assert "botox" not in body.lower() and "treatment" not in body.lower()

    # Every message ends with a working opt-out link, also offered as List-Unsubscribe.
    link = body.rstrip().rsplit(" ", 1)[1]
    assert link.startswith("https://glabella.alpha.test/scheduling/opt-out/")
    assert message["List-Unsubscribe"].strip() == f"<{link}>"  # folded: too long for a line
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page = Client().get(urlsplit(link).path)
    assert page.status_code == 200
    assert "Yes, stop sending me reminders" in page.content.decode()

    # The appointment as a calendar file that a real iCalendar parser reads.
    kind, raw = attachment(message, "appointment.ics")
    assert kind == "text/calendar"
    calendar = icalendar.Calendar.from_ical(raw)
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == appt.starts_at
    assert event.decoded("DTEND") == appt.ends_at
    assert str(event["SUMMARY"]) == "Appointment at Alpha Central"
    assert str(event["UID"]).startswith(f"appointment-{appt.pk}@")

    row = Reminder.objects.get()
    assert row.status == ReminderStatus.SENT and row.attempts == 1
    assert row.to_address == "ada@example.org" and row.subject == message["Subject"]
    assert row.provider_ref == message["Message-ID"] and row.claimed_by == "test-worker"
    assert row.sent_at is not None

    # Nothing is sent twice: the next pass finds nothing to do.
    again = reminders.run_pass(now=now + timedelta(hours=1))
    assert again.sent.sent == 0 and len(smtp.inbox.messages) == 1


def test_a_reminder_email_has_no_calendar_file_and_uses_the_clinics_own_wording(world, smtp):
    MessageTemplate.objects.create(
        organization=world.org,
        clinic=world.clinic,
        kind="reminder",
        channel="email",
        subject="See you {weekday}, {patient_first_name}!",
        body="Hello {patient_name}, we expect you at {time} on {date}. {clinic_name}",
    )
    agree(world.patient)
    appt = _booked(world)
    reminders.run_pass(now=appt.starts_at - 48 * timedelta(hours=1))
    [message] = [m for _, _, m in smtp.inbox.messages if "See you" in m["Subject"]]
    local = appt.starts_at.astimezone(LONDON)
    assert message["Subject"] == "See you Monday, Ada!"
    body = text_of(message)
    assert body.startswith(f"Hello Ada Lovelace, we expect you at 10:00 on {local:%d/%m/%Y}.")
    assert "/scheduling/opt-out/" in body  # the clinic's wording cannot drop the opt-out link
    assert message["List-Unsubscribe"]
    assert not [p for p in message.walk() if p.get_filename()]


def test_a_bouncing_address_is_retried_with_back_off_then_failed_with_the_reason(world, smtp):
    smtp.inbox.refuse.add("ada@example.org")
    agree(world.patient)
    appt = _booked(world)
    now = appt.updated_at + MINUTE
    reminders.run_pass(now=now)
    row = Reminder.objects.get()
    waits = []
    for attempt in range(1, 5):
        assert row.status == ReminderStatus.PENDING and row.attempts == attempt
        assert row.last_error.startswith(
            "The mail server refused the address ada@example.org: 550 5.1.1 No such user here."
        )
        assert f"Attempt {attempt} of 5; next try at" in row.last_error
        waits.append(row.next_attempt_at - now)
        # Not before its time...
        assert reminders.send_due(now=row.next_attempt_at - MINUTE).retrying == 0
        now = row.next_attempt_at
        reminders.send_due(now=now)
        row.refresh_from_db()
    assert waits == [
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=6),
    ]
    assert row.status == ReminderStatus.FAILED and row.attempts == 5
    assert row.last_error == (
        "The mail server refused the address ada@example.org: 550 5.1.1 No such user here. "
        "Gave up after 5 attempts."
    )
    assert smtp.inbox.refused == ["ada@example.org"] * 5 and smtp.inbox.messages == []
    assert reminders.run_pass(now=now + timedelta(days=1)).sent.sent == 0  # never again by itself


def test_an_unreachable_mail_server_is_retried_and_the_reason_said(world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 5
    agree(world.patient)
    appt = _booked(world)
    now = appt.updated_at + MINUTE
    result = reminders.run_pass(now=now)
    assert (result.sent.sent, result.sent.retrying) == (0, 1)
    assert "1 to retry" in result.summary()
    row = Reminder.objects.get()
    assert row.status == ReminderStatus.PENDING and row.next_attempt_at == now + timedelta(
        minutes=5
    )
    assert row.last_error.startswith(
        f"Could not reach the mail server 127.0.0.1:{settings.EMAIL_PORT} (connection refused)."
    )


def test_a_retry_that_would_arrive_too_late_for_the_appointment_fails_instead(world, smtp):
    smtp.inbox.refuse.add("ada@example.org")
    agree(world.patient)
    appt = _booked(world)
    reminders.plan(now=appt.starts_at - 3 * timedelta(hours=1))
    now = appt.starts_at - 2 * timedelta(hours=1)
    reminders.send_due(now=now)  # the 2-hour reminder: next try in 5 minutes is still fine
    row = Reminder.objects.get(key__endswith=":2h")
    assert row.status == ReminderStatus.PENDING
    reminders.send_due(now=row.next_attempt_at)  # then 30 minutes later...
    row.refresh_from_db()
    reminders.send_due(now=row.next_attempt_at)  # ...then 2 hours: after the start
    row.refresh_from_db()
    assert row.status == ReminderStatus.FAILED and row.attempts == 3
    assert row.last_error.endswith("No time left to try again before the appointment.")


def test_a_server_that_stops_answering_mid_message_leaves_it_uncertain_never_resent(
    world, smtp, settings
):
    settings.EMAIL_TIMEOUT = 1
    smtp.inbox.slow.add("ada@example.org")
    smtp.inbox.slow_seconds = 3
    agree(world.patient)
    appt = _booked(world)
    now = appt.updated_at + MINUTE
    result = reminders.run_pass(now=now)
    assert (result.sent.sent, result.sent.uncertain) == (0, 1)
    assert "1 may not have gone out" in result.summary()
    row = Reminder.objects.get()
    assert row.status == ReminderStatus.UNCERTAIN
    assert "it may have gone out — check before resending" in row.last_error
    assert len(smtp.inbox.messages) == 1  # the server did get it
    later = reminders.run_pass(now=now + timedelta(days=1))
    assert later.sent.sent == 0 and len(smtp.inbox.messages) == 1
