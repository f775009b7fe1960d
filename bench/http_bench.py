"""Glabella over HTTP: gunicorn with the real settings, a small load generator, the chairside
load test.

- ``Server``: gunicorn (``GUNICORN_WORKERS``, default 3, sync workers) serving bench.settings
  (Glabella's settings without debug, plus ``/bench/ok``) on a free port of 127.0.0.1.
- ``signed_in_cookie``: a real database session for a user, two-step sign-in marked passed
  (accounts/mfa.py ``mark_verified``), as after signing in at /accounts/login/.
- ``hammer``: N keep-alive connections (one thread each, http.client) asking for one page as
  fast as it answers for a fixed time: requests per second, p50/p95/p99, errors.
- ``load_test``: USERS simulated clinicians, each a thread with its own connection, working
  through the chairside flow for a fixed time with a think time between steps.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def server(workers: int) -> Iterator[Server]:
    port = _free_port()
    log = ROOT / "var" / "bench" / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
        "GLABELLA_DEBUG": "0",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
            [
                str(gunicorn),
                "--workers",
                str(workers),
                "--bind",
                f"{HOST}:{port}",
                "--worker-class",
                "sync",
                "--keep-alive",
                "30",
                "--timeout",
                "60",
                "--log-level",
                "warning",
                "glabella.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn stopped: see {log}")
            try:
                c = http.client.HTTPConnection(HOST, port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer /healthz in a minute: see {log}")
            time.sleep(0.2)
        yield Server(port, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def signed_in_cookie(user: Any, clinic_id: int) -> str:
    """A session cookie header for USER, signed in with the second step passed."""
    from importlib import import_module

    from glabella.accounts import mfa
    from glabella.accounts.middleware import SESSION_CLINIC_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[SESSION_CLINIC_KEY] = clinic_id
    mfa.mark_verified(store)
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


@dataclass
class Stats:
    count: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) < 2:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q) - 1]


def add(total: Stats, part: Stats) -> Stats:
    """TOTAL with PART's requests, errors, time and latencies added."""
    total.count += part.count
    total.errors += part.errors
    total.seconds += part.seconds
    total.latencies += part.latencies
    total.first_error = total.first_error or part.first_error
    return total


