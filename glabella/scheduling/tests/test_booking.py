"""Booking rules: the service's plain-words refusals and the database's own refusal of overlaps."""

from __future__ import annotations

import threading
import time as time_module
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from glabella.accounts.roles import Role
from glabella.audit.models import AuditEvent
from glabella.conftest import _make_world
from glabella.scheduling import booking
from glabella.scheduling.models import (
    STATUS_MOVES,
    Appointment,
    AppointmentStatus,
    Recall,
    RecallState,
    Room,
)
from glabella.scheduling.tests.conftest import next_monday_at
from glabella.testing_processes import migrated_sqlite


def _book(world, starts_at, *, who=Role.PRESCRIBER, room=None, minutes=None, kind="treatment"):
    return booking.book(
        world.actor(Role.FRONT_DESK),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users[who],
        starts_at=starts_at,
        kind=kind,
        minutes=minutes,
        room=room,
    )


def test_book_uses_the_type_length_and_is_audited(world, monday_10):
    appt = _book(world, monday_10, kind="migraine_cycle")
    assert appt.ends_at - appt.starts_at == timedelta(minutes=45)
    assert appt.status == AppointmentStatus.BOOKED
    assert AuditEvent.objects.filter(
        object_type="scheduling.appointment", object_id=str(appt.pk), action="create"
    ).exists()


def test_overlap_refused_in_words(world, monday_10):
    _book(world, monday_10)
    with pytest.raises(ValidationError) as err:
        _book(world, monday_10 + timedelta(minutes=15))
    assert "already has an appointment" in err.value.message_dict["practitioner"][0]
    # Back to back is fine; another practitioner at the same time is fine.
    _book(world, monday_10 + timedelta(minutes=30))
    _book(world, monday_10, who=Role.INJECTOR)


def test_room_overlap_refused(world, monday_10):
    room = Room.objects.create(organization=world.org, clinic=world.clinic, name="Room 1")
    _book(world, monday_10, room=room)
    with pytest.raises(ValidationError) as err:
        _book(world, monday_10, who=Role.INJECTOR, room=room)
    assert "Room 1 is already booked" in err.value.message_dict["room"][0]


def test_past_and_closed_hours_refused(world, monday_10):
    with pytest.raises(ValidationError) as err:
        _book(world, monday_10 - timedelta(days=30))
    assert "already passed" in err.value.message_dict["starts_at"][0]
    with pytest.raises(ValidationError) as err:
        _book(world, next_monday_at(7))
    assert "outside Alpha Central's opening hours" in err.value.message_dict["starts_at"][0]
    assert "09:00-18:00" in err.value.message_dict["starts_at"][0]
    sunday = monday_10 - timedelta(days=1)
    with pytest.raises(ValidationError) as err:
        _book(world, sunday + timedelta(days=7))
    assert "closed on Sundays" in err.value.message_dict["starts_at"][0]
    with pytest.raises(ValidationError):  # runs past closing time
        _book(world, next_monday_at(17, 45), minutes=30)


def test_only_practitioners_can_be_booked(world, monday_10):
    with pytest.raises(ValidationError) as err:
        _book(world, monday_10, who=Role.FRONT_DESK)
    assert "does not treat patients" in err.value.message_dict["practitioner"][0]


def test_patient_of_another_organization_refused(world, monday_10):
    with pytest.raises(PermissionError):
        booking.book(
            world.actor(Role.FRONT_DESK),
            patient=world.outsider_patient,
            clinic=world.clinic,
            practitioner=world.users[Role.PRESCRIBER],
            starts_at=monday_10,
            kind="treatment",
        )


def test_auditor_cannot_book(world, monday_10):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        booking.book(
            world.actor(Role.AUDITOR),
            patient=world.patient,
            clinic=world.clinic,
            practitioner=world.users[Role.PRESCRIBER],
            starts_at=monday_10,
            kind="treatment",
        )


