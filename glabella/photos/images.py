"""What an uploaded photograph really is, and a clean copy of it. Pillow only, no database.

:func:`clean` takes the bytes of an upload and either refuses them with a message a nurse can
act on (:class:`Refused`) or returns a fresh JPEG of the same picture:

1. the size is checked (``GLABELLA_PHOTO_MAX_BYTES``), and the bytes are judged by what they
   are, never by the file's name or the browser's content type: HEIC (an iPhone's default) gets
   its own message; a file that carries HTML, script, SVG, PHP, a PDF header or a ZIP archive
   (a disguised file, or a polyglot that is also a valid picture) is refused;
2. Pillow opens it allowing JPEG, PNG and WebP only, checks the pixel count against a
   decompression-bomb limit before decoding, verifies it, then decodes it fully (a truncated
   or corrupt file is refused);
3. the camera's orientation tag is applied (``ImageOps.exif_transpose``), colours are converted
   to sRGB when the photo carries another colour profile, transparency is flattened on white,
   and very large photos are scaled down to ``GLABELLA_PHOTO_MAX_SIDE`` pixels on the long side;
4. the pixels are copied into a new image (so no metadata of the upload can follow) and saved
   as JPEG with nothing but the picture: no EXIF (so no GPS position, camera make or model, or
   date), no XMP, no ICC profile, no comment. A thumbnail is made the same way.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

OPEN_FORMATS = ("JPEG", "PNG", "WEBP")
ALLOWED_FORMATS = (*OPEN_FORMATS, "MPO")  # MPO: a phone's multi-picture JPEG, opened as JPEG
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_SIDE = 4096
THUMB_SIDE = 480
JPEG_QUALITY = 90
THUMB_QUALITY = 80

MSG_EMPTY = "The file is empty. Take the photo again or choose another file."
MSG_NOT_IMAGE = (
    "This file is not a photo Glabella can use (checked by what is inside it, not by its "
    "name). Choose a JPEG, PNG or WebP photo."
)
MSG_DISGUISED = (
    "This file is not only a photo: it also contains a web page, a script, a PDF or an "
    "archive. It was refused for safety. Take the photo again or export it from the camera "
    "as a plain JPEG."
)
MSG_HEIC = (
    "This is an HEIC photo (the iPhone's own format), which Glabella cannot read. On the iPhone "
    "choose Settings, Camera, Formats, Most Compatible, or share the photo as JPEG, then "
    "upload it again. Taking it with this page's camera also works."
)
MSG_CORRUPT = (
    "The photo could not be read completely: the file is damaged or was cut short. "
    "Take the photo again or choose another file."
)

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
# Markers of active or foreign content; searched case-insensitively through the whole file.
# Each is long enough that compressed picture data practically never contains it by chance.
_ACTIVE = (b"<script", b"<html", b"<svg", b"<?php", b"<!doctype", b"<iframe", b"<body")
_PDF = b"%PDF-"


class Refused(ValueError):
    """The upload is refused; ``str(exc)`` is the message for the person who uploaded it."""


@dataclass(frozen=True)
class Cleaned:
    jpeg: bytes
    thumb: bytes
    width: int
    height: int
    sha256: str
    source_sha256: str
    source_format: str


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".") + " MB"


def max_bytes() -> int:
    return int(getattr(settings, "GLABELLA_PHOTO_MAX_BYTES", 15 * 1024 * 1024))


def max_pixels() -> int:
    return int(getattr(settings, "GLABELLA_PHOTO_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def max_side() -> int:
    return int(getattr(settings, "GLABELLA_PHOTO_MAX_SIDE", DEFAULT_MAX_SIDE))


def too_large_message(size: int) -> str:
    limit = max_bytes()
    return (
        f"The file is {_megabytes(size)}; the limit is {_megabytes(limit)}. "
        "Take the photo again at a lower resolution, or export a smaller copy."
    )


def is_heic(data: bytes) -> bool:
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS


def is_disguised(data: bytes) -> bool:
    """True when the bytes carry something besides a picture (a polyglot or a renamed file)."""
    lowered = data.lower()
    if any(marker in lowered for marker in _ACTIVE):
        return True
    # PDF readers look for the header in the first kilobyte.
    if _PDF in data[:1024]:
        return True
    # ZIP readers look for the archive's directory at the end of the file.
    return zipfile.is_zipfile(io.BytesIO(data))


def _open(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
        except (UnidentifiedImageError, Image.DecompressionBombError):
            raise Refused(MSG_NOT_IMAGE) from None
        except Image.DecompressionBombWarning:
            raise Refused(_too_many_pixels()) from None
        except (OSError, SyntaxError, ValueError):
            raise Refused(MSG_NOT_IMAGE) from None
    return image


def _too_many_pixels() -> str:
    limit = max_pixels() // 1_000_000
    return (
        f"The photo has too many pixels (the limit is {limit} megapixels): it may be a "
        "damaged or deliberately inflated file. Take the photo again at a normal resolution."
    )


def _check_pixels(image: Image.Image) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise Refused(MSG_NOT_IMAGE)
    if width * height > max_pixels():
        raise Refused(_too_many_pixels())


def _to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unreadable profile: keep the pixels as they are
    return converted if converted is not None else image


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits before making it RGB.
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def _bare_copy(image: Image.Image) -> Image.Image:
    """The same pixels in a brand-new image: no ``info`` (EXIF, XMP, comment, ICC) survives."""
    return Image.frombytes("RGB", image.size, image.tobytes())


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, exif=b"")
    return out.getvalue()


def clean(data: bytes) -> Cleaned:
    """Check DATA and return a metadata-free JPEG of it, or raise :class:`Refused`."""
    if not data:
        raise Refused(MSG_EMPTY)
    if len(data) > max_bytes():
        raise Refused(too_large_message(len(data)))
    if is_heic(data):
        raise Refused(MSG_HEIC)
    if is_disguised(data):
        raise Refused(MSG_DISGUISED)

    image = _open(data)
    source_format = str(image.format or "")
    if source_format not in ALLOWED_FORMATS:
        raise Refused(MSG_NOT_IMAGE)
    _check_pixels(image)
    try:
        image.verify()
    except Exception:
        raise Refused(MSG_CORRUPT) from None
    # verify() leaves the image unusable: open it again to decode it.
    image = _open(data)
    _check_pixels(image)
    try:
        image.load()
    except Exception:
        raise Refused(MSG_CORRUPT) from None

    upright = ImageOps.exif_transpose(image)
    srgb = _to_srgb(upright)
    rgb = _flatten(srgb)
    limit = max_side()
    if max(rgb.size) > limit:
        rgb = rgb.copy()
        rgb.thumbnail((limit, limit), Image.Resampling.LANCZOS)
    bare = _bare_copy(rgb)
    jpeg = _jpeg(bare, JPEG_QUALITY)
    small = bare.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    thumb = _jpeg(_bare_copy(small), THUMB_QUALITY)
    return Cleaned(
        jpeg=jpeg,
        thumb=thumb,
        width=bare.width,
        height=bare.height,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_format="JPEG" if source_format == "MPO" else source_format,
    )
