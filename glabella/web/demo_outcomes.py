"""Demo outcomes: what the clinic measured after the demo treatments, all through the services.

- the chronic-migraine patients kept a headache diary from 4 weeks before their first PREEMPT
  cycle (copied from paper, the last weeks from their own pages), and answered HIT-6 at
  baseline and before each cycle and MIDAS at baseline: one responds well (>= 50 % fewer
  headache days), one meets only the NICE 30 % rule, one does not respond, one responds;
- the cosmetic patients had their frown lines graded at maximum contraction before treatment
  and at the two-week review;
- some cosmetic patients reported when movement came back (the duration curve);
- three side effects: a bruise, a brow ptosis, and one serious event still to be reported.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from glabella.accounts.actor import Actor
from glabella.charting.models import Status, TreatmentSession
from glabella.outcomes import adverse, assessments, continuation, durations
from glabella.outcomes import diary as diaries
from glabella.outcomes.models import (
    AdverseKind,
    AdverseOutcome,
    Contraction,
    Decision,
    Rater,
    SeriousCriterion,
    Severity,
    TimePoint,
    Via,
)
from glabella.patients.models import Patient

# Headache days per 28 days: at baseline, then after each cycle (the demo's four patients).
MIGRAINE_COURSES: tuple[tuple[int, ...], ...] = (
    (20, 14, 9, 7),  # a responder: 65 % fewer headache days after two cycles
    (18, 15, 12, 12),  # meets only the NICE 30 % rule
    (19, 18, 18, 17),  # does not respond: the stop rule applies
    (16, 11, 8, 8),  # a responder
)


def load(rng: random.Random, london: Actor, leeds: Actor, prescriber: Actor, today: date) -> None:
    signed = TreatmentSession.objects.for_org(london.organization).filter(
        status__in=(Status.SIGNED, Status.AMENDED)
    )
    migraine = _patients(signed.filter(indication="chronic-migraine"))
    cosmetic = _patients(signed.filter(indication="glabellar-lines"))
    for patient, course in zip(migraine, MIGRAINE_COURSES, strict=False):
        _migraine_outcomes(rng, leeds, patient, course, today)
    if migraine:
        continuation.record_decision(
            prescriber,
            migraine[0],
            after_cycles=2,
            decision=Decision.CONTINUE,
            reason="Headache days down by more than half; patient keen to continue.",
            today=today,
        )
    for n, patient in enumerate(cosmetic):
        _cosmetic_outcomes(rng, london, patient, n, today)
    _side_effects(london, leeds, cosmetic, migraine, today)


def _patients(sessions: object) -> list[Patient]:
    ids = list(dict.fromkeys(sessions.order_by("patient_id").values_list("patient_id", flat=True)))  # type: ignore[attr-defined]
    # scoped: demo loader: ids of its own organization's patients
    return list(Patient.objects.filter(pk__in=ids).order_by("pk"))


def _cycles(patient: Patient, indication: str) -> list[TreatmentSession]:
    return list(
        TreatmentSession.objects.filter(
            patient=patient, indication=indication, status__in=(Status.SIGNED, Status.AMENDED)
        ).order_by("treated_on")
    )


def _migraine_outcomes(
    rng: random.Random, actor: Actor, patient: Patient, course: tuple[int, ...], today: date
) -> None:
    cycles = _cycles(patient, "chronic-migraine")
    starts = [cycles[0].treated_on - timedelta(days=28)] + [s.treated_on for s in cycles]
    ends = [*starts[1:], today]
    for window, (start, end) in enumerate(zip(starts, ends, strict=True)):
        per_28 = course[min(window, len(course) - 1)]
        day = start
        while day < end:
            block = [day + timedelta(days=i) for i in range(28) if day + timedelta(days=i) < end]
            headache_days = set(rng.sample(block, min(len(block), round(per_28 * len(block) / 28))))
            for d in block:
                _diary_day(rng, actor, patient, d, d in headache_days, today)
            day += timedelta(days=28)
    # HIT-6 at baseline and before each next cycle; MIDAS at baseline.
    for n, start in enumerate(starts[1:]):
        impact = course[min(n, len(course) - 1)]
        answer = 13 if impact >= 18 else 11 if impact >= 14 else 10 if impact >= 10 else 8
        assessments.record(
            actor,
            patient,
            "hit-6",
            [answer, answer, 10, answer, 8, 10],
            time_point=TimePoint.BASELINE if n == 0 else TimePoint.BEFORE_NEXT,
            assessed_on=start,
            session=cycles[n - 1] if n else None,
            rater=Rater.PATIENT,
            via=Via.PAPER,
        )
    assessments.record(
        actor,
        patient,
        "midas",
        [course[0] // 2, course[0] // 3, course[0] // 2, 4, 6],
        time_point=TimePoint.BASELINE,
        assessed_on=starts[1],
        rater=Rater.PATIENT,
        via=Via.PAPER,
    )


def _diary_day(
    rng: random.Random, actor: Actor, patient: Patient, day: date, headache: bool, today: date
) -> None:
    migraine = headache and rng.random() < 0.6
    severity = (3 if migraine else rng.choice((1, 2))) if headache else 0
    medication: tuple[str, ...] = ()
    if migraine and rng.random() < 0.6:
        medication = ("triptan",)
    elif headache and rng.random() < 0.3:
        medication = ("simple_analgesic",)
    diaries.record_day(
        actor,
        patient,
        day,
        headache=headache,
        migraine=migraine,
        severity=severity,
        hours=Decimal(rng.choice((2, 4, 6, 8, 12))) if headache else None,
        acute_medication=medication,
        via=Via.PAPER,
        today=today,
    )


def _cosmetic_outcomes(
    rng: random.Random, actor: Actor, patient: Patient, n: int, today: date
) -> None:
    first = _cycles(patient, "glabellar-lines")[0]
    assessments.record(
        actor,
        patient,
        "facial-wrinkle-scale",
        rng.choice((2, 3)),
        time_point=TimePoint.BASELINE,
        assessed_on=first.treated_on,
        area="glabella",
        contraction=Contraction.MAXIMUM,
        session=first,
    )
    review = first.treated_on + timedelta(days=14)
    if review <= today:
        assessments.record(
            actor,
            patient,
            "facial-wrinkle-scale",
            rng.choice((0, 0, 1)),
            time_point=TimePoint.TWO_WEEKS,
            assessed_on=review,
            area="glabella",
            contraction=Contraction.MAXIMUM,
            session=first,
        )
    returned = first.treated_on + timedelta(days=rng.randint(88, 118))
    if n % 2 == 0 and returned <= today:
        durations.record_return(
            actor, first, returned, rater=Rater.PATIENT, note="Frown lines moving again"
        )


def _side_effects(
    london: Actor,
    leeds: Actor,
    cosmetic: list[Patient],
    migraine: list[Patient],
    today: date,
) -> None:
    if len(cosmetic) >= 2:
        bruise = _cycles(cosmetic[0], "glabellar-lines")[0]
        adverse.record(
            london,
            bruise,
            kind=AdverseKind.BRUISING,
            onset_on=bruise.treated_on,
            severity=Severity.MILD,
            serious=False,
            outcome=AdverseOutcome.RECOVERED,
            outcome_on=bruise.treated_on + timedelta(days=6),
            description="Small bruise at the left corrugator point.",
        )
        ptosis = _cycles(cosmetic[1], "glabellar-lines")[0]
        adverse.record(
            london,
            ptosis,
            kind=AdverseKind.BROW_PTOSIS,
            onset_on=ptosis.treated_on + timedelta(days=5),
            severity=Severity.MODERATE,
            serious=False,
            outcome=AdverseOutcome.RECOVERED,
            outcome_on=ptosis.treated_on + timedelta(days=40),
            description="Heavy, lower right eyebrow from day 5; settled over 5 weeks.",
            action_taken="Reassured; reviewed at two weeks. Fewer units laterally next time.",
        )
    if migraine:
        cycle = _cycles(migraine[-1], "chronic-migraine")[-1]
        onset = min(cycle.treated_on + timedelta(days=4), today)
        adverse.record(
            leeds,
            cycle,
            kind=AdverseKind.DYSPHAGIA,
            onset_on=onset,
            severity=Severity.MODERATE,
            serious=True,
            serious_criteria=[SeriousCriterion.MEDICALLY_IMPORTANT],
            outcome=AdverseOutcome.RECOVERING,
            description="Difficulty swallowing solids from day 4; no breathing difficulty. "
            "Seen the same day; soft diet advised.",
            action_taken="Assessed in clinic; advised to go to A&E if breathing is affected.",
            today=today,
        )
