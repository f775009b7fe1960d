"""Real servers for the reminder tests: an SMTP server (aiosmtpd) that can refuse an address or
accept slowly, and an SMS gateway (http.server in a thread) that can answer, fail or hang and
that honours idempotency keys. Plus patients who agree to reminders and appointments to remind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from glabella.accounts.roles import Role
from glabella.conftest import _make_world
from glabella.mail_testing import Inbox, smtp_server
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.scheduling import booking
from glabella.scheduling.models import Appointment
from glabella.testing_processes import migrated_sqlite

ROOT = Path(__file__).resolve().parents[3]
MANAGE = ROOT / "manage.py"
GLABELLA = Path(sys.executable).with_name("glabella")


@dataclass
class Smtp:
    inbox: Inbox
    port: int

    def env(self) -> dict[str, str]:
        return {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_TIMEOUT": "60",
            "DEFAULT_FROM_EMAIL": "reminders@alpha.test",
        }


@pytest.fixture
def smtp(settings):
    with smtp_server(settings, "reminders@alpha.test") as (inbox, port):
        settings.GLABELLA_SITE_URL = "https://glabella.alpha.test"
        yield Smtp(inbox, port)


def text_of(message: Message) -> str:
    """The plain-text body of a (possibly multipart) message."""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            payload = part.get_payload(decode=True)
            text = payload.decode(part.get_content_charset() or "utf-8")
            return text.replace("\r\n", "\n")
    raise AssertionError("no text/plain part")


def attachment(message: Message, filename: str) -> tuple[str, bytes]:
    for part in message.walk():
        if part.get_filename() == filename:
            return part.get_content_type(), part.get_payload(decode=True)
    raise AssertionError(f"no attachment {filename}")


# --- the SMS gateway --------------------------------------------------------------------------


@dataclass
class Gateway:
    """A JSON SMS gateway that honours Idempotency-Key: a repeated key is answered with the first
    message's id and not delivered again. ``script`` says how to answer the next requests:
    "ok", "hang" (deliver, then answer only after ``hang_seconds``), "503", "400", "401"."""

    script: list[str] = field(default_factory=list)
    hang_seconds: float = 2.0
    delay: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_answer(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    def deliver(self, key: str, payload: dict[str, Any]) -> str:
        with self.lock:
            if key in self.ids:
                return self.ids[key]
            ident = f"msg-{len(self.ids) + 1}"
            self.ids[key] = ident
            self.deliveries[key] += 1
            self.delivered.append(payload)
            return ident


def _handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(raw)

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(size) or b"{}")
            key = self.headers.get("Idempotency-Key", "")
            with gateway.lock:
                gateway.requests[key] += 1
                gateway.headers.append(dict(self.headers))
            if self.headers.get("Authorization") != "Bearer sekrit":
                self._answer(401, {"error": "bad token"})
                return
            answer = gateway.next_answer()
            if answer in ("503", "400", "401"):
                self._answer(int(answer), {"error": f"simulated {answer}"})
                return
            ident = gateway.deliver(key, payload)
            if gateway.delay:
                time.sleep(gateway.delay)
            if answer == "hang":
                time.sleep(gateway.hang_seconds)
            self._answer(200, {"id": ident, "status": "queued"})

    return Handler


@pytest.fixture
def gateway(settings):
    state = Gateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/messages"
    settings.GLABELLA_SMS_PROVIDER = "http"
    settings.GLABELLA_SMS_URL = state.url
    settings.GLABELLA_SMS_TOKEN = "sekrit"
    settings.GLABELLA_SMS_SENDER = "AlphaClinic"
    settings.GLABELLA_SMS_TIMEOUT = 0.5
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def gateway_env(gateway: Gateway) -> dict[str, str]:
    return {
        "GLABELLA_SMS_PROVIDER": "http",
        "GLABELLA_SMS_URL": gateway.url,
        "GLABELLA_SMS_TOKEN": "sekrit",
        "GLABELLA_SMS_TIMEOUT": "5",
    }


# --- patients and appointments ----------------------------------------------------------------


def agree(patient: Patient, channel: str = "email", **fields: Any) -> Patient:
    """PATIENT agrees to reminders by CHANNEL (test set-up, as the contact form would)."""
    Patient.objects.filter(pk=patient.pk).update(
        reminder_consent=True, preferred_channel=channel, reminder_opt_out_at=None, **fields
    )
    patient.refresh_from_db()
    return patient


_serial = iter(range(1, 1_000_000))


def new_patient(world, *, email: str = "", phone: str = "", channel: str = "email") -> Patient:
    n = next(_serial)
    patient = patient_services.create_patient(
        world.actor(Role.FRONT_DESK),
        {
            "given_name": f"Pat{n}",
            "family_name": "Tester",
            "date_of_birth": date(1980, 1, 1) + timedelta(days=n),
            "email": email,
            "phone": phone,
        },
    )
    return agree(patient, channel)


def book(world, starts_at: datetime, patient: Patient | None = None, **kw: Any) -> Appointment:
    return booking.book(
        world.actor(Role.FRONT_DESK),
        patient=patient or world.patient,
        clinic=kw.pop("clinic", world.clinic),
        practitioner=kw.pop("practitioner", world.users[Role.PRESCRIBER]),
        starts_at=starts_at,
        kind=kw.pop("kind", "treatment"),
        **kw,
    )


# --- a database other processes can share -----------------------------------------------------


@pytest.fixture
def shared_world(transactional_db, tmp_path):
    """The standing personas in a database that worker processes can open too: the test
    PostgreSQL database, or on SQLite a file database with the production settings (the test
    runner's in-memory database cannot be shared between processes). Yields (world, url)."""
    settings = connection.settings_dict
    if connection.vendor != "sqlite":
        url = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
            **{k: settings.get(k) or "" for k in ("USER", "PASSWORD", "HOST", "NAME")},
            PORT=settings.get("PORT") or 5432,
        )
        yield _make_world(), url
        return
    memory_name, memory_connection = settings["NAME"], connection.connection
    connection.connection = None
    path = tmp_path / "shared.sqlite3"
    settings["NAME"] = str(path)
    try:
        migrated_sqlite(settings["NAME"])  # a copy of the run's migrated template
        yield _make_world(), f"sqlite:///{path}"
    finally:
        connection.close()
        settings["NAME"] = memory_name
        connection.connection = memory_connection


def worker_env(url: str, *parts: dict[str, str]) -> dict[str, str]:
    from django.conf import settings

    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": settings.SECRET_KEY}
    env["GLABELLA_SITE_URL"] = "https://glabella.alpha.test"
    env["PYTHONUNBUFFERED"] = "1"
    for part in parts:
        env.update(part)
    return env


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """A worker process: ``manage.py ARGS`` (the same as ``glabella ARGS``)."""
    return subprocess.Popen(
        [sys.executable, str(MANAGE), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err
