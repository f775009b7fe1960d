"""Break-glass: emergency access to one patient's clinical summary (to be built: issue 9)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def break_glass(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404


def emergency_summary(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404


def break_glass_log(request: HttpRequest) -> HttpResponse:
    raise Http404


def break_glass_review(request: HttpRequest, access_pk: int) -> HttpResponse:
    raise Http404
