"""The replica router (glabella/db_router.py): what goes where, and which reads ask for the
replica. The real routing against a real streaming replica is in test_two_processes_replica.py."""

from __future__ import annotations

import json
import threading

from django.conf import settings
from django.urls import reverse

from glabella import db_router
from glabella.db_router import ReplicaRouter, read_alias, reading_from_replica, replica_requested
from glabella.interop.export import full, jobs, ndjson
from glabella.interop.models import ExportKind
from glabella.inventory import services as inventory
from glabella.outcomes import durations
from glabella.outcomes.tests.test_cohort import migraine_cohort  # noqa: F401 (a fixture)
from glabella.patients.models import Patient
from glabella.testing_processes import run_django, server_env


def test_without_a_replica_everything_reads_and_writes_the_primary():
    assert "replica" not in settings.DATABASES  # the test run itself never has one
    router = ReplicaRouter()
    with reading_from_replica() as alias:
        assert alias == "default"
        assert router.db_for_read(Patient) == "default"
        assert replica_requested()
    assert router.db_for_read(Patient) == "default"
    assert router.db_for_write(Patient) == "default"


def test_with_a_replica_only_reads_inside_the_block_go_there(monkeypatch):
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)
    router = ReplicaRouter()
    assert router.db_for_read(Patient) == "default"
    with reading_from_replica() as alias:
        assert alias == "replica"
        assert router.db_for_read(Patient) == "replica"
        assert router.db_for_write(Patient) == "default"  # writes never go to the replica
        with reading_from_replica():
            assert read_alias() == "replica"
        assert read_alias() == "replica"  # the inner block ended, not the outer
    assert router.db_for_read(Patient) == "default"
    assert router.allow_migrate("replica", "patients") is False
    assert router.allow_migrate("default", "patients") is True
    assert router.allow_relation(object(), object()) is True


def test_the_request_for_the_replica_holds_in_its_own_thread_only(monkeypatch):
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)
    seen: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def report() -> None:
        with reading_from_replica():
            entered.set()
            release.wait(5)
            seen.append(read_alias())

    worker = threading.Thread(target=report)
    worker.start()
    entered.wait(5)
    assert read_alias() == "default"  # a page served meanwhile reads the primary
    release.set()
    worker.join(5)
    assert seen == ["replica"]


def test_settings_add_the_replica_from_its_url_mirrored_in_tests(tmp_path):
    env = server_env(
        "postgres://app@db1:5432/glabella",
        tmp_path,
        DATABASE_REPLICA_URL="postgres://reader@db2:5433/glabella",
    )
    out = run_django(
        "import json\nfrom django.conf import settings\n"
        "r = settings.DATABASES['replica']\n"
        "routers = settings.DATABASE_ROUTERS\n"
        "print(json.dumps([r['HOST'], r['PORT'], r['USER'], r['TEST'], routers]))",
        env,
    )
    host, port, user, test, routers = json.loads(out)
    assert (host, port, user) == ("db2", 5433, "reader")
    assert test["MIRROR"] == "default"
    assert routers == ["glabella.db_router.ReplicaRouter"]


# --- which reads ask for the replica ----------------------------------------------------------


def _spy(monkeypatch, module, name):
    """Replace MODULE.NAME by a wrapper noting whether each call asked for the replica."""
    calls: list[bool] = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(replica_requested())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_the_reconciliation_report_and_its_csv_ask_for_the_replica(world, monkeypatch):
    page = _spy(monkeypatch, inventory, "reconciliation")
    csv = _spy(monkeypatch, inventory, "reconciliation_csv")
    client = world.client("front_desk")
    assert client.get(reverse("inventory:reconciliation")).status_code == 200
    response = client.get(reverse("inventory:reconciliation_csv"))
    assert response.status_code in (200, 302)  # 302: asked to confirm the password first
    assert page and all(page)  # the CSV is made from the same rows
    if response.status_code == 200:
        assert csv == [True]


def test_the_cohort_report_asks_for_the_replica(migraine_cohort, monkeypatch):  # noqa: F811
    calls = _spy(monkeypatch, durations, "cohort")
    response = migraine_cohort.client("prescriber").get(reverse("outcomes:cohort"))
    assert response.status_code == 200
    assert calls == [True]


def test_export_jobs_read_their_rows_from_the_replica(world, monkeypatch):
    bulk_count = _spy(monkeypatch, ndjson, "count")
    bulk_write = _spy(monkeypatch, ndjson, "write_types")
    full_write = _spy(monkeypatch, full, "write_export")
    owner = world.actor("owner")
    for kind in (ExportKind.FHIR_BULK, ExportKind.FULL):
        job = jobs.create(owner, kind, start=False)
        done = jobs.run(job.pk)
        assert done is not None and done.state == "done", done and done.error
    assert full_write == [True]
    for calls in (bulk_count, bulk_write):  # the full export holds the bulk export's files too
        assert calls and all(calls)
    assert not replica_requested()  # and the flag is down again after the job
    assert db_router.read_alias() == "default"
