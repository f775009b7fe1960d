"""The calendar pages: who may reach what, another organization's appointment, patient, clinic
or person is a 404, bad input is refused beside the field with nothing written, a second
submit books nothing twice, a stale page is told so, and the drag's endpoint answers in JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import URLPattern, reverse

from glabella.accounts.models import Clinic
from glabella.accounts.roles import can
from glabella.audit.models import AuditEvent
from glabella.scheduling import booking, calendar_urls
from glabella.scheduling.models import Appointment, Recall, RecallState, Room
from glabella.scheduling.tests.conftest import next_monday_at

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]

# Every URL of calendar_urls.py: the permission its view requires and the methods it answers.
URLS: dict[str, tuple[str, frozenset[str]]] = {
    "day": ("appointment.view", frozenset({"get"})),
    "week": ("appointment.view", frozenset({"get"})),
    "book": ("appointment.edit", frozenset({"get", "post"})),
    "appointment": ("appointment.view", frozenset({"get"})),
    "appointment_edit": ("appointment.edit", frozenset({"post"})),
    "appointment_status": ("appointment.edit", frozenset({"post"})),
    "move": ("appointment.edit", frozenset({"post"})),
    "clinic_settings": ("organization.manage", frozenset({"get", "post"})),
}


def url(name, *args):
    return reverse(f"scheduling:{name}", args=args)


def _book(world, when, who="prescriber", patient=None, **kw):
    return booking.book(
        world.actor("front_desk"),
        patient=patient or world.patient,
        clinic=world.clinic,
        practitioner=world.users[who],
        starts_at=when,
        kind=kw.pop("kind", "treatment"),
        **kw,
    )


@pytest.fixture
def cal(world, monday_10):
    """Alpha: Ada booked Monday 10:00 with the prescriber. Beta (the outsider): its own
    clinic, a practitioner and an appointment."""
    world.appt = _book(world, monday_10)
    world.monday = monday_10
    world.their_clinic = Clinic.objects.get(organization=world.outsider_org)
    theirs = booking.settings_for(world.their_clinic)
    assert theirs.pk
    their_when = datetime.combine(
        monday_10.date(), time(10), tzinfo=booking.clinic_zone(world.their_clinic)
    )
    from glabella.accounts.services import add_member
    from glabella.conftest import PASSWORD

    world.their_injector = add_member(
        world.outsider_actor(),
        email="injector@beta.test",
        clinic=world.their_clinic,
        role="injector",
        password=PASSWORD,
    ).user
    world.their_appt = booking.book(
        world.outsider_actor(),
        patient=world.outsider_patient,
        clinic=world.their_clinic,
        practitioner=world.their_injector,
        starts_at=their_when,
        kind="treatment",
    )
    world.their_room = Room.objects.create(
        organization=world.outsider_org, clinic=world.their_clinic, name="Beta room"
    )
    return world


def _form(world, when, **extra):
    data = {
        "patient": world.patient.pk,
        "clinic": world.clinic.pk,
        "practitioner": world.users["prescriber"].pk,
        "kind": "treatment",
        "date": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H:%M"),
        "minutes": "30",
        "room": "",
        "indication": "",
        "notes": "",
    }
    data.update(extra)
    return data


# --- the walk ------------------------------------------------------------------------------


def test_the_walk_covers_every_calendar_url():
    names = [p.name for p in calendar_urls.urlpatterns]
    assert all(isinstance(p, URLPattern) for p in calendar_urls.urlpatterns)
    assert sorted(names) == sorted(URLS), "add the new URL to URLS in this test"
    for p in calendar_urls.urlpatterns:
        assert p.callback.required_permission == URLS[p.name][0], p.name


def _address(name, world):
    if name in ("appointment", "appointment_edit", "appointment_status", "move"):
        return url(name, world.appt.pk)
    return url(name)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_by_its_permission(cal, role):
    client = cal.client(role)
    for name, (permission, methods) in URLS.items():
        response = client.get(_address(name, cal))
        if "get" not in methods:
            assert response.status_code == 405, (name, role)
            continue
        expected = 200 if can(role, permission) else 403
        assert response.status_code == expected, (name, role, response.status_code)


def test_signed_out_goes_to_the_login(cal):
    from django.test import Client

    for name in URLS:
        response = Client().get(_address(name, cal))
        assert response.status_code in (302, 405), name
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]


def test_the_auditor_sees_the_calendar_but_changes_nothing(cal):
    client = cal.client("auditor")
    before = list(Appointment.objects.values_list("pk", "status", "starts_at", "version"))
    day = cal.monday.date().isoformat()
    page = client.get(url("day"), {"date": day}).content.decode()
    assert "Ada Lovelace" in page
    assert "data-move=" not in page  # no dragging
    assert 'class="slot' in page and "/scheduling/book/?" not in page  # no booking links
    page = client.get(url("appointment", cal.appt.pk)).content.decode()
    assert "Arrived" not in page and "Save changes" not in page
    for name, data in (
        ("book", _form(cal, cal.monday + timedelta(hours=2))),
        ("appointment_edit", {"version": 1}),
        ("appointment_status", {"status": "arrived", "version": 1}),
        ("move", {"version": 1, "starts_at": f"{day}T12:00"}),
    ):
        assert client.post(_address(name, cal), data).status_code == 403, name
    after = list(Appointment.objects.values_list("pk", "status", "starts_at", "version"))
    assert after == before


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_another_organizations_appointment_patient_clinic_and_people_are_404(cal, role):
    client = cal.client(role)
    if role == "outsider":
        # The outsider reaching into Alpha: Alpha's objects are the foreign ones.
        appt, patient, clinic, person, room = (
            cal.appt,
            cal.patient,
            cal.clinic,
            cal.users["prescriber"],
            None,
        )
        acting = "owner"
    else:
        appt, patient, clinic, person, room = (
            cal.their_appt,
            cal.outsider_patient,
            cal.their_clinic,
            cal.their_injector,
            cal.their_room,
        )
        acting = role
    before = list(Appointment.objects.values_list("pk", "status", "starts_at", "version"))
    last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    day = cal.monday.date().isoformat()
    gets = [
        ("appointment", url("appointment", appt.pk), {}),
        ("day", url("day"), {"clinic": clinic.pk}),
        ("week", url("week"), {"clinic": clinic.pk}),
        ("day", url("day"), {"practitioner": person.pk}),
        ("book", url("book"), {"clinic": clinic.pk}),
        ("book", url("book"), {"patient": patient.pk}),
        ("book", url("book"), {"practitioner": person.pk}),
        ("clinic_settings", url("clinic_settings"), {"clinic": clinic.pk}),
    ]
    for name, address, params in gets:
        allowed = 404 if can(acting, URLS[name][0]) else 403
        response = client.get(address, params)
        assert response.status_code == allowed, (name, params, role, response.status_code)
    own = cal.their_appt if role == "outsider" else cal.appt
    posts = [
        ("appointment_edit", url("appointment_edit", appt.pk), {"version": appt.version}),
        ("appointment_status", url("appointment_status", appt.pk), {"status": "arrived"}),
        ("move", url("move", appt.pk), {"version": appt.version, "starts_at": f"{day}T12:00"}),
        ("book", url("book"), _form(cal, cal.monday, patient=patient.pk)),
        ("book", url("book"), _form(cal, cal.monday, clinic=clinic.pk)),
        ("book", url("book"), _form(cal, cal.monday, practitioner=person.pk)),
        (
            "move",
            url("move", own.pk),
            {"version": 1, "starts_at": f"{day}T12:00", "practitioner": person.pk},
        ),
    ]
    if room is not None:
        posts.append(("book", url("book"), _form(cal, cal.monday, room=room.pk)))
        posts.append(
            (
                "appointment_edit",
                url("appointment_edit", cal.appt.pk),
                {
                    **_form(cal, cal.monday),
                    "room": room.pk,
                    "version": cal.appt.version,
                },
            )
        )
    for name, address, data in posts:
        allowed = 404 if can(acting, URLS[name][0]) else 403
        response = client.post(address, data)
        assert response.status_code == allowed, (name, data, role, response.status_code)
    after = list(Appointment.objects.values_list("pk", "status", "starts_at", "version"))
    assert after == before
    assert not AuditEvent.objects.filter(seq__gt=last_event).exclude(action="view").exists()


# --- the day view --------------------------------------------------------------------------


def test_day_view_shows_a_column_per_practitioner_and_the_blocks(cal):
    _book(cal, cal.monday + timedelta(hours=1), who="injector", minutes=15, kind="review")
    booking.set_status(cal.actor("front_desk"), cal.appt, "arrived")
    client = cal.client("front_desk")
    page = client.get(url("day"), {"date": cal.monday.date().isoformat()}).content.decode()
    assert "Monday" in page and cal.monday.strftime("%d/%m/%Y") in page
    assert page.count('class="cal-colhead"') == 2  # prescriber and injector
    assert "Open 09:00-18:00." in page
    # Ada at 10:00-10:30 on row 5 of a 09:00 grid, two rows; arrived and highlighted.
    block = re.search(rf'<a id="appt-{cal.appt.pk}" class="([^"]+)"', page)
    assert block is not None
    assert {"appt", "r-5", "s-2", "st-arrived"} <= set(block.group(1).split())
    assert "10:00–10:30" in page and "Arrived" in page  # noqa: RUF001
    assert "11:00–11:15" in page and "Two-week review" in page  # noqa: RUF001
    # Free times are links to the booking form, prefilled.
    assert (
        f"starts_at={cal.monday.date().isoformat()}T09:15" in page
        and f"practitioner={cal.users['injector'].pk}" in page
    )
    # Shown names are audited as viewed.
    event = AuditEvent.objects.filter(action="view", object_type="patients.patient").first()
    assert event.detail["part"] == "calendar day" and cal.patient.pk in event.detail["ids"]


def test_a_no_show_and_the_booking_that_took_its_time_stand_side_by_side(cal):
    booking.set_status(cal.actor("front_desk"), cal.appt, "no_show")
    later = _book(cal, cal.monday + timedelta(minutes=15), minutes=45)
    page = cal.client("front_desk").get(url("day"), {"date": cal.monday.date().isoformat()})
    text = page.content.decode()
    assert "lanes-2" in text
    first = re.search(rf'<a id="appt-{cal.appt.pk}" class="([^"]+)"', text).group(1).split()
    second = re.search(rf'<a id="appt-{later.pk}" class="([^"]+)"', text).group(1).split()
    assert {"lane-0", "st-no_show"} <= set(first) and {"lane-1", "r-6", "s-3"} <= set(second)
    assert "(1 did not attend)" in text


def test_day_view_filters_to_one_practitioner_and_navigates(cal):
    client = cal.client("injector")
    day = cal.monday.date()
    page = client.get(
        url("day"), {"date": day.isoformat(), "practitioner": cal.users["injector"].pk}
    ).content.decode()
    assert page.count('class="cal-colhead"') == 1
    assert "Ada Lovelace" not in page  # her appointment is with the prescriber
    assert f"date={(day - timedelta(days=1)).isoformat()}" in page
    assert f"date={(day + timedelta(days=1)).isoformat()}" in page


def test_a_closed_day_says_so_and_points_to_the_next_open_day(cal):
    sunday = cal.monday.date() + timedelta(days=6)
    page = cal.client("front_desk").get(url("day"), {"date": sunday.isoformat()}).content.decode()
    assert "Alpha Central is closed on Sundays." in page
    assert "Go to the next open day: Monday" in page
    assert 'class="slot' not in page


def test_past_times_are_not_offered_and_a_bad_date_shows_today(cal):
    page = cal.client("front_desk").get(url("day"), {"date": "31/02/2026"}).content.decode()
    today = booking.local(datetime.now(booking.clinic_zone(cal.clinic)), cal.clinic).date()
    assert today.strftime("%d/%m/%Y") in page
    last_week = cal.monday.date() - timedelta(days=14)
    page = cal.client("front_desk").get(url("day"), {"date": last_week.isoformat()}).content
    assert b"/scheduling/book/?clinic" not in page.split(b'id="calendar"')[1]


def test_day_view_in_summer_time_places_10_00_london_on_the_10_00_row(world):
    from glabella.scheduling.tests.test_booking import _next_clock_change

    monday = _next_clock_change(3) + timedelta(days=1)
    appt = _book(world, datetime.combine(monday, time(10)))
    assert appt.starts_at.hour == 9  # 09:00 UTC
    page = world.client("front_desk").get(url("day"), {"date": monday.isoformat()}).content.decode()
    block = re.search(rf'<a id="appt-{appt.pk}" class="([^"]+)"', page)
    assert "r-5" in block.group(1).split()
    assert "10:00–10:30" in page  # noqa: RUF001


def test_week_view_lists_each_day(cal):
    _book(cal, cal.monday + timedelta(days=2, hours=3), who="injector")
    page = cal.client("front_desk").get(url("week"), {"date": cal.monday.date().isoformat()})
    text = page.content.decode()
    assert page.status_code == 200
    assert f"Week of {cal.monday.strftime('%d/%m/%Y')}" in text
    assert text.count('<section class="week-day') == 7
    assert "Closed" in text  # Sunday
    assert "10:00–10:30" in text and "13:00–13:30" in text  # noqa: RUF001
    # One practitioner at a time: only theirs.
    text = (
        cal.client("front_desk")
        .get(
            url("week"),
            {"date": cal.monday.date().isoformat(), "practitioner": cal.users["injector"].pk},
        )
        .content.decode()
    )
    assert "13:00–13:30" in text and "10:00–10:30" not in text  # noqa: RUF001


# --- booking -------------------------------------------------------------------------------


def test_book_form_is_prefilled_from_the_calendar_slot(cal):
    day = cal.monday.date().isoformat()
    page = (
        cal.client("front_desk")
        .get(
            url("book"),
            {
                "clinic": cal.clinic.pk,
                "practitioner": cal.users["injector"].pk,
                "starts_at": f"{day}T11:15",
                "kind": "review",
            },
        )
        .content.decode()
    )
    assert f'value="{day}"' in page and 'value="11:15"' in page
    assert re.search(rf'<option value="{cal.users["injector"].pk}" selected>', page)
    assert re.search(r'<option value="review"[^>]* selected[^>]*>', page)
    assert 'name="minutes" value="15"' in page
    assert "Find the patient" in page


def test_book_form_is_prefilled_from_the_patient_page(cal):
    page = cal.client("front_desk").get(url("book"), {"patient": cal.patient.pk}).content.decode()
    assert "Ada Lovelace" in page and "born 10/12/1985" in page
    assert f'name="patient" value="{cal.patient.pk}"' in page
    assert "Already booked:" in page  # her Monday appointment


def test_book_creates_redirects_to_the_day_and_is_audited(cal):
    when = cal.monday + timedelta(hours=3)
    client = cal.client("front_desk")
    response = client.post(url("book"), _form(cal, when, notes=" bring photos "))
    assert response.status_code == 302
    appt = Appointment.objects.get(starts_at=when)
    assert f"focus={appt.pk}" in response["Location"] and "/scheduling/day/" in response["Location"]
    assert appt.notes == "bring photos" and appt.created_by == cal.users["front_desk"]
    assert AuditEvent.objects.filter(
        action="create", object_type="scheduling.appointment", object_id=str(appt.pk)
    ).exists()
    page = client.get(response["Location"]).content.decode()
    assert "Booked: Ada Lovelace" in page


def test_book_goes_back_to_next_when_safe(cal):
    back = url("week") + f"?clinic={cal.clinic.pk}"
    response = cal.client("front_desk").post(
        url("book"), _form(cal, cal.monday + timedelta(hours=4), next=back)
    )
    assert response["Location"] == back
    response = cal.client("front_desk").post(
        url("book"), _form(cal, cal.monday + timedelta(hours=5), next="https://evil.example/")
    )
    assert response["Location"].startswith("/scheduling/day/")


@pytest.mark.parametrize(
    "change,field_words",
    [
        ({"patient": ""}, "Choose the patient"),
        ({"date": "31/02/2026"}, "Write the date as DD/MM/YYYY"),
        ({"time": "25:61"}, "Write the time as HH:MM"),
        ({"kind": ""}, "Choose the type of appointment"),
        ({"practitioner": ""}, "Choose who will see the patient"),
        ({"minutes": "abc"}, "Give the length in whole minutes"),
        ({"minutes": "600"}, "between 5 minutes and 8 hours"),
        ({"indication": "hair-loss"}, "Choose an indication from the list"),
        ({"kind": "massage"}, "Choose the type of appointment"),
        ({"time": "07:00"}, "outside Alpha Central&#x27;s opening hours"),
        ({"time": "10:15"}, "already has an appointment"),
    ],
)
def test_book_errors_are_shown_beside_the_fields_and_nothing_is_saved(cal, change, field_words):
    before = Appointment.objects.count()
    data = _form(cal, cal.monday.replace(hour=10, minute=15), patient=cal.patient.pk)
    if change.get("time") == "10:15":
        from glabella.patients import services as patient_services

        other = patient_services.create_patient(
            cal.actor("front_desk"),
            {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1980, 1, 2)},
        )
        data["patient"] = other.pk
    data.update({k: v for k, v in change.items() if k != "time" or v != "10:15"})
    response = cal.client("front_desk").post(url("book"), data)
    assert response.status_code == 200
    text = response.content.decode()
    assert field_words in text, text[text.find("error") - 200 : text.find("error") + 400]
    assert "Nothing was booked" in text
    assert Appointment.objects.count() == before


def test_a_room_taken_at_that_time_is_refused_beside_the_room(cal):
    room = Room.objects.create(organization=cal.org, clinic=cal.clinic, name="Room 1")
    _book(cal, cal.monday + timedelta(hours=2), room=room)
    data = _form(cal, cal.monday + timedelta(hours=2), practitioner=cal.users["injector"].pk)
    response = cal.client("front_desk").post(url("book"), {**data, "room": room.pk})
    text = response.content.decode()
    field = text.split('for="id_room"')[1].split("</div>")[0]
    assert "Room 1 is already booked" in field
    assert Appointment.objects.filter(room=room).count() == 1


def test_a_time_in_the_past_is_refused(cal):
    past = cal.monday - timedelta(days=14)
    response = cal.client("front_desk").post(url("book"), _form(cal, past))
    assert "That time has already passed" in response.content.decode()
    assert not Appointment.objects.filter(starts_at=past).exists()


def test_a_second_submit_shows_the_appointment_booked_by_the_first(cal):
    client = cal.client("front_desk")
    data = _form(cal, cal.monday + timedelta(hours=6))
    first = client.post(url("book"), data)
    second = client.post(url("book"), data)
    appt = Appointment.objects.get(starts_at=cal.monday + timedelta(hours=6))
    assert first.status_code == 302 and second.status_code == 302
    assert second["Location"] == url("appointment", appt.pk)
    page = client.get(second["Location"]).content.decode()
    assert "is already booked for" in page and "nothing was booked twice" in page
    assert Appointment.objects.filter(patient=cal.patient).count() == 2  # Monday 10:00 + this


def test_booking_for_a_recall_closes_it(cal):
    today = date.today()
    recall = Recall.objects.create(
        organization=cal.org,
        patient=cal.patient,
        indication="chronic-migraine",
        kind="retreatment",
        basis_on=today - timedelta(days=80),
        due_on=today + timedelta(days=4),
    )
    page = cal.client("front_desk").get(url("book"), {"recall": recall.pk}).content.decode()
    assert "For the recall" in page and "Chronic migraine" in page
    assert f'name="patient" value="{cal.patient.pk}"' in page
    assert re.search(r'<option value="migraine_cycle"[^>]* selected[^>]*>', page)
    assert re.search(r'<option value="chronic-migraine" selected>', page)
    data = _form(
        cal,
        cal.monday + timedelta(hours=2),
        recall=recall.pk,
        kind="migraine_cycle",
        minutes="45",
        indication="chronic-migraine",
    )
    assert cal.client("front_desk").post(url("book"), data).status_code == 302
    recall.refresh_from_db()
    assert recall.state == RecallState.BOOKED
    assert Appointment.objects.get(recall=recall).indication == "chronic-migraine"


def test_patient_search_as_you_type(cal):
    client = cal.client("front_desk")
    response = client.get(
        url("book"),
        {"q": "love", "clinic": cal.clinic.pk, "starts_at": "2030-01-07T10:00"},
        HTTP_HX_REQUEST="true",
    )
    text = response.content.decode()
    assert "<html" not in text  # a fragment
    assert "Ada Lovelace" in text and f"patient={cal.patient.pk}" in text
    assert "starts_at=2030-01-07T10%3A00" in text  # the slot is kept
    assert (
        client.get(url("book"), {"q": "Outside"}, HTTP_HX_REQUEST="true")
        .content.decode()
        .count("data-pick-patient")
        == 0
    )
    # Without a script: the same search reloads the page with the results.
    page = client.get(url("book"), {"q": "10/12/1985"}).content.decode()
    assert "Ada Lovelace" in page and "data-pick-patient" in page
    event = AuditEvent.objects.filter(action="view", detail__part="booking").first()
    assert event is not None and cal.patient.pk in event.detail["ids"]


# --- one appointment -----------------------------------------------------------------------


def test_appointment_page_shows_details_actions_and_history(cal):
    booking.change(cal.actor("front_desk"), cal.appt, 1, starts_at=cal.monday + timedelta(hours=1))
    page = cal.client("front_desk").get(url("appointment", cal.appt.pk)).content.decode()
    assert "Ada Lovelace" in page and "11:00–11:30" in page  # noqa: RUF001
    for button in ("Arrived", "Did not attend", "Cancel the appointment", "Save changes"):
        assert button in page, button
    assert "Booked: Treatment" in page
    assert re.search(r"moved from \d\d/\d\d/\d{4} 10:00 to \d\d/\d\d/\d{4} 11:00", page)
    assert AuditEvent.objects.filter(action="view", detail__part="appointment").exists()


def test_edit_moves_and_a_stale_page_is_told_and_shown_fresh(cal):
    client = cal.client("front_desk")
    data = _form(cal, cal.monday + timedelta(hours=2), version=1, minutes="45")
    response = client.post(url("appointment_edit", cal.appt.pk), data)
    assert response.status_code == 302
    cal.appt.refresh_from_db()
    assert cal.appt.starts_at == cal.monday + timedelta(hours=2)
    assert cal.appt.ends_at - cal.appt.starts_at == timedelta(minutes=45)
    # The same (now old) page sent again: refused, with the appointment as it is now.
    data = _form(cal, cal.monday + timedelta(hours=5), version=1)
    response = client.post(url("appointment_edit", cal.appt.pk), data)
    assert response.status_code == 409
    text = response.content.decode()
    assert "Someone else changed this appointment" in text
    assert 'value="12:00"' in text  # the fresh time in the form
    cal.appt.refresh_from_db()
    assert cal.appt.starts_at == cal.monday + timedelta(hours=2)


def test_edit_errors_are_shown_and_nothing_changes(cal):
    other = _book(cal, cal.monday + timedelta(hours=1), who="injector")
    data = _form(cal, cal.monday, version=other.version, practitioner=cal.users["prescriber"].pk)
    response = cal.client("front_desk").post(url("appointment_edit", other.pk), data)
    text = response.content.decode()
    assert response.status_code == 200
    assert "already has an appointment" in text and "Nothing was changed" in text
    other.refresh_from_db()
    assert other.practitioner == cal.users["injector"] and other.version == 1


def test_status_buttons_undo_and_cancel_with_a_reason(cal):
    client = cal.client("front_desk")
    back = url("day") + f"?clinic={cal.clinic.pk}"
    response = client.post(
        url("appointment_status", cal.appt.pk), {"status": "arrived", "version": 1, "next": back}
    )
    assert response.status_code == 302 and "next=" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "Ada Lovelace has arrived." in page
    assert "Undo: not arrived yet" in page and "Done" in page
    client.post(url("appointment_status", cal.appt.pk), {"status": "booked", "version": 2})
    cal.appt.refresh_from_db()
    assert cal.appt.status == "booked" and cal.appt.version == 3
    # A stale button (version 2) is refused.
    response = client.post(
        url("appointment_status", cal.appt.pk), {"status": "arrived", "version": 2}
    )
    assert response.status_code == 409
    assert "Someone else changed this appointment" in response.content.decode()
    # Cancelling needs a reason; then it is final.
    response = client.post(
        url("appointment_status", cal.appt.pk), {"status": "cancelled", "version": 3, "reason": ""}
    )
    assert (
        response.status_code == 200
        and "Say why the appointment is cancelled" in response.content.decode()
    )
    cal.appt.refresh_from_db()
    assert cal.appt.status == "booked"
    client.post(
        url("appointment_status", cal.appt.pk),
        {"status": "cancelled", "version": 3, "reason": "Patient unwell"},
    )
    page = client.get(url("appointment", cal.appt.pk)).content.decode()
    assert "Cancelled: Patient unwell" in page and "A cancellation is final" in page
    assert "Book again" in page and "Save changes" not in page
    response = client.post(
        url("appointment_status", cal.appt.pk), {"status": "booked", "version": 4}
    )
    page = client.get(response["Location"]).content.decode()
    assert "A cancelled appointment cannot be marked booked." in page


# --- the drag's endpoint -------------------------------------------------------------------


def test_move_endpoint_answers_in_json(cal):
    client = cal.client("injector")
    day = cal.monday.date().isoformat()
    ok = client.post(
        url("move", cal.appt.pk),
        {"version": 1, "starts_at": f"{day}T14:15", "practitioner": cal.users["injector"].pk},
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["ok"] is True and body["version"] == 2
    assert "14:15-14:45" in body["message"]
    cal.appt.refresh_from_db()
    assert cal.appt.practitioner == cal.users["injector"]
    assert booking.local(cal.appt.starts_at, cal.clinic).time() == time(14, 15)
    assert cal.appt.ends_at - cal.appt.starts_at == timedelta(minutes=30)

    blocker = _book(cal, cal.monday + timedelta(hours=6), who="injector")
    clash = client.post(url("move", cal.appt.pk), {"version": 2, "starts_at": f"{day}T16:15"})
    assert clash.status_code == 409 and "already has an appointment" in clash.json()["error"]
    stale = client.post(url("move", cal.appt.pk), {"version": 1, "starts_at": f"{day}T12:00"})
    assert stale.status_code == 409 and stale.json()["stale"] is True
    closed = client.post(url("move", cal.appt.pk), {"version": 2, "starts_at": f"{day}T19:00"})
    assert closed.status_code == 409 and "opening hours" in closed.json()["error"]
    garbled = client.post(url("move", cal.appt.pk), {"version": "x", "starts_at": "soon"})
    assert (
        garbled.status_code == 400 and "could not be read" in json.loads(garbled.content)["error"]
    )
    cal.appt.refresh_from_db()
    assert cal.appt.version == 2 and blocker.starts_at == cal.monday + timedelta(hours=6)


def test_a_drag_in_summer_time_books_the_time_on_the_clinic_clock(cal):
    """The drag sends the clinic's wall clock; in British Summer Time (UTC+1) that is not UTC:
    14:15 on the calendar is 13:15 UTC, and the appointment says 14:15."""
    today = date.today()
    july = date(today.year + 1, 7, 1)
    summer = july + timedelta(days=(7 - july.weekday()) % 7)  # the first Monday of July
    appt = _book(
        cal,
        datetime.combine(summer, time(10), tzinfo=ZoneInfo(cal.clinic.timezone)),
        who="injector",
    )
    client = cal.client("injector")
    moved = client.post(
        url("move", appt.pk), {"version": appt.version, "starts_at": f"{summer}T14:15"}
    )
    assert moved.status_code == 200, moved.content
    assert "14:15-14:45" in moved.json()["message"]
    appt.refresh_from_db()
    assert booking.local(appt.starts_at, cal.clinic).time() == time(14, 15)
    assert appt.starts_at.astimezone(UTC).time() == time(13, 15)


# --- the patient page ----------------------------------------------------------------------


def test_patient_page_lists_upcoming_appointments_with_a_book_button(cal):
    _book(cal, next_monday_at(9, weeks=2), who="injector", kind="review")
    cancelled = _book(cal, next_monday_at(15, weeks=2), who="injector")
    booking.set_status(cal.actor("front_desk"), cancelled, "cancelled", reason="moved away")
    page = cal.client("front_desk").get(reverse("patients:detail", args=[cal.patient.pk]))
    text = page.content.decode()
    section = text.split('id="appointments-heading"')[1].split("</section>")[0]
    assert cal.monday.strftime("%d/%m/%Y") + " 10:00" in section
    assert "Two-week review with injector@alpha.test" in section
    assert "15:00" not in section  # the cancelled one
    assert f"/scheduling/book/?patient={cal.patient.pk}" in section
    text = cal.client("auditor").get(reverse("patients:detail", args=[cal.patient.pk])).content
    section = text.decode().split('id="appointments-heading"')[1].split("</section>")[0]
    assert "Book appointment" not in section and "10:00" in section
