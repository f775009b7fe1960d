"""FHIR R4 endpoints (to be filled in)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def metadata(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"resourceType": "CapabilityStatement"}, status=501)
