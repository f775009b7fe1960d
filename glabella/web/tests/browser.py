"""Shared Playwright fixtures: the system Chromium, headless, never a downloaded browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GLABELLA_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[3] / "test-results"
VIEWPORTS = {"landscape": (1024, 768), "portrait": (768, 1024)}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `sh scripts/ensure-chromium` "
            "(make test does) or set GLABELLA_CHROMIUM."
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser: object) -> Iterator[object]:
    width, height = VIEWPORTS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.viewport_name = request.param
    yield page
    context.close()


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{page.viewport_name}.png"), full_page=True)  # type: ignore[attr-defined]


def login(page: object, base: str, email: str, password: str) -> None:
    """Sign in through the form; when the two-step page follows, type the next code of the
    user's authenticator app (the test personas have one: conftest.TOTP_SECRET)."""
    page.goto(f"{base}/accounts/login/")  # type: ignore[attr-defined]
    page.get_by_label("E-mail").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    if "/accounts/two-step/" in page.url and "/setup/" not in page.url:  # type: ignore[attr-defined]
        from glabella.accounts.models import User
        from glabella.conftest import totp_code

        page.get_by_label("Code").fill(totp_code(User.objects.get(email__iexact=email)))  # type: ignore[attr-defined]
        with page.expect_navigation():  # type: ignore[attr-defined]
            page.get_by_role("button", name="Continue").click()  # type: ignore[attr-defined]


def assert_fits_and_touchable(page: object) -> None:
    """No sideways scrolling, and every button is at least 44 x 44 px."""
    overflow = page.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    small = page.evaluate(  # type: ignore[attr-defined]
        """() => [...document.querySelectorAll(
                'main button, main .button, main label.choice, header button, header nav a')]
              .filter(e => e.offsetParent !== null)
              .map(e => [e.textContent.trim(), e.getBoundingClientRect()])
              .filter(([t, r]) => r.height < 43.5 || r.width < 43.5)
              .map(([t, r]) => `${t} ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert not small, f"touch targets smaller than 44px: {small}"


def wait_until(page: object, expression: str, timeout: float = 10.0) -> None:
    """Poll EXPRESSION (JavaScript) until it is truthy. Playwright's ``wait_for_function`` runs
    its predicate with ``new Function`` inside the page, which the app's CSP (no unsafe-eval)
    rightly refuses; ``evaluate`` goes through the DevTools protocol instead."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:.0f} s: {expression}")
        time.sleep(0.05)
