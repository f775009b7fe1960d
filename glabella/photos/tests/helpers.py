"""Test photos made with Pillow: a camera JPEG with GPS and camera EXIF, rotated ones, PNGs,
and the bad inputs (not an image, disguised files, polyglots, HEIC, bombs)."""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta
from fractions import Fraction

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
from PIL.ExifTags import GPS, IFD, Base

from glabella.consent import services as consent_services
from glabella.consent.tests.helpers import PDF, upload

GPS_LATITUDE = ((51, 1), (30, 1), (2637, 100))  # 51°30'26.37" N: London
GPS_LONGITUDE = ((0, 1), (7, 1), (3954, 100))  # 0°7'39.54" W


def _rational(pairs):
    return tuple(Fraction(a, b) for a, b in pairs)


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[Base.Make] = "Acme Cameras"
    exif[Base.Model] = "ClinicCam 3000"
    exif[Base.Software] = "ClinicCam firmware 1.2"
    exif[Base.DateTime] = "2025:03:04 10:11:12"
    exif[Base.Orientation] = orientation
    exif[Base.ImageDescription] = "Ada Lovelace glabella"
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSLatitudeRef] = "N"
    gps[GPS.GPSLatitude] = _rational(GPS_LATITUDE)
    gps[GPS.GPSLongitudeRef] = "W"
    gps[GPS.GPSLongitude] = _rational(GPS_LONGITUDE)
    return exif


def picture(width: int = 320, height: int = 240, colour=(200, 150, 120)) -> Image.Image:
    """A face-coloured picture with a dark block in its top-left corner (to see rotation)."""
    image = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 4, height // 4), fill=(10, 10, 10))
    return image


def gps_jpeg(width: int = 320, height: int = 240, orientation: int = 1, **extra) -> bytes:
    out = io.BytesIO()
    picture(width, height).save(
        out,
        "JPEG",
        exif=camera_exif(orientation),
        quality=90,
        comment=b"shot at the clinic",
        **extra,
    )
    return out.getvalue()


def png(width: int = 200, height: int = 150, mode: str = "RGBA") -> bytes:
    image = picture(width, height).convert(mode)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def webp(width: int = 200, height: int = 150) -> bytes:
    out = io.BytesIO()
    picture(width, height).save(out, "WEBP")
    return out.getvalue()


def gif(width: int = 50, height: int = 50) -> bytes:
    out = io.BytesIO()
    picture(width, height).save(out, "GIF")
    return out.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("payload.txt", "not a photo")
    return out.getvalue()


def jpeg_zip_polyglot() -> bytes:
    """A valid JPEG with a ZIP archive appended: opens as a picture and as an archive."""
    return gps_jpeg() + zip_bytes()


def jpeg_html_polyglot() -> bytes:
    """A valid JPEG whose comment segment carries an HTML page with a script."""
    out = io.BytesIO()
    picture().save(out, "JPEG", comment=HTML)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = gps_jpeg(640, 480)
    return data[: len(data) // 2]


def bomb_png(side: int = 9000) -> bytes:
    """A tiny file that claims a huge picture (81 megapixels of one colour)."""
    out = io.BytesIO()
    Image.new("1", (side, side), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def photo_upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def photography_consent(world, patient=None, days_ago: int = 0, category: str = "photography"):
    """A paper consent to clinical photographs (or CATEGORY) signed DAYS_AGO days ago."""
    consent_services.ensure_default_templates(world.org)
    return consent_services.take_consent(
        world.actor("injector"),
        patient or world.patient,
        category,
        method="paper",
        scan=upload("consent.pdf", PDF),
        signed_on=date.today() - timedelta(days=days_ago),
        read_confirmed=True,
    )


def exif_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())


def stored_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def make_session(world, patient):
    """A draft glabellar session for PATIENT (through the charting service)."""
    from glabella.charting import services as charting_services

    return charting_services.start_session(
        world.actor("injector"),
        patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
    )


def another_patient(world):
    from glabella.patients import services as patient_services

    return patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1980, 1, 2)},
    )
