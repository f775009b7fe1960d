"""The table CSVs of the full export: write_table writes, byte for byte, what the dialect in
glabella/interop/export/tables.py says (csv_line of cell of each value, raw bytes as files),
whatever the table, the types of its values and the batching of its rows."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import models

from glabella.interop.export import tables
from glabella.interop.tests.test_export_world import rich_org
from glabella.patients.models import HistoryItem


def _reference(table: tables.Table, org: Any, root: Path) -> tuple[bytes, dict[str, bytes]]:
    """The CSV and the binary files as the module's docstring defines them, written the
    plainest way: one csv_line of cell() per row, read whole."""
    fields = tables.columns(table.model)
    lines = [tables.csv_line([f.attname for f in fields])]
    files: dict[str, bytes] = {}
    rows = table.scope(org).order_by("pk").values_list(*[f.attname for f in fields])
    for row in rows:
        cells = []
        for field, value in zip(fields, row, strict=True):
            if isinstance(field, models.BinaryField) and value is not None:
                name = f"{tables.FOLDER}{table.label}/{row[0]}.{field.attname}.bin"
                files[name] = bytes(value)
                cells.append(name)
            else:
                cells.append(tables.cell(value))
        lines.append(tables.csv_line(cells))
    return "".join(lines).encode("utf-8"), files


@pytest.mark.parametrize("every", [1, 3, 500])
def test_every_table_is_written_as_the_dialect_says(world, tmp_path, every):
    rich = rich_org()
    HistoryItem.objects.create(
        organization=rich.org,
        patient=rich.photo.patient,
        kind="condition",
        code="other",
        detail='said "mild", then\r\nmore; a, b',
        recorded_by=rich.injector.user,
    )
    seen = binaries = 0
    for table in tables.tables():
        calls: list[int] = []
        root = tmp_path / f"{table.label}-{every}"
        written = tables.write_table(table, rich.org, root, progress=calls.append, every=every)
        expected, files = _reference(table, rich.org, tmp_path / "ref")
        csv_entry, *extra = written
        data = (root / table.path).read_bytes()
        assert data == expected, table.label
        assert csv_entry.bytes == len(data) and csv_entry.sha256 == hashlib.sha256(data).hexdigest()
        assert csv_entry.records == sum(calls) == table.scope(rich.org).count()
        assert all(n <= every for n in calls)
        assert {e.path: (root / e.path).read_bytes() for e in extra} == files, table.label
        seen += csv_entry.records or 0
        binaries += len(files)
    assert seen > 50 and binaries > 0  # the rich world: many rows, a drawn signature


def test_the_fast_text_of_each_type_is_cells():
    """write_table's table of texts by exact type gives what cell() gives."""
    samples = [
        "",
        'a "b"',
        0,
        -12,
        True,
        False,
        Decimal("12.50"),
        uuid.UUID(int=7),
        date(2026, 1, 2),
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        time(7, 8, 9),
    ]
    for value in samples:
        assert tables._TEXT[type(value)](value) == tables.cell(value), value
    assert set(tables._TEXT) == {type(v) for v in samples}
