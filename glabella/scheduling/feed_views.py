"""Calendar feed pages: the signed-in person's feed links, and the public .ics itself.

The .ics address holds the secret and needs no sign-in (calendar services fetch it). Whatever
goes wrong with it - an unknown, malformed or revoked token, a person who left - is the same
bare 404, and is not logged (the path would put a token in the logs). See feeds.py for what the
feed shows and why.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.scheduling import feeds
from glabella.scheduling.feeds import NewFeed
from glabella.scheduling.models import Appointment, CalendarFeed


def _page(
    request: HttpRequest,
    actor: Actor,
    *,
    new: NewFeed | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    mine = feeds.feeds_of(actor)
    context = {
        "active": list(mine.filter(revoked_at__isnull=True)),
        "revoked": list(mine.filter(revoked_at__isnull=False)[:10]),
        "others": list(feeds.others_feeds(actor)) if actor.can("organization.manage") else [],
        "max_active": feeds.MAX_ACTIVE_FEEDS,
        "error": error,
        "clinic_zone": actor.clinic.timezone if actor.clinic else "UTC",
    }
    if new is not None:
        url = request.build_absolute_uri(new.path)
        context["new_url"] = url
        context["new_webcal"] = "webcal://" + url.split("://", 1)[1]
    response = render(request, "scheduling/feeds.html", context, status=status)
    # The page may show a secret once: never keep it in a cache. (The secret is in the page,
    # never in its address, so the usual same-origin referrer policy is safe.)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
@require("appointment.edit")
def feed_list(request: HttpRequest) -> HttpResponse:
    return _page(request, Actor.from_request(request))


@require_POST
@require("appointment.edit")
def feed_create(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    try:
        new = feeds.create_feed(actor)
    except ValidationError as exc:
        return _page(request, actor, error=" ".join(exc.messages), status=400)
    # Shown on this response only (not after a redirect): the token is kept nowhere else.
    return _page(request, actor, new=new)


@require_POST
@require("appointment.edit")
def feed_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    feed = get_object_or_404(CalendarFeed.objects.for_org(actor.organization), pk=pk)
    if feed.user_id != request.user.pk and not actor.can("organization.manage"):
        return HttpResponseNotFound("Not found", content_type="text/plain")
    feeds.revoke_feed(actor, feed)
    messages.success(
        request,
        "Feed link revoked. Calendars subscribed to it will stop showing new appointments.",
    )
    return redirect("scheduling:feeds")


def _bare_404() -> HttpResponse:
    response = HttpResponseNotFound("Not found", content_type="text/plain; charset=utf-8")
    response._has_been_logged = True  # type: ignore[attr-defined]  # keep the token out of logs
    return response


def _appointment_link(request: HttpRequest) -> Callable[[Appointment], str] | None:
    """Absolute links to the appointment pages (None while that page does not exist)."""
    base = request.build_absolute_uri("/").rstrip("/")
    try:
        reverse("scheduling:appointment", args=[1])
    except NoReverseMatch:
        return None

    def link(appointment: Appointment) -> str:
        return base + reverse("scheduling:appointment", args=[appointment.pk])

    return link


@never_cache
@require_safe
def feed(request: HttpRequest, token: str) -> HttpResponse:
    found = feeds.feed_for_token(token)
    if found is None:
        return _bare_404()
    text = feeds.feed_text(found, link=_appointment_link(request))
    feeds.mark_used(found)
    response = HttpResponse(text, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="glabella.ics"'
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
