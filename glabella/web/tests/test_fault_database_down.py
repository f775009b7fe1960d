"""The database goes away: a clear 503 in words (a page, the API's JSON, a FHIR
OperationOutcome, an htmx fragment) with Retry-After, never a 500; programming errors stay
500s; and the same server process answers again by itself when the database is back.

Real processes: a gunicorn server against its own database of this run's engine.
PostgreSQL: the server reaches the database through a TCP proxy in this test, which is cut
(every connection dropped, new ones refused) and restored. SQLite: this test holds the
database's write lock (BEGIN IMMEDIATE) past the server's busy timeout
(GLABELLA_SQLITE_TIMEOUT=1), then lets go.
"""

from __future__ import annotations

import json
import sqlite3
import time

import psycopg
import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError, ProgrammingError, connection
from django.http import HttpResponse
from django.test import RequestFactory

from glabella.testing_processes import (
    AppServer,
    TcpProxy,
    free_port,
    http,
    prepare_clinic,
    run_django,
    server_env,
    with_port,
)
from glabella.web.middleware import (
    MESSAGE,
    DatabaseUnavailableMiddleware,
    is_connection_failure,
)
from glabella.web.tests.test_fault_sigkill import engine_database, planned_units, session_body

# A well-formed session key that exists nowhere: looking it up needs the database.
SESSION_COOKIE = "sessionid=" + "k" * 32
POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

COUNT_SESSIONS = """
from glabella.charting.models import InjectionPoint, TreatmentSession
print("COUNT=%d,%d" % (TreatmentSession.objects.count(), InjectionPoint.objects.count()))
"""


def counts(env):
    out = run_django(COUNT_SESSIONS, env)
    line = next(x for x in out.splitlines() if x.startswith("COUNT="))
    return tuple(int(n) for n in line[6:].split(","))


def save(server, info, tag):
    return http(
        "POST",
        server.url("/api/v1/sessions"),
        session_body(info["patient"], tag, planned_units(3)),
        {"Authorization": f"Bearer {info['tokens']['injector']}"},
        timeout=30,
    )


def assert_unavailable_json(status, headers, body):
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert json.loads(body)["message"] == MESSAGE


def test_database_going_away_is_a_503_in_words_and_the_server_recovers_by_itself(tmp_path):
    if POSTGRES:
        _postgres_cut_and_restored(tmp_path)
    else:
        _sqlite_locked_and_released(tmp_path)


def _postgres_cut_and_restored(tmp_path):
    with engine_database(tmp_path) as database_url:
        info = prepare_clinic(database_url, tmp_path / "var", migrate=False)
        env = server_env(database_url, tmp_path / "var")
        target = psycopg.conninfo.conninfo_to_dict(database_url)
        with TcpProxy(target.get("host") or "127.0.0.1", int(target.get("port") or 5432)) as proxy:
            through_proxy = with_port(database_url, "127.0.0.1", proxy.port)
            with AppServer(through_proxy, tmp_path / "var", workers=1, threads=2) as server:
                status, _, body = save(server, info, "fault-before")
                assert status == 201, body
                before = counts(env)

                proxy.cut()
                # The page (a signed-in browser: its session is looked up in the database).
                page = http("GET", server.url("/patients/"), headers={"Cookie": SESSION_COOKIE})
                assert page[0] == 503 and int(page[1]["Retry-After"]) > 0
                assert "The clinic database cannot be reached right now" in page[2]
                assert "Nothing you just did was saved" in page[2]
                # The same from htmx: a fragment, and the words in a header for the page's script.
                hx = http(
                    "GET",
                    server.url("/patients/"),
                    headers={"Cookie": SESSION_COOKIE, "HX-Request": "true"},
                )
                assert hx[0] == 503 and hx[1]["X-Glabella-Message"] == MESSAGE
                assert 'role="alert"' in hx[2] and "<html" not in hx[2]
                # The API: its JSON error shape.
                assert_unavailable_json(*save(server, info, "fault-while-down"))
                assert_unavailable_json(
                    *http(
                        "GET",
                        server.url(f"/api/v1/patients/{info['patient']}"),
                        headers={"Authorization": f"Bearer {info['tokens']['injector']}"},
                    )
                )
                # FHIR: an OperationOutcome.
                status, headers, body = http(
                    "GET",
                    server.url(f"/fhir/r4/Patient/{info['patient']}"),
                    headers={"Authorization": f"Bearer {info['tokens']['injector']}"},
                )
                assert status == 503 and int(headers["Retry-After"]) > 0
                outcome = json.loads(body)
                assert outcome["resourceType"] == "OperationOutcome"
                assert outcome["issue"][0]["code"] == "transient"
                # The health check says so too.
                status, _, body = http("GET", server.url("/healthz"))
                assert status == 503 and json.loads(body)["database"] == "unreachable"
                # One line per refused request (page, htmx, API twice, FHIR), no traceback.
                log = server.log()
                assert log.count("database unavailable, answered 503") == 5, log
                assert "Traceback" not in log and "Internal Server Error" not in log
                assert "fault-while-down" not in log

                proxy.restore()
                # The same process, without a restart.
                pid = server.process.pid
                status, _, body = http("GET", server.url("/healthz"))
                assert status == 200, body
                status, _, body = save(server, info, "fault-after")
                assert status == 201, body
                page = http("GET", server.url("/patients/"), headers={"Cookie": SESSION_COOKIE})
                assert page[0] == 302  # to the sign-in page, as any stale cookie
                assert server.process.pid == pid and server.alive()
        assert counts(env) == (before[0] + 1, before[1] + len(planned_units(3)))


