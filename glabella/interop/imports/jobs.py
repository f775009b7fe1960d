"""The upload page's imports: the kept upload, the dry-run report, the confirmed run.

1. The owner uploads a file: it is kept privately, named by its SHA-256, under
   ``<GLABELLA_EXPORT_ROOT>/../imports/<organization id>/`` (beside the exports, never under
   MEDIA), and checked (:func:`check_upload`): a dry run recorded as an ``ImportRun`` with
   ``dry_run`` set, which the report page shows.
2. "Import N rows" (:func:`confirm`) locks that dry run and, the first time only, creates the
   real run (*queued*) and remembers it on the dry run, so a double submit imports once. On
   PostgreSQL, once the transaction commits, a daemon thread runs it (:func:`run`) and the
   page shows its progress. On SQLite it runs in the request instead (:func:`background` is
   false): SQLite has one writer at a time, and an import is one transaction, so while it
   runs no other request could even save its session, let alone poll a progress page. The
   file is read back and must still have the same SHA-256.
3. :func:`run` checks everything again (the data may have changed since the dry run), writes
   all or nothing, and records the outcome on the run. While it runs, its progress is kept in
   this process (:func:`progress`), which the page polls by refreshing itself; with several
   app processes it is also put in the shared cache when that is Redis, so whichever process
   answers the page shows it (the database cache cannot: the import is one transaction, so
   its progress rows would only appear once it is over). The upload is
   deleted once imported; uploads left unconfirmed are deleted after
   ``GLABELLA_EXPORT_KEEP_HOURS`` (:func:`purge_uploads`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership
from glabella.interop import threads
from glabella.interop.imports.importer import Options, Report, run_import
from glabella.interop.models import ImportRun, JobState

log = logging.getLogger(__name__)

_lock = threading.Lock()
_progress: dict[int, tuple[int, int]] = {}


def root() -> Path:
    return Path(settings.GLABELLA_EXPORT_ROOT).parent / "imports"


def upload_path(organization_id: int, sha256: str) -> Path:
    return root() / str(organization_id) / f"{sha256}.csv"


def keep(organization_id: int, data: bytes) -> str:
    """Store the upload privately; return its SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    path = upload_path(organization_id, sha)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        tmp.replace(path)
    return sha


