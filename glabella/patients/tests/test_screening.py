from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from glabella.patients import screening, services
from glabella.patients.models import HistoryItem


def _all_no() -> dict[str, str]:
    return {f"a_{q.kind}_{q.code}": "no" for q in screening.SCREENING_QUESTIONS}


def test_every_screening_question_must_be_answered(world):
    data = _all_no()
    del data["a_pregnancy_pregnant"]
    response = world.client("injector").post(
        reverse("patients:screening", args=[world.patient.pk]), data
    )
    assert response.status_code == 200
    assert "Answer yes or no." in response.content.decode()
    world.patient.refresh_from_db()
    assert world.patient.screened_at is None


def test_a_yes_raises_the_flag_the_safety_engine_understands(world):
    data = _all_no() | {
        "a_allergy_cow-milk-protein": "yes",
        "a_medication_aminoglycoside": "yes",
        "d_medication_aminoglycoside": "gentamicin",
        "a_condition_myasthenia-gravis": "yes",
    }
    response = world.client("injector").post(
        reverse("patients:screening", args=[world.patient.pk]), data
    )
    assert response.status_code == 302
    assert services.patient_flags(world.patient) == {
        "allergy-cow-milk-protein",
        "neuromuscular-blocking-drug",
        "neuromuscular-disorder",
    }
    world.patient.refresh_from_db()
    assert world.patient.screened_at is not None
    assert world.patient.screened_by == world.users["injector"]
    html = (
        world.client("injector")
        .get(reverse("patients:detail", args=[world.patient.pk]))
        .content.decode()
    )
    assert "Cow&#x27;s milk protein allergy" in html and "Neuromuscular disorder" in html
    assert "gentamicin" in html


def test_a_later_no_resolves_the_item_but_keeps_it_in_the_record(world):
    client = world.client("injector")
    url = reverse("patients:screening", args=[world.patient.pk])
    client.post(url, _all_no() | {"a_pregnancy_pregnant": "yes"})
    assert "pregnant" in services.patient_flags(world.patient)
    client.post(url, _all_no())
    assert "pregnant" not in services.patient_flags(world.patient)
    item = HistoryItem.objects.get(patient=world.patient, code="pregnant")
    assert item.resolved_on == date.today()


def test_product_allergy_gives_a_product_flag(world):
    services.add_history_item(
        world.actor(), world.patient, {"kind": "allergy", "code": "product:dysport"}
    )
    assert services.patient_flags(world.patient) == {"allergy-dysport"}


def test_entered_in_error_needs_a_reason_and_keeps_the_item(world):
    item = services.add_history_item(
        world.actor(), world.patient, {"kind": "allergy", "code": "albumin"}
    )
    with pytest.raises(ValidationError):
        services.close_history_item(world.actor(), item, reason=" ", entered_in_error=True)
    response = world.client("injector").post(
        reverse("patients:history_close", args=[world.patient.pk, item.pk]),
        {"how": "error", "reason": "wrong patient"},
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.entered_in_error and item.error_reason == "wrong patient"
    assert services.patient_flags(world.patient) == frozenset()


OUTSIDE = {
    "kind": "outside_treatment",
    "code": "toxin",
    "product_id": "botox_cosmetic",
    "units": "20",
    "area": "glabella",
    "treated_on": (date.today() - timedelta(days=30)).isoformat(),
}


def test_outside_treatment_is_recorded_with_product_units_and_date(world):
    response = world.client("injector").post(
        reverse("patients:history_add", args=[world.patient.pk]), OUTSIDE
    )
    assert response.status_code == 302
    item = HistoryItem.objects.get(kind="outside_treatment")
    assert item.units == Decimal("20") and item.product_id == "botox_cosmetic"


@pytest.mark.parametrize(
    ("change", "field_message"),
    [
        ({"units": "-5"}, "more than zero"),
        ({"units": "0"}, "more than zero"),
        ({"units": "NaN"}, "ordinary number"),
        ({"units": "Infinity"}, "ordinary number"),
        ({"units": "abc"}, "is not a number of units"),
        ({"units": "5000"}, "more than four of its largest vials"),
        ({"units": "2.555"}, "two decimal places"),
        ({"product_id": "superbotox"}, "Select a valid choice"),
        ({"treated_on": (date.today() + timedelta(days=3)).isoformat()}, "in the future"),
        ({"area": ""}, "Say where it was injected"),
    ],
)
def test_bad_outside_treatment_is_refused_beside_the_field(world, change, field_message):
    response = world.client("injector").post(
        reverse("patients:history_add", args=[world.patient.pk]), {**OUTSIDE, **change}
    )
    assert response.status_code == 200
    assert field_message in response.content.decode().replace("&quot;", '"')
    assert not HistoryItem.objects.filter(kind="outside_treatment").exists()


def test_service_refuses_an_unknown_product_for_api_and_command_callers(world):
    with pytest.raises(ValidationError) as exc:
        services.add_history_item(world.actor(), world.patient, {**OUTSIDE, "product_id": "nope"})
    assert "Choose the product" in exc.value.message_dict["product_id"][0]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_an_outside_treatment_of_the_clinics_today_is_not_in_the_future(world, zone):
    """The clinic's today, not the server's (at any hour one of the two zones is on another
    day than UTC); the day after it is refused."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    world.clinic.timezone = zone
    world.clinic.save(update_fields=["timezone"])
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    client = world.client("injector")
    url = reverse("patients:history_add", args=[world.patient.pk])
    assert client.post(url, {**OUTSIDE, "treated_on": today.isoformat()}).status_code == 302
    item = HistoryItem.objects.get(kind="outside_treatment")
    assert item.treated_on == today
    tomorrow = (today + timedelta(days=1)).isoformat()
    refused = client.post(url, {**OUTSIDE, "treated_on": tomorrow})
    assert "in the future" in refused.content.decode()
    services.close_history_item(world.actor("injector"), item, reason="", entered_in_error=False)
    item.refresh_from_db()
    assert item.resolved_on == today
