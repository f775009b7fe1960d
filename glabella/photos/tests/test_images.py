"""The upload check and the clean copy (Pillow only, no database)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from glabella.photos import images
from glabella.photos.tests import helpers


def open_clean(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_the_clean_copy_has_no_exif_no_gps_and_no_camera_details():
    original = helpers.gps_jpeg()
    assert helpers.exif_of(original)[0x010F] == "Acme Cameras"  # the test file really has EXIF
    with Image.open(io.BytesIO(original)) as source:
        assert source.getexif().get_ifd(0x8825)  # GPSInfo present in the upload

    cleaned = images.clean(original)

    with open_clean(cleaned.jpeg) as result:
        assert result.format == "JPEG"
        assert dict(result.getexif()) == {}
        assert result.getexif().get_ifd(0x8825) == {}
        for key in ("exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"):
            assert key not in result.info, key
    for marker in (b"Exif", b"Acme", b"ClinicCam", b"Ada Lovelace", b"shot at the clinic"):
        assert marker not in cleaned.jpeg
        assert marker not in cleaned.thumb
    assert (cleaned.width, cleaned.height) == (320, 240)
    assert cleaned.source_format == "JPEG"
    assert len(cleaned.sha256) == 64 and cleaned.sha256 != cleaned.source_sha256


def test_the_orientation_tag_is_applied_before_it_is_removed():
    # Orientation 6: the camera was turned; the picture must be shown rotated 90° clockwise.
    cleaned = images.clean(helpers.gps_jpeg(320, 240, orientation=6))
    assert (cleaned.width, cleaned.height) == (240, 320)
    with open_clean(cleaned.jpeg) as result:
        assert 0x0112 not in result.getexif()
        # The dark corner block, top-left in the sensor's picture, is now top-right.
        rgb = result.convert("RGB")
        assert sum(rgb.getpixel((230, 10))) < 120
        assert sum(rgb.getpixel((10, 10))) > 300


def test_png_and_webp_are_accepted_and_become_jpeg():
    for data, fmt in ((helpers.png(), "PNG"), (helpers.webp(), "WEBP")):
        cleaned = images.clean(data)
        assert cleaned.source_format == fmt
        with open_clean(cleaned.jpeg) as result:
            assert result.format == "JPEG" and result.mode == "RGB"


def test_a_very_large_photo_is_scaled_down_and_has_a_small_thumbnail(settings):
    settings.GLABELLA_PHOTO_MAX_SIDE = 400
    cleaned = images.clean(helpers.gps_jpeg(800, 600))
    assert (cleaned.width, cleaned.height) == (400, 300)
    with open_clean(cleaned.thumb) as thumb:
        assert max(thumb.size) <= images.THUMB_SIDE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"just some text, renamed photo.jpg", "not a photo Glabella can use"),
        (helpers.HTML, "not only a photo"),
        (helpers.SVG, "not only a photo"),
        (helpers.PDF, "not only a photo"),
        (helpers.zip_bytes(), "not only a photo"),
        (helpers.jpeg_zip_polyglot(), "not only a photo"),
        (helpers.jpeg_html_polyglot(), "not only a photo"),
        (helpers.HEIC, "HEIC"),
        (helpers.gif(), "not a photo Glabella can use"),
        (helpers.truncated_jpeg(), "damaged or was cut short"),
    ],
    ids=[
        "empty",
        "text",
        "html",
        "svg",
        "pdf",
        "zip",
        "jpeg+zip",
        "jpeg+html",
        "heic",
        "gif",
        "truncated",
    ],
)
def test_bad_files_are_refused_in_words(data, message):
    with pytest.raises(images.Refused, match=message):
        images.clean(data)


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.GLABELLA_PHOTO_MAX_BYTES = 1000
    with pytest.raises(images.Refused, match=r"The file is .* MB; the limit is"):
        images.clean(helpers.gps_jpeg())


def test_a_decompression_bomb_is_refused_before_it_is_decoded(settings):
    settings.GLABELLA_PHOTO_MAX_PIXELS = 40_000_000
    data = helpers.bomb_png(9000)
    assert len(data) < 100_000  # tiny on disk, 81 megapixels when decoded
    with pytest.raises(images.Refused, match="too many pixels"):
        images.clean(data)


def test_a_phones_multi_picture_jpeg_is_accepted_as_jpeg(settings):
    settings.GLABELLA_PHOTO_MAX_PIXELS = 10_000_000
    first = helpers.picture(200, 160)
    second = Image.new("RGB", (200, 160), (0, 0, 0))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second])
    cleaned = images.clean(out.getvalue())
    assert cleaned.source_format == "JPEG" and (cleaned.width, cleaned.height) == (200, 160)


def test_a_colour_profile_is_applied_then_dropped():
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cleaned = images.clean(helpers.gps_jpeg(icc_profile=profile))
    with open_clean(cleaned.jpeg) as result:
        assert "icc_profile" not in result.info
