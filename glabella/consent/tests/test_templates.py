from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from glabella.accounts.models import Organization
from glabella.audit.models import AuditEvent
from glabella.consent import services
from glabella.consent.categories import CATEGORIES
from glabella.consent.defaults import REVIEW_MARKER
from glabella.consent.models import ConsentTemplate, ImmutableRecord


def test_default_forms_are_made_once_per_category_and_only_once(world):
    services.ensure_default_templates(world.org)
    assert services.ensure_default_templates(world.org) == []
    rows = ConsentTemplate.objects.for_org(world.org)
    assert sorted(rows.values_list("category", flat=True)) == sorted(CATEGORIES)
    assert all(t.version == 1 and t.is_current for t in rows)


def test_a_new_organization_gets_six_reviewable_default_forms(world):
    org = Organization.objects.create(name="Gamma Clinic")
    created = services.ensure_default_templates(org)
    assert sorted(t.category for t in created) == sorted(CATEGORIES)
    for t in created:
        assert t.body.startswith(REVIEW_MARKER), "the clinic is told to review the wording"
        assert "{patient_name}" in t.body and "{date}" in t.body
        assert t.valid_months == 12
    texts = {t.category: t.body for t in created}
    assert "3 to 4 months" in texts["cosmetic"] and "spread" in texts["cosmetic"]
    assert "31" in texts["chronic-migraine"] and "12 weeks" in texts["chronic-migraine"]
    assert "compensatory sweating" in texts["hyperhidrosis"]
    assert "intradermal" in texts["hyperhidrosis"]
    # The photograph forms say what is taken, who sees it, how it is kept, for how long,
    # and how to withdraw; and neither is a treatment consent.
    for category in ("photography", "photo-marketing"):
        for heading in ("Who sees them", "Withdrawing"):
            assert f"\n{heading}\n" in texts[category]
        assert "spread" not in texts[category]
    assert "Location data" in texts["photography"] and "medical record" in texts["photography"]
    assert "website" in texts["photo-marketing"] and "30 days" in texts["photo-marketing"]
    assert (
        AuditEvent.objects.filter(organization=org, object_type="consent.consenttemplate").count()
        == 6
    )
    # Other organizations are untouched, and a second call changes nothing.
    assert services.ensure_default_templates(org) == []
    assert ConsentTemplate.objects.for_org(org).count() == 6


def test_a_new_version_becomes_current_and_the_old_one_stays(world, forms):
    owner = world.actor("owner")
    v1 = services.current_template(world.org, "cosmetic")
    v2 = services.new_template_version(owner, "cosmetic", "Our cosmetic form", "Text {date}.", 6)
    v3 = services.new_template_version(owner, "cosmetic", "Our cosmetic form", "Text 3.", 12)
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert services.current_template(world.org, "cosmetic") == v3
    old = ConsentTemplate.objects.get(pk=v1.pk)
    assert not old.is_current and old.body == v1.body and old.title == v1.title
    assert ConsentTemplate.objects.for_org(world.org).filter(category="cosmetic").count() == 3
    # Another organization's numbering is its own.
    theirs = services.new_template_version(
        world.outsider_actor(), "cosmetic", "Beta form", "Beta text", 12
    )
    assert theirs.version == 2
    assert AuditEvent.objects.filter(
        object_type="consent.consenttemplate", object_id=str(v3.pk), action="create"
    ).exists()


def test_only_owner_and_prescriber_write_forms(world, forms):
    services.new_template_version(world.actor("prescriber"), "hyperhidrosis", "T", "B", 12)
    for role in ("injector", "front_desk", "auditor"):
        with pytest.raises(PermissionDenied):
            services.new_template_version(world.actor(role), "hyperhidrosis", "T", "B2", 12)


@pytest.mark.parametrize(
    ("title", "body", "months", "field"),
    [
        ("", "Body", 12, "title"),
        ("Title", "   ", 12, "body"),
        ("Title", "Dear {patient_nam}", 12, "body"),
        ("Title", "Body", 0, "valid_months"),
        ("Title", "Body", 61, "valid_months"),
        ("Title", "Body", "twelve", "valid_months"),
    ],
)
def test_bad_template_input_is_refused_and_nothing_is_written(
    world, forms, title, body, months, field
):
    before = ConsentTemplate.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.new_template_version(world.actor("owner"), "cosmetic", title, body, months)
    assert field in exc.value.message_dict
    assert ConsentTemplate.objects.count() == before
    assert services.current_template(world.org, "cosmetic").version == 1


def test_saving_the_same_text_again_is_not_a_new_version(world, forms):
    current = services.current_template(world.org, "cosmetic")
    with pytest.raises(ValidationError, match="Nothing has changed"):
        services.new_template_version(
            world.actor("owner"), "cosmetic", current.title, current.body, current.valid_months
        )


def test_the_database_allows_one_current_version_per_category(world, forms):
    current = services.current_template(world.org, "cosmetic")
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentTemplate.objects.create(
            organization=world.org, category="cosmetic", version=2, title="x", body="y"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentTemplate.objects.create(
            organization=world.org,
            category="cosmetic",
            version=current.version,
            title="x",
            body="y",
            is_current=False,
        )


def test_a_template_version_cannot_be_edited_or_deleted(world, forms):
    t = services.current_template(world.org, "cosmetic")
    t.body = "changed"
    with pytest.raises(ImmutableRecord):
        t.save()
    with pytest.raises(ImmutableRecord):
        t.delete()


def test_rendering_fills_the_placeholders(world, forms):
    t = services.new_template_version(
        world.actor("owner"),
        "cosmetic",
        "Form",
        "I, {patient_name} (born {date_of_birth}), consent at {clinic_name} on {date}.\n"
        "Braces that are not placeholders stay: {patient_name.__class__} {}.",
        12,
    )
    text = services.render(t, world.patient, world.clinic, date(2026, 3, 9))
    assert text.startswith(
        "I, Ada Lovelace (born 10/12/1985), consent at Alpha Central on 09/03/2026."
    )
    assert "{patient_name.__class__} {}" in text
    default = services.render(
        services.current_template(world.org, "chronic-migraine"),
        world.patient,
        world.clinic,
        date(2026, 3, 9),
    )
    assert "{" not in default and "Ada Lovelace" in default and "09/03/2026" in default
