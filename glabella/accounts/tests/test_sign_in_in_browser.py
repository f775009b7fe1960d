"""Signing in, in a real Chromium at 1024x768 and 768x1024: the two-step code, setting up the
app, the idle warning and sign-out, and htmx after the session ended on the server."""

from __future__ import annotations

import re

import pyotp
import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from glabella.accounts import mfa
from glabella.accounts.models import TotpDevice
from glabella.conftest import PASSWORD, totp_code
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def test_sign_in_with_a_code_from_the_app(live_server, live_world, page):
    page.goto(f"{live_server.url}/patients/")
    page.get_by_label("E-mail").fill("injector@alpha.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    # No menu until the second step is passed.
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    assert_fits_and_touchable(page)
    shot(page, "two-step")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    page.get_by_label("Code").fill(totp_code(live_world.users["injector"]))
    page.get_by_role("button", name="Continue").click()
    # Where the user was going before signing in.
    expect(page).to_have_url(re.compile(r"/patients/$"))
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_set_up_the_app_on_first_sign_in(live_server, live_world, page):
    TotpDevice.objects.filter(user=live_world.users["prescriber"]).delete()
    login(page, live_server.url, "prescriber@alpha.test", PASSWORD)
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "two-step-setup")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("First code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes code")).to_have_count(10)
    expect(page.get_by_role("button", name="Print")).to_be_visible()  # the script ran
    assert_fits_and_touchable(page)
    shot(page, "recovery-codes")
    page.get_by_role("link", name=re.compile("I have kept them")).click()
    expect(page.get_by_role("heading", name="Alpha Central")).to_be_visible()
    assert mfa.has_device(live_world.users["prescriber"])


@pytest.mark.parametrize("page", ["portrait"], indirect=True)  # 768 px wide; it takes seconds
def test_idle_warning_then_sign_out_to_the_login_page(live_server, live_world, page, settings):
    settings.GLABELLA_IDLE_SECONDS = 6  # the warning 3 s before the end
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/patients/{live_world.patient.pk}/")
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    warning = page.locator("#idle-warning")
    expect(warning).to_be_visible(timeout=8_000)
    expect(warning).to_contain_text("You will be signed out in")
    expect(warning).to_contain_text("to protect patient data")
    assert_fits_and_touchable(page)
    shot(page, "idle-warning")
    # "Stay signed in" keeps the session (the server sees a request) and hides the warning.
    with page.expect_response(lambda r: "/accounts/still-here/" in r.url) as ping:
        page.get_by_role("button", name="Stay signed in").click()
    assert ping.value.status == 204
    expect(warning).to_be_hidden()
    # Left alone: signed out, on the sign-in page, the patient gone from the screen.
    expect(page).to_have_url(re.compile(r"/accounts/login/\?idle=1"), timeout=12_000)
    expect(page.locator("#idle-signed-out")).to_contain_text("signed out after")
    expect(page.get_by_text("Ada Lovelace")).to_have_count(0)
    # Signed out on the server too, and signing in goes back to the patient.
    assert page.request.get(f"{live_server.url}/accounts/still-here/").status == 401
    page.get_by_label("E-mail").fill("front_desk@alpha.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()


def test_htmx_after_the_session_ended_sends_the_whole_page_to_sign_in(
    live_server, live_world, page
):
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/patients/")
    Session.objects.all().delete()  # ended on the server (idle timeout elsewhere, sign-out)
    page.get_by_label("Find a patient").press_sequentially("lov", delay=30)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
