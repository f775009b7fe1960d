"""The migraine cycle planner: 84-day cycles on the same weekday, moved later (never earlier)
past closed days and taken slots, booked all together or not at all."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from glabella.charting import services as charting
from glabella.scheduling import booking, cycles
from glabella.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Recall,
    RecallState,
    Room,
)
from glabella.scheduling.tests.recall_helpers import consent_from, outside, signed

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()


def last_weekday(weekday: int) -> int:
    """Days ago of the most recent WEEKDAY (0 = Monday) before today (1 to 7)."""
    return (TODAY.weekday() - weekday) % 7 or 7


@pytest.fixture
def migraine(world):
    """Ada's PREEMPT session on the most recent Monday."""
    consent_from(world, 200)
    days = last_weekday(0)
    session = signed(world, "chronic-migraine", "botox", days_ago=days)
    return world, session


def plan(world, **kw):
    args = {
        "clinic": world.clinic,
        "practitioner": world.users["injector"],
        "at": time(10, 0),
    }
    args.update(kw)
    return cycles.propose(world.actor("front_desk"), world.patient, **args)


def test_four_cycles_twelve_weeks_apart_on_the_same_weekday(migraine):
    world, session = migraine
    result = plan(world)
    assert result.interval == 84 and result.minimum == 84
    assert result.after == session.treated_on
    assert [p.number for p in result.proposals] == [1, 2, 3, 4]
    days = [p.starts_at.date() for p in result.proposals]
    assert days == [session.treated_on + timedelta(days=84 * n) for n in range(1, 5)]
    assert all(d.weekday() == 0 for d in days)
    for p in result.proposals:
        assert (p.local_start.time(), p.local_end.time()) == (time(10, 0), time(10, 45))
        assert not p.moved and not p.moves and p.ok
        assert p.starts_at.tzinfo == booking.clinic_zone(world.clinic)
    assert result.bookable
    assert result.recall == Recall.objects.get(indication="chronic-migraine", is_current=True)


def test_a_closed_day_moves_the_cycle_later_and_the_next_ones_count_from_it(world):
    consent_from(world, 200)
    sunday = signed(world, "chronic-migraine", "botox", days_ago=last_weekday(6))
    result = plan(world, count=3)
    first, second, third = result.proposals
    assert first.planned_on == sunday.treated_on + timedelta(days=84)
    assert first.planned_on.weekday() == 6
    assert first.starts_at.date() == first.planned_on + timedelta(days=1)  # Monday, later
    assert first.moved
    assert first.moves == [f"Sun {first.planned_on:%d/%m/%Y}: the clinic is closed on Sundays"]
    # Never sooner than 84 days after the cycle before.
    assert second.starts_at.date() == first.starts_at.date() + timedelta(days=84)
    assert third.starts_at.date() == second.starts_at.date() + timedelta(days=84)
    assert not second.moved and second.starts_at.date().weekday() == 0


def test_a_taken_slot_moves_the_cycle_to_the_next_free_day(migraine):
    world, session = migraine
    second_day = session.treated_on + timedelta(days=168)
    taken = booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=datetime.combine(second_day, time(10, 15)),
        kind=AppointmentType.CONSULTATION,
    )
    result = plan(world)
    second = result.proposals[1]
    assert second.starts_at.date() == second_day + timedelta(days=1)
    assert len(second.moves) == 1
    assert second.moves[0].startswith(f"Mon {second_day:%d/%m/%Y}: ")
    assert "already has an appointment" in second.moves[0]
    assert result.proposals[2].starts_at.date() == second_day + timedelta(days=85)
    assert taken.pk


def test_a_time_outside_opening_hours_finds_no_day_and_cannot_be_booked(migraine):
    world, _ = migraine
    result = plan(world, at=time(19, 0), count=2)
    assert not result.bookable
    assert all(not p.ok for p in result.proposals)
    assert len(result.proposals[0].moves) == cycles.MAX_SHIFT_DAYS + 1
    assert "outside opening hours" in result.proposals[0].moves[0]


