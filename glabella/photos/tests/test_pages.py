"""The photo pages and files through the Django client: upload, refusals, headers, audit, and a
walk of every URL by every role and by an outsider."""

from __future__ import annotations

import io

import pytest
from django.urls import URLPattern, reverse
from PIL import Image

from glabella.accounts.roles import can
from glabella.audit.models import AuditEvent
from glabella.photos import services, urls
from glabella.photos.models import Photo
from glabella.photos.tests import helpers

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]
FRONT = {"area": "glabellar", "view": "front", "expression": "frown"}

# name -> (permission, method)
URLS: dict[str, tuple[str, str]] = {
    "patient": ("photo.view", "get"),
    "take": ("photo.take", "get"),
    "compare": ("photo.view", "get"),
    "detail": ("photo.view", "get"),
    "file": ("photo.view", "get"),
    "error": ("photo.take", "post"),
    "marketing": ("photo.take", "post"),
}
BY_PATIENT = {"patient", "take", "compare"}


def stored(world, **kw):
    fields = {**FRONT, **kw}
    data = fields.pop("data", None) or helpers.gps_jpeg()
    return services.take_photo(
        world.actor("injector"), world.patient, helpers.photo_upload(data), **fields
    )


def post_photo(client, patient, data, name="IMG_0001.jpg", **fields):
    payload = {**FRONT, "taken_on": "", "session": "", **fields}
    payload["photo"] = helpers.photo_upload(data, name)
    return client.post(reverse("photos:take", args=[patient.pk]), payload)


def test_the_walk_covers_every_photo_url():
    patterns = urls.urlpatterns
    assert all(isinstance(p, URLPattern) for p in patterns)
    assert sorted(p.name for p in patterns) == sorted(URLS), "add the new URL to URLS here"
    for p in patterns:
        assert p.callback.required_permission == URLS[p.name][0], p.name


def _url(name, world, photo):
    pk = world.patient.pk if name in BY_PATIENT else photo.pk
    return reverse(f"photos:{name}", args=[pk])


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_each_url_by_its_permission(world, consented, role):
    photo = stored(world)
    client = world.client(role)
    for name, (permission, method) in URLS.items():
        url = _url(name, world, photo)
        data = {"reason": "Wrong area.", "use": "0"} if method == "post" else None
        response = getattr(client, method)(url, data) if data else client.get(url)
        if can(role, permission):
            assert response.status_code in (200, 302), (role, name, response.status_code)
        else:
            assert response.status_code == 403, (role, name, response.status_code)


def test_an_outsider_gets_404_for_every_url_and_changes_nothing(world, consented):
    photo = stored(world)
    client = world.client("outsider")  # an owner: every permission, in another organization
    before = AuditEvent.objects.filter(organization=world.org).count()
    for name, (_permission, method) in URLS.items():
        url = _url(name, world, photo)
        response = (
            client.post(url, {"reason": "x", "use": "1"}) if method == "post" else client.get(url)
        )
        assert response.status_code == 404, name
    response = post_photo(client, world.patient, helpers.gps_jpeg())
    assert response.status_code == 404
    photo.refresh_from_db()
    assert not photo.entered_in_error and not photo.marketing_use
    assert Photo.objects.count() == 1
    assert AuditEvent.objects.filter(organization=world.org).count() == before


def test_a_photo_uploaded_on_the_page_is_stored_without_gps(world, consented):
    response = post_photo(world.client("injector"), world.patient, helpers.gps_jpeg())
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert response["Location"].startswith(reverse("photos:take", args=[world.patient.pk]))
    assert "area=glabellar" in response["Location"]  # the next photo keeps the choices
    served = world.client("auditor").get(reverse("photos:file", args=[photo.pk]))
    data = b"".join(served.streaming_content)
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif().get_ifd(0x8825) == {} and dict(image.getexif()) == {}
    assert photo.source == "upload"


def test_the_file_is_served_privately_inline_and_unsniffable(world, consented):
    photo = stored(world)
    for query in ("", "?size=thumb"):
        response = world.client("prescriber").get(reverse("photos:file", args=[photo.pk]) + query)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert response["Cache-Control"] == "private, no-store"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("inline")
        b"".join(response.streaming_content)
    parts = list(
        AuditEvent.objects.filter(object_type="photos.photo", action="view")
        .order_by("seq")
        .values_list("detail__part", flat=True)
    )
    assert parts == ["file", "thumbnail"]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (helpers.HTML, "photo.jpg", "not only a photo"),
        (helpers.PDF, "scan.jpg", "not only a photo"),
        (helpers.SVG, "face.jpg", "not only a photo"),
        (helpers.jpeg_zip_polyglot(), "photo.jpg", "not only a photo"),
        (b"hello", "photo.jpg", "not a photo Glabella can use"),
        (helpers.HEIC, "IMG_0002.HEIC", "HEIC"),
    ],
    ids=["html", "pdf", "svg", "polyglot", "text", "heic"],
)
def test_a_bad_file_is_refused_on_the_page_and_nothing_is_stored(
    world, consented, settings, data, name, message
):
    response = post_photo(world.client("injector"), world.patient, data, name)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert "Nothing was saved" in response.content.decode()
    assert Photo.objects.count() == 0
    assert helpers.stored_files(settings.GLABELLA_PHOTO_ROOT) == []


