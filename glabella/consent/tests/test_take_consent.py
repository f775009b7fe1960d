from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from glabella.audit.models import AuditEvent
from glabella.consent import services
from glabella.consent.models import Consent, ImmutableRecord

from .helpers import BLANK, JPEG, PDF, SIGNATURE, upload


def drawn(world, role="injector", category="cosmetic", **kw):
    kw.setdefault("read_confirmed", True)
    return services.take_consent(
        world.actor(role), world.patient, category, method="drawn", signature_png=SIGNATURE, **kw
    )


def paper(world, signed_on, category="cosmetic", content=PDF, name="form.pdf", **kw):
    kw.setdefault("read_confirmed", True)
    return services.take_consent(
        world.actor("injector"),
        world.patient,
        category,
        method="paper",
        scan=upload(name, content),
        signed_on=signed_on,
        **kw,
    )


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_drawn_consent_keeps_the_version_the_text_and_its_hash(world, forms):
    consent = drawn(world)
    today = services.today_for(world.actor())
    template = services.current_template(world.org, "cosmetic")
    assert consent.template == template and consent.template_version == 1
    assert consent.rendered_text == services.render(template, world.patient, world.clinic, today)
    assert "Ada Lovelace" in consent.rendered_text and "{" not in consent.rendered_text
    assert len(consent.text_hash) == 64 and services.verify(consent)
    assert bytes(consent.signature) == SIGNATURE
    assert consent.signed_on == today
    assert consent.valid_until == services.add_months(today, 12)
    assert consent.recorded_by == world.users["injector"] and consent.clinic == world.clinic
    event = AuditEvent.objects.get(object_type="consent.consent", object_id=str(consent.pk))
    assert event.action == "create" and event.detail["hash"] == consent.text_hash


def test_changing_the_stored_text_is_detected(world, forms):
    consent = drawn(world)
    Consent.objects.filter(pk=consent.pk).update(
        rendered_text=consent.rendered_text.replace("3 to 4 months", "12 months")
    )
    consent.refresh_from_db()
    assert not services.verify(consent)


def test_a_new_form_version_does_not_change_signed_consents(world, forms):
    first = drawn(world)
    services.new_template_version(world.actor("owner"), "cosmetic", "New", "New text {date}", 6)
    first.refresh_from_db()
    assert first.template_version == 1 and services.verify(first)
    second = drawn(world, role="prescriber")
    assert second.template_version == 2
    assert second.valid_until == services.add_months(second.signed_on, 6)


def test_a_consent_is_never_edited_or_deleted(world, forms):
    consent = drawn(world)
    consent.rendered_text = "something else"
    with pytest.raises(ImmutableRecord):
        consent.save()
    with pytest.raises(ImmutableRecord):
        consent.delete()


def test_validity_includes_both_ends_and_not_the_day_after(world, forms):
    today = services.today_for(world.actor())
    signed = today - timedelta(days=40)
    consent = paper(world, signed)
    assert consent.valid_until == services.add_months(signed, 12)
    assert services.valid_consent(world.patient, "cosmetic", signed) == consent
    assert services.valid_consent(world.patient, "cosmetic", consent.valid_until) == consent
    assert services.valid_consent(world.patient, "cosmetic", signed - timedelta(days=1)) is None
    after = consent.valid_until + timedelta(days=1)
    assert services.valid_consent(world.patient, "cosmetic", after) is None
    # A consent for another category does not count.
    assert services.valid_consent(world.patient, "chronic-migraine", today) is None
    assert services.valid_consent(world.patient, "other-medical", today) is None


def test_a_withdrawn_consent_is_not_valid(world, forms):
    consent = drawn(world)
    today = consent.signed_on
    assert services.valid_consent(world.patient, "cosmetic", today) == consent
    with pytest.raises(ValidationError) as exc:
        services.withdraw(world.actor(), consent, "   ")
    assert "reason" in exc.value.message_dict
    withdrawn = services.withdraw(world.actor(), consent, "Patient changed her mind by phone.")
    assert withdrawn.withdrawn_at is not None and withdrawn.withdrawn_by == world.users["injector"]
    assert services.valid_consent(world.patient, "cosmetic", today) is None
    assert Consent.objects.filter(pk=consent.pk).exists(), "withdrawn, never deleted"
    assert AuditEvent.objects.filter(
        object_type="consent.consent", object_id=str(consent.pk), action="update"
    ).exists()
    # An older, still valid consent would count again; a newer one replaces it.
    again = drawn(world, role="prescriber")
    assert services.valid_consent(world.patient, "cosmetic", today) == again


def test_month_arithmetic_keeps_to_the_calendar():
    assert services.add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert services.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert services.add_months(date(2025, 3, 10), 12) == date(2026, 3, 10)
    assert services.add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


def test_summary_per_category(world, forms):
    today = services.today_for(world.actor())
    consent = drawn(world)
    old = paper(world, today - timedelta(days=800), category="chronic-migraine")
    summary = {s.category: s for s in services.summary_for(world.patient, today)}
    assert list(summary) == [
        "cosmetic",
        "chronic-migraine",
        "hyperhidrosis",
        "other-medical",
        "photography",
        "photo-marketing",
    ]
    assert summary["cosmetic"].consent == consent
    assert summary["chronic-migraine"].consent is None
    assert summary["chronic-migraine"].latest == old
    assert summary["hyperhidrosis"].consent is None and summary["hyperhidrosis"].latest is None
    assert summary["photography"].consent is None and summary["photo-marketing"].consent is None


