"""Re-authentication and the owner's team page (to be built: issue 9, re-auth work)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def reauth(request: HttpRequest) -> HttpResponse:
    raise Http404


def team(request: HttpRequest) -> HttpResponse:
    raise Http404


def team_member(request: HttpRequest, membership_id: int) -> HttpResponse:
    raise Http404