def test_cancelled_frees_the_time_and_undo_no_show_checks_it(world, monday_10):
    first = _book(world, monday_10)
    booking.set_status(world.actor(Role.FRONT_DESK), first, "cancelled", reason="patient ill")
    second = _book(world, monday_10)
    booking.set_status(world.actor(Role.FRONT_DESK), second, "no_show")
    third = _book(world, monday_10)
    with pytest.raises(ValidationError):
        booking.set_status(world.actor(Role.FRONT_DESK), second, "booked")
    assert third.status == "booked"
    with pytest.raises(ValidationError):  # a cancellation is final
        booking.set_status(world.actor(Role.FRONT_DESK), first, "booked")
    with pytest.raises(ValidationError) as err:
        booking.set_status(world.actor(Role.FRONT_DESK), third, "cancelled", reason="")
    assert "Say why" in err.value.message_dict["reason"][0]


def test_move_keeps_length_and_refuses_stale_version(world, monday_10):
    appt = _book(world, monday_10, minutes=40)
    moved = booking.change(
        world.actor(Role.FRONT_DESK), appt, appt.version, starts_at=monday_10 + timedelta(hours=2)
    )
    assert moved.ends_at - moved.starts_at == timedelta(minutes=40)
    with pytest.raises(booking.Stale):
        booking.change(world.actor(Role.FRONT_DESK), appt, appt.version, notes="x")


def _raw(world, starts_at, minutes=30, status="booked", room=None, who=Role.PRESCRIBER):
    return Appointment.objects.create(
        organization=world.org,
        clinic=world.clinic,
        patient=world.patient,
        practitioner=world.users[who],
        room=room,
        kind="treatment",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        status=status,
    )


def test_database_refuses_practitioner_overlap_without_the_service(world, monday_10):
    """The database itself (exclusion constraint / trigger) refuses what the form would."""
    _raw(world, monday_10)
    with pytest.raises(IntegrityError, match="practitioner_overlap"), transaction.atomic():
        _raw(world, monday_10 + timedelta(minutes=29))
    _raw(world, monday_10 + timedelta(minutes=30))  # touching is not overlapping
    _raw(world, monday_10, status="cancelled")  # cancelled rows hold no time


def test_database_refuses_room_overlap_and_overlapping_update(world, monday_10):
    room = Room.objects.create(organization=world.org, clinic=world.clinic, name="Room 2")
    _raw(world, monday_10, room=room)
    with pytest.raises(IntegrityError, match="room_overlap"), transaction.atomic():
        _raw(world, monday_10, room=room, who=Role.INJECTOR)
    later = _raw(world, monday_10 + timedelta(hours=1))
    later.starts_at = monday_10 + timedelta(minutes=10)
    with pytest.raises(IntegrityError, match="practitioner_overlap"), transaction.atomic():
        later.save()
    cancelled = _raw(world, monday_10, status="cancelled")
    cancelled.status = "booked"  # reviving a cancelled row into a taken slot
    with pytest.raises(IntegrityError, match="practitioner_overlap"), transaction.atomic():
        cancelled.save()


# --- organizations never mix ----------------------------------------------------------------


def test_another_organizations_clinic_room_recall_and_practitioner_are_refused(world, monday_10):
    from glabella.accounts.models import Clinic

    actor = world.actor(Role.FRONT_DESK)
    their_clinic = Clinic.objects.get(organization=world.outsider_org)
    their_room = Room.objects.create(
        organization=world.outsider_org, clinic=their_clinic, name="Their room"
    )
    their_recall = _recall(world, patient=world.outsider_patient, org=world.outsider_org)
    base = {
        "patient": world.patient,
        "clinic": world.clinic,
        "practitioner": world.users[Role.PRESCRIBER],
        "starts_at": monday_10,
        "kind": "treatment",
    }
    for override in ({"clinic": their_clinic}, {"room": their_room}, {"recall": their_recall}):
        with pytest.raises(PermissionError):
            booking.book(actor, **(base | override))
    with pytest.raises(ValidationError) as err:
        booking.book(actor, **(base | {"practitioner": world.outsider}))
    assert "does not treat patients at Alpha Central" in err.value.message_dict["practitioner"][0]
    # Moving onto another organization's practitioner or room is refused the same way.
    appt = _book(world, monday_10)
    with pytest.raises(PermissionError):
        booking.change(actor, appt, appt.version, room=their_room)
    with pytest.raises(ValidationError):
        booking.change(actor, appt, appt.version, practitioner=world.outsider)
    # And another organization's actor cannot touch ours.
    with pytest.raises(PermissionError):
        booking.set_status(world.outsider_actor(), appt, "arrived")
    with pytest.raises(PermissionError):
        booking.change(world.outsider_actor(), appt, None, notes="x")
    assert Appointment.objects.count() == 1