def hammer_in_turns(
    port: int, paths: list[str], cookie: str, connections: int, seconds: float, slices: int
) -> list[Stats]:
    """Each of PATHS hammered for SECONDS in all, in SLICES turns (the first path, the
    second, ..., and again): a slower stretch of a shared machine falls on every path alike,
    where one long run after another would give it to whichever ran then."""
    totals = [Stats() for _ in paths]
    for _ in range(slices):
        for total, path in zip(totals, paths, strict=True):
            add(total, hammer(port, path, cookie, connections, seconds / slices))
    return totals


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: Any
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers = {**headers, "Content-Type": "application/json"}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def hammer(port: int, path: str, cookie: str, connections: int, seconds: float) -> Stats:
    """CONNECTIONS keep-alive clients asking for PATH back to back for SECONDS."""
    stats = Stats()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        mine: list[float] = []
        errors = 0
        first = ""
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status, body = _request(conn, "GET", path, {"Cookie": cookie}, None)
            except (OSError, http.client.HTTPException) as exc:
                status, body = 0, str(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
            mine.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors += 1
                first = first or f"GET {path}: {status} {body[:200]!r}"
        conn.close()
        with lock:
            stats.latencies += mine
            stats.count += len(mine)
            stats.errors += errors
            stats.first_error = stats.first_error or first

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.seconds = time.monotonic() - started
    return stats


# --- the chairside load test ------------------------------------------------------------------

# Units and positions are JSON numbers: the API refuses text ("4") with a 422, as it should.
GLABELLAR = [
    {"area": "glabella", "muscle": "corrugator", "side": "R", "units": 4},
    {"area": "glabella", "muscle": "corrugator", "side": "R", "units": 4,
     "diagram": "face-front", "x": 38, "y": 28},
    {"area": "glabella", "muscle": "corrugator", "side": "L", "units": 4},
    {"area": "glabella", "muscle": "corrugator", "side": "L", "units": 4,
     "diagram": "face-front", "x": 62, "y": 28},
    {"area": "glabella", "muscle": "procerus", "side": "mid", "units": 4},
]  # fmt: skip
STEPS = ("open patient", "dose check", "save session", "open chart", "sign")


@dataclass
class LoadResult:
    users: int
    seconds: float
    think: tuple[float, float]
    flows: int = 0  # flows that reached a signed session
    started: int = 0  # flows begun (a fresh patient taken)
    ran_out: int = 0  # users that stopped early because no fresh patient was left
    steps: dict[str, Stats] = field(default_factory=dict)

    def first_errors(self) -> list[str]:
        """Each failing step's first error, by step (never overwritten by another's)."""
        return [
            f"{name}: {st.errors} errors, first: {st.first_error}"
            for name, st in self.steps.items()
            if st.errors
        ]

    @property
    def all(self) -> Stats:
        total = Stats()
        for st in self.steps.values():
            add(total, st)
        total.seconds = self.seconds  # the steps ran at once: the load test's time
        return total


def load_test(
    port: int,
    cookie: str,
    token: str,
    patient_ids: list[int],
    users: int,
    seconds: float,
    think: tuple[float, float] = (1.0, 3.0),
) -> LoadResult:
    """USERS clinicians at the chair, for SECONDS: open the patient's page, check the planned
    dose (API), save the session with its five points (API), open the chart, sign (API); a
    think time drawn from THINK (seconds) between steps. Each flow takes a new patient."""
    result = LoadResult(users, seconds, think, steps={s: Stats() for s in STEPS})
    lock = threading.Lock()
    pool = iter(patient_ids)
    stop = time.monotonic() + seconds
    lot = {
        "lot_number": "C1234AB",
        "lot_expiry": (timezone.localdate() + timedelta(days=200)).isoformat(),
    }
    api = {"Authorization": f"Bearer {token}"}
    page = {"Cookie": cookie}

    def user(n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        time.sleep(rng.uniform(0, think[1]))  # users do not all start at once

        def step(name: str, method: str, path: str, headers: dict[str, str], body: Any, ok: int):
            nonlocal conn
            started = time.perf_counter()
            try:
                status, raw = _request(conn, method, path, headers, body)
            except (OSError, http.client.HTTPException) as exc:
                status, raw = 0, str(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
            ms = (time.perf_counter() - started) * 1000
            with lock:
                st = result.steps[name]
                st.count += 1
                st.latencies.append(ms)
                if status != ok:
                    st.errors += 1
                    st.first_error = st.first_error or f"{method} {path}: {status} {raw[:300]!r}"
            return raw if status == ok else None

        def flow(patient: int) -> None:
            """One patient at the chair; returns at the first failing step (recorded)."""
            if step("open patient", "GET", f"/patients/{patient}/", page, None, 200) is None:
                return
            time.sleep(rng.uniform(*think))
            body = {
                "patient": patient,
                "product": "botox_cosmetic",
                "indication": "glabellar-lines",
                "points": GLABELLAR,
            }
            raw = step("dose check", "POST", "/api/v1/dose-check", api, body, 200)
            if raw is None:
                return
            if json.loads(raw).get("blocked"):  # the plan must be signable: a harness fault
                with lock:
                    st = result.steps["dose check"]
                    st.errors += 1
                    st.first_error = st.first_error or f"plan blocked: {raw[:300]!r}"
                return
            time.sleep(rng.uniform(*think))
            raw = step("save session", "POST", "/api/v1/sessions", api, {**body, **lot}, 201)
            if raw is None:
                return
            session = json.loads(raw)
            time.sleep(rng.uniform(*think))
            if step("open chart", "GET", f"/charting/{session['id']}/", page, None, 200) is None:
                return
            time.sleep(rng.uniform(*think))
            path = f"/api/v1/sessions/{session['id']}/sign"
            if step("sign", "POST", path, api, {"version": session["version"]}, 200) is not None:
                with lock:
                    result.flows += 1

        while time.monotonic() < stop:
            with lock:
                patient = next(pool, None)
                if patient is None:
                    result.ran_out += 1
                else:
                    result.started += 1
            if patient is None:
                break
            flow(patient)
            # The think time follows a failed step too: a failing flow must not race through
            # the fresh patients (and hide its own error behind "ran out of patients").
            time.sleep(rng.uniform(*think))
        conn.close()

    threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    return result
