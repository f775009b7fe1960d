from __future__ import annotations

import contextlib
import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from glabella import __version__
from glabella.accounts.actor import Actor
from glabella.accounts.decorators import signed_in
from glabella.inventory import services as inventory_services
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.web import dashboard as dashboard_data

log = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with the database status, or 503 with the reason it cannot be reached."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        with contextlib.suppress(DatabaseError):
            connection.close()
        return JsonResponse(
            {
                "status": "error",
                "database": "unreachable",
                "reason": f"The database cannot be reached ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}).",
                "version": __version__,
            },
            status=503,
        )
    return JsonResponse(
        {"status": "ok", "database": "ok", "vendor": connection.vendor, "version": __version__}
    )


@signed_in
def dashboard(request: HttpRequest) -> HttpResponse:
    org = request.org  # type: ignore[attr-defined]
    recent = list(Patient.objects.for_org(org).order_by("-updated_at")[:8])
    actor = Actor.from_request(request)
    scheduling = dashboard_data.scheduling_for(actor)
    shown = {p.pk: p for p in recent}
    if scheduling is not None:
        shown.update({p.pk: p for p in scheduling.patients})
    patient_services.view_patient_list(actor, list(shown.values()), "dashboard")
    stock_alerts = None
    if actor.can("stock.view") and actor.clinic is not None:
        stock_alerts = inventory_services.alerts(org, actor.clinic)
    return render(
        request,
        "web/dashboard.html",
        {
            "recent": recent,
            "patient_count": Patient.objects.for_org(org).count(),
            "stock_alerts": stock_alerts,
            "scheduling": scheduling,
            "book_url": dashboard_data.url_or("scheduling:book"),
            "feeds_url": dashboard_data.url_or("scheduling:feeds"),
        },
    )
