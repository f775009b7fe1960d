"""No patient data in the application's logs, with logging at DEBUG.

The flows that write log lines — a 404, a 403, a 500 (with a PostgreSQL-style constraint
error in it), a search by the patient's name, a failed sign-in, a patient link that does not
exist, an access line as runserver writes it, every SQL statement — run while the real handler
from settings.LOGGING writes into a buffer. The patient's name, date of birth, phone and e-mail
never appear; each request's id does.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from django.urls import include, path, reverse

from glabella.logging_filters import NoPatientData, redact

SECRETS = ["Lovelace", "ada@example.org", "07700 900123", "1985-12-10", "10/12/1985"]


def boom(request):
    raise RuntimeError(
        'duplicate key value violates unique constraint "patients_email"\n'
        "DETAIL:  Key (organization_id, email)=(1, ada@example.org) already exists.\n"
        "Failing row contains (7, Ada, Lovelace, 1985-12-10, 07700 900123)."
    )


urlpatterns = [path("boom/", boom), path("", include("glabella.urls"))]


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The handler settings.LOGGING installs, writing into a buffer, everything at DEBUG."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if any(isinstance(f, NoPatientData) for f in h.filters)]
    assert handlers, "settings.LOGGING no longer puts NoPatientData on the root handler"
    handler = handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    loggers = [root, logging.getLogger("django"), logging.getLogger("django.db.backends")]
    old_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        handler.setStream(old_stream)
        for lg, level in zip(loggers, old_levels, strict=True):
            lg.setLevel(level)


def test_no_patient_data_reaches_the_log(world, settings, log_output):
    settings.ROOT_URLCONF = __name__
    assert world.patient.family_name == "Lovelace"
    ids = []
    owner = world.client("owner")
    connection.force_debug_cursor = True  # Django logs every SQL statement with its values
    try:
        search = owner.get(reverse("patients:list"), {"q": "Lovelace"})
        assert search.status_code == 200 and b"Lovelace" in search.content
        missing = owner.get("/patients/99999999/?q=Lovelace&dob=1985-12-10")
        assert missing.status_code == 404
        ids.append(missing["X-Request-ID"])
        forbidden = world.client("front_desk").get(f"{reverse('audit:log')}?q=ada@example.org")
        assert forbidden.status_code == 403
        ids.append(forbidden["X-Request-ID"])
        crash = world.client("owner")
        crash.raise_request_exception = False
        failed = crash.get("/boom/?q=Lovelace")
        assert failed.status_code == 500
        ids.append(failed["X-Request-ID"])
        Client().post(
            reverse("accounts:login"), {"username": "ada@example.org", "password": "Lovelace1985"}
        )
        Client().get("/my/" + "Q" * 43 + "/diary/?q=Lovelace")
    finally:
        connection.force_debug_cursor = False
    # What runserver writes for each request (WSGIRequestHandler.log_message):
    logging.getLogger("django.server").info(
        '"%s" %s %s', "GET /patients/?q=Ada+Lovelace&phone=07700+900123 HTTP/1.1", "200", "9"
    )

    text = log_output.getvalue()
    # The flows were logged (so the test can fail) ...
    assert "Not Found: /patients/99999999/" in text
    assert "Forbidden" in text and "Internal Server Error: /boom/" in text
    assert "RuntimeError" in text and "SQL statement not logged" in text
    assert "GET /patients/?[query hidden] HTTP/1.1" in text
    # ... each with its request id ...
    for request_id in ids:
        assert f"[request {request_id}]" in text
    # ... and without a trace of the patient.
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} reached the log:\n{text}"
    assert "Key (organization_id, email)=(…)" in text
    assert "Q" * 43 not in text


def test_redact_takes_out_queries_links_and_constraint_values():
    assert redact("GET /patients/?q=Ada HTTP/1.1") == "GET /patients/?[query hidden] HTTP/1.1"
    assert redact("Not Found: /my/abcDEF123/diary/") == "Not Found: /my/[link]/diary/"
    assert redact("/my/staff/patients/3/") == "/my/staff/patients/3/"
    assert redact("GET /scheduling/feed/xyz.ics") == "GET /scheduling/feed/[link].ics"
    assert redact("Key (name, dob)=(Ada (Countess), 1815-12-10)") == "Key (name, dob)=(…)"
    assert redact("Is this right? Yes.") == "Is this right? Yes."
