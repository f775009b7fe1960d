"""Attach the signed-in user's active membership (and so organization and role) to the request."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from glabella.accounts import mfa
from glabella.accounts.models import Membership

SESSION_CLINIC_KEY = "glabella_clinic_id"
SESSION_SEEN_KEY = "glabella_seen"


class IdleSessionMiddleware:
    """Keep a signed-in session alive while it is used, without writing it on every request.

    The session's expiry (``SESSION_COOKIE_AGE`` = the idle time + the refresh interval) is
    pushed forward by saving the session, which is a database write. This saves it when the
    last save is at least ``GLABELLA_SESSION_REFRESH_SECONDS`` old (a minute), so a busy page
    costs one write a minute rather than one per request, and the server still ends the
    session no sooner than the idle time after the last request (and at most a minute later).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.modified or not session.session_key:
            return response  # being saved anyway, or no session (signed out, never signed in)
        if SESSION_KEY not in session:
            return response
        now = int(time.time())
        if now - int(session.get(SESSION_SEEN_KEY, 0)) >= settings.GLABELLA_SESSION_REFRESH_SECONDS:
            session[SESSION_SEEN_KEY] = now  # modified: SessionMiddleware saves it
        return response


class MembershipMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.org = None  # type: ignore[attr-defined]
        request.other_memberships = []  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            # Every active membership in one query (a member works at a few clinics at most):
            # the one chosen in this session, else the first by clinic name; the others are
            # the menu's "Switch to" buttons (the membership context processor reads them).
            memberships = list(
                Membership.objects.filter(user=request.user, is_active=True)
                .select_related("clinic", "organization", "user")
                .order_by("clinic__name", "pk")
            )
            chosen = request.session.get(SESSION_CLINIC_KEY)
            membership = next((m for m in memberships if m.clinic_id == chosen), None)
            if membership is None and memberships:
                membership = memberships[0]
            request.membership = membership  # type: ignore[attr-defined]
            request.org = membership.organization if membership else None  # type: ignore[attr-defined]
            request.other_memberships = [  # type: ignore[attr-defined]
                m for m in memberships if m is not membership
            ]
        return self.get_response(request)


class MfaRequiredMiddleware:
    """Send a signed-in user who must pass the second step, and has not in this session, to it.

    Until then the session reaches only the two-step pages, sign-out, static files and the
    health check: every other page (GET or POST) redirects to the step; an htmx request gets
    401 with ``HX-Redirect`` so the whole page goes there. Requests that are not session
    sign-ins are left alone, by path: the API and FHIR (/api/v1/, /fhir/r4/: tokens only, never
    the session) and the patient portal (/my/: secret links). Sets ``request.mfa_pending`` for
    the templates (no menu yet).

    After the second step, a member still holding a temporary password (``must_change_password``,
    set when an owner added them) reaches only the password change and sign-out the same way.
    """

    EXEMPT_PREFIXES = ("/api/v1/", "/fhir/r4/", "/my/", "/healthz")
    ALLOWED_NAMES = ("accounts:mfa_verify", "accounts:mfa_setup", "accounts:logout")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._allowed_paths: frozenset[str] | None = None

    def _allowed(self) -> frozenset[str]:
        if self._allowed_paths is None:
            self._allowed_paths = frozenset(reverse(name) for name in self.ALLOWED_NAMES)
        return self._allowed_paths

    def _exempt(self, request: HttpRequest) -> bool:
        path = request.path_info
        # Not by an Authorization header: pages ignore it and read the session, so a
        # half-signed-in session sending "Bearer anything" must still be stopped here. The API
        # and FHIR prefixes accept tokens only, never the session.
        static = settings.STATIC_URL or "/static/"
        if not static.startswith("http") and path.startswith(static):
            return True
        return path.startswith(self.EXEMPT_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.mfa_pending = False  # type: ignore[attr-defined]
        if request.user.is_authenticated and not mfa.is_verified(request.session):
            has_device = mfa.has_device(request.user)  # type: ignore[arg-type]
            if has_device or mfa.role_requires_mfa(request.user):  # type: ignore[arg-type]
                # Set on exempt paths too: a half-signed-in member on a patient's secret-link
                # page (/my/) is not shown the staff menu.
                request.mfa_pending = True  # type: ignore[attr-defined]
                if not self._exempt(request) and request.path_info not in self._allowed():
                    return self._to_the_step(request, has_device)
        if (
            request.user.is_authenticated
            and getattr(request.user, "must_change_password", False)
            and not request.mfa_pending  # type: ignore[attr-defined]
            and not self._exempt(request)
            and request.path_info not in self._password_paths()
        ):
            # A temporary password handed over by an owner: their own one first.
            return self._redirect(request, reverse("accounts:password_change"))
        return self.get_response(request)

    def _password_paths(self) -> frozenset[str]:
        return self._allowed() | {reverse("accounts:password_change")}

    @classmethod
    def _to_the_step(cls, request: HttpRequest, has_device: bool) -> HttpResponse:
        return cls._redirect(
            request, reverse("accounts:mfa_verify" if has_device else "accounts:mfa_setup")
        )

    @staticmethod
    def _redirect(request: HttpRequest, step: str) -> HttpResponse:
        """To STEP (with ``next`` for a plain GET); an htmx request gets 401 + HX-Redirect so
        the whole page goes there."""
        if request.method in ("GET", "HEAD") and not request.headers.get("HX-Request"):
            step = f"{step}?{urlencode({'next': request.get_full_path()})}"
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=401)
            response["HX-Redirect"] = step
            return response
        return HttpResponseRedirect(step)
