"""Security headers on every response: Content-Security-Policy, Permissions-Policy and friends.

Django's SecurityMiddleware already sends HSTS (production), X-Content-Type-Options,
Referrer-Policy and Cross-Origin-Opener-Policy, and XFrameOptionsMiddleware sends
X-Frame-Options; this adds what Django 5.2 does not.

The policy allows scripts and styles only from this server's own static files: no inline
``<script>``, no ``on…=`` attributes, no ``style="…"`` attributes, no ``<style>`` elements, no
``eval``. htmx is told not to inject its indicator ``<style>`` (base.html, meta htmx-config);
the indicator CSS lives in glabella.css. A view may send a stricter policy of its own: a header
already on the response is left alone.

docs/security.md explains each directive; glabella/web/tests/test_csp_in_browser.py walks the
pages in Chromium and fails on any violation.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from glabella.logging_filters import current_request_id

CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # data: for the signature pad's PNG and SVG icons; blob: for the camera's preview.
    "img-src": "'self' data: blob:",
    "media-src": "'self' blob:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Photos use the camera (getUserMedia) on this site; nothing uses anything else.
PERMISSIONS_POLICY = ", ".join(
    [
        "camera=(self)",
        "microphone=()",
        "geolocation=()",
        "payment=()",
        "usb=()",
        "serial=()",
        "hid=()",
        "bluetooth=()",
        "midi=()",
        "display-capture=()",
    ]
)


def content_security_policy() -> str:
    directives = dict(CSP_DIRECTIVES)
    report_uri = getattr(settings, "GLABELLA_CSP_REPORT_URI", "")
    if report_uri:
        directives["report-uri"] = report_uri
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request_id.set(getattr(request, "request_id", "-"))
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        # Django's own debug pages (GLABELLA_DEBUG=1 only) are built with inline script and
        # style; leave them readable on a laptop. Never in production (settings refuse DEBUG).
        if settings.DEBUG and response.status_code in (404, 500):
            return response
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
