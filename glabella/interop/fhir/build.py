"""One function per resource: a database row in, a FHIR R4 resource (a plain dict) out.

A row is a dict of the columns the builder names beside it (``PATIENT_COLUMNS`` for
:func:`patient`, ...): :mod:`glabella.interop.fhir.kinds` reads them with
``QuerySet.values()``, related rows' columns through joins (``clinic__name``), so there is no
model instance and no query per row. Resources reference each other by ``Type/id``.

What a builder returns is already the resource exactly as ``fhir.resources`` (R4B) would
write it after validation, so the bulk export can write it without validating it row by
row (:mod:`glabella.interop.fhir.kinds` explains the checks):

- keys in the order of the FHIR element definitions (``elements_sequence``): an
  ``extension`` comes right after ``meta`` (or first in an element), ``partOf`` before
  ``status`` in a MedicationAdministration, and so on;
- nothing empty: no None, "", [] or {} (FHIR forbids empty elements);
- instants as ISO 8601 with UTC written ``Z`` (:func:`instant`), dates as ``YYYY-MM-DD``;
- decimals as JSON numbers: an int when whole, else the float that prints as the exact
  decimal (:func:`number`; a figure a float would change is refused, never rounded);
- only str, int, float, bool, list and dict: JSON-ready.

The test suite holds every builder to that: each resource of a rich fixture, validated by
``fhir.resources``, must serialise to exactly the same bytes as the builder's own dict.

Units are the product's own: a dose is ``{"value": 20, "unit": "U", "system":
<Glabella product-unit CodeSystem>, "code": <product id>}``, with the product named in the
Medication. Nothing converts units between products.
"""

from __future__ import annotations

import base64
import calendar
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from glabella.charting import imported
from glabella.clinical import catalogue, indications, scales
from glabella.consent.categories import label as consent_category_label
from glabella.interop.fhir import codes
from glabella.outcomes.models import AdverseEvent, Assessment
from glabella.scheduling.models import Appointment

Row = dict[str, Any]

# --- small helpers ---------------------------------------------------------------------------


