"""Planning reminders: which messages, when, on which channel, and why not.

Times are given explicitly (``now=``) so the tests do not depend on the hour they run at; the
moment an appointment was booked is set on the row (``booked_at``), as the confirmation is due
then.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from glabella.accounts.roles import Role
from glabella.accounts.services import add_clinic, add_member
from glabella.conftest import PASSWORD
from glabella.patients.models import Patient
from glabella.scheduling import booking, reminders
from glabella.scheduling.models import (
    Appointment,
    MessageChannel,
    MessageKind,
    Recall,
    RecallKind,
    RecallState,
    Reminder,
    ReminderStatus,
)
from glabella.scheduling.tests.conftest import LONDON, next_monday_at
from glabella.scheduling.tests.reminder_helpers import agree, book

H = timedelta(hours=1)


def booked_at(appointment: Appointment, when: datetime) -> Appointment:
    """Pretend APPOINTMENT was booked (or last changed) at WHEN."""
    Appointment.objects.filter(pk=appointment.pk).update(updated_at=when)
    appointment.refresh_from_db()
    return appointment


def a_week_ahead(world, hour: int = 10, minute: int = 0, **kw) -> Appointment:
    """An appointment two Mondays ahead, booked the Wednesday before at 11:00 London time."""
    appt = book(world, next_monday_at(hour, minute, weeks=2), **kw)
    wednesday = appt.starts_at.astimezone(LONDON).date() - timedelta(days=5)
    return booked_at(appt, datetime.combine(wednesday, time(11, 0), tzinfo=LONDON))


def rows(**filters) -> dict[str, Reminder]:
    return {r.key.rsplit(":", 1)[1]: r for r in Reminder.objects.filter(**filters)}


def test_a_booking_gets_a_confirmation_then_reminders_48_and_2_hours_before(world):
    agree(world.patient)
    appt = a_week_ahead(world)

    first = reminders.plan(now=appt.updated_at + timedelta(minutes=1))
    assert first.planned == 1
    confirmation = Reminder.objects.get()
    assert confirmation.kind == MessageKind.CONFIRMATION
    assert confirmation.channel == MessageChannel.EMAIL
    assert confirmation.status == ReminderStatus.PENDING
    assert confirmation.key == f"appt:{appt.pk}:{appt.starts_at:%Y%m%dT%H%M}Z:confirm"
    assert confirmation.due_at == appt.updated_at == confirmation.next_attempt_at
    assert (confirmation.organization_id, confirmation.clinic_id) == (world.org.pk, world.clinic.pk)
    assert confirmation.patient_id == world.patient.pk and confirmation.appointment_id == appt.pk

    # The 48-hour reminder is made a day before it is due; the 2-hour one later.
    reminders.plan(now=appt.starts_at - 73 * H)
    assert set(rows()) == {"confirm"}
    reminders.plan(now=appt.starts_at - 71 * H)
    assert set(rows()) == {"confirm", "48h"}
    assert rows()["48h"].due_at == appt.starts_at - 48 * H
    reminders.plan(now=appt.starts_at - 25 * H)
    assert set(rows()) == {"confirm", "48h", "2h"}
    assert rows()["2h"].due_at == appt.starts_at - 2 * H
    assert all(r.kind == MessageKind.REMINDER for k, r in rows().items() if k != "confirm")


def test_planning_twice_makes_nothing_twice(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    now = appt.starts_at - 25 * H
    booked_at(appt, now - 25 * H)
    assert reminders.plan(now=now).planned == 3
    again = reminders.plan(now=now)
    assert (again.planned, again.skipped, again.updated, again.cancelled) == (0, 0, 0, 0)
    assert Reminder.objects.count() == 3


def test_the_clinic_chooses_its_reminder_hours_and_whether_to_confirm(world):
    agree(world.patient)
    config = booking.settings_for(world.clinic)
    config.reminder_hours = [24, "junk", -3, 24]
    config.send_confirmations = False
    config.save()
    appt = a_week_ahead(world)
    reminders.plan(now=appt.starts_at - 30 * H)
    assert set(rows()) == {"24h"}


def test_a_reminder_already_past_when_booked_is_not_made(world):
    """Booked 30 hours ahead: a 48-hour reminder would have been due before the booking."""
    agree(world.patient)
    appt = a_week_ahead(world)
    booked_at(appt, appt.starts_at - 30 * H)
    reminders.plan(now=appt.starts_at - 29 * H)
    assert set(rows()) == {"confirm"}
    reminders.plan(now=appt.starts_at - 3 * H)
    assert set(rows()) == {"confirm", "2h"}


def test_a_pass_over_many_appointments_is_a_handful_of_queries(world):
    agree(world.patient)
    reminders.plan()  # the first pass ever makes each clinic's settings
    start = next_monday_at(9, weeks=2)
    now = start - 26 * H

    def appointments(count: int, offset: int) -> None:
        Appointment.objects.bulk_create(
            Appointment(
                organization=world.org,
                clinic=world.clinic,
                patient=world.patient,
                practitioner=world.users[Role.PRESCRIBER],
                kind="treatment",
                starts_at=start + timedelta(minutes=10 * (offset + i)),
                ends_at=start + timedelta(minutes=10 * (offset + i) + 10),
            )
            for i in range(count)
        )
        Appointment.objects.update(updated_at=now - H)

    appointments(40, 0)
    with CaptureQueriesContext(connection) as small:
        reminders.plan(now=now)
    appointments(400, 40)
    Reminder.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        result = reminders.plan(now=now)
    assert Reminder.objects.count() == result.planned > 440

    def kinds(queries: CaptureQueriesContext) -> tuple[int, int]:
        inserts = sum(q["sql"].startswith("INSERT") for q in queries.captured_queries)
        return len(queries) - inserts, inserts

    others, inserts = kinds(large)
    assert others == kinds(small)[0] <= 8, [q["sql"][:80] for q in large.captured_queries]
    # Rows are written in batches as large as the database takes (999 parameters on SQLite).
    fields = [f for f in Reminder._meta.concrete_fields if not f.primary_key]
    per_batch = connection.ops.bulk_batch_size(fields, [None] * result.planned)
    assert inserts == -(-result.planned // per_batch)


# --- consent, channel, address ----------------------------------------------------------------


def _skip_reason(world, patient: Patient) -> Reminder:
    appt = a_week_ahead(world, patient=patient)
    reminders.plan(now=appt.updated_at + timedelta(minutes=1))
    return Reminder.objects.get(appointment=appt)


def test_no_consent_opted_out_phone_or_no_address_is_skipped_with_the_reason(world):
    cases = {
        "Patient has not agreed to reminders.": {"reminder_consent": False},
        "Patient opted out on 03/02/2026.": {
            "reminder_consent": False,
            "reminder_opt_out_at": datetime(2026, 2, 3, 23, 30, tzinfo=LONDON),
        },
        "Patient prefers a phone call: no message is sent.": {"preferred_channel": "phone"},
        "Patient asked for no reminders.": {"preferred_channel": "none"},
        "No e-mail address for this patient.": {"email": ""},
        "No mobile number for this patient.": {"preferred_channel": "sms", "phone": " - "},
    }
    agree(world.patient)
    for hour, (reason, fields) in enumerate(cases.items()):
        base = {"reminder_consent": True, "preferred_channel": "email", "email": "a@b.org"}
        Patient.objects.filter(pk=world.patient.pk).update(**(base | fields))
        appt = a_week_ahead(world, hour=9 + hour)
        reminders.plan(now=appt.updated_at + timedelta(minutes=1))
        row = Reminder.objects.get(appointment=appt)
        assert (row.status, row.skip_reason) == (ReminderStatus.SKIPPED, reason)
    result = reminders.send_due(now=next_monday_at(8, weeks=2))
    assert result.sent == 0 and mail.outbox == []
    assert Reminder.objects.filter(status=ReminderStatus.SKIPPED).count() == len(cases)


def test_the_sms_preference_picks_the_sms_channel(world):
    agree(world.patient, "sms")
    appt = a_week_ahead(world)
    reminders.plan(now=appt.updated_at + timedelta(minutes=1))
    assert Reminder.objects.get().channel == MessageChannel.SMS


def test_agreeing_later_brings_the_reminder_back_and_withdrawing_skips_it(world):
    appt = a_week_ahead(world)
    now = appt.starts_at - 60 * H
    reminders.plan(now=now)
    assert rows()["48h"].status == ReminderStatus.SKIPPED
    agree(world.patient, "sms")
    assert reminders.plan(now=now).updated == 1
    revived = rows()["48h"]
    assert (revived.status, revived.skip_reason, revived.channel) == ("pending", "", "sms")
    Patient.objects.filter(pk=world.patient.pk).update(reminder_consent=False)
    reminders.plan(now=now)
    assert rows()["48h"].status == ReminderStatus.SKIPPED
    assert rows()["48h"].skip_reason == "Patient has not agreed to reminders."


def test_consent_withdrawn_after_planning_is_honoured_when_sending(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    now = appt.updated_at + timedelta(minutes=1)
    reminders.plan(now=now)
    Patient.objects.filter(pk=world.patient.pk).update(
        reminder_consent=False, reminder_opt_out_at=datetime(2026, 5, 6, 9, 0, tzinfo=LONDON)
    )
    result = reminders.send_due(now=now)
    assert result.skipped == 1 and result.sent == 0 and mail.outbox == []
    assert Reminder.objects.get().skip_reason == "Patient opted out on 06/05/2026."


# --- moved and cancelled appointments ---------------------------------------------------------


def test_a_moved_appointment_gets_fresh_messages_and_the_stale_ones_are_cancelled(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    now = appt.starts_at - 50 * H
    booked_at(appt, now - 2 * H)
    reminders.plan(now=now)
    assert {k: r.status for k, r in rows().items()} == {"confirm": "pending", "48h": "pending"}
    reminders.send_due(now=now)  # the confirmation of the first time goes out
    assert len(mail.outbox) == 1

    moved = booking.change(
        world.actor(Role.FRONT_DESK), appt, appt.version, starts_at=appt.starts_at + 2 * H
    )
    booked_at(moved, now + timedelta(minutes=5))
    result = reminders.plan(now=now + timedelta(minutes=10))
    assert result.cancelled == 1
    old = Reminder.objects.get(key__endswith=f"{appt.starts_at:%Y%m%dT%H%M}Z:48h")
    local = moved.starts_at.astimezone(LONDON)
    assert old.status == ReminderStatus.CANCELLED
    assert old.skip_reason == f"The appointment moved to {local:%d/%m/%Y} 12:00."
    sent = Reminder.objects.get(key__endswith=f"{appt.starts_at:%Y%m%dT%H%M}Z:confirm")
    assert sent.status == ReminderStatus.SENT  # what went out stays in the log as sent
    fresh = rows(key__contains=f"{moved.starts_at:%Y%m%dT%H%M}Z")
    assert set(fresh) == {"confirm", "48h"}
    assert fresh["48h"].due_at == moved.starts_at - 48 * H

    reminders.send_due(now=now + timedelta(minutes=10))
    assert len(mail.outbox) == 2  # the confirmation of the new time
    assert f"{local:%d/%m/%Y} at 12:00" in mail.outbox[1].subject

    # Moving it back: the first time's cancelled reminder is wanted again.
    back = booking.change(
        world.actor(Role.FRONT_DESK), moved, moved.version, starts_at=appt.starts_at
    )
    booked_at(back, now + 20 * timedelta(minutes=1))
    reminders.plan(now=now + timedelta(minutes=30))
    old.refresh_from_db()
    assert old.status == ReminderStatus.PENDING and old.skip_reason == ""


def test_a_cancelled_appointment_cancels_its_pending_messages(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    now = appt.starts_at - 47 * H
    booked_at(appt, now - 2 * H)
    reminders.plan(now=now)
    booking.set_status(world.actor(Role.FRONT_DESK), appt, "cancelled", reason="patient unwell")
    result = reminders.plan(now=now)
    assert result.cancelled == 2
    assert {r.status for r in Reminder.objects.all()} == {ReminderStatus.CANCELLED}
    assert {r.skip_reason for r in Reminder.objects.all()} == {"The appointment was cancelled."}
    assert reminders.send_due(now=now).sent == 0 and mail.outbox == []


def test_an_appointment_cancelled_between_planning_and_sending_is_not_sent(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    now = appt.updated_at + timedelta(minutes=1)
    reminders.plan(now=now)
    booking.set_status(world.actor(Role.FRONT_DESK), appt, "cancelled", reason="clinic closed")
    result = reminders.send_due(now=now)  # no planning in between: the send re-checks
    assert (result.sent, result.cancelled) == (0, 1) and mail.outbox == []
    assert Reminder.objects.get().skip_reason == "The appointment was cancelled."


def test_a_reminder_left_until_the_appointment_starts_is_not_sent(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    reminders.plan(now=appt.starts_at - 47 * H)
    late = appt.starts_at - timedelta(minutes=20)  # the worker was down until now
    result = reminders.send_due(now=late)
    assert result.sent == 0 and result.skipped == 1
    row = rows()["48h"]
    assert row.status == ReminderStatus.SKIPPED
    local = appt.starts_at.astimezone(LONDON)
    assert row.skip_reason == f"Too late: the appointment starts at {local:%d/%m/%Y %H:%M}."


# --- quiet hours and time zones ---------------------------------------------------------------


def test_quiet_hours_hold_a_reminder_and_skip_one_that_would_then_be_too_late(world):
    agree(world.patient)
    config = booking.settings_for(world.clinic)
    config.quiet_start, config.quiet_end = time(21, 0), time(9, 0)
    config.reminder_hours = [2]
    config.save()
    early = a_week_ahead(world, hour=9, minute=15)  # reminder due 07:15, quiet until 09:00
    later = a_week_ahead(world, hour=10, minute=30)  # reminder due 08:30 -> 09:00
    reminders.plan(now=early.starts_at - 12 * H)

    day = early.starts_at.astimezone(LONDON).date()
    skipped = Reminder.objects.get(appointment=early, key__endswith=":2h")
    assert skipped.status == ReminderStatus.SKIPPED
    assert skipped.skip_reason == (
        f"Too late: quiet hours until 09:00 and the appointment starts at {day:%d/%m/%Y} 09:15."
    )
    held = Reminder.objects.get(appointment=later, key__endswith=":2h")
    assert held.status == ReminderStatus.PENDING
    assert held.due_at == datetime.combine(day, time(9, 0), tzinfo=LONDON)

    assert reminders.send_due(now=later.starts_at - 2 * H).sent == 0  # 08:30: still quiet
    assert reminders.send_due(now=held.due_at).sent == 1


def test_a_confirmation_booked_late_in_the_evening_waits_for_the_morning(world):
    agree(world.patient)
    appt = a_week_ahead(world)
    friday = appt.starts_at.astimezone(LONDON).date() - timedelta(days=3)
    booked_at(appt, datetime.combine(friday, time(22, 30), tzinfo=LONDON))
    reminders.plan(now=appt.updated_at + timedelta(minutes=1))
    row = rows()["confirm"]
    assert row.due_at == datetime.combine(friday + timedelta(days=1), time(8, 0), tzinfo=LONDON)


def test_quiet_hours_are_the_clinics_own_time_zone(world):
    owner = world.actor(Role.OWNER)
    new_york = ZoneInfo("America/New_York")
    clinic = add_clinic(owner, name="Alpha Manhattan", timezone="America/New_York")
    doctor = add_member(
        owner, email="ny-doc@alpha.test", clinic=clinic, role=Role.PRESCRIBER, password=PASSWORD
    ).user
    agree(world.patient)
    monday = next_monday_at(9, weeks=2).date()
    appt = book(
        world,
        datetime.combine(monday, time(9, 0), tzinfo=new_york),
        clinic=clinic,
        practitioner=doctor,
    )
    # The 2-hour reminder is due at 07:00 in New York (12:00 in London): quiet there.
    reminders.plan(now=appt.starts_at - 12 * H)
    row = Reminder.objects.get(appointment=appt, key__endswith=":2h")
    assert row.clinic_id == clinic.pk and row.status == ReminderStatus.PENDING
    assert row.due_at == datetime.combine(monday, time(8, 0), tzinfo=new_york)
    reminders.send_due(now=row.due_at)
    assert f"{monday:%d/%m/%Y} at 09:00" in mail.outbox[0].subject  # New York time


def test_quiet_hours_within_one_day_and_none_at_all(world):
    config = booking.settings_for(world.clinic)
    noon = datetime(2026, 6, 1, 12, 30, tzinfo=LONDON)
    config.quiet_start, config.quiet_end = time(12, 0), time(14, 0)
    assert reminders.after_quiet_hours(noon, config, world.clinic) == noon.replace(
        hour=14, minute=0
    )
    assert reminders.after_quiet_hours(noon.replace(hour=15), config, world.clinic).hour == 15
    config.quiet_start = config.quiet_end = time(0, 0)
    assert reminders.after_quiet_hours(noon, config, world.clinic) == noon


# --- recall invitations -----------------------------------------------------------------------


def _recall(world, due_on: date, **fields) -> Recall:
    recall = Recall.objects.create(
        organization=world.org,
        patient=world.patient,
        clinic=world.clinic,
        indication="glabellar-lines",
        kind=RecallKind.RETREATMENT,
        basis_on=due_on - timedelta(days=120),
        due_on=due_on,
        **fields,
    )
    Recall.objects.filter(pk=recall.pk).update(created_at=datetime(2026, 1, 1, tzinfo=LONDON))
    recall.refresh_from_db()
    return recall


def test_a_recall_invitation_goes_the_clinics_days_before_the_due_date(world):
    agree(world.patient)
    due = next_monday_at(9, weeks=3).date()
    recall = _recall(world, due)
    invite = datetime.combine(due - timedelta(days=7), time(10, 0), tzinfo=LONDON)
    reminders.plan(now=invite - 25 * H)
    assert not Reminder.objects.exists()
    reminders.plan(now=invite - 23 * H)
    row = Reminder.objects.get()
    assert (row.key, row.kind, row.recall_id, row.due_at) == (
        f"recall:{recall.pk}",
        MessageKind.RECALL,
        recall.pk,
        invite,
    )
    assert reminders.send_due(now=invite).sent == 1
    message = mail.outbox[0]
    assert message.subject == "Time to book your next appointment at Alpha Central"
    assert f"from {due:%d/%m/%Y}" in message.body
    assert "glabellar" not in message.body.lower()  # nothing clinical


def test_a_recall_invitation_is_not_sent_to_someone_already_booked_or_once_closed(world):
    agree(world.patient)
    due = next_monday_at(9, weeks=3).date()
    recall = _recall(world, due)
    appt = book(world, next_monday_at(11, weeks=2))
    invite = datetime.combine(due - timedelta(days=7), time(10, 0), tzinfo=LONDON)
    reminders.plan(now=invite - H)
    row = Reminder.objects.get(recall=recall)
    local = appt.starts_at.astimezone(LONDON)
    assert row.status == ReminderStatus.SKIPPED
    assert row.skip_reason == f"Already booked for {local:%d/%m/%Y %H:%M}."

    Reminder.objects.all().delete()
    booking.set_status(world.actor(Role.FRONT_DESK), appt, "cancelled", reason="changed mind")
    reminders.plan(now=invite - H)
    assert Reminder.objects.get(recall=recall).status == ReminderStatus.PENDING
    Recall.objects.filter(pk=recall.pk).update(state=RecallState.DECLINED)
    assert reminders.plan(now=invite - H).cancelled == 1
    assert Reminder.objects.get(recall=recall).skip_reason == "The recall is now “declined”."
    assert reminders.send_due(now=invite).sent == 0


def test_the_other_organizations_appointments_are_planned_in_their_own_clinic(world):
    from glabella.accounts.actor import Actor

    beta = world.outsider_org.clinics.get()
    agree(world.outsider_patient)
    outsider = Actor(world.outsider_org, world.outsider, beta, Role.OWNER)
    doc = add_member(
        outsider, email="beta-doc@beta.test", clinic=beta, role=Role.PRESCRIBER, password=PASSWORD
    ).user
    monday = next_monday_at(9, weeks=2).date()
    appt = booking.book(
        outsider,
        patient=world.outsider_patient,
        clinic=beta,
        practitioner=doc,
        starts_at=datetime.combine(monday, time(10, 0), tzinfo=ZoneInfo("America/New_York")),
        kind="treatment",
    )
    Patient.objects.filter(pk=world.outsider_patient.pk).update(email="bob@example.org")
    reminders.plan(now=appt.updated_at + timedelta(minutes=1))
    row = Reminder.objects.get(appointment=appt)
    assert (row.organization_id, row.clinic_id) == (world.outsider_org.pk, beta.pk)
    assert Reminder.objects.for_org(world.org).count() == 0