def test_cycles_whose_date_has_passed_move_on_by_whole_weeks(world):
    consent_from(world, 360)
    weekday = (TODAY.weekday() + 2) % 7
    if weekday == 6:  # closed on Sundays: keep the test about passed dates only
        weekday = (TODAY.weekday() + 3) % 7
    session = signed(world, "chronic-migraine", "botox", days_ago=last_weekday(weekday) + 28 * 7)
    result = plan(world, count=2)
    first = result.proposals[0]
    assert first.planned_on == session.treated_on + timedelta(days=84)
    weeks = -(-(TODAY - first.planned_on).days // 7)
    expected = first.planned_on + timedelta(weeks=weeks)
    assert TODAY < expected < TODAY + timedelta(days=7) and expected.weekday() == weekday
    assert first.starts_at.date() == expected
    assert first.moves == [
        f"{first.planned_on:%a %d/%m/%Y} has passed: moved on {weeks} weeks to the same weekday"
    ]
    assert result.proposals[1].starts_at.date() == expected + timedelta(days=84)


def test_the_first_cycle_may_be_chosen_later_but_never_earlier_than_the_minimum(migraine):
    world, session = migraine
    with pytest.raises(ValidationError) as err:
        plan(world, first_on=session.treated_on + timedelta(days=83))
    assert err.value.message_dict["first_on"] == [
        f"The first cycle cannot be before {session.treated_on + timedelta(days=84):%d/%m/%Y}: "
        f"84 days after the last treatment on {session.treated_on:%d/%m/%Y}."
    ]
    later = session.treated_on + timedelta(days=91)
    result = plan(world, first_on=later, count=2)
    assert result.proposals[0].starts_at.date() == later
    assert result.proposals[1].starts_at.date() == later + timedelta(days=84)


def test_an_outside_treatment_is_a_basis_too_and_no_treatment_is_a_clear_error(world):
    with pytest.raises(ValidationError) as err:
        plan(world)
    assert err.value.message_dict["patient"] == [
        "Ada Lovelace has no signed chronic migraine treatment yet: the cycles are planned "
        "from the last one."
    ]
    outside(world, "chronic-migraine", "botox", last_weekday(2), units="155")
    result = plan(world, count=1)
    assert result.last.session_id is None
    assert result.proposals[0].starts_at.date().weekday() == 2


def test_book_series_books_every_cycle_with_one_series_and_books_the_recall(migraine):
    world, _ = migraine
    result = plan(world)
    recall = result.recall
    booked = cycles.book_series(
        world.actor("front_desk"),
        world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts=[p.starts_at for p in result.proposals],
    )
    assert len(booked) == 4
    series = {a.series for a in booked}
    assert len(series) == 1 and None not in series
    rows = list(Appointment.objects.filter(series=booked[0].series).order_by("starts_at"))
    assert [a.starts_at for a in rows] == [p.starts_at for p in result.proposals]
    assert all(a.kind == AppointmentType.MIGRAINE_CYCLE for a in rows)
    assert all(a.indication == "chronic-migraine" for a in rows)
    assert all(a.status == AppointmentStatus.BOOKED for a in rows)
    assert [a.notes for a in rows] == [f"Migraine cycle {n} of 4" for n in range(1, 5)]
    assert rows[0].recall_id == recall.pk and all(a.recall_id is None for a in rows[1:])
    recall.refresh_from_db()
    assert recall.state == RecallState.BOOKED
    # Planning again continues after the last booked cycle.
    again = plan(world, count=1)
    assert again.after == rows[-1].starts_at.astimezone(booking.clinic_zone(world.clinic)).date()
    assert again.proposals[0].starts_at.date() == again.after + timedelta(days=84)
    assert again.recall is None  # the recall is booked already


def test_one_taken_slot_books_nothing_and_says_which(migraine):
    world, _ = migraine
    result = plan(world)
    third = result.proposals[2].starts_at
    # Someone else books the practitioner at the third cycle's time after the plan was shown.
    booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=third + timedelta(minutes=30),
        kind=AppointmentType.CONSULTATION,
    )
    before = Appointment.objects.count()
    with pytest.raises(cycles.SeriesRefused) as err:
        cycles.book_series(
            world.actor("front_desk"),
            world.patient,
            clinic=world.clinic,
            practitioner=world.users["injector"],
            starts=[p.starts_at for p in result.proposals],
        )
    assert err.value.number == 3
    assert str(err.value).startswith(
        f"Nothing was booked: cycle 3 on {third:%d/%m/%Y} at 10:00 cannot be booked. "
    )
    assert "already has an appointment" in str(err.value)
    assert Appointment.objects.count() == before
    assert not Appointment.objects.filter(kind=AppointmentType.MIGRAINE_CYCLE).exists()
    assert Recall.objects.get(indication="chronic-migraine").state == RecallState.OPEN


def test_book_series_refuses_cycles_closer_than_the_minimum(migraine):
    world, session = migraine
    monday = session.treated_on + timedelta(days=84)
    with pytest.raises(ValidationError) as err:
        cycles.book_series(
            world.actor("front_desk"),
            world.patient,
            clinic=world.clinic,
            practitioner=world.users["injector"],
            starts=[
                datetime.combine(monday, time(10)),
                datetime.combine(monday + timedelta(days=77), time(10)),
            ],
        )
    assert err.value.message_dict["starts"] == [
        f"Cycle 2 on {monday + timedelta(days=77):%d/%m/%Y} is less than 84 days after "
        f"cycle 1 ({monday:%d/%m/%Y}): nothing was booked."
    ]
    with pytest.raises(ValidationError):
        cycles.book_series(
            world.actor("front_desk"),
            world.patient,
            clinic=world.clinic,
            practitioner=world.users["injector"],
            starts=[datetime.combine(monday - timedelta(days=7), time(10))],
        )
    assert not Appointment.objects.exists()


def test_roles_rooms_and_scope(migraine):
    world, _ = migraine
    with pytest.raises(PermissionDenied):
        cycles.book_series(
            world.actor("auditor"),
            world.patient,
            clinic=world.clinic,
            practitioner=world.users["injector"],
            starts=[p.starts_at for p in plan(world).proposals],
        )
    with pytest.raises(PermissionError):
        cycles.propose(
            world.outsider_actor(),
            world.patient,
            clinic=world.clinic,
            practitioner=world.users["injector"],
            at=time(10),
        )
    with pytest.raises(ValidationError) as err:
        plan(world, practitioner=world.users["front_desk"])
    assert "does not treat patients" in err.value.message_dict["practitioner"][0]
    room = Room.objects.create(organization=world.org, clinic=world.clinic, name="Room 2")
    result = plan(world, room=room, count=2)
    booked = cycles.book_series(
        world.actor("injector"),
        world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        room=room,
        starts=[p.starts_at for p in result.proposals],
    )
    assert {a.room_id for a in booked} == {room.pk}
    # The planner is read-only: proposing wrote nothing.
    assert Appointment.objects.count() == 2


def test_the_voided_session_is_no_basis(migraine):
    world, session = migraine
    charting.void(world.actor("injector"), session, "charted on the wrong patient")
    with pytest.raises(ValidationError):
        plan(world)
