"""Export benchmarks: FHIR NDJSON and table CSV throughput against a plain-SQL baseline, and
the peak memory of a bulk export (which must stay flat whatever the size).

Wiring (bench/run.py): ``from bench.bench_export import EXPORT_CASES`` and time
``[*CASES, *EXPORT_CASES]``. Standalone, on the bench database bench/run.py generated:
``python bench/bench_export.py`` prints rows per second and the peak memory per type.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench' / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glabella.settings")
    import django

    django.setup()

from django.db import connection  # noqa: E402

from bench.cases import Case  # noqa: E402
from glabella.accounts.models import Membership, Organization  # noqa: E402
from glabella.interop.export import ndjson, tables  # noqa: E402
from glabella.interop.export.files import private_dir  # noqa: E402
from glabella.patients.models import HistoryItem, Patient  # noqa: E402
from glabella.patients.screening import CODES  # noqa: E402


def _fhir_patients(org: Organization) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        written = ndjson.write_types(org, Path(tmp), ["Patient"])
        return sum(entry.records or 0 for _, entry in written)


def _sql_patients(org: Organization) -> int:
    """The floor: the same rows straight from SQL to JSON lines, no FHIR model, no checks."""
    count = 0
    with tempfile.TemporaryFile("w") as out, connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, given_name, family_name, date_of_birth, sex, phone, email "
            "FROM patients_patient WHERE organization_id = %s ORDER BY id",
            [org.pk],
        )
        while rows := cursor.fetchmany(500):
            for r in rows:
                out.write(
                    json.dumps(
                        {
                            "resourceType": "Patient",
                            "id": str(r[0]),
                            "name": [{"given": [r[1]], "family": r[2]}],
                            "birthDate": str(r[3]),
                            "gender": r[4],
                            "telecom": [r[5], r[6]],
                        }
                    )
                    + "\n"
                )
                count += 1
    return count


HISTORY_PER_PATIENT = 2
"""History items per patient of the bench organization (on average): the conditions,
allergies and medications of the screening, a few resolved or entered in error."""


def history_rows(org: Organization) -> int:
    """Give ORG (the query cases' synthetic organization) its history items if it has none:
    HISTORY_PER_PATIENT per patient on average, drawn from the screening codes (no outside
    treatments: the dose check's case reads those). Idempotent; returns the count."""
    have = HistoryItem.objects.filter(organization=org).count()
    if have:
        return have
    if not org.name.startswith("Benchmark "):
        raise SystemExit(f"{org.name!r} is not a benchmark organization: not writing into it")
    rng = random.Random(11)
    codes = [c for c in CODES if c.kind in ("condition", "allergy", "medication")]
    recorder = Membership.objects.filter(organization=org).values_list("user_id", flat=True)[0]
    patients = list(Patient.objects.filter(organization=org).values_list("pk", flat=True))
    rows = []
    for patient_id in patients:
        for _ in range(rng.randint(0, 2 * HISTORY_PER_PATIENT)):
            code = rng.choice(codes)
            resolved = rng.random() < 0.1
            error = not resolved and rng.random() < 0.02
            rows.append(
                HistoryItem(
                    organization=org,
                    patient_id=patient_id,
                    kind=code.kind,
                    code=code.code,
                    detail=rng.choice(["", "", "since 2019", 'said "mild", check at review']),
                    recorded_by_id=recorder,
                    resolved_on=date(2025, 6, 1) if resolved else None,
                    entered_in_error=error,
                    error_reason="wrong patient" if error else "",
                )
            )
    HistoryItem.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


@dataclass
class HistoryTable:
    org: Organization
    table: tables.Table
    root: Path  # the export's folder, made once as an export makes it (not once per table)
    folder: tempfile.TemporaryDirectory[str]


def _history_setup(org: Organization) -> HistoryTable:
    history_rows(org)
    folder = tempfile.TemporaryDirectory()
    root = Path(folder.name)
    private_dir(root / tables.FOLDER)
    table = next(t for t in tables.tables() if t.model is HistoryItem)
    return HistoryTable(org, table, root, folder)


def _table_history(ctx: HistoryTable) -> int:
    return tables.write_table(ctx.table, ctx.org, ctx.root)[0].records or 0


def _sql_history(ctx: HistoryTable) -> int:
    org = ctx.org
    count = 0
    with tempfile.TemporaryFile("w") as out, connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM patients_historyitem WHERE organization_id = %s ORDER BY id", [org.pk]
        )
        while rows := cursor.fetchmany(1000):
            for r in rows:
                out.write(",".join("" if v is None else f'"{v}"' for v in r) + "\r\n")
                count += 1
    return count


EXPORT_CASES = [
    Case(
        "export: FHIR Patient NDJSON",
        "<= 20x plain SQL",
        lambda org: org,
        _fhir_patients,
        _sql_patients,
    ),
    Case(
        # Until 21/11/2026 the bench organization had no history items: this timed an empty
        # table (a query, a file and a folder: fixed costs only, 8x). Now about two per patient.
        "export: history table CSV (about 2 items per patient)",
        "<= 3x plain SQL",
        _history_setup,
        _table_history,
        _sql_history,
    ),
]


def main() -> None:
    org = Organization.objects.order_by("pk").first()
    if org is None:
        raise SystemExit("No organization: run bench/run.py first (it generates the data).")
    with tempfile.TemporaryDirectory() as tmp:
        for resource_type in ndjson.served_types():
            tracemalloc.start()
            started = time.perf_counter()
            ((_, entry),) = ndjson.write_types(org, Path(tmp), [resource_type], keep_empty=True)
            seconds = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows = entry.records or 0
            print(
                f"{resource_type:26} {rows:>9} resources {seconds:8.2f} s "
                f"{rows / seconds if seconds else 0:10.0f}/s  peak {peak / 1e6:6.1f} MB"
            )


if __name__ == "__main__":
    main()
