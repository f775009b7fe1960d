"""Re-authentication for sensitive actions: type the password (and code) again.

Some actions are worth a second look at who is at the keyboard: a full export, confirming an
import, changing who works here and with which role, breaking the glass on a patient's record,
new recovery codes. They ask for the password (and, for a member with an authenticator app, a
code) when it was last typed more than GLABELLA_REAUTH_SECONDS ago in this session
(``mfa.recently_authenticated``).

``require_recent_auth`` is the view decorator (put it under ``require(...)`` so a member
without the permission gets a 403, not a password prompt). ``needs_reauth(request)`` returns
the redirect response (or None) for views that decide inside.

- GET: redirect to ``accounts:reauth?next=<this page>``; back here after.
- POST: the form's data is not kept (a password page must not carry a patient's form through
  the browser history); redirect to the reauth page with next = the page the form was on
  (the Referer when it is on this site, else this URL) and a message "Confirm it's you, then
  press <X> again".
- htmx: 401 with ``HX-Redirect`` to the reauth page (htmx follows it with a full page load).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from glabella.accounts import mfa

View = Callable[..., HttpResponse]


def safe_next(request: HttpRequest, candidate: str | None, default: str = "/") -> str:
    """CANDIDATE when it is a path on this site (no other host, no scheme change), else DEFAULT."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _local_path(request: HttpRequest, url: str) -> str | None:
    """The path (and query) of URL when it points at this site, else None."""
    if not url or not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def reauth_url(next_url: str) -> str:
    return f"{reverse('accounts:reauth')}?{urlencode({'next': next_url})}"


def needs_reauth(request: HttpRequest, *, action: str = "") -> HttpResponse | None:
    """None when the password was typed recently in this session; else the response that sends
    the user to confirm it's them (see the module's doc). ACTION is the button's words, for the
    message after a POST ("Confirm it's you, then press Start export again")."""
    if not request.user.is_authenticated:
        return None  # the permission guard in front deals with it
    if mfa.recently_authenticated(request.session):
        return None
    if request.method in ("GET", "HEAD"):
        next_url = request.get_full_path()
    else:
        next_url = _local_path(request, request.headers.get("Referer", "")) or request.path
    target = reauth_url(next_url)
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=401)
        response["HX-Redirect"] = target
        return response
    if request.method not in ("GET", "HEAD"):
        messages.info(
            request,
            f"Confirm it's you, then press {action} again."
            if action
            else "Confirm it's you, then do that again.",
        )
    return HttpResponseRedirect(target)


def require_recent_auth(
    view: View | None = None, *, action: str = ""
) -> View | Callable[[View], View]:
    """Decorator: the view runs only when the password was typed within GLABELLA_REAUTH_SECONDS.

    Use as ``@require_recent_auth`` or ``@require_recent_auth(action="Start export")``.
    """

    def decorator(inner: View) -> View:
        @wraps(inner)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = needs_reauth(request, action=action)
            if response is not None:
                return response
            return inner(request, *args, **kwargs)

        wrapped.requires_recent_auth = True  # type: ignore[attr-defined]
        return wrapped

    if view is not None:
        return decorator(view)
    return decorator
