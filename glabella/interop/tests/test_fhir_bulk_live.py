"""FHIR bulk export end to end over real HTTP: kick-off, the background job polled to the end,
every file downloaded with the token, every line validated with fhir.resources (R4B)."""

from __future__ import annotations

import time

import requests
from fhir.resources.R4B import get_fhir_model_class

from glabella.audit.models import AuditEvent
from glabella.interop.export import jobs
from glabella.interop.fhir import resources
from glabella.interop.models import ExportJob, JobState
from glabella.interop.tests.test_export_world import rich_org


def _wait(url: str, headers: dict[str, str], timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    seen_progress = []
    while True:
        response = requests.get(url, headers=headers, timeout=10)
        if response.status_code != 202:
            response.progress = seen_progress
            return response
        seen_progress.append(response.headers["X-Progress"])
        assert int(response.headers["Retry-After"]) >= 1
        assert time.monotonic() < deadline, f"export still running: {seen_progress[-1]}"
        time.sleep(0.2)


def test_bulk_export_over_http_with_the_background_job(live_server, live_world):
    rich = rich_org()
    auth = {"Authorization": f"Bearer {rich.token_secret}"}
    kick = requests.get(
        f"{live_server.url}/fhir/r4/$export",
        headers={**auth, "Prefer": "respond-async", "Accept": "application/fhir+json"},
        timeout=10,
    )
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["Content-Location"]
    assert status_url.startswith(f"{live_server.url}/fhir/r4/bulk-status/")

    done = _wait(status_url, auth)
    assert done.status_code == 200, done.text
    assert done.headers["Content-Type"] == "application/json"
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    served = [t for t in resources.RESOURCE_TYPES if resources.count_resources(rich.org, t)]
    assert [o["type"] for o in manifest["output"]] == served
    assert {"Patient", "Procedure", "MedicationAdministration"} <= set(served)

    for item in manifest["output"]:
        assert requests.get(item["url"], timeout=10).status_code == 401  # the token is required
        file = requests.get(item["url"], headers=auth, timeout=10)
        assert file.status_code == 200
        assert file.headers["Content-Type"] == "application/fhir+ndjson"
        lines = file.content.decode("utf-8").splitlines()
        assert len(lines) == item["count"] == resources.count_resources(rich.org, item["type"])
        model = get_fhir_model_class(item["type"])
        for line in lines:
            assert model.model_validate_json(line).get_resource_type() == item["type"]

    job = ExportJob.objects.get(pk=int(status_url.rsplit("/", 1)[1]))
    assert job.state == JobState.DONE and job.done_items == job.total_items > 0
    assert not jobs.heartbeat_file(job).exists()
    exports = AuditEvent.objects.filter(organization=rich.org, action="export")
    assert exports.filter(object_id=str(job.pk)).count() == 1 + len(manifest["output"])

    deleted = requests.delete(status_url, headers=auth, timeout=10)
    assert deleted.status_code == 202
    assert requests.get(status_url, headers=auth, timeout=10).status_code == 404
    assert requests.get(manifest["output"][0]["url"], headers=auth, timeout=10).status_code == 404
    assert not jobs.job_dir(job).exists()


def test_patient_export_with_types_over_http(live_server, live_world):
    rich = rich_org()
    auth = {"Authorization": f"Bearer {rich.token_secret}"}
    kick = requests.get(
        f"{live_server.url}/fhir/r4/Patient/$export",
        params={"_type": "Patient,Procedure", "_outputFormat": "application/fhir+ndjson"},
        headers={**auth, "Prefer": "respond-async"},
        timeout=10,
    )
    assert kick.status_code == 202, kick.text
    manifest = _wait(kick.headers["Content-Location"], auth).json()
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Procedure"]
    assert manifest["request"].endswith(
        "/fhir/r4/Patient/$export?_type=Patient%2CProcedure"
        "&_outputFormat=application%2Ffhir%2Bndjson"
    )
