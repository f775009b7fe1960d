"""Real processes for tests: a Glabella app server (gunicorn) on a free port against a given
database, the Django commands to prepare that database, a fresh PostgreSQL database made and
dropped per test, and a TCP proxy that can cut a server off from its database and reconnect it.

Nothing here is a mock: the server is the production WSGI server in its own process group
(so ``kill()`` is a real SIGKILL of the master and every worker), the proxy forwards real
bytes between real sockets.

Typical use::

    info = prepare_clinic(database_url, tmp_path)  # migrate; a clinic, users, tokens, a patient
    env = server_env(database_url, tmp_path)
    n = run_django("import glabella.patients.models as m; print(m.Patient.objects.count())", env)
    with AppServer(database_url, tmp_path, workers=2, threads=4) as server:
        status, headers, body = http("GET", server.url("/healthz"))
        server.kill()  # SIGKILL the whole process group
        server.start()  # again, on the same port and database

The API is deliberately small and stable (other tests reuse it): ``free_port``,
``server_env``, ``manage``, ``run_django``, ``http``, ``AppServer``, ``fresh_postgres_database``,
``migrated_sqlite``, ``TcpProxy``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(database_url: str, var_dir: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a Glabella process using DATABASE_URL, with its own VAR_DIR
    (secret key, media, exports), debug off and two-step sign-in as in production.
    EXTRA overrides or adds variables (``GLABELLA_SQLITE_TIMEOUT="1"``)."""
    var = Path(var_dir)
    var.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        # The test process's own Django/pytest settings must not leak into the server.
        if not k.startswith(("PYTEST_", "DJANGO_ALLOW_ASYNC"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "glabella.settings",
            "DATABASE_URL": database_url,
            "GLABELLA_VAR_DIR": str(var),
            "GLABELLA_DEBUG": "0",
            "GLABELLA_SECURE_COOKIES": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _run(
    argv: list[str], what: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ARGV (our own interpreter) in ENV; raises with its output if it fails."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def manage(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` in ENV; raises with its output if it fails."""
    argv = [sys.executable, str(ROOT / "manage.py"), *args]
    return _run(argv, f"manage.py {' '.join(args)}", env, timeout)


def run_django(code: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run Python CODE in a fresh process after ``django.setup()`` in ENV; its stdout."""
    script = "import django\ndjango.setup()\n" + code
    return _run([sys.executable, "-c", script], "script", env, timeout).stdout


SEED = """
import json
from datetime import date
from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.accounts.roles import Role
from glabella.accounts.services import add_member, setup_organization
from glabella.accounts.tokens import create_token
from glabella.patients import services as patient_services
org, clinic, owner = setup_organization(
    org_name="Fault Clinic", clinic_name="Fault Central", timezone="Europe/London",
    owner_email="owner@fault.test", password=PASSWORD,
)
owner_actor = Actor(org, owner, clinic, Role.OWNER)
out = {"organization": org.pk, "clinic": clinic.pk, "password": PASSWORD}
out.update(tokens={}, emails={})
for role in (Role.PRESCRIBER, Role.INJECTOR, Role.FRONT_DESK):
    m = add_member(
        owner_actor, email=f"{role}@fault.test", clinic=clinic, role=role, password=PASSWORD
    )
    me = Actor(org, m.user, clinic, m.role)
    out["tokens"][str(role)] = create_token(me, name="fault test", membership=m).secret
    out["emails"][str(role)] = m.user.email
injector = Membership.objects.get(user__email="injector@fault.test")
patient = patient_services.create_patient(
    Actor(org, injector.user, clinic, injector.role),
    {"given_name": "Fay", "family_name": "Ault", "date_of_birth": date(1980, 5, 17)},
)
out["patient"] = patient.pk
print("SEED=" + json.dumps(out))
"""


def prepare_clinic(
    database_url: str,
    var_dir: Path | str,
    password: str = "correct-horse-battery-42",  # noqa: S107 (test accounts only)
    *,
    migrate: bool = True,
) -> dict[str, Any]:
    """Migrate the (empty) database at DATABASE_URL and create one organization and clinic
    with a prescriber, an injector and a front-desk user (API tokens for each, in
    ``tokens[role]``), and one patient (``patient``: its id). MIGRATE=False: the database
    is migrated already (``migrated_sqlite``, ``fresh_postgres_database(migrated=True)``)."""
    env = server_env(database_url, var_dir)
    if migrate:
        manage(["migrate", "--noinput", "-v0"], env)
    out = run_django(f"PASSWORD = {password!r}\n" + SEED, env)
    line = next(x for x in out.splitlines() if x.startswith("SEED="))
    return dict(json.loads(line[len("SEED=") :]))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is raised as an HTTPError and returned by http()


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], str]:
    """One HTTP request: (status, headers, body text). Redirects are not followed (a 302 is
    returned as it is), an HTTP error status is returned, not raised; a connection failure
    (refused, reset, timed out) raises OSError."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class AppServer:
    """gunicorn serving ``glabella.wsgi`` on 127.0.0.1:PORT, in its own process group."""

    def __init__(
        self,
        database_url: str,
        var_dir: Path | str,
        *,
        workers: int = 2,
        threads: int = 4,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.var_dir = Path(var_dir)
        self.env = server_env(database_url, self.var_dir, **(env or {}))
        self.workers = workers
        self.threads = threads
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.var_dir / f"gunicorn-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def start(self, timeout: float = 30, healthy: bool = True) -> AppServer:
        """Start the server; wait until /healthz answers (200 when HEALTHY, else anything)."""
        if self.alive():
            raise RuntimeError("The server is already running.")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "glabella.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--graceful-timeout",
                "2",
                "--timeout",
                "60",
                # No shared control socket in the home directory: several test servers run
                # at once.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches every worker
        )
        log.close()
        self.wait_ready(timeout=timeout, healthy=healthy)
        return self

    def wait_ready(self, timeout: float = 30, healthy: bool = True) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"The server exited ({self.process.returncode}):\n{self.log()[-4000:]}"
                )
            try:
                status, _, body = http("GET", self.url("/healthz"), timeout=5)
            except OSError as exc:
                last = repr(exc)
            else:
                if status == 200 or not healthy:
                    return
                last = f"{status} {body[:300]}"
            time.sleep(0.1)
        raise TimeoutError(f"The server did not become ready ({last}):\n{self.log()[-4000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the master and every worker at once (no clean shutdown)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # Workers are in the same group; wait until none is left holding the port.
        self._wait_group_gone()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), then SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._wait_group_gone()

    def _wait_group_gone(self, timeout: float = 10) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)

    def log(self) -> str:
        """Everything the server has written (gunicorn's and Glabella's log lines)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> AppServer:
        if not self.alive():
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- migrated databases, made once per test run and copied -----------------------------------
# Migrating an empty database takes several seconds of CPU; many tests need a fresh one of
# their own. The first asks for a template that a real ``manage.py migrate`` process migrates
# (once per test process); every later one is a copy of it: the same bytes for SQLite, CREATE
# DATABASE ... TEMPLATE for PostgreSQL. Templates are removed when the test process exits.

_template_lock = threading.Lock()
_sqlite_template_path: Path | None = None
_postgres_templates: dict[str, str] = {}  # admin URL -> template database name


def _sqlite_template() -> Path:
    global _sqlite_template_path
    with _template_lock:
        if _sqlite_template_path is None:
            import atexit
            import shutil
            import sqlite3
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="glabella-template-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = folder / "migrated.sqlite3"
            manage(["migrate", "--noinput", "-v0"], server_env(f"sqlite:///{path}", folder))
            # Everything into the main file (WAL mode), so that copying that file is a copy
            # of the database.
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _sqlite_template_path = path
        return _sqlite_template_path


def migrated_sqlite(path: Path | str) -> str:
    """A migrated SQLite database at PATH (a new file; a copy of this test run's freshly
    migrated template, as if ``migrate`` had just run on it); its DATABASE_URL."""
    import shutil

    target = Path(path)
    if target.exists():
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template(), target)
    return f"sqlite:///{target}"


def _postgres_template(scheme: str, server_part: str) -> str:
    """The name of this test process's migrated template database on that server."""
    import psycopg
    from psycopg import sql

    admin_url = f"{scheme}://{server_part}/postgres"
    with _template_lock:
        if admin_url not in _postgres_templates:
            import atexit
            import shutil
            import tempfile

            name = f"glabella_template_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            atexit.register(_drop_postgres_database, admin_url, name)
            folder = Path(tempfile.mkdtemp(prefix="glabella-template-"))
            try:
                env = server_env(f"{scheme}://{server_part}/{name}", folder)
                manage(["migrate", "--noinput", "-v0"], env)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            _postgres_templates[admin_url] = name
        return _postgres_templates[admin_url]


def _drop_postgres_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def fresh_postgres_database(
    base_url: str, prefix: str = "glabella_fault", *, migrated: bool = False
) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of BASE_URL (a postgres:// URL); yields
    its URL and drops it afterwards (closing whatever connections are left). MIGRATED: a copy
    of this test run's migrated template instead of an empty database."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    scheme, rest = base_url.split("://", 1)
    server_part, _, _ = rest.partition("/")
    admin_url = f"{scheme}://{server_part}/postgres"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if migrated:
        template = _postgres_template(scheme, server_part)
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # The template's migrate process has gone, but its server process may linger a moment
        # ("source database is being accessed by other users"): try again for a while.
        deadline = time.monotonic() + 10
        while True:
            try:
                conn.execute(create)
                break
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    try:
        yield f"{scheme}://{server_part}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def with_port(database_url: str, host: str, port: int) -> str:
    """DATABASE_URL with its host and port replaced (to go through a TcpProxy)."""
    scheme, rest = database_url.split("://", 1)
    server_part, slash, path = rest.partition("/")
    userinfo, at, _ = server_part.rpartition("@")
    return f"{scheme}://{userinfo}{at}{host}:{port}{slash}{path}"


class TcpProxy:
    """Forwards 127.0.0.1:PORT to TARGET, in threads. ``cut()`` closes every open connection
    and refuses new ones (as if the database host went away); ``restore()`` lets them in
    again. Use as a context manager or call ``close()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._up = True
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()  # refused: the connection is closed at once
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
                with self._lock:
                    self._open.discard(s)

    def cut(self) -> None:
        """Drop every connection now and refuse new ones."""
        self._up = False
        with self._lock:
            sockets = list(self._open)
            self._open.clear()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self._up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
