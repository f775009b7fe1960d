from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from glabella.audit.models import AuditEvent
from glabella.patients import services
from glabella.patients.models import HistoryItem, Patient

NEW = {
    "given_name": "Grace",
    "family_name": "Hopper",
    "date_of_birth": "1986-12-09",
    "sex": "female",
    "weight_kg": "61.5",
    "phone": "+44 7700 900456",
    "email": "grace@example.org",
    "preferred_channel": "email",
    "reminder_consent": "on",
}


def test_registering_a_patient_saves_and_audits(world):
    response = world.client("front_desk").post(reverse("patients:new"), NEW)
    patient = Patient.objects.get(family_name="Hopper")
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:detail", args=[patient.pk])
    assert patient.organization == world.org
    assert patient.home_clinic == world.clinic
    assert str(patient.weight_kg) == "61.5"
    assert patient.reminder_consent and patient.reminder_consent_at is not None
    assert patient.phone_digits == "447700900456"
    event = AuditEvent.objects.filter(action="create", object_type="patients.patient").latest("seq")
    assert event.object_id == str(patient.pk) and event.actor_label == "front_desk@alpha.test"


def test_a_clinician_goes_straight_to_screening_after_registering(world):
    response = world.client("injector").post(reverse("patients:new"), NEW)
    patient = Patient.objects.get(family_name="Hopper")
    assert response["Location"] == reverse("patients:screening", args=[patient.pk])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date_of_birth", (date.today() + timedelta(days=1)).isoformat(), "in the future"),
        ("date_of_birth", "1850-01-01", "before 1900"),
        ("date_of_birth", "31/31/2000", "Enter a valid date"),
        ("weight_kg", "-3", "not possible"),
        ("weight_kg", "NaN", "Enter a number"),
        ("weight_kg", "900", "not possible"),
        ("email", "not-an-email", "valid e-mail"),
        ("given_name", "", "required"),
    ],
)
def test_bad_patient_input_is_explained_beside_the_field_and_nothing_is_written(
    world, field, value, message
):
    client = world.client("injector")
    before = Patient.objects.count()
    events = AuditEvent.objects.count()
    response = client.post(reverse("patients:new"), {**NEW, field: value})
    assert response.status_code == 200
    html = response.content.decode()
    assert message.lower() in html.lower()
    assert "Nothing was saved" in html
    assert Patient.objects.count() == before
    assert AuditEvent.objects.count() == events


def test_a_duplicate_patient_is_refused_even_with_different_case_and_accents(world):
    world.client("injector").post(reverse("patients:new"), NEW)
    response = world.client("injector").post(
        reverse("patients:new"), {**NEW, "given_name": "GRACE ", "family_name": "hoppér"}
    )
    assert response.status_code == 200
    assert "is already registered" in response.content.decode()
    assert Patient.objects.filter(family_name__iexact="hopper").count() == 1


def test_same_name_and_birthday_in_another_organization_is_not_a_duplicate(world):
    services.create_patient(world.outsider_actor(), {**NEW, "date_of_birth": date(1986, 12, 9)})
    services.create_patient(world.actor(), {**NEW, "date_of_birth": date(1986, 12, 9)})
    assert Patient.objects.filter(family_name="Hopper").count() == 2


def test_reminders_by_email_need_an_email_address(world):
    with pytest.raises(ValidationError) as exc:
        services.create_patient(world.actor(), {**NEW, "email": ""})
    assert "need an e-mail address" in exc.value.message_dict["email"][0]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("love", True),
        ("LOVELACE ada", True),
        ("10/12/1985", True),
        ("1985-12-10", True),
        ("900123", True),
        ("ada@example", True),
        ("11/12/1985", False),
        ("Outside", False),  # the other organization's patient is never found
    ],
)
def test_search_by_name_birth_date_phone_or_email(world, query, found):
    results = list(services.search_patients(world.actor(), query))
    assert (world.patient in results) is found
    assert world.outsider_patient not in results


def test_search_results_shown_are_audited_with_the_query_and_the_patients(world):
    world.client("front_desk").get(reverse("patients:list"), {"q": "lovel"})
    event = AuditEvent.objects.filter(action="view").latest("seq")
    assert event.detail == {"part": "search", "query": "lovel", "ids": [world.patient.pk]}
    assert event.actor_label == "front_desk@alpha.test"


