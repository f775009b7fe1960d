"""The comparison with the previous session in a real Chromium at 1024x768 and 768x1024."""

import pytest
from playwright.sync_api import expect

from glabella.charting.tests.test_record import signed_pair
from glabella.conftest import PASSWORD
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def test_two_signed_sessions_side_by_side_with_the_difference_per_area(
    live_server, live_world, page
):
    earlier, later = signed_pair(live_world)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/charting/{later.pk}/compare/")

    expect(page.get_by_role("heading", name="Compare with the previous treatment")).to_be_visible()
    expect(page.get_by_role("heading", name="This session", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Previous session", exact=True)).to_be_visible()
    expect(page.get_by_text("100 days apart")).to_be_visible()

    table = page.locator("table.compare-table")
    expect(table.get_by_role("row", name="Glabella 22 U 20 U +2 U")).to_be_visible()
    expect(table.get_by_role("row", name="Forehead 4 U — +4 U")).to_be_visible()
    expect(table.get_by_role("row", name="Session total 26 U 20 U +6 U")).to_be_visible()

    # One diagram, three times: this session, the previous one, and the overlay.
    figures = page.locator("figure.compare-figure")
    expect(figures).to_have_count(3)
    for name in ("This session, ", "Previous session, ", "Both sessions on one drawing: "):
        expect(page.locator(f'svg[aria-label^="{name}"]')).to_have_count(1)
    expect(figures.nth(0).locator("g.point")).to_have_count(6)
    expect(figures.nth(1).locator("g.point")).to_have_count(5)
    expect(figures.nth(2).locator("circle.compare-point")).to_have_count(5)

    # The two drawings sit side by side on a landscape tablet and stack in portrait.
    first, second = figures.nth(0).bounding_box(), figures.nth(1).bounding_box()
    if page.viewport_name == "landscape":
        assert abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"] + first["width"]
    else:
        assert second["y"] >= first["y"] + first["height"]
    shot(page, "compare")
    assert_fits_and_touchable(page)
    # The table fits too: no column hidden behind a sideways scroll inside it.
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")

    # The printed record of either session is one tap away.
    expect(page.get_by_role("link", name="This record (PDF)")).to_have_attribute(
        "href", f"/charting/{later.pk}/record.pdf"
    )
    expect(page.get_by_role("link", name="Previous record (PDF)")).to_have_attribute(
        "href", f"/charting/{earlier.pk}/record.pdf"
    )

    # The earlier session has nothing before it: a plain empty state.
    page.goto(f"{live_server.url}/charting/{earlier.pk}/compare/")
    expect(page.get_by_role("heading", name="Nothing to compare with yet")).to_be_visible()
    expect(page.locator("table.compare-table")).to_have_count(0)
    shot(page, "compare-empty")
    assert_fits_and_touchable(page)


def test_different_products_say_the_units_cannot_be_compared(live_server, live_world, page):
    _, later = signed_pair(live_world, previous_product="dysport")
    login(page, live_server.url, "prescriber@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/charting/{later.pk}/compare/")
    expect(page.get_by_text("The units cannot be compared.")).to_be_visible()
    table = page.locator("table.compare-table")
    expect(table.get_by_role("columnheader", name="Difference")).to_have_count(0)
    expect(table.get_by_role("row", name="Glabella 22 U 50 U")).to_be_visible()
    shot(page, "compare-different-products")
    assert_fits_and_touchable(page)
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")
