"""Several points added in one change (the API's session and points calls, the chairside save).

One version step, one audit event per point chained in one turn of the audit trail, every point
checked as a single point is, and all or nothing: a refused point names itself and writes
nothing at all.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from glabella.audit.models import AuditEvent
from glabella.audit.services import verify_chain
from glabella.charting import services
from glabella.charting.models import InjectionPoint
from glabella.clinical import protocols


def _draft(world):
    return services.start_session(
        world.actor("injector"),
        world.patient,
        indication="chronic-migraine",
        product_id="botox",
        prescriber=world.users["prescriber"],
    )


def _preempt() -> list[services.NewPoint]:
    return [services.NewPoint.like(s) for s in protocols.get("chronic-migraine-preempt").sites]


def test_thirty_one_points_are_one_change_with_an_audit_event_each(world):
    session = _draft(world)
    before = AuditEvent.objects.count()
    points = services.add_points(world.actor("injector"), session, session.version, _preempt())
    session.refresh_from_db()
    assert session.version == 2  # one step for the whole save
    assert [p.number for p in points] == list(range(1, 32))
    stored = list(InjectionPoint.objects.filter(session=session).order_by("number"))
    assert [(p.number, p.units, p.muscle, p.side) for p in stored] == [
        (p.number, p.units, p.muscle, p.side) for p in points
    ]
    assert sum(p.units for p in stored) == Decimal(155)
    events = list(AuditEvent.objects.order_by("seq")[before:])
    assert [e.object_label for e in events] == [
        f"{world.patient}: point {n} added" for n in range(1, 32)
    ]
    assert [e.detail["point"]["number"] for e in events] == list(range(1, 32))
    assert len({e.seq for e in events}) == 31
    # Chained one after the other, in one turn: the whole trail still verifies.
    assert verify_chain().ok


def test_points_are_numbered_after_those_already_there(world):
    session = _draft(world)
    actor = world.actor("injector")
    services.add_points(actor, session, session.version, _preempt()[:2])
    session.refresh_from_db()
    more = services.add_points(actor, session, session.version, _preempt()[2:4])
    assert [p.number for p in more] == [3, 4]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"units": "abc"}, "units"),
        ({"units": 0}, "units"),
        ({"x": 1, "y": 1}, "x"),
        ({"depth": "deep"}, "depth"),
    ],
)
def test_one_bad_point_refuses_them_all_and_says_which(world, change, field):
    session = _draft(world)
    specs = _preempt()[:5]
    bad = specs[3]
    specs[3] = services.NewPoint(**{**bad.__dict__, **change})
    events, points = AuditEvent.objects.count(), InjectionPoint.objects.count()
    with pytest.raises(services.PointRefused) as refused:
        services.add_points(world.actor("injector"), session, session.version, specs)
    assert refused.value.index == 3
    assert field in refused.value.message_dict
    assert isinstance(refused.value, ValidationError)  # a single point's callers see the same
    session.refresh_from_db()
    assert session.version == 1
    assert (AuditEvent.objects.count(), InjectionPoint.objects.count()) == (events, points)


def test_a_stale_version_refuses_the_whole_save(world):
    session = _draft(world)
    actor = world.actor("injector")
    services.add_points(actor, session, session.version, _preempt()[:1])
    with pytest.raises(services.StaleVersion):
        services.add_points(actor, session, 1, _preempt()[1:3])  # as read before that change
    assert InjectionPoint.objects.filter(session=session).count() == 1


def test_an_empty_list_changes_nothing(world):
    session = _draft(world)
    assert services.add_points(world.actor("injector"), session, session.version, []) == []
    session.refresh_from_db()
    assert session.version == 1


def test_a_signed_session_takes_no_points(consented):
    from glabella.charting.models import SessionLocked
    from glabella.charting.tests.conftest import signed_glabellar

    session = signed_glabellar(consented)
    with pytest.raises(SessionLocked):
        services.add_points(consented.actor("injector"), session, session.version, _preempt()[:1])