def ref(resource_type: str, pk: Any, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{resource_type}/{pk}"}
    if display:
        out["display"] = display
    return out


def iso_instant(value: datetime) -> str:
    """An instant as fhir.resources writes it: ISO 8601, microseconds only when there are
    any, UTC as ``Z`` (another offset as ``+hh:mm``)."""
    return value.isoformat().replace("+00:00", "Z")  # an offset, only ever at the end


def instant(value: datetime | None) -> str | None:
    return iso_instant(value) if value is not None else None


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def meta(*stamps: datetime | None) -> dict[str, str] | None:
    known = [s for s in stamps if s is not None]
    return {"lastUpdated": iso_instant(max(known))} if known else None


def number(value: Decimal | int) -> int | float:
    """A JSON number for a Decimal, as fhir.resources writes it: an int when whole, else the
    float whose shortest form is exactly the decimal (2.50 -> 2.5). A decimal that a float
    would change raises instead of being rounded (units have two places: it never does)."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{value!r} cannot be written as an exact JSON number")
    return as_float


@cache
def product_name(product_id: str) -> tuple[str, str]:
    """(brand, generic) of a catalogue product; an unknown id is its own name."""
    try:
        p = catalogue.product(product_id)
    except KeyError:
        return product_id, ""
    return p.brand, p.generic


@cache
def _indication_name(indication_id: str) -> str:
    return indications.display_name(indication_id)  # an unknown id is its own name


def indication_concept(indication_id: str) -> dict[str, Any] | None:
    if not indication_id:
        return None
    name = _indication_name(indication_id)
    return concept([coding(_SYSTEM_INDICATION, indication_id, name)], name)


def person_name(first_name: str, last_name: str, email: str) -> str:
    """A user's name as Django's ``get_full_name()`` gives it, else their e-mail address."""
    return f"{first_name} {last_name}".strip() or email


@cache
def _choice_labels(model: Any, field_name: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in model._meta.get_field(field_name).flatchoices}


def choice_label(model: Any, field_name: str, value: str) -> str:
    """The label of VALUE in FIELD_NAME's choices (Django's ``get_<field>_display()``)."""
    return _choice_labels(model, field_name).get(value, value)


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    """A Coding, without an empty code or display."""
    out = {"system": system}
    if code:
        out["code"] = code
    if display:
        out["display"] = display
    return out


def concept(codings: list[dict[str, str]], text: str) -> dict[str, Any]:
    """A CodeableConcept of CODINGS (not empty), without an empty text."""
    if text:
        return {"coding": codings, "text": text}
    return {"coding": codings}


_SYSTEM_AREA = codes.system("area")
_SYSTEM_INDICATION = codes.system("indication")
_SYSTEM_MUSCLE = codes.system("muscle")
_SYSTEM_SIDE = codes.system("side")
_SYSTEM_PRODUCT = codes.system("product")
_SYSTEM_PRODUCT_UNIT = codes.system("product-unit")
_SYSTEM_SCALE = codes.system("scale")
_SYSTEM_TIME_POINT = codes.system("time-point")
_SYSTEM_APPOINTMENT_TYPE = codes.system("appointment-type")
_EXT_PROTOCOL = codes.extension("protocol")
_EXT_LATERALITY = codes.extension("laterality")
_EXT_DIAGRAM_POINT = codes.extension("diagram-point")
_EXT_TIME_POINT = codes.extension("time-point")
_EXT_ROOM = codes.extension("room")


def _encounter_class() -> dict[str, str]:
    return codes.coding(codes.data()["encounter_class"])


def _observation_category(code: str) -> dict[str, Any]:
    cat = codes.data()["observation_category"]
    return {"coding": [{"system": cat["system"], "code": code, "display": cat["codes"][code]}]}


def clean(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None, empty strings and empty lists/dicts (FHIR forbids empty elements)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            value = clean(value)
        elif isinstance(value, list):
            value = [clean(v) if isinstance(v, dict) else v for v in value]
            value = [v for v in value if v not in (None, "", {}, [])]
        if value in (None, "", {}, []):
            continue
        out[key] = value
    return out


# --- Organization, Location, Practitioner ----------------------------------------------------

ORGANIZATION_COLUMNS = ("id", "name", "created_at")


def organization(org: Row) -> dict[str, Any]:
    return clean(
        {
            "resourceType": "Organization",
            "id": str(org["id"]),
            "meta": meta(org["created_at"]),
            "active": True,
            "name": org["name"],
        }
    )


LOCATION_COLUMNS = ("id", "name", "address", "timezone", "created_at", "organization_id")


def location(clinic: Row) -> dict[str, Any]:
    return clean(
        {
            "resourceType": "Location",
            "id": str(clinic["id"]),
            "meta": meta(clinic["created_at"]),
            "extension": [{"url": codes.extension("timezone"), "valueCode": clinic["timezone"]}],
            "status": "active",
            "name": clinic["name"],
            "mode": "instance",
            "address": {"text": clinic["address"]} if clinic["address"] else None,
            "managingOrganization": ref("Organization", clinic["organization_id"]),
        }
    )


PRACTITIONER_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "active_here",
    "date_joined",
)


def practitioner(user: Row) -> dict[str, Any]:
    """A staff member (``active_here``: an active membership in the organization)."""
    name: dict[str, Any] = {
        "text": person_name(user["first_name"], user["last_name"], user["email"])
    }
    if user["last_name"]:
        name["family"] = user["last_name"]
    if user["first_name"]:
        name["given"] = [user["first_name"]]
    return clean(
        {
            "resourceType": "Practitioner",
            "id": str(user["id"]),
            "meta": meta(user["date_joined"]),
            "active": bool(user["is_active"] and user["active_here"]),
            "name": [name],
            "telecom": [{"system": "email", "value": user["email"], "use": "work"}],
        }
    )


# --- Patient ---------------------------------------------------------------------------------

PREFERRED = {"email": "email", "sms": "phone", "phone": "phone"}
PATIENT_COLUMNS = (
    "id",
    "last_updated",  # updated_at as its instant text, written by the database (fhir/instants.py)
    "given_name",
    "family_name",
    "sex",
    "date_of_birth",
    "phone",
    "email",
    "preferred_channel",
    "address",
    "organization_id",
)
_PATIENT_ID = codes.system("patient-id")


def patient(p: Row) -> dict[str, Any]:
    # Written out rather than through clean(): the bulk export builds one per patient.
    pk = str(p["id"])
    given, family = p["given_name"], p["family_name"]
    out: dict[str, Any] = {"resourceType": "Patient", "id": pk}
    if p["last_updated"] is not None:
        out["meta"] = {"lastUpdated": p["last_updated"]}
    out["identifier"] = [{"system": _PATIENT_ID, "value": pk}]
    out["active"] = True
    name: dict[str, Any] = {"use": "official", "text": f"{given} {family}"}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    out["name"] = [name]
    telecom = []
    if p["phone"]:
        rank = 1 if PREFERRED.get(p["preferred_channel"]) == "phone" else 2
        telecom.append({"system": "phone", "value": p["phone"], "rank": rank})
    if p["email"]:
        rank = 1 if p["preferred_channel"] == "email" else 2
        telecom.append({"system": "email", "value": p["email"], "rank": rank})
    if telecom:
        out["telecom"] = telecom
    if p["sex"]:
        out["gender"] = p["sex"]
    if p["date_of_birth"] is not None:
        out["birthDate"] = p["date_of_birth"].isoformat()
    if p["address"]:
        out["address"] = [{"text": p["address"]}]
    out["managingOrganization"] = {"reference": f"Organization/{p['organization_id']}"}
    return out


# --- Encounter and Procedure (one each per treatment session) --------------------------------

ENCOUNTER_STATUS = {
    "draft": "in-progress",
    "signed": "finished",
    "amended": "finished",
    "voided": "entered-in-error",
}
PROCEDURE_STATUS = {
    "draft": "in-progress",
    "signed": "completed",
    "amended": "completed",
    "voided": "entered-in-error",
}
ADMIN_STATUS = PROCEDURE_STATUS

# A session row (the Encounter and the Procedure); ``last_amended_at`` is annotated.
SESSION_COLUMNS = (
    "id",
    "organization_id",
    "patient_id",
    "clinic_id",
    "clinic__name",
    "practitioner_id",
    "practitioner__first_name",
    "practitioner__last_name",
    "practitioner__email",
    "prescriber_id",
    "prescriber__first_name",
    "prescriber__last_name",
    "prescriber__email",
    "import_source",
    "indication",
    "product_id",
    "protocol_id",
    "treated_on",
    "status",
    "pre_notes",
    "void_reason",
    "follow_up_of_id",
    "created_at",
    "created_by_id",
    "signed_at",
    "signed_by_id",
    "voided_at",
    "last_amended_at",
)


def source_person(import_source: str, label: str) -> str | None:
    """The name LABEL gives in an imported session's source (as
    :func:`glabella.charting.imported.source_person` reads it), or None."""
    if not import_source:
        return None
    for part in import_source.split("; "):
        if part.startswith(label):
            return part[len(label) :].strip() or None
    return None


def _session_stamp(s: Row, prefix: str = "") -> dict[str, str] | None:
    return meta(
        s[f"{prefix}created_at"],
        s[f"{prefix}signed_at"],
        s[f"{prefix}voided_at"],
        s["last_amended_at"],
    )


def treated_by(s: Row, prefix: str = "") -> dict[str, Any]:
    """Who gave the treatment: a Practitioner, or for an imported session whose practitioner
    is not a user here, the name from the source system (never the owner who imported it).
    PREFIX: where the session's columns are in the row (``session__`` for a point's)."""
    named = source_person(s[f"{prefix}import_source"], imported.SOURCE_PRACTITIONER)
    if named:
        return {"display": named}
    return ref(
        "Practitioner",
        s[f"{prefix}practitioner_id"],
        person_name(
            s[f"{prefix}practitioner__first_name"],
            s[f"{prefix}practitioner__last_name"],
            s[f"{prefix}practitioner__email"],
        ),
    )


def prescribed_by(s: Row) -> dict[str, Any] | None:
    named = source_person(s["import_source"], imported.SOURCE_PRESCRIBER)
    if named:
        return {"display": named}
    if s["prescriber_id"]:
        return ref(
            "Practitioner",
            s["prescriber_id"],
            person_name(
                s["prescriber__first_name"] or "",
                s["prescriber__last_name"] or "",
                s["prescriber__email"] or "",
            ),
        )
    return None


def encounter(s: Row) -> dict[str, Any]:
    # Written out rather than through clean() (as the other high-volume builders): one per
    # session in a bulk export.
    out: dict[str, Any] = {"resourceType": "Encounter", "id": str(s["id"])}
    if (stamp := _session_stamp(s)) is not None:
        out["meta"] = stamp
    out["status"] = ENCOUNTER_STATUS.get(s["status"], "unknown")
    out["class"] = _encounter_class()
    out["serviceType"] = {"text": "Botulinum toxin treatment"}
    out["subject"] = {"reference": f"Patient/{s['patient_id']}"}
    participants = [{"type": [{"text": "practitioner"}], "individual": treated_by(s)}]
    if (prescriber := prescribed_by(s)) is not None:
        participants.append({"type": [{"text": "prescriber of record"}], "individual": prescriber})
    out["participant"] = participants
    if (treated_on := day(s["treated_on"])) is not None:
        out["period"] = {"start": treated_on, "end": treated_on}
    if (reason := indication_concept(s["indication"])) is not None:
        out["reasonCode"] = [reason]
    out["location"] = [{"location": ref("Location", s["clinic_id"], s["clinic__name"])}]
    out["serviceProvider"] = {"reference": f"Organization/{s['organization_id']}"}
    if s["follow_up_of_id"]:
        out["partOf"] = {"reference": f"Encounter/{s['follow_up_of_id']}"}
    return out


def procedure(s: Row) -> dict[str, Any]:
    brand, generic = product_name(s["product_id"])
    out: dict[str, Any] = {"resourceType": "Procedure", "id": str(s["id"])}
    if (stamp := _session_stamp(s)) is not None:
        out["meta"] = stamp
    if s["protocol_id"]:
        out["extension"] = [{"url": _EXT_PROTOCOL, "valueString": s["protocol_id"]}]
    out["status"] = PROCEDURE_STATUS.get(s["status"], "unknown")
    out["code"] = {
        "coding": [codes.ours("procedure", "toxin-injection", "Botulinum toxin injection")],
        "text": f"Botulinum toxin injection ({brand})",
    }
    out["subject"] = {"reference": f"Patient/{s['patient_id']}"}
    out["encounter"] = {"reference": f"Encounter/{s['id']}"}
    if (treated_on := day(s["treated_on"])) is not None:
        out["performedDateTime"] = treated_on
    out["recorder"] = {"reference": f"Practitioner/{s['created_by_id']}"}
    if s["signed_by_id"]:
        out["asserter"] = {"reference": f"Practitioner/{s['signed_by_id']}"}
    performers = [
        {
            "function": {"text": "practitioner"},
            "actor": treated_by(s),
            "onBehalfOf": {"reference": f"Organization/{s['organization_id']}"},
        }
    ]
    if (prescriber := prescribed_by(s)) is not None:
        performers.append({"function": {"text": "prescriber of record"}, "actor": prescriber})
    out["performer"] = performers
    out["location"] = ref("Location", s["clinic_id"], s["clinic__name"])
    if (reason := indication_concept(s["indication"])) is not None:
        out["reasonCode"] = [reason]
    notes = []
    if s["pre_notes"]:
        notes.append({"text": s["pre_notes"]})
    if s["void_reason"]:
        notes.append({"text": f"Voided: {s['void_reason']}"})
    if notes:
        out["note"] = notes
    out["usedCode"] = [
        concept(
            [coding(_SYSTEM_PRODUCT, s["product_id"], brand)],
            f"{brand} ({generic})" if generic else brand,
        )
    ]
    return out


# --- MedicationAdministration (one per injection point) --------------------------------------

# An injection point row, its session's columns under ``session__``; ``last_amended_at``
# (the session's last amendment) is annotated.
POINT_COLUMNS = (
    "id",
    "number",
    "diagram",
    "x",
    "y",
    "area",
    "muscle",
    "side",
    "units",
    "depth",
    "vial_id",
    "vial__lot__product_id",
    "vial__lot__lot_number",
    "vial__lot__expiry",
    "session_id",
    "session__patient_id",
    "session__status",
    "session__indication",
    "session__product_id",
    "session__treated_on",
    "session__import_source",
    "session__practitioner_id",
    "session__practitioner__first_name",
    "session__practitioner__last_name",
    "session__practitioner__email",
    "session__vial_id",
    "session__vial__lot__lot_number",
    "session__vial__lot__expiry",
    "session__lot_number",
    "session__lot_expiry",
    "session__created_at",
    "session__signed_at",
    "session__voided_at",
    "last_amended_at",
)
DEPTH_TEXT = {"IM": "intramuscular", "ID": "intradermal", "SC": "subcutaneous"}
SIDE_TEXT = {"L": "left", "R": "right", "mid": "midline"}


def figure(value: Decimal) -> str:
    """A decimal as text: whole numbers without a point, others in their shortest form."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return str(int(value))
    return str(value.normalize())


