"""Export jobs: run, fail, cancel, a dead process's job reaped, old files purged."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from glabella.interop.export import full, jobs
from glabella.interop.models import ExportJob, ExportKind, JobState


def _job(world, kind=ExportKind.FHIR_BULK) -> ExportJob:
    return jobs.create(world.actor("owner"), kind, start=False)


def test_a_job_runs_once_and_records_its_output(world):
    job = _job(world)
    done = jobs.run(job.pk)
    assert done.state == JobState.DONE and done.started_at and done.finished_at
    patient = next(o for o in done.output if o["type"] == "Patient")
    assert patient["count"] == 1 and len(patient["sha256"]) == 64
    assert (jobs.job_dir(done) / patient["file"]).stat().st_size == patient["bytes"]
    assert jobs.run(job.pk) is None  # already run: nobody runs it twice


def test_only_an_owner_may_create_a_job(world):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        jobs.create(world.actor("prescriber"), ExportKind.FULL, start=False)


def test_a_failure_is_recorded_and_leaves_no_files(world, settings):
    job = _job(world, ExportKind.FULL)
    # A real failure half-way: the photo storage is misconfigured, found after the FHIR,
    # CSV and table files were written.
    settings.GLABELLA_PHOTO_STORAGE = "glabella.no_such_module.Storage"
    failed = jobs.run(job.pk)
    assert failed.state == JobState.FAILED
    assert "ImproperlyConfigured" in failed.error and "no_such_module" in failed.error
    assert not jobs.job_dir(job).exists() and not jobs.heartbeat_file(job).exists()


def test_a_failure_to_write_at_all_is_recorded(world, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.GLABELLA_EXPORT_ROOT = blocker
    failed = jobs.run(_job(world).pk)
    assert failed.state == JobState.FAILED and "Error" in failed.error


def test_deleting_a_running_job_stops_it_at_its_next_update(world):
    job = _job(world, ExportKind.FULL)
    ExportJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING)
    update = jobs._progress_updater(job)
    update(1, 10)
    assert ExportJob.objects.get(pk=job.pk).done_items == 1
    jobs.delete(world.actor("owner"), job)  # someone deletes it while it runs
    with pytest.raises(full.Cancelled):
        update(10, 10)
    assert ExportJob.objects.get(pk=job.pk).state == JobState.DELETED


def test_a_job_left_running_by_a_dead_process_is_marked_failed(world, settings):
    settings.GLABELLA_EXPORT_STALE_MINUTES = 10
    job = _job(world)
    ExportJob.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING,
        created_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(hours=1),
    )
    jobs._touch(job)  # its heartbeat is fresh: still alive
    assert jobs.reap(world.org) == 0
    old = time.time() - 11 * 60
    os.utime(jobs.heartbeat_file(job), (old, old))  # no sign of life for 11 minutes
    assert jobs.reap(world.org) == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "stopped without finishing" in job.error
    assert not jobs.heartbeat_file(job).exists()

    queued = _job(world)  # queued by a process that died before starting it
    ExportJob.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(hours=1))
    out = io.StringIO()
    call_command("export", "--purge", stdout=out)
    assert "marked 1 unfinished export(s) as failed" in out.getvalue()
    queued.refresh_from_db()
    assert queued.state == JobState.FAILED


def test_finished_files_are_removed_after_the_keep_time(world, settings):
    settings.GLABELLA_EXPORT_KEEP_HOURS = 24
    recent, old = jobs.run(_job(world).pk), jobs.run(_job(world).pk)
    ExportJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(hours=25))
    assert jobs.purge_expired() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.state == JobState.DELETED and not jobs.job_dir(old).exists()
    assert recent.state == JobState.DONE and any(jobs.job_dir(recent).iterdir())
    assert jobs.expires_at(recent) == recent.finished_at + timedelta(hours=24)
