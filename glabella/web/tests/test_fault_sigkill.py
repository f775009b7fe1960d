"""SIGKILL the app server while many clients save treatment sessions: every save the server
acknowledged is there, complete (its points, its audit rows); none is half-written; the audit
chain still verifies; and the server starts again on the same database and saves again.

A real gunicorn (2 workers x 4 threads) against its own database of the engine this test run
uses: a fresh SQLite file in WAL mode, or a fresh PostgreSQL database (created and dropped
here) when the suite runs with DATABASE_URL=postgres://... Sixteen client threads each save
drafts with eight injection points in one request (POST /api/v1/sessions), every request
tagged by a unique note so each stored session can be traced to the request that made it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from decimal import Decimal

from django.conf import settings

from glabella.testing_processes import (
    AppServer,
    fresh_postgres_database,
    http,
    migrated_sqlite,
    prepare_clinic,
    run_django,
    server_env,
)

CLIENTS = 16
POINTS = 8
LOAD_SECONDS = 1.5
SITES = [
    {"area": "glabella", "muscle": "corrugator", "side": "R"},
    {"area": "glabella", "muscle": "corrugator", "side": "L"},
    {"area": "glabella", "muscle": "procerus", "side": "mid"},
    {"area": "glabella", "muscle": "corrugator", "side": "R", "diagram": "face-front", "x": 38,
     "y": 28},
    {"area": "glabella", "muscle": "corrugator", "side": "L", "diagram": "face-front", "x": 62,
     "y": 28},
]  # fmt: skip


def engine_database(tmp_path):
    """A context manager giving the URL of a fresh, migrated database of this run's engine (a
    copy of the run's migrated template: ``prepare_clinic(..., migrate=False)``)."""
    import contextlib

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return fresh_postgres_database(os.environ["DATABASE_URL"], migrated=True)
    return contextlib.nullcontext(migrated_sqlite(tmp_path / "fault.sqlite3"))


def planned_units(tag_number: int) -> list[str]:
    """The units of each point of request TAG_NUMBER: different for every request and point,
    so a stored session shows which request made it and whether any point is missing."""
    base = Decimal(1 + tag_number % 40) / 4
    return [f"{base + Decimal(i) / 4:.2f}" for i in range(POINTS)]


def session_body(patient: int, tag: str, units: list[str]) -> dict:
    points = [{**SITES[i % len(SITES)], "units": float(u)} for i, u in enumerate(units)]
    return {
        "patient": patient,
        "product": "botox_cosmetic",
        "indication": "glabellar-lines",
        "pre_notes": tag,
        "points": points,
    }


STORED = """
import json
from glabella.audit.models import AuditEvent
from glabella.audit.services import verify_chain
from glabella.charting.models import TreatmentSession
out = {}
for s in TreatmentSession.objects.filter(pre_notes__startswith="fault-"):
    added = AuditEvent.objects.filter(
        object_type="charting.treatmentsession", object_id=str(s.pk), action="update",
        object_label__contains="added",
    ).count()
    created = AuditEvent.objects.filter(
        object_type="charting.treatmentsession", object_id=str(s.pk), action="create"
    ).count()
    out[s.pre_notes] = {
        "id": s.pk,
        "units": [f"{p.units:.2f}" for p in s.points.filter(removed=False).order_by("number")],
        "added_audit": added,
        "created_audit": created,
    }
report = verify_chain()
print("STORED=" + json.dumps({"sessions": out, "chain_ok": report.ok, "chain": report.checked}))
"""


def stored(env: dict[str, str]) -> dict:
    text = run_django(STORED, env)
    return json.loads(next(x for x in text.splitlines() if x.startswith("STORED="))[7:])


