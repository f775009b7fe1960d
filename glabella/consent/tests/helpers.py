"""Test helpers: hand-made PNGs (no imaging library), scans and uploads."""

from __future__ import annotations

import base64
import math
import struct
import zlib
from datetime import date

from django.core.files.uploadedfile import SimpleUploadedFile

from glabella.consent.files import PNG_MAGIC

WHITE = (255, 255, 255, 255)
INK = (16, 35, 63, 255)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter(ftype: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(len(row))
    for i, value in enumerate(row):
        left = row[i - bpp] if i >= bpp else 0
        up = prev[i]
        upleft = prev[i - bpp] if i >= bpp else 0
        predictor = {0: 0, 1: left, 2: up, 3: (left + up) >> 1, 4: _paeth(left, up, upleft)}[ftype]
        out[i] = (value - predictor) & 0xFF
    return bytes(out)


def wave_pixels(width: int, height: int) -> set[tuple[int, int]]:
    """A wavy line across the middle: what a quick signature looks like to the checker."""
    ink = set()
    for x in range(width // 10, width - width // 10):
        centre = height // 2 + int(height / 5 * math.sin(x / 20))
        for y in range(centre - 2, centre + 2):
            ink.add((x, y))
    return ink


def make_png(
    width: int = 600,
    height: int = 200,
    *,
    ink: set[tuple[int, int]] | None = None,
    filters: tuple[int, ...] = (0,),
) -> bytes:
    """An RGBA PNG, white, with INK pixels dark (default: a wavy signature line).

    Rows cycle through FILTERS so the checker's un-filtering is exercised too."""
    pixels = wave_pixels(width, height) if ink is None else ink
    bpp = 4
    prev = bytes(width * bpp)
    raw = bytearray()
    for y in range(height):
        row = b"".join(bytes(INK if (x, y) in pixels else WHITE) for x in range(width))
        ftype = filters[y % len(filters)]
        raw.append(ftype)
        raw += _filter(ftype, row, prev, bpp)
        prev = row
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        PNG_MAGIC
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw)))
        + _chunk(b"IEND", b"")
    )


SIGNATURE = make_png()
BLANK = make_png(ink=set())


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200 + b"\xff\xd9"


def upload(name: str, content: bytes, content_type: str = "application/pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def days_ago(today: date, n: int) -> date:
    from datetime import timedelta

    return today - timedelta(days=n)
