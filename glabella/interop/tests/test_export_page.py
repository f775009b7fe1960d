"""The owner's full export page: start, progress, download a streamed ZIP; roles and
organizations."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from glabella.audit.models import AuditEvent
from glabella.interop.export import full, jobs
from glabella.interop.models import ExportJob, ExportKind, JobState


def _run_all():
    for job in ExportJob.objects.filter(state=JobState.QUEUED):
        jobs.run(job.pk)


def test_the_owner_starts_watches_and_downloads_an_export(world, tmp_path):
    owner = world.client("owner")
    page = owner.get("/interop/export/")
    assert page.status_code == 200 and b"Prepare an export" in page.content
    started = owner.post("/interop/export/")
    job = ExportJob.objects.get(kind=ExportKind.FULL)
    assert started.status_code == 302 and started["Location"] == f"/interop/export/{job.pk}/"
    assert AuditEvent.objects.filter(action="export", object_id=str(job.pk)).count() == 1
    again = owner.post("/interop/export/")  # a second click joins the running one
    assert again["Location"] == f"/interop/export/{job.pk}/"
    assert ExportJob.objects.count() == 1

    waiting = owner.get(f"/interop/export/{job.pk}/")
    assert b'<meta http-equiv="refresh" content="2">' in waiting.content
    assert b"Waiting to start" in waiting.content
    assert owner.get(f"/interop/export/{job.pk}/download").status_code == 404  # not ready

    _run_all()
    ready = owner.get(f"/interop/export/{job.pk}/")
    assert b"http-equiv" not in ready.content and b"Download the ZIP" in ready.content
    response = owner.get(f"/interop/export/{job.pk}/download")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="glabella-export-alpha-aesthetics-'
    )
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        (prefix,) = {n.split("/")[0] for n in z.namelist()}
        z.extractall(tmp_path)
    assert full.verify(tmp_path / prefix) == []
    manifest = json.loads((tmp_path / prefix / "manifest.json").read_text())
    assert manifest["organization"]["name"] == "Alpha Aesthetics"
    assert manifest["created_by"] == "owner@alpha.test"
    assert AuditEvent.objects.filter(action="export", object_id=str(job.pk)).count() == 2

    deleted = owner.post(f"/interop/export/{job.pk}/delete")
    assert deleted.status_code == 302
    assert not jobs.job_dir(job).exists()
    assert b"was deleted" in owner.get(f"/interop/export/{job.pk}/").content


@pytest.mark.parametrize("role", ["prescriber", "injector", "front_desk", "auditor"])
def test_only_the_owner_may_export(world, role):
    client = world.client(role)
    assert client.get("/interop/export/").status_code == 403
    assert client.post("/interop/export/").status_code == 403
    assert not ExportJob.objects.exists()


def test_another_organizations_export_is_a_404(world):
    world.client("owner").post("/interop/export/")
    _run_all()
    job = ExportJob.objects.get()
    outsider = world.client("outsider")
    for url in (f"/interop/export/{job.pk}/", f"/interop/export/{job.pk}/download"):
        assert outsider.get(url).status_code == 404
    assert outsider.post(f"/interop/export/{job.pk}/delete").status_code == 404
    assert b"No export yet" in outsider.get("/interop/export/").content
    job.refresh_from_db()
    assert job.state == JobState.DONE


def test_a_failed_export_says_why_and_offers_to_try_again(world, settings):
    world.client("owner").post("/interop/export/")
    settings.GLABELLA_PHOTO_STORAGE = "glabella.no_such_module.Storage"
    _run_all()
    job = ExportJob.objects.get()
    page = world.client("owner").get(f"/interop/export/{job.pk}/")
    assert b"The export failed" in page.content and b"no_such_module" in page.content
    assert b"Try again" in page.content