def test_a_recall_for_another_patient_is_refused(world, monday_10):
    from glabella.patients import services as patient_services

    other = patient_services.create_patient(
        world.actor(Role.FRONT_DESK),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1980, 1, 2)},
    )
    recall = _recall(world, patient=other)
    with pytest.raises(ValidationError) as err:
        booking.book(
            world.actor(Role.FRONT_DESK),
            patient=world.patient,
            clinic=world.clinic,
            practitioner=world.users[Role.PRESCRIBER],
            starts_at=monday_10,
            kind="treatment",
            recall=recall,
        )
    assert "another patient" in err.value.message_dict["recall"][0]


def test_unknown_type_length_and_indication_are_refused_in_words(world, monday_10):
    for kwargs, field, words in (
        ({"kind": "massage"}, "kind", "Choose the type"),
        ({"minutes": "abc"}, "minutes", "whole minutes"),
        ({"minutes": 2}, "minutes", "between 5 minutes and 8 hours"),
        ({"minutes": 600}, "minutes", "between 5 minutes and 8 hours"),
    ):
        with pytest.raises(ValidationError) as err:
            _book(world, monday_10, **kwargs)
        assert words in err.value.message_dict[field][0], kwargs
    with pytest.raises(ValidationError) as err:
        booking.book(
            world.actor(Role.FRONT_DESK),
            patient=world.patient,
            clinic=world.clinic,
            practitioner=world.users[Role.PRESCRIBER],
            starts_at=monday_10,
            kind="treatment",
            indication="hair-loss",
        )
    assert "Choose an indication" in err.value.message_dict["indication"][0]
    assert not Appointment.objects.exists()


def test_lunch_break_and_an_inactive_room_are_refused(world, monday_10):
    booking.set_opening_hours(
        world.actor(Role.OWNER),
        world.clinic,
        {0: [(time(9), time(12, 30)), (time(13, 30), time(18))]},
    )
    with pytest.raises(ValidationError) as err:
        _book(world, next_monday_at(12, 15))  # 12:15-12:45 runs into the break
    assert "09:00-12:30, 13:30-18:00" in err.value.message_dict["starts_at"][0]
    _book(world, next_monday_at(13, 30))
    room = Room.objects.create(
        organization=world.org, clinic=world.clinic, name="Old room", is_active=False
    )
    with pytest.raises(ValidationError) as err:
        _book(world, monday_10, room=room)
    assert "not a room in use" in err.value.message_dict["room"][0]


# --- time zones and the change of the clocks --------------------------------------------------


def _last_sunday(year: int, month: int) -> date:
    day = date(year, month, 31)
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return day


def _next_clock_change(month: int) -> date:
    """The next last Sunday of MONTH (3: clocks go forward in London; 10: back) after
    next week, so that the Friday before it is in the future too."""
    soon = date.today() + timedelta(days=7)
    change = _last_sunday(soon.year, month)
    return change if change > soon else _last_sunday(soon.year + 1, month)


@pytest.mark.parametrize("month,before,after", [(3, 0, 1), (10, 1, 0)])
def test_clinic_time_is_kept_across_the_change_of_the_clocks(world, month, before, after):
    """10:00 in London is 10:00 UTC in winter and 09:00 UTC in summer; an appointment moved
    over the weekend the clocks change keeps its local time and its real length."""
    sunday = _next_clock_change(month)
    friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
    london = booking.clinic_zone(world.clinic)
    on_friday = _book(world, datetime.combine(friday, time(10)), minutes=40)  # naive = London
    on_monday = _book(world, datetime.combine(monday, time(10), tzinfo=london))
    assert on_friday.starts_at == datetime.combine(friday, time(10 - before), tzinfo=UTC)
    assert on_monday.starts_at == datetime.combine(monday, time(10 - after), tzinfo=UTC)
    assert on_friday.ends_at - on_friday.starts_at == timedelta(minutes=40)

    moved = booking.change(
        world.actor(Role.FRONT_DESK),
        on_friday,
        on_friday.version,
        starts_at=datetime.combine(monday, time(11)),
    )
    assert booking.local(moved.starts_at, world.clinic).time() == time(11)
    assert moved.starts_at == datetime.combine(monday, time(11 - after), tzinfo=UTC)
    assert moved.ends_at - moved.starts_at == timedelta(minutes=40)

    # Opening hours are the clinic's own clock: 08:30 UTC is 09:30 in summer, 08:30 in winter.
    summer_day = monday if after else friday
    winter_day = friday if after else monday
    _book(world, datetime.combine(summer_day, time(8, 30), tzinfo=UTC), who=Role.INJECTOR)
    with pytest.raises(ValidationError) as err:
        _book(world, datetime.combine(winter_day, time(8, 30), tzinfo=UTC), who=Role.INJECTOR)
    assert "opening hours" in err.value.message_dict["starts_at"][0]

    start, end = booking.day_bounds(world.clinic, sunday)
    assert end - start == timedelta(hours=23 if month == 3 else 25)


