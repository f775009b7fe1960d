"""Break-glass in a real Chromium (1024x768 and 768x1024): the front desk opens Ada's
emergency summary from her page, and ends it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.patients.models import BreakGlass
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser

REASON = "Ada fainted at the desk, the paramedics ask what was injected"


def confirm_if_asked(page, email: str) -> bool:
    """On the "Confirm it's you" page: type the password (and the app's code); True if asked."""
    if "/accounts/confirm/" not in page.url:
        return False
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    assert_fits_and_touchable(page)
    page.get_by_label("Your password").fill(PASSWORD)
    if page.get_by_label("Code from your authenticator app").count():
        from glabella.accounts.models import User
        from glabella.conftest import totp_code

        page.get_by_label("Code from your authenticator app").fill(
            totp_code(User.objects.get(email=email))
        )
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    return True


def test_front_desk_breaks_glass_on_ada_and_sees_the_summary(live_server, live_world, page):
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/patients/{live_world.patient.pk}/")
    # The front desk sees no clinical data on the patient's page...
    expect(page.get_by_role("heading", name="Medical history")).to_have_count(0)
    page.get_by_role("link", name="Break glass (emergency)").click()
    expect(page.get_by_role("heading", name="Break glass (emergency)")).to_be_visible()
    assert_fits_and_touchable(page)
    page.get_by_role("button", name="Break glass").click()  # no reason yet
    expect(page.get_by_text("This field is required.")).to_be_visible()
    page.get_by_label("Why do you need it now?").fill(REASON)
    with page.expect_navigation():
        page.get_by_role("button", name="Break glass").click()
    if confirm_if_asked(page, "front_desk@alpha.test"):
        # Back on the form: the reason is not replayed; press again.
        expect(page.get_by_text("then press Break glass again")).to_be_visible()
        page.get_by_label("Why do you need it now?").fill(REASON)
        with page.expect_navigation():
            page.get_by_role("button", name="Break glass").click()
    expect(page).to_have_url(re.compile(rf"/patients/{live_world.patient.pk}/emergency/$"))
    expect(page.get_by_role("heading", name="Emergency summary: Ada Lovelace")).to_be_visible()
    expect(page.locator("#emergency-time-left")).to_contain_text("30 minutes left")
    expect(page.get_by_text(REASON)).to_be_visible()
    expect(page.get_by_role("heading", name="Allergies")).to_be_visible()
    expect(page.get_by_role("heading", name="Last treatments here")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "emergency-summary")
    assert BreakGlass.objects.get().reason == REASON

    page.get_by_role("button", name="End now").click()
    expect(page.get_by_text("Emergency access to LOVELACE, Ada's record ended.")).to_be_visible()
    page.goto(f"{live_server.url}/patients/{live_world.patient.pk}/emergency/")
    expect(page.locator("#emergency-ended")).to_contain_text(
        "Break glass again if you still need it."
    )
