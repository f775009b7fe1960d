"""FHIR R4 endpoints: ``metadata``, read (``<Type>/<id>``) and search (``<Type>?...``).

Plain Django views answering ``application/fhir+json``. A request carries a personal API
token (``Authorization: Bearer glb_...``) and acts as its user in that membership: the same
organization and role as on the pages. Errors are OperationOutcomes: 401 without a valid
token, 403 when the role may not see the type, 404 for an unknown type or for anything not
in the caller's organization (never a hint that it exists), 400 for a search the server
refuses. Reads and searches of patient data are audited, like a page view.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from glabella.accounts.actor import Actor
from glabella.accounts.tokens import actor_for_request
from glabella.audit import services as audit
from glabella.interop.fhir import kinds, search

FHIR_JSON = "application/fhir+json; charset=utf-8"
ACCEPTABLE = ("application/fhir+json", "application/json", "*/*", "application/*")


def fhir_response(body: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type=FHIR_JSON,
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def outcome(
    status: int, code: str, message: str, *, expression: str = "", severity: str = "error"
) -> HttpResponse:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    body = OperationOutcome.model_validate(
        {"resourceType": "OperationOutcome", "issue": [issue]}
    ).model_dump(mode="json")
    headers = {"WWW_Authenticate": 'Bearer realm="glabella-fhir"'} if status == 401 else {}
    return fhir_response(body, status, **headers)


def not_found(what: str) -> HttpResponse:
    return outcome(404, "not-found", f"{what} was not found.")


View = Callable[..., HttpResponse]


def fhir_view(view: View) -> View:
    """GET (and HEAD) only; JSON only; the bearer token's actor passed as ``actor``."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = outcome(
                405,
                "not-supported",
                "This FHIR server is read-only: use GET (writes go through the REST API).",
            )
            response["Allow"] = "GET, HEAD"
            return response
        accept = request.headers.get("Accept", "")
        if accept and not any(a in accept for a in ACCEPTABLE):
            return outcome(406, "not-supported", "This server answers application/fhir+json.")
        actor = actor_for_request(request, via="fhir")
        if actor is None:
            return outcome(
                401,
                "login",
                "Send a personal API token: 'Authorization: Bearer glb_...' "
                "(create one on your settings page or with 'glabella token create').",
            )
        return view(request, actor, *args, **kwargs)

    return wrapped


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/fhir/r4").rstrip("/")


def _kind_for(actor: Actor, resource_type: str) -> kinds.Kind | HttpResponse:
    try:
        kind = kinds.get(resource_type)
    except kinds.UnknownType:
        return outcome(
            404,
            "not-supported",
            f"This server has no resource type {resource_type!r}. "
            f"It serves: {', '.join(kinds.RESOURCE_TYPES)}.",
        )
    if kind.permission and not actor.can(kind.permission):
        return outcome(
            403, "forbidden", f"Your role does not allow seeing {resource_type} resources."
        )
    return kind


def _patients_in(resources: list[dict[str, Any]]) -> list[str]:
    found: set[str] = set()
    for r in resources:
        if r["resourceType"] == "Patient":
            found.add(r["id"])
        for key in ("subject", "patient"):
            ref = r.get(key)
            if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
                found.add(ref["reference"].split("/", 1)[1])
    return sorted(found, key=lambda v: (len(v), v))


@fhir_view
def read(request: HttpRequest, actor: Actor, resource_type: str, resource_id: str) -> HttpResponse:
    kind = _kind_for(actor, resource_type)
    if isinstance(kind, HttpResponse):
        return kind
    resource = kind.read(actor.organization, resource_id) if len(resource_id) <= 64 else None
    if resource is None:
        return not_found(f"{resource_type}/{resource_id[:64]}")
    if kind.patient_compartment:
        audit.record(
            actor,
            "view",
            object_type=f"fhir.{resource_type.lower()}",
            object_id=resource_id,
            label=f"FHIR read {resource_type}/{resource_id}",
            detail={"via": "fhir", "patients": _patients_in([resource])},
        )
    stamp = resource.get("meta", {}).get("lastUpdated")
    headers = {"Last_Modified": stamp} if stamp else {}
    return fhir_response(resource, **headers)


def _clinic_tz(actor: Actor) -> ZoneInfo:
    name = actor.clinic.timezone if actor.clinic is not None else settings.TIME_ZONE
    return ZoneInfo(name or "UTC")


