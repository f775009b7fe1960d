"""The owner's scheduling settings: opening hours (split days, closed days), rooms (add,
rename, out of use), recall days, quiet hours, reminder hours and confirmations. Validated in
words, audited, and only for the owner."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from glabella.accounts.models import Clinic
from glabella.audit.models import AuditEvent
from glabella.scheduling import booking
from glabella.scheduling.models import OpeningHours, Room, SchedulingSettings
from glabella.scheduling.tests.conftest import next_monday_at

URL = reverse("scheduling:clinic_settings")

DEFAULT_WEEK = {
    "day_0": "09:00-18:00",
    "day_1": "09:00-18:00",
    "day_2": "09:00-18:00",
    "day_3": "09:00-18:00",
    "day_4": "09:00-18:00",
    "day_5": "09:00-13:00",
    "day_6": "",
}


def _settings(**extra):
    data = {
        "what": "settings",
        "cosmetic_recall_days": "110",
        "quiet_start": "21:00",
        "quiet_end": "08:30",
        "reminder_hours": "48, 2",
        "recall_invite_days": "10",
        "send_confirmations": "on",
    }
    data.update(extra)
    return data


def _audits(label_part):
    return AuditEvent.objects.filter(object_label__contains=label_part).count()


# --- reading the hours as people write them -------------------------------------------------


@pytest.mark.parametrize(
    "text,spans",
    [
        ("", []),
        ("closed", []),
        ("09:00-18:00", [(time(9), time(18))]),
        ("9-13, 14-18", [(time(9), time(13)), (time(14), time(18))]),
        ("9.30\u201317.30", [(time(9, 30), time(17, 30))]),
        ("14:00-18:00; 08:00 to 12:00", [(time(8), time(12)), (time(14), time(18))]),
        ("10:00-24:00", [(time(10), time(23, 59))]),
    ],
)
def test_opening_hours_are_read_leniently(text, spans):
    assert booking.parse_intervals(text, "Monday") == spans


@pytest.mark.parametrize(
    "text,words",
    [
        ("25:00-26:00", "is not a time span"),
        ("nine to five", "is not a time span"),
        ("18:00-09:00", "closes before it opens"),
        ("09:00-13:00, 12:00-18:00", "overlap"),
    ],
)
def test_opening_hours_that_make_no_sense_are_refused_in_words(text, words):
    with pytest.raises(ValidationError) as err:
        booking.parse_intervals(text, "Tuesday")
    assert words in err.value.messages[0] and err.value.messages[0].startswith("Tuesday")


@pytest.mark.parametrize(
    "text,hours",
    [("48, 2", [48, 2]), ("2 48", [48, 2]), ("", []), ("24h, 24", [24]), ("336", [336])],
)
def test_reminder_hours_are_read(text, hours):
    assert booking.parse_reminder_hours(text) == hours


@pytest.mark.parametrize(
    "text,words",
    [("48, two", "is not a number of hours"), ("0", "between 1 hour"), ("400", "14 days")],
)
def test_reminder_hours_that_make_no_sense_are_refused(text, words):
    with pytest.raises(ValidationError) as err:
        booking.parse_reminder_hours(text)
    assert words in err.value.message_dict["reminder_hours"][0]


# --- the page ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["prescriber", "injector", "front_desk", "auditor"])
def test_only_the_owner_reaches_the_settings(world, role):
    client = world.client(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, _settings()).status_code == 403
    assert client.post(URL, {"what": "room_add", "name": "Room 9"}).status_code == 403
    assert not Room.objects.exists()
    with pytest.raises(PermissionDenied):
        booking.add_room(world.actor(role), world.clinic, "Room 9")


def test_the_page_shows_the_current_settings(world):
    page = world.client("owner").get(URL).content.decode()
    for day, text in DEFAULT_WEEK.items():
        assert f'name="{day}" value="{text}"' in page or (not text and f'name="{day}"' in page)
    assert 'value="120"' in page and 'value="48, 2"' in page and 'value="20:00"' in page
    assert "No rooms yet" in page


def test_opening_hours_are_saved_audited_and_used_for_booking(world):
    client = world.client("owner")
    week = DEFAULT_WEEK | {"day_0": "09:00-12:30, 13:30-19:00", "day_5": "", "day_6": "10-14"}
    response = client.post(URL, {"what": "hours", **week})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Opening hours saved (Monday, Saturday, Sunday)." in page
    rows = list(
        OpeningHours.objects.filter(clinic=world.clinic, weekday=0).values_list("opens", "closes")
    )
    assert rows == [(time(9), time(12, 30)), (time(13, 30), time(19))]
    assert not OpeningHours.objects.filter(clinic=world.clinic, weekday=5).exists()
    event = AuditEvent.objects.filter(object_label__startswith="opening hours of").get()
    assert event.detail["Monday"] == ["09:00-18:00", "09:00-12:30, 13:30-19:00"]
    assert event.detail["Saturday"] == ["09:00-13:00", "closed"]
    with pytest.raises(ValidationError):  # the lunch break is closed now
        booking.book(
            world.actor("front_desk"),
            patient=world.patient,
            clinic=world.clinic,
            practitioner=world.users["prescriber"],
            starts_at=next_monday_at(12, 45),
            kind="review",
        )
    # Saving the same hours again changes nothing and writes no audit event.
    client.post(URL, {"what": "hours", **week})
    assert _audits("opening hours of") == 1


def test_bad_opening_hours_are_shown_beside_the_day_and_nothing_is_saved(world):
    booking.settings_for(world.clinic)
    before = list(OpeningHours.objects.values_list("weekday", "opens", "closes"))
    week = DEFAULT_WEEK | {"day_1": "18:00-09:00", "day_3": "9 till late", "day_4": "09:00-17:00"}
    response = world.client("owner").post(URL, {"what": "hours", **week})
    text = response.content.decode()
    assert response.status_code == 200
    assert "Tuesday: 18:00-09:00 closes before it opens." in text
    assert "Thursday: “9 till late” is not a time span." in text
    assert "Nothing was saved" in text
    assert list(OpeningHours.objects.values_list("weekday", "opens", "closes")) == before


def test_recall_quiet_hours_and_reminders_are_saved_and_audited(world):
    client = world.client("owner")
    response = client.post(URL, _settings(send_confirmations=""))
    assert response.status_code == 302
    found = SchedulingSettings.objects.get(clinic=world.clinic)
    assert found.cosmetic_recall_days == 110
    assert (found.quiet_start, found.quiet_end) == (time(21), time(8, 30))
    assert found.reminder_hours == [48, 2]
    assert found.recall_invite_days == 10
    assert found.send_confirmations is False
    event = AuditEvent.objects.get(object_label__startswith="scheduling settings of")
    assert event.detail["cosmetic_recall_days"] == ["120", "110"]
    assert "reminder_hours" not in event.detail  # 48, 2 was already the default


@pytest.mark.parametrize(
    "change,field,words",
    [
        ({"cosmetic_recall_days": "80"}, "cosmetic_recall_days", "90 to 123 days"),
        ({"cosmetic_recall_days": "four months"}, "cosmetic_recall_days", "90 to 123 days"),
        ({"recall_invite_days": "90"}, "recall_invite_days", "0 to 60 days"),
        ({"reminder_hours": "48, tomorrow"}, "reminder_hours", "is not a number of hours"),
        ({"quiet_start": "8pm"}, "quiet_start", "Give the time quiet hours start"),
        ({"quiet_end": "21:00"}, "quiet_end", "must end at another time"),
    ],
)
def test_bad_settings_are_refused_beside_the_field(world, change, field, words):
    response = world.client("owner").post(URL, _settings(**change))
    text = response.content.decode()
    assert response.status_code == 200
    assert words in text.replace("&#x27;", "'"), field
    assert "Nothing was saved" in text
    found = booking.settings_for(world.clinic)
    assert found.cosmetic_recall_days == 120 and found.quiet_start == time(20)
    assert _audits("scheduling settings of") == 0


def test_rooms_are_added_renamed_and_taken_out_of_use(world):
    client = world.client("owner")
    assert client.post(URL, {"what": "room_add", "name": "  Room   1 "}).status_code == 302
    room = Room.objects.get(clinic=world.clinic)
    assert room.name == "Room 1" and room.organization == world.org
    # A name already used (whatever the case) and an empty name are refused.
    text = client.post(URL, {"what": "room_add", "name": "room 1"}).content.decode()
    assert "Alpha Central already has a room called room 1." in text
    text = client.post(URL, {"what": "room_add", "name": ""}).content.decode()
    assert "Give the room a name" in text
    assert Room.objects.count() == 1

    data = {"what": "room_rename", "room": room.pk, f"room-{room.pk}-name": "Treatment room"}
    response = client.post(URL, data)
    assert response.status_code == 302
    room.refresh_from_db()
    assert room.name == "Treatment room"

    appt = booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["prescriber"],
        starts_at=next_monday_at(10),
        kind="treatment",
        room=room,
    )
    response = client.post(URL, {"what": "room_off", "room": room.pk})
    page = client.get(response["Location"]).content.decode()
    assert "Treatment room is out of use" in page and "1 upcoming appointment keep it" in page
    room.refresh_from_db()
    assert room.is_active is False
    appt.refresh_from_db()
    assert appt.room == room
    book_page = world.client("front_desk").get(reverse("scheduling:book")).content.decode()
    assert "Treatment room" not in book_page  # not offered for new bookings
    client.post(URL, {"what": "room_on", "room": room.pk})
    room.refresh_from_db()
    assert room.is_active is True
    labels = list(
        AuditEvent.objects.filter(object_type="scheduling.room")
        .order_by("seq")
        .values_list("object_label", flat=True)
    )
    assert labels == [
        "room Room 1 at Alpha Central",
        "room Room 1 renamed Treatment room",
        "room Treatment room out of use",
        "room Treatment room back in use",
    ]


def test_another_organizations_clinic_and_room_are_404(world):
    their_clinic = Clinic.objects.get(organization=world.outsider_org)
    their_room = Room.objects.create(
        organization=world.outsider_org, clinic=their_clinic, name="Beta room"
    )
    client = world.client("owner")
    assert client.get(URL, {"clinic": their_clinic.pk}).status_code == 404
    assert client.post(URL, {"clinic": their_clinic.pk, **_settings()}).status_code == 404
    for what in ("room_off", "room_on", "room_rename"):
        response = client.post(
            URL, {"what": what, "room": their_room.pk, f"room-{their_room.pk}-name": "Mine"}
        )
        assert response.status_code == 404, what
    their_room.refresh_from_db()
    assert their_room.name == "Beta room" and their_room.is_active
    assert not SchedulingSettings.objects.filter(clinic=their_clinic, cosmetic_recall_days=110)
    with pytest.raises(PermissionError):
        booking.update_settings(world.actor("owner"), their_clinic, {})
    with pytest.raises(PermissionError):
        booking.rename_room(world.actor("owner"), their_room, "Mine")


def test_a_second_clinic_has_its_own_settings(world):
    from glabella.accounts.services import add_clinic

    north = add_clinic(world.actor("owner"), name="Alpha North", timezone="Europe/London")
    client = world.client("owner")
    page = client.get(URL, {"clinic": north.pk}).content.decode()
    assert "Scheduling settings of Alpha North" in page
    client.post(URL, {"clinic": north.pk, "what": "hours", **DEFAULT_WEEK, "day_0": ""})
    assert not OpeningHours.objects.filter(clinic=north, weekday=0).exists()
    assert booking.week_hours(world.clinic)[0] == [(time(9), time(18))]
    assert booking.hours_text(north, next_monday_at(10).date() + timedelta(days=7)).startswith(
        "The clinic is closed on Mondays"
    )
