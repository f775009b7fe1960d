"""The owner's full export: start it, watch it (the page refreshes itself), download a ZIP.

Thin views over :mod:`glabella.interop.export.jobs`: the job runs in the background and
writes the export directory; the download streams a ZIP of that directory as it is made.
Only a role with ``data.export`` (the owner) gets here; another organization's export is a
404. Starting, downloading and deleting are audited.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.accounts.reauth import needs_reauth, require_recent_auth
from glabella.audit import services as audit
from glabella.interop.export import jobs
from glabella.interop.export.full import MANIFEST
from glabella.interop.export.zipstream import zip_directory
from glabella.interop.models import ExportJob, ExportKind, JobState

PRIVATE = "private, no-store"
REFRESH_SECONDS = 2


def _full_jobs(request: HttpRequest) -> QuerySet[ExportJob]:
    return ExportJob.objects.for_org(request.org).filter(kind=ExportKind.FULL)  # type: ignore[attr-defined]


def _job(request: HttpRequest, pk: int) -> ExportJob:
    return get_object_or_404(_full_jobs(request).select_related("requested_by"), pk=pk)


@require("data.export")
@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """What a full export holds, a button to make one, and the recent ones."""
    actor = Actor.from_request(request)
    if request.method == "POST":
        # All of the organization's data: the password again first (accounts/reauth.py).
        if (ask := needs_reauth(request, action="Prepare an export")) is not None:
            return ask
        jobs.reap(actor.organization)
        running = _full_jobs(request).filter(state__in=jobs.ACTIVE).first()
        if running is not None:  # one at a time: a second click joins the first
            return redirect("interop:export_job", running.pk)
        job = jobs.create(actor, ExportKind.FULL, request_url=request.build_absolute_uri())
        return redirect("interop:export_job", job.pk)
    jobs.housekeeping(actor.organization)
    recent = list(_full_jobs(request).select_related("requested_by")[:10])
    response = render(
        request,
        "interop/export.html",
        {"jobs": recent, "keep_hours": jobs.keep_hours()},
    )
    response["Cache-Control"] = PRIVATE
    return response


@require("data.export")
@require_GET
def job(request: HttpRequest, pk: int) -> HttpResponse:
    """One export: its progress while it runs (the page refreshes itself), then the download."""
    jobs.reap(request.org)  # type: ignore[attr-defined]
    export = _job(request, pk)
    running = export.state in jobs.ACTIVE
    percent = int(100 * export.done_items / export.total_items) if export.total_items else 0
    parts = [o for o in export.output if "part" in o]
    problems = [o for o in export.output if "problem" in o]
    response = render(
        request,
        "interop/export_job.html",
        {
            "job": export,
            "running": running,
            "refresh": REFRESH_SECONDS if running else None,
            "percent": percent,
            "parts": parts,
            "problems": problems,
            "expires_at": jobs.expires_at(export),
            "total_bytes": sum(p["bytes"] for p in parts),
        },
    )
    response["Cache-Control"] = PRIVATE
    return response


@require("data.export")
@require_GET
@require_recent_auth
def download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The finished export as one ZIP, streamed as it is made. Audited."""
    export = _job(request, pk)
    directory = jobs.job_dir(export)
    if export.state != JobState.DONE or not (directory / MANIFEST).is_file():
        raise Http404("This export is not ready, or its files were removed.")
    actor = Actor.from_request(request)
    made = timezone.localtime(export.finished_at or export.created_at)
    name = f"glabella-export-{slugify(export.organization.name) or 'clinic'}-{made:%Y%m%d-%H%M}"
    audit.record(
        actor,
        "export",
        export,
        label="Full export downloaded",
        detail={"format": "zip", "files": sum(p.get("files", 0) for p in export.output)},
    )
    response = StreamingHttpResponse(zip_directory(directory, name), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}.zip"'
    response["Cache-Control"] = PRIVATE
    return response


@require("data.export")
@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove an export's files now (cancelling it if it still runs)."""
    export = _job(request, pk)
    if export.state != JobState.DELETED:
        jobs.delete(Actor.from_request(request), export)
        messages.success(request, f"Export {export.pk} deleted: its files are gone.")
    return redirect("interop:export")