# --- moving and status ----------------------------------------------------------------------


def test_move_refuses_an_overlap_and_a_closed_appointment(world, monday_10):
    first = _book(world, monday_10)
    second = _book(world, monday_10 + timedelta(hours=1))
    with pytest.raises(ValidationError) as err:
        booking.change(
            world.actor(Role.FRONT_DESK),
            second,
            second.version,
            starts_at=monday_10 + timedelta(minutes=15),
        )
    assert "already has an appointment" in err.value.message_dict["practitioner"][0]
    second.refresh_from_db()
    assert second.starts_at == monday_10 + timedelta(hours=1)  # nothing half-written
    # To another practitioner at the same time is fine, and keeps the length.
    moved = booking.change(
        world.actor(Role.FRONT_DESK),
        second,
        second.version,
        starts_at=monday_10,
        practitioner=world.users[Role.INJECTOR],
    )
    assert moved.practitioner == world.users[Role.INJECTOR]
    assert moved.ends_at - moved.starts_at == timedelta(minutes=30)
    booking.set_status(world.actor(Role.FRONT_DESK), first, "cancelled", reason="ill")
    with pytest.raises(ValidationError) as err:
        booking.change(
            world.actor(Role.FRONT_DESK), first, None, starts_at=monday_10 + timedelta(hours=3)
        )
    assert "cannot be moved" in err.value.message_dict["status"][0]


def test_an_edit_of_notes_does_not_check_the_past(world, monday_10):
    """An appointment of this morning can still get a note in the afternoon."""
    appt = _book(world, monday_10)
    later = monday_10 + timedelta(hours=5)
    changed = booking.change(
        world.actor(Role.FRONT_DESK), appt, appt.version, notes=" late ", now=later
    )
    assert changed.notes == "late" and changed.version == appt.version + 1


STATUSES = [s.value for s in AppointmentStatus]


@pytest.mark.parametrize("start", STATUSES)
def test_status_moves_follow_the_table_and_one_step_back_is_the_undo(world, monday_10, start):
    appt = _book(world, monday_10)
    for target in STATUSES:
        Appointment.objects.filter(pk=appt.pk).update(status=start)
        fresh = Appointment.objects.get(pk=appt.pk)
        allowed = target in STATUS_MOVES[start]
        if allowed:
            done = booking.set_status(
                world.actor(Role.FRONT_DESK),
                fresh,
                target,
                reason="patient rang",
                expected_version=fresh.version,
            )
            assert done.status == target and done.version == fresh.version + 1
        else:
            with pytest.raises(ValidationError) as err:
                booking.set_status(world.actor(Role.FRONT_DESK), fresh, target, reason="x y z")
            assert "cannot be marked" in err.value.message_dict["status"][0]
            assert Appointment.objects.get(pk=appt.pk).status == start


def test_arrive_done_and_undo_back_to_booked_is_audited(world, monday_10):
    actor = world.actor(Role.FRONT_DESK)
    appt = _book(world, monday_10)
    for status in ("arrived", "done", "arrived", "booked"):
        appt = booking.set_status(actor, appt, status, expected_version=appt.version)
    assert appt.status == "booked" and appt.version == 5
    labels = list(
        AuditEvent.objects.filter(object_type="scheduling.appointment", object_id=str(appt.pk))
        .order_by("seq")
        .values_list("object_label", flat=True)
    )
    assert labels[1:] == [
        "booked -> arrived",
        "arrived -> done",
        "done -> arrived",
        "arrived -> booked",
    ]
    with pytest.raises(booking.Stale):
        booking.set_status(actor, appt, "arrived", expected_version=appt.version - 1)


