"""The headache diary: one day at a time, from the patient's own pages or copied from paper.

- :func:`record_day` writes one day. A second entry for a day *replaces* the current one: the
  old row is kept with ``replaced_at``/``replaced_by`` (nothing is overwritten) and the change
  is audited with what it was and what it became. Sending the same day again unchanged (a
  double tap, a page sent twice) changes nothing.
- :func:`current_entries` is the diary as it stands (one row per day);
  :func:`entries_with_history` also gives the replaced rows, for the history on the staff page.
- :func:`summary` turns the diary into the figures a headache clinic looks at, with the rules
  of :mod:`glabella.clinical.diary`: the last 28 days, the baseline and each injection cycle
  (the dates of the patient's signed chronic-migraine sessions), and medication overuse
  (ICHD-3 8.2). Each figure carries its source.

A diary day is validated by the pure core (``DiaryDay``) after the checks here, which put the
problem in words a patient or a nurse understands (``DiaryRefused.field`` names the field).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting.models import Status, TreatmentSession
from glabella.clinical import diary as core
from glabella.outcomes.models import DiaryEntry, Via
from glabella.patients.models import Patient

MIGRAINE = "chronic-migraine"
SIGNED = (Status.SIGNED, Status.AMENDED)
PER_DAYS = 28

MEDICATION_NAMES: dict[str, str] = {
    "simple_analgesic": "Simple painkiller (paracetamol, aspirin, ibuprofen...)",
    "triptan": "Triptan",
    "ergot": "Ergotamine",
    "opioid": "Opioid (codeine, tramadol...)",
    "combination": "Combination painkiller",
}
SEVERITY_NAMES: dict[int, str] = {0: "None", 1: "Mild", 2: "Moderate", 3: "Severe"}


class DiaryRefused(ValueError):
    """A diary day that cannot be recorded. ``str(exc)`` says why in plain words; ``field``
    names the field at fault ("day", "severity", "hours", "migraine", "acute_medication")."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- shared helpers (assessments and continuation use them too) -------------------------------


def clinic_for(actor: Actor | None, patient: Patient) -> Clinic | None:
    """The clinic whose local date counts: the actor's, else the patient's home clinic, else
    the organization's first."""
    if actor is not None and actor.clinic is not None:
        return actor.clinic
    if patient.home_clinic_id:
        return patient.home_clinic
    return Clinic.objects.filter(organization_id=patient.organization_id).order_by("pk").first()


def local_today(actor: Actor | None, patient: Patient) -> date:
    """Today at the clinic (a diary day is a local calendar day, not a UTC one)."""
    clinic = clinic_for(actor, patient)
    zone = ZoneInfo((clinic.timezone if clinic else "") or "UTC")
    return timezone.localtime(timezone.now(), zone).date()


def require_unless_patient(actor: Actor, via: str, permission: str) -> None:
    """Staff need PERMISSION. The patient's own pages (``via=portal``, an actor with no role,
    built from the link they have authenticated) need none; a staff actor passing
    ``via=portal`` still needs it."""
    if not (via == Via.PORTAL and actor.role is None):
        actor.require(permission)


def check_patient(actor: Actor, patient: Patient, via: str, permission: str) -> None:
    """The patient must be of the actor's organization; staff need PERMISSION (see
    :func:`require_unless_patient`)."""
    if patient.organization_id != actor.organization.pk:
        raise PermissionError("That patient belongs to another organization.")
    require_unless_patient(actor, via, permission)


def injection_dates(patient: Patient, today: date | None = None) -> list[date]:
    """The days of the patient's chronic-migraine treatments here: signed or amended sessions
    (not drafts, not voided), one date per day, oldest first."""
    qs = TreatmentSession.objects.for_org(patient.organization_id).filter(
        patient=patient, indication=MIGRAINE, status__in=SIGNED
    )
    if today is not None:
        qs = qs.filter(treated_on__lte=today)
    return sorted(set(qs.values_list("treated_on", flat=True)))


def fmt(day: date) -> str:
    return f"{day:%d/%m/%Y}"


# --- writing a day ----------------------------------------------------------------------------


