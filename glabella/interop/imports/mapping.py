"""Which column of a file is which field: our own names, common header synonyms, an explicit map.

A header is matched after casefolding and turning anything but letters and digits into spaces,
so ``Date of Birth``, ``date_of_birth`` and ``DATE-OF-BIRTH`` are the same. The synonyms are
generic words that clinic systems and spreadsheets use for these fields; they are not a claim
that any named vendor's export matches. Anything else is mapped explicitly
(``--map "Client First Name=given_name"`` or a JSON file ``{"Client First Name": "given_name"}``);
mapping a column to ``ignore`` (or an empty name) leaves it out on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from glabella.interop.imports.formats import COLUMNS
from glabella.interop.imports.values import norm

IGNORE = "ignore"

_SHARED = {
    "patient_ref": [
        "patient id",
        "patient ref",
        "patient reference",
        "patient number",
        "patient no",
        "client id",
        "client ref",
        "client number",
        "customer id",
        "record number",
        "chart number",
        "mrn",
        "medical record number",
    ],
    "product": ["product", "product name", "toxin", "brand", "drug", "medication", "product id"],
    "units": ["units", "unit", "dose", "dose units", "units used", "amount units", "total units"],
    "area": ["area", "treatment area", "site", "injection site", "region", "body area"],
    "indication": ["indication", "treatment type", "reason"],
}

SYNONYMS: dict[str, dict[str, list[str]]] = {
    "patients": {
        "patient_ref": _SHARED["patient_ref"] + ["id", "ref", "reference"],
        "given_name": ["first name", "forename", "given name", "firstname", "first", "given"],
        "family_name": ["surname", "last name", "family name", "lastname", "last"],
        "date_of_birth": ["dob", "date of birth", "birth date", "birthdate", "birthday", "born"],
        "sex": ["sex", "gender"],
        "phone": [
            "mobile",
            "mobile phone",
            "mobile number",
            "cell",
            "cell phone",
            "phone",
            "phone number",
            "telephone",
            "tel",
        ],
        "email": ["email", "e mail", "email address", "e mail address"],
        "address": ["address", "home address", "postal address", "street address"],
        "weight_kg": ["weight", "weight kg", "weight in kg"],
        "preferred_channel": ["preferred channel", "reminder channel", "contact preference"],
        "reminder_consent": [
            "reminder consent",
            "marketing consent",
            "consent to reminders",
            "agrees to reminders",
        ],
        "clinical_notes": ["notes", "clinical notes", "medical notes", "comments"],
    },
    "history": {
        "patient_ref": _SHARED["patient_ref"],
        "kind": ["kind", "type", "history type", "category"],
        "code": ["code"],
        "detail": ["detail", "details", "description", "notes", "comment"],
        "treated_on": ["treated on", "treatment date", "date"],
        "product": _SHARED["product"],
        "units": _SHARED["units"],
        "area": _SHARED["area"],
        "indication": _SHARED["indication"],
        "resolved_on": ["resolved on", "resolved", "end date"],
    },
    "lots": {
        "product": _SHARED["product"],
        "lot_number": ["lot", "lot number", "lot no", "batch", "batch number", "batch no"],
        "expiry": ["expiry", "expiry date", "expiration", "expiration date", "exp", "use by"],
        "vial_units": ["vial units", "vial size", "units per vial", "size"],
        "gtin": ["gtin", "product code", "barcode"],
    },
    "treatments": {
        "treatment_ref": [
            "treatment id",
            "treatment ref",
            "treatment reference",
            "appointment id",
            "visit id",
            "session id",
            "encounter id",
        ],
        "patient_ref": _SHARED["patient_ref"],
        "date": [
            "date",
            "treatment date",
            "date of treatment",
            "visit date",
            "appointment date",
            "treated on",
        ],
        "status": ["status", "treatment status"],
        "indication": _SHARED["indication"],
        "product": _SHARED["product"],
        "practitioner_email": [
            "practitioner email",
            "practitioner",
            "injector",
            "injector email",
            "clinician",
            "clinician email",
            "staff",
            "treated by",
        ],
        "prescriber_email": ["prescriber email", "prescriber"],
        "clinic": ["clinic", "location", "branch", "site name"],
        "lot_number": ["lot", "lot number", "lot no", "batch", "batch number", "batch no"],
        "lot_expiry": ["lot expiry", "batch expiry", "expiry", "expiry date"],
        "point": ["point", "point number"],
        "area": _SHARED["area"],
        "muscle": ["muscle"],
        "side": ["side", "laterality"],
        "units": _SHARED["units"],
        "depth": ["depth", "route"],
        "diagram": ["diagram"],
        "x": ["x"],
        "y": ["y"],
        "notes": ["notes", "treatment notes", "comments", "comment"],
    },
}


def synonym_table(kind: str) -> dict[str, str]:
    """Normalised header -> field for KIND: the field names themselves and their synonyms."""
    table: dict[str, str] = {}
    for field in COLUMNS[kind]:
        table[norm(field)] = field
    for field, words in SYNONYMS[kind].items():
        for word in words:
            table.setdefault(norm(word), field)
    return table


class MappingError(ValueError):
    pass


def parse_map_options(items: Iterable[str]) -> dict[str, str]:
    """``["Client First Name=given_name", ...]`` -> {header: field}."""
    result: dict[str, str] = {}
    for item in items:
        header, sep, field = item.rpartition("=")
        if not sep or not header.strip():
            raise MappingError(
                f"“{item}” is not a mapping: write the file's column, “=”, and the Glabella "
                "column, e.g. “Client First Name=given_name”."
            )
        result[header.strip()] = field.strip()
    return result


def load_mapping_file(path: str | Path) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MappingError(f"The mapping file {path} could not be read: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str | None) for k, v in data.items()
    ):
        raise MappingError(
            f"The mapping file {path} must be a JSON object of “file column”: “Glabella "
            "column” pairs."
        )
    return {k: (v or "") for k, v in data.items()}


def resolve(
    kind: str, headers: list[str], explicit: Mapping[str, str] | None = None
) -> tuple[dict[int, str], list[str], list[str]]:
    """Map the file's HEADERS to fields of KIND.

    Returns ``(index -> field, problems, ignored headers)``. An explicit mapping names the
    file's header exactly as written (case and spaces aside) and wins over the synonyms.
    """
    fields = COLUMNS[kind]
    table = synonym_table(kind)
    explicit_n = {norm(k): v for k, v in (explicit or {}).items()}
    problems: list[str] = []
    for header, field in (explicit or {}).items():
        if field and field != IGNORE and field not in fields:
            problems.append(
                f"The mapping “{header}={field}” names no Glabella column of a {kind} file. "
                f"The columns are: {', '.join(fields)}."
            )
        if norm(header) not in {norm(h) for h in headers}:
            problems.append(
                f"The mapping names the column “{header}”, which the file does not have."
            )
    by_index: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for i, header in enumerate(headers):
        key = norm(header)
        if key in explicit_n:
            field = explicit_n[key]
            if not field or field == IGNORE or field not in fields:
                ignored.append(header)
                continue
        else:
            field = table.get(key, "")
            if not field:
                if header.strip():
                    ignored.append(header)
                continue
        if field in seen:
            problems.append(
                f"The columns “{seen[field]}” and “{header}” are both read as {field}. Map one "
                f'of them to something else, or to “ignore” (--map "{header}=ignore").'
            )
            continue
        seen[field] = header
        by_index[i] = field
    return by_index, problems, ignored
