"""The worker as it runs in production: real OS processes (``manage.py remind --once``,
``manage.py worker``) against one shared database (the test PostgreSQL database, or a SQLite file
with the production settings), a real SMTP server and a real SMS gateway.

- two workers at once: every reminder is delivered exactly once;
- a worker killed (SIGKILL) while the SMTP server is slowly taking a message: another worker
  sends every other reminder exactly once, and the one in flight is never resent - after the
  lease it is marked "may not have gone out" for a person to decide;
- SIGTERM: the worker finishes the message it is sending, then stops.
"""

from __future__ import annotations

import signal
import subprocess
import time as clock
from datetime import time, timedelta

from django.core.management import call_command
from django.utils import timezone

from glabella.accounts.roles import Role
from glabella.scheduling import booking, reminders
from glabella.scheduling.models import Appointment, Reminder, ReminderStatus
from glabella.scheduling.tests import reminder_helpers
from glabella.scheduling.tests.conftest import next_monday_at
from glabella.scheduling.tests.reminder_helpers import (
    GLABELLA,
    ROOT,
    agree,
    book,
    finish,
    gateway_env,
    new_patient,
    start,
    worker_env,
)

gateway = reminder_helpers.gateway  # fixture
shared_world = reminder_helpers.shared_world  # fixture
smtp = reminder_helpers.smtp  # fixture


def _no_quiet_hours(world) -> None:
    """The workers run on the real clock: no quiet hours, whatever hour the tests run at."""
    config = booking.settings_for(world.clinic)
    config.quiet_start = config.quiet_end = time(0, 0)
    config.save()


