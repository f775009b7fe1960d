"""Two app processes behind no shared memory, a PostgreSQL primary and a streaming replica.

The test brings its own PostgreSQL: a primary and a hot-standby replica (``pg_basebackup -R``)
in a temporary directory, on free ports, run as the ``postgres`` user when the tests run as
root. It migrates the primary, starts two gunicorn servers (``glabella.testing_processes``)
with DATABASE_URL = primary and DATABASE_REPLICA_URL = replica, and shows:

- a patient registered through the API on process A is read through the API on process B;
- a session signed in on process A is signed in on process B (sessions are in the database);
- the portal's per-minute rate limit counts requests to both processes together (the cache
  is the database's, shared);
- the stock reconciliation report is read from the replica and nothing else is: with the
  replica's replay paused, a lot received on the primary is in the page's lot list (an ordinary
  read, from the primary) but not in the report's rows (from the replica); once replay resumes
  and the replica has caught up, the report shows it.

Everything is stopped and removed at the end, pass or fail. It runs in the SQLite and the
PostgreSQL passes alike (it needs no database of the test run's own).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import psycopg
import pytest

from glabella.testing_processes import AppServer, free_port, http, manage, run_django, server_env

PG_BIN = Path(os.environ.get("GLABELLA_PG_BIN", "/usr/lib/postgresql/15/bin"))
SECRET = "two-processes-test-secret-" + "x" * 40  # the same signing key on both processes
PASSWORD = "correct-horse-battery-42"


# --- a PostgreSQL primary and its streaming replica ------------------------------------------


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _run(args: list[str], timeout: float = 60) -> str:
    done = subprocess.run(
        _as_postgres(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Cluster:
    def __init__(self, root: Path, name: str) -> None:
        self.data = root / name
        self.port = free_port()
        self.socket_dir = root
        self.log = root / f"{name}.log"

    def url(self, database: str = "glabella") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def configure(self) -> None:
        conf = self.data / "postgresql.conf"
        extra = (
            f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
            "wal_receiver_status_interval = 1s\nshared_buffers = 16MB\n"
            "fsync = off\nfull_page_writes = off\n"  # a throwaway cluster: speed over safety
        )
        _run(["sh", "-c", f"cat >> {conf} <<'EOF'{extra}EOF\n"])

    def start(self) -> None:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start"])

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])

    def connect(self, database: str = "glabella") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def wait_ready(self, database: str = "postgres", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect(database) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@contextlib.contextmanager
def primary_and_replica() -> Iterator[tuple[Cluster, Cluster]]:
    for program in ("initdb", "pg_ctl", "pg_basebackup"):
        if not (PG_BIN / program).exists():
            pytest.fail(
                f"This test runs its own PostgreSQL and needs {PG_BIN / program}: install the "
                "PostgreSQL server (e.g. apt-get install postgresql-15), or point GLABELLA_PG_BIN "
                "at the folder holding initdb, pg_ctl and pg_basebackup."
            )
    root = Path(tempfile.mkdtemp(prefix="glabella-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    primary, replica = Cluster(root, "primary"), Cluster(root, "replica")
    try:
        _run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(primary.data),
                "--auth=trust",  # local connections and replication from 127.0.0.1 only
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )
        primary.configure()
        primary.start()
        primary.wait_ready()
        with primary.connect("postgres") as conn:
            conn.execute("CREATE DATABASE glabella")
        _run(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(replica.data),
                "-R",  # standby.signal and primary_conninfo: a streaming replica
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ]
        )
        replica.configure()  # its own port (a later line wins over the copied one)
        replica.start()
        replica.wait_ready("glabella")
        with replica.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for_replica(primary: Cluster, replica: Cluster, timeout: float = 20) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    with primary.connect() as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with replica.connect() as conn:
        while True:
            caught_up = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
            ).fetchone()[0]
            if caught_up:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("The replica did not catch up with the primary.")
            time.sleep(0.05)


# --- a browser's worth of HTTP: cookies, CSRF, no redirects followed --------------------------


class Browser:
    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(
        self, server: AppServer, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = HTTPConnection("127.0.0.1", server.port, timeout=20)
        headers = {"Host": f"127.0.0.1:{server.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = server.url(path)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";", 1)[0]
            return response.status, {k.lower(): v for k, v in response.getheaders()}, text
        finally:
            conn.close()

    def sign_in(self, server: AppServer, email: str) -> None:
        status, _, page = self.request(server, "GET", "/accounts/login/")
        assert status == 200, page[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "no CSRF token on the sign-in page"
        status, headers, page = self.request(
            server,
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token.group(1), "username": email, "password": PASSWORD},
        )
        assert status == 302, f"sign-in refused ({status}): {page[:800]}"
        assert "/accounts/login" not in headers.get("location", "")


SETUP = """
import json
from datetime import date
from glabella.accounts.actor import Actor
from glabella.accounts.services import add_member, setup_organization
from glabella.accounts.tokens import create_token
from glabella.patients import services as patients
from glabella.portal import services as portal

