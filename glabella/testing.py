"""Test-only helpers that must be importable by settings overrides."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Still Argon2id, with tiny cost parameters so the test suite stays fast."""

    algorithm = "argon2"
    time_cost = 1
    memory_cost = 256
    parallelism = 1


def signature_png(width: int = 240, height: int = 80) -> bytes:
    """A real PNG of a scribbled signature (for consent tests), made without any library."""
    import math
    import struct
    import zlib

    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            on = abs((y - height // 2) - int(18 * math.sin(x / 9))) < 2
            row += b"\x00\x00\x00\xff" if on else b"\xff\xff\xff\x00"
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
