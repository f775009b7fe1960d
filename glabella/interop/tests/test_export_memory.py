"""Exports stream: memory stays flat whatever the size.

Each test writes the same kind of data at 1x and 10x the size and compares the peak memory
Python allocated while writing (tracemalloc). A writer that held a whole type, a whole table
or a whole file would grow tenfold; a streaming one stays within a small margin. The data is
bulk-created (volume test fixtures); the export reads it through the real code path.
"""

from __future__ import annotations

import tracemalloc
from datetime import date, timedelta

from glabella.interop.export import ndjson, tables
from glabella.interop.export.files import write_ndjson
from glabella.patients.models import HistoryItem, Patient

MARGIN = 256 * 1024  # bytes: allocator noise, buffers; a tenfold type would be megabytes


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _resource(i: int) -> dict:
    return {
        "resourceType": "Patient",
        "id": str(i),
        "name": [{"family": f"Family{i}", "given": ["Given", "Middle"]}],
        "telecom": [{"system": "phone", "value": f"+44 7700 {i:06d}"}],
        "text": {"status": "generated", "div": "<div>" + "x" * 800 + "</div>"},
    }


def test_the_ndjson_writer_holds_one_resource_at_a_time(tmp_path):
    small = _peak(lambda: write_ndjson(tmp_path, "a.ndjson", (_resource(i) for i in range(2_000))))
    large = _peak(lambda: write_ndjson(tmp_path, "b.ndjson", (_resource(i) for i in range(20_000))))
    assert (tmp_path / "b.ndjson").stat().st_size > 10 * 2_000 * 800  # really 10x the data
    assert large < small + MARGIN, (small, large)


def _patients(world, n: int, start: int = 0) -> None:
    Patient.objects.bulk_create(
        Patient(
            organization=world.org,
            given_name=f"Given{i}",
            family_name=f"Family{i}",
            name_key=f"family{i} given{i}",
            date_of_birth=date(1980, 1, 1) + timedelta(days=i),
            email=f"p{i}@example.test",
            address="1 High Street\nLondon",
        )
        for i in range(start, start + n)
    )


def test_a_fhir_type_is_streamed_from_the_database_to_the_file(world, tmp_path):
    _patients(world, 150)
    small = _peak(lambda: ndjson.write_types(world.org, tmp_path / "s", ["Patient"], chunk_size=50))
    _patients(world, 1_350, start=150)
    large = _peak(lambda: ndjson.write_types(world.org, tmp_path / "l", ["Patient"], chunk_size=50))
    lines = (tmp_path / "l" / "Patient.ndjson").read_bytes().count(b"\n")
    assert lines == Patient.objects.for_org(world.org).count() == 1_501
    assert large < small + MARGIN, (small, large)


def test_a_table_is_streamed_from_the_database_to_the_file(world, tmp_path):
    table = next(t for t in tables.tables() if t.model is HistoryItem)

    def items(n):
        HistoryItem.objects.bulk_create(
            HistoryItem(
                organization=world.org,
                patient=world.patient,
                kind="condition",
                code="other",
                detail="d" * 150,
                recorded_by=world.users["injector"],
            )
            for _ in range(n)
        )

    # The writer holds up to EVERY lines before it writes them out (and CHUNK_SIZE rows from the
    # database): both runs must fill a whole batch, or the large one holds more by design. The
    # batch is a fixed bound; holding the table would grow with it.
    def write(folder):
        return tables.write_table(table, world.org, tmp_path / folder, chunk_size=100, every=100)

    items(300)
    small = _peak(lambda: write("s"))
    items(2_700)
    large = _peak(lambda: write("l"))
    (written,) = write("c")
    assert written.records == HistoryItem.objects.for_org(world.org).count() >= 3_000
    assert large < small + MARGIN, (small, large)
