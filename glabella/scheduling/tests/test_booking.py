"""Booking rules: the service's plain-words refusals and the database's own refusal of overlaps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from glabella.accounts.roles import Role
from glabella.audit.models import AuditEvent
from glabella.scheduling import booking
from glabella.scheduling.models import Appointment, AppointmentStatus, Room
from glabella.scheduling.tests.conftest import next_monday_at


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