class Load:
    """CLIENTS threads saving sessions until told to stop (or the server dies)."""

    def __init__(self, server: AppServer, patient: int, token: str) -> None:
        self.server, self.patient, self.token = server, patient, token
        self.sent: dict[str, list[str]] = {}  # tag -> units sent
        self.acknowledged: dict[str, int] = {}  # tag -> session id
        self.refused: dict[str, int] = {}  # tag -> status (an answer that is not a save)
        self.cut: list[str] = []  # no answer: the server died while it was working
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counter = 0

    def worker(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.stop.is_set():
            with self.lock:
                self.counter += 1
                n = self.counter
            tag = f"fault-{n}"
            units = planned_units(n)
            with self.lock:
                self.sent[tag] = units
            try:
                status, _, body = http(
                    "POST",
                    self.server.url("/api/v1/sessions"),
                    session_body(self.patient, tag, units),
                    headers,
                    timeout=20,
                )
            except OSError:
                with self.lock:
                    self.cut.append(tag)
                return  # the server is gone
            with self.lock:
                if status == 201:
                    answer = json.loads(body)
                    assert [p["units"] for p in answer["points"]] == units
                    self.acknowledged[tag] = answer["id"]
                else:
                    self.refused[tag] = status

    def run_then_kill(self) -> None:
        threads = [threading.Thread(target=self.worker) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        started = time.monotonic()
        # Load for a while, and at least until some saves are through.
        while time.monotonic() - started < LOAD_SECONDS or len(self.acknowledged) < CLIENTS:
            time.sleep(0.05)
            assert time.monotonic() - started < 60, "no saves acknowledged"
        self.server.kill()  # SIGKILL, mid-flight: requests are being served right now
        self.stop.set()
        for t in threads:
            t.join(timeout=30)


def test_sigkill_during_concurrent_saves_loses_no_acknowledged_save_and_half_writes_none(
    tmp_path,
):
    with engine_database(tmp_path) as database_url:
        info = prepare_clinic(database_url, tmp_path / "var", migrate=False)
        env = server_env(database_url, tmp_path / "var")
        server = AppServer(database_url, tmp_path / "var", workers=2, threads=4)
        server.start()
        try:
            load = Load(server, info["patient"], info["tokens"]["injector"])
            load.run_then_kill()
            assert not server.alive()
            assert not load.refused, load.refused  # nothing was refused while it was up
            assert len(load.acknowledged) >= CLIENTS
            assert load.cut, "the kill should have cut requests in flight"

            after = stored(env)
            sessions = after["sessions"]
            # Every acknowledged save is there, with exactly its points and its audit rows.
            for tag, session_id in load.acknowledged.items():
                assert tag in sessions, f"acknowledged save {tag} is missing"
                row = sessions[tag]
                assert row["id"] == session_id
                assert row["units"] == load.sent[tag], tag
                assert row["added_audit"] == POINTS and row["created_audit"] == 1, tag
            # Nothing half-written: any stored session (acknowledged or cut before its answer
            # went out) holds every point its request sent, never a part.
            for tag, row in sessions.items():
                assert row["units"] == load.sent[tag], f"{tag} is half-written: {row}"
                assert row["added_audit"] == POINTS and row["created_audit"] == 1, tag
            assert set(sessions) <= set(load.acknowledged) | set(load.cut)
            # The audit hash chain is whole after the kill.
            assert after["chain_ok"], after
            print(
                f"{len(load.acknowledged)} saves acknowledged, {len(load.cut)} cut by the kill, "
                f"{len(sessions)} stored"
            )

            # The server starts again on the same database and saves again.
            server.start()
            status, _, body = http(
                "POST",
                server.url("/api/v1/sessions"),
                session_body(info["patient"], "fault-after-restart", planned_units(0)),
                {"Authorization": f"Bearer {info['tokens']['injector']}"},
            )
            assert status == 201, body
            server.stop()
            again = stored(env)
            assert again["sessions"]["fault-after-restart"]["units"] == planned_units(0)
            assert again["chain_ok"] and again["chain"] > after["chain"]
        finally:
            server.stop()


def test_the_planned_units_differ_between_requests_and_points():
    """The check above can only tell sessions apart if every request's units differ."""
    assert len(set(planned_units(7))) == POINTS
    assert planned_units(7) != planned_units(8)
