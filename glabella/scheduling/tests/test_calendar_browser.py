"""The calendar in a real Chromium at 1024x768 and 768x1024: the day view, booking from a free
time, dragging an appointment (and a refused drag snapping back with the reason), changing
the status and undoing it; every page fits without sideways scrolling and its buttons, free
times and appointments are at least 44 px."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.scheduling import booking
from glabella.scheduling.models import Appointment
from glabella.scheduling.tests.conftest import next_monday_at
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def _book(world, when, who="prescriber", **kw):
    return booking.book(
        world.actor("front_desk"),
        patient=kw.pop("patient", world.patient),
        clinic=world.clinic,
        practitioner=world.users[who],
        starts_at=when,
        kind=kw.pop("kind", "treatment"),
        **kw,
    )


def _day(page, base, when):
    page.goto(f"{base}/scheduling/day/?date={when.date().isoformat()}")
    expect(page.locator("#calendar")).to_be_visible()


def _look(page, name):
    assert_fits_and_touchable(page)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, name)


def _column(page, world, role):
    return page.locator(f'.cal-col[data-practitioner="{world.users[role].pk}"]')


def _slot(page, world, role, when):
    iso = f"{when.date().isoformat()}T{when:%H:%M}"
    return _column(page, world, role).locator(f'.slot[data-starts-at="{iso}"]')


def _small_targets(page, selector):
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)]
              .map(e => e.getBoundingClientRect())
              .filter(r => r.height < 43.5 || r.width < 43.5).length""",
        selector,
    )


def _on_page(locator):
    """Where an element is on the page (not on the screen, which scrolls)."""
    return locator.evaluate(
        "e => { const r = e.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY]; }"
    )


def _drag(page, block, target):
    """Press near the block's top, move in steps, release with its top on TARGET's top
    (the page first scrolled so that the block sits just under the column heads)."""
    top = block.evaluate("e => e.getBoundingClientRect().top + window.scrollY")
    page.evaluate(f"window.scrollTo(0, {top} - 120)")
    box = block.bounding_box()
    goal = target.bounding_box()
    x0, y0 = box["x"] + box["width"] / 2, box["y"] + 10
    x1, y1 = goal["x"] + goal["width"] / 2, goal["y"] + 10
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3, steps=4)
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()