# --- recalls --------------------------------------------------------------------------------


def _recall(world, *, patient=None, org=None, indication="glabellar-lines"):
    today = date.today()
    return Recall.objects.create(
        organization=org or world.org,
        patient=patient or world.patient,
        indication=indication,
        kind="retreatment",
        basis_on=today - timedelta(days=110),
        due_on=today + timedelta(days=10),
    )


@pytest.mark.parametrize("undo", ["cancelled", "no_show"])
def test_booking_closes_the_recall_and_cancelling_reopens_it(world, monday_10, undo):
    recall = _recall(world)
    appt = booking.book(
        world.actor(Role.FRONT_DESK),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users[Role.PRESCRIBER],
        starts_at=monday_10,
        kind="treatment",
        recall=recall,
    )
    recall.refresh_from_db()
    assert recall.state == RecallState.BOOKED
    assert appt.indication == "glabellar-lines"  # taken from the recall
    assert f"booked for {monday_10:%d/%m/%Y} 10:00-10:30" in recall.state_reason
    booking.set_status(world.actor(Role.FRONT_DESK), appt, undo, reason="patient unwell")
    recall.refresh_from_db()
    assert recall.state == RecallState.OPEN
    assert "patient unwell" in recall.state_reason or undo == "no_show"
    assert (
        AuditEvent.objects.filter(object_type="scheduling.recall", object_id=str(recall.pk)).count()
        == 2
    )


def test_a_recall_closed_otherwise_is_not_reopened_by_a_cancellation(world, monday_10):
    recall = _recall(world)
    appt = booking.book(
        world.actor(Role.FRONT_DESK),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users[Role.PRESCRIBER],
        starts_at=monday_10,
        kind="treatment",
        recall=recall,
    )
    Recall.objects.filter(pk=recall.pk).update(state=RecallState.TREATED, is_current=False)
    booking.set_status(world.actor(Role.FRONT_DESK), appt, "cancelled", reason="treated early")
    recall.refresh_from_db()
    assert recall.state == RecallState.TREATED


def test_same_booking_finds_the_appointment_a_second_tap_would_repeat(world, monday_10):
    appt = _book(world, monday_10)
    found = booking.same_booking(
        world.actor(Role.FRONT_DESK),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users[Role.PRESCRIBER],
        starts_at=monday_10.replace(tzinfo=None),
    )
    assert found == appt
    assert (
        booking.same_booking(
            world.outsider_actor(),
            patient=world.patient,
            clinic=world.clinic,
            practitioner=world.users[Role.PRESCRIBER],
            starts_at=monday_10,
        )
        is None
    )


# --- two tablets booking the same slot at once ----------------------------------------------


@pytest.fixture
def race_world(transactional_db, tmp_path):
    """The personas in a database where concurrent writers behave as in production: on SQLite
    a file database (the in-memory test database answers a second writer "table is locked" at
    once instead of waiting), with the production settings (WAL, IMMEDIATE, busy timeout)."""
    if connection.vendor != "sqlite":
        yield _make_world()
        return
    settings = connection.settings_dict
    memory_name, memory_connection = settings["NAME"], connection.connection
    connection.connection = None
    settings["NAME"] = str(tmp_path / "race.sqlite3")
    try:
        migrated_sqlite(settings["NAME"])  # a copy of the run's migrated template
        yield _make_world()
    finally:
        connection.close()
        settings["NAME"] = memory_name
        connection.connection = memory_connection


