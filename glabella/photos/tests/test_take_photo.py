"""Taking, hiding and marketing photos through the services: consent, permissions, storage."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.files.storage import FileSystemStorage, InMemoryStorage
from PIL import Image

from glabella.audit.models import AuditEvent
from glabella.consent import services as consent_services
from glabella.photos import services, storage
from glabella.photos.models import ImmutablePhoto, Photo
from glabella.photos.tests import helpers

FRONT = {"area": "glabellar", "view": "front", "expression": "frown"}


def take(world, data=None, role="injector", **kw):
    fields = {**FRONT, **kw}
    patient = fields.pop("patient", world.patient)
    return services.take_photo(
        world.actor(role), patient, helpers.photo_upload(data or helpers.gps_jpeg()), **fields
    )


def stored_bytes(photo: Photo, thumb: bool = False) -> bytes:
    name = photo.thumb_name if thumb else photo.storage_name
    with storage.photo_storage().open(name, "rb") as handle:
        return handle.read()


def test_a_photo_is_stored_privately_without_exif_or_gps(world, consented, settings):
    photo = take(world)
    root = settings.GLABELLA_PHOTO_ROOT
    files = helpers.stored_files(root)
    assert len(files) == 2  # the photo and its thumbnail, under the private photo root
    assert all(str(f).startswith(str(root)) for f in files)
    assert photo.storage_name.startswith(f"{world.org.pk}/")
    assert "photo" not in photo.storage_name  # a random name, not the upload's
    for thumb in (False, True):
        data = stored_bytes(photo, thumb)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            assert dict(image.getexif()) == {}
            assert image.getexif().get_ifd(0x8825) == {}
        assert b"Exif" not in data and b"Acme" not in data
    data = stored_bytes(photo)
    assert photo.bytes == len(data) and photo.content_type == "image/jpeg"
    assert (photo.width, photo.height) == (320, 240)
    event = AuditEvent.objects.get(object_type="photos.photo", object_id=str(photo.pk))
    assert event.action == "create"
    assert event.detail["metadata_removed"] is True and event.detail["sha256"] == photo.sha256


def test_taking_a_photo_needs_a_valid_photography_consent(world, settings):
    with pytest.raises(services.NoPhotographyConsent, match="no valid consent to clinical"):
        take(world)
    # A treatment consent is not a consent to photographs; nor is a marketing consent.
    helpers.photography_consent(world, category="cosmetic")
    helpers.photography_consent(world, category="photo-marketing")
    with pytest.raises(services.NoPhotographyConsent):
        take(world)
    assert Photo.objects.count() == 0
    assert helpers.stored_files(settings.GLABELLA_PHOTO_ROOT) == []


def test_a_withdrawn_photography_consent_stops_new_photos(world, consented):
    take(world)
    consent_services.withdraw(world.actor("injector"), consented, "Patient changed her mind.")
    with pytest.raises(services.NoPhotographyConsent):
        take(world, expression="rest")
    assert Photo.objects.count() == 1


def test_a_photo_dated_before_the_consent_was_signed_is_refused(world):
    helpers.photography_consent(world, days_ago=0)
    with pytest.raises(services.NoPhotographyConsent):
        take(world, taken_on=date.today() - timedelta(days=30))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><script>x</script></html>", "not only a photo"),
        (helpers.jpeg_zip_polyglot(), "not only a photo"),
        (helpers.HEIC, "HEIC"),
        (b"plain text", "not a photo Glabella can use"),
    ],
    ids=["html", "polyglot", "heic", "text"],
)
def test_a_refused_file_stores_nothing(world, consented, settings, data, message):
    with pytest.raises(ValidationError) as caught:
        take(world, data=data)
    assert message in caught.value.message_dict["photo"][0]
    assert Photo.objects.count() == 0
    assert helpers.stored_files(settings.GLABELLA_PHOTO_ROOT) == []
    assert not AuditEvent.objects.filter(object_type="photos.photo").exists()


def test_a_file_over_the_limit_is_refused_before_it_is_read(world, consented, settings):
    settings.GLABELLA_PHOTO_MAX_BYTES = 2000
    with pytest.raises(ValidationError, match="the limit is"):
        take(world)
    assert Photo.objects.count() == 0


def test_missing_choices_and_a_future_date_are_refused_together(world, consented):
    with pytest.raises(ValidationError) as caught:
        take(
            world, area="", view="upside-down", expression="", taken_on=date.today() + timedelta(2)
        )
    errors = caught.value.message_dict
    assert set(errors) == {"area", "view", "expression", "taken_on"}
    assert "future" in errors["taken_on"][0]


def test_a_session_of_another_patient_is_refused(world, consented):
    other = helpers.another_patient(world)
    session = helpers.make_session(world, other)
    with pytest.raises(ValidationError, match="this patient's treatment sessions"):
        take(world, session=session)
    mine = helpers.make_session(world, world.patient)
    assert take(world, session=mine).session == mine


def test_front_desk_and_auditors_cannot_take_photos(world, consented):
    for role in ("front_desk", "auditor"):
        with pytest.raises(PermissionDenied):
            take(world, role=role)


def test_another_organizations_patient_is_refused_by_the_service(world, consented):
    with pytest.raises(PermissionDenied):
        services.take_photo(
            world.outsider_actor(),
            world.patient,
            helpers.photo_upload(helpers.gps_jpeg()),
            **FRONT,
        )


def test_a_double_submit_returns_the_photo_already_stored(world, consented, settings):
    first = take(world)
    again = take(world)
    assert again.pk == first.pk
    assert Photo.objects.count() == 1
    assert len(helpers.stored_files(settings.GLABELLA_PHOTO_ROOT)) == 2


def test_entered_in_error_hides_the_photo_and_keeps_it(world, consented, settings):
    photo = take(world)
    with pytest.raises(ValidationError, match="Say why"):
        services.mark_entered_in_error(world.actor(), photo, "  ")
    hidden = services.mark_entered_in_error(world.actor(), photo, "Wrong patient.")
    assert hidden.entered_in_error and hidden.error_reason == "Wrong patient."
    assert services.patient_photos(world.actor(), world.patient) == []
    assert services.patient_photos(world.actor(), world.patient, include_errors=True) == [hidden]
    assert len(helpers.stored_files(settings.GLABELLA_PHOTO_ROOT)) == 2  # the files are kept
    assert services.previous_photo(world.patient, "glabellar", "front") is None
    event = AuditEvent.objects.filter(object_type="photos.photo", action="update").get()
    assert event.detail["reason"] == "Wrong patient."


def test_a_photo_is_never_edited_or_deleted(world, consented):
    photo = take(world)
    photo.area = "forehead"
    with pytest.raises(ImmutablePhoto):
        photo.save()
    with pytest.raises(ImmutablePhoto):
        photo.delete()


def test_marketing_use_needs_its_own_consent(world, consented):
    photo = take(world)
    with pytest.raises(ValidationError, match="no valid consent to the use of photographs"):
        services.set_marketing_use(world.actor(), photo, True)
    photo.refresh_from_db()
    assert not photo.marketing_use
    marketing = helpers.photography_consent(world, category="photo-marketing")
    marked = services.set_marketing_use(world.actor(), photo, True)
    assert marked.marketing_use and marked.marketing_consent == marketing
    assert services.marketing_allowed(marked, date.today())
    # Withdrawn: the photo is still marked, but no longer allowed.
    consent_services.withdraw(world.actor(), marketing, "No more website photos.")
    assert not services.marketing_allowed(marked, date.today())
    unmarked = services.set_marketing_use(world.actor(), marked, False)
    assert not unmarked.marketing_use
    changes = AuditEvent.objects.filter(object_type="photos.photo", action="update")
    assert [e.detail["marketing_use"] for e in changes.order_by("seq")] == [True, False]


def test_a_photo_entered_in_error_loses_its_marketing_use(world, consented):
    helpers.photography_consent(world, category="photo-marketing")
    photo = services.set_marketing_use(world.actor(), take(world), True)
    hidden = services.mark_entered_in_error(world.actor(), photo, "Blurred.")
    assert not hidden.marketing_use
    with pytest.raises(ValidationError, match="entered in error cannot be used"):
        services.set_marketing_use(world.actor(), hidden, True)


def test_the_previous_photo_of_the_same_view_is_the_guide(world, consented):
    old = take(world, taken_on=date.today())
    take(world, view="side-left")
    newer = take(world, data=helpers.gps_jpeg(330, 240), expression="rest")
    assert services.previous_photo(world.patient, "glabellar", "front") == newer
    guides = services.guides(world.patient)
    assert guides["glabellar|front"] == newer and "glabellar|side-left" in guides
    assert old.pk != newer.pk


def test_the_comparison_warns_when_the_views_differ(world, consented):
    front = take(world)
    side = take(world, view="side-left", expression="rest")
    photos = services.patient_photos(world.actor(), world.patient)
    pair = services.choose_comparison(photos, front.pk, side.pk)
    assert any("Different views" in w for w in pair.warnings)
    assert any("Different expressions" in w for w in pair.warnings)
    later = take(world, data=helpers.gps_jpeg(321, 240))
    pair = services.choose_comparison(
        services.patient_photos(world.actor(), world.patient), None, None
    )
    assert (pair.before, pair.after, pair.warnings) == (front, later, ())
    with pytest.raises(LookupError):
        services.choose_comparison(photos, front.pk, 999_999)


# --- the storage is pluggable ----------------------------------------------------------------


def test_the_storage_is_chosen_by_settings_and_photos_go_there(world, consented, settings):
    settings.GLABELLA_PHOTO_STORAGE = "django.core.files.storage.InMemoryStorage"
    assert isinstance(storage.photo_storage(), InMemoryStorage)

    # Same code path, a second local folder: the photo goes there, not to the default root.
    settings.GLABELLA_PHOTO_STORAGE = "local"
    other_root = settings.GLABELLA_PHOTO_ROOT.parent / "elsewhere"
    settings.GLABELLA_PHOTO_ROOT = other_root
    built = storage.photo_storage()
    assert isinstance(built, FileSystemStorage)
    with pytest.raises(NotImplementedError, match="no public URL"):
        built.url("1/x.jpg")
    photo = take(world)
    assert (other_root / photo.storage_name).is_file()


def test_s3_storage_is_configured_from_the_glabella_s3_settings(settings):
    settings.GLABELLA_PHOTO_STORAGE = "s3"
    settings.GLABELLA_S3_BUCKET = ""
    with pytest.raises(ImproperlyConfigured, match="GLABELLA_S3_BUCKET"):
        storage.s3_options()
    settings.GLABELLA_S3_BUCKET = "clinic-photos"
    settings.GLABELLA_S3_ENDPOINT_URL = "https://s3.example.org"
    settings.GLABELLA_S3_ACCESS_KEY = "AKIA-test"
    settings.GLABELLA_S3_SECRET_KEY = "secret-test"
    settings.GLABELLA_S3_REGION = "eu-west-2"
    options = storage.s3_options()
    assert options["bucket_name"] == "clinic-photos"
    assert options["endpoint_url"] == "https://s3.example.org"
    assert options["access_key"] == "AKIA-test" and options["secret_key"] == "secret-test"
    assert options["region_name"] == "eu-west-2"
    assert options["default_acl"] is None and options["querystring_auth"] is True
    try:
        import storages  # noqa: F401
    except ImportError:
        with pytest.raises(ImproperlyConfigured, match=r"glabella\[s3\]"):
            storage.photo_storage()
    else:
        assert type(storage.photo_storage()).__name__ == "S3Storage"


def test_an_unknown_storage_setting_is_a_clear_configuration_error(settings):
    settings.GLABELLA_PHOTO_STORAGE = "floppy"
    with pytest.raises(ImproperlyConfigured, match="'local', 's3'"):
        storage.photo_storage()
