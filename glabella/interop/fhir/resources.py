"""FHIR R4 resources built from the database (organization-scoped, read-only).

Contract (the bulk export iterates this):

- :data:`RESOURCE_TYPES`: every type served, in bulk order (referenced types first);
- :func:`iter_resources`: JSON-ready dicts, each exactly as ``fhir.resources.R4B`` writes it
  after validating it (the bulk export validates only the first of each type at run time:
  ``check="first"``, see :mod:`glabella.interop.fhir.kinds`);
- :func:`count_resources`: how many :func:`iter_resources` yields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from glabella.interop.fhir import kinds

RESOURCE_TYPES: tuple[str, ...] = kinds.RESOURCE_TYPES


def iter_resources(
    organization,
    resource_type: str,
    *,
    since: datetime | None = None,
    patient_ids: Iterable[int] | None = None,
    chunk_size: int = 500,
    check: str = "all",
) -> Iterator[dict]:
    """Every RESOURCE_TYPE resource of ORGANIZATION, as validated JSON-ready dicts.

    ``since``: only those changed at or after it. ``patient_ids``: only those in these
    patients' compartments (types outside the patient compartment, such as Organization,
    Location and Practitioner, ignore it). Rows are read with ``QuerySet.iterator(chunk_size)``
    (a bounded number of queries per chunk), so memory stays flat whatever the size.
    ``check``: ``"all"`` validates every resource; ``"first"`` (the bulk export) the first
    of each source only, yielding the rest as built (byte for byte what validation gives).
    """
    kind = kinds.get(resource_type)
    yield from kind.iterate(
        organization, since=since, patient_ids=patient_ids, chunk_size=chunk_size, check=check
    )


def count_resources(organization, resource_type: str, *, since: datetime | None = None) -> int:
    """How many resources :func:`iter_resources` yields for the same arguments."""
    return kinds.get(resource_type).count(organization, since=since)
