"""Reading an uploaded CSV file: its encoding, its delimiter, its header and its rows.

Row numbers are the spreadsheet's: the header is row 1, the first record row 2 (a cell with a
line break inside quotes still counts as one row), so a problem "on row 12" is on row 12 of
the sheet the clinic opens.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from glabella.interop.imports import mapping
from glabella.interop.imports.formats import COLUMNS, REQUIRED


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file. ROW None: the file as a whole (a missing column...)."""

    row: int | None
    column: str
    message: str
    file: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(self.column)
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class Table:
    """A file read as rows of {field: text}, with the header each field came from."""

    kind: str
    filename: str
    headers: list[str]
    mapping: dict[str, str]  # field -> the file's header
    ignored: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def column(self, field_name: str) -> str:
        """The file's header for FIELD_NAME (what the clinic sees), or the field itself."""
        return self.mapping.get(field_name, field_name)


class Unreadable(Exception):
    """The file cannot be read at all; PROBLEMS say why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def decode(data: bytes, filename: str, encoding: str | None = None) -> str:
    """The text of DATA: UTF-8 (a BOM is fine) unless ENCODING names another."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise Unreadable(
                [
                    Problem(
                        None,
                        "",
                        f"“{encoding}” is not an encoding name (try cp1252 or latin-1).",
                        filename,
                    )
                ]
            ) from None
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise Unreadable(
                [
                    Problem(
                        None,
                        "",
                        f"The file is not {encoding} text: {exc.reason} at byte {exc.start}.",
                        filename,
                    )
                ]
            ) from None
        return text.removeprefix("\ufeff")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Unreadable(
            [
                Problem(
                    None,
                    "",
                    "This file is saved as UTF-16 (“Unicode text”). Save it as “CSV UTF-8 "
                    "(comma delimited)” and import that.",
                    filename,
                )
            ]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex().upper()
        raise Unreadable(
            [
                Problem(
                    row,
                    "",
                    f"The file is not UTF-8 text (byte 0x{bad} on line {row} is not UTF-8: it "
                    "was probably saved as Windows-1252 / “ANSI” or Latin-1, where letters such "
                    "as é are stored differently). In Excel use Save As → “CSV UTF-8 (comma "
                    "delimited)”; in other programs choose the UTF-8 encoding. If you know the "
                    "file's encoding, import it with that encoding (--encoding cp1252).",
                    filename,
                )
            ]
        ) from None


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab: the one the header line (outside quotes) uses most."""
    header = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            break
        elif not quoted:
            header.append(ch)
    line = "".join(header)
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def check_size(data: bytes, filename: str) -> None:
    limit = settings.GLABELLA_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise Unreadable(
            [
                Problem(
                    None,
                    "",
                    f"The file is {len(data) / 1_000_000:.1f} MB; the limit is "
                    f"{limit / 1_000_000:.1f} MB. Split it into smaller files (each with the "
                    "header row) and import them one after the other.",
                    filename,
                )
            ]
        )


def read_table(
    kind: str,
    data: bytes,
    filename: str,
    *,
    encoding: str | None = None,
    explicit: Mapping[str, str] | None = None,
) -> Table:
    """Read DATA as a KIND file. Raises :class:`Unreadable` when it cannot be imported at all
    (size, encoding, no header, missing required columns, a bad mapping)."""
    check_size(data, filename)
    text = decode(data, filename, encoding)
    if "\x00" in text:
        raise Unreadable([Problem(None, "", "This is not a text (CSV) file.", filename)])
    if not text.strip():
        raise Unreadable([Problem(None, "", "The file is empty.", filename)])
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        headers = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        raise Unreadable([Problem(None, "", "The file has no header row.", filename)]) from None
    by_index, map_problems, ignored = mapping.resolve(kind, headers, explicit)
    problems = [Problem(None, "", m, filename) for m in map_problems]
    found = {f: headers[i] for i, f in by_index.items()}
    missing = [f for f in REQUIRED[kind] if f not in found]
    if missing:
        problems.append(
            Problem(
                None,
                "",
                f"The file has no column for {', '.join(missing)}. A {kind} file needs the "
                f"columns {', '.join(REQUIRED[kind])} (its columns are "
                f"{', '.join(h for h in headers if h) or 'none'}). Rename the column in the "
                'file, or say which column it is (--map "Your column=' + missing[0] + '").',
                filename,
            )
        )
    if problems:
        raise Unreadable(problems)
    table = Table(kind, filename, headers, found, ignored)
    width = len(headers)
    try:
        for number, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue  # blank lines (a spreadsheet's trailing rows)
            row = dict.fromkeys(COLUMNS[kind], "")
            for i, f in by_index.items():
                if i < len(record):
                    row[f] = record[i].strip()
            if len(record) > width and any(c.strip() for c in record[width:]):
                row["__extra__"] = "yes"
            table.rows.append((number, row))
    except csv.Error as exc:
        raise Unreadable(
            [Problem(reader.line_num, "", f"The file is not valid CSV here: {exc}.", filename)]
        ) from None
    return table
