"""Attach the signed-in user's active membership (and so organization and role) to the request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from glabella.accounts.models import Membership

SESSION_CLINIC_KEY = "glabella_clinic_id"


class MembershipMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.org = None  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            memberships = Membership.objects.filter(
                user=request.user, is_active=True
            ).select_related("clinic", "organization", "user")
            chosen = request.session.get(SESSION_CLINIC_KEY)
            membership = None
            if chosen is not None:
                membership = memberships.filter(clinic_id=chosen).first()
            if membership is None:
                membership = memberships.first()
            request.membership = membership  # type: ignore[attr-defined]
            request.org = membership.organization if membership else None  # type: ignore[attr-defined]
        return self.get_response(request)


class MfaRequiredMiddleware:
    """Send a signed-in user who must pass the second step, and has not in this session, to it.

    Filled in by the two-step sign-in work (accounts/mfa.py); until then it lets every request
    through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
