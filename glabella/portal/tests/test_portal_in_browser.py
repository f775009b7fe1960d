"""The issue's browser test: a patient fills a diary day on a phone through their link, and the
clinician sees it counted on the "Headache days per month" chart. Also the staff page's QR code
on a tablet."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.outcomes.models import DiaryEntry, Via
from glabella.portal import services
from glabella.portal.models import PatientLink
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}
TABLET = {"width": 1024, "height": 768}


def _context(browser, viewport):
    context = browser.new_context(viewport=viewport, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def test_a_diary_day_filled_on_the_phone_shows_on_the_clinicians_plot(
    live_server, live_world, browser
):
    world = live_world
    new = services.show_link(world.actor("front_desk"), world.patient)
    today = services.today_for(world.patient)

    phone_context, phone = _context(browser, PHONE)
    try:
        phone.goto(live_server.url + new.path)
        expect(phone.get_by_role("heading", name="Hello Ada")).to_be_visible()
        assert_fits_and_touchable(phone)
        phone.viewport_name = "phone"  # type: ignore[attr-defined]
        shot(phone, "portal-home")

        phone.get_by_role("link", name="Diary").click()
        expect(phone.get_by_role("heading", name="Headache diary")).to_be_visible()
        assert phone.get_by_label("Day").input_value() == today.isoformat()
        # On a day without headache the headache details are hidden.
        phone.get_by_label("No", exact=True).check()
        expect(phone.get_by_label("For how many hours?")).to_be_hidden()
        phone.get_by_label("Yes", exact=True).check()
        expect(phone.get_by_label("For how many hours?")).to_be_visible()
        phone.get_by_label("It was a migraine", exact=False).check()
        phone.get_by_label("Severe").check()
        phone.get_by_label("For how many hours?").fill("5")
        phone.get_by_label("Triptan", exact=False).check()
        assert_fits_and_touchable(phone)
        phone.get_by_role("button", name="Save this day").click()
        expect(phone.locator("ul.messages")).to_contain_text(f"Saved: {today:%d/%m/%Y}")
        expect(phone.locator("table.portal-days tbody tr").first).to_contain_text(
            "Yes, migraine, severe, 5 h"
        )
        assert_fits_and_touchable(phone)
        shot(phone, "portal-diary")
        # The referrer policy keeps the secret out of Referer headers.
        assert phone.evaluate("document.referrer") == ""

        phone.goto(live_server.url + reverse("portal:questionnaire", args=[new.token, "hit-6"]))
        expect(phone.get_by_role("heading", name="HIT-6 (Headache Impact Test)")).to_be_visible()
        assert_fits_and_touchable(phone)
    finally:
        phone_context.close()

    entry = DiaryEntry.objects.get()
    assert (entry.day, entry.headache, entry.via) == (today, True, Via.PORTAL)

    tablet_context, tablet = _context(browser, TABLET)
    try:
        tablet.viewport_name = "tablet"  # type: ignore[attr-defined]
        login(tablet, live_server.url, "injector@alpha.test", PASSWORD)
        tablet.goto(live_server.url + reverse("outcomes:patient", args=[world.patient.pk]))
        chart = tablet.locator("figure.chart").filter(
            has=tablet.locator("figcaption", has_text="Headache days per month")
        )
        expect(chart).to_have_count(1)
        headers = [h.strip() for h in chart.locator("thead th").all_inner_texts()]
        column = headers.index("Headache days")
        row = chart.locator("tbody tr").filter(has=tablet.locator("th", has_text=f"{today:%B %Y}"))
        expect(row).to_have_count(1)
        cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
        assert cells[0] == f"{today:%B %Y}"
        assert cells[column] == "1"

        # The staff page: show the QR code for the patient to scan.
        tablet.goto(live_server.url + reverse("portal:manage", args=[world.patient.pk]))
        tablet.get_by_role("button", name="Show a QR code to scan").click()
        expect(tablet.locator("svg.portal-qr")).to_be_visible()
        assert_fits_and_touchable(tablet)
        shot(tablet, "portal-qr")
    finally:
        tablet_context.close()
    assert PatientLink.objects.filter(patient=world.patient).count() == 2
