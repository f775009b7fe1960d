"""A backup taken while another process keeps writing is consistent.

A separate process registers patients through the service (each patient and its audit event in
one transaction) as fast as it can, into a scratch database, while `glabella backup` runs on
that database. The archive must restore with every table equal to its manifest, no patient
without its audit event (no transaction torn in half) and an intact audit chain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from glabella.interop.tests.test_backup import rows, run, scratch, take_backup  # noqa: F401

WRITER = """
import os, sys, time
from datetime import date
import django
django.setup()
from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.patients.services import create_patient

m = Membership.objects.get(user__email="injector@alpha.test")
actor = Actor(m.organization, m.user, m.clinic, m.role)
stop, log = sys.argv[1], open(sys.argv[2], "a", encoding="utf-8")
i = 0
while not os.path.exists(stop):
    create_patient(actor, {"given_name": f"Writer{i}", "family_name": "Concurrent",
                           "date_of_birth": date(1980, 1, 1)})
    log.write(f"{time.time()}\\n")
    log.flush()
    i += 1
"""


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "glabella.settings",
        "DATABASE_URL": url,
        "SECRET_KEY": "concurrent-backup-test",
        "GLABELLA_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(settings.BASE_DIR),
    }


def _commits(log: Path) -> list[float]:
    if not log.exists():
        return []
    return [float(line) for line in log.read_text().split()]


def _wait_for(log: Path, n: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(_commits(log)) < n:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the writer did not write"
        time.sleep(0.05)


def test_a_backup_taken_while_another_process_writes_is_consistent(
    live_world,
    tmp_path,
    scratch,  # noqa: F811
):
    # A database of its own for the writer: this world, restored from a first backup.
    seed, _ = take_backup(tmp_path)
    source = scratch()
    run("restore", str(seed), "--database-url", source, "--no-files")

    stop, log = tmp_path / "stop", tmp_path / "commits.log"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(stop), str(log)],
        env=_env(source, tmp_path),
        cwd=settings.BASE_DIR,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(log, 5, writer)
        started = time.time()
        out = tmp_path / "during.tar.gz"
        run("backup", str(out), "--database-url", source, "--files-root", str(tmp_path / "none"))
        finished = time.time()
        _wait_for(log, len(_commits(log)) + 5, writer)
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0, writer.stderr.read().decode()
    commits = _commits(log)
    during = [t for t in commits if started < t < finished]
    assert during, "no patient was written while the backup ran"
    print(f"{len(during)} patients written while the backup ran ({finished - started:.2f} s)")
    assert commits[-1] > finished

    target = scratch()
    restored = run("restore", str(out), "--database-url", target, "--no-files")
    assert "every table's row count and digest equal the backup's" in restored

    (written,) = rows(
        target, "SELECT COUNT(*) FROM patients_patient WHERE family_name = 'Concurrent'"
    )[0]
    assert len([t for t in commits if t <= started]) <= written <= len(commits)
    orphans = rows(
        target,
        "SELECT COUNT(*) FROM patients_patient p WHERE p.family_name = 'Concurrent' AND NOT "
        "EXISTS (SELECT 1 FROM audit_auditevent a WHERE a.object_type = 'patients.patient' "
        "AND a.object_id = CAST(p.id AS VARCHAR(64)) AND a.action = 'create')",
    )
    assert orphans == [(0,)]
    (events,) = rows(
        target,
        "SELECT COUNT(*) FROM audit_auditevent WHERE object_type = 'patients.patient' AND "
        "action = 'create' AND object_label LIKE 'CONCURRENT,%'",
    )[0]
    assert events == written
    check = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        env=_env(target, tmp_path),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "Audit chain intact" in check.stdout
