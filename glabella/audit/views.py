from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from glabella.accounts.decorators import require
from glabella.audit.models import Action, AuditEvent


@require("audit.view")
def audit_log(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.filter(organization=request.org).order_by("-seq")  # type: ignore[attr-defined]
    action = request.GET.get("action", "")
    if action in Action.values:
        events = events.filter(action=action)
    who = request.GET.get("who", "").strip()
    if who:
        events = events.filter(actor_label__icontains=who)
    obj = request.GET.get("object", "").strip()
    if obj:
        events = events.filter(object_label__icontains=obj)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/log.html",
        {"page": page, "actions": Action.choices, "action": action, "who": who, "object": obj},
    )
