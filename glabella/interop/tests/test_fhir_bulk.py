"""FHIR bulk export ($export): kick-off rules, status, files, roles and organizations (Django
test client; the job is run in the test's own thread; test_fhir_bulk_live.py runs it all over
real HTTP with the background thread)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.services import add_member
from glabella.accounts.tokens import create_token
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD
from glabella.interop.export import jobs
from glabella.interop.fhir import resources
from glabella.interop.models import ExportJob, JobState
from glabella.interop.tests.helpers import api_client

ASYNC = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "application/fhir+json"}


def kick_off(client, url="/fhir/r4/$export", **params):
    return client.get(url, params, **ASYNC)


def job_of(response) -> ExportJob:
    assert response.status_code == 202, response.content
    return ExportJob.objects.get(pk=int(response["Content-Location"].rstrip("/").split("/")[-1]))


def issue(response) -> str:
    assert response["Content-Type"] == "application/fhir+json"
    body = json.loads(response.content)
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


def test_kick_off_status_and_files(world):
    owner = api_client(world, "owner")
    response = kick_off(owner)
    job = job_of(response)
    assert response["Content-Location"] == f"http://testserver/fhir/r4/bulk-status/{job.pk}"
    assert job.state == JobState.QUEUED and job.requested_by == world.users["owner"]
    assert AuditEvent.objects.filter(action="export", object_id=str(job.pk)).exists()

    status = owner.get(f"/fhir/r4/bulk-status/{job.pk}")
    assert status.status_code == 202
    assert status["X-Progress"] == "queued" and status["Retry-After"] == "2"

    jobs.run(job.pk)
    done = owner.get(f"/fhir/r4/bulk-status/{job.pk}")
    assert done.status_code == 200 and done["Expires"]
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"] == "http://testserver/fhir/r4/$export"
    assert manifest["transactionTime"].endswith("Z")
    types = [o["type"] for o in manifest["output"]]
    expected = [t for t in resources.RESOURCE_TYPES if resources.count_resources(world.org, t)]
    assert types == expected and "Patient" in types
    for item in manifest["output"]:
        file = owner.get(item["url"].removeprefix("http://testserver"))
        assert file.status_code == 200 and file["Content-Type"] == "application/fhir+ndjson"
        lines = b"".join(file.streaming_content).decode().splitlines()
        assert len(lines) == item["count"] == resources.count_resources(world.org, item["type"])
        assert {json.loads(line)["resourceType"] for line in lines} == {item["type"]}
    downloads = AuditEvent.objects.filter(action="export", object_id=str(job.pk))
    assert downloads.count() == 1 + len(manifest["output"])


def test_type_and_since_narrow_the_export(world):
    owner = api_client(world, "owner")
    job = job_of(kick_off(owner, _type="Patient,Practitioner", _outputFormat="ndjson"))
    assert job.types == ["Practitioner", "Patient"]  # in bulk order
    jobs.run(job.pk)
    assert [o["type"] for o in job_of_done(owner, job)["output"]] == ["Practitioner", "Patient"]

    future = (timezone.now() + timedelta(days=1)).isoformat()
    job = job_of(kick_off(owner, _since=future, _type="Patient"))
    assert job.since is not None
    jobs.run(job.pk)
    assert job_of_done(owner, job)["output"] == []  # nothing changed since: an empty output


def job_of_done(client, job):
    response = client.get(f"/fhir/r4/bulk-status/{job.pk}")
    assert response.status_code == 200
    return response.json()


def test_patient_level_export_is_the_patient_compartment(world):
    owner = api_client(world, "owner")
    job = job_of(kick_off(owner, "/fhir/r4/Patient/$export"))
    assert "Practitioner" not in job.types and "Organization" not in job.types
    assert "Patient" in job.types
    bad = kick_off(owner, "/fhir/r4/Patient/$export", _type="Practitioner")
    assert bad.status_code == 400 and "'Practitioner' is not a resource type" in issue(bad)


@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({}, {"HTTP_ACCEPT": "application/fhir+json"}, "Prefer: respond-async"),
        ({}, {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "text/html"}, "Accept must be"),
        ({"_typeFilter": "Patient?active=true"}, ASYNC, "does not support _typeFilter"),
        ({"patient": "Patient/1"}, ASYNC, "does not support patient"),
        ({"_type": "Banana"}, ASYNC, "'Banana' is not a resource type"),
        ({"_type": "Patient,"}, ASYNC, "empty entry"),
        ({"_since": "yesterday"}, ASYNC, "_since must be a FHIR instant"),
        ({"_since": "2025-01-01"}, ASYNC, "_since must be a FHIR instant"),
        ({"_since": "2025-01-01T10:00:00"}, ASYNC, "with a time zone"),
        ({"_outputFormat": "text/csv"}, ASYNC, "_outputFormat 'text/csv' is not supported"),
    ],
)
def test_bad_kick_offs_are_400_with_an_operation_outcome(world, params, headers, message):
    response = api_client(world, "owner").get("/fhir/r4/$export", params, **headers)
    assert response.status_code == 400
    assert message in issue(response)
    assert not ExportJob.objects.exists()


def test_kick_off_needs_get(world):
    response = api_client(world, "owner").post("/fhir/r4/$export", **ASYNC)
    assert response.status_code == 405 and response["Allow"] == "GET"


def test_a_token_is_required_and_only_owners_may_export(world, client):
    anonymous = client.get("/fhir/r4/$export", **ASYNC)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in issue(anonymous)
    world.client("owner")  # a session cookie is not enough: the bulk API wants a token
    logged_in = world.client("owner").get("/fhir/r4/$export", **ASYNC)
    assert logged_in.status_code == 401
    for role in ("prescriber", "injector", "front_desk", "auditor"):
        response = api_client(world, role).get("/fhir/r4/$export", **ASYNC)
        assert response.status_code == 403, role
        assert "only an owner" in issue(response)
    assert not ExportJob.objects.exists()


def test_another_organization_or_user_sees_a_404(world):
    owner = api_client(world, "owner")
    job = jobs.run(job_of(kick_off(owner)).pk)
    name = job.output[0]["file"]
    assert owner.get(f"/fhir/r4/bulk-files/{job.pk}/{name}").status_code == 200
    outsider = api_client(world, "outsider")
    second = add_member(
        world.actor("owner"),
        email="owner2@alpha.test",
        clinic=world.clinic,
        role="owner",
        password=PASSWORD,
    )
    me = Actor(world.org, second.user, world.clinic, "owner")
    other_owner = Client(
        HTTP_AUTHORIZATION=f"Bearer {create_token(me, name='t', membership=second).secret}"
    )
    for someone in (outsider, other_owner):
        for url in (f"/fhir/r4/bulk-status/{job.pk}", f"/fhir/r4/bulk-files/{job.pk}/{name}"):
            response = someone.get(url)
            assert response.status_code == 404 and "No such export" in issue(response)
        assert someone.delete(f"/fhir/r4/bulk-status/{job.pk}").status_code == 404
    # the outsider's own export sees nothing of Alpha's
    theirs = jobs.run(job_of(kick_off(outsider)).pk)
    patients = next(o for o in theirs.output if o["type"] == "Patient")
    text = (jobs.job_dir(theirs) / patients["file"]).read_text()
    assert world.patient.family_name not in text and world.outsider_patient.family_name in text
    assert owner.get(f"/fhir/r4/bulk-files/{job.pk}/../{name}").status_code == 404
    assert owner.get(f"/fhir/r4/bulk-files/{job.pk}/Banana.ndjson").status_code == 404


def test_delete_cancels_and_removes_the_files(world):
    owner = api_client(world, "owner")
    job = job_of(kick_off(owner))
    jobs.run(job.pk)
    assert any(jobs.job_dir(job).iterdir())
    response = owner.delete(f"/fhir/r4/bulk-status/{job.pk}")
    assert response.status_code == 202
    assert not jobs.job_dir(job).exists()
    assert owner.get(f"/fhir/r4/bulk-status/{job.pk}").status_code == 404
    job.refresh_from_db()
    assert job.state == JobState.DELETED

    queued = job_of(kick_off(owner))
    assert owner.delete(f"/fhir/r4/bulk-status/{queued.pk}").status_code == 202
    assert jobs.run(queued.pk) is None  # a deleted job never runs


def test_running_status_reports_progress_and_a_failure_is_a_500(world):
    owner = api_client(world, "owner")
    job = job_of(kick_off(owner))
    ExportJob.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING, started_at=timezone.now(), done_items=30, total_items=120
    )
    jobs._touch(job)
    running = owner.get(f"/fhir/r4/bulk-status/{job.pk}")
    assert running.status_code == 202
    assert running["X-Progress"] == "30 of 120 resources (25%)"
    ExportJob.objects.filter(pk=job.pk).update(state=JobState.FAILED, error="disk full")
    failed = owner.get(f"/fhir/r4/bulk-status/{job.pk}")
    assert failed.status_code == 500 and "disk full" in issue(failed)


def test_too_many_running_exports_are_throttled(world):
    owner = api_client(world, "owner")
    job_of(kick_off(owner))
    job_of(kick_off(owner))
    third = kick_off(owner)
    assert third.status_code == 429 and third["Retry-After"]
    assert "already running" in issue(third)
