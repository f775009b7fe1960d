"""The schedule API: booking, moving, cancelling appointments and the recall list."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from glabella.accounts.models import Clinic
from glabella.audit.models import AuditEvent
from glabella.interop.tests.helpers import api_client
from glabella.patients import services as patient_services
from glabella.scheduling import booking
from glabella.scheduling.models import Appointment, AppointmentStatus, Recall, RecallState

API = "/api/v1"
LONDON = ZoneInfo("Europe/London")


def next_monday_at(hour: int, minute: int = 0, weeks: int = 1) -> datetime:
    today = datetime.now(LONDON).date()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7) + timedelta(weeks=weeks - 1)
    return datetime(monday.year, monday.month, monday.day, hour, minute, tzinfo=LONDON)


def send(client, url, body, method="post"):
    return getattr(client, method)(
        f"{API}{url}", data=json.dumps(body), content_type="application/json"
    )


def booking_body(world, start: datetime, **overrides):
    body = {
        "patient_id": world.patient.pk,
        "practitioner_id": world.users["injector"].pk,
        "starts_at": start.isoformat(),
        "kind": "treatment",
    }
    body.update(overrides)
    return body


def recall_for(world, patient=None, *, due_in=10, indication="glabellar-lines", org=None):
    today = date.today()
    return Recall.objects.create(
        organization=org or world.org,
        patient=patient or world.patient,
        indication=indication,
        kind="retreatment",
        basis_on=today - timedelta(days=110),
        due_on=today + timedelta(days=due_in),
    )


# --- booking ------------------------------------------------------------------------------------


def test_front_desk_books_and_reads_an_appointment_and_it_is_audited(world):
    client = api_client(world, "front_desk")
    monday = next_monday_at(10)
    response = send(client, "/appointments", booking_body(world, monday, minutes=45))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["patient"] == {"id": world.patient.pk, "name": world.patient.full_name}
    assert body["practitioner"]["email"] == "injector@alpha.test"
    assert datetime.fromisoformat(body["starts_at"]) == monday
    assert body["minutes"] == 45
    assert body["status"] == "booked" and body["version"] == 1
    assert body["clinic_id"] == world.clinic.pk
    assert AuditEvent.objects.filter(
        organization=world.org, object_type="scheduling.appointment", object_id=str(body["id"])
    ).exists()
    assert client.get(f"{API}/appointments/{body['id']}").json() == body


def test_a_time_without_a_zone_is_the_clinics_wall_clock(world):
    monday = next_monday_at(9, 30)
    naive = monday.replace(tzinfo=None).isoformat()  # 09:30 in London, whatever the season
    body = booking_body(world, monday)
    body["starts_at"] = naive
    response = send(api_client(world, "front_desk"), "/appointments", body)
    assert response.status_code == 201, response.content
    assert datetime.fromisoformat(response.json()["starts_at"]) == monday


def test_sending_the_same_booking_twice_books_it_once(world):
    client = api_client(world, "front_desk")
    body = booking_body(world, next_monday_at(11))
    first = send(client, "/appointments", body)
    again = send(client, "/appointments", body)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Appointment.objects.filter(organization=world.org).count() == 1


@pytest.mark.parametrize(
    ("when", "field", "words"),
    [
        (lambda: next_monday_at(7), "starts_at", "outside Alpha Central's opening hours"),
        (
            lambda: datetime.now(UTC) - timedelta(days=2),
            "starts_at",
            "already passed",
        ),
    ],
)
def test_a_booking_the_calendar_would_refuse_is_refused_in_words(world, when, field, words):
    response = send(api_client(world, "front_desk"), "/appointments", booking_body(world, when()))
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field
    assert words in response.json()["message"]
    assert not Appointment.objects.filter(organization=world.org).exists()


def test_a_double_booking_is_refused_naming_the_practitioner(world):
    client = api_client(world, "front_desk")
    monday = next_monday_at(14)
    assert send(client, "/appointments", booking_body(world, monday)).status_code == 201
    other = patient_services.create_patient(
        world.actor("front_desk"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1906, 12, 9)},
    )
    clash = send(
        client,
        "/appointments",
        booking_body(world, monday + timedelta(minutes=15), patient_id=other.pk),
    )
    assert clash.status_code == 422
    assert clash.json()["field"] == "practitioner"
    assert "already has an appointment" in clash.json()["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"starts_at": "next monday"}, "starts_at"),
        ({"starts_at": "2031-01-06"}, "starts_at"),  # a day without a time
        ({"starts_at": 1924000000}, "starts_at"),
        ({"kind": "botox party"}, "kind"),
        ({"minutes": "30"}, "minutes"),
        ({"minutes": 2}, "minutes"),
        ({"minutes": 9000}, "minutes"),
        ({"patient_id": "1"}, "patient_id"),
        ({"indication": "wrinkles"}, "indication"),
        ({"price": 100}, "price"),
    ],
)
def test_bad_booking_input_is_refused_naming_the_field(world, overrides, field):
    body = booking_body(world, next_monday_at(10), **overrides)
    response = send(api_client(world, "front_desk"), "/appointments", body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field, response.json()
    assert not Appointment.objects.filter(organization=world.org).exists()


def test_only_staff_book_and_an_auditor_only_reads(world):
    body = booking_body(world, next_monday_at(10))
    assert send(api_client(world, "auditor"), "/appointments", body).status_code == 403
    assert api_client(world, "auditor").get(f"{API}/appointments").status_code == 200
    assert not Appointment.objects.exists()


# --- moving and status --------------------------------------------------------------------------


@pytest.fixture
def booked(world):
    return booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=next_monday_at(10),
        kind="treatment",
    )


def test_move_an_appointment_and_a_stale_version_is_a_409(world, booked):
    client = api_client(world, "front_desk")
    later = next_monday_at(15)
    moved = send(
        client,
        f"/appointments/{booked.pk}",
        {"version": 1, "starts_at": later.isoformat(), "notes": "asked for the afternoon"},
        method="patch",
    )
    assert moved.status_code == 200, moved.content
    assert datetime.fromisoformat(moved.json()["starts_at"]) == later
    assert moved.json()["minutes"] == 30  # the length is kept
    assert moved.json()["version"] == 2
    assert moved.json()["notes"] == "asked for the afternoon"

    stale = send(
        client,
        f"/appointments/{booked.pk}",
        {"version": 1, "starts_at": next_monday_at(16).isoformat()},
        method="patch",
    )
    assert stale.status_code == 409
    assert stale.json()["field"] == "version"
    assert stale.json()["current_version"] == 2
    assert Appointment.objects.get(pk=booked.pk).starts_at == later


def test_moving_outside_opening_hours_is_refused(world, booked):
    response = send(
        api_client(world, "front_desk"),
        f"/appointments/{booked.pk}",
        {"starts_at": next_monday_at(20).isoformat()},
        method="patch",
    )
    assert response.status_code == 422
    assert response.json()["field"] == "starts_at"
    assert Appointment.objects.get(pk=booked.pk).version == 1


def test_cancelling_needs_a_reason_and_reopens_the_recall(world):
    recall = recall_for(world)
    client = api_client(world, "front_desk")
    body = booking_body(world, next_monday_at(10), recall_id=recall.pk)
    appointment = send(client, "/appointments", body).json()
    assert appointment["recall_id"] == recall.pk
    recall.refresh_from_db()
    assert recall.state == RecallState.BOOKED

    url = f"/appointments/{appointment['id']}/status"
    no_reason = send(client, url, {"status": "cancelled"})
    assert no_reason.status_code == 422
    assert no_reason.json()["field"] == "reason"

    cancelled = send(client, url, {"status": "cancelled", "reason": "patient is unwell"})
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    recall.refresh_from_db()
    assert recall.state == RecallState.OPEN

    final = send(client, url, {"status": "booked"})
    assert final.status_code == 422
    assert "cannot be marked booked" in final.json()["message"]
    assert client.get(f"{API}/appointments").json()["count"] == 0
    assert client.get(f"{API}/appointments?status=cancelled").json()["count"] == 1


def test_status_moves_follow_the_booking_rules(world, booked):
    client = api_client(world, "front_desk")
    url = f"/appointments/{booked.pk}/status"
    assert send(client, url, {"status": "done"}).status_code == 422  # booked -> done skips arrival
    assert send(client, url, {"status": "arrived"}).json()["status"] == "arrived"
    assert send(client, url, {"status": "done"}).json()["status"] == "done"
    assert send(client, url, {"status": "finished"}).status_code == 422
    assert send(client, url, {"status": "arrived", "version": 1}).status_code == 409


# --- lists --------------------------------------------------------------------------------------


def test_appointments_list_by_days_and_patient_with_paging(world):
    actor = world.actor("front_desk")
    week1 = next_monday_at(10)
    week3 = next_monday_at(10, weeks=3)
    for start in (week1, week1 + timedelta(hours=1), week3):
        booking.book(
            actor,
            patient=world.patient,
            clinic=world.clinic,
            practitioner=world.users["injector"],
            starts_at=start,
            kind="review",
        )
    client = api_client(world, "auditor")
    everything = client.get(f"{API}/appointments").json()
    assert everything["count"] == 3
    assert [a["starts_at"] for a in everything["items"]] == sorted(
        a["starts_at"] for a in everything["items"]
    )
    day = week1.date().isoformat()
    assert client.get(f"{API}/appointments?from={day}&to={day}").json()["count"] == 2
    paged = client.get(f"{API}/appointments?limit=1&offset=1").json()
    assert (paged["count"], len(paged["items"])) == (3, 1)
    assert paged["items"][0]["starts_at"] == everything["items"][1]["starts_at"]
    mine = client.get(f"{API}/appointments?patient={world.patient.pk}").json()
    assert mine["count"] == 3
    assert client.get(f"{API}/appointments?from={day}&to=2000-01-01").status_code == 422
    assert client.get(f"{API}/appointments?from=06/01/2031").status_code == 422
    assert client.get(f"{API}/appointments?limit=1000").status_code == 422


def test_recalls_due_before_and_by_state(world):
    soon = recall_for(world, due_in=5)
    other = patient_services.create_patient(
        world.actor("front_desk"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1906, 12, 9)},
    )
    later = recall_for(world, other, due_in=60)
    declined = recall_for(world, other, due_in=3, indication="forehead-lines")
    Recall.objects.filter(pk=declined.pk).update(state=RecallState.DECLINED)
    client = api_client(world, "front_desk")
    listed = client.get(f"{API}/recalls").json()
    assert [r["id"] for r in listed["items"]] == [soon.pk, later.pk]
    cutoff = (date.today() + timedelta(days=30)).isoformat()
    due = client.get(f"{API}/recalls?due_before={cutoff}").json()
    assert [r["id"] for r in due["items"]] == [soon.pk]
    assert due["items"][0]["patient"]["name"] == world.patient.full_name
    assert due["items"][0]["state"] == "open"
    assert [r["id"] for r in client.get(f"{API}/recalls?state=declined").json()["items"]] == [
        declined.pk
    ]
    assert client.get(f"{API}/recalls?state=all").json()["count"] == 3
    assert client.get(f"{API}/recalls?state=forgotten").status_code == 422
    assert client.get(f"{API}/recalls?due_before=soon").status_code == 422
    assert client.get(f"{API}/recalls?indication=wrinkles").status_code == 422


# --- other organizations ------------------------------------------------------------------------


def test_another_organizations_schedule_is_not_found(world, booked):
    outsider = api_client(world, "outsider")
    assert outsider.get(f"{API}/appointments/{booked.pk}").status_code == 404
    assert (
        send(
            outsider,
            f"/appointments/{booked.pk}",
            {"starts_at": next_monday_at(11).isoformat()},
            method="patch",
        ).status_code
        == 404
    )
    assert (
        send(
            outsider, f"/appointments/{booked.pk}/status", {"status": "cancelled", "reason": "mine"}
        ).status_code
        == 404
    )
    assert outsider.get(f"{API}/appointments").json()["count"] == 0
    assert outsider.get(f"{API}/appointments?patient={world.patient.pk}").status_code == 404
    recall_for(world)
    assert outsider.get(f"{API}/recalls?state=all").json()["count"] == 0
    assert Appointment.objects.get(pk=booked.pk).status == AppointmentStatus.BOOKED


def test_booking_with_another_organizations_patient_practitioner_or_recall_is_not_found(world):
    client = api_client(world, "front_desk")
    monday = next_monday_at(10)
    foreign_recall = recall_for(world, world.outsider_patient, org=world.outsider_org)
    for overrides in (
        {"patient_id": world.outsider_patient.pk},
        {"practitioner_id": world.outsider.pk},
        {"recall_id": foreign_recall.pk},
        {"clinic_id": Clinic.objects.get(organization=world.outsider_org).pk},
    ):
        response = send(client, "/appointments", booking_body(world, monday, **overrides))
        assert response.status_code == 404, overrides
    assert not Appointment.objects.exists()