def test_search_as_you_type_returns_only_the_results_fragment(world):
    response = world.client("front_desk").get(
        reverse("patients:list"), {"q": "lovel"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "LOVELACE, Ada" in html and "<html" not in html


def test_empty_search_says_so_clearly(world):
    html = world.client("front_desk").get(reverse("patients:list"), {"q": "zzzz"}).content.decode()
    assert "No patient matches" in html


def test_editing_records_what_changed_in_the_audit_trail(world):
    client = world.client("front_desk")
    data = {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "date_of_birth": "1985-12-10",
        "sex": "female",
        "phone": "07700 900999",
        "email": "ada@example.org",
        "preferred_channel": "sms",
        "reminder_consent": "on",
    }
    response = client.post(reverse("patients:edit", args=[world.patient.pk]), data)
    assert response.status_code == 302
    world.patient.refresh_from_db()
    assert world.patient.phone_digits == "07700900999"
    event = AuditEvent.objects.filter(action="update").latest("seq")
    assert event.detail["changes"]["phone"] == ["07700 900123", "07700 900999"]
    assert event.detail["changes"]["preferred_channel"] == ["email", "sms"]


def test_every_view_of_a_patient_is_audited_with_what_was_shown(world):
    world.client("front_desk").get(reverse("patients:detail", args=[world.patient.pk]))
    world.client("injector").get(reverse("patients:detail", args=[world.patient.pk]))
    views = list(AuditEvent.objects.filter(action="view").order_by("seq"))
    assert [(e.actor_label, e.detail["part"]) for e in views[-2:]] == [
        ("front_desk@alpha.test", "contact"),
        ("injector@alpha.test", "record"),
    ]


def test_front_desk_sees_contact_details_but_no_clinical_information(world):
    actor = world.actor("injector")
    services.update_clinical_notes(actor, world.patient, "Asymmetric brows: go light on the left.")
    services.add_history_item(
        actor, world.patient, {"kind": "medication", "code": "anticoagulant", "detail": "apixaban"}
    )
    html = (
        world.client("front_desk")
        .get(reverse("patients:detail", args=[world.patient.pk]))
        .content.decode()
    )
    assert "07700 900123" in html
    assert "Asymmetric brows" not in html
    assert "apixaban" not in html and "Anticoagulant" not in html
    html = (
        world.client("injector")
        .get(reverse("patients:detail", args=[world.patient.pk]))
        .content.decode()
    )
    assert "Asymmetric brows" in html and "apixaban" in html
    for url in ("patients:screening", "patients:history_add"):
        assert (
            world.client("front_desk").get(reverse(url, args=[world.patient.pk])).status_code == 403
        )


def test_auditor_can_read_but_every_write_is_refused(world):
    client = world.client("auditor")
    pk = world.patient.pk
    assert client.get(reverse("patients:detail", args=[pk])).status_code == 200
    before = (Patient.objects.count(), HistoryItem.objects.count())
    writes = [
        (reverse("patients:new"), NEW),
        (reverse("patients:edit", args=[pk]), NEW),
        (reverse("patients:screening", args=[pk]), {}),
        (reverse("patients:notes", args=[pk]), {"clinical_notes": "x"}),
        (reverse("patients:history_add", args=[pk]), {"kind": "allergy", "code": "albumin"}),
    ]
    for url, data in writes:
        assert client.post(url, data).status_code == 403, url
    assert (Patient.objects.count(), HistoryItem.objects.count()) == before


def test_concurrent_registration_of_the_same_patient_keeps_one(world):
    # The database constraint backs the form check: a second insert that slipped past
    # the check (double submit) is refused with the same clear message.
    actor = world.actor()
    services.create_patient(actor, NEW)
    with pytest.raises(ValidationError, match="already registered"):
        services.create_patient(actor, {**NEW, "family_name": "HOPPER"})
    assert Patient.objects.filter(name_key="hopper grace").count() == 1


def test_age_on_a_day(world):
    assert world.patient.age_on(date(2025, 12, 9)) == 39
    assert world.patient.age_on(date(2025, 12, 10)) == 40


def test_dashboard_lists_recent_patients_of_the_organization_only(world):
    html = world.client("front_desk").get(reverse("web:dashboard")).content.decode()
    assert "LOVELACE" in html and "OUTSIDE" not in html
    assert timezone.now()