def purge_uploads(organization_id: int) -> None:
    folder = root() / str(organization_id)
    if not folder.is_dir():
        return
    cutoff = time.time() - 3600 * int(settings.GLABELLA_EXPORT_KEEP_HOURS)
    for path in folder.glob("*.csv"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def options_of(run: ImportRun) -> dict[str, Any]:
    return dict((run.mapping or {}).get("options") or {})


def check_upload(
    actor: Actor, kind: str, filename: str, data: bytes, options: Options
) -> ImportRun:
    """Keep the upload and dry-run it; the recorded dry run is the report."""
    actor.require("data.import")
    sha = keep(actor.organization.pk, data)
    options.dry_run = True
    report = run_import(actor, kind, {kind: (filename, data)}, options, record_dry_run=True)
    run = report.run
    assert run is not None
    run.mapping = {
        "columns": report.mapping,
        "options": {
            "day_first": options.day_first,
            "encoding": options.encoding or "",
            "mapping": options.mapping,
            "clinic": actor.clinic.pk if actor.clinic else None,
            "upload": sha,
        },
    }
    run.save(update_fields=["mapping"])
    return run


def confirm(actor: Actor, dry_run: ImportRun) -> ImportRun:
    """The real run for DRY_RUN: created (queued) the first time, the same one after."""
    actor.require("data.import")
    with transaction.atomic():
        locked = ImportRun.objects.select_for_update().get(
            pk=dry_run.pk, organization=actor.organization, dry_run=True
        )
        done = (locked.created or {}).get("confirmed_run")
        if done:
            # scoped: the run's own id, queued by a scoped request (worker thread)
            return ImportRun.objects.get(pk=done)
        if locked.problems:
            raise ValueError("This file has problems: correct it and upload it again.")
        opts = options_of(locked)
        if not upload_path(actor.organization.pk, opts.get("upload", "")).is_file():
            raise ValueError("The uploaded file is no longer kept: upload it again.")
        real = ImportRun.objects.create(
            organization=actor.organization,
            kind=locked.kind,
            filename=locked.filename,
            sha256=locked.sha256,
            mapping=locked.mapping,
            dry_run=False,
            state=JobState.QUEUED,
            rows=locked.rows,
            run_by=actor.user,
            created_at=timezone.now(),
        )
        locked.created = {**(locked.created or {}), "confirmed_run": real.pk}
        locked.save(update_fields=["created"])
        if background():
            transaction.on_commit(lambda: start_thread(real.pk))
    return real


def background() -> bool:
    """Whether confirmed imports run in a background thread (not on SQLite: see above)."""
    return connection.vendor != "sqlite"


def start_thread(run_id: int) -> threading.Thread:
    return threads.start(f"glabella-import-{run_id}", lambda: run(run_id))


def _progress_key(run_id: int) -> str:
    return f"import-progress:{run_id}"


def _shared_cache() -> Any:
    """The cache other app processes see, if progress can be shared through it (see above)."""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    cache = caches["default"]
    return None if isinstance(cache, DatabaseCache) else cache


def _share(run_id: int, value: tuple[int, int] | None) -> None:
    shared = _shared_cache()
    if shared is None:
        return
    try:
        if value is None:
            shared.delete(_progress_key(run_id))
        else:
            shared.set(_progress_key(run_id), list(value), timeout=3600)
    except Exception:  # the progress bar must never stop an import
        log.warning("Import run %s: could not share its progress", run_id)


def progress(run: ImportRun) -> tuple[int, int]:
    """(done, total) writes of a running import (this process's, else the shared cache's),
    else (0, 0)."""
    with _lock:
        here = _progress.get(run.pk)
    if here is not None:
        return here
    shared = _shared_cache()
    try:
        value = shared.get(_progress_key(run.pk)) if shared is not None else None
    except Exception:
        value = None
    return (int(value[0]), int(value[1])) if value else (0, 0)


def run(run_id: int) -> Report | None:
    """Run queued import RUN_ID here and now; None if another runner has it."""
    if not connection.in_atomic_block:  # a fresh thread (never inside a transaction)
        close_old_connections()
    # scoped: the run's own id, queued by a scoped request (worker thread)
    claimed = ImportRun.objects.filter(pk=run_id, state=JobState.QUEUED, dry_run=False).update(
        state=JobState.RUNNING
    )
    if not claimed:
        return None
    # scoped: the run's own id, queued by a scoped request (worker thread)
    job = ImportRun.objects.select_related("organization", "run_by").get(pk=run_id)
    opts = options_of(job)
    path = upload_path(job.organization_id, opts.get("upload", ""))

    def fail(message: str) -> None:
        job.state = JobState.FAILED
        job.problems = [{"file": job.filename, "row": None, "column": "", "message": message}]
        job.finished_at = timezone.now()
        job.save()

    try:
        data = path.read_bytes()
    except OSError:
        fail("The uploaded file is no longer kept: upload it again.")
        return None
    if hashlib.sha256(data).hexdigest() != job.sha256:
        fail("The kept file is not the one that was checked: upload it again.")
        return None
    membership = (
        Membership.objects.filter(
            organization=job.organization, user=job.run_by, role="owner", is_active=True
        )
        .select_related("clinic")
        .order_by("pk")
    )
    clinic_id = opts.get("clinic")
    m = membership.filter(clinic_id=clinic_id).first() or membership.first()
    if m is None:
        fail("The person who started this import is no longer an owner here.")
        return None
    clinic = Clinic.objects.get(pk=clinic_id) if clinic_id else m.clinic
    actor = Actor(job.organization, m.user, clinic, m.role, via="web")

    def tick(done: int, total: int) -> None:
        with _lock:
            _progress[run_id] = (done, total)
        _share(run_id, (done, total))

    try:
        report = run_import(
            actor,
            job.kind,
            {job.kind: (job.filename, data)},
            Options(
                day_first=bool(opts.get("day_first")),
                encoding=opts.get("encoding") or None,
                mapping=dict(opts.get("mapping") or {}),
            ),
            progress=tick,
            run=job,
        )
    except Exception as exc:
        log.exception("Import run %s failed", run_id)
        fail(
            f"The import stopped on an unexpected error ({exc.__class__.__name__}); nothing "
            "was imported."
        )
        return None
    finally:
        with _lock:
            _progress.pop(run_id, None)
        _share(run_id, None)
    if report.written:
        path.unlink(missing_ok=True)
    return report