def test_day_view_renders_fits_and_every_slot_is_a_touch_target(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    arrived = _book(world, monday, kind="treatment")
    booking.set_status(world.actor("front_desk"), arrived, "arrived")
    _book(world, monday + timedelta(hours=1), who="injector", kind="review", minutes=15)
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    _day(page, live_server.url, monday)

    expect(page.get_by_role("heading", level=1)).to_contain_text(monday.strftime("%d/%m/%Y"))
    expect(page.locator(".cal-colhead")).to_have_count(2)
    block = page.locator(f"#appt-{arrived.pk}")
    expect(block).to_contain_text("Ada Lovelace")
    expect(block).to_contain_text("10:00–10:30")  # noqa: RUF001
    expect(block).to_contain_text("Arrived")
    expect(block).to_have_class(re.compile(r"\bst-arrived\b"))
    # The block sits beside the 10:00 label and is two rows high.
    label = page.locator(".cal-times span", has_text="10:00")
    assert abs(block.bounding_box()["y"] - label.bounding_box()["y"]) < 4
    assert 80 <= block.bounding_box()["height"] <= 90
    assert _small_targets(page, ".slot, .appt") == 0
    _look(page, "calendar-day")

    # A closed day says so.
    _day(page, live_server.url, monday + timedelta(days=6))
    expect(page.get_by_text("Alpha Central is closed on Sundays.")).to_be_visible()
    _look(page, "calendar-closed-day")

    # The week: a compact list per day.
    page.get_by_role("link", name="Week", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Week of")
    expect(page.locator(".week-day")).to_have_count(7)
    expect(page.locator(".week-list li").first).to_contain_text("Ada Lovelace")
    _look(page, "calendar-week")


def test_book_from_an_empty_slot(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    _day(page, live_server.url, monday)
    eleven = monday.replace(hour=11, minute=15)
    _slot(page, world, "injector", eleven).click()

    expect(page.get_by_role("heading", name="Book an appointment")).to_be_visible()
    expect(page.get_by_label("Date")).to_have_value(monday.date().isoformat())
    expect(page.get_by_label("Time")).to_have_value("11:15")
    expect(page.get_by_label("Practitioner")).to_have_value(str(world.users["injector"].pk))
    # Search as you type, pick the patient without leaving the page.
    page.get_by_label("Find the patient").press_sequentially("love", delay=30)
    pick = page.locator("a[data-pick-patient]", has_text="Ada Lovelace")
    expect(pick).to_be_visible()
    _look(page, "calendar-book-search")
    pick.click()
    expect(page.locator("[data-patient-chosen]")).to_contain_text("Ada Lovelace")
    expect(page.locator("[data-patient-search]")).to_be_hidden()
    # The type fills in its usual length.
    page.get_by_label("Type").select_option("review")
    expect(page.get_by_label("Length (minutes)")).to_have_value("15")
    _look(page, "calendar-book-form")
    page.get_by_role("button", name="Book", exact=True).click()

    expect(page.get_by_text("Booked: Ada Lovelace")).to_be_visible()
    appt = Appointment.objects.get()
    assert appt.practitioner == world.users["injector"] and appt.kind == "review"
    assert booking.local(appt.starts_at, world.clinic) == eleven
    assert appt.ends_at - appt.starts_at == timedelta(minutes=15)
    block = _column(page, world, "injector").locator(f"#appt-{appt.pk}")
    expect(block).to_contain_text("11:15–11:30")  # noqa: RUF001
    expect(block).to_have_class(re.compile(r"\bfocus\b"))


def test_book_errors_are_shown_and_nothing_is_booked(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/scheduling/book/?patient={world.patient.pk}")
    page.get_by_label("Practitioner").select_option(str(world.users["prescriber"].pk))
    page.get_by_label("Date").fill(monday.date().isoformat())
    page.get_by_label("Time").fill("07:30")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_text("Nothing was booked.")).to_be_visible()
    expect(page.get_by_text(re.compile("outside Alpha Central's opening hours"))).to_be_visible()
    _look(page, "calendar-book-error")
    assert not Appointment.objects.exists()


def test_drag_to_move_and_a_refused_drag_snaps_back(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    ada = _book(world, monday)
    blocker = _book(
        world, monday.replace(hour=14), who="injector", patient=_grace(world), minutes=60
    )
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    _day(page, live_server.url, monday)

    # Drag Ada from the prescriber's 10:00 to the injector's 12:00.
    block = page.locator(f"#appt-{ada.pk}")
    _drag(page, block, _slot(page, world, "injector", monday.replace(hour=12)))
    status = page.locator("#cal-status")
    expect(status).to_contain_text("Moved: Ada Lovelace")
    expect(status).to_contain_text("12:00-12:30")
    moved = _column(page, world, "injector").locator(f"#appt-{ada.pk}")
    expect(moved).to_contain_text("12:00–12:30")  # noqa: RUF001
    ada.refresh_from_db()
    assert ada.practitioner == world.users["injector"] and ada.version == 2
    assert booking.local(ada.starts_at, world.clinic).hour == 12
    _look(page, "calendar-moved")

    # Onto Grace's 14:00-15:00 with the same injector: refused, snaps back, says why.
    noon = _slot(page, world, "injector", monday.replace(hour=12))
    _drag(page, moved, _slot(page, world, "injector", monday.replace(hour=14, minute=15)))
    alert = page.locator("#cal-alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("already has an appointment")
    expect(moved).not_to_have_class(re.compile(r"\b(dragging|pending)\b"))
    # Back in its place: level with the 12:00 slot of its column, nothing left of the drag.
    assert abs(_on_page(moved)[1] - _on_page(noon)[1]) < 2
    assert abs(_on_page(moved)[0] - _on_page(noon)[0]) < 5
    assert moved.evaluate("e => e.style.transform") == ""
    ada.refresh_from_db()
    assert booking.local(ada.starts_at, world.clinic).hour == 12 and ada.version == 2
    blocker.refresh_from_db()
    assert blocker.version == 1
    _look(page, "calendar-refused-move")

    # A press without a drag is a tap: it opens the appointment.
    moved.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ada Lovelace")


def test_drag_on_a_stale_page_is_refused_and_the_calendar_refreshes(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    ada = _book(world, monday)
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    _day(page, live_server.url, monday)
    # Someone else moves her meanwhile, from another tablet.
    booking.change(world.actor("prescriber"), ada, 1, starts_at=monday.replace(hour=16))
    _drag(
        page,
        page.locator(f"#appt-{ada.pk}"),
        _slot(page, world, "prescriber", monday.replace(hour=12)),
    )
    expect(page.locator("#cal-alert")).to_contain_text("Someone else changed this appointment")
    expect(page.locator(f"#appt-{ada.pk}")).to_contain_text("16:00–16:30")  # noqa: RUF001
    ada.refresh_from_db()
    assert booking.local(ada.starts_at, world.clinic).hour == 16


def test_status_change_and_undo(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    ada = _book(world, monday)
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    _day(page, live_server.url, monday)
    page.locator(f"#appt-{ada.pk}").click()

    expect(page.locator(".status-chip")).to_have_text("Booked")
    _look(page, "calendar-appointment")
    page.get_by_role("button", name="Arrived", exact=True).click()
    expect(page.get_by_text("Ada Lovelace has arrived.")).to_be_visible()
    expect(page.locator(".status-chip")).to_have_text("Arrived")
    _look(page, "calendar-appointment-arrived")
    page.get_by_role("button", name="Undo: not arrived yet").click()
    expect(page.locator(".status-chip")).to_have_text("Booked")
    page.get_by_role("button", name="Arrived", exact=True).click()
    expect(page.locator(".status-chip")).to_have_text("Arrived")
    expect(page.locator(".history li")).to_have_count(4)

    # Back on the day, the arrival is highlighted.
    page.get_by_role("link", name="← Back to the calendar").click()
    expect(page.locator(f"#appt-{ada.pk}")).to_have_class(re.compile(r"\bst-arrived\b"))

    # Cancel with a reason (without one, the page asks for it).
    page.locator(f"#appt-{ada.pk}").click()
    page.get_by_text("Cancel the appointment…").click()
    page.get_by_role("button", name="Cancel the appointment").click()
    expect(page.get_by_text("Say why the appointment is cancelled.")).to_be_visible()
    page.get_by_label("Why is it cancelled?").fill("Patient unwell")
    page.get_by_role("button", name="Cancel the appointment").click()
    expect(page.locator(".status-chip")).to_have_text("Cancelled")
    expect(page.get_by_text("A cancellation is final.")).to_be_visible()
    ada.refresh_from_db()
    assert ada.status == "cancelled" and ada.status_reason == "Patient unwell"


def test_move_by_editing_the_time_without_dragging(live_server, live_world, page):
    world = live_world
    monday = next_monday_at(10)
    ada = _book(world, monday, minutes=40)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/scheduling/appointment/{ada.pk}/")
    page.get_by_label("Time").fill("15:30")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Saved: Ada Lovelace")).to_be_visible()
    expect(page.get_by_text(re.compile(r"15:30–16:10"))).to_be_visible()  # noqa: RUF001
    ada.refresh_from_db()
    assert ada.ends_at - ada.starts_at == timedelta(minutes=40)


def test_clinic_settings_page_fits(live_server, live_world, page):
    login(page, live_server.url, "owner@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/scheduling/clinic-settings/")
    page.get_by_label("New room").fill("Room 1")
    page.get_by_role("button", name="Add room").click()
    expect(page.get_by_text("Room 1 added.")).to_be_visible()
    page.get_by_label("Saturday").fill("9-12, 13-15")
    page.get_by_role("button", name="Save opening hours").click()
    expect(page.get_by_text("Opening hours saved (Saturday).")).to_be_visible()
    expect(page.get_by_label("Saturday")).to_have_value("09:00-12:00, 13:00-15:00")
    _look(page, "calendar-clinic-settings")


def _grace(world):
    from datetime import date

    from glabella.patients import services as patient_services

    return patient_services.create_patient(
        world.actor("front_desk"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1980, 1, 2)},
    )