def dose_quantity(units: Decimal, product_id: str) -> dict[str, Any]:
    dose = {"value": number(units), "unit": "U", "system": _SYSTEM_PRODUCT_UNIT}
    if product_id:
        dose["code"] = product_id
    return dose


def body_site(pt: Row) -> dict[str, Any]:
    muscle: str = pt["muscle"]
    area: str = pt["area"]
    point_side: str = pt["side"]
    codings = []
    snomed = codes.muscle(muscle)
    if snomed:
        codings.append(snomed)
    codings.append(coding(_SYSTEM_MUSCLE, muscle))
    codings.append(coding(_SYSTEM_AREA, area))
    side = SIDE_TEXT.get(point_side, point_side)
    lat = codes.laterality(point_side)
    diagram_point: list[dict[str, Any]] = [
        {"url": "diagram", "valueString": pt["diagram"]} if pt["diagram"] else {"url": "diagram"},
        {"url": "x", "valueDecimal": number(pt["x"])},
        {"url": "y", "valueDecimal": number(pt["y"])},
        {"url": "number", "valueInteger": pt["number"]},
    ]
    return {
        "extension": [
            {
                "url": _EXT_LATERALITY,
                "valueCodeableConcept": concept(
                    [lat] if lat else [coding(_SYSTEM_SIDE, point_side)], side
                ),
            },
            {"extension": diagram_point, "url": _EXT_DIAGRAM_POINT},
        ],
        "coding": codings,
        "text": f"{muscle}, {side} ({area})" if side else f"{muscle} ({area})",
    }


