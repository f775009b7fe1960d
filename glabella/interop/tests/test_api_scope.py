"""Another organization's anything is a 404, everywhere, and says nothing.

Driven by the OpenAPI document, so that an operation added later is covered without anyone
remembering to: every operation that names a record in its path is called by every role of
another organization on our real records, and must answer exactly as it answers for an id
that exists nowhere (the same status, the same body): a 404, or the role's own 403 that does
not depend on the id. Ids of ours sent in a body or a query filter are not found either, with
the field named. Nothing of ours changes, and nothing is audited.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from django.test import Client

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership
from glabella.accounts.roles import Role
from glabella.accounts.services import add_member
from glabella.accounts.tokens import create_token
from glabella.audit.models import AuditEvent
from glabella.charting.models import InjectionPoint, TreatmentSession
from glabella.conftest import PASSWORD
from glabella.interop.api.base import NOT_FOUND
from glabella.interop.tests.helpers import api_client
from glabella.interop.tests.test_api_fuzz import seed
from glabella.inventory.models import StockMove, Vial
from glabella.outcomes.models import Assessment, DiaryEntry
from glabella.patients.models import HistoryItem
from glabella.scheduling.models import Appointment

NOWHERE = 987_654_321  # an id no record has
ROLES = [r.value for r in Role]


def outsider_clients(world) -> dict[str, Client]:
    """A token of every role at the other organization (Beta Botox Bar)."""
    boss = Membership.objects.get(user=world.outsider)
    owner = Actor(boss.organization, boss.user, boss.clinic, boss.role)
    clients = {}
    for role in ROLES:
        if role == Role.OWNER:
            m = boss
        else:
            m = add_member(
                owner,
                email=f"{role}@beta.test",
                clinic=boss.clinic,
                role=role,
                password=PASSWORD,
            )
        me = Actor(m.organization, m.user, m.clinic, m.role)
        secret = create_token(me, name=f"beta {role}", membership=m).secret
        clients[role] = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return clients


def bodies(yesterday: str) -> dict[str, dict]:
    """A body that passes the schema, for every write that names a record in its path (the
    lookup must be reached, not a 422 of the schema first)."""
    point = {"area": "forehead", "muscle": "frontalis", "side": "mid", "units": 2}
    return {
        "PATCH /api/v1/patients/{patient_id}": {"phone": "07700 900999"},
        "POST /api/v1/patients/{patient_id}/history": {"kind": "condition", "code": "als"},
        "POST /api/v1/sessions/{session_id}/points": {"version": 1, "points": [point]},
        "POST /api/v1/sessions/{session_id}/overrides": {
            "rule": "session-max",
            "reason": "A long enough clinical reason for the record.",
        },
        "POST /api/v1/sessions/{session_id}/sign": {"version": 1},
        "POST /api/v1/vials/{vial_id}/reconstitute": {"diluent_ml": 2.5},
        "POST /api/v1/vials/{vial_id}/waste": {"units": 1, "reason": "spilt"},
        "PATCH /api/v1/appointments/{appointment_id}": {"notes": "moved"},
        "POST /api/v1/appointments/{appointment_id}/status": {"status": "arrived"},
        "POST /api/v1/patients/{patient_id}/assessments": {
            "scale_id": "hdss",
            "answers": 3,
            "time_point": "baseline",
            "assessed_on": yesterday,
        },
        "POST /api/v1/patients/{patient_id}/diary": {
            "days": [{"day": yesterday, "headache": False}]
        },
    }


def call(client: Client, method: str, url: str, body: dict | None):
    if method == "GET":
        return client.get(url)
    return getattr(client, method.lower())(url, json.dumps(body), content_type="application/json")


def ours(world) -> tuple:
    """What an outsider must never change: counts of our rows, and the audit trail."""
    return (
        HistoryItem.objects.count(),
        TreatmentSession.objects.filter(organization=world.org).values_list("version").first(),
        InjectionPoint.objects.count(),
        Vial.objects.filter(state="sealed").count(),
        StockMove.objects.count(),
        list(Appointment.objects.values_list("status", "version", "notes")),
        Assessment.objects.count(),
        DiaryEntry.objects.count(),
        AuditEvent.objects.count(),
    )


def test_every_operation_on_our_records_answers_an_outsider_as_if_they_did_not_exist(world):
    real = seed(world)
    clients = outsider_clients(world)
    doc = api_client(world, "owner").get("/api/v1/openapi.json").json()
    known = bodies((date.today() - timedelta(days=1)).isoformat())
    before = ours(world)
    checked = []
    for path, operations in doc["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        if not names or names == ["protocol_id"]:  # reference data: the same for everyone
            continue
        for method in operations:
            label = f"{method.upper()} {path}"
            body = known.get(label)
            assert method == "get" or body is not None, f"give {label} a body in bodies()"
            assert all(name in real for name in names), f"seed() has no record for {label}"
            mine = path.format(**{name: real[name] for name in names})
            nowhere = path.format(**dict.fromkeys(names, NOWHERE))
            found_for = []
            for role, client in clients.items():
                got = call(client, method.upper(), mine, body)
                absent = call(client, method.upper(), nowhere, body)
                assert (got.status_code, got.json()) == (absent.status_code, absent.json()), (
                    label,
                    role,
                    got.content,
                    absent.content,
                )
                assert got.status_code in (403, 404), (label, role, got.content)
                if got.status_code == 404:
                    assert got.json()["message"] == NOT_FOUND
                    found_for.append(role)
            assert found_for, f"{label}: every role was refused before the lookup"
            checked.append(label)
    assert len(checked) >= 20, checked
    assert ours(world) == before


@pytest.fixture
def beta(world):
    clients = outsider_clients(world)
    m = Membership.objects.get(user=world.outsider)
    return clients, m.clinic


def refused(response, field):
    assert response.status_code == 404, response.content
    assert response.json()["field"] == field and response.json()["message"] == NOT_FOUND
    return response


def test_our_ids_in_an_outsiders_body_are_not_found_and_the_field_is_named(world, beta):
    real = seed(world)
    clients, their_clinic = beta
    theirs = world.outsider_patient.pk
    point = {"area": "forehead", "muscle": "frontalis", "side": "mid", "units": 2}
    plan = {"product": "botox", "indication": "forehead-lines", "points": [point]}
    injector, desk, owner = clients["injector"], clients["front_desk"], clients["owner"]
    before = ours(world)

    refused(
        call(injector, "POST", "/api/v1/dose-check", {**plan, "patient": real["patient_id"]}),
        "patient",
    )
    refused(
        call(injector, "POST", "/api/v1/sessions", {**plan, "patient": real["patient_id"]}),
        "patient",
    )
    refused(
        call(
            injector,
            "POST",
            "/api/v1/sessions",
            {**plan, "patient": theirs, "vial": real["vial_id"]},
        ),
        "vial",
    )
    refused(
        call(
            desk,
            "POST",
            "/api/v1/patients",
            {
                "given_name": "Eve",
                "family_name": "Spy",
                "date_of_birth": "1990-01-01",
                "home_clinic": world.clinic.pk,
            },
        ),
        "home_clinic",
    )
    refused(
        call(
            owner,
            "POST",
            "/api/v1/stock/receive",
            {
                "clinic_id": world.clinic.pk,
                "product_id": "botox",
                "lot_number": "SPY1",
                "expiry": (date.today() + timedelta(days=100)).isoformat(),
                "vial_units": 100,
                "vial_count": 1,
            },
        ),
        "clinic_id",
    )
    monday = date.today() + timedelta(days=(7 - date.today().weekday()) % 7 or 7)
    booking = {
        "patient_id": theirs,
        "practitioner_id": world.outsider.pk,
        "starts_at": f"{monday.isoformat()}T10:00",
        "kind": "review",
        "clinic_id": their_clinic.pk,
    }
    refused(
        call(desk, "POST", "/api/v1/appointments", {**booking, "patient_id": real["patient_id"]}),
        "patient_id",
    )
    refused(
        call(
            desk,
            "POST",
            "/api/v1/appointments",
            {**booking, "practitioner_id": world.users["injector"].pk},
        ),
        "practitioner_id",
    )
    refused(
        call(desk, "POST", "/api/v1/appointments", {**booking, "recall_id": real["recall_id"]}),
        "recall_id",
    )
    refused(
        call(desk, "POST", "/api/v1/appointments", {**booking, "clinic_id": world.clinic.pk}),
        "clinic_id",
    )
    refused(
        call(injector, "POST", f"/api/v1/patients/{theirs}/assessments", {
            "scale_id": "hdss", "answers": 3, "time_point": "baseline",
            "assessed_on": (date.today() - timedelta(days=1)).isoformat(),
            "session_id": real["session_id"],
        }),
        "session_id",
    )  # fmt: skip
    assert ours(world) == before
    assert not Clinic.objects.filter(organization=world.outsider_org).exclude(pk=their_clinic.pk)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/appointments?patient={patient_id}", "patient"),
        ("/api/v1/appointments?clinic={clinic_id}", "clinic"),
        ("/api/v1/appointments?practitioner={injector_id}", "practitioner"),
        ("/api/v1/recalls?patient={patient_id}", "patient"),
        ("/api/v1/recalls?clinic={clinic_id}", "clinic"),
        ("/api/v1/vials?clinic={clinic_id}", "clinic"),
        ("/api/v1/vials?lot={lot_id}", "lot"),
        ("/api/v1/stock-moves?lot={lot_id}", "lot"),
        ("/api/v1/stock-moves?vial={vial_id}", "vial"),
        ("/api/v1/stock-moves?clinic={clinic_id}", "clinic"),
        ("/api/v1/stock/on-hand?clinic={clinic_id}", "clinic"),
    ],
)
def test_a_list_filtered_by_one_of_our_ids_is_not_found_for_an_outsider(world, beta, url, field):
    real = seed(world)
    ids = {**real, "clinic_id": world.clinic.pk, "injector_id": world.users["injector"].pk}
    clients, _ = beta
    mine = clients["owner"].get(url.format(**ids))
    nowhere = clients["owner"].get(url.format(**dict.fromkeys(ids, NOWHERE)))
    refused(mine, field)
    assert (mine.status_code, mine.json()) == (nowhere.status_code, nowhere.json())
    # ... while our own token finds them.
    assert api_client(world, "owner").get(url.format(**ids)).status_code == 200
