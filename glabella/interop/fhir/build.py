"""One function per resource: a database row in, a FHIR R4 resource (a plain dict) out.

The dicts are validated by :mod:`glabella.interop.fhir.kinds` with ``fhir.resources.R4B``
before anyone sees them. Builders read only what the row and its ``select_related`` rows
hold (no query per row) and reference other resources by ``Type/id``.

Units are the product's own: a dose is ``{"value": 20, "unit": "U", "system":
<Glabella product-unit CodeSystem>, "code": <product id>}``, with the product named in the
Medication. Nothing converts units between products.
"""

from __future__ import annotations

import base64
import calendar
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from glabella.charting import imported
from glabella.clinical import catalogue, indications, scales
from glabella.interop.fhir import codes

# --- small helpers ---------------------------------------------------------------------------


def ref(resource_type: str, pk: Any, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{resource_type}/{pk}"}
    if display:
        out["display"] = display
    return out


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def meta(*stamps: datetime | None) -> dict[str, str] | None:
    known = [s for s in stamps if s is not None]
    return {"lastUpdated": max(known).isoformat()} if known else None


def number(value: Decimal | int) -> int | Decimal:
    """A JSON number for a Decimal: an int when whole, else the Decimal (fhir.resources keeps
    it exact; its JSON dump writes the shortest form, e.g. 2.5)."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return value.normalize()


def product_name(product_id: str) -> tuple[str, str]:
    """(brand, generic) of a catalogue product; an unknown id is its own name."""
    try:
        p = catalogue.product(product_id)
    except KeyError:
        return product_id, ""
    return p.brand, p.generic


def indication_concept(indication_id: str) -> dict[str, Any] | None:
    if not indication_id:
        return None
    try:
        name = indications.display_name(indication_id)
    except KeyError:
        name = indication_id
    return {"coding": [codes.ours("indication", indication_id, name)], "text": name}


def practitioner_name(user: Any) -> str:
    return (user.get_full_name() or user.email) if user is not None else ""


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


def organization(org: Any) -> dict[str, Any]:
    return clean(
        {
            "resourceType": "Organization",
            "id": str(org.pk),
            "meta": meta(org.created_at),
            "active": True,
            "name": org.name,
        }
    )


def location(clinic: Any) -> dict[str, Any]:
    return clean(
        {
            "resourceType": "Location",
            "id": str(clinic.pk),
            "meta": meta(clinic.created_at),
            "status": "active",
            "name": clinic.name,
            "mode": "instance",
            "address": {"text": clinic.address} if clinic.address else None,
            "managingOrganization": ref("Organization", clinic.organization_id),
            "extension": [{"url": codes.extension("timezone"), "valueCode": clinic.timezone}],
        }
    )


def practitioner(user: Any) -> dict[str, Any]:
    """A staff member (``user`` annotated with ``active_here``: an active membership)."""
    name: dict[str, Any] = {"text": practitioner_name(user)}
    if user.last_name:
        name["family"] = user.last_name
    if user.first_name:
        name["given"] = [user.first_name]
    return clean(
        {
            "resourceType": "Practitioner",
            "id": str(user.pk),
            "meta": meta(user.date_joined),
            "active": bool(user.is_active and getattr(user, "active_here", True)),
            "name": [name],
            "telecom": [{"system": "email", "value": user.email, "use": "work"}],
        }
    )


# --- Patient ---------------------------------------------------------------------------------

PREFERRED = {"email": "email", "sms": "phone", "phone": "phone"}


def patient(p: Any) -> dict[str, Any]:
    telecom = []
    if p.phone:
        telecom.append(
            {
                "system": "phone",
                "value": p.phone,
                "rank": 1 if PREFERRED.get(p.preferred_channel) == "phone" else 2,
            }
        )
    if p.email:
        telecom.append(
            {
                "system": "email",
                "value": p.email,
                "rank": 1 if p.preferred_channel == "email" else 2,
            }
        )
    return clean(
        {
            "resourceType": "Patient",
            "id": str(p.pk),
            "meta": meta(p.updated_at),
            "identifier": [{"system": codes.system("patient-id"), "value": str(p.pk)}],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "family": p.family_name,
                    "given": [p.given_name],
                    "text": p.full_name,
                }
            ],
            "telecom": telecom,
            "gender": p.sex,
            "birthDate": day(p.date_of_birth),
            "address": [{"text": p.address}] if p.address else None,
            "managingOrganization": ref("Organization", p.organization_id),
            "generalPractitioner": None,
        }
    )


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


def _session_stamp(s: Any) -> dict[str, str] | None:
    return meta(s.created_at, s.signed_at, s.voided_at, getattr(s, "last_amended_at", None))


def treated_by(s: Any) -> dict[str, Any]:
    """Who gave the treatment: a Practitioner, or for an imported session whose practitioner
    is not a user here, the name from the source system (never the owner who imported it)."""
    named = imported.source_person(s, imported.SOURCE_PRACTITIONER)
    if named:
        return {"display": named}
    return ref("Practitioner", s.practitioner_id, practitioner_name(s.practitioner))


def prescribed_by(s: Any) -> dict[str, Any] | None:
    named = imported.source_person(s, imported.SOURCE_PRESCRIBER)
    if named:
        return {"display": named}
    if s.prescriber_id:
        return ref("Practitioner", s.prescriber_id, practitioner_name(s.prescriber))
    return None


def encounter(s: Any) -> dict[str, Any]:
    participants = [{"type": [{"text": "practitioner"}], "individual": treated_by(s)}]
    if (prescriber := prescribed_by(s)) is not None:
        participants.append({"type": [{"text": "prescriber of record"}], "individual": prescriber})
    reason = indication_concept(s.indication)
    return clean(
        {
            "resourceType": "Encounter",
            "id": str(s.pk),
            "meta": _session_stamp(s),
            "status": ENCOUNTER_STATUS.get(s.status, "unknown"),
            "class": codes.coding(codes.data()["encounter_class"]),
            "serviceType": {"text": "Botulinum toxin treatment"},
            "subject": ref("Patient", s.patient_id),
            "participant": participants,
            "period": {"start": day(s.treated_on), "end": day(s.treated_on)},
            "reasonCode": [reason] if reason else None,
            "location": [{"location": ref("Location", s.clinic_id, s.clinic.name)}],
            "serviceProvider": ref("Organization", s.organization_id),
            "partOf": ref("Encounter", s.follow_up_of_id) if s.follow_up_of_id else None,
        }
    )


def procedure(s: Any) -> dict[str, Any]:
    brand, generic = product_name(s.product_id)
    reason = indication_concept(s.indication)
    notes = []
    if s.pre_notes:
        notes.append({"text": s.pre_notes})
    if s.void_reason:
        notes.append({"text": f"Voided: {s.void_reason}"})
    performers = [
        {
            "function": {"text": "practitioner"},
            "actor": treated_by(s),
            "onBehalfOf": ref("Organization", s.organization_id),
        }
    ]
    if (prescriber := prescribed_by(s)) is not None:
        performers.append({"function": {"text": "prescriber of record"}, "actor": prescriber})
    return clean(
        {
            "resourceType": "Procedure",
            "id": str(s.pk),
            "meta": _session_stamp(s),
            "status": PROCEDURE_STATUS.get(s.status, "unknown"),
            "code": {
                "coding": [codes.ours("procedure", "toxin-injection", "Botulinum toxin injection")],
                "text": f"Botulinum toxin injection ({brand})",
            },
            "subject": ref("Patient", s.patient_id),
            "encounter": ref("Encounter", s.pk),
            "performedDateTime": day(s.treated_on),
            "recorder": ref("Practitioner", s.created_by_id),
            "asserter": ref("Practitioner", s.signed_by_id) if s.signed_by_id else None,
            "performer": performers,
            "location": ref("Location", s.clinic_id, s.clinic.name),
            "reasonCode": [reason] if reason else None,
            "note": notes,
            "usedCode": [
                {
                    "coding": [codes.ours("product", s.product_id, brand)],
                    "text": f"{brand} ({generic})" if generic else brand,
                }
            ],
            "extension": [{"url": codes.extension("protocol"), "valueString": s.protocol_id}]
            if s.protocol_id
            else None,
        }
    )


# --- MedicationAdministration (one per injection point) --------------------------------------


def dose_quantity(units: Decimal, product_id: str) -> dict[str, Any]:
    return {
        "value": number(units),
        "unit": "U",
        "system": codes.system("product-unit"),
        "code": product_id,
    }


def body_site(pt: Any) -> dict[str, Any]:
    coding = []
    snomed = codes.muscle(pt.muscle)
    if snomed:
        coding.append(snomed)
    coding.append(codes.ours("muscle", pt.muscle))
    coding.append(codes.ours("area", pt.area))
    side = {"L": "left", "R": "right", "mid": "midline"}.get(pt.side, pt.side)
    text = f"{pt.muscle}, {side} ({pt.area})" if side else f"{pt.muscle} ({pt.area})"
    concept: dict[str, Any] = {"coding": coding, "text": text}
    lat = codes.laterality(pt.side)
    concept["extension"] = [
        {
            "url": codes.extension("laterality"),
            "valueCodeableConcept": {
                "coding": [lat] if lat else [codes.ours("side", pt.side)],
                "text": side,
            },
        },
        {
            "url": codes.extension("diagram-point"),
            "extension": [
                {"url": "diagram", "valueString": pt.diagram},
                {"url": "x", "valueDecimal": number(pt.x)},
                {"url": "y", "valueDecimal": number(pt.y)},
                {"url": "number", "valueInteger": pt.number},
            ],
        },
    ]
    return concept


def lot_of(pt: Any) -> tuple[str, date | None]:
    """The lot a point's dose came from: its vial's lot, else the lot typed on the session."""
    vial = pt.vial if pt.vial_id else None
    if vial is not None:
        return vial.lot.lot_number, vial.lot.expiry
    s = pt.session
    if s.vial_id:
        return s.vial.lot.lot_number, s.vial.lot.expiry
    return s.lot_number, s.lot_expiry


def medication_administration(pt: Any) -> dict[str, Any]:
    s = pt.session
    product_id = pt.vial.lot.product_id if pt.vial_id else s.product_id
    brand, generic = product_name(product_id)
    lot_number, expiry = lot_of(pt)
    route = codes.route(pt.depth)
    depth_text = {"IM": "intramuscular", "ID": "intradermal", "SC": "subcutaneous"}.get(
        pt.depth, pt.depth
    )
    medication = clean(
        {
            "resourceType": "Medication",
            "id": "med",
            "code": {
                "coding": [codes.ours("product", product_id, brand)],
                "text": f"{brand} ({generic})" if generic else brand,
            },
            "batch": {"lotNumber": lot_number, "expirationDate": day(expiry)},
        }
    )
    units_text = f"{number(pt.units)} U {brand}"
    return clean(
        {
            "resourceType": "MedicationAdministration",
            "id": str(pt.pk),
            "meta": _session_stamp(s),
            "contained": [medication],
            "status": ADMIN_STATUS.get(s.status, "unknown"),
            "category": {"text": "Botulinum toxin injection"},
            "medicationReference": {"reference": "#med", "display": brand},
            "subject": ref("Patient", s.patient_id),
            "context": ref("Encounter", s.pk),
            "partOf": [ref("Procedure", s.pk)],
            "effectiveDateTime": day(s.treated_on),
            "performer": [{"actor": treated_by(s)}],
            "reasonCode": [indication_concept(s.indication)] if s.indication else None,
            "dosage": {
                "text": f"{units_text}, {depth_text}, {body_site(pt)['text']}",
                "site": body_site(pt),
                "route": {"coding": [route] if route else [], "text": depth_text},
                "dose": dose_quantity(pt.units, product_id),
            },
        }
    )


# --- Observation -----------------------------------------------------------------------------

SURVEY_SCALES = frozenset({"hit-6", "midas", "hdss", "headache-days"})


def _scale_name(scale_id: str) -> str:
    try:
        return scales.scale_name(scale_id)
    except KeyError:
        return scale_id


def assessment_observation(a: Any) -> dict[str, Any]:
    name = _scale_name(a.scale_id)
    category = "survey" if a.scale_id in SURVEY_SCALES else "exam"
    cat = codes.data()["observation_category"]
    performer = (
        ref("Patient", a.patient_id)
        if a.rater == "patient"
        else (ref("Practitioner", a.recorded_by_id) if a.recorded_by_id else None)
    )
    interpretation = []
    if a.band or a.grade:
        interpretation.append(
            {"text": " ".join(x for x in (f"grade {a.grade}" if a.grade else "", a.band) if x)}
        )
    notes = []
    if a.entered_in_error and a.error_reason:
        notes.append({"text": f"Entered in error: {a.error_reason}"})
    if a.source:
        notes.append({"text": f"Scoring source: {a.source}"})
    return clean(
        {
            "resourceType": "Observation",
            "id": f"assessment-{a.pk}",
            "meta": meta(a.recorded_at),
            "status": "entered-in-error" if a.entered_in_error else "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": cat["system"],
                            "code": category,
                            "display": cat["codes"][category],
                        }
                    ]
                }
            ],
            "code": {"coding": [codes.ours("scale", a.scale_id, name)], "text": name},
            "subject": ref("Patient", a.patient_id),
            "encounter": ref("Encounter", a.session_id) if a.session_id else None,
            "effectiveDateTime": day(a.assessed_on),
            "issued": instant(a.recorded_at),
            "performer": [performer] if performer else None,
            "valueQuantity": {"value": number(a.value)},
            "interpretation": interpretation,
            "bodySite": {"coding": [codes.ours("area", a.area)], "text": a.area}
            if a.area
            else None,
            "method": {"text": a.get_contraction_display()} if a.contraction else None,
            "note": notes,
            "extension": [
                {
                    "url": codes.extension("time-point"),
                    "valueCoding": codes.ours(
                        "time-point", a.time_point, a.get_time_point_display()
                    ),
                }
            ],
        }
    )


ONE_PLACE = Decimal("0.1")


def per_28(count: int, recorded: int) -> Decimal:
    per = Decimal(28)
    return (Decimal(count) * per / Decimal(recorded)).quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def diary_id(patient_id: int, month: date) -> str:
    return f"diary-{patient_id}-{month:%Y-%m}"


def diary_observation(row: dict[str, Any]) -> dict[str, Any]:
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

    return clean(
        {
            "resourceType": "Observation",
            "id": diary_id(row["patient_id"], month),
            "meta": meta(row["last"]),
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
    )


# --- Consent, Appointment, AdverseEvent ------------------------------------------------------


def consent(c: Any, today: date) -> dict[str, Any]:
    data = codes.data()["consent"]
    status = "inactive" if c.withdrawn_at is not None or today > c.valid_until else "active"
    notes = f"{c.category_label}, template version {c.template_version}; SHA-256 {c.text_hash}"
    return clean(
        {
            "resourceType": "Consent",
            "id": str(c.pk),
            "meta": meta(c.recorded_at, c.withdrawn_at),
            "status": status,
            "scope": {"coding": [codes.coding(data["scope"])]},
            "category": [
                {
                    "coding": [
                        codes.coding(data["category"]),
                        codes.ours("consent-category", c.category, c.category_label),
                    ]
                }
            ],
            "patient": ref("Patient", c.patient_id),
            "dateTime": day(c.signed_on),
            "performer": [ref("Patient", c.patient_id)],
            "organization": [ref("Organization", c.organization_id)],
            "sourceAttachment": {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(c.rendered_text.encode("utf-8")).decode("ascii"),
                "title": notes,
                "creation": instant(c.recorded_at),
            },
            "policyRule": {
                "coding": [codes.ours("consent-template", f"{c.category}-v{c.template_version}")],
                "text": notes,
            },
            "verification": [
                {
                    "verified": True,
                    "verifiedWith": ref("Patient", c.patient_id),
                    "verificationDate": instant(c.recorded_at),
                }
            ],
            "provision": {
                "type": "deny" if c.withdrawn_at is not None else "permit",
                "period": {"start": day(c.signed_on), "end": day(c.valid_until)},
            },
            "extension": [
                {"url": codes.extension("consent-method"), "valueCode": c.method},
                *(
                    [
                        {
                            "url": codes.extension("withdrawn-reason"),
                            "valueString": c.withdrawn_reason,
                        }
                    ]
                    if c.withdrawn_reason
                    else []
                ),
            ],
        }
    )


APPOINTMENT_STATUS = {
    "booked": "booked",
    "arrived": "arrived",
    "done": "fulfilled",
    "no_show": "noshow",
    "cancelled": "cancelled",
}


def appointment(a: Any) -> dict[str, Any]:
    status = APPOINTMENT_STATUS.get(a.status, "booked")
    participants = [
        {"actor": ref("Patient", a.patient_id), "required": "required", "status": "accepted"},
        {
            "actor": ref("Practitioner", a.practitioner_id, practitioner_name(a.practitioner)),
            "required": "required",
            "status": "accepted",
        },
        {"actor": ref("Location", a.clinic_id, a.clinic.name), "status": "accepted"},
    ]
    reason = indication_concept(a.indication)
    return clean(
        {
            "resourceType": "Appointment",
            "id": str(a.pk),
            "meta": meta(a.updated_at),
            "status": status,
            "cancelationReason": {"text": a.status_reason}
            if status in ("cancelled", "noshow") and a.status_reason
            else None,
            "serviceType": [
                {
                    "coding": [codes.ours("appointment-type", a.kind, a.get_kind_display())],
                    "text": a.get_kind_display(),
                }
            ],
            "reasonCode": [reason] if reason else None,
            "description": a.get_kind_display(),
            "start": instant(a.starts_at),
            "end": instant(a.ends_at),
            "minutesDuration": int((a.ends_at - a.starts_at).total_seconds() // 60),
            "created": day(a.created_at.date()) if a.created_at else None,
            "comment": a.notes,
            "participant": participants,
            "extension": [{"url": codes.extension("room"), "valueString": a.room.name}]
            if a.room_id
            else None,
        }
    )


def adverse_event(e: Any) -> dict[str, Any]:
    ae = codes.data()["adverse_event"]
    if e.serious:
        criteria = list(e.serious_criteria or []) or ["serious"]
        code, display = ae["seriousness"].get(criteria[0], ae["seriousness"]["serious"])
    else:
        code, display = ae["seriousness"][""]
    outcome_code, outcome_display = ae["outcome"].get(e.outcome, ae["outcome"]["unknown"])
    label = e.get_kind_display()
    what = f"{label}: {e.other_text}" if e.other_text else label
    extensions = []
    if e.description:
        extensions.append({"url": codes.extension("description"), "valueString": e.description})
    if e.action_taken:
        extensions.append({"url": codes.extension("action-taken"), "valueString": e.action_taken})
    for criterion in e.serious_criteria or []:
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
    if e.reported_on:
        extensions.append(
            {
                "url": codes.extension("reported-to-regulator"),
                "extension": [
                    {"url": "date", "valueDate": day(e.reported_on)},
                    *(
                        [{"url": "reference", "valueString": e.report_reference}]
                        if e.report_reference
                        else []
                    ),
                ],
            }
        )
    for lot in e.lots or []:
        brand, _ = product_name(str(lot.get("product_id", "")))
        extensions.append(
            {
                "url": codes.extension("suspect-lot"),
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
            }
        )
    if e.entered_in_error:
        extensions.append(
            {"url": codes.extension("entered-in-error"), "valueString": e.error_reason or "yes"}
        )
    return clean(
        {
            "resourceType": "AdverseEvent",
            "id": str(e.pk),
            "meta": meta(e.updated_at),
            "actuality": "actual",
            "event": {"coding": [codes.ours("adverse-event", e.kind, label)], "text": what},
            "subject": ref("Patient", e.patient_id),
            "encounter": ref("Encounter", e.session_id),
            "date": day(e.onset_on),
            "detected": day(e.onset_on),
            "recordedDate": instant(e.recorded_at),
            "recorder": ref("Practitioner", e.recorded_by_id),
            "seriousness": {
                "coding": [{"system": ae["seriousness_system"], "code": code, "display": display}]
            },
            "severity": {
                "coding": [
                    {
                        "system": ae["severity_system"],
                        "code": e.severity,
                        "display": ae["severity"].get(e.severity, e.severity),
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
                "text": f"{e.get_outcome_display()}"
                + (f" on {e.outcome_on.isoformat()}" if e.outcome_on else ""),
            },
            "suspectEntity": [{"instance": ref("Procedure", e.session_id)}],
            "extension": extensions,
        }
    )