def lot_of(pt: Row) -> tuple[str, date | None]:
    """The lot a point's dose came from: its vial's lot, else the lot typed on the session."""
    if pt["vial_id"]:
        return pt["vial__lot__lot_number"], pt["vial__lot__expiry"]
    if pt["session__vial_id"]:
        return pt["session__vial__lot__lot_number"], pt["session__vial__lot__expiry"]
    return pt["session__lot_number"], pt["session__lot_expiry"]


def medication_administration(pt: Row) -> dict[str, Any]:
    # Written out rather than through clean(): one per injection point, the largest type.
    session_id = pt["session_id"]
    product_id = pt["vial__lot__product_id"] if pt["vial_id"] else pt["session__product_id"]
    brand, generic = product_name(product_id)
    lot_number, expiry = lot_of(pt)
    medication: dict[str, Any] = {
        "resourceType": "Medication",
        "id": "med",
        "code": concept(
            [coding(_SYSTEM_PRODUCT, product_id, brand)],
            f"{brand} ({generic})" if generic else brand,
        ),
    }
    batch = {}
    if lot_number:
        batch["lotNumber"] = lot_number
    if expiry is not None:
        batch["expirationDate"] = expiry.isoformat()
    if batch:
        medication["batch"] = batch
    out: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": str(pt["id"])}
    if (stamp := _session_stamp(pt, "session__")) is not None:
        out["meta"] = stamp
    out["contained"] = [medication]
    out["partOf"] = [{"reference": f"Procedure/{session_id}"}]
    out["status"] = ADMIN_STATUS.get(pt["session__status"], "unknown")
    out["category"] = {"text": "Botulinum toxin injection"}
    out["medicationReference"] = (
        {"reference": "#med", "display": brand} if brand else {"reference": "#med"}
    )
    out["subject"] = {"reference": f"Patient/{pt['session__patient_id']}"}
    out["context"] = {"reference": f"Encounter/{session_id}"}
    if (treated_on := day(pt["session__treated_on"])) is not None:
        out["effectiveDateTime"] = treated_on
    out["performer"] = [{"actor": treated_by(pt, "session__")}]
    if (reason := indication_concept(pt["session__indication"])) is not None:
        out["reasonCode"] = [reason]
    depth: str = pt["depth"]
    depth_text = DEPTH_TEXT.get(depth, depth)
    site = body_site(pt)
    dosage: dict[str, Any] = {
        "text": f"{figure(pt['units'])} U {brand}, {depth_text}, {site['text']}",
        "site": site,
    }
    route = codes.route(depth)
    if route:
        dosage["route"] = concept([route], depth_text)
    elif depth_text:
        dosage["route"] = {"text": depth_text}
    dosage["dose"] = dose_quantity(pt["units"], product_id)
    out["dosage"] = dosage
    return out


