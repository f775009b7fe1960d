"""The CSV formats Glabella imports, and writes in a full export (so an export re-imports).

One format per kind: ``patients``, ``history``, ``lots``, ``treatments``. Every file is UTF-8
with a header row; dates are ``YYYY-MM-DD``; decimals use a dot; booleans are ``yes``/``no``.
The column lists below are the contract between the full export (which writes them with
:func:`write_csv` and the ``*_row`` functions) and the import (which reads them, and also
accepts the header synonyms and explicit mappings of :mod:`glabella.interop.imports.mapping`).

``patient_ref`` and ``treatment_ref`` identify a patient and a treatment session *within the
file set*: the Glabella id in an export, the vendor's own id in a vendor's file. History and
treatment rows refer to patients by ``patient_ref``.

The ``*_row`` functions only read attributes; a caller writing many rows should fetch them with
``select_related`` / ``prefetch_related`` (see each function) so the export stays at a bounded
number of queries per chunk.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any, TextIO

from glabella.charting.imported import SOURCE_PRACTITIONER, SOURCE_PRESCRIBER, source_person

KINDS: tuple[str, ...] = ("patients", "history", "lots", "treatments")

PATIENT_COLUMNS: tuple[str, ...] = (
    "patient_ref",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "phone",
    "email",
    "address",
    "weight_kg",
    "preferred_channel",
    "reminder_consent",
    "clinical_notes",
)

HISTORY_COLUMNS: tuple[str, ...] = (
    "patient_ref",
    "kind",
    "code",
    "detail",
    "treated_on",
    "product",
    "units",
    "area",
    "indication",
    "resolved_on",
)

LOT_COLUMNS: tuple[str, ...] = ("product", "lot_number", "expiry", "vial_units", "gtin")

TREATMENT_COLUMNS: tuple[str, ...] = (
    "treatment_ref",
    "patient_ref",
    "date",
    "status",
    "indication",
    "product",
    "practitioner_email",
    "prescriber_email",
    "clinic",
    "lot_number",
    "lot_expiry",
    "point",
    "area",
    "muscle",
    "side",
    "units",
    "depth",
    "diagram",
    "x",
    "y",
    "notes",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": PATIENT_COLUMNS,
    "history": HISTORY_COLUMNS,
    "lots": LOT_COLUMNS,
    "treatments": TREATMENT_COLUMNS,
}

# The columns a file of each kind must have (a value is required in each row, too).
REQUIRED: dict[str, tuple[str, ...]] = {
    "patients": ("given_name", "family_name", "date_of_birth"),
    "history": ("patient_ref", "kind", "code"),
    "lots": ("product", "lot_number", "expiry", "vial_units"),
    "treatments": ("patient_ref", "date", "product"),
}

# File names of the CSV part of a full export (``DIR/csv/<name>``), in import order.
EXPORT_FILES: dict[str, str] = {
    "patients": "patients.csv",
    "history": "history.csv",
    "lots": "lots.csv",
    "treatments": "treatments.csv",
}

# A voided session carries its reason in ``notes``, on a first line starting with this.
VOID_PREFIX = "Voided: "


def text(value: Any) -> str:
    """One cell: '' for None, ISO for dates, plain digits for Decimals, yes/no for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def write_csv(kind: str, rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write ROWS (dicts keyed by the kind's columns) as CSV to OUT; return the row count.

    OUT should be opened with ``newline=""`` and ``encoding="utf-8"``. Missing keys are written
    empty; unknown keys are an error (a typo would silently lose data).
    """
    columns = COLUMNS[kind]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise", lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({c: text(row.get(c)) for c in columns} | _extra(row, columns))
        count += 1
    return count


def _extra(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    # Keep unknown keys so DictWriter raises on them (extrasaction="raise").
    return {k: v for k, v in row.items() if k not in columns}


def patient_row(patient: Any) -> dict[str, str]:
    return {
        "patient_ref": text(patient.pk),
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "date_of_birth": text(patient.date_of_birth),
        "sex": patient.sex,
        "phone": patient.phone,
        "email": patient.email,
        "address": patient.address,
        "weight_kg": text(patient.weight_kg),
        "preferred_channel": patient.preferred_channel,
        "reminder_consent": text(bool(patient.reminder_consent)),
        "clinical_notes": patient.clinical_notes,
    }


def history_row(item: Any) -> dict[str, str]:
    """One history item. Items entered in error are better left out of the CSV (the tables/
    part of an export keeps them); re-importing one would make it active again."""
    return {
        "patient_ref": text(item.patient_id),
        "kind": item.kind,
        "code": item.code,
        "detail": item.detail,
        "treated_on": text(item.treated_on),
        "product": item.product_id,
        "units": text(item.units),
        "area": item.area,
        "indication": item.indication,
        "resolved_on": text(item.resolved_on),
    }


def lot_row(lot: Any) -> dict[str, str]:
    return {
        "product": lot.product_id,
        "lot_number": lot.lot_number,
        "expiry": text(lot.expiry),
        "vial_units": text(lot.vial_units),
        "gtin": lot.gtin,
    }


def session_notes(session: Any) -> str:
    notes = session.pre_notes or ""
    if session.status == "voided":
        reason = (session.void_reason or "").replace("\r", " ").replace("\n", " ").strip()
        return f"{VOID_PREFIX}{reason}" + (f"\n{notes}" if notes else "")
    return notes


def treatment_rows(session: Any) -> Iterator[dict[str, str]]:
    """One row per injection point of SESSION (points removed from a draft are left out); a
    session with no points gives one row with the point columns empty.

    Reads ``session.practitioner``, ``session.prescriber``, ``session.clinic`` and
    ``session.points.all()``: fetch with ``select_related("practitioner", "prescriber",
    "clinic").prefetch_related("points")``.
    """
    base = {
        "treatment_ref": text(session.pk),
        "patient_ref": text(session.patient_id),
        "date": text(session.treated_on),
        "status": session.status,
        "indication": session.indication,
        "product": session.product_id,
        # An imported session keeps the source system's name for a person who is not a user
        # here (the user of record is the importing owner, who did not treat).
        "practitioner_email": source_person(session, SOURCE_PRACTITIONER)
        or (session.practitioner.email if session.practitioner_id else ""),
        "prescriber_email": source_person(session, SOURCE_PRESCRIBER)
        or (session.prescriber.email if session.prescriber_id else ""),
        "clinic": session.clinic.name if session.clinic_id else "",
        "lot_number": session.lot_number,
        "lot_expiry": text(session.lot_expiry),
        "notes": session_notes(session),
    }
    points = sorted((p for p in session.points.all() if not p.removed), key=lambda p: p.number)
    if not points:
        yield base | dict.fromkeys(
            ("point", "area", "muscle", "side", "units", "depth", "diagram", "x", "y"), ""
        )
        return
    for p in points:
        yield base | {
            "point": text(p.number),
            "area": p.area,
            "muscle": p.muscle,
            "side": p.side,
            "units": text(p.units),
            "depth": p.depth,
            "diagram": p.diagram,
            "x": text(p.x),
            "y": text(p.y),
        }
