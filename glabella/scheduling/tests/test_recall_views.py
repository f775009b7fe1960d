"""The recall worklist and the cycle planner pages: roles, scope, tabs, filters, empty states,
actions and booking."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.patients import services as patient_services
from glabella.scheduling import booking, recalls
from glabella.scheduling.models import Appointment, AppointmentType, Recall, RecallState
from glabella.scheduling.tests.recall_helpers import consent_from, signed

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()


URL = reverse("scheduling:recalls")


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def d(day: date) -> str:
    return f"{day:%d/%m/%Y}"


def new_patient(world, given: str, family: str):
    patient = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": given, "family_name": family, "date_of_birth": date(1980, 1, 2)},
    )
    consent_from(world, 200, patient=patient)
    return patient


@pytest.fixture
def due(world):
    """Ada: migraine 90 days ago (overdue 6 days), frown lines 100 days ago (upcoming in 20,
    and its two-week review long overdue). Cy: migraine 80 days ago (due in 4 days, by the
    prescriber). Di: frown lines 5 days ago (review in 9 days; re-treatment beyond 6 weeks)."""
    consent_from(world, 200)
    signed(world, "chronic-migraine", "botox", days_ago=90)
    signed(world, days_ago=100)
    world.cy = new_patient(world, "Cy", "Second")
    signed(world, "chronic-migraine", "botox", days_ago=80, patient=world.cy, role="prescriber")
    world.di = new_patient(world, "Di", "Third")
    signed(world, days_ago=5, patient=world.di)
    return world


def rows(response) -> list[str]:
    """'patient · indication · due' of each row on the page, in order."""
    html = response.content.decode()
    out = []
    for block in re.findall(r'<li class="recall-row.*?</li>\n', html, flags=re.S):
        who = re.search(r'class="recall-who"><a [^>]*>([^<]+)</a>', block).group(1)
        what = re.search(r'class="recall-what">· ([^<]+)</span>', block).group(1).strip()
        due = re.search(r"<dt>Due</dt><dd><b>([^<]+)</b>", block).group(1)
        out.append(f"{who} · {what} · {due}")
    return out


def count(response, tab: str) -> int:
    html = response.content.decode()
    return int(re.search(rf'data-count="{tab}">(\d+)<', html).group(1))


def test_front_desk_sees_the_tabs_in_order_with_counts_and_dates(due):
    client = due.client("front_desk")
    response = client.get(URL)
    assert response.status_code == 200
    assert (count(response, "overdue"), count(response, "week"), count(response, "upcoming")) == (
        2,
        1,
        2,
    )
    assert rows(response) == [
        f"Ada Lovelace · Chronic migraine · {d(ago(6))}",
        f"Ada Lovelace · Glabellar lines (frown lines) · two-week review · {d(ago(86))}",
    ]
    html = response.content.decode()
    assert f"<dt>Not before</dt><dd>{d(ago(6))}</dd>" in html
    assert f"<dt>Last treated</dt><dd>{d(ago(90))}</dd>" in html
    assert "<dt>Product</dt><dd>Botox</dd>" in html
    assert "data-no-reminder>No reminder consent<" in html
    assert f'href="{reverse("patients:detail", args=[due.patient.pk])}"' in html
    week = client.get(URL, {"tab": "week"})
    assert rows(week) == [f"Cy Second · Chronic migraine · {d(ago(-4))}"]
    upcoming = client.get(URL, {"tab": "upcoming"})
    assert rows(upcoming) == [
        f"Di Third · Glabellar lines (frown lines) · two-week review · {d(ago(-9))}",
        f"Ada Lovelace · Glabellar lines (frown lines) · {d(ago(-20))}",
    ]
    # Shown lists of patients are audited.
    event = AuditEvent.objects.filter(detail__part="recall worklist").latest("seq")
    assert event.actor_id == due.users["front_desk"].pk


def test_the_book_link_carries_patient_recall_indication_and_kind(due):
    response = due.client("front_desk").get(URL, {"tab": "week"})
    html = response.content.decode()
    href = re.search(r'<a class="button primary" href="([^"]+)">Book</a>', html).group(1)
    href = href.replace("&amp;", "&")
    parts = urlsplit(href)
    assert parts.path == reverse("scheduling:book")
    recall = Recall.objects.get(patient=due.cy, is_current=True)
    assert parse_qs(parts.query) == {
        "patient": [str(due.cy.pk)],
        "recall": [str(recall.pk)],
        "indication": ["chronic-migraine"],
        "kind": ["migraine_cycle"],
        "clinic": [str(due.clinic.pk)],
        "practitioner": [str(due.users["prescriber"].pk)],
    }
    assert f'href="{reverse("scheduling:cycles", args=[due.cy.pk])}"' in html
    review = due.client("front_desk").get(URL, {"tab": "upcoming"}).content.decode()
    assert "kind=review" in review and "kind=treatment" in review


def test_filters_by_indication_practitioner_clinic_and_state(due):
    client = due.client("owner")
    only = client.get(URL, {"tab": "overdue", "indication": "glabellar-lines"})
    assert rows(only) == [
        f"Ada Lovelace · Glabellar lines (frown lines) · two-week review · {d(ago(86))}"
    ]
    assert count(only, "week") == 0 and count(only, "upcoming") == 2
    by_prescriber = client.get(URL, {"tab": "week", "practitioner": due.users["prescriber"].pk})
    assert rows(by_prescriber) == [f"Cy Second · Chronic migraine · {d(ago(-4))}"]
    assert count(by_prescriber, "overdue") == 0
    here = client.get(URL, {"clinic": due.clinic.pk})
    assert count(here, "overdue") == 2
    # Another organization's clinic is not a choice: the filter says so and filters nothing.
    theirs = booking.Clinic.objects.get(organization=due.outsider_org)
    wrong = client.get(URL, {"clinic": theirs.pk})
    assert "Choose one of your organization&#x27;s clinics." in wrong.content.decode()
    assert count(wrong, "overdue") == 2
    # Declined recalls leave the default view and appear under "any state" and "declined".
    recall = Recall.objects.get(patient=due.cy, is_current=True)
    recalls.set_state(due.actor("front_desk"), recall, "declined", "moved away")
    assert count(client.get(URL), "week") == 0
    assert count(client.get(URL, {"state": "all"}), "week") == 1
    declined = client.get(URL, {"tab": "week", "state": "declined"})
    assert rows(declined) == [f"Cy Second · Chronic migraine · {d(ago(-4))}"]
    assert "moved away" in declined.content.decode()


def test_empty_states_say_what_is_empty(world, due):
    outsider = world.client("outsider")
    response = outsider.get(URL)
    assert response.status_code == 200
    assert "No recalls yet." in response.content.decode()
    assert "Lovelace" not in response.content.decode()
    client = due.client("front_desk")
    none = client.get(URL, {"tab": "week", "indication": "forehead-lines"})
    html = none.content.decode()
    assert "No recalls match these filters this week." in html and "Clear the filters" in html
    for recall in Recall.objects.filter(patient=due.cy, is_current=True):
        recalls.set_state(due.actor("front_desk"), recall, "not_due", "pregnant")
    assert "Nobody is due this week with a recall still to act on." in (
        client.get(URL, {"tab": "week"}).content.decode()
    )


def test_roles_scope_and_login(due):
    recall = Recall.objects.get(patient=due.cy, is_current=True)
    state_url = reverse("scheduling:recall_state", args=[recall.pk])
    auditor = due.client("auditor")
    seen = auditor.get(URL, {"tab": "week"})
    assert seen.status_code == 200 and "Cy Second" in seen.content.decode()
    assert "Mark contacted" not in seen.content.decode() and ">Book<" not in (seen.content.decode())
    assert auditor.post(state_url, {"action": "contacted"}).status_code == 403
    assert due.client("outsider").post(state_url, {"action": "contacted"}).status_code == 404
    anonymous = due.client("owner")
    anonymous.logout()
    assert anonymous.get(URL).status_code == 302
    for role in ("owner", "prescriber", "injector", "front_desk"):
        assert "Mark contacted" in due.client(role).get(URL).content.decode()
    recall.refresh_from_db()
    assert recall.state == RecallState.OPEN


def test_actions_change_the_state_with_reasons_and_errors_beside_the_row(due):
    recall = Recall.objects.get(patient=due.cy, is_current=True)
    client = due.client("front_desk")
    state_url = reverse("scheduling:recall_state", args=[recall.pk])
    back = f"{URL}?tab=week"
    response = client.post(state_url, {"action": "contacted", "reason": "", "next": back})
    assert response.status_code == 302 and response["Location"] == back
    recall.refresh_from_db()
    assert recall.state == RecallState.CONTACTED
    page = client.get(back).content.decode()
    assert "Cy Second, Chronic migraine: marked contacted." in page
    refused = client.post(state_url, {"action": "declined", "reason": "", "next": back})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert recalls.REASON_PROMPTS["declined"].replace("'", "&#x27;") in html
    assert re.search(r'<details class="recall-do" open>\s*<summary>Declined</summary>', html)
    assert rows(refused) == [f"Cy Second · Chronic migraine · {d(ago(-4))}"]  # still week tab
    recall.refresh_from_db()
    assert recall.state == RecallState.CONTACTED
    client.post(state_url, {"action": "not_due", "reason": "pregnant", "next": back})
    recall.refresh_from_db()
    assert (recall.state, recall.state_reason) == (RecallState.NOT_DUE, "pregnant")
    client.post(state_url, {"action": "reopen", "next": "https://evil.example/"})
    recall.refresh_from_db()
    assert recall.state == RecallState.OPEN
    # A foreign "next" never redirects off the site.
    response = client.post(state_url, {"action": "contacted", "next": "https://evil.example/"})
    assert response["Location"] == URL


def test_a_booked_recall_links_its_appointment(due):
    recall = Recall.objects.get(patient=due.cy, is_current=True)
    monday = TODAY + timedelta(days=7 - TODAY.weekday())
    appointment = booking.book(
        due.actor("front_desk"),
        patient=due.cy,
        clinic=due.clinic,
        practitioner=due.users["injector"],
        starts_at=datetime.combine(monday, time(9, 30)),
        kind=AppointmentType.MIGRAINE_CYCLE,
        recall=recall,
    )
    html = due.client("front_desk").get(URL, {"tab": "week", "state": "booked"}).content.decode()
    link = reverse("scheduling:appointment", args=[appointment.pk])
    assert f'<a href="{link}">for {d(monday)} 09:30</a>' in html


def test_the_list_is_paginated(world):
    patients = [new_patient(world, f"P{n:02d}", "Many") for n in range(53)]
    Recall.objects.bulk_create(
        Recall(
            organization=world.org,
            patient=p,
            clinic=world.clinic,
            indication="chronic-migraine",
            kind="retreatment",
            product_id="botox",
            basis_on=ago(100),
            due_on=ago(16),
            earliest_on=ago(16),
        )
        for p in patients
    )
    client = world.client("front_desk")
    first = client.get(URL)
    assert len(rows(first)) == 50
    html = first.content.decode()
    assert "Page 1 of 2" in html and f"{URL}?tab=overdue&amp;page=2" in html
    second = client.get(URL, {"page": 2})
    assert len(rows(second)) == 3
    assert client.get(URL, {"page": "x"}).status_code == 200
    assert len(rows(client.get(URL, {"page": 99}))) == 3  # past the end: the last page


# --- the cycle planner -----------------------------------------------------------------------


def last_monday() -> int:
    return TODAY.weekday() or 7


@pytest.fixture
def migraine(world):
    consent_from(world, 200)
    world.session = signed(world, "chronic-migraine", "botox", days_ago=last_monday())
    return world


def test_the_planner_proposes_four_cycles_and_books_them(migraine):
    world = migraine
    url = reverse("scheduling:cycles", args=[world.patient.pk])
    client = world.client("front_desk")
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    days = [world.session.treated_on + timedelta(days=84 * n) for n in range(1, 5)]
    for n, day in enumerate(days, start=1):
        assert f"Cycle {n}: {day:%A} {d(day)}, 10:00-10:45" in html
    assert "Book all 4 cycles" in html
    form = {
        "clinic": world.clinic.pk,
        "practitioner": world.users["injector"].pk,
        "at": "10:00",
        "count": 4,
        "minutes": 45,
        "starts": [f"{day:%Y-%m-%d}T10:00" for day in days],
    }
    response = client.post(reverse("scheduling:cycles_book", args=[world.patient.pk]), form)
    assert response.status_code == 302
    booked = list(Appointment.objects.filter(kind="migraine_cycle").order_by("starts_at"))
    assert len(booked) == 4 and len({a.series for a in booked}) == 1
    after = client.get(response["Location"]).content.decode()
    assert f"4 migraine cycles booked for Ada Lovelace: {d(days[0])} 10:00" in after
    assert after.count("data-booked") == 4
    # Planning again continues after the last booked cycle.
    assert f"Cycle 1: {days[3] + timedelta(days=84):%A} {d(days[3] + timedelta(days=84))}" in after


def test_a_slot_taken_meanwhile_books_nothing_and_the_page_says_which(migraine):
    world = migraine
    days = [world.session.treated_on + timedelta(days=84 * n) for n in range(1, 3)]
    booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=datetime.combine(days[1], time(10, 0)),
        kind=AppointmentType.CONSULTATION,
    )
    form = {
        "clinic": world.clinic.pk,
        "practitioner": world.users["injector"].pk,
        "at": "10:00",
        "count": 2,
        "minutes": 45,
        "starts": [f"{day:%Y-%m-%d}T10:00" for day in days],
    }
    client = world.client("front_desk")
    response = client.post(reverse("scheduling:cycles_book", args=[world.patient.pk]), form)
    assert response.status_code == 409
    html = response.content.decode()
    assert f"Nothing was booked: cycle 2 on {d(days[1])} at 10:00 cannot be booked." in html
    assert not Appointment.objects.filter(kind="migraine_cycle").exists()
    # The new plan already goes round it.
    assert f"Cycle 2: {days[1] + timedelta(days=1):%A} {d(days[1] + timedelta(days=1))}" in html


def test_planner_roles_scope_bad_input_and_no_treatment(migraine, world):
    url = reverse("scheduling:cycles", args=[world.patient.pk])
    book_url = reverse("scheduling:cycles_book", args=[world.patient.pk])
    auditor = world.client("auditor").get(url)
    assert auditor.status_code == 200 and "Book all" not in auditor.content.decode()
    assert world.client("auditor").post(book_url, {}).status_code == 403
    assert world.client("outsider").get(url).status_code == 404
    assert world.client("outsider").post(book_url, {}).status_code == 404
    bad = world.client("front_desk").get(url, {"at": "25:99", "count": "12"})
    html = bad.content.decode()
    assert "Enter the time as HH:MM." in html and "Plan between 1 and 8 cycles." in html
    assert "Book all" not in html
    early = world.client("front_desk").get(
        url, {"first_on": f"{world.session.treated_on + timedelta(days=10):%Y-%m-%d}"}
    )
    assert "The first cycle cannot be before" in early.content.decode()
    cy = new_patient(world, "Cy", "Second")
    none = world.client("front_desk").get(reverse("scheduling:cycles", args=[cy.pk]))
    assert none.status_code == 200
    assert "Cy Second has no signed chronic migraine treatment yet" in none.content.decode()


def test_the_signed_migraine_session_links_to_the_planner(migraine, world):
    page = world.client("front_desk").get(reverse("charting:session", args=[world.session.pk]))
    planner = reverse("scheduling:cycles", args=[world.patient.pk])
    # Front desk cannot see sessions; a clinician can, and sees the link.
    assert page.status_code == 403
    html = (
        world.client("injector")
        .get(reverse("charting:session", args=[world.session.pk]))
        .content.decode()
    )
    assert f'<a class="button" href="{planner}">Plan the next cycles</a>' in html
    frown = signed(world, days_ago=2)
    other = world.client("injector").get(reverse("charting:session", args=[frown.pk]))
    assert "Plan the next cycles" not in other.content.decode()
