"""Done-when: SMART's fhirclient, used as a client would, against a running server, reads a
patient and searches their MedicationAdministrations, getting what was charted."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from fhirclient import client as fhir
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.medicationadministration import MedicationAdministration
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from glabella.interop.fhir import codes
from glabella.interop.tests.helpers import token_for
from glabella.interop.tests.test_fhir_world import LOT, make_rich


def connect(live_server, token: str) -> fhir.FHIRClient:
    smart = fhir.FHIRClient(
        settings={"app_id": "glabella-test", "api_base": live_server.url + "/fhir/r4"}
    )
    # fhirclient sends every request through one requests.Session: the token goes there.
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    return smart


def test_fhirclient_reads_a_patient_and_their_medication_administrations(live_server, live_world):
    rich = make_rich(live_world)
    smart = connect(live_server, token_for(live_world, "prescriber"))

    capability = CapabilityStatement.read_from("metadata", smart.server)
    assert capability.fhirVersion == "4.0.1"

    patient = Patient.read(str(live_world.patient.pk), smart.server)
    assert patient.name[0].family == "Lovelace" and patient.name[0].given == ["Ada"]
    assert patient.birthDate.isostring == "1985-12-10"

    search = MedicationAdministration.where(
        struct={"patient": f"Patient/{patient.id}", "_count": "2"}
    )
    given = list(search.perform_resources_iter(smart.server))  # three pages of 2, 2, 1
    assert len(given) == len(rich.points) == 5
    charted = {str(p.pk): p for p in rich.points}
    for ma in given:
        point = charted[ma.id]
        assert ma.status == "completed"
        assert ma.subject.reference == f"Patient/{patient.id}"
        dose = ma.dosage.dose
        assert Decimal(str(dose.value)) == point.units and dose.unit == "U"
        assert dose.code == "botox_cosmetic"
        muscles = {c.code for c in ma.dosage.site.coding if c.system == codes.system("muscle")}
        assert muscles == {point.muscle}
        assert ma.dosage.route.coding[0].code == "78421000"
        [medication] = ma.contained
        assert ma.medicationReference.reference == "#" + medication.id
        assert medication.batch.lotNumber == LOT
        assert medication.batch.expirationDate.as_json() == rich.vial.lot.expiry.isoformat()
    assert sum(Decimal(str(ma.dosage.dose.value)) for ma in given) == rich.total

    scores = Observation.where(struct={"patient": patient.id, "code": "x"})
    with pytest.raises(requests.HTTPError, match="400"):
        list(scores.perform_resources_iter(smart.server))


def test_fhirclient_without_a_token_is_refused(live_server, live_world):
    smart = fhir.FHIRClient(
        settings={"app_id": "glabella-test", "api_base": live_server.url + "/fhir/r4"}
    )
    response = smart.server.session.get(
        f"{live_server.url}/fhir/r4/Patient/{live_world.patient.pk}"
    )
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