# --- Observation -----------------------------------------------------------------------------

SURVEY_SCALES = frozenset({"hit-6", "midas", "hdss", "headache-days"})
ASSESSMENT_COLUMNS = (
    "id",
    "patient_id",
    "session_id",
    "scale_id",
    "area",
    "contraction",
    "time_point",
    "assessed_on",
    "value",
    "band",
    "grade",
    "source",
    "rater",
    "recorded_by_id",
    "recorded_at",
    "entered_in_error",
    "error_reason",
)


@cache
def _scale_name(scale_id: str) -> str:
    return scales.scale_name(scale_id)  # an unknown scale raises (as it always has)


def assessment_observation(a: Row) -> dict[str, Any]:
    scale_id, time_point = a["scale_id"], a["time_point"]
    name = _scale_name(scale_id)
    out: dict[str, Any] = {"resourceType": "Observation", "id": f"assessment-{a['id']}"}
    if (stamp := meta(a["recorded_at"])) is not None:
        out["meta"] = stamp
    out["extension"] = [
        {
            "url": _EXT_TIME_POINT,
            "valueCoding": coding(
                _SYSTEM_TIME_POINT, time_point, choice_label(Assessment, "time_point", time_point)
            ),
        }
    ]
    out["status"] = "entered-in-error" if a["entered_in_error"] else "final"
    out["category"] = [_observation_category("survey" if scale_id in SURVEY_SCALES else "exam")]
    out["code"] = concept([coding(_SYSTEM_SCALE, scale_id, name)], name)
    out["subject"] = {"reference": f"Patient/{a['patient_id']}"}
    if a["session_id"]:
        out["encounter"] = {"reference": f"Encounter/{a['session_id']}"}
    if (assessed_on := day(a["assessed_on"])) is not None:
        out["effectiveDateTime"] = assessed_on
    if (issued := instant(a["recorded_at"])) is not None:
        out["issued"] = issued
    if a["rater"] == "patient":
        out["performer"] = [{"reference": f"Patient/{a['patient_id']}"}]
    elif a["recorded_by_id"]:
        out["performer"] = [{"reference": f"Practitioner/{a['recorded_by_id']}"}]
    out["valueQuantity"] = {"value": number(a["value"])}
    if a["band"] or a["grade"]:
        grade = f"grade {a['grade']}" if a["grade"] else ""
        out["interpretation"] = [{"text": " ".join(x for x in (grade, a["band"]) if x)}]
    notes = []
    if a["entered_in_error"] and a["error_reason"]:
        notes.append({"text": f"Entered in error: {a['error_reason']}"})
    if a["source"]:
        notes.append({"text": f"Scoring source: {a['source']}"})
    if notes:
        out["note"] = notes
    if a["area"]:
        out["bodySite"] = {"coding": [coding(_SYSTEM_AREA, a["area"])], "text": a["area"]}
    if a["contraction"]:
        out["method"] = {"text": choice_label(Assessment, "contraction", a["contraction"])}
    return out