org, clinic, owner = setup_organization(
    org_name="Replica Clinic", clinic_name="Replica Central", timezone="Europe/London",
    owner_email="owner@replica.test", password=PASSWORD,
)
owner_actor = Actor(org, owner, clinic, "owner")
desk = add_member(owner_actor, email="desk@replica.test", clinic=clinic, role="front_desk",
                  password=PASSWORD)
desk_actor = Actor(org, desk.user, clinic, "front_desk")
token = create_token(desk_actor, name="two processes", membership=desk).secret
patient = patients.create_patient(desk_actor, {
    "given_name": "Ada", "family_name": "Portal", "date_of_birth": date(1980, 1, 2),
    "sex": "female",
})
link = portal.show_link(desk_actor, patient)
print(json.dumps({"token": token, "portal": link.path}))
"""

RECEIVE = """
from datetime import timedelta
from django.utils import timezone
from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.inventory import services

m = Membership.objects.get(user__email="desk@replica.test")
services.receive(
    Actor(m.organization, m.user, m.clinic, m.role), m.clinic, product_id="botox_cosmetic",
    lot_number=LOT, expiry=timezone.localdate() + timedelta(days=365), vial_units=50,
    vial_count=1,
)
print("received", LOT)
"""


def reconciliation(browser: Browser, server: AppServer) -> tuple[str, str]:
    """(the lot list of the page's form, the report's rows) of the reconciliation page."""
    status, _, page = browser.request(server, "GET", "/inventory/reconciliation/")
    assert status == 200, page[:800]
    page = html.unescape(page)
    _, _, page = page.partition('<form method="get" class="filters')
    form, _, rest = page.partition("</form>")
    assert form and rest, "the reconciliation page has changed: update this test"
    return form, rest


def test_two_app_processes_share_everything_and_reports_read_the_replica(tmp_path):
    with primary_and_replica() as (primary, replica):
        env = server_env(
            primary.url(),
            tmp_path / "shared",  # the export folder every process must share (deploy.md)
            SECRET_KEY=SECRET,
            DATABASE_REPLICA_URL=replica.url(),
            GLABELLA_CACHE_URL="db://",
            GLABELLA_PORTAL_RATE_PER_MINUTE="3",
        )
        manage(["migrate", "--noinput", "-v0"], env)
        made = json.loads(run_django(f"PASSWORD = {PASSWORD!r}\n" + SETUP, env).strip())
        extra = {k: env[k] for k in ("SECRET_KEY", "DATABASE_REPLICA_URL", "GLABELLA_CACHE_URL")}
        extra["GLABELLA_PORTAL_RATE_PER_MINUTE"] = "3"
        a = AppServer(primary.url(), tmp_path / "shared", workers=1, threads=2, env=extra)
        b = AppServer(primary.url(), tmp_path / "shared", workers=1, threads=2, env=extra)
        try:
            a.start()
            b.start()
            api = {"Authorization": f"Bearer {made['token']}"}

            # A write through process A is read through process B.
            status, _, body = http(
                "POST",
                a.url("/api/v1/patients"),
                {"given_name": "Grace", "family_name": "Twoproc", "date_of_birth": "1970-05-06"},
                headers=api,
            )
            assert status == 201, body
            patient_id = json.loads(body)["id"]
            status, _, body = http("GET", b.url(f"/api/v1/patients/{patient_id}"), headers=api)
            assert status == 200, body
            assert json.loads(body)["family_name"] == "Twoproc"

            # A session signed in on A is signed in on B.
            browser = Browser()
            browser.sign_in(a, "desk@replica.test")
            status, headers, _ = browser.request(b, "GET", "/inventory/")
            assert status == 200, headers
            status, headers, _ = Browser().request(b, "GET", "/inventory/")
            assert status == 302 and "/accounts/login" in headers["location"]

            # The portal's rate limit (3 a minute here) counts both processes together.
            # Not across a minute's boundary (the four requests may take seconds when loaded).
            if time.time() % 60 > 45:
                time.sleep(60 - time.time() % 60 + 0.2)
            answers = [
                Browser().request(server, "GET", made["portal"])[0] for server in (a, b, a, b)
            ]
            assert answers == [200, 200, 200, 429], answers

            # Reports read the replica; the rest of the page reads the primary.
            _run_django_lot(env, "RPL-FIRST")
            wait_for_replica(primary, replica)
            form, rows = reconciliation(browser, b)
            assert "RPL-FIRST ·" in form and "lot RPL-FIRST" in rows
            with replica.connect() as conn:
                conn.execute("SELECT pg_wal_replay_pause()")
            _run_django_lot(env, "RPL-PAUSED")
            for server in (a, b):
                form, rows = reconciliation(browser, server)
                assert "RPL-PAUSED ·" in form, "the lot list reads the primary"
                assert "lot RPL-FIRST" in rows
                assert "RPL-PAUSED" not in rows, "the report must come from the replica"
            with replica.connect() as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
            wait_for_replica(primary, replica)
            form, rows = reconciliation(browser, a)
            assert "lot RPL-PAUSED" in rows
        finally:
            a.stop()
            b.stop()


def _run_django_lot(env: dict[str, str], lot: str) -> None:
    """Receive a vial of lot LOT on the primary, from a process of its own."""
    run_django(f"LOT = {lot!r}\n" + RECEIVE, env)
