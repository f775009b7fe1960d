"""The recall worklist and the migraine cycle planner in a real Chromium, 1024x768 and 768x1024."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.patients import services as patient_services
from glabella.scheduling.models import Appointment, Recall, RecallState
from glabella.scheduling.tests.recall_helpers import consent_from, signed
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.today_from_the_clock]

TODAY = date.today()  # again as each test starts: see steady_today()


def test_the_worklist_on_a_tablet(live_server, live_world, page):
    world = live_world
    consent_from(world, 200)
    signed(world, "chronic-migraine", "botox", days_ago=90)  # overdue by 6 days
    cy = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Cy", "family_name": "Second", "date_of_birth": date(1980, 1, 2)},
    )
    consent_from(world, 200, patient=cy)
    signed(world, "chronic-migraine", "botox", days_ago=80, patient=cy)  # due in 4 days

    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/scheduling/recalls/")
    expect(page.get_by_role("heading", name="Recalls", exact=True)).to_be_visible()
    tabs = page.get_by_role("navigation", name="When due")
    expect(tabs.get_by_role("link", name="Overdue 1")).to_have_attribute("aria-current", "page")
    expect(tabs.get_by_role("link", name="Due this week 1")).to_be_visible()
    row = page.locator("li.recall-row")
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name="Ada Lovelace")).to_be_visible()
    expect(row.get_by_text(f"{TODAY - timedelta(days=6):%d/%m/%Y}").first).to_be_visible()
    expect(row.get_by_text("No reminder consent")).to_be_visible()
    shot(page, "recalls-overdue")
    assert_fits_and_touchable(page)

    # Declining needs a reason: the error shows beside the row, nothing changes.
    row.locator("summary", has_text="Declined").click()
    row.get_by_role("button", name="Mark declined").click()
    expect(
        page.get_by_role("alert").filter(has_text="Say why the patient declined")
    ).to_be_visible()
    assert Recall.objects.get(patient=world.patient, is_current=True).state == RecallState.OPEN
    assert_fits_and_touchable(page)

    row = page.locator("li.recall-row")
    row.locator("summary", has_text="Contacted").click()
    row.get_by_label("Note (optional)").fill("left a voicemail")
    row.get_by_role("button", name="Mark contacted").click()
    expect(page.get_by_text("Ada Lovelace, Chronic migraine: marked contacted.")).to_be_visible()
    expect(page.locator("li.recall-row .recall-state")).to_have_text("Contacted")
    expect(page.get_by_text("left a voicemail")).to_be_visible()

    page.get_by_role("link", name="Due this week 1").click()
    expect(page.locator("li.recall-row").get_by_role("link", name="Cy Second")).to_be_visible()
    page.get_by_label("Indication").select_option("forehead-lines")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No recalls match these filters this week.")).to_be_visible()
    shot(page, "recalls-empty")
    assert_fits_and_touchable(page)


def test_the_cycle_planner_on_a_tablet(live_server, live_world, page):
    world = live_world
    consent_from(world, 200)
    session = signed(world, "chronic-migraine", "botox", days_ago=TODAY.weekday() or 7)

    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/charting/{session.pk}/")
    page.get_by_role("link", name="Plan the next cycles").click()
    expect(page.get_by_role("heading", name="Plan the next migraine cycles")).to_be_visible()
    cycles = page.locator("[data-proposals] > li")
    expect(cycles).to_have_count(4)
    first = session.treated_on + timedelta(days=84)
    expect(cycles.nth(0)).to_contain_text(f"Cycle 1: {first:%A} {first:%d/%m/%Y}, 10:00-10:45")
    shot(page, "cycles-plan")
    assert_fits_and_touchable(page)

    page.get_by_label("Time").fill("11:30")
    page.get_by_role("spinbutton", name="Cycles").fill("3")
    page.get_by_role("button", name="Plan again").click()
    expect(cycles).to_have_count(3)
    expect(cycles.nth(0)).to_contain_text("11:30-12:15")
    page.get_by_role("button", name="Book all 3 cycles").click()
    expect(page.get_by_text("3 migraine cycles booked for Ada Lovelace")).to_be_visible()
    expect(page.locator("[data-booked]")).to_have_count(3)
    booked = Appointment.objects.filter(patient=world.patient, kind="migraine_cycle")
    assert booked.count() == 3 and len({a.series for a in booked}) == 1
    shot(page, "cycles-booked")
    assert_fits_and_touchable(page)
