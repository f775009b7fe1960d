"""The calendar feed page in a real Chromium at 1024x768 and 768x1024: create a link, copy it,
read the feed, revoke it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.scheduling import booking
from glabella.scheduling.models import CalendarFeed
from glabella.scheduling.tests.conftest import next_monday_at
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def test_create_copy_read_and_revoke_a_feed_link(live_server, live_world, page):
    booking.book(
        live_world.actor("front_desk"),
        patient=live_world.patient,
        clinic=live_world.clinic,
        practitioner=live_world.users["prescriber"],
        starts_at=next_monday_at(10),
        kind="treatment",
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server.url, "prescriber@alpha.test", PASSWORD)
    page.get_by_role("link", name="Your calendar feed").click()
    expect(page.get_by_role("heading", name="Your calendar feed")).to_be_visible()
    expect(page.get_by_text("You have no feed link")).to_be_visible()
    assert_fits_and_touchable(page)

    page.get_by_role("button", name="Create feed link").click()
    expect(page.get_by_role("heading", name="Your new feed link")).to_be_visible()
    address = page.get_by_label("Feed address").input_value()
    assert address.startswith(f"{live_server.url}/scheduling/feed/") and address.endswith(".ics")
    page.get_by_role("button", name="Copy address").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == address
    assert_fits_and_touchable(page)
    shot(page, "feeds-created")

    feed = page.request.get(address)
    assert feed.status == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    assert "SUMMARY:Treatment \u2013 A. L." in feed.text()

    page.goto(f"{live_server.url}/scheduling/feeds/")
    expect(page.get_by_text("Your new feed link")).to_have_count(0)  # shown once only
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("ul.messages")).to_contain_text("Feed link revoked")
    shot(page, "feeds-revoked")
    assert page.request.get(address).status == 404
    assert CalendarFeed.objects.get().revoked_at is not None