def _sqlite_locked_and_released(tmp_path):
    with engine_database(tmp_path) as database_url:
        info = prepare_clinic(database_url, tmp_path / "var", migrate=False)
        env = server_env(database_url, tmp_path / "var")
        path = database_url.removeprefix("sqlite:///")
        with AppServer(
            database_url,
            tmp_path / "var",
            workers=1,
            threads=2,
            env={"GLABELLA_SQLITE_TIMEOUT": "1"},
        ) as server:
            status, _, body = save(server, info, "fault-before")
            assert status == 201, body
            before = counts(env)

            holder = sqlite3.connect(path, timeout=1, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
            try:
                started = time.monotonic()
                assert_unavailable_json(*save(server, info, "fault-while-locked"))
                assert time.monotonic() - started < 15  # the busy timeout, not forever
                # One log line, no traceback, nothing of the request's body.
                log = server.log()
                assert log.count("database unavailable") == 1, log
                assert "Traceback" not in log and "Service Unavailable" not in log
                assert "fault-while-locked" not in log
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert counts(env) == before  # nothing half-written

            status, _, body = save(server, info, "fault-after")
            assert status == 201, body
            assert json.loads(body)["points"] and server.alive()
        assert counts(env) == (before[0] + 1, before[1] + len(planned_units(3)))


# --- which failures are a 503, in-process --------------------------------------------------------


def _refused_connection() -> OperationalError:
    """A real psycopg connection failure (nothing listens on the port), as Django raises it."""
    try:
        psycopg.connect(host="127.0.0.1", port=free_port(), dbname="x", connect_timeout=2)
    except psycopg.OperationalError as exc:
        try:
            raise OperationalError(str(exc)) from exc
        except OperationalError as wrapped:
            return wrapped
    raise AssertionError("connected to nothing?")


def _locked_sqlite(tmp_path) -> OperationalError:
    """A real "database is locked" from SQLite, as Django raises it."""
    path = tmp_path / "locked.sqlite3"
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("CREATE TABLE t (x)")
    first.execute("BEGIN IMMEDIATE")
    second = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        second.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        try:
            raise OperationalError(str(exc)) from exc
        except OperationalError as wrapped:
            return wrapped
    finally:
        first.close()
        second.close()
    raise AssertionError("the lock was not held")


def _query_error() -> Exception:
    """A real programming error from this run's database: a table that does not exist."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_here")
    except (OperationalError, ProgrammingError) as exc:
        return exc
    raise AssertionError("the query worked?")


@pytest.mark.django_db(transaction=True)
def test_only_connection_failures_are_a_503(tmp_path):
    assert is_connection_failure(_refused_connection())
    assert is_connection_failure(_locked_sqlite(tmp_path))
    assert is_connection_failure(InterfaceError("connection already closed"))
    # A broken query is a bug to fix, not "try again later": it stays a 500.
    assert not is_connection_failure(_query_error())
    assert not is_connection_failure(ValueError("no"))
    assert not is_connection_failure(OperationalError("raised by hand, no cause"))


@pytest.mark.django_db(transaction=True)
def test_the_503_fits_the_caller_and_a_bug_stays_a_500(tmp_path):
    locked = _locked_sqlite(tmp_path)
    bug = _query_error()

    def failing(exc):
        def view(request):
            raise exc

        return view

    factory = RequestFactory()
    middleware = DatabaseUnavailableMiddleware(lambda r: HttpResponse())

    def answer(request, exc):
        try:
            failing(exc)(request)
        except Exception as raised:
            return middleware.process_exception(request, raised)

    page = answer(factory.get("/patients/"), locked)
    assert page.status_code == 503 and page["Retry-After"] == "30"
    assert MESSAGE in page.content.decode() and "<html" in page.content.decode()
    hx = answer(factory.post("/charting/1/points/", HTTP_HX_REQUEST="true"), locked)
    assert hx.status_code == 503 and hx["X-Glabella-Message"] == MESSAGE
    assert "<html" not in hx.content.decode()
    api = answer(factory.post("/api/v1/sessions"), locked)
    assert api["Content-Type"] == "application/json"
    assert json.loads(api.content)["message"] == MESSAGE
    fhir = answer(factory.get("/fhir/r4/Patient"), locked)
    assert json.loads(fhir.content)["resourceType"] == "OperationOutcome"
    # A programming error is left to Django (a 500, logged with its traceback).
    assert answer(factory.get("/patients/"), bug) is None
    # The connection is usable again for the next request.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


def test_the_503_page_needs_no_database_and_has_no_inline_script_or_style():
    """No django_db mark: had the page touched the database, pytest-django would fail it."""
    from django.template.loader import render_to_string

    html = render_to_string("503.html", {"message": MESSAGE})
    assert MESSAGE in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
