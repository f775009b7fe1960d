"""Continue or stop: chronic migraine after two and three cycles.

:func:`figures` reads the patient's diary and signed chronic-migraine sessions and gives, after
2 and after 3 cycles, the baseline headache days (the 28 days before the first cycle), the
follow-up (headache days per 28 in cycle 2 or 3), the reduction, whether the patient is a
responder by the trial definition (>= 50 %) and by the NICE TA260 continuation rule (>= 30 %),
and whether the stop rule applies: each with its source, from
:func:`glabella.clinical.diary.continuation`. When the diary is too thin to judge (fewer days
recorded than the core asks for, no baseline, no headache day at baseline) the step says so in
words and gives no verdict.

:func:`record_decision` keeps the prescriber's decision with a snapshot of the figures shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record as audit
from glabella.clinical import diary as core
from glabella.outcomes.diary import fmt, local_today, summary
from glabella.outcomes.models import ContinuationDecision, Decision
from glabella.patients.models import Patient

STEPS = (2, 3)


class DecisionRefused(ValueError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Step:
    """The figures after ``after_cycles`` cycles. ``ready`` is False when they cannot be judged
    yet (``note`` says why; the verdicts are then None)."""

    after_cycles: int
    ready: bool
    note: str
    baseline: Decimal | None = None
    follow_up: Decimal | None = None
    reduction_pct: Decimal | None = None
    responder: bool | None = None
    responder_text: str = ""
    responder_source: str = ""
    nice: bool | None = None
    nice_text: str = ""
    nice_source: str = ""
    stop_suggested: bool | None = None
    stop_text: str = ""
    stop_source: str = ""
    baseline_window: tuple[date, date] | None = None
    follow_up_window: tuple[date, date] | None = None
    diary_source: str = ""
    caveats: tuple[str, ...] = field(default_factory=tuple)

    @property
    def increase_pct(self) -> Decimal | None:
        """The rise in headache days when there was no reduction (for display)."""
        if self.reduction_pct is None or self.reduction_pct >= 0:
            return None
        return -self.reduction_pct

    def as_dict(self) -> dict[str, Any]:
        def d(v: Any) -> Any:
            return None if v is None else str(v)

        return {
            "after_cycles": self.after_cycles,
            "ready": self.ready,
            "note": self.note,
            "baseline_per_28": d(self.baseline),
            "follow_up_per_28": d(self.follow_up),
            "reduction_pct": d(self.reduction_pct),
            "responder_50": self.responder,
            "responder_source": self.responder_source,
            "nice_30": self.nice,
            "nice_source": self.nice_source,
            "stop_suggested": self.stop_suggested,
            "stop_text": self.stop_text,
            "stop_source": self.stop_source,
            "baseline_window": [w.isoformat() for w in self.baseline_window]
            if self.baseline_window
            else None,
            "follow_up_window": [w.isoformat() for w in self.follow_up_window]
            if self.follow_up_window
            else None,
            "caveats": list(self.caveats),
        }


def _window(s: core.Summary) -> tuple[date, date]:
    return (s.start, s.end)


def figures(patient: Patient, today: date) -> list[Step]:
    """The continue-or-stop figures after 2 and after 3 cycles (see the module docstring)."""
    diary = summary(patient, today)
    report = diary.report
    given = len(diary.injections)
    steps: list[Step] = []
    for n in STEPS:
        if report is None or given < n:
            steps.append(
                Step(
                    n,
                    False,
                    f"After {n} cycles: not yet. "
                    + (
                        "No chronic migraine treatment is signed yet."
                        if given == 0
                        else f"{given} cycle{'s' if given != 1 else ''} given so far."
                    ),
                )
            )
            continue
        base, cycle = report.baseline, report.cycles[n - 1]
        windows = {"baseline_window": _window(base), "follow_up_window": _window(cycle)}
        problems = []
        if base.days_recorded == 0:
            problems.append(
                f"No diary day is recorded in the baseline ({fmt(base.start)} to {fmt(base.end)})."
            )
        elif not base.enough_data:
            problems.append(f"Baseline ({fmt(base.start)} to {fmt(base.end)}): {base.note}.")
        if cycle.days_recorded == 0:
            problems.append(
                f"No diary day is recorded in cycle {n} ({fmt(cycle.start)} to {fmt(cycle.end)})."
            )
        elif not cycle.enough_data:
            problems.append(f"Cycle {n} ({fmt(cycle.start)} to {fmt(cycle.end)}): {cycle.note}.")
        if not problems and base.headache_days_per_28 == 0:
            problems.append("The baseline has no headache day: a reduction cannot be worked out.")
        if problems:
            steps.append(
                Step(
                    n,
                    False,
                    f"After {n} cycles: the diary is too thin to judge. " + " ".join(problems),
                    baseline=base.headache_days_per_28,
                    follow_up=cycle.headache_days_per_28,
                    diary_source=base.source,
                    **windows,  # type: ignore[arg-type]
                )
            )
            continue
        assert base.headache_days_per_28 is not None and cycle.headache_days_per_28 is not None
        # The core evaluates every step up to the cycles given, using cycle k for step k; only
        # step n is wanted here, so cycle n's figure stands in for the earlier ones.
        step = core.continuation(base.headache_days_per_28, [cycle.headache_days_per_28] * n)[-1]
        reduction = step.reduction_pct.quantize(Decimal("0.1"))
        stop_text = step.stop_text
        if reduction < 0:
            rule = "Stop suggested" if step.stop_suggested else "Continue"
            stop_text = (
                f"{rule}: headache days rose by {-reduction}% after {n} cycles instead of "
                f"falling by {step.nice.threshold}% (NICE TA260)"
            )
        caveats = []
        if n == given:
            caveats.append(
                f"Cycle {n} is the current one: its figure counts the days recorded up to "
                f"{fmt(cycle.end)}."
            )
        steps.append(
            Step(
                n,
                True,
                "",
                baseline=step.baseline,
                follow_up=step.follow_up,
                reduction_pct=reduction,
                responder=step.responder.responder,
                responder_text=step.responder.text,
                responder_source=step.responder.source,
                nice=step.nice.responder,
                nice_text=step.nice.text,
                nice_source=step.nice.source,
                stop_suggested=step.stop_suggested,
                stop_text=stop_text,
                stop_source=step.stop_source,
                diary_source=base.source,
                caveats=tuple(caveats),
                **windows,  # type: ignore[arg-type]
            )
        )
    return steps


def cycles_given(patient: Patient, today: date) -> int:
    from glabella.outcomes.diary import injection_dates

    return len(injection_dates(patient, today))


def decisions(patient: Patient) -> list[ContinuationDecision]:
    return list(
        ContinuationDecision.objects.for_org(patient.organization_id)
        .filter(patient=patient)
        .select_related("decided_by")
        .order_by("-decided_on", "-recorded_at")
    )


def record_decision(
    actor: Actor,
    patient: Patient,
    *,
    after_cycles: int,
    decision: str,
    reason: str,
    today: date | None = None,
) -> ContinuationDecision:
    """Keep the prescriber's continue-or-stop decision with the figures it was made on."""
    actor.require("outcome.decide")
    if patient.organization_id != actor.organization.pk:
        raise PermissionError("That patient belongs to another organization.")
    if decision not in Decision.values:
        raise DecisionRefused("Choose continue or stop.", "decision")
    if isinstance(after_cycles, bool) or not isinstance(after_cycles, int) or after_cycles < 1:
        raise DecisionRefused("Say after how many cycles the decision is made.", "after_cycles")
    reason = (reason or "").strip()
    if decision == Decision.STOP and not reason:
        raise DecisionRefused(
            "Write the reason for stopping: it goes in the patient's record.", "reason"
        )
    today = today or local_today(actor, patient)
    shown = figures(patient, today)
    snapshot = {
        "today": today.isoformat(),
        "cycles_given": cycles_given(patient, today),
        "steps": [s.as_dict() for s in shown],
    }
    with transaction.atomic():
        row = ContinuationDecision.objects.create(
            organization=actor.organization,
            patient=patient,
            after_cycles=after_cycles,
            decided_on=today,
            decision=decision,
            reason=reason,
            figures=snapshot,
            decided_by=actor.user,
        )
        audit(
            actor,
            Action.CREATE,
            row,
            label=f"{patient}: chronic migraine, {row.get_decision_display().lower()} "
            f"after {after_cycles} cycles",
            detail={
                "event": "continuation.decide",
                "decision": decision,
                "after_cycles": after_cycles,
                "reason": reason,
                "figures": snapshot["steps"],
            },
        )
    return row