ONE_PLACE = Decimal("0.1")


def per_28(count: int, recorded: int) -> Decimal:
    per = Decimal(28)
    return (Decimal(count) * per / Decimal(recorded)).quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def diary_id(patient_id: int, month: date) -> str:
    return f"diary-{patient_id}-{month:%Y-%m}"


def diary_observation(row: Row) -> dict[str, Any]:
    """Headache days of one patient in one calendar month, from the diary (an aggregate row:
    patient_id, month, recorded, headache, migraine, medication, last)."""
    month: date = row["month"]
    if isinstance(month, datetime):
        month = month.date()
    last_day = calendar.monthrange(month.year, month.month)[1]
    recorded, headache = row["recorded"], row["headache"]
    name = "Headache days per 28 days (from the diary)"

    def count(label: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [codes.ours("diary-count", label)], "text": label.replace("-", " ")},
            "valueQuantity": {"value": value, "unit": "days"},
        }

    # Nothing here can be empty (an aggregate of at least one diary day): no clean().
    return {
        "resourceType": "Observation",
        "id": diary_id(row["patient_id"], month),
        "meta": {"lastUpdated": iso_instant(row["last"])},  # the month's last entry
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": codes.data()["observation_category"]["system"],
                        "code": "survey",
                        "display": "Survey",
                    }
                ]
            }
        ],
        "code": {"coding": [codes.ours("scale", "headache-days", name)], "text": name},
        "subject": ref("Patient", row["patient_id"]),
        "effectivePeriod": {
            "start": month.isoformat(),
            "end": month.replace(day=last_day).isoformat(),
        },
        "valueQuantity": {"value": number(per_28(headache, recorded)), "unit": "days/28 days"},
        "note": [
            {
                "text": (
                    f"{headache} headache days in {recorded} diary days recorded this month, "
                    "normalised to 28 days."
                )
            }
        ],
        "component": [
            count("headache-days", headache),
            count("migraine-days", row["migraine"]),
            count("acute-medication-days", row["medication"]),
            count("days-recorded", recorded),
        ],
    }


# --- Consent, Appointment, AdverseEvent ------------------------------------------------------

CONSENT_COLUMNS = (
    "id",
    "organization_id",
    "patient_id",
    "category",
    "template_version",
    "rendered_text",
    "text_hash",
    "method",
    "signed_on",
    "valid_until",
    "recorded_at",
    "withdrawn_at",
    "withdrawn_reason",
)


