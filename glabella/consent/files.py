"""What a signature image or a scanned form really is, judged by its bytes, never its name.

No imaging library: a signature is checked by reading the PNG itself (chunks, CRCs,
header, pixels) closely enough to know that it is a real image with real ink on it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
PDF_MAGIC = b"%PDF-"

MIN_SIGNATURE_BYTES = 300
MAX_SIGNATURE_BYTES = 2 * 1024 * 1024
MIN_SIGNATURE_WIDTH = 100
MIN_SIGNATURE_HEIGHT = 40
MAX_SIGNATURE_SIDE = 4000
MIN_INK_PIXELS = 60

# bytes per pixel for 8-bit images, by PNG colour type
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


class BadImage(ValueError):
    """The bytes are not a usable signature image; the message says why (for logs/tests)."""


class BlankImage(BadImage):
    """A real PNG, but (nearly) nothing drawn on it."""


@dataclass(frozen=True)
class PngInfo:
    width: int
    height: int
    ink_pixels: int


@dataclass(frozen=True)
class ScanKind:
    content_type: str
    extension: str
    label: str


SCAN_KINDS = (
    (PDF_MAGIC, ScanKind("application/pdf", "pdf", "PDF")),
    (PNG_MAGIC, ScanKind("image/png", "png", "PNG image")),
    (JPEG_MAGIC, ScanKind("image/jpeg", "jpg", "JPEG photo")),
)


def sniff_scan(head: bytes) -> ScanKind | None:
    """The kind of a scanned form from its first bytes, or None if it is not PDF/PNG/JPEG."""
    for magic, kind in SCAN_KINDS:
        if head.startswith(magic):
            return kind
    return None


def kind_for_content_type(content_type: str) -> ScanKind | None:
    for _magic, kind in SCAN_KINDS:
        if kind.content_type == content_type:
            return kind
    return None


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_MAGIC):
        raise BadImage("not a PNG (wrong signature bytes)")
    pos = len(PNG_MAGIC)
    chunks: list[tuple[bytes, bytes]] = []
    while pos < len(data):
        if pos + 8 > len(data):
            raise BadImage("truncated chunk header")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise BadImage("truncated chunk")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise BadImage(f"bad CRC in {kind!r} chunk")
        chunks.append((kind, body))
        pos = end + 4
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR":
        raise BadImage("no IHDR header first")
    if chunks[-1][0] != b"IEND":
        raise BadImage("no IEND chunk")
    return chunks


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(ftype: int, row: bytearray, prev: bytearray, bpp: int) -> None:
    n = len(row)
    if ftype == 0:
        return
    if ftype == 1:
        for i in range(bpp, n):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif ftype == 2:
        for i in range(n):
            row[i] = (row[i] + prev[i]) & 0xFF
    elif ftype == 3:
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif ftype == 4:
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            upleft = prev[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + _paeth(left, prev[i], upleft)) & 0xFF
    else:
        raise BadImage(f"unknown row filter {ftype}")


def _ink_in_row(row: bytearray, channels: int) -> int:
    """Pixels that are dark and (where there is alpha) opaque enough to be pen strokes."""
    ink = 0
    if channels == 4:
        for i in range(0, len(row), 4):
            if row[i + 3] >= 128 and row[i] + row[i + 1] + row[i + 2] < 480:
                ink += 1
    elif channels == 3:
        for i in range(0, len(row), 3):
            if row[i] + row[i + 1] + row[i + 2] < 480:
                ink += 1
    elif channels == 2:
        for i in range(0, len(row), 2):
            if row[i + 1] >= 128 and row[i] < 160:
                ink += 1
    else:
        ink = sum(1 for v in row if v < 160)
    return ink


def inspect_png(data: bytes, *, min_ink: int = MIN_INK_PIXELS) -> PngInfo:
    """Check that DATA is a real, reasonably sized PNG with a drawn signature on it.

    Raises BadImage (not a usable PNG) or BlankImage (a PNG with nothing drawn). Stops
    decoding as soon as enough ink is found.
    """
    if len(data) < MIN_SIGNATURE_BYTES:
        if data.startswith(PNG_MAGIC):
            raise BlankImage(f"only {len(data)} bytes")
        raise BadImage(f"only {len(data)} bytes")
    if len(data) > MAX_SIGNATURE_BYTES:
        raise BadImage(f"{len(data)} bytes is too large for a signature")
    chunks = _chunks(data)
    header = chunks[0][1]
    if len(header) != 13:
        raise BadImage("bad IHDR length")
    width, height, depth, colour, compression, filter_method, interlace = struct.unpack(
        ">IIBBBBB", header
    )
    if not (0 < width <= MAX_SIGNATURE_SIDE and 0 < height <= MAX_SIGNATURE_SIDE):
        raise BadImage(f"unreasonable size {width}x{height}")
    if width < MIN_SIGNATURE_WIDTH or height < MIN_SIGNATURE_HEIGHT:
        raise BlankImage(f"too small: {width}x{height}")
    if depth != 8 or colour not in _CHANNELS or compression or filter_method or interlace:
        raise BadImage(f"unsupported PNG (depth {depth}, colour type {colour}, interlace)")
    channels = _CHANNELS[colour]
    stride = width * channels
    expected = height * (stride + 1)
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    if not idat:
        raise BadImage("no image data")
    try:
        raw = zlib.decompressobj().decompress(idat, expected + 1)
    except zlib.error as exc:
        raise BadImage(f"corrupt image data: {exc}") from None
    if len(raw) != expected:
        raise BadImage("image data does not match the header")
    prev = bytearray(stride)
    ink = 0
    for y in range(height):
        start = y * (stride + 1)
        row = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], row, prev, channels)
        ink += _ink_in_row(row, channels)
        if ink >= min_ink:
            return PngInfo(width, height, ink)
        prev = row
    raise BlankImage(f"only {ink} pixels of ink")
