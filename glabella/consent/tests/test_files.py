import pytest

from glabella.consent import files

from .helpers import BLANK, JPEG, PDF, SIGNATURE, make_png, wave_pixels


def test_a_drawn_signature_passes():
    info = files.inspect_png(SIGNATURE)
    assert (info.width, info.height) == (600, 200)
    assert info.ink_pixels >= files.MIN_INK_PIXELS


@pytest.mark.parametrize("filters", [(1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_ink_is_counted_exactly_whatever_the_row_filters(filters):
    ink = wave_pixels(200, 60)
    png = make_png(200, 60, ink=ink, filters=filters)
    assert files.inspect_png(png, min_ink=len(ink)).ink_pixels == len(ink)
    with pytest.raises(files.BlankImage):
        files.inspect_png(png, min_ink=len(ink) + 1)


def test_a_blank_pad_is_refused_as_blank():
    assert len(BLANK) > files.MIN_SIGNATURE_BYTES  # big enough: it is the pixels that count
    with pytest.raises(files.BlankImage):
        files.inspect_png(BLANK)


def test_a_tiny_image_is_refused():
    with pytest.raises(files.BlankImage):
        files.inspect_png(make_png(60, 20, ink={(x, 10) for x in range(60)}))


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is not a picture " * 20,
        PDF * 5,
        SIGNATURE[:-20],  # truncated
        SIGNATURE[:40] + b"\x00" + SIGNATURE[41:],  # corrupted (CRC)
    ],
)
def test_things_that_are_not_a_png_are_refused(data):
    with pytest.raises(files.BadImage):
        files.inspect_png(data)


def test_scans_are_known_by_their_bytes_not_their_name():
    assert files.sniff_scan(PDF).content_type == "application/pdf"
    assert files.sniff_scan(SIGNATURE).content_type == "image/png"
    assert files.sniff_scan(JPEG).content_type == "image/jpeg"
    assert files.sniff_scan(b"just some text pretending to be .png") is None
    assert files.sniff_scan(b"") is None
