"""Charting from a vial in a real Chromium at 1024x768 and 768x1024: choose the vial in the
sticky summary, see the units left go down, a refused draw beside the diagram, sign."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from glabella.charting.models import Status, TreatmentSession
from glabella.charting.tests.test_charting_in_browser import _consent, _region, _screen, _shot
from glabella.conftest import PASSWORD
from glabella.inventory import services as stock
from glabella.inventory.models import Vial
from glabella.inventory.tests.helpers import receive_botox_cosmetic
from glabella.web.tests.browser import assert_fits_and_touchable, login

pytestmark = pytest.mark.browser


def _left(page):
    return page.locator("[data-vial-left]")


def test_chart_a_glabellar_session_from_a_vial_and_sign_it(live_server, live_world, page):
    world = live_world
    _consent(world, "cosmetic")
    receipt = receive_botox_cosmetic(world, lot="C1234AB", count=2)  # from a GS1 DataMatrix
    vial = stock.reconstitute(world.actor("injector"), receipt.vials[0], "1.25")  # 50 U
    timed_out = stock.reconstitute(world.actor("injector"), receipt.vials[1], "1.25")
    Vial.objects.filter(pk=timed_out.pk).update(use_by=timezone.now() - timedelta(minutes=3))
    login(page, live_server.url, "injector@alpha.test", PASSWORD)

    # 1. Start from the glabellar template: 5 x 4 U laid out, waiting for a vial.
    page.goto(f"{live_server.url}/charting/patient/{world.patient.pk}/new/")
    page.get_by_role("button", name=re.compile(r"Glabellar lines \(Botox Cosmetic")).click()
    expect(page.locator("[data-total]")).to_have_text("20 U")
    picker = page.locator("#vial-pick")
    expect(picker).to_contain_text("none chosen")
    expect(page.locator("#sign")).to_contain_text("Points 1 to 5 have no vial")
    # Only the vial that can be used is offered (not the one past its use-by time).
    choice = picker.get_by_role("button", name=re.compile(rf"Vial #{vial.pk} · lot C1234AB"))
    expect(choice).to_contain_text("50 U left · 23 h left")
    expect(picker.get_by_role("button", name=re.compile(rf"Vial #{timed_out.pk}\b"))).to_have_count(
        0
    )
    assert_fits_and_touchable(page)
    _shot(page, "charting-vial-choose")

    # 2. Choose it: the five points are drawn from it, 30 U left in the open vial.
    choice.click()
    expect(_left(page)).to_have_text("30 U")
    expect(page.locator("#ws-note")).to_contain_text("points 1 to 5 drawn from it, 30 U left")
    expect(page.locator("#row-1 .point-vial")).to_contain_text(f"#{vial.pk}")
    expect(page.locator("#row-1 .point-vial")).to_contain_text("lot C1234AB")
    expect(page.locator("#sign")).to_contain_text("Every point drawn from a vial")
    expect(page.locator("#vial-pick")).to_contain_text(f"Vial in use #{vial.pk}")
    vial_link = page.locator("#vial-pick .vial-now a")
    expect(vial_link).to_have_attribute("href", f"/inventory/vial/{vial.pk}/")
    assert_fits_and_touchable(page)
    _shot(page, "charting-vial-drawn")

    # 3. One more point with a tap: 26 U left.
    page.locator("[data-next-units='4']").click()
    x, y = _screen(page, *_region(page, "frontalis-r"))
    page.mouse.click(x, y)
    expect(page.locator("[data-total]")).to_have_text("24 U")
    expect(_left(page)).to_have_text("26 U")

    # 4. More than the vial holds: refused beside the diagram, nothing changes.
    page.get_by_role("link", name="Edit point 6").click()
    units = page.get_by_label("Units at point 6")
    units.fill("40")
    page.get_by_role("button", name="Save units").click()
    note = page.locator("#ws-note")
    expect(note).to_contain_text(f"Vial #{vial.pk} has 26 U left besides the 4 U already drawn")
    expect(note).to_contain_text("Nothing was saved.")
    expect(page.locator("[data-total]")).to_have_text("24 U")
    expect(_left(page)).to_have_text("26 U")
    assert_fits_and_touchable(page)
    _shot(page, "charting-vial-refused")

    # 5. Sign: the record lists the vial and lot of every point.
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator(".status-signed")).to_have_text("Signed")
    facts = page.locator(".record-facts")
    expect(facts).to_contain_text("C1234AB, expires")
    expect(facts).to_contain_text(f"vial #{vial.pk} (points 1 to 6)")
    expect(page.locator(".record-points .point-vial")).to_have_count(6)
    assert_fits_and_touchable(page)
    _shot(page, "charting-vial-signed")
    session = TreatmentSession.objects.get()
    assert session.status == Status.SIGNED
    assert stock.units_left(Vial.objects.get(pk=vial.pk)) == 26
