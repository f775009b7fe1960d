"""Pages of two-step sign-in, password change (to be built: issue 9, sign-in work)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def mfa_verify(request: HttpRequest) -> HttpResponse:
    raise Http404


def mfa_setup(request: HttpRequest) -> HttpResponse:
    raise Http404


def mfa_recovery_codes(request: HttpRequest) -> HttpResponse:
    raise Http404


def password_change(request: HttpRequest) -> HttpResponse:
    raise Http404
