"""Reminders by SMS through the HTTP provider, against a real local gateway: short bodies with the
opt-out link, a gateway that times out is retried with back-off and the message is never
delivered twice, a gateway that keeps refusing ends in failed with the reason."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from glabella.scheduling import reminders
from glabella.scheduling.models import MessageChannel, Reminder, ReminderStatus
from glabella.scheduling.tests import reminder_helpers
from glabella.scheduling.tests.conftest import LONDON, next_monday_at
from glabella.scheduling.tests.reminder_helpers import (
    agree,
    book,
)

gateway = reminder_helpers.gateway  # fixture

MINUTE = timedelta(minutes=1)


def _booked(world):
    appt = book(world, next_monday_at(10, weeks=2))
    wednesday = appt.starts_at.astimezone(LONDON).date() - timedelta(days=5)
    when = datetime.combine(wednesday, time(11, 0), tzinfo=LONDON)
    type(appt).objects.filter(pk=appt.pk).update(updated_at=when)
    appt.refresh_from_db()
    return appt


def test_a_confirmation_by_sms_is_short_and_ends_with_the_opt_out_link(world, gateway, settings):
    settings.GLABELLA_SITE_URL = "https://glabella.alpha.test"
    agree(world.patient, "sms", phone="+44 7700 900123")
    appt = _booked(world)
    result = reminders.run_pass(now=appt.updated_at + MINUTE)
    assert result.sent.sent == 1
    [message] = gateway.delivered
    local = appt.starts_at.astimezone(LONDON)
    first, second = message["body"].split("\n")
    assert first == f"Alpha Central: your appointment is booked for {local:%d/%m/%Y} at 10:00."
    assert second.startswith("Stop: https://glabella.alpha.test/scheduling/opt-out/")
    assert len(message["body"]) <= 160
    assert message["to"] == "+447700900123"
    row = Reminder.objects.get()
    assert row.channel == MessageChannel.SMS and row.status == ReminderStatus.SENT
    assert row.provider_ref == "msg-1" and row.to_address == "+447700900123"
    assert row.subject == ""
    key = gateway.headers[0]["Idempotency-Key"]
    assert key == f"glabella-{row.pk}-{row.key}"


def test_a_gateway_timeout_is_retried_with_back_off_and_never_delivered_twice(world, gateway):
    gateway.script = ["hang", "hang"]
    gateway.hang_seconds = 1.5  # the provider gives up after 0.5 s (settings in the fixture)
    agree(world.patient, "sms", phone="07700 900123")
    appt = _booked(world)
    now = appt.updated_at + MINUTE

    first = reminders.run_pass(now=now)
    assert (first.sent.sent, first.sent.retrying) == (0, 1)
    row = Reminder.objects.get()
    assert row.status == ReminderStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at == now + timedelta(minutes=5)
    assert row.last_error.startswith("The SMS gateway did not answer within 0.5 seconds.")

    second = reminders.send_due(now=row.next_attempt_at)  # hangs again: 30 minutes more
    assert second.retrying == 1
    row.refresh_from_db()
    assert row.attempts == 2 and row.next_attempt_at - now == timedelta(minutes=35)

    third = reminders.send_due(now=row.next_attempt_at)
    assert third.sent == 1
    row.refresh_from_db()
    assert row.status == ReminderStatus.SENT and row.attempts == 3
    assert row.provider_ref == "msg-1"  # the message the gateway took the first time
    [key] = gateway.requests
    assert gateway.requests[key] == 3 and gateway.deliveries[key] == 1
    assert len(gateway.delivered) == 1


def test_a_gateway_that_keeps_refusing_ends_in_failed_with_the_reason(world, gateway):
    gateway.script = ["503"] * 5
    agree(world.patient, "sms", phone="07700 900123")
    appt = _booked(world)
    now = appt.updated_at + MINUTE
    reminders.run_pass(now=now)
    row = Reminder.objects.get()
    for _ in range(4):
        reminders.send_due(now=row.next_attempt_at)
        row.refresh_from_db()
    assert row.status == ReminderStatus.FAILED and row.attempts == 5
    assert row.last_error == (
        "The SMS gateway refused the message (HTTP 503: simulated 503). Gave up after 5 attempts."
    )
    assert gateway.delivered == []


def test_a_provider_that_cannot_promise_once_only_leaves_the_message_uncertain(world, settings):
    settings.GLABELLA_SMS_PROVIDER = f"{__name__}.Flaky"
    agree(world.patient, "sms", phone="07700 900123")
    appt = _booked(world)
    now = appt.updated_at + MINUTE
    result = reminders.run_pass(now=now)
    assert result.sent.uncertain == 1
    row = Reminder.objects.get()
    assert row.status == ReminderStatus.UNCERTAIN
    assert row.last_error == (
        "The line dropped after sending. It may have gone out — check before resending."
    )
    assert reminders.run_pass(now=now + timedelta(hours=1)).sent.sent == 0
    assert Flaky.calls == 1


class Flaky:
    calls = 0

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        from glabella.scheduling.sms import SmsError

        Flaky.calls += 1
        raise SmsError("The line dropped after sending.", retry_safe=False)
