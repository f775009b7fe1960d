"""FHIR resources from the database: every type validates (fhir.resources R4B) and parses
with SMART's fhirclient R4 models; organization scoping; the contract the bulk export uses."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fhirclient.models.fhirabstractbase import FHIRValidationError

from glabella.interop.fhir import codes
from glabella.interop.fhir.resources import RESOURCE_TYPES, count_resources, iter_resources
from glabella.interop.tests.test_fhir_world import LOT, make_rich
from glabella.patients import services as patient_services

SNOMED = "http://snomed.info/sct"


def fhirclient_class(resource_type: str):
    module = importlib.import_module(f"fhirclient.models.{resource_type.lower()}")
    return getattr(module, resource_type)


@pytest.fixture
def rich(world):
    world.rich = make_rich(world)
    return world


def everything(org) -> dict[str, list[dict]]:
    return {t: list(iter_resources(org, t)) for t in RESOURCE_TYPES}


def test_every_type_is_produced_validates_and_parses_with_fhirclient(rich):
    produced = everything(rich.org)
    for resource_type, resources in produced.items():
        assert resources, f"no {resource_type} produced"
        cls = fhirclient_class(resource_type)
        for resource in resources:
            assert resource["resourceType"] == resource_type
            json.dumps(resource)  # JSON-ready: no Decimal, date or datetime left
            try:
                parsed = cls(resource, strict=True)
            except FHIRValidationError as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"{resource_type}/{resource['id']}: {exc}")
            assert parsed.id == resource["id"]
    assert len(produced["MedicationAdministration"]) == 5
    assert len(produced["Encounter"]) == len(produced["Procedure"]) == 1
    ids = {o["id"] for o in produced["Observation"]}
    assert f"assessment-{rich.rich.grade.pk}" in ids and f"assessment-{rich.rich.hit6.pk}" in ids
    assert any(i.startswith(f"diary-{rich.patient.pk}-") for i in ids)


def test_count_matches_what_is_iterated(rich):
    for resource_type in RESOURCE_TYPES:
        assert count_resources(rich.org, resource_type) == len(
            list(iter_resources(rich.org, resource_type))
        ), resource_type


def test_nothing_of_another_organization_is_produced(rich):
    rich_ids = {t: {r["id"] for r in rs} for t, rs in everything(rich.org).items()}
    outsider = everything(rich.outsider_org)
    assert [r["id"] for r in outsider["Patient"]] == [str(rich.outsider_patient.pk)]
    assert outsider["Organization"][0]["name"] == "Beta Botox Bar"
    for resource_type in ("Encounter", "MedicationAdministration", "Observation", "Consent"):
        assert outsider[resource_type] == [], resource_type
    assert str(rich.outsider_patient.pk) not in rich_ids["Patient"]
    emails = {t["value"] for p in everything(rich.org)["Practitioner"] for t in p["telecom"]}
    assert "owner@beta.test" not in emails and "injector@alpha.test" in emails


def test_a_medication_administration_carries_dose_units_site_route_and_lot(rich):
    point = rich.rich.points[0]
    [ma] = [
        r for r in iter_resources(rich.org, "MedicationAdministration") if r["id"] == str(point.pk)
    ]
    assert ma["status"] == "completed"
    assert ma["subject"] == {"reference": f"Patient/{rich.patient.pk}"}
    assert ma["context"] == {"reference": f"Encounter/{rich.rich.session.pk}"}
    assert ma["partOf"] == [{"reference": f"Procedure/{rich.rich.session.pk}"}]
    dose = ma["dosage"]["dose"]
    assert Decimal(str(dose["value"])) == point.units
    assert dose["unit"] == "U" and dose["code"] == "botox_cosmetic"
    assert dose["system"] == codes.system("product-unit")
    [med] = ma["contained"]
    assert ma["medicationReference"]["reference"] == "#med" and med["id"] == "med"
    assert med["batch"] == {
        "lotNumber": LOT,
        "expirationDate": rich.rich.vial.lot.expiry.isoformat(),
    }
    assert "Botox Cosmetic" in med["code"]["text"]
    route = ma["dosage"]["route"]["coding"][0]
    assert (route["system"], route["code"]) == (SNOMED, "78421000")  # intramuscular
    site = ma["dosage"]["site"]
    site_codes = {(c["system"], c["code"]) for c in site["coding"]}
    assert (codes.system("muscle"), point.muscle) in site_codes
    assert (codes.system("area"), point.area) in site_codes
    laterality = site["extension"][0]["valueCodeableConcept"]["coding"][0]
    expected = {"L": "7771000", "R": "24028007", "mid": "399488007"}[point.side]
    assert laterality == {**laterality, "system": SNOMED, "code": expected}
    assert ma["performer"][0]["actor"]["reference"] == f"Practitioner/{rich.users['injector'].pk}"


def test_a_dose_is_never_a_float_that_changes_the_figure(rich):
    """2.5 U stays 2.5 in the JSON text (Decimal to JSON number, no binary rounding)."""
    from glabella.interop.fhir import build

    assert build.number(Decimal("2.50")) == Decimal("2.5")
    assert build.number(Decimal("4.00")) == 4
    assert json.loads('{"v": 2.5}')["v"] == 2.5


def test_every_snomed_code_sent_is_in_codes_json_with_a_source(rich):
    table = codes.data()
    listed = set()
    for group in ("route", "laterality", "muscle"):
        for entry in table[group].values():
            assert entry["source"] and all(
                s.strip() in table["sources"] for s in entry["source"].split(";")
            )
            listed.add(entry["code"])

    def walk(node):
        if isinstance(node, dict):
            if node.get("system") == SNOMED:
                yield node["code"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    sent = set(walk(everything(rich.org)))
    assert sent and sent <= listed


def test_session_status_maps_to_fhir_status(rich):
    from glabella.charting import services as charting

    session = rich.rich.session
    charting.void(rich.actor("prescriber"), session, "Charted on the wrong patient")
    [enc] = iter_resources(rich.org, "Encounter")
    [proc] = iter_resources(rich.org, "Procedure")
    assert enc["status"] == proc["status"] == "entered-in-error"
    assert {m["status"] for m in iter_resources(rich.org, "MedicationAdministration")} == {
        "entered-in-error"
    }


def test_since_and_patient_ids_narrow_what_is_produced(rich):
    later = timezone.now() + timedelta(hours=1)
    assert list(iter_resources(rich.org, "Patient", since=later)) == []
    assert count_resources(rich.org, "MedicationAdministration", since=later) == 0
    mark = timezone.now()
    other = patient_services.create_patient(
        rich.actor("front_desk"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": "1906-12-09"},
    )
    assert [p["id"] for p in iter_resources(rich.org, "Patient", since=mark)] == [str(other.pk)]
    mine = list(iter_resources(rich.org, "MedicationAdministration", patient_ids=[other.pk]))
    assert mine == []
    ada = list(iter_resources(rich.org, "Observation", patient_ids=[rich.patient.pk]))
    assert ada and all(o["subject"]["reference"] == f"Patient/{rich.patient.pk}" for o in ada)


def test_iterating_reads_in_chunks_with_a_bounded_number_of_queries(rich):
    with CaptureQueriesContext(connection) as small:
        list(iter_resources(rich.org, "MedicationAdministration", chunk_size=2))
    with CaptureQueriesContext(connection) as large:
        list(iter_resources(rich.org, "MedicationAdministration", chunk_size=500))
    # 5 points: one query per chunk at most (plus a cursor's bookkeeping), never one per row.
    assert len(large.captured_queries) <= 2
    assert len(small.captured_queries) <= 4


def test_diary_months_give_headache_days_per_28_days(rich):
    month = rich.rich.diary_month
    [obs] = [o for o in iter_resources(rich.org, "Observation") if o["id"].startswith("diary-")]
    assert obs["id"] == f"diary-{rich.patient.pk}-{month:%Y-%m}"
    assert obs["effectivePeriod"]["start"] == month.isoformat()
    parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
    assert parts["days-recorded"] == 14
    assert parts["headache-days"] == 5  # days 0, 3, 6, 9, 12
    assert Decimal(str(obs["valueQuantity"]["value"])) == Decimal("10.0")  # 5 * 28 / 14