def test_paper_scans_of_each_allowed_type_are_stored_under_media(world, forms):
    today = services.today_for(world.actor())
    pdf = paper(world, today, content=PDF, name="consent.pdf")
    jpeg = paper(world, today, content=JPEG, name="photo.JPG", category="hyperhidrosis")
    assert pdf.scan_content_type == "application/pdf" and pdf.scan.name.endswith(".pdf")
    assert jpeg.scan_content_type == "image/jpeg" and jpeg.scan.name.endswith(".jpg")
    assert pdf.scan.name.startswith(f"consent/{world.org.pk}/")
    assert Path(pdf.scan.path).read_bytes() == PDF
    assert Path(settings.MEDIA_ROOT) in Path(pdf.scan.path).parents


def _nothing_written(before_events: int) -> None:
    assert Consent.objects.count() == 0
    assert AuditEvent.objects.filter(object_type="consent.consent").count() == before_events
    assert media_files() == []


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"method": "drawn", "signature_png": None}, "signature", "sign in the box"),
        ({"method": "drawn", "signature_png": b""}, "signature", "sign in the box"),
        ({"method": "drawn", "signature_png": BLANK}, "signature", "looks empty"),
        ({"method": "drawn", "signature_png": b"GIF89a" + b"x" * 800}, "signature", "could not"),
        ({"method": "paper", "scan": None}, "scan", "Upload the scan"),
        (
            {"method": "paper", "scan": upload("signed.png", b"I am text, not a PNG\n" * 30)},
            "scan",
            "not a PDF, PNG or JPEG",
        ),
        ({"method": "paper", "scan": upload("empty.pdf", b"")}, "scan", "empty"),
        ({"method": "fax"}, "method", "Choose how"),
        (
            {"method": "drawn", "signature_png": SIGNATURE, "read_confirmed": False},
            "read_confirmed",
            "had the chance to ask questions",
        ),
    ],
)
def test_bad_input_gives_a_clear_message_and_writes_nothing(world, forms, kwargs, field, words):
    kwargs.setdefault("read_confirmed", True)
    with pytest.raises(ValidationError) as exc:
        services.take_consent(world.actor(), world.patient, "cosmetic", **kwargs)
    assert words in " ".join(exc.value.message_dict[field])
    _nothing_written(0)


def test_a_scan_over_the_size_limit_is_refused(world, forms, settings):
    settings.GLABELLA_MAX_UPLOAD_BYTES = 1024 * 1024
    big = PDF + b"0" * (1024 * 1024)
    with pytest.raises(ValidationError) as exc:
        paper(world, None, content=big)
    assert "the limit is 1 MB" in exc.value.message_dict["scan"][0]
    _nothing_written(0)


def test_dates_in_the_future_or_before_birth_are_refused(world, forms):
    today = services.today_for(world.actor())
    with pytest.raises(ValidationError, match="cannot be in the future"):
        paper(world, today + timedelta(days=1))
    with pytest.raises(ValidationError, match="before the patient was born"):
        paper(world, date(1980, 1, 1))
    with pytest.raises(ValidationError, match="dated today"):
        drawn(world, signed_on=today - timedelta(days=3))
    _nothing_written(0)


def test_a_form_that_changed_while_the_page_was_open_is_not_signed(world, forms):
    services.new_template_version(world.actor("owner"), "cosmetic", "New", "New text", 12)
    with pytest.raises(ValidationError, match="now version 2"):
        drawn(world, expected_version=1)
    _nothing_written(0)
    assert drawn(world, expected_version=2).template_version == 2


def test_a_double_submit_records_one_consent(world, forms):
    first = drawn(world, form_token="tok-1")
    second = drawn(world, form_token="tok-1")
    assert first.pk == second.pk
    # Without a token: the same person, patient and text within seconds is the same consent.
    third = drawn(world)
    assert third.pk == first.pk
    assert Consent.objects.count() == 1
    assert AuditEvent.objects.filter(object_type="consent.consent").count() == 1


def test_a_used_form_token_cannot_sign_for_someone_else(world, forms):
    drawn(world, form_token="tok-2")
    with pytest.raises(ValidationError, match="already used"):
        drawn(world, category="hyperhidrosis", form_token="tok-2")


def test_permissions_and_organizations(world, forms):
    for role in ("front_desk", "auditor"):
        with pytest.raises(PermissionDenied):
            drawn(world, role=role)
    with pytest.raises(PermissionDenied):
        services.take_consent(
            world.outsider_actor(),
            world.patient,
            "cosmetic",
            method="drawn",
            signature_png=SIGNATURE,
            read_confirmed=True,
        )
    consent = drawn(world)
    with pytest.raises(PermissionDenied):
        services.withdraw(world.actor("auditor"), consent, "reason")
    with pytest.raises(PermissionDenied):
        services.withdraw(world.outsider_actor(), consent, "reason")
    assert Consent.objects.get(pk=consent.pk).withdrawn_at is None


def test_an_unknown_category_is_refused(world, forms):
    with pytest.raises(ValidationError) as exc:
        drawn(world, category="botox")
    assert "category" in exc.value.message_dict
