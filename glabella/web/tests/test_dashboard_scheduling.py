"""The dashboard's scheduling panels: today's appointments (who has arrived), recalls due this
week and the reminders sent and failed, each scoped to the organization and clinic."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic
from glabella.accounts.roles import Role
from glabella.accounts.services import add_clinic, add_member
from glabella.audit.models import AuditEvent
from glabella.clinical import indications
from glabella.conftest import PASSWORD
from glabella.patients import services as patient_services
from glabella.scheduling import booking
from glabella.scheduling.models import (
    AppointmentStatus,
    OpeningHours,
    Recall,
    RecallState,
    Reminder,
    ReminderStatus,
)
from glabella.web import dashboard
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

DASHBOARD = reverse("web:dashboard")
_keys = count()


def _open_all_day(clinic: Clinic) -> None:
    """Open every day 00:00-23:59, so today's appointments can be booked whatever day the
    tests run on."""
    booking.settings_for(clinic)
    OpeningHours.objects.filter(clinic=clinic).delete()
    OpeningHours.objects.bulk_create(
        OpeningHours(
            organization_id=clinic.organization_id,
            clinic=clinic,
            weekday=day,
            opens=time(0, 0),
            closes=time(23, 59),
        )
        for day in range(7)
    )


def _today(clinic: Clinic) -> date:
    return datetime.now(ZoneInfo(clinic.timezone)).date()


def _at(clinic: Clinic, hour: int, minute: int = 0, days: int = 0) -> datetime:
    day = _today(clinic) + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(clinic.timezone))


def _book(actor, patient, clinic, practitioner, starts_at, **extra):
    """Book through the service as if the booking had been made the day before."""
    return booking.book(
        actor,
        patient=patient,
        clinic=clinic,
        practitioner=practitioner,
        starts_at=starts_at,
        kind=extra.pop("kind", "treatment"),
        now=starts_at - timedelta(days=1),
        **extra,
    )


def _page(world, role: str) -> str:
    response = world.client(role).get(DASHBOARD)
    assert response.status_code == 200
    return response.content.decode()


def _main(page: str) -> str:
    return page.split('<main id="main">', 1)[1]


def _section(page: str, heading_id: str) -> str:
    found = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', page, re.S)
    assert found, heading_id
    return found.group(0)


@pytest.fixture
def day(world):
    return _make_day(world)


def _make_day(world):
    """Today at Alpha Central: six appointments in every state, plus ones that must not show."""
    _open_all_day(world.clinic)
    desk = world.actor(Role.FRONT_DESK)
    grace = patient_services.create_patient(
        world.actor(Role.INJECTOR),
        {
            "given_name": "Grace",
            "family_name": "Hopper",
            "date_of_birth": date(1976, 12, 9),
            "phone": "07700 900456",
        },
    )
    prescriber, injector = world.users[Role.PRESCRIBER], world.users[Role.INJECTOR]
    c = world.clinic
    rows = {
        "arrived": _book(
            desk,
            world.patient,
            c,
            prescriber,
            _at(c, 8),
            indication="glabellar-lines",
            notes="Very nervous, wants 16 U only",
        ),
        "done": _book(desk, grace, c, injector, _at(c, 8, 30), kind="review"),
        "no_show": _book(desk, grace, c, prescriber, _at(c, 9)),
        "cancelled": _book(desk, world.patient, c, injector, _at(c, 9)),
        "booked": _book(desk, grace, c, prescriber, _at(c, 22), kind="consultation"),
        "later": _book(desk, world.patient, c, injector, _at(c, 23)),
    }
    booking.set_status(desk, rows["arrived"], AppointmentStatus.ARRIVED)
    booking.set_status(desk, rows["done"], AppointmentStatus.ARRIVED)
    booking.set_status(desk, rows["done"], AppointmentStatus.DONE)
    booking.set_status(desk, rows["no_show"], AppointmentStatus.NO_SHOW)
    booking.set_status(desk, rows["cancelled"], AppointmentStatus.CANCELLED, reason="Unwell")
    # Not today, or not this clinic: never in today's list.
    _book(desk, grace, c, prescriber, _at(c, 10, days=1))
    _book(desk, grace, c, prescriber, _at(c, 10, days=-1))
    owner = Actor(world.org, world.users[Role.OWNER], c, Role.OWNER)
    north = add_clinic(owner, name="Alpha North", timezone="Europe/London")
    add_member(owner, email=injector.email, clinic=north, role=Role.INJECTOR, password=PASSWORD)
    _open_all_day(north)
    _book(desk, grace, north, injector, _at(north, 12))
    return rows


# --- today's appointments --------------------------------------------------------------------


def test_today_lists_the_appointments_and_who_has_arrived(world, day):
    page = _page(world, Role.INJECTOR)
    today = _section(page, "today-heading")
    assert _today(world.clinic).strftime("%d/%m/%Y") in today
    assert re.search(r"<strong>1</strong> arrived", today)
    assert re.search(r"<strong>2</strong> still to come", today)
    assert re.search(r"<strong>1</strong> done", today)
    assert re.search(r"<strong>1</strong> did not attend", today)
    assert "1 cancelled" in today
    table = today.split("<tbody>", 1)[1]
    # Five rows in time order (the cancelled one is counted, not listed).
    assert table.count("<tr") == 5
    times = re.findall(r"(\d\d:\d\d)\u2013(\d\d:\d\d)", table)
    assert times == [
        ("08:00", "08:30"),
        ("08:30", "08:45"),
        ("09:00", "09:30"),
        ("22:00", "22:30"),
        ("23:00", "23:30"),
    ]
    arrived_row = re.search(r'<tr class="status-arrived">.*?</tr>', table, re.S).group(0)
    assert "LOVELACE, Ada" in arrived_row and "prescriber@alpha.test" in arrived_row
    assert "Treatment" in arrived_row and ">Arrived<" in arrived_row
    assert f'href="{reverse("patients:detail", args=[world.patient.pk])}"' in arrived_row
    assert "Two-week review" in table and "Did not attend" in table and "Done" in table
    assert "Alpha North" not in today and "12:00" not in table and "10:00" not in table


def test_front_desk_sees_the_day_but_no_clinical_data(world, day):
    glabellar = indications.get("glabellar-lines").name
    desk = _section(_page(world, Role.FRONT_DESK), "today-heading")
    assert "LOVELACE, Ada" in desk and "HOPPER, Grace" in desk
    assert glabellar not in desk
    injector = _section(_page(world, Role.INJECTOR), "today-heading")
    assert glabellar in injector
    for role in (Role.FRONT_DESK, Role.INJECTOR, Role.OWNER):
        page = _page(world, role)
        assert "nervous" not in page and "16 U" not in page and "Unwell" not in page


def test_the_auditor_sees_the_day_read_only(world, day):
    page = _page(world, Role.AUDITOR)
    assert "LOVELACE, Ada" in _section(page, "today-heading")
    main = _main(page)
    assert 'method="post"' not in main
    assert "Book an appointment" not in main and "Your calendar feed" not in main
    assert "Register a patient" not in main


def test_staff_get_a_link_to_their_calendar_feed(world):
    page = _main(_page(world, Role.PRESCRIBER))
    assert f'href="{reverse("scheduling:feeds")}"' in page


def test_the_dashboard_audits_the_patients_it_shows(world, day):
    _page(world, Role.FRONT_DESK)
    event = AuditEvent.objects.filter(action="view", object_type="patients.patient").first()
    assert event.detail["part"] == "dashboard"
    assert world.patient.pk in event.detail["ids"]


def test_the_dashboard_query_count_does_not_grow_with_the_day(world):
    _open_all_day(world.clinic)
    desk = world.actor(Role.FRONT_DESK)
    client = world.client(Role.INJECTOR)
    _book(desk, world.patient, world.clinic, world.users[Role.PRESCRIBER], _at(world.clinic, 1))
    client.get(DASHBOARD)  # the session's first request writes its expiry (once a minute)
    with CaptureQueriesContext(connection) as few:
        client.get(DASHBOARD)
    for hour in range(2, 12):
        _book(
            desk, world.patient, world.clinic, world.users[Role.PRESCRIBER], _at(world.clinic, hour)
        )
    with CaptureQueriesContext(connection) as many:
        page = client.get(DASHBOARD).content.decode()
    assert page.count("status-booked") == 11
    assert len(many) == len(few)


# --- recalls ---------------------------------------------------------------------------------


def _recall(world, due: date, *, patient=None, org=None, **extra) -> Recall:
    return Recall.objects.create(
        organization=org or world.org,
        patient=patient or world.patient,
        indication=extra.pop("indication", "glabellar-lines"),
        kind=extra.pop("kind", "retreatment"),
        basis_on=due - timedelta(days=120),
        due_on=due,
        **extra,
    )


def test_recalls_due_this_week_and_overdue_link_to_the_worklist(world):
    today = _today(world.clinic)
    grace = patient_services.create_patient(
        world.actor(Role.INJECTOR),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1976, 12, 9)},
    )
    _recall(world, today + timedelta(days=2), clinic=world.clinic)
    _recall(world, today - timedelta(days=3), patient=grace, indication="forehead-lines")
    _recall(world, today + timedelta(days=6), patient=grace, kind="review")
    # Not shown: later, closed, superseded, another clinic, another organization.
    _recall(world, today + timedelta(days=20), indication="chronic-migraine")
    _recall(world, today, indication="platysma-bands", state=RecallState.DECLINED)
    _recall(world, today, indication="axillary-hyperhidrosis", is_current=False)
    owner = Actor(world.org, world.users[Role.OWNER], world.clinic, Role.OWNER)
    north = add_clinic(owner, name="Alpha North", timezone="Europe/London")
    _recall(world, today, indication="blepharospasm", clinic=north)
    _recall(world, today, patient=world.outsider_patient, org=world.outsider_org)

    panel = _section(_page(world, Role.FRONT_DESK), "recalls-heading")
    assert re.search(r"<strong>2</strong> due by", panel)
    assert (today + timedelta(days=6)).strftime("%d/%m/%Y") in panel
    assert re.search(r"<strong>1</strong> overdue", panel)
    items = re.findall(r"<li.*?</li>", panel, re.S)
    assert len(items) == 3
    assert "HOPPER, Grace" in items[0] and "(overdue)" in items[0]  # overdue first
    assert "LOVELACE, Ada" in items[1] and "Re-treatment" in items[1]
    assert "Two-week review" in items[2]
    assert "OUTSIDE" not in panel
    assert indications.get("forehead-lines").name not in panel  # front desk: no indication
    expected = dashboard.url_or("scheduling:recalls", "/scheduling/recalls/")
    assert f'href="{expected}"' in panel
    injector = _section(_page(world, Role.INJECTOR), "recalls-heading")
    assert indications.get("forehead-lines").name in injector
    assert indications.get("chronic-migraine").name not in injector


def test_no_recalls_due_is_said_plainly(world):
    panel = _section(_page(world, Role.FRONT_DESK), "recalls-heading")
    assert "No recalls are due this week and none are overdue" in panel


# --- reminders -------------------------------------------------------------------------------


def _reminder(world, status: str, *, sent_at=None, due_at=None, org=None, **extra) -> Reminder:
    due_at = due_at or sent_at or timezone.now()
    return Reminder.objects.create(
        organization=org or world.org,
        clinic=extra.pop("clinic", world.clinic if org is None else None),
        patient=extra.pop("patient", world.patient),
        kind="reminder",
        channel="email",
        key=f"test-{next(_keys)}",
        due_at=due_at,
        next_attempt_at=due_at,
        status=status,
        sent_at=sent_at,
        **extra,
    )


def test_reminders_sent_and_failed_today_and_this_week(world):
    now = timezone.now()
    start_of_today = booking.day_bounds(world.clinic, _today(world.clinic))[0]
    today = max(start_of_today + timedelta(minutes=1), now - timedelta(minutes=5))
    _reminder(world, ReminderStatus.SENT, sent_at=today)
    _reminder(world, ReminderStatus.SENT, sent_at=today)
    _reminder(world, ReminderStatus.SENT, sent_at=now - timedelta(days=3))
    _reminder(world, ReminderStatus.SENT, sent_at=now - timedelta(days=10))  # too old
    _reminder(world, ReminderStatus.FAILED, due_at=today, last_error="mailbox full")
    _reminder(world, ReminderStatus.UNCERTAIN, due_at=now - timedelta(days=2))
    _reminder(world, ReminderStatus.PENDING, due_at=today, attempts=1, last_error="timeout")
    _reminder(world, ReminderStatus.PENDING, due_at=now + timedelta(days=1))  # not yet due
    _reminder(
        world, ReminderStatus.SENT, sent_at=today, org=world.outsider_org,
        patient=world.outsider_patient,
    )  # fmt: skip

    panel = _section(_page(world, Role.FRONT_DESK), "messages-heading")
    cells = re.findall(r'<td class="num">(\d+)</td>', panel)
    assert cells == ["2", "3", "1", "2"]  # sent today, 7 days; failed today, 7 days
    assert "1 waiting to be tried again" in panel
    expected = dashboard.url_or("scheduling:messages", "/scheduling/messages/")
    assert f'href="{expected}"' in panel and "See the failed messages" in panel
    assert "mailbox full" not in panel


def test_no_messages_is_said_plainly(world):
    panel = _section(_page(world, Role.AUDITOR), "messages-heading")
    assert "No reminders sent and none failed in the last 7 days" in panel


# --- empty day, other organizations ----------------------------------------------------------


def test_an_empty_day_says_so_and_the_stock_panel_stays(world):
    page = _page(world, Role.INJECTOR)
    assert "No appointments today at Alpha Central" in _section(page, "today-heading")
    assert "Nothing in the stock needs attention" in page
    assert "Recently updated patients" in page


def test_another_organizations_day_never_appears(world, day):
    beta_clinic = Clinic.objects.get(organization=world.outsider_org)
    _open_all_day(beta_clinic)
    beta_owner = world.outsider_actor()
    member = add_member(
        beta_owner,
        email="prescriber@beta.test",
        clinic=beta_clinic,
        role=Role.PRESCRIBER,
        password=PASSWORD,
    )
    _book(beta_owner, world.outsider_patient, beta_clinic, member.user, _at(beta_clinic, 11))
    _recall(world, _today(beta_clinic), patient=world.outsider_patient, org=world.outsider_org)
    _reminder(world, ReminderStatus.FAILED, org=world.outsider_org, patient=world.outsider_patient)
    alpha = _page(world, Role.OWNER)
    assert "OUTSIDE" not in alpha and "prescriber@beta.test" not in alpha
    beta = world.client("outsider").get(DASHBOARD).content.decode()
    assert "OUTSIDE, Bob" in _section(beta, "today-heading")
    assert "OUTSIDE, Bob" in _section(beta, "recalls-heading")
    assert "LOVELACE" not in beta and "HOPPER" not in beta
    cells = re.findall(r'<td class="num">(\d+)</td>', _section(beta, "messages-heading"))
    assert cells == ["0", "0", "1", "1"]


@pytest.mark.browser
def test_the_day_on_a_tablet(live_server, live_world, page):
    _make_day(live_world)
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    today = page.get_by_role("region", name=re.compile("Today's appointments"))
    expect(today).to_contain_text("1 arrived")
    expect(today).to_contain_text("2 still to come")
    arrived = page.locator("tr.status-arrived")
    expect(arrived).to_contain_text("LOVELACE, Ada")
    # The arrived row stands out: its cells are tinted green.
    colour = arrived.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(227, 244, 232)"
    expect(page.get_by_role("region", name="Recalls due this week")).to_contain_text(
        "No recalls are due this week"
    )
    expect(page.get_by_role("region", name="Reminders")).to_contain_text("No reminders sent")
    assert_fits_and_touchable(page)
    shot(page, "dashboard-day")
    arrived.get_by_role("link", name="LOVELACE, Ada").click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