def _in_thread(fn, results, key, barrier=None):
    def run():
        try:
            if barrier is not None:
                barrier.wait(timeout=10)
            results[key] = fn()
        except ValidationError as exc:
            results[key] = exc
        except Exception as exc:  # reported, so that the test fails with the reason
            results[key] = RuntimeError(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _book_in_race(world, when, who=Role.PRESCRIBER):
    return lambda: booking.book(
        world.actor(Role.FRONT_DESK),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users[who],
        starts_at=when,
        kind="treatment",
    )


def test_four_tablets_booking_one_slot_at_once_make_exactly_one_appointment(race_world):
    world = race_world
    booking.settings_for(world.clinic)
    when = next_monday_at(11)
    barrier = threading.Barrier(4)
    results: dict[int, object] = {}
    threads = [_in_thread(_book_in_race(world, when), results, i, barrier) for i in range(4)]
    for t in threads:
        t.join(timeout=60)
    won = [r for r in results.values() if isinstance(r, Appointment)]
    lost = [r for r in results.values() if isinstance(r, ValidationError)]
    assert len(won) == 1, results
    assert len(lost) == 3, results
    for exc in lost:
        # In words either way: the winner's appointment when the loser can already read it,
        # else (PostgreSQL, after its retries, the winner not committed yet) that someone has
        # just booked the time (booking._save_refusing_overlap).
        words = " ".join(exc.messages)
        assert "already has an appointment" in words or words == (
            "Someone has just booked that time. Choose another time."
        ), words
    assert Appointment.objects.filter(starts_at=when).count() == 1


def test_the_loser_of_a_race_waits_for_the_winner_and_is_refused_in_words(race_world):
    """The first tablet has written its booking but not committed it yet when the second
    checks the slot. On PostgreSQL the second sees a free slot, and the database's exclusion
    constraint makes it wait and then refuse; on SQLite the second waits for the write lock
    and then sees the booking. Either way: one appointment, and a message in words."""
    world = race_world
    booking.settings_for(world.clinic)  # the clinic's settings exist before the race
    when = next_monday_at(14)
    written = threading.Event()
    results: dict[str, object] = {}

    def first():
        with transaction.atomic():
            appt = _book_in_race(world, when)()
            written.set()
            time_module.sleep(0.8)  # the second tablet checks the slot meanwhile
        return appt

    t1 = _in_thread(first, results, "first")
    assert written.wait(timeout=20)
    t2 = _in_thread(_book_in_race(world, when + timedelta(minutes=15)), results, "second")
    t1.join(timeout=60)
    t2.join(timeout=60)
    assert isinstance(results["first"], Appointment), results
    assert isinstance(results["second"], ValidationError), results
    assert "already has an appointment" in results["second"].message_dict["practitioner"][0]
    assert Appointment.objects.count() == 1


def test_two_series_crossing_each_other_book_one_and_refuse_the_other_in_words(race_world):
    """Two tablets each booking two appointments in one transaction (as the cycle planner does),
    crossing each other: A books P 11:00 then Q 11:15, B books Q 11:00 then P 11:15. On
    PostgreSQL each second booking waits inside the exclusion constraint for the other tablet:
    a deadlock, which the database resolves by making one give way. That tablet's save is tried
    again, waits for the other to finish and is refused as an overlap: no database error reaches
    the person. On SQLite the second tablet waits for the write lock instead. Either way one
    tablet's pair is booked and the other's is refused in words."""
    world = race_world
    booking.settings_for(world.clinic)
    eleven = next_monday_at(11)
    quarter_past = eleven + timedelta(minutes=15)
    first_done = {"a": threading.Event(), "b": threading.Event()}
    results: dict[str, object] = {}

    def pair(me, other, first_who, second_who):
        def run():
            with transaction.atomic():
                one = _book_in_race(world, eleven, who=first_who)()
                first_done[me].set()
                first_done[other].wait(timeout=3)  # on SQLite the other waits for our lock
                two = _book_in_race(world, quarter_past, who=second_who)()
            return (one, two)

        return run

    threads = [
        _in_thread(pair("a", "b", Role.PRESCRIBER, Role.INJECTOR), results, "a"),
        _in_thread(pair("b", "a", Role.INJECTOR, Role.PRESCRIBER), results, "b"),
    ]
    for t in threads:
        t.join(timeout=60)
    booked = [r for r in results.values() if isinstance(r, tuple)]
    refused = [r for r in results.values() if isinstance(r, ValidationError)]
    assert len(booked) == 1 and len(refused) == 1, results
    words = " ".join(refused[0].messages)
    if connection.vendor == "postgresql":
        # The tablet that gave way could not see the other's bookings yet (not committed).
        assert "Someone has just booked that time" in words
    else:
        assert "already has an appointment" in words
    assert Appointment.objects.filter(starts_at__in=[eleven, quarter_past]).count() == 2
