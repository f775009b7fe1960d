"""Photos in a real Chromium at 1024x768 and 768x1024: upload through the file chooser (the
fallback when there is no camera), and capture with Chromium's fake camera and the guide
overlay. The stored photo has no GPS and no camera details."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.photos import storage
from glabella.photos.models import Photo
from glabella.photos.tests import helpers
from glabella.web.tests.browser import (
    CHROMIUM,
    assert_fits_and_touchable,
    login,
    shot,
    wait_until,
)

pytestmark = pytest.mark.browser


def stored_image(photo: Photo) -> Image.Image:
    with storage.photo_storage().open(photo.storage_name, "rb") as handle:
        return Image.open(io.BytesIO(handle.read()))


def choose(page, area="Glabellar (frown lines)", view="Front", expression="Frown") -> None:
    page.get_by_label("Area").select_option(label=area)
    page.get_by_label(view, exact=True).check()
    page.get_by_label(expression, exact=True).check()


def test_a_photo_uploaded_in_the_browser_loses_its_gps(live_server, live_world, page, tmp_path):
    helpers.photography_consent(live_world)
    upload = tmp_path / "IMG_1234.jpg"
    upload.write_bytes(helpers.gps_jpeg(640, 480))

    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/photos/patients/{live_world.patient.pk}/")
    expect(page.get_by_text("No photos of Ada Lovelace yet")).to_be_visible()
    assert_fits_and_touchable(page)

    page.get_by_role("link", name="Take a photo").click()
    expect(page.get_by_role("heading", name="Take a photo: Ada Lovelace")).to_be_visible()
    expect(page.get_by_role("button", name="Start the camera")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "photos-take")

    choose(page)
    page.get_by_label("Or choose a photo").set_input_files(str(upload))
    page.get_by_role("button", name="Save the photo").click()
    expect(page.get_by_text("Location and camera details were removed")).to_be_visible()

    photo = Photo.objects.get()
    assert (photo.area, photo.view, photo.expression, photo.source) == (
        "glabellar",
        "front",
        "frown",
        "upload",
    )
    with stored_image(photo) as image:
        assert image.getexif().get_ifd(0x8825) == {}, "GPS is gone"
        assert dict(image.getexif()) == {}

    # The next photo of the same view shows the previous one as a reference.
    expect(page.locator("[data-reference] img")).to_be_visible()
    page.goto(f"{live_server.url}/photos/patients/{live_world.patient.pk}/")
    expect(page.locator(".photo-card img")).to_have_count(1)
    wait_until(
        page,
        "(() => { const i = document.querySelector('.photo-card img');"
        " return i.complete && i.naturalWidth > 0; })()",
    )
    assert_fits_and_touchable(page)
    shot(page, "photos-gallery")
    page.locator(".photo-card").click()
    expect(page.get_by_role("heading", name="About this photo")).to_be_visible()
    assert_fits_and_touchable(page)


def test_a_bad_file_is_refused_in_the_browser(live_server, live_world, page, tmp_path):
    helpers.photography_consent(live_world)
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(helpers.HTML)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/photos/patients/{live_world.patient.pk}/take/")
    choose(page)
    page.get_by_label("Or choose a photo").set_input_files(str(fake))
    page.get_by_role("button", name="Save the photo").click()
    expect(page.get_by_text("This file is not only a photo")).to_be_visible()
    assert Photo.objects.count() == 0
    assert_fits_and_touchable(page)


@pytest.fixture
def camera_page(browser):
    """A second Chromium, from the same Playwright, with a fake camera that needs no
    permission prompt (768 x 1024)."""
    camera_browser = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
        ],
    )
    context = camera_browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.viewport_name = "camera"
    yield page
    context.close()
    camera_browser.close()


def test_a_photo_taken_with_the_camera_lines_up_with_the_previous_one(
    live_server, live_world, camera_page
):
    page = camera_page
    helpers.photography_consent(live_world)
    from glabella.photos import services

    previous = services.take_photo(
        live_world.actor("injector"),
        live_world.patient,
        helpers.photo_upload(helpers.gps_jpeg()),
        area="glabellar",
        view="front",
        expression="frown",
    )
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/photos/patients/{live_world.patient.pk}/take/")
    choose(page, expression="At rest")
    page.get_by_role("button", name="Start the camera").click()
    expect(page.locator("[data-video]")).to_be_visible()
    guide = page.locator("[data-guide]")
    expect(guide).to_be_visible()
    assert guide.get_attribute("src").endswith(f"/photos/{previous.pk}/file")
    page.get_by_label("Guide: previous photo, see-through").fill("70")
    assert guide.evaluate("img => getComputedStyle(img).opacity") == "0.7"
    assert_fits_and_touchable(page)
    wait_until(page, "document.querySelector('[data-video]').videoWidth > 0")
    page.get_by_role("button", name="Take the photo").click()
    expect(page.get_by_role("button", name="Take it again")).to_be_visible()
    shot(page, "photos-camera")
    page.get_by_role("button", name="Save the photo").click()
    expect(page.get_by_text("Location and camera details were removed")).to_be_visible()

    photo = Photo.objects.exclude(pk=previous.pk).get()
    assert (photo.source, photo.expression) == ("camera", "rest")
    with stored_image(photo) as image:
        assert image.format == "JPEG" and dict(image.getexif()) == {}
        assert image.width >= 320

    # Before and after, side by side (the expressions differ: the page says so).
    page.goto(
        f"{live_server.url}/photos/patients/{live_world.patient.pk}/compare/"
        f"?before={previous.pk}&after={photo.pk}"
    )
    expect(page.locator(".pair img")).to_have_count(2)
    wait_until(
        page,
        "[...document.querySelectorAll('.pair img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    expect(page.get_by_text("Different expressions")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "photos-compare")
