"""The Content-Security-Policy holds in a real Chromium: the main pages, walked by the roles that
see the most, raise no `securitypolicyviolation` and log no "Refused to …", and still work
(htmx search swaps results in, the charting diagram is drawn, the signature pad and the API
docs start, outcome charts show).

The listener is installed by the *test* (add_init_script); the app itself has no inline script.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from glabella.accounts import mfa
from glabella.charting import services as charting
from glabella.consent import services as consent_services
from glabella.outcomes import assessments
from glabella.outcomes.diary import local_today
from glabella.outcomes.models import TimePoint
from glabella.outcomes.tests.test_diary_service import fill, session
from glabella.portal import services as portal_services
from glabella.testing import signature_png

pytestmark = pytest.mark.browser

LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} ` +
                    `at ${e.sourceFile || document.location.pathname}:${e.lineNumber}`);
});
"""


def _signed_in_context(browser, live_server, user):
    """A browser context with the user's session (second step passed), as after signing in."""
    client = Client()
    client.force_login(user)
    session_store = client.session
    mfa.mark_verified(session_store)
    session_store.save()
    context = browser.new_context(viewport={"width": 1024, "height": 768}, has_touch=True)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session_store.session_key,
                "url": live_server.url,
            }
        ]
    )
    context.add_init_script(LISTEN)
    return context


class Walker:
    def __init__(self, context, base):
        self.page = context.new_page()
        self.page.set_default_timeout(10_000)
        self.base = base
        self.refused: list[str] = []
        self.visited: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.refused.append(f"{self.page.url}: {m.text}")
                if "Content Security Policy" in m.text or "Refused to" in m.text
                else None
            ),
        )

    def go(self, path):
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "unsafe-inline" not in (response.headers.get("content-security-policy") or "x")
        assert response.headers.get("content-security-policy"), path
        self.page.wait_for_load_state("networkidle")
        self.visited.append(path)
        self.check()

    def check(self):
        violations = self.page.evaluate("window.__csp || []")
        assert not violations, f"CSP violations on {self.page.url}: {violations}"
        assert not self.refused, f"CSP refusals: {self.refused}"


def _furnish(world):
    injector = world.actor("injector")
    consent_services.ensure_default_templates(world.org)
    consent_services.take_consent(
        injector, world.patient, "cosmetic", method="drawn", signature_png=signature_png(),
        read_confirmed=True,
    )  # fmt: skip
    today = local_today(injector, world.patient)
    first = today - timedelta(days=100)
    fill(world, first - timedelta(days=28), 28 + 100, 14, migraine=6, medication=4)
    session(world, first, points=[("forehead", "20"), ("glabella", "25")])
    session(world, first + timedelta(days=84), points=[("forehead", "20"), ("glabella", "30")])
    assessments.record(injector, world.patient, "hit-6", [13, 11, 10, 10, 8, 8],
                       time_point=TimePoint.BASELINE, assessed_on=first)  # fmt: skip
    draft = charting.start_session(
        injector, world.patient, indication="glabellar-lines", product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
    )  # fmt: skip
    link = portal_services.show_link(world.actor("front_desk"), world.patient)
    return draft, link


def test_the_main_pages_raise_no_csp_violation_for_the_owner(live_server, live_world, browser):
    world = live_world
    draft, link = _furnish(world)
    pk = world.patient.pk
    context = _signed_in_context(browser, live_server, world.users["owner"])
    w = Walker(context, live_server.url)

    w.go(reverse("web:dashboard"))
    # htmx search-as-you-type still swaps results in under the policy.
    w.go(reverse("patients:list"))
    w.page.get_by_label("Find a patient").press_sequentially("lovel", delay=30)
    expect(w.page.locator("#results")).to_contain_text("LOVELACE, Ada")
    w.check()
    w.go(reverse("patients:detail", args=[pk]))
    w.go(reverse("charting:session", args=[draft.pk]))
    expect(w.page.locator("#workspace svg").first).to_be_visible()
    w.check()
    w.go(reverse("outcomes:patient", args=[pk]))
    expect(w.page.locator("figure.chart svg[role=img]").first).to_be_visible()
    w.check()
    for path in [
        reverse("outcomes:cohort"),
        reverse("inventory:overview"),
        reverse("scheduling:day"),
        reverse("scheduling:week"),
        reverse("scheduling:recalls"),
        reverse("photos:patient", args=[pk]),
        reverse("photos:take", args=[pk]),
        reverse("consent:patient", args=[pk]),
        reverse("consent:templates"),
        reverse("accounts:settings"),
        reverse("interop:import"),
        reverse("interop:export"),
        reverse("audit:log"),
    ]:
        w.go(path)
    # The signature pad (a canvas driven by consent/signature.js) starts.
    w.go(reverse("consent:take", args=[pk, "chronic-migraine"]))
    expect(w.page.locator("canvas").first).to_be_visible()
    w.check()
    # The API docs: Swagger UI from ninja's static files, started by an external script.
    w.go("/api/v1/docs")
    expect(w.page.locator(".swagger-ui .info").first).to_be_visible()
    w.check()
    context.close()

    # The patient's own pages, from the link, signed out.
    portal = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    portal.add_init_script(LISTEN)
    p = Walker(portal, live_server.url)
    p.go(reverse("portal:home", args=[link.token]))
    p.go(reverse("portal:diary", args=[link.token]))
    p.go(reverse("portal:questionnaires", args=[link.token]))
    portal.close()


@pytest.mark.parametrize("role", ["prescriber", "front_desk"])
def test_the_pages_of_other_roles_raise_no_csp_violation(live_server, live_world, browser, role):
    world = live_world
    pk = world.patient.pk
    context = _signed_in_context(browser, live_server, world.users[role])
    w = Walker(context, live_server.url)
    w.go(reverse("web:dashboard"))
    w.go(reverse("patients:detail", args=[pk]))
    w.go(reverse("scheduling:day"))
    w.go(reverse("scheduling:recalls"))
    w.go(reverse("patients:list") + "?q=lovelace")
    expect(w.page.locator("#results")).to_contain_text("LOVELACE, Ada")
    if role == "prescriber":
        w.go(reverse("outcomes:patient", args=[pk]))
    else:
        w.go(reverse("scheduling:book"))
    context.close()


def test_the_listener_catches_an_inline_script(live_server, live_world, browser):
    """The detection works: a page made to run inline script is reported."""
    context = _signed_in_context(browser, live_server, live_world.users["owner"])
    w = Walker(context, live_server.url)
    w.go(reverse("web:dashboard"))
    w.page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.x = 1";
                   document.body.appendChild(s);
                   const d = document.createElement("div"); d.setAttribute("style", "color:red");
                   document.body.appendChild(d); }"""
    )
    w.page.wait_for_timeout(200)
    with pytest.raises(AssertionError, match="CSP violations"):
        w.check()
    assert w.page.evaluate("window.x") is None
    context.close()