def test_a_too_large_file_is_refused_on_the_page(world, consented, settings):
    settings.GLABELLA_PHOTO_MAX_BYTES = 3000
    response = post_photo(world.client("injector"), world.patient, helpers.gps_jpeg(640, 480))
    assert response.status_code == 422
    assert "the limit is" in response.content.decode()
    assert Photo.objects.count() == 0


def test_without_photography_consent_the_page_says_so_and_links_to_it(world):
    client = world.client("injector")
    page = client.get(reverse("photos:take", args=[world.patient.pk]))
    body = page.content.decode()
    assert "No valid consent to clinical photographs" in body
    assert reverse("consent:take", args=[world.patient.pk, "photography"]) in body
    assert 'type="file"' not in body  # no form to upload with
    response = post_photo(client, world.patient, helpers.gps_jpeg())
    assert response.status_code == 409
    assert "no valid consent to clinical photographs" in response.content.decode()
    assert Photo.objects.count() == 0
    # The consent is taken through the ordinary consent page, then the photo goes in.
    consent_page = client.get(reverse("consent:take", args=[world.patient.pk, "photography"]))
    assert "Consent to clinical photographs" in consent_page.content.decode()
    helpers.photography_consent(world)
    assert post_photo(client, world.patient, helpers.gps_jpeg()).status_code == 302


def test_the_take_page_offers_camera_overlay_and_file_fallback(world, consented):
    photo = stored(world)
    page = world.client("injector").get(
        reverse("photos:take", args=[world.patient.pk]) + "?area=glabellar&view=front"
    )
    body = page.content.decode()
    assert 'capture="environment"' in body and 'accept="image/jpeg' in body
    assert "photos/camera.js" in body and "data-guide" in body
    assert reverse("photos:file", args=[photo.pk]) in body  # the guide for glabellar|front
    assert "<script>" not in body and "onclick" not in body.lower()


def test_the_gallery_groups_by_area_and_view_and_has_an_empty_state(world, consented):
    client = world.client("auditor")
    empty = client.get(reverse("photos:patient", args=[world.patient.pk])).content.decode()
    assert "No photos of Ada Lovelace yet" in empty
    first = stored(world)
    stored(world, view="side-left", expression="rest")
    later = stored(world, data=helpers.gps_jpeg(330, 240))
    body = client.get(reverse("photos:patient", args=[world.patient.pk])).content.decode()
    assert body.count('class="panel photo-group"') == 2
    assert "Glabellar (frown lines) · Front · Frown" in body
    assert body.index(f"/photos/{later.pk}/") < body.index(f"/photos/{first.pk}/")  # newest first
    assert f"before={first.pk}&amp;after={later.pk}" in body
    event = AuditEvent.objects.filter(action="view", detail__part="photo gallery").order_by("-seq")[
        0
    ]
    assert sorted(event.detail["photos"]) == sorted(p.pk for p in Photo.objects.all())


def test_entering_a_photo_in_error_on_the_page_needs_a_reason(world, consented):
    photo = stored(world)
    client = world.client("injector")
    url = reverse("photos:error", args=[photo.pk])
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 422 and "Say why" in refused.content.decode()
    assert client.post(url, {"reason": "Wrong patient."}).status_code == 302
    photo.refresh_from_db()
    assert photo.entered_in_error
    gallery = client.get(reverse("photos:patient", args=[world.patient.pk])).content.decode()
    assert "Show 1 photo entered in error" in gallery
    assert f"/photos/{photo.pk}/" not in gallery
    detail = client.get(reverse("photos:detail", args=[photo.pk])).content.decode()
    assert "Entered in error" in detail and "Wrong patient." in detail


def test_marketing_use_on_the_page_is_refused_without_its_consent(world, consented):
    photo = stored(world)
    client = world.client("injector")
    url = reverse("photos:marketing", args=[photo.pk])
    detail = client.get(reverse("photos:detail", args=[photo.pk])).content.decode()
    assert "no valid consent to the use of photographs in marketing" in detail
    response = client.post(url, {"use": "1"}, follow=True)
    assert "no valid consent to the use of photographs in marketing" in response.content.decode()
    photo.refresh_from_db()
    assert not photo.marketing_use
    helpers.photography_consent(world, category="photo-marketing")
    client.post(url, {"use": "1"})
    photo.refresh_from_db()
    assert photo.marketing_use


def test_the_comparison_page_shows_two_photos_side_by_side_and_warns(world, consented):
    front = stored(world)
    side = stored(world, view="side-left")
    client = world.client("prescriber")
    url = reverse("photos:compare", args=[world.patient.pk])
    body = client.get(f"{url}?before={front.pk}&after={side.pk}").content.decode()
    assert body.count('class="pair"') == 1
    assert "Different views" in body
    assert "photos/print.js" in body
    assert client.get(f"{url}?before={front.pk}&after=999999").status_code == 404
    assert client.get(f"{url}?before=abc").status_code == 404
    other = helpers.another_patient(world)
    assert (
        client.get(
            reverse("photos:compare", args=[other.pk]) + f"?before={front.pk}&after={side.pk}"
        ).status_code
        == 404
    )


def test_a_file_missing_from_storage_is_a_404_not_a_crash(world, consented, settings):
    photo = stored(world)
    (settings.GLABELLA_PHOTO_ROOT / photo.storage_name).unlink()
    response = world.client("injector").get(reverse("photos:file", args=[photo.pk]))
    assert response.status_code == 404
