"""API: patients and their medical history.

Thin, like the patient pages: look up within the token's organization (another organization's
patient is a 404), call ``patients.services`` (the only writer; it validates, writes and
audits), and answer with a schema. What a role may see follows the pages: every role sees
contact details; only clinical roles (and the auditor) see clinical notes, safety flags and
the medical history. Every read of a patient is audited, as on the pages.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic
from glabella.interop.api.base import (
    ERRORS,
    MAX_LIMIT,
    MAX_OFFSET,
    ApiError,
    Day,
    Id,
    IdPath,
    Page,
    Paging,
    StrictIn,
    Units,
    clinic_or_404,
    exact_number,
    page,
    patient_or_404,
    require,
    units_text,
)
from glabella.patients import services
from glabella.patients.models import HistoryItem, Patient

router = Router(tags=["patients"])

Sex = Literal["female", "male", "other", "unknown"]
ChannelName = Literal["email", "sms", "phone", "none"]
Kind = Literal[
    "condition",
    "allergy",
    "medication",
    "pregnancy",
    "breastfeeding",
    "infection",
    "outside_treatment",
]


# --- schemas -----------------------------------------------------------------------------------


class PatientOut(Schema):
    id: int
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    phone: str
    email: str
    address: str
    weight_kg: str | None = Field(None, description='kilograms, one decimal place ("62.5")')
    preferred_channel: str
    reminder_consent: bool
    home_clinic: int | None = None
    created_at: datetime
    updated_at: datetime
    clinical_notes: str | None = Field(
        None, description="null when the token's role may not see clinical data"
    )
    flags: list[str] | None = Field(
        None,
        description="safety flags from the active history (the dose check's patient flags); "
        "null when the token's role may not see clinical data",
    )


# The service says which weights are possible; the schema only that it is a number.
Kilograms = exact_number(
    "The weight in kilograms",
    high=Decimal("9999.9"),
    above_low=True,
    places=1,
    example="62.5",
    description="Kilograms: a JSON number (not text), at most one decimal, e.g. 62.5.",
)


class _PatientFields(StrictIn):
    given_name: str = Field(..., max_length=100)
    family_name: str = Field(..., max_length=100)
    date_of_birth: Day
    sex: Sex = "unknown"
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=254)
    address: str = Field("", max_length=1000)
    weight_kg: Kilograms | None = None
    preferred_channel: ChannelName = "email"
    reminder_consent: bool = False
    home_clinic: Id | None = Field(None, description="a clinic id")


class PatientIn(_PatientFields):
    clinical_notes: str = Field("", max_length=20000, description="clinical roles only")


class PatientPatch(StrictIn):
    """Only the fields sent change; the others keep their values."""

    given_name: str | None = Field(None, max_length=100)
    family_name: str | None = Field(None, max_length=100)
    date_of_birth: Day | None = None
    sex: Sex | None = None
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    address: str | None = Field(None, max_length=1000)
    weight_kg: Kilograms | None = None
    preferred_channel: ChannelName | None = None
    reminder_consent: bool | None = None
    home_clinic: Id | None = None
    clinical_notes: str | None = Field(None, max_length=20000, description="clinical roles only")


class HistoryItemOut(Schema):
    id: int
    kind: str
    code: str
    label: str
    detail: str
    active: bool
    treated_on: date | None = None
    product_id: str | None = None
    units: str | None = None
    area: str | None = None
    indication: str | None = None
    recorded_at: datetime
    recorded_by: str | None = None
    resolved_on: date | None = None
    entered_in_error: bool
    error_reason: str


class HistoryItemIn(StrictIn):
    kind: Kind
    code: str = Field(
        ...,
        max_length=40,
        description='one of the screening codes of the kind (outside_treatment: "toxin")',
    )
    detail: str = Field("", max_length=500)
    # A toxin treatment elsewhere (kind "outside_treatment"):
    treated_on: Day | None = None
    product_id: str | None = Field(None, max_length=30)
    units: Units | None = None
    area: str | None = Field(None, max_length=100)
    indication: str | None = Field(None, max_length=40)


# --- helpers -----------------------------------------------------------------------------------


def patient_out(who: Actor, p: Patient) -> dict[str, Any]:
    clinical = who.can("patient.view_clinical")
    return {
        "id": p.pk,
        "given_name": p.given_name,
        "family_name": p.family_name,
        "date_of_birth": p.date_of_birth,
        "sex": p.sex,
        "phone": p.phone,
        "email": p.email,
        "address": p.address,
        "weight_kg": str(p.weight_kg) if p.weight_kg is not None else None,
        "preferred_channel": p.preferred_channel,
        "reminder_consent": p.reminder_consent,
        "home_clinic": p.home_clinic_id,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "clinical_notes": p.clinical_notes if clinical else None,
        "flags": sorted(services.patient_flags(p)) if clinical else None,
    }


def history_out(item: HistoryItem) -> dict[str, Any]:
    outside = item.kind == "outside_treatment"
    return {
        "id": item.pk,
        "kind": item.kind,
        "code": item.code,
        "label": item.label,
        "detail": item.detail,
        "active": item.is_active,
        "treated_on": item.treated_on,
        "product_id": item.product_id if outside else None,
        "units": units_text(item.units) if outside else None,
        "area": item.area if outside else None,
        "indication": item.indication if outside else None,
        "recorded_at": item.recorded_at,
        "recorded_by": item.recorded_by.email if item.recorded_by else None,
        "resolved_on": item.resolved_on,
        "entered_in_error": item.entered_in_error,
        "error_reason": item.error_reason,
    }


def _clinic(who: Actor, clinic_id: int | None) -> Clinic | None:
    if clinic_id is None:
        return None
    return clinic_or_404(who, clinic_id, "home_clinic")


# --- endpoints ---------------------------------------------------------------------------------


class PatientsQuery(Paging):
    name: str = Field("", max_length=200, description="Any part of the given or family name.")
    date_of_birth: str = Field("", max_length=10, description="YYYY-MM-DD or DD/MM/YYYY.")
    phone: str = Field("", max_length=40, description="Digits of the phone number (4 or more).")
    email: str = Field("", max_length=254, description="Part of the e-mail address.")


@router.get("/patients", response={200: Page[PatientOut], **ERRORS}, summary="Find patients")
def list_patients(request: HttpRequest, q: Query[PatientsQuery]) -> dict[str, Any]:
    """Search as the patients page does (every term must match); with no term, the most
    recently changed patients first. Every patient listed is recorded in the audit log."""
    who = require(request, "patient.view_contact")
    terms = [q.name]
    dob = q.date_of_birth.strip()
    if dob:
        if services._parse_day(dob) is None:
            raise ApiError(
                "Enter the date of birth as YYYY-MM-DD.", field="date_of_birth", status=422
            )
        terms.append(dob)
    digits = "".join(ch for ch in q.phone if ch.isdigit())
    if q.phone.strip() and len(digits) < 4:
        raise ApiError("Give at least 4 digits of the phone number.", field="phone", status=422)
    terms.append(digits)
    mail = q.email.strip().lower()
    if mail:
        # The search reads a term with "@" as part of an e-mail address: a bare domain
        # ("example.org") is matched after the "@", a bare name ("ada") before it.
        if "@" not in mail:
            mail = f"@{mail}" if "." in mail else f"{mail}@"
        terms.append(mail)
    query = " ".join(t for t in terms if t)
    found = services.search_patients(who, query, limit=MAX_OFFSET + MAX_LIMIT)
    result = page(found, q)
    services.view_patient_list(who, result["items"], "api search", query)
    result["items"] = [patient_out(who, p) for p in result["items"]]
    return result


@router.post("/patients", response={201: PatientOut, **ERRORS}, summary="Register a patient")
def create_patient(request: HttpRequest, payload: PatientIn) -> Status[dict[str, Any]]:
    """Refused (422) when a patient with the same name and date of birth is registered."""
    who = require(request, "patient.create")
    data = payload.model_dump()
    notes = data.pop("clinical_notes", "") or ""
    if notes.strip() and not who.can("patient.edit_clinical"):
        raise ApiError("Your role cannot write clinical notes.", field="clinical_notes", status=403)
    data["home_clinic"] = _clinic(who, data.get("home_clinic"))
    with transaction.atomic():
        patient = services.create_patient(who, data)
        if notes.strip():
            patient = services.update_clinical_notes(who, patient, notes)
    return Status(201, patient_out(who, patient))


@router.get("/patients/{patient_id}", response={200: PatientOut, **ERRORS}, summary="A patient")
def get_patient(request: HttpRequest, patient_id: IdPath) -> dict[str, Any]:
    who = require(request, "patient.view_contact")
    patient = patient_or_404(who, patient_id)
    clinical = who.can("patient.view_clinical")
    services.view_patient(who, patient, part="api record" if clinical else "api contact")
    return patient_out(who, patient)


@router.patch(
    "/patients/{patient_id}", response={200: PatientOut, **ERRORS}, summary="Change a patient"
)
def update_patient(
    request: HttpRequest, patient_id: IdPath, payload: PatientPatch
) -> dict[str, Any]:
    """Demographics and contact details (staff roles); ``clinical_notes`` (clinical roles).
    Fields not sent keep their values; ``null`` empties a text field."""
    who = require(request, "patient.view_contact")
    patient = patient_or_404(who, patient_id)
    sent = payload.model_dump(exclude_unset=True)
    notes = sent.pop("clinical_notes", None)
    if "clinical_notes" in payload.model_fields_set and not who.can("patient.edit_clinical"):
        raise ApiError("Your role cannot write clinical notes.", field="clinical_notes", status=403)
    if sent and not who.can("patient.edit_contact"):
        raise ApiError("Your role does not allow changing a patient's details.", status=403)
    with transaction.atomic():
        if sent:
            data: dict[str, Any] = {f: getattr(patient, f) for f in services.PATIENT_FIELDS}
            for name, value in sent.items():
                if name == "home_clinic":
                    data[name] = _clinic(who, value)
                elif value is None and name in ("given_name", "family_name", "date_of_birth"):
                    raise ApiError("This is required.", field=name, status=422)
                elif value is None and name in ("sex", "preferred_channel", "reminder_consent"):
                    raise ApiError("This cannot be null.", field=name, status=422)
                else:
                    data[name] = value
            patient = services.update_patient(who, patient, data)
        if "clinical_notes" in payload.model_fields_set:
            patient = services.update_clinical_notes(who, patient, notes or "")
    return patient_out(who, patient)


@router.get(
    "/patients/{patient_id}/history",
    response={200: list[HistoryItemOut], **ERRORS},
    summary="A patient's medical history",
)
def list_history(request: HttpRequest, patient_id: IdPath) -> list[dict[str, Any]]:
    """Every item, newest first: active ones, resolved ones and those entered in error (never
    deleted; ``active`` says which apply now)."""
    who = require(request, "patient.view_contact")
    patient = patient_or_404(who, patient_id)
    if not who.can("patient.view_clinical"):
        raise ApiError("Your role does not allow seeing the medical history.", status=403)
    items = patient.history.select_related("recorded_by").order_by("-recorded_at", "-pk")
    services.view_patient(who, patient, part="api history")
    return [history_out(i) for i in items]


@router.post(
    "/patients/{patient_id}/history",
    response={201: HistoryItemOut, **ERRORS},
    summary="Add to a patient's medical history",
)
def add_history(
    request: HttpRequest, patient_id: IdPath, payload: HistoryItemIn
) -> Status[dict[str, Any]]:
    """A condition, allergy, medication... (``code`` from the screening vocabulary), or a
    toxin treatment elsewhere (``kind`` "outside_treatment", ``code`` "toxin", with
    ``treated_on``, ``product_id``, ``units``, ``area``): it counts in the dose checks."""
    who = require(request, "patient.view_contact")
    patient = patient_or_404(who, patient_id)
    if not who.can("patient.edit_clinical"):
        raise ApiError("Your role does not allow recording medical history.", status=403)
    data = payload.model_dump()
    item = services.add_history_item(who, patient, data)
    return Status(201, history_out(item))
