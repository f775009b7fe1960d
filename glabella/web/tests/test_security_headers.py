"""Every page carries the Content-Security-Policy (no 'unsafe-inline', no 'unsafe-eval') and the
other security headers, and no page relies on what that policy refuses: inline <script>,
on…= handlers, style="…" attributes, <style> elements, javascript: links, hx-on.

The pages are found by crawling: each role starts at the dashboard (and a few pages with
objects) and follows every same-site link and hx-get it is shown, so a new page is checked
without being listed here. test_csp_in_browser.py proves the same in Chromium.
"""

from __future__ import annotations

from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from glabella.charting.tests.conftest import signed_glabellar
from glabella.consent import services as consent_services
from glabella.inventory.tests.helpers import glabellar_session, receive_botox_cosmetic
from glabella.testing import signature_png
from glabella.web.security import CSP_DIRECTIVES, content_security_policy

DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}
SKIP_PREFIXES = ("/static/", "/accounts/logout/", "/healthz")
MAX_PAGES = 400
PER_ROUTE = 2


class InlineFinder(HTMLParser):
    """Collects what a strict CSP blocks, and the same-site links to follow."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.links: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        script_type = (named.get("type") or "").lower()
        if tag == "script" and not named.get("src") and script_type not in DATA_SCRIPT_TYPES:
            self.problems.append(f"inline <script> ({self.getpos()})")
        if tag == "style":
            self.problems.append(f"<style> element ({self.getpos()})")
        for name, value in attrs:
            if name == "style":
                self.problems.append(f'style="{value}" on <{tag}> ({self.getpos()})')
            elif name.startswith("on") or name.startswith("hx-on"):
                self.problems.append(f"{name}= handler on <{tag}> ({self.getpos()})")
            elif (
                name in {"href", "src", "action", "formaction"}
                and value
                and value.strip().lower().startswith("javascript:")
            ):
                self.problems.append(f"javascript: URL on <{tag}> ({self.getpos()})")
        for name in ("href", "hx-get"):
            value = named.get(name)
            if value and (tag == "a" or name == "hx-get"):
                self.links.append(value)


def scan(html: str) -> InlineFinder:
    finder = InlineFinder()
    finder.feed(html)
    return finder


def assert_csp(response, where: str) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert csp, f"{where}: no Content-Security-Policy header"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{where}: {csp}"
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'", where
    assert directives["style-src"] == "'self'", where
    assert directives["object-src"] == "'none'", where
    assert directives["frame-ancestors"] == "'none'", where
    assert "camera=(self)" in response.get("Permissions-Policy", ""), where
    assert "microphone=()" in response["Permissions-Policy"], where
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", where
    assert response.get("X-Frame-Options") == "DENY", where
    assert response.get("X-Content-Type-Options") == "nosniff", where
    assert response.get("Referrer-Policy") in {"same-origin", "no-referrer"}, where


def crawl(client: Client, seeds: list[str]) -> dict[str, int]:
    """GET every same-site page reachable from SEEDS; check each; return path -> status."""
    seen: dict[str, int] = {}
    routes: dict[str, int] = {}
    queue = deque(seeds)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        url = urldefrag(url)[0]
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if url in seen or parts.path.startswith(SKIP_PREFIXES):
            continue
        # Each page (route) a couple of times, not every day of the calendar.
        try:
            route = resolve(parts.path).route
        except Resolver404:
            route = parts.path
        if routes.get(route, 0) >= PER_ROUTE:
            continue
        routes[route] = routes.get(route, 0) + 1
        response = client.get(url)
        seen[url] = response.status_code
        assert_csp(response, url)
        if "text/html" not in response.get("Content-Type", ""):
            continue
        html = (
            b"".join(response.streaming_content).decode()
            if response.streaming
            else (response.content.decode())
        )
        found = scan(html)
        assert not found.problems, f"{url} uses what the CSP refuses: {found.problems}"
        queue.extend(found.links)
    return seen


@pytest.fixture
def furnished(world):
    """The world with stock, consents, a signed and a draft session, so the crawl meets the
    pages that show them."""
    consent_services.ensure_default_templates(world.org)
    for category in ("cosmetic", "chronic-migraine"):
        consent_services.take_consent(
            world.actor("injector"),
            world.patient,
            category,
            method="drawn",
            signature_png=signature_png(),
            read_confirmed=True,
        )
    signed_glabellar(world)  # before stock is kept: a typed lot, no vials to draw
    receive_botox_cosmetic(world)
    glabellar_session(world)
    return world


@pytest.mark.parametrize("role", ["owner", "prescriber", "injector", "front_desk", "auditor"])
def test_every_page_a_role_reaches_carries_the_csp_and_nothing_inline(furnished, role):
    client = furnished.client(role)
    pk = furnished.patient.pk
    seen = crawl(
        client,
        [
            reverse("web:dashboard"),
            reverse("patients:detail", args=[pk]),
            f"{reverse('patients:list')}?q=Lovelace",
            reverse("accounts:settings"),
            "/api/v1/docs",
        ],
    )
    ok = [url for url, status in seen.items() if status == 200]
    # The crawl really walked the app (a broken crawl must not pass quietly).
    assert len(ok) >= 15, seen
    assert reverse("patients:detail", args=[pk]) in ok


def test_signed_out_pages_error_pages_and_json_carry_the_csp(world, client):
    for url in [reverse("accounts:login"), "/no-such-page/", "/healthz", "/api/v1/patients"]:
        response = client.get(url)
        assert_csp(response, url)
    response = world.client("outsider").get(reverse("patients:detail", args=[world.patient.pk]))
    assert response.status_code == 404
    assert_csp(response, "another organization's patient")
    assert not scan(client.get(reverse("accounts:login")).content.decode()).problems


def test_the_policy_is_the_documented_one(settings):
    assert content_security_policy() == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    settings.GLABELLA_CSP_REPORT_URI = "/csp-report"
    assert content_security_policy().endswith("; report-uri /csp-report")
    assert set(CSP_DIRECTIVES) >= {"script-src", "style-src", "object-src", "base-uri"}


def test_the_scanner_finds_what_the_policy_refuses():
    """The crawl's HTML check can fail: each forbidden pattern is caught."""
    for html in [
        "<script>alert(1)</script>",
        '<div style="color:red">x</div>',
        "<style>p{}</style>",
        '<button onclick="go()">x</button>',
        '<a href="javascript:go()">x</a>',
        '<button hx-on:click="go()">x</button>',
        '<svg><rect style="fill:red"/></svg>',
    ]:
        assert scan(html).problems, html
    assert not scan(
        '<script src="/static/a.js"></script><script type="application/json">{}</script>'
        '<svg><rect fill="red"/></svg><p class="x">ok</p>'
    ).problems


def test_a_view_may_send_a_stricter_policy_of_its_own(rf, settings):
    from django.http import HttpResponse

    from glabella.web.security import SecurityHeadersMiddleware

    def view(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = SecurityHeadersMiddleware(view)(rf.get("/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"
    plain = SecurityHeadersMiddleware(lambda r: HttpResponse("x"))(rf.get("/"))
    assert plain["Content-Security-Policy"] == content_security_policy()
