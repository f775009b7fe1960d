"""Two people editing one draft at the same moment never lose an update.

Real concurrency: each side runs in its own thread with its own database connection, on a
transactional database (SQLite in WAL mode with immediate transactions, or PostgreSQL with
row locks, whichever this run uses), released together by a barrier and repeated a few times.

- Two points added at once: each is either saved (and then it is there, with its audit row) or
  refused as stale with the chart as it is now; redone on the fresh version, both are kept.
  Nothing acknowledged is ever missing, and no two points share a number.
- The same point changed at once: exactly one change wins; the other is refused with
  "Someone else changed this session ..." and the current chart, never silently overwritten.
- Signing while another adds a point: either the point is in the signed record or the add
  was refused; never an acknowledged point missing from what was signed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import close_old_connections, connections
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.charting import services
from glabella.charting.models import InjectionPoint, SessionLocked, Status, TreatmentSession
from glabella.consent import services as consent_services
from glabella.interop.tests.helpers import api_client
from glabella.patients import services as patient_services
from glabella.testing import signature_png

ROUNDS = 4
HX = {"HTTP_HX_REQUEST": "true"}
PROCERUS = {"diagram": "face-front", "x": "50", "y": "35"}
LEFT_CORRUGATOR = {"diagram": "face-front", "x": "62", "y": "28"}
STALE_WORDS = "Someone else changed this session"


def race(*calls: Callable[[], Any]) -> list[tuple[str, Any]]:
    """Run CALLS at the same moment, each in its own thread (its own connection):
    [("ok", result) or ("error", exception), ...] in the order given."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any]] = [("error", RuntimeError("did not run"))] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            close_old_connections()
            barrier.wait(timeout=30)
            results[i] = ("ok", call())
        except Exception as exc:
            results[i] = ("error", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def fresh(pk: int) -> TreatmentSession:
    return TreatmentSession.objects.get(pk=pk)


def start(world, *, signable: bool = False, patient=None) -> TreatmentSession:
    session = services.start_session(
        world.actor("injector"),
        patient or world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    if signable:
        session = services.update_details(
            world.actor("injector"),
            session,
            session.version,
            {"lot_number": "C1234AB", "lot_expiry": date.today() + timedelta(days=200)},
        )
    return session


def consented_patient(world, n: int):
    """A new patient with a valid cosmetic consent (one per signed session: a second
    glabellar treatment the same day would be blocked by the 90-day interval)."""
    patient = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": f"Race{n}", "family_name": "Signer", "date_of_birth": date(1980, 1, n)},
    )
    consent_services.ensure_default_templates(world.org)
    consent_services.take_consent(
        world.actor("injector"),
        patient,
        "cosmetic",
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )
    return patient


def add(world, role: str, pk: int, version: int, spot: dict[str, str], units: str):
    def call() -> InjectionPoint:
        return services.add_point(
            world.actor(role), fresh(pk), version, units=units, depth="IM", **spot
        )

    return call


def point_audited(session_pk: int, number: int) -> bool:
    return AuditEvent.objects.filter(
        object_type="charting.treatmentsession",
        object_id=str(session_pk),
        object_label__endswith=f"point {number} added",
    ).exists()


def test_two_points_added_at_once_are_both_kept_or_the_late_one_is_told(live_world):
    world = live_world
    for _ in range(ROUNDS):
        session = start(world)
        base = list(session.points.values_list("number", flat=True))
        outcomes = race(
            add(world, "injector", session.pk, session.version, PROCERUS, "3"),
            add(world, "prescriber", session.pk, session.version, LEFT_CORRUGATOR, "7"),
        )
        kinds = sorted(kind for kind, _ in outcomes)
        assert kinds in (["error", "ok"], ["ok", "ok"]), outcomes
        for (kind, value), (role, units) in zip(
            outcomes, [("injector", "3"), ("prescriber", "7")], strict=True
        ):
            if kind == "ok":  # acknowledged: it is there, with its units and its audit row
                stored = InjectionPoint.objects.get(session=session, number=value.number)
                assert stored.units == Decimal(units) and not stored.removed
                assert point_audited(session.pk, value.number)
            else:  # told, with the version to redo it on; nothing of it written
                assert isinstance(value, services.StaleVersion), value
                assert STALE_WORDS in str(value)
                assert value.current == fresh(session.pk).version
                redone = add(
                    world,
                    role,
                    session.pk,
                    value.current,
                    PROCERUS if role == "injector" else LEFT_CORRUGATOR,
                    units,
                )()
                assert redone.units == Decimal(units)
        numbers = list(
            InjectionPoint.objects.filter(session=session).values_list("number", flat=True)
        )
        assert len(numbers) == len(set(numbers)) == len(base) + 2
        added = InjectionPoint.objects.filter(session=session).exclude(number__in=base)
        assert sorted(p.units for p in added) == [Decimal(3), Decimal(7)]


def test_the_same_point_changed_at_once_one_wins_the_other_is_refused_never_overwritten(
    live_world,
):
    world = live_world
    for _ in range(ROUNDS):
        session = start(world)

        def change(role: str, units: str, pk: int = session.pk, v: int = session.version):
            return lambda: services.update_point(world.actor(role), fresh(pk), v, 1, units=units)

        outcomes = race(change("injector", "5"), change("prescriber", "6"))
        winners = [value for kind, value in outcomes if kind == "ok"]
        losers = [value for kind, value in outcomes if kind == "error"]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert isinstance(losers[0], services.StaleVersion) and STALE_WORDS in str(losers[0])
        # What is stored is the winner's change, and the version moved on exactly once.
        point = InjectionPoint.objects.get(session=session, number=1)
        assert point.units == winners[0].units
        assert fresh(session.pk).version == session.version + 1
        changed = AuditEvent.objects.filter(
            object_id=str(session.pk), object_label__endswith="point 1 changed"
        )
        assert changed.count() == 1


def test_the_same_point_changed_at_once_on_the_page_the_loser_sees_the_current_chart(
    live_world,
):
    world = live_world
    clients = {role: world.client(role) for role in ("injector", "prescriber")}
    session = start(world)
    url = reverse("charting:point_update", args=[session.pk, 1])

    def post(role: str, units: str):
        return lambda: clients[role].post(url, {"version": session.version, "units": units}, **HX)

    outcomes = race(post("injector", "5"), post("prescriber", "6"))
    statuses = sorted(value.status_code for kind, value in outcomes if kind == "ok")
    assert statuses == [200, 409], outcomes
    stored = InjectionPoint.objects.get(session=session, number=1).units
    loser = next(value for kind, value in outcomes if value.status_code == 409)
    text = loser.content.decode()
    assert STALE_WORDS in text
    # The refused page shows the chart as it is now: the winner's units in the total.
    assert f"{int(stored) + 16} U" in text


def test_signing_while_another_adds_a_point_never_loses_the_point(live_world):
    world = live_world
    for i in range(ROUNDS):
        session = start(world, signable=True, patient=consented_patient(world, i + 1))

        def sign(pk: int = session.pk, v: int = session.version):
            return services.sign(world.actor("prescriber"), fresh(pk), v)

        # Alternate who is released first, so both orders are tried.
        calls = [sign, add(world, "injector", session.pk, session.version, PROCERUS, "2")]
        if i % 2:
            calls.reverse()
        outcomes = race(*calls)
        if i % 2:
            outcomes.reverse()
        (sign_kind, signed), (add_kind, added) = outcomes
        after = fresh(session.pk)
        if add_kind == "ok":
            # The point was acknowledged: it is in the record, signed or still a draft.
            stored = InjectionPoint.objects.get(session=session, number=added.number)
            assert stored.units == Decimal(2) and point_audited(session.pk, added.number)
            if sign_kind == "ok":
                assert after.status == Status.SIGNED
                assert after.signed_at is not None
            else:
                assert isinstance(signed, services.StaleVersion), signed
                assert after.status == Status.DRAFT
        else:
            # Refused: the session was signed first; the record is as signed.
            assert sign_kind == "ok", outcomes
            assert isinstance(added, SessionLocked | services.StaleVersion), added
            assert after.status == Status.SIGNED
            assert InjectionPoint.objects.filter(session=session).count() == 5
        assert (sign_kind, add_kind) != ("error", "error"), outcomes


def test_points_sent_through_the_api_at_once_are_kept_or_refused_with_409(live_world):
    world = live_world
    clients = {role: api_client(world, role) for role in ("injector", "prescriber")}
    for _ in range(ROUNDS):
        session = start(world)
        base = session.points.count()
        url = f"/api/v1/sessions/{session.pk}/points"

        def post(role: str, units: int, v: int = session.version, url: str = url):
            point = {"area": "glabella", "muscle": "corrugator", "side": "L", "units": units}
            point.update(diagram="face-front", x=62, y=28)
            body = json.dumps({"version": v, "points": [point]})
            return lambda: clients[role].post(url, body, content_type="application/json")

        outcomes = race(post("injector", 3), post("prescriber", 7))
        kept = []
        for kind, response in outcomes:
            assert kind == "ok", response
            assert response.status_code in (200, 409), response.content
            if response.status_code == 200:
                kept.append(response.json()["points"][-1])
            else:
                assert response.json()["current_version"] == fresh(session.pk).version
        assert kept, "at least one of the two is saved"
        stored = {p.number: p.units for p in InjectionPoint.objects.filter(session=session)}
        assert len(stored) == base + len(kept)
        for point in kept:
            assert stored[point["number"]] == Decimal(point["units"])


def test_a_refused_change_writes_nothing(live_world):
    """The loser of a race leaves no trace: no point, no audit row, no version bump."""
    world = live_world
    role = "injector"
    session = start(world)
    services.update_point(world.actor(role), session, session.version, 1, units="5")
    before = (
        fresh(session.pk).version,
        InjectionPoint.objects.filter(session=session).count(),
        AuditEvent.objects.count(),
    )
    with pytest.raises(services.StaleVersion):
        add(world, role, session.pk, session.version, PROCERUS, "3")()
    assert before == (
        fresh(session.pk).version,
        InjectionPoint.objects.filter(session=session).count(),
        AuditEvent.objects.count(),
    )
