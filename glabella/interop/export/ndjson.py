"""FHIR NDJSON for an export: one file per resource type, streamed from the FHIR resources.

Used by both the FHIR bulk export (``$export``) and the full export. The resources come from
:func:`glabella.interop.fhir.resources.iter_resources`, which reads the database in chunks of
plain rows; this module writes them a line at a time
(:func:`glabella.interop.export.files.write_ndjson`), so neither side ever holds a whole type.

Validation: the export asks for ``check="first"``. The first resource of each source is
validated with ``fhir.resources`` (R4B) and must come back byte for byte as built, or the
export stops (fail fast); the others are written as built, without a pydantic round trip
per row (it was about 85% of an export's time). The builders return exactly what
fhir.resources writes after validating (:mod:`glabella.interop.fhir.build`), and the test
suite validates every line of every type of an export of a fixture that takes every branch
of every builder (``interop/tests/test_bulk_fast.py``). The read and search API still
validate every resource they return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from glabella.interop.export.files import Written, write_ndjson
from glabella.interop.fhir import resources

# The patient compartment (FHIR R4 CompartmentDefinition "Patient"), as far as Glabella serves
# it: what a Patient-level export ($export on /Patient) includes. Organization, Location and
# Practitioner are outside it.
PATIENT_COMPARTMENT = frozenset(
    {
        "Patient",
        "Encounter",
        "Procedure",
        "MedicationAdministration",
        "Observation",
        "Consent",
        "Appointment",
        "AdverseEvent",
        "AllergyIntolerance",
        "Condition",
        "MedicationStatement",
        "Media",
        "DocumentReference",
    }
)


def served_types() -> tuple[str, ...]:
    return tuple(resources.RESOURCE_TYPES)


def patient_types() -> tuple[str, ...]:
    return tuple(t for t in resources.RESOURCE_TYPES if t in PATIENT_COMPARTMENT)


def count(organization: object, types: Sequence[str], since: datetime | None) -> int:
    return sum(resources.count_resources(organization, t, since=since) for t in types)


def write_types(
    organization: object,
    root: Path,
    types: Iterable[str],
    *,
    folder: str = "",
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    keep_empty: bool = False,
    chunk_size: int = 2000,
) -> list[tuple[str, Written]]:
    """Write ROOT/FOLDER/<Type>.ndjson for each of TYPES; return (type, file) for each.

    An empty type leaves no file unless KEEP_EMPTY (the bulk spec wants an empty ``output``
    for nothing found; the full export keeps every type, so a reader sees it was asked).
    """
    written = []
    for resource_type in types:
        relative = f"{folder}{resource_type}.ndjson"
        entry = write_ndjson(
            root,
            relative,
            resources.iter_resources(
                organization, resource_type, since=since, chunk_size=chunk_size, check="first"
            ),
            progress=progress,
        )
        if entry.records == 0 and not keep_empty:
            (root / relative).unlink()
            continue
        written.append((resource_type, entry))
    return written
