"""View guards: signed in, with an active membership, and a role that has the permission."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from glabella.accounts.roles import can

View = Callable[..., HttpResponse]


def require(permission: str) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                if request.headers.get("HX-Request"):
                    # An htmx call after the session expired: send the whole page to login.
                    response = HttpResponse(status=401)
                    response["HX-Redirect"] = redirect_to_login(request.get_full_path())["Location"]
                    return response
                return redirect_to_login(request.get_full_path())
            membership = getattr(request, "membership", None)
            if membership is None:
                raise PermissionDenied("You have no active role at any clinic.")
            if not can(membership.role, permission):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator


def signed_in(view: View) -> View:
    """Signed in with an active membership; no particular permission."""
    return require("patient.view_contact")(view)
