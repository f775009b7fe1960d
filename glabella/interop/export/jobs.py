"""Export jobs: the background work behind ``$export`` and the owner's download page.

A job is an :class:`~glabella.interop.models.ExportJob` row and a directory,
``GLABELLA_EXPORT_ROOT/<organization id>/<job id>/``. This module is the jobs' only writer.

Life of a job:

- :func:`create` makes it *queued* (with the audit row) and, once that transaction commits,
  starts a daemon thread that runs it (:func:`run`), closing the thread's database connection
  at the end. Nothing else needs to run: no worker, no queue.
- :func:`run` claims it (*queued* → *running*, at most one runner), writes the files, updates
  ``done_items``/``total_items`` as it goes and touches a heartbeat file
  (``<job id>.alive`` beside the directory) on each update, then records the output and marks it
  *done* — or *failed* with the error.
- :func:`delete` marks it *deleted* and removes its files; a running job notices at its next
  progress update and stops.
- A job whose process died (a restart, a crash) would stay *running* for ever: :func:`reap`
  marks *failed* any job still queued or running whose heartbeat is older than
  ``GLABELLA_EXPORT_STALE_MINUTES`` (default 10) and that no thread of this process is running.
  It runs on each kick-off and status request, on the export page and with
  ``glabella export --purge``.
- Finished jobs' files are removed ``GLABELLA_EXPORT_KEEP_HOURS`` (default 24) after they
  finished, by :func:`purge_expired` on the next kick-off, on the export page, or with
  ``glabella export --purge`` (run it daily from cron to be sure); the row stays, as *deleted*.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.audit import services as audit
from glabella.db_router import reading_from_replica
from glabella.interop import threads
from glabella.interop.export import full, ndjson
from glabella.interop.export.files import private_dir
from glabella.interop.export.full import Cancelled
from glabella.interop.models import ExportJob, ExportKind, JobState

log = logging.getLogger(__name__)

ACTIVE = (JobState.QUEUED, JobState.RUNNING)
_running: set[int] = set()  # jobs a thread of this process is running now
_lock = threading.Lock()


def root() -> Path:
    return Path(settings.GLABELLA_EXPORT_ROOT)


def job_dir(job: ExportJob) -> Path:
    return root() / str(job.organization_id) / str(job.pk)


def heartbeat_file(job: ExportJob) -> Path:
    return root() / str(job.organization_id) / f"{job.pk}.alive"


def keep_hours() -> int:
    return int(getattr(settings, "GLABELLA_EXPORT_KEEP_HOURS", 24))


def stale_after() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "GLABELLA_EXPORT_STALE_MINUTES", 10)))


def expires_at(job: ExportJob) -> datetime | None:
    """When a finished job's files will be removed."""
    if job.state != JobState.DONE or job.finished_at is None:
        return None
    return job.finished_at + timedelta(hours=keep_hours())


# --- creating, starting ----------------------------------------------------------------------


def create(
    actor: Actor,
    kind: str,
    *,
    types: list[str] | None = None,
    since: datetime | None = None,
    request_url: str = "",
    start: bool = True,
) -> ExportJob:
    """A new queued job for ACTOR's organization (audited as an export), started in the
    background once the transaction commits (unless START is false: the caller runs it)."""
    actor.require("data.export")
    now = timezone.now()
    with transaction.atomic():
        job = ExportJob.objects.create(
            organization=actor.organization,
            kind=kind,
            requested_by=actor.user,
            request_url=request_url[:500],
            types=list(types or []),
            since=since,
            state=JobState.QUEUED,
            created_at=now,
            transaction_time=now,
        )
        audit.record(
            actor,
            "export",
            job,
            label=f"{ExportKind(kind).label} requested",
            detail={
                "kind": kind,
                "types": job.types,
                "since": since.isoformat() if since else None,
                "via": actor.via,
            },
        )
        if start:
            transaction.on_commit(lambda: start_thread(job.pk))
    return job


def start_thread(job_id: int) -> threading.Thread:
    with _lock:
        _running.add(job_id)

    def finished() -> None:
        with _lock:
            _running.discard(job_id)

    return threads.start(f"glabella-export-{job_id}", lambda: run(job_id), done=finished)


# --- running ---------------------------------------------------------------------------------


def run(job_id: int) -> ExportJob | None:
    """Run queued job JOB_ID here and now; None if it was not queued (another runner has it,
    or it was deleted)."""
    now = timezone.now()
    # scoped: the job's own id, queued by a scoped request (worker thread)
    claimed = ExportJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(
        state=JobState.RUNNING, started_at=now
    )
    if not claimed:
        return None
    # scoped: the job's own id, queued by a scoped request (worker thread)
    job = ExportJob.objects.select_related("organization", "requested_by").get(pk=job_id)
    directory = job_dir(job)
    progress = _progress_updater(job)
    try:
        shutil.rmtree(directory, ignore_errors=True)
        _touch(job)
        if job.kind == ExportKind.FHIR_BULK:
            output = _run_bulk(job, directory, progress)
        else:
            output = _run_full(job, directory, progress)
    except Cancelled:
        _discard(job)
        return None
    except Exception as exc:
        log.exception("Export job %s failed", job_id)
        # scoped: the job's own id, queued by a scoped request (worker thread)
        ExportJob.objects.filter(pk=job_id, state=JobState.RUNNING).update(
            state=JobState.FAILED,
            finished_at=timezone.now(),
            error=f"{exc.__class__.__name__}: {exc}"[:2000],
        )
        _discard(job)
        job.refresh_from_db()
        return job
    # scoped: the job's own id, queued by a scoped request (worker thread)
    finished = ExportJob.objects.filter(pk=job_id, state=JobState.RUNNING).update(
        state=JobState.DONE,
        finished_at=timezone.now(),
        output=output,
        done_items=job.total_items,
    )
    with contextlib.suppress(OSError):
        heartbeat_file(job).unlink(missing_ok=True)
    if not finished:  # deleted while finishing
        _discard(job)
        return None
    job.refresh_from_db()
    return job


