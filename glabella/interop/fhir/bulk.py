"""FHIR Bulk Data export (the Bulk Data Access IG's asynchronous pattern), for the whole
organization.

1. Kick-off: ``GET /fhir/r4/$export`` (every type) or ``GET /fhir/r4/Patient/$export`` (the
   patient compartment), with ``Prefer: respond-async``; parameters ``_type``, ``_since`` and
   ``_outputFormat`` (``application/fhir+ndjson``, ``application/ndjson`` or ``ndjson``). Any
   other parameter, a type Glabella does not serve or a malformed value is a 400 with an
   OperationOutcome saying what to change. Success is a 202 with ``Content-Location``: the
   status URL.
2. Status: ``GET`` the status URL: 202 with ``X-Progress`` and ``Retry-After`` while the job
   runs; 200 with the manifest (``transactionTime``, ``request``, ``requiresAccessToken``,
   ``output`` [{type, url, count}], ``error``) when done; 500 with an OperationOutcome if the job
   failed. ``DELETE`` it to cancel the job or delete its files (202).
3. Files: ``GET`` each ``output`` URL with the same bearer token: ``application/fhir+ndjson``,
   streamed from disk.

Every request needs a personal API token (``Authorization: Bearer glb_...``) of a role with
``data.export`` (the owner). A job is visible only to the user who started it, within their
organization: anything else is a 404. The kick-off and every file download are audited
(action "export"). The work runs in the background (:mod:`glabella.interop.export.jobs`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.operationoutcome import OperationOutcome

from glabella.accounts.actor import Actor
from glabella.accounts.tokens import actor_for_request
from glabella.audit import services as audit
from glabella.interop.export import jobs, ndjson
from glabella.interop.models import ExportJob, ExportKind, JobState

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
PARAMETERS = ("_type", "_since", "_outputFormat")
ACCEPTED = ("application/fhir+json", "application/json", "application/*", "*/*")
MAX_ACTIVE = 2  # running or queued bulk jobs per organization; more is a 429
RETRY_AFTER = 2  # seconds, the status poll's hint
FILE_NAME = re.compile(r"^[A-Z][A-Za-z]+\.ndjson$")

View = Callable[..., HttpResponse]


def outcome(
    status: int, message: str, *, code: str = "invalid", severity: str = "error"
) -> JsonResponse:
    """An OperationOutcome (validated by fhir.resources) as the response."""
    body = OperationOutcome(
        issue=[{"severity": severity, "code": code, "diagnostics": message}]
    ).model_dump(mode="json", exclude_none=True)
    response = JsonResponse(body, status=status, content_type=FHIR_JSON)
    response["Cache-Control"] = "no-store"
    return response


def _authenticated(view: View) -> View:
    """A bearer token of a role that may export, or an OperationOutcome (401/403)."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        actor = actor_for_request(request, via="fhir")
        if actor is None:
            response = outcome(
                401,
                "Send a valid personal API token: Authorization: Bearer glb_... "
                "(create one on your settings page or with `glabella token create`).",
                code="login",
            )
            response["WWW-Authenticate"] = 'Bearer realm="Glabella FHIR"'
            return response
        if not actor.can("data.export"):
            return outcome(
                403,
                "Your role does not allow exporting the organization's data (only an owner may).",
                code="forbidden",
            )
        response = view(request, actor, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response

    return wrapped


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = outcome(405, f"Use {allowed} here.", code="not-supported")
    response["Allow"] = allowed
    return response


# --- kick-off --------------------------------------------------------------------------------


class BadRequest(ValueError):
    pass


def _parse_since(values: list[str]) -> datetime | None:
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("Give _since once.")
    raw = values[0].strip()
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None or "T" not in raw:
        raise BadRequest(
            f"_since must be a FHIR instant with a time zone, e.g. 2025-01-31T09:00:00Z "
            f"(got {raw!r})."
        )
    return since


def _parse_types(values: list[str], allowed: tuple[str, ...]) -> list[str]:
    asked: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if not name:
                raise BadRequest("_type has an empty entry: list types separated by commas.")
            if name not in allowed:
                raise BadRequest(
                    f"_type {name!r} is not a resource type this export serves. "
                    f"Served: {', '.join(allowed)}."
                )
            if name not in asked:
                asked.append(name)
    return [t for t in allowed if t in asked]  # in bulk order


def _check_headers(request: HttpRequest) -> None:
    prefer = [p.strip().lower() for p in request.headers.get("Prefer", "").split(",")]
    if "respond-async" not in prefer:
        raise BadRequest(
            "Send the header Prefer: respond-async (the export runs in the background)."
        )
    accept = request.headers.get("Accept", "").strip()
    if accept and not any(a in accept for a in ACCEPTED):
        raise BadRequest(f"Accept must be {FHIR_JSON} (got {accept!r}).")


def _kick_off(
    request: HttpRequest, actor: Actor, allowed: tuple[str, ...], level: str
) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        _check_headers(request)
        unknown = sorted(set(request.GET) - set(PARAMETERS))
        if unknown:
            raise BadRequest(
                f"This server's $export does not support {', '.join(unknown)}. "
                f"Supported parameters: {', '.join(PARAMETERS)}."
            )
        for fmt in request.GET.getlist("_outputFormat"):
            if fmt not in OUTPUT_FORMATS:
                raise BadRequest(
                    f"_outputFormat {fmt!r} is not supported: use {OUTPUT_FORMATS[0]}."
                )
        since = _parse_since(request.GET.getlist("_since"))
        types = _parse_types(request.GET.getlist("_type"), allowed)
    except BadRequest as exc:
        return outcome(400, str(exc))
    jobs.housekeeping(actor.organization)
    active = ExportJob.objects.for_org(actor.organization).filter(
        kind=ExportKind.FHIR_BULK, state__in=jobs.ACTIVE
    )
    if active.count() >= MAX_ACTIVE:
        response = outcome(
            429,
            "Exports of this organization are already running: wait for them to finish "
            "(or DELETE their status URL) and try again.",
            code="throttled",
        )
        response["Retry-After"] = "30"
        return response
    if level == "Patient" and not types:
        types = list(allowed)  # [] would mean every type served
    job = jobs.create(
        actor,
        ExportKind.FHIR_BULK,
        types=types,
        since=since,
        request_url=request.build_absolute_uri(),
    )
    response = outcome(
        202,
        f"Export {job.pk} accepted: poll the Content-Location URL for its status.",
        code="informational",
        severity="information",
    )
    response["Content-Location"] = request.build_absolute_uri(
        reverse("fhir:bulk_status", args=[job.pk])
    )
    return response


@_authenticated
def export_system(request: HttpRequest, actor: Actor) -> HttpResponse:
    """``$export`` for the whole organization: every type served."""
    return _kick_off(request, actor, ndjson.served_types(), "system")


@_authenticated
def export_patient(request: HttpRequest, actor: Actor) -> HttpResponse:
    """``Patient/$export``: every patient's compartment (no Practitioner, Organization or
    Location)."""
    return _kick_off(request, actor, ndjson.patient_types(), "Patient")


# --- status ----------------------------------------------------------------------------------


def _job(actor: Actor, job_id: int) -> ExportJob | None:
    """ACTOR's own bulk job JOB_ID (None if it is not theirs, not a bulk job, or deleted)."""
    return (
        ExportJob.objects.for_org(actor.organization)
        .filter(pk=job_id, kind=ExportKind.FHIR_BULK, requested_by=actor.user)
        .exclude(state=JobState.DELETED)
        .first()
    )


def _not_found() -> JsonResponse:
    return outcome(
        404, "No such export (it was deleted, has expired, or is not yours).", code="not-found"
    )


def _progress(job: ExportJob) -> str:
    if job.state == JobState.QUEUED:
        return "queued"
    if not job.total_items:
        return "starting"
    percent = int(100 * job.done_items / job.total_items)
    return f"{job.done_items} of {job.total_items} resources ({percent}%)"


def manifest(request: HttpRequest, job: ExportJob) -> dict[str, Any]:
    """The Bulk Data manifest of a finished job, with absolute file URLs."""
    assert job.transaction_time is not None
    return {
        "transactionTime": job.transaction_time.isoformat().replace("+00:00", "Z"),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": item["type"],
                "url": request.build_absolute_uri(
                    reverse("fhir:bulk_file", args=[job.pk, item["file"]])
                ),
                "count": item["count"],
            }
            for item in job.output
        ],
        "error": [],
    }


