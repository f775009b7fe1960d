"""Taking a consent in a real Chromium at 1024x768 and 768x1024: read, sign, save."""

import math
import re

import pytest
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.consent import services
from glabella.consent.models import Consent
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def sign(page) -> None:
    """A signature with the mouse: a few loops across the box."""
    canvas = page.locator("canvas[data-signature-pad]")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(left + width * 0.12, top + height * 0.6)
    page.mouse.down()
    for step in range(60):
        t = step / 59
        x = left + width * (0.12 + 0.7 * t)
        y = top + height * (0.55 - 0.25 * math.sin(t * math.pi * 5))
        page.mouse.move(x, y, steps=2)
    page.mouse.up()


def test_take_a_consent_with_a_drawn_signature(live_server, live_world, page):
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/consent/patient/{live_world.patient.pk}/")
    expect(page.get_by_text("No consent has been recorded")).to_be_visible()
    shot(page, "consent-patient-empty")
    assert_fits_and_touchable(page)

    page.get_by_role("link", name="Take consent").first.click()
    expect(
        page.get_by_role(
            "heading", name="Consent to botulinum toxin treatment for lines and wrinkles"
        )
    ).to_be_visible()
    expect(page.get_by_text("Patient: Ada Lovelace, born 10/12/1985")).to_be_visible()
    expect(page.get_by_text("Form version 1")).to_be_visible()
    shot(page, "consent-take")
    assert_fits_and_touchable(page)

    # Saving before signing or ticking the box says what is missing and saves nothing.
    page.get_by_role("button", name="Save signed consent").click()
    expect(page.get_by_text("Ask the patient to sign in the box")).to_be_visible()
    expect(page.get_by_text("Tick this box once the patient has read")).to_be_visible()
    assert Consent.objects.count() == 0
    page.locator("canvas[data-signature-pad]").scroll_into_view_if_needed()
    shot(page, "consent-take-error")

    # Sign, change one's mind, sign again.
    sign(page)
    expect(page.get_by_text("Signed. Press Clear to start again.")).to_be_visible()
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("Cleared. The patient can sign again.")).to_be_visible()
    sign(page)
    expect(page.get_by_text("Ask the patient to sign in the box")).to_be_hidden()
    page.get_by_label("The patient has read this and had the chance to ask questions").check()
    expect(page.get_by_text("Tick this box once the patient has read")).to_be_hidden()
    page.locator("canvas[data-signature-pad]").scroll_into_view_if_needed()
    shot(page, "consent-take-signed")
    page.get_by_role("button", name="Save signed consent").click()

    expect(page.get_by_role("heading", name=re.compile("consent: Ada Lovelace"))).to_be_visible()
    expect(
        page.get_by_text("Form version 1 · the text exactly as the patient saw it")
    ).to_be_visible()
    expect(page.get_by_text("text unchanged since signing")).to_be_visible()
    signature = page.get_by_role("img", name=re.compile("Signature of Ada Lovelace"))
    expect(signature).to_be_visible()
    # decode() waits until the picture has loaded (a busy machine may not have it yet).
    assert signature.evaluate("img => img.decode().then(() => img.naturalWidth)") == 900
    shot(page, "consent-signed")
    assert_fits_and_touchable(page)

    consent = Consent.objects.get()
    assert consent.method == "drawn" and consent.template_version == 1
    assert services.verify(consent)
    assert services.valid_consent(live_world.patient, "cosmetic", consent.signed_on) == consent