def _hours(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        hours = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DiaryRefused("Give the hours as a number, for example 4 or 2.5.", "hours") from None
    if not hours.is_finite() or not 0 <= hours <= 24:
        raise DiaryRefused("Hours of headache must be between 0 and 24.", "hours")
    return hours.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _validate(
    day: date,
    *,
    headache: bool,
    migraine: bool,
    severity: int | None,
    hours: Any,
    acute_medication: Iterable[str],
    today: date,
) -> core.DiaryDay:
    if not isinstance(day, date):
        raise DiaryRefused("Choose the day of the diary entry.", "day")
    if day > today:
        raise DiaryRefused(
            f"{fmt(day)} is in the future: a diary day can be filled in on the day or after "
            f"(today is {fmt(today)}).",
            "day",
        )
    if migraine and not headache:
        raise DiaryRefused("A day with migraine features is also a headache day.", "migraine")
    if severity is not None and (
        isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 3
    ):
        raise DiaryRefused(
            "Severity is 0 (none), 1 (mild), 2 (moderate) or 3 (severe).", "severity"
        )
    checked_hours = _hours(hours)
    if not headache and ((severity or 0) > 0 or (checked_hours or 0) > 0):
        field = "severity" if (severity or 0) > 0 else "hours"
        raise DiaryRefused(
            "Severity and hours are for a headache day: tick headache, or leave them empty.",
            field,
        )
    kinds = frozenset(str(k) for k in acute_medication if k)
    unknown = sorted(kinds - set(core.MEDICATION_KINDS))
    if unknown:
        raise DiaryRefused(
            f"Unknown acute medication {', '.join(unknown)}: choose from the list.",
            "acute_medication",
        )
    try:
        return core.DiaryDay(
            date=day,
            headache=bool(headache),
            migraine=bool(migraine),
            severity=severity,
            hours=checked_hours,
            acute_medication=kinds,  # type: ignore[arg-type]
        )
    except core.DiaryError as exc:  # pragma: no cover - the checks above come first
        raise DiaryRefused(str(exc), "day") from exc


def _snapshot(entry: DiaryEntry) -> dict[str, Any]:
    return {
        "day": entry.day.isoformat(),
        "headache": entry.headache,
        "migraine": entry.migraine,
        "severity": entry.severity,
        "hours": str(entry.hours) if entry.hours is not None else None,
        "acute_medication": sorted(entry.acute_medication or []),
        "via": entry.via,
    }


def _same(entry: DiaryEntry, d: core.DiaryDay) -> bool:
    return (
        entry.headache == d.headache
        and entry.migraine == d.migraine
        and entry.severity == d.severity
        and (entry.hours is None) == (d.hours is None)
        and (entry.hours is None or Decimal(entry.hours) == d.hours)
        and sorted(entry.acute_medication or []) == sorted(d.acute_medication)
    )


def record_day(
    actor: Actor,
    patient: Patient,
    day: date,
    *,
    headache: bool,
    migraine: bool = False,
    severity: int | None = None,
    hours: Decimal | None = None,
    acute_medication: Iterable[str] = (),
    via: str = Via.STAFF,
    today: date | None = None,
) -> DiaryEntry:
    """Record one diary day (see the module's docstring). Raises :class:`DiaryRefused`."""
    if via not in Via.values:
        raise ValueError(f"unknown diary source {via!r}")
    check_patient(actor, patient, via, "outcome.record")
    today = today or local_today(actor, patient)
    d = _validate(
        day,
        headache=headache,
        migraine=migraine,
        severity=severity,
        hours=hours,
        acute_medication=acute_medication,
        today=today,
    )
    for attempt in range(2):
        try:
            return _write(actor, patient, d, via)
        except IntegrityError:
            # Two entries for one new day at the same moment: the second replaces the first.
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _write(actor: Actor, patient: Patient, d: core.DiaryDay, via: str) -> DiaryEntry:
    with transaction.atomic():
        current = (
            DiaryEntry.objects.for_org(actor.organization)
            .select_for_update()
            .filter(patient=patient, day=d.date, replaced_at__isnull=True)
            .first()
        )
        if current is not None and _same(current, d):
            return current
        now = timezone.now()
        if current is not None:
            current.replaced_at = now
            current.save(update_fields=["replaced_at"])
        entry = DiaryEntry.objects.create(
            organization=actor.organization,
            patient=patient,
            day=d.date,
            headache=d.headache,
            migraine=d.migraine,
            severity=d.severity,
            hours=d.hours,
            acute_medication=sorted(d.acute_medication),
            via=via,
            recorded_by=actor.user,
        )
        if current is None:
            record(
                actor,
                Action.CREATE,
                entry,
                label=f"{patient}: diary {fmt(d.date)}",
                detail={"event": "diary.record", "after": _snapshot(entry)},
            )
        else:
            current.replaced_by = entry
            current.save(update_fields=["replaced_by"])
            record(
                actor,
                Action.UPDATE,
                entry,
                label=f"{patient}: diary {fmt(d.date)} replaced",
                detail={
                    "event": "diary.replace",
                    "replaced": current.pk,
                    "before": _snapshot(current),
                    "after": _snapshot(entry),
                },
            )
        return entry


# --- reading ----------------------------------------------------------------------------------


def current_entries(
    patient: Patient, start: date | None = None, end: date | None = None
) -> list[DiaryEntry]:
    """The diary as it stands: one entry per day (replaced ones left out), oldest first."""
    qs = DiaryEntry.objects.for_org(patient.organization_id).filter(
        patient=patient, replaced_at__isnull=True
    )
    if start is not None:
        qs = qs.filter(day__gte=start)
    if end is not None:
        qs = qs.filter(day__lte=end)
    return list(qs.order_by("day"))


def replaced_entries(
    patient: Patient, start: date | None = None, end: date | None = None
) -> list[DiaryEntry]:
    """Entries that a later one replaced (the history), newest replacement first."""
    qs = DiaryEntry.objects.for_org(patient.organization_id).filter(
        patient=patient, replaced_at__isnull=False
    )
    if start is not None:
        qs = qs.filter(day__gte=start)
    if end is not None:
        qs = qs.filter(day__lte=end)
    return list(qs.select_related("replaced_by", "recorded_by").order_by("-replaced_at"))


def as_days(entries: Iterable[DiaryEntry]) -> list[core.DiaryDay]:
    return [
        core.DiaryDay(
            date=e.day,
            headache=e.headache,
            migraine=e.migraine,
            severity=e.severity,
            hours=Decimal(e.hours) if e.hours is not None else None,
            acute_medication=frozenset(e.acute_medication or []),
        )
        for e in entries
    ]


@dataclass(frozen=True)
class CycleRow:
    """One line of the per-cycle table: the baseline window or one injection cycle."""

    label: str
    summary: core.Summary


@dataclass(frozen=True)
class DiarySummary:
    """The diary in figures. ``last_28`` is the 28 days ending today; ``cycles`` is empty when
    the patient has no signed chronic-migraine session yet (``cycle_rows`` then too)."""

    today: date
    has_entries: bool
    first_day: date | None
    last_day: date | None
    last_28: core.Summary
    injections: tuple[date, ...]
    report: core.CycleReport | None
    cycle_rows: tuple[CycleRow, ...]
    overuse: core.OveruseResult
    replaced_count: int

    @property
    def source(self) -> str:
        return self.last_28.source


def summary(patient: Patient, today: date) -> DiarySummary:
    """The last 28 days, the baseline and each cycle, and medication overuse, with sources."""
    entries = current_entries(patient, end=today)
    days = as_days(entries)
    last_28 = core.summarise(days, today - timedelta(days=PER_DAYS - 1), today)
    injections = tuple(injection_dates(patient, today))
    report = core.per_cycle(days, injections) if injections else None
    rows: list[CycleRow] = []
    if report is not None:
        rows.append(
            CycleRow(f"Baseline (the {PER_DAYS} days before the first cycle)", report.baseline)
        )
        for n, s in enumerate(report.cycles, start=1):
            rows.append(CycleRow(f"Cycle {n} (from {fmt(s.start)})", s))
    replaced = (
        DiaryEntry.objects.for_org(patient.organization_id)
        .filter(patient=patient, replaced_at__isnull=False)
        .count()
    )
    return DiarySummary(
        today=today,
        has_entries=bool(entries),
        first_day=entries[0].day if entries else None,
        last_day=entries[-1].day if entries else None,
        last_28=last_28,
        injections=injections,
        report=report,
        cycle_rows=tuple(rows),
        overuse=core.medication_overuse(days, today),
        replaced_count=replaced,
    )