def consent(c: Row, today: date) -> dict[str, Any]:
    data = codes.data()["consent"]
    status = "inactive" if c["withdrawn_at"] is not None or today > c["valid_until"] else "active"
    category_label = consent_category_label(c["category"])
    notes = f"{category_label}, template version {c['template_version']}; SHA-256 {c['text_hash']}"
    return clean(
        {
            "resourceType": "Consent",
            "id": str(c["id"]),
            "meta": meta(c["recorded_at"], c["withdrawn_at"]),
            "extension": [
                {"url": codes.extension("consent-method"), "valueCode": c["method"]},
                *(
                    [
                        {
                            "url": codes.extension("withdrawn-reason"),
                            "valueString": c["withdrawn_reason"],
                        }
                    ]
                    if c["withdrawn_reason"]
                    else []
                ),
            ],
            "status": status,
            "scope": {"coding": [codes.coding(data["scope"])]},
            "category": [
                {
                    "coding": [
                        codes.coding(data["category"]),
                        codes.ours("consent-category", c["category"], category_label),
                    ]
                }
            ],
            "patient": ref("Patient", c["patient_id"]),
            "dateTime": day(c["signed_on"]),
            "performer": [ref("Patient", c["patient_id"])],
            "organization": [ref("Organization", c["organization_id"])],
            "sourceAttachment": {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(c["rendered_text"].encode("utf-8")).decode("ascii"),
                "title": notes,
                "creation": instant(c["recorded_at"]),
            },
            "policyRule": {
                "coding": [
                    codes.ours("consent-template", f"{c['category']}-v{c['template_version']}")
                ],
                "text": notes,
            },
            "verification": [
                {
                    "verified": True,
                    "verifiedWith": ref("Patient", c["patient_id"]),
                    "verificationDate": instant(c["recorded_at"]),
                }
            ],
            "provision": {
                "type": "deny" if c["withdrawn_at"] is not None else "permit",
                "period": {"start": day(c["signed_on"]), "end": day(c["valid_until"])},
            },
        }
    )


APPOINTMENT_STATUS = {
    "booked": "booked",
    "arrived": "arrived",
    "done": "fulfilled",
    "no_show": "noshow",
    "cancelled": "cancelled",
}
APPOINTMENT_COLUMNS = (
    "id",
    "patient_id",
    "practitioner_id",
    "practitioner__first_name",
    "practitioner__last_name",
    "practitioner__email",
    "clinic_id",
    "clinic__name",
    "room_id",
    "room__name",
    "kind",
    "indication",
    "starts_at",
    "ends_at",
    "status",
    "status_reason",
    "notes",
    "created_at",
    "updated_at",
)


