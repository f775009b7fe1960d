"""The patients API: search, register, read, change, medical history; role rules and audit
as on the patient pages."""

from __future__ import annotations

import json
from datetime import date, timedelta

from glabella.audit.models import AuditEvent
from glabella.interop.tests.helpers import api_client
from glabella.patients import services as patient_services
from glabella.patients.models import HistoryItem, Patient


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, json.dumps(body), content_type="application/json")


def _more_patients(world, n=3):
    for i in range(n):
        patient_services.create_patient(
            world.actor("front_desk"),
            {
                "given_name": f"Grace{i}",
                "family_name": "Hopper",
                "date_of_birth": date(1950 + i, 1, 9),
                "phone": f"0161 496 00{i}0",
                "email": f"grace{i}@navy.example",
            },
        )


def test_search_by_name_date_of_birth_phone_and_email(world):
    _more_patients(world)
    client = api_client(world, "front_desk")

    def found(query):
        r = client.get(f"/api/v1/patients?{query}")
        assert r.status_code == 200, r.content
        return [p["family_name"] + " " + p["given_name"] for p in r.json()["items"]]

    assert found("name=lovel") == ["Lovelace Ada"]
    assert found("name=hopper") == ["Hopper Grace0", "Hopper Grace1", "Hopper Grace2"]
    assert found("name=hopper&date_of_birth=1951-01-09") == ["Hopper Grace1"]
    assert found("date_of_birth=10/12/1985") == ["Lovelace Ada"]
    assert found("phone=07700+900123") == ["Lovelace Ada"]
    assert found("phone=900123") == ["Lovelace Ada"]
    assert found("email=ada@example.org") == ["Lovelace Ada"]
    assert found("email=navy.example&name=grace2") == ["Hopper Grace2"]
    assert found("name=nobody") == []
    r = client.get("/api/v1/patients?date_of_birth=1985-13-45")
    assert r.status_code == 422 and r.json()["field"] == "date_of_birth"
    r = client.get("/api/v1/patients?phone=12")
    assert r.status_code == 422 and r.json()["field"] == "phone"


def test_search_pages_and_audits_who_was_listed(world):
    _more_patients(world, 4)
    client = api_client(world, "front_desk")
    first = client.get("/api/v1/patients?name=hopper&limit=3").json()
    assert first["count"] == 4 and first["limit"] == 3 and first["offset"] == 0
    assert len(first["items"]) == 3
    rest = client.get("/api/v1/patients?name=hopper&limit=3&offset=3").json()
    assert len(rest["items"]) == 1
    ids = {p["id"] for p in first["items"]} | {p["id"] for p in rest["items"]}
    assert len(ids) == 4
    listed = (
        AuditEvent.objects.filter(action="view", object_type="patients.patient")
        .order_by("seq")
        .last()
    )
    assert listed.detail["part"] == "api search"
    assert set(listed.detail["ids"]) == {p["id"] for p in rest["items"]}
    assert listed.actor == world.users["front_desk"]


def test_register_a_patient_and_read_them_back(world):
    client = api_client(world, "front_desk")
    r = post(
        client,
        "/api/v1/patients",
        {
            "given_name": "Mary",
            "family_name": "Somerville",
            "date_of_birth": "1980-12-26",
            "sex": "female",
            "phone": "+44 7700 900777",
            "email": "Mary@Example.org",
            "weight_kg": 61.5,
            "preferred_channel": "sms",
            "reminder_consent": True,
        },
    )
    assert r.status_code == 201, r.content
    made = r.json()
    assert made["email"] == "mary@example.org" and made["weight_kg"] == "61.5"
    assert made["home_clinic"] == world.clinic.pk
    assert made["clinical_notes"] is None  # front desk does not see clinical data
    patient = Patient.objects.get(pk=made["id"])
    assert patient.organization == world.org and patient.reminder_consent_at is not None
    assert AuditEvent.objects.filter(
        action="create", object_type="patients.patient", object_id=str(patient.pk)
    ).exists()
    read = api_client(world, "injector").get(f"/api/v1/patients/{patient.pk}")
    assert read.json()["clinical_notes"] == "" and read.json()["flags"] == []
    view = (
        AuditEvent.objects.filter(action="view", object_id=str(patient.pk)).order_by("seq").last()
    )
    assert view.detail["part"] == "api record" and view.actor == world.users["injector"]


def test_registering_refuses_what_the_page_refuses(world):
    client = api_client(world, "front_desk")
    base = {"given_name": "Ada", "family_name": "Lovelace", "date_of_birth": "1985-12-10"}
    r = post(client, "/api/v1/patients", base)
    assert r.status_code == 422 and r.json()["field"] == "family_name"
    assert "already registered" in r.json()["message"]
    future = (date.today() + timedelta(days=3)).isoformat()
    cases = [
        ({**base, "family_name": "X", "date_of_birth": future}, "date_of_birth", "future"),
        ({**base, "family_name": "X", "date_of_birth": "10/12/1985"}, "date_of_birth", "YYYY"),
        ({**base, "family_name": "X", "date_of_birth": 502761600}, "date_of_birth", "YYYY"),
        ({**base, "family_name": "X", "weight_kg": "heavy"}, "weight_kg", "kilograms"),
        ({**base, "family_name": "X", "weight_kg": "61.5"}, "weight_kg", "not text"),
        ({**base, "family_name": "X", "weight_kg": 61.55}, "weight_kg", "one decimal place"),
        ({**base, "family_name": "X", "weight_kg": 4000}, "weight_kg", "not possible"),
        ({**base, "family_name": "X", "email": "not-an-address"}, "email", "valid e-mail"),
        ({**base, "family_name": "X", "sex": "f"}, "sex", "Choose one of"),
        ({**base, "family_name": "  "}, "family_name", "Required"),
        (
            {**base, "family_name": "X", "reminder_consent": True, "preferred_channel": "sms"},
            "phone",
            "phone number",
        ),
    ]
    for body, field, words in cases:
        r = post(client, "/api/v1/patients", body)
        assert r.status_code == 422, (body, r.content)
        fields = {p["field"]: p["message"] for p in r.json()["errors"]}
        assert field in fields and words in fields[field], (body, fields)
    # A clinic that is not the organization's is not found, like any record.
    for clinic in (999999, world.outsider_actor().clinic.pk):
        r = post(client, "/api/v1/patients", {**base, "family_name": "X", "home_clinic": clinic})
        assert r.status_code == 404 and r.json()["field"] == "home_clinic", r.content
    assert Patient.objects.for_org(world.org).count() == 1
    # Clinical notes are for clinical roles.
    r = post(client, "/api/v1/patients", {**base, "family_name": "Y", "clinical_notes": "x"})
    assert r.status_code == 403 and r.json()["field"] == "clinical_notes"
    auditor = api_client(world, "auditor")
    assert post(auditor, "/api/v1/patients", {**base, "family_name": "Z"}).status_code == 403


