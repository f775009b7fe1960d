"""Schema-based fuzzing of the whole REST API (schemathesis, in-process over WSGI).

Every operation of ``/api/v1/openapi.json`` is called with generated requests, valid and
invalid, with an owner's and then a prescriber's bearer token, on a seeded organization whose
real ids the requests use half of the time (the other half: ids that do not exist, or are
another organization's). Each answer must

- not be a server error (``not_a_server_error``),
- have a status code the document declares for the operation (``status_code_conformance``),
- have the declared content type (``content_type_conformance``),
- match the declared schema of its status (``response_schema_conformance``).

Derandomized (the same requests every run) and sized to run in well under a minute. A failure
prints the request to replay (a ``curl`` line) and the check that failed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from glabella.charting import services as charting_services
from glabella.clinical import protocols
from glabella.interop.tests.helpers import token_for
from glabella.inventory import services as stock
from glabella.outcomes import assessments, diary
from glabella.scheduling import booking
from glabella.scheduling.models import Recall

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10  # generated requests per operation and role (plus one known-good request)


def _next_weekday_10(world) -> datetime:
    today = datetime.now(ZoneInfo(world.clinic.timezone)).date()
    day = today + timedelta(days=(7 - today.weekday()) % 7 or 7)  # next Monday
    return datetime(day.year, day.month, day.day, 10, tzinfo=ZoneInfo(world.clinic.timezone))


def seed(world) -> dict[str, Any]:
    """A little of everything, through the services; the real ids by path-parameter name."""
    owner, injector = world.actor("owner"), world.actor("injector")
    receipt = stock.receive(
        owner,
        world.clinic,
        product_id="botox",
        lot_number="FUZZ1",
        expiry=date.today() + timedelta(days=300),
        vial_units=100,
        vial_count=4,
    )
    opened = stock.reconstitute(injector, receipt.vials[0], "2.5")
    appointment = booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=_next_weekday_10(world),
        kind="treatment",
    )
    recall = Recall.objects.create(  # recalls are made by the nightly refresh; one is enough
        organization=world.org,
        patient=world.patient,
        indication="glabellar-lines",
        kind="retreatment",
        basis_on=date.today() - timedelta(days=100),
        due_on=date.today() + timedelta(days=20),
    )
    session = charting_services.start_session(
        injector,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
    )
    assessment = assessments.record(
        injector,
        world.patient,
        "hit-6",
        [6, 8, 10, 11, 13, 6],
        time_point="baseline",
        assessed_on=date.today() - timedelta(days=1),
    )
    diary.record_day(injector, world.patient, date.today() - timedelta(days=1), headache=False)
    return {
        "lot_id": receipt.lot.pk,
        "vial_id": opened.pk,
        "sealed_vial_id": receipt.vials[1].pk,
        "appointment_id": appointment.pk,
        "recall_id": recall.pk,
        "patient_id": world.patient.pk,
        "session_id": session.pk,
        "assessment_id": assessment.pk,
        "protocol_id": protocols.all()[0].id,  # type: ignore[dict-item]
    }


def valid_requests(world, real: dict[str, Any]) -> dict[str, tuple[dict, dict, set[str]]]:
    """For the writes of the stock, schedule and outcomes routers: one request that should
    succeed (path parameters, body, the roles allowed), so that their success answers are
    checked against the schema too, not only their refusals."""
    yesterday = date.today() - timedelta(days=1)
    appointment = {"appointment_id": real["appointment_id"]}
    patient = {"patient_id": real["patient_id"]}
    both = {"owner", "prescriber"}
    return {
        "POST /api/v1/stock/receive": (
            {},
            {
                "product_id": "dysport",
                "lot_number": "FUZZ2",
                "expiry": (date.today() + timedelta(days=200)).isoformat(),
                "vial_units": 300,
                "vial_count": 2,
            },
            both,
        ),
        "POST /api/v1/vials/{vial_id}/reconstitute": (
            {"vial_id": real["sealed_vial_id"]},
            {"diluent_ml": 2.5},
            {"prescriber"},
        ),
        "POST /api/v1/vials/{vial_id}/waste": (
            {"vial_id": real["vial_id"]},
            {"units": 0.5, "reason": "drawn up and spilt"},
            {"prescriber"},
        ),
        "POST /api/v1/appointments": (
            {},
            {
                "patient_id": real["patient_id"],
                "practitioner_id": world.users["injector"].pk,
                "starts_at": (_next_weekday_10(world) + timedelta(days=1)).isoformat(),
                "kind": "review",
            },
            both,
        ),
        "PATCH /api/v1/appointments/{appointment_id}": (
            appointment,
            {"notes": "prefers the morning"},
            both,
        ),
        "POST /api/v1/appointments/{appointment_id}/status": (
            appointment,
            {"status": "arrived"},
            both,
        ),
        "POST /api/v1/patients/{patient_id}/assessments": (
            patient,
            {
                "scale_id": "hdss",
                "answers": 3,
                "time_point": "baseline",
                "assessed_on": yesterday.isoformat(),
            },
            both,
        ),
        "POST /api/v1/patients/{patient_id}/diary": (
            patient,
            {"days": [{"day": yesterday.isoformat(), "headache": True, "severity": 2}]},
            both,
        ),
    }


def path_names(operation) -> list[str]:
    return re.findall(r"{(\w+)}", operation.path)


def pinned_ids(operation, real: dict[str, Any]) -> dict[str, Any] | None:
    """The seeded records' ids for the operation's path, if there are all of them."""
    names = path_names(operation)
    if not names or not all(name in real for name in names):
        return None
    return {name: real[name] for name in names}


def cases(operation, real: dict[str, Any]) -> st.SearchStrategy:
    """Generated requests, valid and invalid, and generated ones about the seeded records."""
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    pinned = pinned_ids(operation, real)
    if pinned is not None:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned))
    return st.one_of(strategies)


def known_good(operation, real: dict[str, Any], valid: tuple[dict, dict, set[str]] | None):
    """The request that should succeed: the known-good write, or a read of a seeded record."""
    if valid is not None:
        path, body, _ = valid
        return operation.Case(path_parameters=path, body=body, media_type="application/json")
    if operation.method.upper() == "GET":
        pinned = pinned_ids(operation, real)
        if pinned is not None or not path_names(operation):
            return operation.Case(path_parameters=pinned or {})
    return None


def call_all(strategy: st.SearchStrategy, headers: dict[str, str], seen: set[int]) -> None:
    """Send every request STRATEGY generates; each answer must pass CHECKS."""

    @FUZZ
    @given(case=strategy)
    def run(case) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen.add(response.status_code)

    run()


def fuzz(world, role: str) -> list[str]:
    """Run every operation; the failures, one readable paragraph each."""
    real = seed(world)
    valid = valid_requests(world, real)
    headers = {"Authorization": f"Bearer {token_for(world, role)}"}
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
    failures: list[str] = []
    answered: dict[str, set[int]] = {}
    for result in api.get_all_operations():
        operation = result.ok()
        seen = answered.setdefault(operation.label, set())
        try:
            good = known_good(operation, real, valid.get(operation.label))
            if good is not None:
                seen.add(good.call_and_validate(headers=headers, checks=CHECKS).status_code)
            call_all(cases(operation, real), headers, seen)
        except (Exception, BaseExceptionGroup) as exc:  # fuzz every operation, report all
            failures.append(f"{operation.label} ({role}):\n{exc}")
    assert len(answered) >= 30, f"only {len(answered)} operations in the OpenAPI document"
    assert set(valid) <= set(answered), set(valid) - set(answered)
    # A fuzzer that is only ever refused proves little: every read, and every known-good
    # write the role may make, must have succeeded at least once.
    expect_success = {label for label in answered if label.startswith("GET ")}
    expect_success |= {label for label, (_, _, roles) in valid.items() if role in roles}
    for label in sorted(expect_success):
        if not any(200 <= status < 300 for status in answered[label]):
            failures.append(f"{label} ({role}): never succeeded; answers {sorted(answered[label])}")
    return failures


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing request is printed
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def one_connection():
    """Requests go straight to the WSGI handler, whose end-of-request signal closes the
    database connection, and with it the test's transaction on PostgreSQL. Django's test
    client switches that off while it calls the app; so does this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("role", ["owner", "prescriber"])
def test_every_answer_is_within_the_schema_and_none_is_a_server_error(world, role, one_connection):
    failures = fuzz(world, role)
    assert not failures, "\n\n".join(failures)
