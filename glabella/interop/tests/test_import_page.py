"""The owner's upload page: dry-run report, "Import N rows", progress, result; double submit
imports once; only the owner; another organization's run is a 404. And in Chromium."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.interop.imports import jobs
from glabella.interop.models import ImportRun, JobState
from glabella.patients.models import Patient
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

GOOD = (
    b"Patient ID,First Name,Surname,DOB,Mobile\n"
    b"W1,Mary,Seacole,1985-11-23,07700 900111\nW2,Florence,Nightingale,1980-05-12,\n"
)
BAD = b"First Name,Surname,DOB\nMary,Seacole,23/11/1985\n,Nightingale,1980-05-12\n"


def upload(client, data, name="clients.csv", **extra):
    return client.post(
        reverse("interop:import"),
        {"kind": "patients", "file": SimpleUploadedFile(name, data, "text/csv"), **extra},
    )


def test_only_the_owner_may_import(world):
    for role in ("prescriber", "injector", "front_desk", "auditor"):
        assert world.client(role).get(reverse("interop:import")).status_code == 403
    page = world.client("owner").get(reverse("interop:import"))
    assert page.status_code == 200
    assert b"Check the file" in page.content and b"given_name" in page.content


def test_dry_run_report_lists_problems_by_row_and_column_and_writes_nothing(world):
    client = world.client("owner")
    audits, patients = AuditEvent.objects.count(), Patient.objects.count()
    response = upload(client, BAD)
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "interop:import_run", args=[run.pk]
    )
    assert run.dry_run and run.state == JobState.FAILED
    page = client.get(response["Location"]).content.decode()
    assert "2 problems" in page and "nothing can be imported yet" in page
    assert re.search(r"<td>2</td><td>DOB</td><td>[^<]*could be read two ways", page)
    assert re.search(r"<td>3</td><td>First Name</td><td>Empty", page)
    assert "Import 2 rows" not in page
    assert (AuditEvent.objects.count(), Patient.objects.count()) == (audits, patients)
    # the report is a report: confirming it is refused
    client.post(reverse("interop:import_confirm", args=[run.pk]))
    assert ImportRun.objects.count() == 1


def test_day_first_option_and_mapping_box(world):
    client = world.client("owner")
    data = "Nom;Prénom;DOB\nSeacole;Mary;23/11/1985\n".encode()
    upload(client, data, day_first="on", mapping="Nom = family_name\nPrénom=given_name")
    run = ImportRun.objects.get()
    assert run.state == JobState.DONE, run.problems
    assert run.mapping["columns"]["clients.csv"]["family_name"] == "Nom"


def test_confirm_imports_once_and_shows_the_result(world, django_capture_on_commit_callbacks):
    client = world.client("owner")
    upload(client, GOOD)
    dry = ImportRun.objects.get()
    page = client.get(reverse("interop:import_run", args=[dry.pk])).content.decode()
    assert "Import 2 rows" in page and "The file can be imported" in page
    assert Patient.objects.filter(import_ref__in=["W1", "W2"]).count() == 0
    kept = jobs.upload_path(world.org.pk, dry.sha256)
    assert kept.is_file() and kept.read_bytes() == GOOD
    with django_capture_on_commit_callbacks() as callbacks:
        first = client.post(reverse("interop:import_confirm", args=[dry.pk]))
        second = client.post(reverse("interop:import_confirm", args=[dry.pk]))
    assert first["Location"] == second["Location"]
    real = ImportRun.objects.get(dry_run=False)
    if jobs.background():  # PostgreSQL: one background run started, whatever the clicks
        assert len(callbacks) == 1
        assert real.state == JobState.QUEUED and real.sha256 == dry.sha256
        queued = client.get(first["Location"]).content.decode()
        assert 'http-equiv="refresh"' in queued and "Waiting to start" in queued
        # run it here (a thread cannot see this test's uncommitted data)
        report = jobs.run(real.pk)
        assert report is not None and report.written
    else:  # SQLite: it ran in the first request, once
        assert not callbacks
    assert jobs.run(real.pk) is None  # a second runner finds nothing to do
    real.refresh_from_db()
    assert real.state == JobState.DONE and real.done_rows == 2
    assert Patient.objects.filter(import_ref__in=["W1", "W2"]).count() == 2
    done = client.get(first["Location"]).content.decode()
    assert "Imported" in done and 'http-equiv="refresh"' not in done
    assert not kept.exists()  # the upload is not kept once imported
    # the dry run now points at the import
    page = client.get(reverse("interop:import_run", args=[dry.pk])).content.decode()
    assert "See the import" in page and "Import 2 rows" not in page


def test_progress_is_shown_while_running(world):
    client = world.client("owner")
    upload(client, GOOD)
    dry = ImportRun.objects.get()
    real = jobs.confirm(world.actor("owner"), dry)
    ImportRun.objects.filter(pk=real.pk).update(state=JobState.RUNNING)
    with jobs._lock:
        jobs._progress[real.pk] = (1, 4)
    try:
        page = client.get(reverse("interop:import_run", args=[real.pk])).content.decode()
    finally:
        jobs._progress.pop(real.pk, None)
    assert "1 of 4 records written (25%)" in page and 'content="2"' in page


def test_a_changed_kept_file_is_not_imported(world):
    client = world.client("owner")
    upload(client, GOOD)
    dry = ImportRun.objects.get()
    real = jobs.confirm(world.actor("owner"), dry)
    jobs.upload_path(world.org.pk, dry.sha256).write_bytes(GOOD + b"W3,Eve,Evil,1990-01-01,\n")
    assert jobs.run(real.pk) is None
    real.refresh_from_db()
    assert (
        real.state == JobState.FAILED
        and "not the one that was checked" in real.problems[0]["message"]
    )
    assert not Patient.objects.filter(import_ref__startswith="W").exists()


def test_another_organizations_run_is_a_404(world):
    upload(world.client("owner"), GOOD)
    run = ImportRun.objects.get()
    outsider = world.client("outsider")
    assert outsider.get(reverse("interop:import_run", args=[run.pk])).status_code == 404
    assert outsider.post(reverse("interop:import_confirm", args=[run.pk])).status_code == 404


def test_too_big_a_file_is_refused(world, settings):
    settings.GLABELLA_IMPORT_MAX_BYTES = 50
    response = upload(world.client("owner"), GOOD)
    assert response.status_code == 400 and b"the limit is" in response.content
    assert not ImportRun.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_upload_check_import_in_chromium(live_server, live_world, page):
    login(page, live_server.url, "owner@alpha.test", "correct-horse-battery-42")
    page.goto(f"{live_server.url}/interop/import/")
    page.get_by_label("Patients").check()
    page.get_by_label("CSV file").set_input_files(
        {"name": "clients.csv", "mimeType": "text/csv", "buffer": GOOD}
    )
    page.get_by_role("button", name="Check the file").click()
    page.get_by_role("heading", name="The file can be imported").wait_for()
    assert_fits_and_touchable(page)
    shot(page, "import-dry-run")
    page.get_by_role("button", name="Import 2 rows").click()
    page.get_by_role("heading", name="Imported").wait_for(timeout=20_000)
    shot(page, "import-done")
    assert (
        Patient.objects.filter(organization=live_world.org, import_ref__in=["W1", "W2"]).count()
        == 2
    )
    assert page.locator("#counts").inner_text().count("2") >= 1