def _progress_updater(job: ExportJob) -> Callable[[int, int], None]:
    last = {"at": 0.0, "done": -1}

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last["at"] < 0.5:
            return
        last["at"] = now
        job.done_items, job.total_items = done, total
        alive = ExportJob.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
            done_items=done, total_items=total
        )
        if not alive:
            raise Cancelled
        _touch(job)

    return update


def _run_bulk(
    job: ExportJob, directory: Path, progress: Callable[[int, int], None]
) -> list[dict[str, Any]]:
    types = job.types or list(ndjson.served_types())
    # The rows are read from the replica when there is one (glabella/db_router.py); the job's
    # own progress updates are writes, so they still go to the primary.
    with reading_from_replica():
        tracker = full.Tracker(
            total=ndjson.count(job.organization, types, job.since), callback=progress
        )
    ExportJob.objects.filter(pk=job.pk).update(total_items=tracker.total)
    job.total_items = tracker.total
    private_dir(directory)
    with reading_from_replica():
        written = ndjson.write_types(
            job.organization, directory, types, since=job.since, progress=tracker.add
        )
    return [
        {"type": t, "file": e.path, "count": e.records, "bytes": e.bytes, "sha256": e.sha256}
        for t, e in written
    ]


def _run_full(
    job: ExportJob, directory: Path, progress: Callable[[int, int], None]
) -> list[dict[str, Any]]:
    by = job.requested_by.email if job.requested_by else "system"
    with reading_from_replica():  # see _run_bulk
        result = full.write_export(job.organization, directory, by=by, progress=progress)
    job.total_items = max(job.total_items, job.done_items)
    parts = [
        {"part": part, "files": p["files"], "records": p["records"], "bytes": p["bytes"]}
        for part, p in result.manifest["parts"].items()
    ]
    return parts + [{"problem": p["message"], "path": p["path"]} for p in result.problems]


def _touch(job: ExportJob) -> None:
    path = heartbeat_file(job)
    private_dir(path.parent)
    path.touch(mode=0o600)


def _discard(job: ExportJob) -> None:
    shutil.rmtree(job_dir(job), ignore_errors=True)
    with contextlib.suppress(OSError):
        heartbeat_file(job).unlink(missing_ok=True)


# --- deleting, reaping, purging --------------------------------------------------------------


def delete(actor: Actor, job: ExportJob) -> None:
    """Delete JOB's files now (cancelling it if it is still running). Audited."""
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk).exclude(state=JobState.DELETED).update(
            state=JobState.DELETED, finished_at=job.finished_at or timezone.now()
        )
        audit.record(
            actor,
            "update",
            job,
            label=f"{ExportKind(job.kind).label} deleted",
            detail={"deleted": True, "was": job.state},
        )
    _discard(job)
    job.refresh_from_db()


def _last_sign_of_life(job: ExportJob) -> datetime:
    moments = [job.created_at, job.started_at]
    try:
        mtime = heartbeat_file(job).stat().st_mtime
        moments.append(datetime.fromtimestamp(mtime, tz=UTC))
    except OSError:
        pass
    return max(m for m in moments if m is not None)


def reap(organization: Any = None, now: datetime | None = None) -> int:
    """Mark failed the jobs left queued or running by a process that died; returns how many."""
    now = now or timezone.now()
    # scoped: system job: reaps the exports of every organization
    jobs = ExportJob.objects.filter(state__in=ACTIVE)
    if organization is not None:
        jobs = jobs.filter(organization=organization)
    reaped = 0
    for job in jobs:
        with _lock:
            if job.pk in _running:
                continue
        if now - _last_sign_of_life(job) < stale_after():
            continue
        reaped += ExportJob.objects.filter(pk=job.pk, state__in=ACTIVE).update(
            state=JobState.FAILED,
            finished_at=now,
            error="The export stopped without finishing (the server was restarted or the "
            f"process died): no sign of progress for over {stale_after()}. Start it again.",
        )
        _discard(job)
    return reaped


def purge_expired(organization: Any = None, now: datetime | None = None) -> int:
    """Remove the files of jobs finished more than GLABELLA_EXPORT_KEEP_HOURS ago."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=keep_hours())
    # scoped: system job: purges the old exports of every organization
    jobs = ExportJob.objects.filter(state=JobState.DONE, finished_at__lt=cutoff)
    if organization is not None:
        jobs = jobs.filter(organization=organization)
    purged = 0
    for job in jobs:
        _discard(job)
        purged += ExportJob.objects.filter(pk=job.pk, state=JobState.DONE).update(
            state=JobState.DELETED
        )
    return purged


def housekeeping(organization: Any = None) -> None:
    reap(organization)
    purge_expired(organization)