def _book_many(world, patients) -> list[Appointment]:
    """One appointment each, two Mondays ahead (so only the confirmations are due now)."""
    slots = [
        (who, next_monday_at(9, 30 * (i % 2), weeks=2) + timedelta(hours=i // 2))
        for i in range(18)
        for who in (Role.PRESCRIBER, Role.INJECTOR)
    ]
    return [
        book(world, starts_at, patient, practitioner=world.users[who])
        for patient, (who, starts_at) in zip(patients, slots, strict=False)
    ]


def test_remind_once_through_the_console_command(shared_world, smtp, gateway):
    world, url = shared_world
    _no_quiet_hours(world)
    agree(world.patient)
    texter = new_patient(world, phone="07700 900555", channel="sms")
    unwilling = new_patient(world, email="no@example.org")
    unwilling.reminder_consent = False
    unwilling.save(update_fields=["reminder_consent"])
    _book_many(world, [world.patient, texter, unwilling])

    done = subprocess.run(
        [str(GLABELLA), "remind", "--once"],
        cwd=ROOT,
        env=worker_env(url, smtp.env(), gateway_env(gateway)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Reminders: 2 planned, 2 sent, 0 failed, 1 skipped."
    assert [r for _, r, _m in smtp.inbox.messages] == [["ada@example.org"]]
    assert [m["to"] for m in gateway.delivered] == ["07700900555"]
    skipped = Reminder.objects.get(patient=unwilling)
    assert skipped.skip_reason == "Patient has not agreed to reminders."


def test_two_workers_at_once_deliver_each_reminder_exactly_once(shared_world, smtp, gateway):
    world, url = shared_world
    _no_quiet_hours(world)
    emailed = [new_patient(world, email=f"p{i}@example.org") for i in range(14)]
    texted = [new_patient(world, phone=f"07700 9001{i:02d}", channel="sms") for i in range(8)]
    _book_many(world, emailed + texted)
    smtp.inbox.gate = 2  # the first message waits until both workers are sending at once
    smtp.inbox.delay = 0.05
    gateway.delay = 0.05
    env = worker_env(url, smtp.env(), gateway_env(gateway))

    workers = [start(["remind", "--once", "--worker-id", name], env) for name in ("A", "B")]
    results = [finish(w) for w in workers]
    for code, _out, err in results:
        assert code == 0, err

    assert smtp.inbox.count_by_recipient() == {p.email: 1 for p in emailed}
    assert len(gateway.requests) == len(texted)
    assert set(gateway.requests.values()) == {1}  # not even a second request, let alone delivery
    assert Reminder.objects.count() == len(emailed) + len(texted)
    assert set(Reminder.objects.values_list("status", flat=True)) == {ReminderStatus.SENT}
    # Both workers did part of the work, at the same time.
    assert set(Reminder.objects.values_list("claimed_by", flat=True)) == {"A", "B"}
    sent = [int(out.split(" planned, ")[1].split(" sent")[0]) for _, out, _ in results]
    assert sum(sent) == len(emailed) + len(texted), results


def test_a_worker_killed_mid_send_loses_nothing_and_doubles_nothing(shared_world, smtp):
    world, url = shared_world
    _no_quiet_hours(world)
    addresses = ["k0@example.org", "k1@example.org", "slow@example.org"]
    addresses += [f"k{i}@example.org" for i in range(3, 7)]
    patients = [new_patient(world, email=a) for a in addresses]
    _book_many(world, patients)  # confirmations due in booking order: the slow one is third
    smtp.inbox.slow.add("slow@example.org")
    smtp.inbox.slow_seconds = 20
    env = worker_env(url, smtp.env())

    doomed = start(["worker", "--interval", "0.5", "--worker-id", "doomed"], env)
    assert smtp.inbox.slow_started.wait(60), finish(doomed, 5)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    in_flight = Reminder.objects.get(patient__email="slow@example.org")
    assert in_flight.status == ReminderStatus.SENDING and in_flight.claimed_by == "doomed"
    before = Reminder.objects.filter(status=ReminderStatus.SENT).count()
    assert before == 2

    # Another worker at once (its lease not yet over): sends every other reminder, leaves the
    # one in flight alone.
    code, out, err = finish(start(["remind", "--once", "--lease", "60", "--worker-id", "B"], env))
    assert code == 0, err
    assert out.strip() == "Reminders: 0 planned, 4 sent, 0 failed, 0 skipped."
    in_flight.refresh_from_db()
    assert in_flight.status == ReminderStatus.SENDING

    # After the lease: marked uncertain, for a person to decide; still not resent.
    wait = (in_flight.claimed_at + timedelta(seconds=3.5) - timezone.now()).total_seconds()
    clock.sleep(max(0.0, wait))
    code, out, err = finish(start(["remind", "--once", "--lease", "3", "--worker-id", "C"], env))
    assert code == 0, err
    assert out.strip() == (
        "Reminders: 0 planned, 0 sent, 0 failed, 0 skipped (1 may not have gone out)."
    )
    in_flight.refresh_from_db()
    assert in_flight.status == ReminderStatus.UNCERTAIN
    assert in_flight.last_error == reminders.UNCERTAIN_TEXT
    assert smtp.inbox.count_by_recipient() == dict.fromkeys(addresses, 1)
    statuses = dict(Reminder.objects.values_list("patient__email", "status"))
    assert statuses == {a: "uncertain" if a.startswith("slow") else "sent" for a in addresses}


def test_sigterm_finishes_the_message_being_sent_then_stops(shared_world, smtp):
    world, url = shared_world
    _no_quiet_hours(world)
    patients = [new_patient(world, email=a) for a in ("slow2@example.org", "t1@example.org")]
    patients.append(new_patient(world, email="t2@example.org"))
    _book_many(world, patients)
    smtp.inbox.slow.add("slow2@example.org")
    smtp.inbox.slow_seconds = 2
    worker = start(
        ["worker", "--interval", "0.5", "--worker-id", "polite"], worker_env(url, smtp.env())
    )
    assert smtp.inbox.slow_started.wait(60), finish(worker, 5)
    worker.send_signal(signal.SIGTERM)
    code, out, err = finish(worker, 30)
    assert code == 0, err
    assert "Worker polite: SIGTERM received; stopping after the current message." in out
    assert "Worker polite stopped after 1 pass(es)." in out
    statuses = dict(Reminder.objects.values_list("patient__email", "status"))
    assert statuses == {
        "slow2@example.org": "sent",
        "t1@example.org": "pending",
        "t2@example.org": "pending",
    }
    assert set(Reminder.objects.filter(status="pending").values_list("claimed_by", flat=True)) == {
        ""
    }


def test_a_stale_claim_becomes_uncertain_after_the_lease_and_is_never_sent(world, settings):
    from django.core import mail

    settings.GLABELLA_REMINDER_LEASE_SECONDS = 600
    agree(world.patient)
    appt = book(world, next_monday_at(10, weeks=2))
    now = appt.starts_at - timedelta(days=5)
    Appointment.objects.filter(pk=appt.pk).update(updated_at=now)
    reminders.plan(now=now + timedelta(minutes=1))
    row = Reminder.objects.get()
    assert reminders.claim(row.pk, "gone", now + timedelta(minutes=1))  # ...and then it died
    assert not reminders.claim(row.pk, "other", now + timedelta(minutes=1))  # taken
    claimed = Reminder.objects.get().claimed_at

    early = reminders.run_pass(now=claimed + timedelta(minutes=9))
    assert early.swept == 0 and Reminder.objects.get().status == ReminderStatus.SENDING
    late = reminders.run_pass(now=claimed + timedelta(minutes=11))
    assert late.swept == 1 and late.sent.sent == 0
    assert Reminder.objects.get().status == ReminderStatus.UNCERTAIN
    assert reminders.run_pass(now=claimed + timedelta(days=1)).sent.sent == 0
    assert mail.outbox == []


def test_the_worker_command_runs_passes_and_says_what_it_did(world, capsys):
    _no_quiet_hours(world)
    agree(world.patient)
    book(world, next_monday_at(10, weeks=2))
    call_command("worker", "--passes", "2", "--interval", "0.1", "--worker-id", "w1")
    out = capsys.readouterr().out
    assert "Worker w1 started: a pass every 0.1 s." in out
    assert out.count("Reminders: 1 planned, 1 sent, 0 failed, 0 skipped.") == 1  # then idle
    assert "Worker w1 stopped after 2 pass(es)." in out
    call_command("remind", "--once")
    assert capsys.readouterr().out.strip() == "Reminders: 0 planned, 0 sent, 0 failed, 0 skipped."


def test_the_worker_tidies_up_once_an_hour(world, capsys):
    from importlib import import_module

    from django.conf import settings as django_settings
    from django.contrib.sessions.models import Session

    from glabella.accounts.models import LoginThrottle

    long_ago = timezone.now() - timedelta(days=30)
    LoginThrottle.objects.create(key="user:typo@example.test", failures=2, last_failure_at=long_ago)
    LoginThrottle.objects.create(
        key="user:recent@example.test", failures=1, last_failure_at=timezone.now()
    )
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store["x"] = 1
    store.create()
    Session.objects.filter(pk=store.session_key).update(expire_date=long_ago)
    call_command("worker", "--passes", "2", "--interval", "0.1", "--worker-id", "w1")
    out = capsys.readouterr().out
    # Once, on the first pass (the second comes 0.1 s later, well within the hour).
    assert out.count("Housekeeping: expired sessions cleared, 1 old sign-in counter(s)") == 1
    assert list(LoginThrottle.objects.values_list("key", flat=True)) == ["user:recent@example.test"]
    assert not Session.objects.filter(pk=store.session_key).exists()


def test_a_pass_that_fails_is_reported_and_the_worker_carries_on(tmp_path):
    """The database is down: each pass says so, and the worker keeps going (and stops cleanly)."""
    env = worker_env("postgres://nobody@127.0.0.1:9/glabella")
    env["GLABELLA_VAR_DIR"] = str(tmp_path)
    code, out, err = finish(start(["worker", "--passes", "2", "--interval", "0.1"], env), 60)
    assert code == 0, err
    assert err.count("pass failed: OperationalError") == 2
    assert "stopped after 2 pass(es)." in out
