"""A ZIP of a directory, produced piece by piece while it is sent (memory stays flat).

Python's :mod:`zipfile` writes to a stream it cannot seek by putting each entry's sizes and
CRC after its data (a "data descriptor"); we hand it a sink that only collects bytes, and
yield what it collected after every chunk of every file. Every entry is deflated (a stored
entry with a data descriptor trips some unzip tools); sizes over 4 GB use ZIP64.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 256 * 1024


class _Sink:
    """A write-only, unseekable file that keeps what was written until it is drained."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_directory(directory: Path, prefix: str) -> Iterator[bytes]:
    """The bytes of a ZIP holding every file under DIRECTORY, as PREFIX/<relative path>."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            arcname = f"{prefix}/{path.relative_to(directory).as_posix()}"
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, zf.open(info, mode="w") as dest:
                while chunk := source.read(CHUNK):
                    dest.write(chunk)
                    if data := sink.drain():
                        yield data
            if data := sink.drain():
                yield data
    if data := sink.drain():
        yield data
