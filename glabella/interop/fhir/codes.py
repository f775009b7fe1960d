"""Code systems of the FHIR server: the verified standard codes (``codes.json``) and our own.

Our own identifiers (products, areas, muscles, indications, scales, units of a product) live in
Glabella CodeSystems under one base, :data:`BASE`; a standard SNOMED CT, LOINC or HL7 code is
sent only when ``codes.json`` lists it with the source it was verified in.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

BASE = "https://glabella.dev/fhir"
SNOMED = "http://snomed.info/sct"


def system(name: str) -> str:
    """The URL of Glabella's own CodeSystem NAME (e.g. ``area``, ``muscle``, ``product``)."""
    return f"{BASE}/CodeSystem/{name}"


def extension(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


@cache
def data() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("codes.json")).read_text(encoding="utf-8"))


def coding(entry: dict[str, Any]) -> dict[str, str]:
    """A FHIR Coding from a ``codes.json`` entry (its ``source`` stays in the file)."""
    return {"system": entry["system"], "code": entry["code"], "display": entry["display"]}


def ours(name: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system(name), "code": code}
    if display:
        out["display"] = display
    return out


def route(depth: str) -> dict[str, str] | None:
    entry = data()["route"].get(depth)
    return coding(entry) if entry else None


def laterality(side: str) -> dict[str, str] | None:
    entry = data()["laterality"].get(side)
    return coding(entry) if entry else None


def muscle(name: str) -> dict[str, str] | None:
    entry = data()["muscle"].get(name.strip().lower())
    return coding(entry) if entry else None