@fhir_view
def search_type(request: HttpRequest, actor: Actor, resource_type: str) -> HttpResponse:
    kind = _kind_for(actor, resource_type)
    if isinstance(kind, HttpResponse):
        return kind
    lenient = "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")
    params = [(k, v) for k, values in request.GET.lists() for v in values]
    try:
        query = search.parse(kind, params, _clinic_tz(actor), lenient=lenient)
    except search.SearchError as exc:
        return outcome(400, exc.code, str(exc), expression=exc.param)
    total, page = search.run(query, actor.organization)
    base = base_url(request)
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in page
    ]
    if query.ignored:
        note = OperationOutcome.model_validate(
            {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "warning",
                        "code": "not-supported",
                        "diagnostics": f"Ignored (lenient): {', '.join(query.ignored)}",
                    }
                ],
            }
        ).model_dump(mode="json")
        entries.append({"resource": note, "search": {"mode": "outcome"}})
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": timezone.now().isoformat(),
            "total": total,
            "link": search.links(f"{base}/{resource_type}", query, total),
            "entry": entries or None,
        }
    ).model_dump(mode="json")
    if kind.patient_compartment:
        audit.record(
            actor,
            "view",
            object_type=f"fhir.{resource_type.lower()}",
            label=f"FHIR search {resource_type}",
            detail={
                "via": "fhir",
                "query": query.kept,
                "total": total,
                "returned": [r["id"] for r in page],
                "patients": _patients_in(page),
            },
        )
    return fhir_response(bundle)


@fhir_view
def unknown(request: HttpRequest, actor: Actor, rest: str) -> HttpResponse:
    return outcome(404, "not-found", f"There is nothing at /fhir/r4/{rest[:100]}.")


# --- CapabilityStatement ---------------------------------------------------------------------

PARAM_TYPES = {
    "_id": ("token", "The resource id"),
    "_count": ("number", f"Page size (default {search.DEFAULT_COUNT}, at most {search.MAX_COUNT})"),
    "patient": ("reference", "The patient: Patient/<id> or <id>"),
    "subject": ("reference", "Same as patient"),
    "date": ("date", "Prefixes eq, ne, gt, lt, ge, le; YYYY, YYYY-MM, YYYY-MM-DD or a dateTime"),
    "birthdate": ("date", "Date of birth (prefixes as for date)"),
    "effective-time": ("date", "Date the dose was given (same as date)"),
    "name": ("string", "Given or family name contains (every word)"),
    "family": ("string", "Family name contains"),
    "given": ("string", "Given name contains"),
    "gender": ("token", "female | male | other | unknown"),
    "encounter": ("reference", "The session's Encounter/<id>"),
    "context": ("reference", "The session's Encounter/<id>"),
}
EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
PATIENT_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"


def capability_statement(request: HttpRequest) -> dict[str, Any]:
    resources = []
    for kind in kinds.KINDS.values():
        entry: dict[str, Any] = {
            "type": kind.type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{kind.type}",
            "documentation": kind.description,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": False,
            "searchParam": [
                {
                    "name": name,
                    "type": PARAM_TYPES.get(name, ("string", ""))[0],
                    "documentation": PARAM_TYPES.get(name, ("", ""))[1],
                }
                for name in kind.search_params
                if name != "_count"
            ],
        }
        if kind.type == "Patient":
            entry["operation"] = [{"name": "export", "definition": PATIENT_EXPORT}]
        resources.append(entry)
    body = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.now().date().isoformat(),
        "publisher": "Glabella",
        "kind": "instance",
        "software": {"name": "Glabella"},
        "implementation": {
            "description": "Glabella FHIR R4 server (read-only, organization-scoped)",
            "url": base_url(request),
        },
        "fhirVersion": "4.0.1",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read and search, strict by default: an unknown search parameter is a 400 "
                    "OperationOutcome unless 'Prefer: handling=lenient' is sent. Paging with "
                    "_count and the Bundle's next/previous links."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Personal API tokens: 'Authorization: Bearer glb_...'. A token acts as "
                        "its user, in that user's organization and role."
                    ),
                },
                "resource": resources,
                "searchParam": [
                    {
                        "name": "_count",
                        "type": "number",
                        "documentation": PARAM_TYPES["_count"][1],
                    }
                ],
                "operation": [{"name": "export", "definition": EXPORT}],
            }
        ],
    }
    return CapabilityStatement.model_validate(body).model_dump(mode="json")


@csrf_exempt
def metadata(request: HttpRequest) -> HttpResponse:
    """The CapabilityStatement: public (FHIR clients read it before they authenticate)."""
    if request.method not in ("GET", "HEAD"):
        return outcome(405, "not-supported", "Use GET.")
    return fhir_response(capability_statement(request))
