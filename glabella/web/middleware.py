"""When the database cannot be reached: a clear 503 in words, never a 500 or a stack trace.

``DatabaseUnavailableMiddleware`` turns a *connection-level* database failure into a 503 with
``Retry-After``:

- PostgreSQL: the server refuses the connection, drops it ("server closed the connection
  unexpectedly"), is shutting down or starting up, or has no connection slot left
  (SQLSTATE classes 08, 57P and 53, and client-side connection errors that carry no SQLSTATE);
  Django's ``InterfaceError`` ("connection already closed");
- SQLite: "database is locked" after the busy timeout (``GLABELLA_SQLITE_TIMEOUT``), "unable to
  open database file", a disk I/O error.

Anything else — a missing table, a broken query, an integrity error — is a programming error
or a data problem and stays a 500: it must be seen and fixed, not hidden as "try again".

The answer fits the caller: the page ``503.html`` (it touches no database: no session, no
user, no messages), a short fragment for htmx requests (with the message also in the
``X-Glabella-Message`` header, which the charting page shows), the API's JSON error shape under
``/api/``, and a FHIR ``OperationOutcome`` under ``/fhir/``. The broken connection is closed,
so the next request opens a new one: the server recovers by itself when the database comes
back, without a restart. One log line per failure: the path and the kind of failure, never
a query, its parameters or a request body (no patient data in logs).

The REST API catches every exception itself (its own JSON 500); its ``DatabaseError`` handler
(glabella/interop/api/core.py) gives the same 503 through ``unavailable_response``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

log = logging.getLogger("glabella.database")

MESSAGE = (
    "The clinic database cannot be reached right now. Nothing you just did was saved. "
    "Please try again in a minute; if this goes on, tell whoever looks after Glabella."
)
RETRY_AFTER_SECONDS = 30

# PostgreSQL SQLSTATE classes that mean "the connection or the server", not "your query".
_PG_CONNECTION_STATES = ("08", "57P", "53")
# SQLite's words for "busy or not there" (sqlite3.OperationalError has no code before 3.11).
_SQLITE_WORDS = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)


def is_connection_failure(exc: BaseException) -> bool:
    """True when EXC says the database cannot be reached or used right now (connection
    refused or lost, server shutting down, SQLite locked past its timeout or not openable);
    False for a programming error (a bad query, a missing table) or a data problem."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError | sqlite3.OperationalError):
        return False
    cause = exc.__cause__ if isinstance(exc, OperationalError) else exc
    if isinstance(cause, sqlite3.Error) or isinstance(exc, sqlite3.Error):
        text = str(cause or exc).lower()
        return any(words in text for words in _SQLITE_WORDS)
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is None:
        # psycopg raises OperationalError without a SQLSTATE for client-side connection
        # failures (refused, timed out, closed by the server); a server-side error always
        # carries one.
        return _is_psycopg_error(cause)
    return str(sqlstate).startswith(_PG_CONNECTION_STATES)


def _is_psycopg_error(exc: BaseException | None) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - SQLite-only installation
        return False
    return isinstance(exc, psycopg.Error)


def _close_broken_connections() -> None:
    """Close every connection so the next request opens a fresh one."""
    for conn in connections.all(initialized_only=True):
        with contextlib.suppress(Exception):
            conn.close()


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 for REQUEST (page, htmx fragment, API JSON or FHIR OperationOutcome)."""
    # One line: the method, the path (never its query string), the kind of failure.
    log.warning(
        "database unavailable, answered 503: %s %s (%s)",
        request.method,
        request.path,
        type(exc.__cause__ or exc).__name__,
    )
    _close_broken_connections()
    path = request.path
    if path.startswith("/api/"):
        body = {"message": MESSAGE, "field": None, "errors": [{"field": None, "message": MESSAGE}]}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json")
    elif path.startswith("/fhir/"):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "transient", "diagnostics": MESSAGE}],
        }
        response = HttpResponse(
            json.dumps(outcome), status=503, content_type="application/fhir+json"
        )
    elif path == "/healthz":
        body = {"status": "error", "database": "unreachable", "reason": MESSAGE}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json")
    elif request.headers.get("HX-Request") == "true":
        response = HttpResponse(
            render_to_string("web/_database_unavailable.html", {"message": MESSAGE}),
            status=503,
        )
        response["X-Glabella-Message"] = MESSAGE
    else:
        response = HttpResponse(render_to_string("503.html", {"message": MESSAGE}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # type: ignore[attr-defined]  # (our one line above)
    return response


class DatabaseUnavailableMiddleware:
    """A 503 for connection-level database failures raised by a view or by the middleware
    inside this one (sessions, authentication, memberships)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        failure = getattr(request, "_glabella_database_failure", None)
        if failure is not None and response.status_code >= 500:
            # An inner middleware's failure, already turned into a 500 by Django.
            return unavailable_response(request, failure)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if is_connection_failure(exc):
            return unavailable_response(request, exc)
        return None


def _remember_failure(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``got_request_exception``: note a connection failure raised outside a view (where
    ``process_exception`` does not see it) for the middleware to answer with a 503."""
    import sys

    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_connection_failure(exc):
        request._glabella_database_failure = exc  # type: ignore[attr-defined]


class _NotConnectionFailures(logging.Filter):
    """On ``django.request``: drop Django's own "Internal Server Error" record (with its
    traceback) for a connection failure that the middleware answers with a 503 and logs in
    one line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not is_connection_failure(exc)


def connect_signals() -> None:
    """From ``WebConfig.ready``: catch connection failures raised outside views, and keep
    Django's own traceback record of them out of the log (the middleware logs one line)."""
    from django.core.signals import got_request_exception

    got_request_exception.connect(_remember_failure, dispatch_uid="glabella-database-failure")
    logging.getLogger("django.request").addFilter(_NotConnectionFailures())
