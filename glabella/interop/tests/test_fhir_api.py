"""The FHIR endpoints: read, search (paging, date prefixes, strictness), errors as
OperationOutcomes, organization scoping, role permissions, audit, CapabilityStatement."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from glabella.audit.models import AuditEvent
from glabella.interop.fhir.resources import RESOURCE_TYPES
from glabella.interop.tests.helpers import api_client
from glabella.interop.tests.test_fhir_world import make_rich
from glabella.patients import services as patient_services

BASE = "/fhir/r4"


@pytest.fixture
def rich(world):
    world.rich = make_rich(world)
    return world


def get(client: Client, path: str, **extra):
    response = client.get(BASE + path, **extra)
    assert response["Content-Type"].startswith("application/fhir+json")
    return response, response.json()


def issue(body) -> dict:
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def ids(bundle) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


# --- read ------------------------------------------------------------------------------------


def test_read_every_type_the_server_produces(rich):
    client = api_client(rich, "prescriber")
    s = rich.rich.session
    wanted = {
        "Organization": rich.org.pk,
        "Location": rich.clinic.pk,
        "Practitioner": rich.users["injector"].pk,
        "Patient": rich.patient.pk,
        "Encounter": s.pk,
        "Procedure": s.pk,
        "MedicationAdministration": rich.rich.points[0].pk,
        "Observation": f"assessment-{rich.rich.hit6.pk}",
        "Consent": rich.rich.consent.pk,
        "Appointment": rich.rich.appointment.pk,
        "AdverseEvent": rich.rich.adverse.pk,
    }
    assert set(wanted) == set(RESOURCE_TYPES)
    for resource_type, pk in wanted.items():
        response, body = get(client, f"/{resource_type}/{pk}")
        assert response.status_code == 200, (resource_type, body)
        assert (body["resourceType"], body["id"]) == (resource_type, str(pk))
    month = rich.rich.diary_month
    response, body = get(client, f"/Observation/diary-{rich.patient.pk}-{month:%Y-%m}")
    assert response.status_code == 200 and body["code"]["coding"][0]["code"] == "headache-days"


def test_another_organizations_patient_is_a_404_not_a_403(rich):
    response, body = get(api_client(rich, "prescriber"), f"/Patient/{rich.outsider_patient.pk}")
    assert response.status_code == 404 and issue(body)["code"] == "not-found"
    response, body = get(api_client(rich, "outsider"), f"/Patient/{rich.patient.pk}")
    assert response.status_code == 404
    response, body = get(
        api_client(rich, "outsider"), f"/MedicationAdministration/{rich.rich.points[0].pk}"
    )
    assert response.status_code == 404
    response, body = get(api_client(rich, "outsider"), f"/Organization/{rich.org.pk}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path", ["/Patient/abc", "/Patient/0", "/Patient/99999999", "/Observation/12", "/Patient/-1"]
)
def test_malformed_or_unknown_ids_are_404(rich, path):
    response, body = get(api_client(rich, "owner"), path)
    assert response.status_code == 404 and issue(body)["code"] == "not-found"


def test_an_unknown_type_is_a_404_operation_outcome(rich):
    response, body = get(api_client(rich, "owner"), "/Medication/1")
    assert response.status_code == 404 and "MedicationAdministration" in issue(body)["diagnostics"]
    response, body = get(api_client(rich, "owner"), "/Banana")
    assert response.status_code == 404


def test_no_token_or_a_revoked_one_is_a_401(rich):
    response, body = get(Client(), f"/Patient/{rich.patient.pk}")
    assert response.status_code == 401 and issue(body)["code"] == "login"
    assert response["WWW-Authenticate"].startswith("Bearer")
    response, body = get(
        Client(HTTP_AUTHORIZATION="Bearer glb_not-a-real-token"), "/Patient?name=Ada"
    )
    assert response.status_code == 401


def test_roles_see_only_what_their_pages_show(rich):
    front_desk = api_client(rich, "front_desk")
    assert get(front_desk, f"/Patient/{rich.patient.pk}")[0].status_code == 200
    assert get(front_desk, f"/Appointment/{rich.rich.appointment.pk}")[0].status_code == 200
    for path in (
        f"/MedicationAdministration/{rich.rich.points[0].pk}",
        f"/Observation?patient={rich.patient.pk}",
        f"/Consent/{rich.rich.consent.pk}",
        f"/AdverseEvent/{rich.rich.adverse.pk}",
        "/Encounter",
    ):
        response, body = get(front_desk, path)
        assert response.status_code == 403 and issue(body)["code"] == "forbidden", path
    auditor = api_client(rich, "auditor")
    assert get(auditor, f"/MedicationAdministration/{rich.rich.points[0].pk}")[0].status_code == 200


def test_writes_are_refused(rich):
    client = api_client(rich, "owner")
    response = client.post(BASE + "/Patient", data="{}", content_type="application/fhir+json")
    assert response.status_code == 405 and response.json()["resourceType"] == "OperationOutcome"
    response = client.delete(BASE + f"/Patient/{rich.patient.pk}")
    assert response.status_code == 405


def test_only_json_is_served(rich):
    client = api_client(rich, "owner")
    response = client.get(BASE + f"/Patient/{rich.patient.pk}", HTTP_ACCEPT="application/fhir+xml")
    assert response.status_code == 406 and response.json()["resourceType"] == "OperationOutcome"
    response = client.get(BASE + f"/Patient/{rich.patient.pk}", HTTP_ACCEPT="*/*")
    assert response.status_code == 200


# --- search ----------------------------------------------------------------------------------


def test_search_is_a_searchset_bundle_with_total_and_links(rich):
    response, body = get(
        api_client(rich, "prescriber"),
        f"/MedicationAdministration?patient=Patient/{rich.patient.pk}",
    )
    assert response.status_code == 200
    Bundle.model_validate(body)
    assert body["type"] == "searchset" and body["total"] == 5
    assert ids(body) == [str(p.pk) for p in sorted(rich.rich.points, key=lambda p: p.pk)]
    assert {link["relation"] for link in body["link"]} == {"self"}
    assert all(
        e["fullUrl"].endswith(f"/MedicationAdministration/{e['resource']['id']}")
        for e in body["entry"]
    )


def test_paging_walks_every_result_once_in_a_stable_order(rich):
    client = api_client(rich, "prescriber")
    seen, url, pages = [], f"{BASE}/MedicationAdministration?patient={rich.patient.pk}&_count=2", 0
    previous = None
    while url:
        parts = urlsplit(url)
        response = client.get(parts.path, dict(parse_qsl(parts.query)))
        body = response.json()
        assert body["total"] == 5
        seen += ids(body)
        links = {link["relation"]: link["url"] for link in body["link"]}
        if pages:
            assert "previous" in links
        previous = links.get("previous")
        url = links.get("next")
        pages += 1
    assert pages == 3 and previous is not None
    assert seen == sorted(seen, key=int) and len(set(seen)) == 5


def test_count_has_a_maximum_and_zero_gives_only_the_total(rich):
    client = api_client(rich, "prescriber")
    response, body = get(client, "/MedicationAdministration?_count=201")
    assert response.status_code == 400 and issue(body)["expression"] == ["_count"]
    response, body = get(client, "/MedicationAdministration?_count=0")
    assert response.status_code == 200 and body["total"] == 5 and "entry" not in body
    response, body = get(client, "/MedicationAdministration?_count=two")
    assert response.status_code == 400


def test_date_prefixes(rich):
    client = api_client(rich, "prescriber")
    day = rich.rich.session.treated_on
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    cases = {
        f"eq{day}": 5,
        f"{day}": 5,
        f"ne{day}": 0,
        f"ge{day}": 5,
        f"le{day}": 5,
        f"gt{day}": 0,
        f"lt{day}": 0,
        f"gt{before}": 5,
        f"lt{after}": 5,
        f"ge{after}": 0,
        f"le{before}": 0,
        f"{day:%Y-%m}": 5,
        f"{day:%Y}": 5,
        f"eq{day.year - 1}": 0,
    }
    for value, expected in cases.items():
        response, body = get(client, f"/MedicationAdministration?date={value}")
        assert response.status_code == 200, (value, body)
        assert body["total"] == expected, value
    response, body = get(
        client, f"/Encounter?date=ge{before}&date=le{after}&patient={rich.patient.pk}"
    )
    assert body["total"] == 1
    response, body = get(client, f"/Encounter?date=ge{after}&date=le{after}")
    assert body["total"] == 0


def test_date_on_appointments_and_diary_months(rich):
    client = api_client(rich, "prescriber")
    starts = timezone.localtime(rich.rich.appointment.starts_at).date()
    assert get(client, f"/Appointment?date={starts}")[1]["total"] == 1
    assert get(client, f"/Appointment?date=lt{starts}")[1]["total"] == 0
    month = rich.rich.diary_month
    mid = month + timedelta(days=14)
    diary = f"/Observation?patient={rich.patient.pk}&date="
    assert "diary" in ",".join(ids(get(client, diary + f"{month:%Y-%m}")[1]))
    assert "diary" not in ",".join(ids(get(client, diary + f"eq{mid}")[1]))  # not contained
    assert "diary" in ",".join(ids(get(client, diary + f"ge{mid}")[1]))  # overlaps
    assert "diary" not in ",".join(ids(get(client, diary + f"lt{month}")[1]))


@pytest.mark.parametrize(
    "query, param",
    [
        ("code=123", "code"),
        ("date=2024-13-01", "date"),
        ("date=sa2024-01-01", "date"),
        ("date=yesterday", "date"),
        ("date=9999-12-31", "date"),  # the calendar's ends: a 400, not an overflow
        ("date=9999-12-31T23:59:59%2B00:00", "date"),
        ("date=0001-01-01T00:00:00%2B14:00", "date"),
        ("date=ge0001-01-01", "date"),
        ("patient=Group/1", "patient"),
        ("patient=abc", "patient"),
        ("patient:missing=true", "patient:missing"),
        ("_sort=date", "_sort"),
        ("_format=xml", "_format"),
    ],
)
def test_unknown_or_malformed_parameters_are_a_400_operation_outcome(rich, query, param):
    response, body = get(api_client(rich, "prescriber"), f"/MedicationAdministration?{query}")
    assert response.status_code == 400
    problem = issue(body)
    assert problem["expression"] == [param] and problem["diagnostics"]


def test_lenient_handling_ignores_unknown_parameters_and_says_so(rich):
    response, body = get(
        api_client(rich, "prescriber"),
        f"/MedicationAdministration?patient={rich.patient.pk}&code=123",
        HTTP_PREFER="handling=lenient",
    )
    assert response.status_code == 200 and body["total"] == 5
    [note] = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert "code" in note["resource"]["issue"][0]["diagnostics"]


def test_patient_search_by_name_birthdate_and_id(rich):
    client = api_client(rich, "front_desk")
    patient_services.create_patient(
        rich.actor("front_desk"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": "1906-12-09"},
    )
    assert ids(get(client, "/Patient?name=love")[1]) == [str(rich.patient.pk)]
    assert get(client, "/Patient?name=ada lovelace")[1]["total"] == 1
    assert get(client, "/Patient?birthdate=lt1950")[1]["total"] == 1
    assert get(client, "/Patient?birthdate=1985-12-10")[1]["total"] == 1
    assert get(client, f"/Patient?_id={rich.patient.pk}")[1]["total"] == 1
    assert get(client, "/Patient")[1]["total"] == 2  # never the outsider's patient
    assert get(client, "/Patient?gender=robot")[0].status_code == 400


def test_the_outsider_searches_only_their_own(rich):
    client = api_client(rich, "outsider")
    body = get(client, "/Patient")[1]
    assert ids(body) == [str(rich.outsider_patient.pk)]
    body = get(client, f"/MedicationAdministration?patient={rich.patient.pk}")[1]
    assert body["total"] == 0


# --- audit and metadata ----------------------------------------------------------------------


def test_reads_and_searches_of_patient_data_are_audited(rich):
    client = api_client(rich, "prescriber")
    before = AuditEvent.objects.count()
    get(client, f"/Patient/{rich.patient.pk}")
    get(client, f"/MedicationAdministration?patient={rich.patient.pk}")
    get(client, f"/Location/{rich.clinic.pk}")  # not patient data: not audited
    events = list(AuditEvent.objects.order_by("seq")[before:])
    assert [(e.action, e.object_type) for e in events] == [
        ("view", "fhir.patient"),
        ("view", "fhir.medicationadministration"),
    ]
    assert events[0].object_id == str(rich.patient.pk)
    assert events[1].detail["patients"] == [str(rich.patient.pk)]
    assert events[1].detail["total"] == 5
    assert events[0].actor == rich.users["prescriber"]


def test_metadata_is_a_capability_statement_listing_every_type(client):
    response = client.get(BASE + "/metadata")
    assert response.status_code == 200
    body = response.json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"] == "4.0.1" and body["kind"] == "instance"
    rest = body["rest"][0]
    assert {r["type"] for r in rest["resource"]} == set(RESOURCE_TYPES)
    for resource in rest["resource"]:
        assert {i["code"] for i in resource["interaction"]} == {"read", "search-type"}
        names = {p["name"] for p in resource["searchParam"]}
        assert "_id" in names
        if resource["type"] not in ("Organization", "Location", "Practitioner"):
            assert {"patient"} <= names
    assert rest["operation"][0]["name"] == "export"