def appointment(a: Row) -> dict[str, Any]:
    status = APPOINTMENT_STATUS.get(a["status"], "booked")
    kind_label = choice_label(Appointment, "kind", a["kind"])
    out: dict[str, Any] = {"resourceType": "Appointment", "id": str(a["id"])}
    if (stamp := meta(a["updated_at"])) is not None:
        out["meta"] = stamp
    if a["room_id"]:
        room = {"url": _EXT_ROOM, "valueString": a["room__name"]}
        out["extension"] = [room if a["room__name"] else {"url": _EXT_ROOM}]
    out["status"] = status
    if status in ("cancelled", "noshow") and a["status_reason"]:
        out["cancelationReason"] = {"text": a["status_reason"]}
    out["serviceType"] = [
        concept([coding(_SYSTEM_APPOINTMENT_TYPE, a["kind"], kind_label)], kind_label)
    ]
    if (reason := indication_concept(a["indication"])) is not None:
        out["reasonCode"] = [reason]
    if kind_label:
        out["description"] = kind_label
    if (start := instant(a["starts_at"])) is not None:
        out["start"] = start
    if (end := instant(a["ends_at"])) is not None:
        out["end"] = end
    out["minutesDuration"] = int((a["ends_at"] - a["starts_at"]).total_seconds() // 60)
    if a["created_at"]:
        out["created"] = a["created_at"].date().isoformat()
    if a["notes"]:
        out["comment"] = a["notes"]
    out["participant"] = [
        {
            "actor": {"reference": f"Patient/{a['patient_id']}"},
            "required": "required",
            "status": "accepted",
        },
        {
            "actor": ref(
                "Practitioner",
                a["practitioner_id"],
                person_name(
                    a["practitioner__first_name"],
                    a["practitioner__last_name"],
                    a["practitioner__email"],
                ),
            ),
            "required": "required",
            "status": "accepted",
        },
        {"actor": ref("Location", a["clinic_id"], a["clinic__name"]), "status": "accepted"},
    ]
    return out


ADVERSE_EVENT_COLUMNS = (
    "id",
    "patient_id",
    "session_id",
    "kind",
    "other_text",
    "description",
    "onset_on",
    "severity",
    "serious",
    "serious_criteria",
    "outcome",
    "outcome_on",
    "action_taken",
    "lots",
    "reported_on",
    "report_reference",
    "recorded_by_id",
    "recorded_at",
    "updated_at",
    "entered_in_error",
    "error_reason",
)


def adverse_event(e: Row) -> dict[str, Any]:
    ae = codes.data()["adverse_event"]
    if e["serious"]:
        criteria = list(e["serious_criteria"] or []) or ["serious"]
        code, seriousness_display = ae["seriousness"].get(criteria[0], ae["seriousness"]["serious"])
    else:
        code, seriousness_display = ae["seriousness"][""]
    outcome_code, outcome_display = ae["outcome"].get(e["outcome"], ae["outcome"]["unknown"])
    label = choice_label(AdverseEvent, "kind", e["kind"])
    what = f"{label}: {e['other_text']}" if e["other_text"] else label
    extensions: list[dict[str, Any]] = []
    if e["description"]:
        extensions.append({"url": codes.extension("description"), "valueString": e["description"]})
    if e["action_taken"]:
        extensions.append(
            {"url": codes.extension("action-taken"), "valueString": e["action_taken"]}
        )
    for criterion in e["serious_criteria"] or []:
        c_code, c_display = ae["seriousness"].get(criterion, ae["seriousness"]["serious"])
        extensions.append(
            {
                "url": codes.extension("seriousness-criterion"),
                "valueCoding": {
                    "system": ae["seriousness_system"],
                    "code": c_code,
                    "display": c_display,
                },
            }
        )
    if e["reported_on"]:
        extensions.append(
            {
                "extension": [
                    {"url": "date", "valueDate": day(e["reported_on"])},
                    *(
                        [{"url": "reference", "valueString": e["report_reference"]}]
                        if e["report_reference"]
                        else []
                    ),
                ],
                "url": codes.extension("reported-to-regulator"),
            }
        )
    for lot in e["lots"] or []:
        brand, _ = product_name(str(lot.get("product_id", "")))
        extensions.append(
            {
                "extension": [
                    {
                        "url": "product",
                        "valueCoding": codes.ours("product", str(lot.get("product_id", "")), brand),
                    },
                    {"url": "lotNumber", "valueString": str(lot.get("lot_number", ""))},
                    *(
                        [{"url": "expiry", "valueDate": str(lot["expiry"])}]
                        if lot.get("expiry")
                        else []
                    ),
                ],
                "url": codes.extension("suspect-lot"),
            }
        )
    if e["entered_in_error"]:
        extensions.append(
            {"url": codes.extension("entered-in-error"), "valueString": e["error_reason"] or "yes"}
        )
    outcome_text = choice_label(AdverseEvent, "outcome", e["outcome"])
    if e["outcome_on"]:
        outcome_text += f" on {e['outcome_on'].isoformat()}"
    return clean(
        {
            "resourceType": "AdverseEvent",
            "id": str(e["id"]),
            "meta": meta(e["updated_at"]),
            "extension": extensions,
            "actuality": "actual",
            "event": {"coding": [codes.ours("adverse-event", e["kind"], label)], "text": what},
            "subject": ref("Patient", e["patient_id"]),
            "encounter": ref("Encounter", e["session_id"]),
            "date": day(e["onset_on"]),
            "detected": day(e["onset_on"]),
            "recordedDate": instant(e["recorded_at"]),
            "seriousness": {
                "coding": [
                    {
                        "system": ae["seriousness_system"],
                        "code": code,
                        "display": seriousness_display,
                    }
                ]
            },
            "severity": {
                "coding": [
                    {
                        "system": ae["severity_system"],
                        "code": e["severity"],
                        "display": ae["severity"].get(e["severity"], e["severity"]),
                    }
                ]
            },
            "outcome": {
                "coding": [
                    {
                        "system": ae["outcome_system"],
                        "code": outcome_code,
                        "display": outcome_display,
                    }
                ],
                "text": outcome_text,
            },
            "recorder": ref("Practitioner", e["recorded_by_id"]),
            "suspectEntity": [{"instance": ref("Procedure", e["session_id"])}],
        }
    )
