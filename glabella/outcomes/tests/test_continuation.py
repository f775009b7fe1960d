"""Continue or stop, on synthetic diaries: a 50 % responder, a NICE-only (30-49 %) responder,
a non-responder who should stop, a diary too thin to judge; and the prescriber's decision."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from glabella.audit.models import AuditEvent
from glabella.outcomes import continuation
from glabella.outcomes.models import ContinuationDecision, Decision
from glabella.outcomes.tests.test_diary_service import fill, session

FIRST = date(2025, 1, 6)
CYCLE = 84  # PREEMPT: every 12 weeks


def _treated(world, cycles: int, baseline: int, per_cycle: list[int]) -> date:
    """Sessions every 12 weeks from FIRST, a full baseline diary at BASELINE headache days per
    28, and each cycle's diary at its PER_CYCLE rate. Returns 'today' (the end of the diary)."""
    fill(world, FIRST - timedelta(days=28), 28, baseline)
    for n in range(cycles):
        session(world, FIRST + timedelta(days=n * CYCLE))
    for n, rate in enumerate(per_cycle):
        fill(world, FIRST + timedelta(days=n * CYCLE), CYCLE, rate)
    return FIRST + timedelta(days=len(per_cycle) * CYCLE - 1)


def test_a_fifty_percent_responder_continues(world):
    today = _treated(world, 3, 20, [12, 8, 6])
    after2, after3 = continuation.figures(world.patient, today)
    assert after2.ready and after2.after_cycles == 2
    assert (after2.baseline, after2.follow_up) == (Decimal("20.0"), Decimal("8.0"))
    assert after2.reduction_pct == Decimal("60.0")
    assert after2.responder is True and after2.nice is True and after2.stop_suggested is False
    assert after2.stop_text.startswith("Continue")
    assert "S16" in after2.responder_source and "S19" in after2.nice_source
    assert after3.ready and after3.follow_up == Decimal("6.0") and after3.reduction_pct == 70


def test_a_thirty_to_fifty_percent_reduction_meets_nice_but_not_the_trial_rule(world):
    today = _treated(world, 3, 20, [16, 12, 13])
    after2, after3 = continuation.figures(world.patient, today)
    assert after2.reduction_pct == Decimal("40.0")
    assert after2.responder is False and after2.nice is True and after2.stop_suggested is False
    assert after3.reduction_pct == Decimal("35.0") and after3.nice is True


def test_a_non_responder_after_two_cycles_should_stop(world):
    today = _treated(world, 2, 20, [18, 16])
    after2, after3 = continuation.figures(world.patient, today)
    assert after2.reduction_pct == Decimal("20.0")
    assert after2.responder is False and after2.nice is False and after2.stop_suggested is True
    assert after2.stop_text.startswith("Stop suggested")
    assert "NICE TA260" in after2.stop_text and after2.stop_source
    assert any("current one" in c for c in after2.caveats)
    assert not after3.ready and "2 cycles given so far" in after3.note


def test_exactly_thirty_percent_is_enough_for_nice(world):
    today = _treated(world, 2, 20, [15, 14])
    after2 = continuation.figures(world.patient, today)[0]
    assert after2.reduction_pct == Decimal("30.0") and after2.nice and not after2.stop_suggested


def test_a_thin_baseline_is_said_in_words_without_a_verdict(world):
    fill(world, FIRST - timedelta(days=10), 10, 8)  # only 10 of the 28 baseline days
    session(world, FIRST)
    session(world, FIRST + timedelta(days=CYCLE))
    fill(world, FIRST, 2 * CYCLE, 5)
    after2 = continuation.figures(world.patient, FIRST + timedelta(days=2 * CYCLE - 1))[0]
    assert not after2.ready
    assert after2.responder is None and after2.stop_suggested is None
    assert "too thin to judge" in after2.note and "Only 10 of 28 days recorded" in after2.note


def test_no_diary_in_a_cycle_is_said_in_words(world):
    fill(world, FIRST - timedelta(days=28), 28, 20)
    session(world, FIRST)
    session(world, FIRST + timedelta(days=CYCLE))
    after2 = continuation.figures(world.patient, FIRST + timedelta(days=CYCLE + 30))[0]
    assert not after2.ready and "No diary day is recorded in cycle 2" in after2.note


def test_before_two_cycles_there_is_nothing_to_judge(world):
    assert "No chronic migraine treatment" in continuation.figures(world.patient, FIRST)[0].note
    session(world, FIRST)
    steps = continuation.figures(world.patient, FIRST + timedelta(days=10))
    assert [s.ready for s in steps] == [False, False]
    assert "1 cycle given so far" in steps[0].note


# --- the decision -----------------------------------------------------------------------------


def test_the_prescriber_records_a_decision_with_the_figures_shown(world):
    today = _treated(world, 2, 20, [18, 16])
    row = continuation.record_decision(
        world.actor("prescriber"),
        world.patient,
        after_cycles=2,
        decision=Decision.STOP,
        reason="Less than 30% fewer headache days after two cycles.",
        today=today,
    )
    row.refresh_from_db()
    assert row.decided_on == today and row.decided_by == world.users["prescriber"]
    step = row.figures["steps"][0]
    assert step["reduction_pct"] == "20.0" and step["stop_suggested"] is True
    assert row.figures["cycles_given"] == 2
    event = AuditEvent.objects.get(object_type="outcomes.continuationdecision")
    assert event.detail["decision"] == "stop" and event.detail["figures"][0]["nice_30"] is False


def test_stopping_without_a_reason_is_refused(world):
    with pytest.raises(continuation.DecisionRefused) as caught:
        continuation.record_decision(
            world.actor("prescriber"), world.patient, after_cycles=2, decision="stop", reason=" "
        )
    assert caught.value.field == "reason" and "reason for stopping" in str(caught.value)
    assert not ContinuationDecision.objects.exists()


def test_continuing_needs_no_reason(world):
    row = continuation.record_decision(
        world.actor("prescriber"), world.patient, after_cycles=3, decision="continue", reason=""
    )
    assert row.decision == Decision.CONTINUE and row.after_cycles == 3


@pytest.mark.parametrize("role", ["owner", "injector", "front_desk", "auditor"])
def test_only_a_prescriber_decides(world, role):
    with pytest.raises(PermissionDenied):
        continuation.record_decision(
            world.actor(role), world.patient, after_cycles=2, decision="continue", reason="ok"
        )
    assert not ContinuationDecision.objects.exists()


def test_another_organizations_patient_is_refused(world):
    with pytest.raises(PermissionError):
        continuation.record_decision(
            world.actor("prescriber"),
            world.outsider_patient,
            after_cycles=2,
            decision="continue",
            reason="",
        )


def test_more_headache_days_than_at_baseline_is_said_as_a_rise(world):
    today = _treated(world, 2, 10, [12, 14])
    after2 = continuation.figures(world.patient, today)[0]
    assert after2.reduction_pct == Decimal("-40.0") and after2.increase_pct == Decimal("40.0")
    assert after2.stop_suggested
    assert after2.stop_text == (
        "Stop suggested: headache days rose by 40.0% after 2 cycles instead of falling by 30% "
        "(NICE TA260)"
    )
