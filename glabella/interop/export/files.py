"""Writing export files while counting and hashing them, so memory stays flat.

Every file an export writes goes through :class:`HashingWriter`: it counts the bytes and feeds
SHA-256 as it writes, so the manifest's checksum is of exactly what went to disk and nothing is
read back or held in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1024 * 1024


def private_dir(path: Path) -> Path:
    """Make PATH (and its missing parents) usable by this account only (0700): an export holds
    every patient's record, so no other account on the server may read it."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        p.chmod(0o700)
    return path


def private_file(path: Path) -> BinaryIO:
    """PATH opened for writing, created 0600 in a private folder."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


@dataclass(frozen=True)
class Written:
    """One file of an export: where (relative to the export's root), how much, its checksum."""

    path: str
    bytes: int
    sha256: str
    records: int | None = None  # rows / resources in it, where that means something

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}
        if self.records is not None:
            entry["records"] = self.records
        return entry


class HashingWriter(io.RawIOBase):
    """A binary file that counts and hashes what is written to it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._raw.write(view)
        self._hash.update(view)
        self.bytes += len(view)
        return len(view)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def _json_default(value: object) -> object:
    # A Decimal is written as a JSON number only when that number is exactly the Decimal
    # (2.5 -> 2.5); anything a float would round is refused rather than silently altered.
    if isinstance(value, Decimal):
        as_float = float(value)
        if Decimal(repr(as_float)) == value:
            return int(value) if value == value.to_integral_value() else as_float
        raise TypeError(f"{value!r} cannot be written as an exact JSON number")
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


# One encoder for every line (json.dumps with options builds a new one per call). No
# circular-reference bookkeeping: a resource is a tree built fresh for the line (a cycle
# would still fail, as a RecursionError).
_ENCODE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_json_default, check_circular=False
).encode


def ndjson_line(resource: dict[str, Any]) -> bytes:
    """One NDJSON line: compact JSON, UTF-8, no newline inside, newline at the end."""
    return (_ENCODE(resource) + "\n").encode("utf-8")


def write_ndjson(
    root: Path,
    relative: str,
    items: Iterable[dict[str, Any]],
    *,
    progress: Callable[[int], None] | None = None,
    every: int = 200,
) -> Written:
    """Write ITEMS one line each to ROOT/RELATIVE, holding one item at a time.

    ``progress(n)`` is called with how many more items were written, every EVERY items and at
    the end; it may raise to stop the export (the partial file is the caller's to remove).
    """
    path = root / relative
    count = pending = 0
    with private_file(path) as raw:
        out = HashingWriter(raw)
        buffered = io.BufferedWriter(out, buffer_size=256 * 1024)
        write, encode = buffered.write, _ENCODE  # local names: this loop runs once per row
        for item in items:
            write((encode(item) + "\n").encode("utf-8"))  # ndjson_line, inlined
            count += 1
            pending += 1
            if progress is not None and pending >= every:
                progress(pending)
                pending = 0
        buffered.flush()
    if progress is not None and pending:
        progress(pending)
    return Written(relative, out.bytes, out.sha256, count)


def write_bytes(root: Path, relative: str, data: bytes, *, records: int | None = None) -> Written:
    path = root / relative
    with private_file(path) as out:
        out.write(data)
    return Written(relative, len(data), hashlib.sha256(data).hexdigest(), records)


def copy_stream(root: Path, relative: str, source: BinaryIO) -> Written:
    """Copy an open binary SOURCE to ROOT/RELATIVE in chunks, hashing as it goes."""
    path = root / relative
    with private_file(path) as raw:
        out = HashingWriter(raw)
        while chunk := source.read(CHUNK):
            out.write(chunk)
    return Written(relative, out.bytes, out.sha256)


def hash_file(path: Path) -> tuple[int, str]:
    """(bytes, sha256) of the file at PATH, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