def test_change_contact_details_and_notes_by_role(world):
    url = f"/api/v1/patients/{world.patient.pk}"
    desk = api_client(world, "front_desk")
    r = patch(desk, url, {"phone": "020 7946 0000", "address": "12 St James's Square"})
    assert r.status_code == 200, r.content
    assert r.json()["phone"] == "020 7946 0000" and r.json()["email"] == "ada@example.org"
    change = (
        AuditEvent.objects.filter(action="update", object_id=str(world.patient.pk))
        .order_by("seq")
        .last()
    )
    assert set(change.detail["changes"]) == {"phone", "address"}
    r = patch(desk, url, {"clinical_notes": "anxious about needles"})
    assert r.status_code == 403
    r = patch(desk, url, {"family_name": None})
    assert r.status_code == 422 and r.json()["field"] == "family_name"
    r = patch(desk, url, {"email": "broken"})
    assert r.status_code == 422 and r.json()["field"] == "email"
    r = patch(desk, url, {"favourite_colour": "blue"})
    assert r.status_code == 422 and r.json()["field"] == "favourite_colour"
    injector = api_client(world, "injector")
    r = patch(injector, url, {"clinical_notes": "Prefers the left side first."})
    assert r.status_code == 200 and r.json()["clinical_notes"] == "Prefers the left side first."
    assert patch(api_client(world, "auditor"), url, {"phone": "0"}).status_code == 403
    assert patch(api_client(world, "outsider"), url, {"phone": "0"}).status_code == 404
    world.patient.refresh_from_db()
    assert world.patient.phone == "020 7946 0000"


def test_history_read_and_add(world):
    url = f"/api/v1/patients/{world.patient.pk}/history"
    injector = api_client(world, "injector")
    assert injector.get(url).json() == []
    r = post(injector, url, {"kind": "condition", "code": "myasthenia-gravis"})
    assert r.status_code == 201, r.content
    assert r.json()["label"] == "Myasthenia gravis" and r.json()["active"] is True
    treated = (date.today() - timedelta(days=20)).isoformat()
    r = post(
        injector,
        url,
        {
            "kind": "outside_treatment",
            "code": "toxin",
            "treated_on": treated,
            "product_id": "botox",
            "units": 150,
            "area": "forehead",
            "indication": "forehead-lines",
        },
    )
    assert r.status_code == 201, r.content
    assert r.json()["units"] == "150.00" and r.json()["treated_on"] == treated
    items = injector.get(url).json()
    assert [i["kind"] for i in items] == ["outside_treatment", "condition"]
    assert injector.get(f"/api/v1/patients/{world.patient.pk}").json()["flags"] == [
        "neuromuscular-disorder"
    ]
    assert AuditEvent.objects.filter(
        action="view", object_id=str(world.patient.pk), detail__part="api history"
    ).exists()


def test_history_refusals(world):
    url = f"/api/v1/patients/{world.patient.pk}/history"
    injector = api_client(world, "injector")
    cases = [
        ({"kind": "condition", "code": "nonsense"}, "code"),
        ({"kind": "wish", "code": "x"}, "kind"),
        ({"kind": "condition", "code": "other"}, "detail"),
        (
            {
                "kind": "outside_treatment",
                "code": "toxin",
                "treated_on": "2999-01-01",
                "product_id": "botox",
                "units": 10,
                "area": "forehead",
            },
            "treated_on",
        ),
        (
            {
                "kind": "outside_treatment",
                "code": "toxin",
                "treated_on": "2020-01-01",
                "product_id": "botox",
                "units": "20",
                "area": "forehead",
            },
            "units",
        ),
        (
            {
                "kind": "outside_treatment",
                "code": "toxin",
                "treated_on": "2020-01-01",
                "product_id": "botox",
                "units": 5000,
                "area": "forehead",
            },
            "units",
        ),
    ]
    for body, field in cases:
        r = post(injector, url, body)
        assert r.status_code == 422, (body, r.content)
        assert field in {p["field"] for p in r.json()["errors"]}, (body, r.json())
    assert not HistoryItem.objects.exists()
    desk = api_client(world, "front_desk")
    assert post(desk, url, {"kind": "condition", "code": "myasthenia-gravis"}).status_code == 403
    assert desk.get(url).status_code == 403
    outsider = api_client(world, "outsider")
    assert outsider.get(url).status_code == 404
    assert post(outsider, url, {"kind": "condition", "code": "als"}).status_code == 404
    assert not HistoryItem.objects.exists()