@_authenticated
def status(request: HttpRequest, actor: Actor, job_id: int) -> HttpResponse:
    """The job's status (GET) or its cancellation / deletion (DELETE)."""
    if request.method not in ("GET", "DELETE"):
        return _method_not_allowed("GET, DELETE")
    jobs.reap(actor.organization)
    job = _job(actor, job_id)
    if job is None:
        return _not_found()
    if request.method == "DELETE":
        jobs.delete(actor, job)
        return outcome(
            202,
            f"Export {job.pk} deleted: its files are gone.",
            code="informational",
            severity="information",
        )
    if job.state in jobs.ACTIVE:
        response = HttpResponse(status=202)
        response["X-Progress"] = _progress(job)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
    if job.state == JobState.FAILED:
        return outcome(
            500,
            f"Export {job.pk} failed: {job.error or 'unknown error'}. Start a new export.",
            code="exception",
        )
    response = JsonResponse(manifest(request, job))
    expires = jobs.expires_at(job)
    if expires is not None:
        response["Expires"] = http_date(expires.timestamp())
    return response


# --- files -----------------------------------------------------------------------------------


@_authenticated
def output_file(request: HttpRequest, actor: Actor, job_id: int, name: str) -> HttpResponse:
    """One NDJSON file of a finished job, streamed from disk. Audited."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    job = _job(actor, job_id)
    if job is None or job.state != JobState.DONE or not FILE_NAME.match(name):
        return _not_found()
    item = next((i for i in job.output if i.get("file") == name), None)
    path = jobs.job_dir(job) / name
    if item is None or not path.is_file():
        return _not_found()
    audit.record(
        actor,
        "export",
        job,
        label=f"FHIR bulk export file {name} downloaded",
        detail={"type": item["type"], "count": item["count"], "bytes": item["bytes"]},
    )
    return FileResponse(path.open("rb"), content_type=NDJSON)
