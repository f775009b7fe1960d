"""What the patient's own pages show, and what the patient can write through them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.charting import services as charting
from glabella.charting.models import TreatmentSession
from glabella.outcomes.models import Assessment, DiaryEntry, EffectReturn, Rater, Via
from glabella.patients import services as patient_services
from glabella.portal import services
from glabella.portal.tests.conftest import appointment, qr_link
from glabella.scheduling.tests.recall_helpers import consent_from, signed


@pytest.fixture
def treated(world):
    """Ada: a signed Botox Cosmetic glabellar treatment 20 days ago (5 x 4 U) and a draft."""
    consent_from(world, 200)
    session = signed(world, "glabellar-lines", "botox_cosmetic", days_ago=20)
    charting.start_session(
        world.actor("injector"),
        world.patient,
        indication="lateral-canthal-lines",
        product_id="dysport",
        prescriber=world.users["prescriber"],
    )
    return session


def _get(visit_token: str, name: str = "home", *args) -> str:
    response = Client().get(reverse(f"portal:{name}", args=[visit_token, *args]))
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _today(world) -> date:
    return services.today_for(world.patient)


# --- home: appointments, treatments, aftercare -------------------------------------------------


def test_home_lists_upcoming_appointments_in_clinic_time_without_staff_details(world):
    injector = world.users["injector"]
    injector.first_name, injector.last_name = "Nina", "Staffordshire"
    injector.save(update_fields=["first_name", "last_name"])
    booked = appointment(world, days=5)
    past = appointment(world, days=-5)
    cancelled = appointment(world, days=6)
    cancelled.status = "cancelled"
    cancelled.save(update_fields=["status"])
    text = _get(qr_link(world).token)
    local = services.upcoming(services.link_for_token(qr_link(world).token))[0].starts_at
    assert local.tzname() in ("GMT", "BST")  # the clinic's Europe/London time
    assert f"{local:%H:%M}</strong>" in text and f"({local:%Z})" in text
    assert "Treatment at Alpha Central, with Nina" in text
    assert text.count("Treatment at Alpha Central") == 1  # not the past or cancelled one
    for staff_only in ("Staffordshire", "injector@alpha.test", "prefers the left chair"):
        assert staff_only not in text
    assert past.pk and booked.pk


def test_home_shows_each_signed_treatment_with_product_units_and_areas(world, treated):
    text = _get(qr_link(world).token)
    assert f"{treated.treated_on:%-d %B %Y}: Botox Cosmetic" in text
    assert "20 Botox Cosmetic units" in text
    assert "Glabella (20 Botox Cosmetic units)" in text
    assert "Dysport units" not in text  # the draft is not a treatment
    assert "C1234AB" not in text  # no lot numbers
    assert "Stay upright for 4 hours" in text
    assert "trouble swallowing" in text and "double or blurred vision" in text


def test_a_voided_treatment_is_not_shown(world, treated):
    charting.void(world.actor("prescriber"), treated, "Charted on the wrong patient.")
    text = _get(qr_link(world).token)
    assert "Botox Cosmetic units" not in text
    assert "No treatment is recorded yet" in text


def test_another_patients_data_never_appears(world, treated):
    grace = patient_services.create_patient(
        world.actor("injector"),
        {
            "given_name": "Grace",
            "family_name": "Hopper",
            "date_of_birth": date(1980, 5, 5),
            "email": "grace@example.org",
        },
    )
    consent_from(world, 200, patient=grace)
    signed(world, "glabellar-lines", "dysport", days_ago=10, patient=grace)
    appointment(world, patient=grace, days=2, kind="review")
    ada = qr_link(world)
    ada_token = ada.token
    text = "".join(_get(ada_token, name) for name in ("home", "diary", "questionnaires"))
    for other in ("Grace", "Hopper", "grace@example.org", "Dysport units", "Two-week review"):
        assert other not in text, other
    # And Grace's pages show nothing of Ada's.
    grace_text = _get(qr_link(world, patient=grace).token)
    assert "Hello Grace" in grace_text
    for other in ("Ada", "Lovelace", "Botox Cosmetic units"):
        assert other not in grace_text, other
    # Ada's link cannot write to Grace's treatment.
    grace_session = TreatmentSession.objects.get(patient=grace)
    response = Client().post(
        reverse("portal:wearing_off", args=[ada_token, grace_session.pk]),
        {"returned_on": _today(world).isoformat()},
    )
    assert response.status_code == 404
    assert not EffectReturn.objects.exists()


# --- my treatment is wearing off ----------------------------------------------------------------


def test_the_patient_records_that_a_treatment_is_wearing_off(world, treated):
    token = qr_link(world).token
    day = _today(world) - timedelta(days=1)
    response = Client().post(
        reverse("portal:wearing_off", args=[token, treated.pk]),
        {"returned_on": day.isoformat()},
        follow=True,
    )
    assert response.status_code == 200
    assert "we have noted" in response.content.decode()
    row = EffectReturn.objects.get()
    assert (row.session_id, row.returned_on, row.rater, row.via) == (
        treated.pk,
        day,
        Rater.PATIENT,
        Via.PORTAL,
    )
    assert row.recorded_by is None
    assert "You told us this treatment started wearing off" in _get(token)


def test_a_future_wearing_off_day_is_refused_in_words(world, treated):
    token = qr_link(world).token
    response = Client().post(
        reverse("portal:wearing_off", args=[token, treated.pk]),
        {"returned_on": (_today(world) + timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 422
    assert "is in the future" in response.content.decode()
    assert not EffectReturn.objects.exists()


# --- the diary ----------------------------------------------------------------------------------


def test_a_diary_day_entered_by_the_patient_is_kept_as_theirs(world):
    token = qr_link(world).token
    day = _today(world) - timedelta(days=2)
    response = Client().post(
        reverse("portal:diary", args=[token]),
        {
            "day": day.isoformat(),
            "headache": "yes",
            "migraine": "on",
            "severity": "2",
            "hours": "4.5",
            "acute_medication": ["triptan", "simple_analgesic"],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert f"Saved: {day:%d/%m/%Y}" in response.content.decode()
    entry = DiaryEntry.objects.get()
    assert (entry.day, entry.headache, entry.migraine, entry.severity) == (day, True, True, 2)
    assert str(entry.hours) == "4.5"
    assert sorted(entry.acute_medication) == ["simple_analgesic", "triptan"]
    assert entry.via == Via.PORTAL and entry.recorded_by is None
    event = AuditEvent.objects.get(object_type="outcomes.diaryentry", object_id=str(entry.pk))
    assert "patient link" in event.actor_label
    assert "Yes, migraine, moderate, 4.5 h" in _get(token, "diary")


def test_a_second_entry_for_a_day_replaces_the_first_and_says_so(world):
    token = qr_link(world).token
    day = _today(world)
    url = reverse("portal:diary", args=[token])
    Client().post(url, {"day": day.isoformat(), "headache": "no"})
    response = Client().post(
        url, {"day": day.isoformat(), "headache": "yes", "severity": "3"}, follow=True
    )
    assert "replaces the earlier one" in response.content.decode()
    first, second = DiaryEntry.objects.order_by("pk")
    assert first.replaced_at is not None and first.replaced_by_id == second.pk
    assert second.replaced_at is None and second.headache and second.severity == 3


def test_a_future_diary_day_is_refused_in_words_and_nothing_is_saved(world):
    token = qr_link(world).token
    tomorrow = _today(world) + timedelta(days=1)
    response = Client().post(
        reverse("portal:diary", args=[token]), {"day": tomorrow.isoformat(), "headache": "yes"}
    )
    assert response.status_code == 422
    text = response.content.decode()
    assert f"{tomorrow:%d/%m/%Y} is in the future" in text
    assert not DiaryEntry.objects.exists()


def test_a_diary_day_without_the_headache_answer_is_refused(world):
    token = qr_link(world).token
    response = Client().post(
        reverse("portal:diary", args=[token]), {"day": _today(world).isoformat()}
    )
    assert response.status_code == 422
    assert "Say whether you had a headache" in response.content.decode()
    assert not DiaryEntry.objects.exists()


def test_a_day_without_headache_drops_the_headache_details(world):
    token = qr_link(world).token
    Client().post(
        reverse("portal:diary", args=[token]),
        {"day": _today(world).isoformat(), "headache": "no", "severity": "3", "hours": "2"},
    )
    entry = DiaryEntry.objects.get()
    assert (entry.headache, entry.severity, entry.hours) == (False, None, None)


# --- questionnaires -------------------------------------------------------------------------------


@pytest.fixture
def migraine(world):
    consent_from(world, 200)
    return signed(world, "chronic-migraine", "botox", days_ago=60)


HIT6_ALL = {"q1": "10", "q2": "11", "q3": "8", "q4": "6", "q5": "13", "q6": "10"}


def test_the_due_questionnaires_are_listed_and_linked(world, migraine):
    token = qr_link(world).token
    text = _get(token, "questionnaires")
    assert "HIT-6" in text and "MIDAS" in text
    assert reverse("portal:questionnaire", args=[token, "hit-6"]) in text
    assert "Questionnaires to fill in" in _get(token)


def test_a_questionnaire_with_a_missing_answer_says_so_and_saves_nothing(world, migraine):
    token = qr_link(world).token
    answers = {k: v for k, v in HIT6_ALL.items() if k != "q3"}
    response = Client().post(reverse("portal:questionnaire", args=[token, "hit-6"]), answers)
    assert response.status_code == 422
    text = response.content.decode()
    assert "Question 3 is not answered" in text and "Nothing was saved" in text
    assert 'value="11" checked' in text  # the other answers are kept on the page
    assert not Assessment.objects.exists()


def test_a_complete_questionnaire_is_scored_and_kept_as_the_patients(world, migraine):
    token = qr_link(world).token
    response = Client().post(
        reverse("portal:questionnaire", args=[token, "hit-6"]), HIT6_ALL, follow=True
    )
    assert response.status_code == 200
    assert "your answers to HIT-6" in response.content.decode()
    row = Assessment.objects.get()
    assert (row.scale_id, row.value, row.rater, row.via) == ("hit-6", 58, Rater.PATIENT, Via.PORTAL)
    assert row.session_id == migraine.pk and row.time_point == "before_next"
    # Answered: no longer due.
    assert reverse("portal:questionnaire", args=[token, "hit-6"]) not in _get(
        token, "questionnaires"
    )


def test_midas_days_are_typed_in(world, migraine):
    token = qr_link(world).token
    response = Client().post(
        reverse("portal:questionnaire", args=[token, "midas"]),
        {"q1": "2", "q2": "3", "q3": "0", "q4": "1", "q5": "4"},
    )
    assert response.status_code == 302
    assert Assessment.objects.get().value == 10


def test_a_staff_only_scale_is_not_offered_to_the_patient(world):
    token = qr_link(world).token
    response = Client().get(reverse("portal:questionnaire", args=[token, "facial-wrinkle-scale"]))
    assert response.status_code == 404
    assert "This page does not exist" in response.content.decode()
