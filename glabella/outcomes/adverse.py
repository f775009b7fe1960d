"""Adverse events (side effects): recorded against a signed treatment session and its lots.

The only writers of :class:`~glabella.outcomes.models.AdverseEvent`. Every write checks the
organization and the permission (``outcome.record``), validates, writes and audits in one
transaction; a refusal is an :class:`AdverseRefused` that names the field and says why in
plain words, and nothing is written.

- **Against what.** A signed (or amended) session of the actor's organization; a draft or a
  voided session is refused in words. The lots are snapshotted when the event is recorded:
  the lots the session's live points were drawn from (their vials' lots) where the clinic keeps
  its stock in Glabella, otherwise the lot number and expiry typed on the session.
- **Dates.** The onset is not before the treatment and not in the future (the clinic's own
  date); the outcome date is not before the onset and not in the future.
- **Seriousness** follows ICH E2A: a serious event needs at least one criterion, and a
  criterion means the event is serious (the form is refused rather than guessing). A fatal
  outcome needs "resulted in death".
- **Double submit.** The same person recording the same kind of event with the same onset
  against the same session within :data:`DOUBLE_SUBMIT_SECONDS` lands on the event already
  written (nothing new is written).
- **Follow-up** (:func:`update`) changes the outcome, its date, the action taken, the
  description, the severity and the seriousness, with an optimistic version: a form loaded
  before someone else's change is refused (:class:`StaleEvent`). The audit keeps before/after.
- **Never deleted.** A mistake is marked entered in error with a reason (:func:`mark_in_error`);
  it stays visible, struck through, and can no longer be changed.
- **Reporting.** :func:`to_report` lists the organization's serious events not yet reported;
  :func:`mark_reported` records the date and the regulator's reference;
  :func:`report_summary` gathers what a regulator's form asks (MHRA Yellow Card, FDA MedWatch
  3500, an EU ICSR): reporter, patient, suspect product, reaction, history, concomitant
  medicines and the other toxin treatments of the previous three months. Units stay in the
  product's own units: nothing is ever converted between products.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Organization
from glabella.audit.models import Action, AuditEvent
from glabella.audit.services import record as audit
from glabella.charting import services as charting
from glabella.charting.models import Depth, InjectionPoint, Status, TreatmentSession
from glabella.clinical import catalogue, indications
from glabella.outcomes.models import (
    AdverseEvent,
    AdverseKind,
    AdverseOutcome,
    SeriousCriterion,
    Severity,
)
from glabella.patients.models import HistoryItem, HistoryKind, Patient

DOUBLE_SUBMIT_SECONDS = 10
"""A second identical submission by the same person within this many seconds is the same event."""

FOLLOW_UP_FIELDS = (
    "severity",
    "serious",
    "serious_criteria",
    "outcome",
    "outcome_on",
    "action_taken",
    "description",
)
"""What a follow-up may change. A wrong kind or onset: mark the event in error, record it again."""

RECORDABLE = (Status.SIGNED, Status.AMENDED)
HISTORY_KINDS = (
    HistoryKind.CONDITION,
    HistoryKind.ALLERGY,
    HistoryKind.PREGNANCY,
    HistoryKind.BREASTFEEDING,
    HistoryKind.INFECTION,
)


class AdverseRefused(ValueError):
    """A side effect record refused: ``field`` is the field at fault ("" for the whole form),
    ``message`` the sentence a nurse understands, ``errors`` every field's message."""

    def __init__(self, field: str, message: str, errors: dict[str, str] | None = None) -> None:
        self.field = field
        self.message = message
        self.errors = errors or {field: message}
        super().__init__(" ".join(self.errors.values()))


class StaleEvent(AdverseRefused):
    """Someone else changed the event since the form was loaded."""

    def __init__(self) -> None:
        super().__init__(
            "",
            "Someone else changed this side effect record while you were working on it. "
            "Nothing was saved: the page now shows it as it is. Please check and make your "
            "change again.",
        )


# --- helpers ---------------------------------------------------------------------------------


def _fmt(day: date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else ""


def _u(value: Decimal) -> str:
    """Units for display: 2.50 -> 2.5, 10.00 -> 10."""
    text = format(Decimal(value).quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_brand = catalogue.brand_name


_indication_name = indications.display_name


def _area_label(area: str) -> str:
    text = str(area or "").replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def clinic_today(session: TreatmentSession) -> date:
    """Today at the session's clinic."""
    return timezone.localtime(timezone.now(), charting.clinic_tz(session)).date()


def _check_org(actor: Actor, obj: Any) -> None:
    if obj.organization_id != actor.organization.pk:
        raise PermissionError("That record belongs to another organization.")


def _as_date(value: Any, field_name: str, label: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise AdverseRefused(field_name, f"Enter the {label} as a date (DD/MM/YYYY).") from None


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _fields(event: AdverseEvent) -> dict[str, Any]:
    """The event's recorded fields, as the audit keeps them."""
    return {
        "patient": event.patient_id,
        "session": event.session_id,
        "kind": event.kind,
        "other_text": event.other_text,
        "description": event.description,
        "onset_on": _plain(event.onset_on),
        "severity": event.severity,
        "serious": event.serious,
        "serious_criteria": list(event.serious_criteria),
        "outcome": event.outcome,
        "outcome_on": _plain(event.outcome_on),
        "action_taken": event.action_taken,
        "lots": event.lots,
        "reported_on": _plain(event.reported_on),
        "report_reference": event.report_reference,
        "version": event.version,
    }


def _label(event: AdverseEvent) -> str:
    return f"{event.patient}: side effect, {event.get_kind_display()} from {_fmt(event.onset_on)}"


# --- what may be recorded --------------------------------------------------------------------


def session_refusal(session: TreatmentSession) -> str:
    """Why a side effect cannot be recorded against SESSION ("" when it can)."""
    if session.status == Status.DRAFT:
        return (
            "This treatment has not been signed yet. Sign the session first, then record the "
            "side effect against it."
        )
    if session.status == Status.VOIDED:
        return (
            "This treatment was voided (entered in error): a side effect cannot be recorded "
            "against it. Record it against the treatment the patient actually had."
        )
    return ""


def lots_snapshot(session: TreatmentSession) -> list[dict[str, Any]]:
    """The lots SESSION's live points actually used: their vials' lots where the clinic keeps
    its stock in Glabella, else (or for points with no vial) the lot typed on the session."""
    points = charting.live_points(session)
    lots: list[dict[str, Any]] = []
    for used in charting.lots_used(points):
        lots.append(
            {
                "product_id": session.product_id,
                "lot_number": used.lot_number,
                "expiry": used.expiry.isoformat(),
                "source": "stock",
                "vials": [v for v, _ in used.vials],
            }
        )
    undrawn = not points or any(p.vial_id is None for p in points)
    known = {lot["lot_number"] for lot in lots}
    if undrawn and session.lot_number and session.lot_number not in known:
        lots.append(
            {
                "product_id": session.product_id,
                "lot_number": session.lot_number,
                "expiry": session.lot_expiry.isoformat() if session.lot_expiry else "",
                "source": "typed",
            }
        )
    return lots


def criteria_labels(event: AdverseEvent) -> list[str]:
    """The reasons EVENT is serious, in words."""
    return [SeriousCriterion(c).label for c in event.serious_criteria]


def lot_text(lot: dict[str, Any]) -> str:
    """One lot of a snapshot in words: "C1234AB, expiry 09/06/2027"."""
    text = str(lot.get("lot_number", ""))
    expiry = str(lot.get("expiry") or "")
    if expiry:
        with contextlib.suppress(ValueError):
            expiry = _fmt(date.fromisoformat(expiry))
        text += f", expiry {expiry}"
    return text


def _validate(
    session: TreatmentSession,
    data: dict[str, Any],
    today: date,
) -> dict[str, str]:
    """Every rule on the (merged) fields of an event; {field: message} for those broken."""
    errors: dict[str, str] = {}
    if data["kind"] not in AdverseKind.values:
        errors["kind"] = "Choose what happened."
    elif data["kind"] == AdverseKind.OTHER and not data["other_text"]:
        errors["other_text"] = "You chose “other”: say what happened."
    if len(data["other_text"]) > 200:
        errors["other_text"] = "Say what happened in 200 characters or fewer."
    if data["severity"] not in Severity.values:
        errors["severity"] = "Choose how severe it is: mild, moderate or severe."
    if data["outcome"] not in AdverseOutcome.values:
        errors["outcome"] = "Choose the outcome (choose “unknown” if it is not known yet)."
    onset = data["onset_on"]
    if onset is None:
        errors["onset_on"] = "Enter the date it started."
    elif onset < session.treated_on:
        errors["onset_on"] = (
            f"The side effect cannot start before the treatment: the treatment was on "
            f"{_fmt(session.treated_on)}."
        )
    elif onset > today:
        errors["onset_on"] = "The date it started is in the future: enter the day it began."
    criteria = list(data["serious_criteria"])
    if any(c not in SeriousCriterion.values for c in criteria):
        errors["serious_criteria"] = "Choose the reasons it is serious from the list."
    elif data["serious"] and not criteria:
        errors["serious_criteria"] = (
            "A serious event needs at least one reason it is serious (for example "
            "“required or prolonged hospitalisation”)."
        )
    elif criteria and not data["serious"]:
        errors["serious"] = (
            "You ticked a reason the event is serious: tick “serious” as well, or untick "
            "the reason."
        )
    elif data["outcome"] == AdverseOutcome.FATAL and SeriousCriterion.DEATH not in criteria:
        errors["serious_criteria"] = "The outcome is fatal: tick “serious” and “resulted in death”."
    outcome_on = data["outcome_on"]
    if outcome_on is not None:
        if onset is not None and outcome_on < onset:
            errors["outcome_on"] = (
                f"The outcome date cannot be before the side effect started ({_fmt(onset)})."
            )
        elif outcome_on > today:
            errors["outcome_on"] = "The outcome date is in the future."
    return errors


def _refuse(errors: dict[str, str]) -> None:
    if errors:
        first = next(iter(errors))
        raise AdverseRefused(first, errors[first], errors)


def _criteria(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [value]
    order = list(SeriousCriterion.values)
    unique = list(dict.fromkeys(str(v) for v in value))
    return sorted(unique, key=lambda c: order.index(c) if c in order else len(order))


# --- writing ---------------------------------------------------------------------------------


def record(
    actor: Actor,
    session: TreatmentSession,
    *,
    kind: str,
    onset_on: date | str | None,
    severity: str,
    serious: bool,
    serious_criteria: Any = (),
    outcome: str = AdverseOutcome.UNKNOWN,
    outcome_on: date | str | None = None,
    description: str = "",
    other_text: str = "",
    action_taken: str = "",
    today: date | None = None,
) -> AdverseEvent:
    """Record a side effect of SESSION (see the module's notes for the rules)."""
    actor.require("outcome.record")
    _check_org(actor, session)
    refusal = session_refusal(session)
    if refusal:
        raise AdverseRefused("session", refusal)
    today = today or clinic_today(session)
    kind = str(kind or "")
    data: dict[str, Any] = {
        "kind": kind,
        "other_text": str(other_text or "").strip() if kind == AdverseKind.OTHER else "",
        "description": str(description or "").strip(),
        "severity": str(severity or ""),
        "serious": bool(serious),
        "serious_criteria": _criteria(serious_criteria),
        "outcome": str(outcome or AdverseOutcome.UNKNOWN),
        "action_taken": str(action_taken or "").strip(),
    }
    errors: dict[str, str] = {}
    for name, label, value in (
        ("onset_on", "date it started", onset_on),
        ("outcome_on", "outcome date", outcome_on),
    ):
        try:
            data[name] = _as_date(value, name, label)
        except AdverseRefused as exc:
            errors[name] = exc.message
            data[name] = None
    for name, message in _validate(session, data, today).items():
        errors.setdefault(name, message)
    _refuse(errors)
    with transaction.atomic():
        session = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        refusal = session_refusal(session)
        if refusal:
            raise AdverseRefused("session", refusal)
        same = (
            AdverseEvent.objects.for_org(actor.organization)
            .filter(
                session=session,
                kind=data["kind"],
                onset_on=data["onset_on"],
                recorded_by=actor.user,
                entered_in_error=False,
                recorded_at__gte=timezone.now() - timedelta(seconds=DOUBLE_SUBMIT_SECONDS),
            )
            .order_by("-recorded_at")
            .first()
        )
        if same is not None:
            return same
        event = AdverseEvent.objects.create(
            organization=actor.organization,
            patient=session.patient,
            session=session,
            lots=lots_snapshot(session),
            recorded_by=actor.user,
            **data,
        )
        audit(actor, Action.CREATE, event, label=_label(event), detail=_fields(event))
    return event


def _claim(actor: Actor, event: AdverseEvent, expected_version: int | None) -> AdverseEvent:
    """The event locked for writing; refused if in error or changed since EXPECTED_VERSION."""
    locked = (
        AdverseEvent.objects.for_org(actor.organization)
        .select_for_update()
        .select_related("session", "patient")
        .get(pk=event.pk)
    )
    if locked.entered_in_error:
        raise AdverseRefused(
            "", "This record was marked entered in error: it can no longer be changed."
        )
    if expected_version is not None and int(expected_version) != locked.version:
        raise StaleEvent()
    return locked


def update(
    actor: Actor, event: AdverseEvent, expected_version: int, **changes: Any
) -> AdverseEvent:
    """A follow-up: change any of :data:`FOLLOW_UP_FIELDS`; audited with before and after."""
    actor.require("outcome.record")
    _check_org(actor, event)
    unknown = set(changes) - set(FOLLOW_UP_FIELDS)
    if unknown:
        raise TypeError(f"A follow-up cannot change {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = _claim(actor, event, expected_version)
        data: dict[str, Any] = {
            "kind": locked.kind,
            "other_text": locked.other_text,
            "onset_on": locked.onset_on,
            **{name: getattr(locked, name) for name in FOLLOW_UP_FIELDS},
        }
        errors: dict[str, str] = {}
        for name, value in changes.items():
            if name == "outcome_on":
                try:
                    value = _as_date(value, name, "outcome date")
                except AdverseRefused as exc:
                    errors[name] = exc.message
                    continue
            elif name == "serious_criteria":
                value = _criteria(value)
            elif name == "serious":
                value = bool(value)
            elif name in ("action_taken", "description"):
                value = str(value or "").strip()
            else:
                value = str(value or "")
            data[name] = value
        for name, message in _validate(locked.session, data, clinic_today(locked.session)).items():
            errors.setdefault(name, message)
        _refuse(errors)
        before = {n: _plain(getattr(locked, n)) for n in FOLLOW_UP_FIELDS}
        after = {n: _plain(data[n]) for n in FOLLOW_UP_FIELDS}
        changed = [n for n in FOLLOW_UP_FIELDS if before[n] != after[n]]
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, data[name])
        locked.version += 1
        locked.save(update_fields=[*changed, "version", "updated_at"])
        audit(
            actor,
            Action.UPDATE,
            locked,
            label=_label(locked),
            detail={
                "patient": locked.patient_id,
                "change": "follow-up",
                "fields": changed,
                "before": {n: before[n] for n in changed},
                "after": {n: after[n] for n in changed},
                "version": locked.version,
            },
        )
    return locked


def mark_reported(
    actor: Actor, event: AdverseEvent, *, reported_on: date | str | None, reference: str
) -> AdverseEvent:
    """Record that the event was reported to the regulator on REPORTED_ON with REFERENCE."""
    actor.require("outcome.record")
    _check_org(actor, event)
    reference = str(reference or "").strip()
    errors: dict[str, str] = {}
    try:
        day = _as_date(reported_on, "reported_on", "date it was reported")
    except AdverseRefused as exc:
        errors["reported_on"] = exc.message
        day = None
    with transaction.atomic():
        locked = _claim(actor, event, None)
        if day is None and "reported_on" not in errors:
            errors["reported_on"] = "Enter the date it was reported."
        elif day is not None and day < locked.onset_on:
            errors["reported_on"] = (
                f"The report date cannot be before the side effect started "
                f"({_fmt(locked.onset_on)})."
            )
        elif day is not None and day > clinic_today(locked.session):
            errors["reported_on"] = "The report date is in the future."
        if not reference:
            errors["reference"] = (
                "Enter the reference the regulator gave the report (for example the Yellow "
                "Card or MedWatch reference)."
            )
        elif len(reference) > 100:
            errors["reference"] = "The reference is too long: 100 characters at most."
        _refuse(errors)
        if locked.reported_on == day and locked.report_reference == reference:
            return locked
        before = {
            "reported_on": _plain(locked.reported_on),
            "report_reference": locked.report_reference,
        }
        locked.reported_on = day
        locked.report_reference = reference
        locked.version += 1
        locked.save(update_fields=["reported_on", "report_reference", "version", "updated_at"])
        audit(
            actor,
            Action.UPDATE,
            locked,
            label=_label(locked),
            detail={
                "patient": locked.patient_id,
                "change": "reported",
                "before": before,
                "after": {"reported_on": _plain(day), "report_reference": reference},
                "version": locked.version,
            },
        )
    return locked


def mark_in_error(actor: Actor, event: AdverseEvent, reason: str) -> AdverseEvent:
    """Mark the event entered in error, with REASON. It stays on record, struck through."""
    actor.require("outcome.record")
    _check_org(actor, event)
    reason = str(reason or "").strip()
    if not reason:
        raise AdverseRefused("reason", "Say why this record is wrong.")
    if len(reason) > 300:
        raise AdverseRefused("reason", "Keep the reason to 300 characters or fewer.")
    with transaction.atomic():
        locked = _claim(actor, event, None)
        locked.entered_in_error = True
        locked.error_reason = reason
        locked.version += 1
        locked.save(update_fields=["entered_in_error", "error_reason", "version", "updated_at"])
        audit(
            actor,
            Action.UPDATE,
            locked,
            label=_label(locked),
            detail={
                "patient": locked.patient_id,
                "change": "entered_in_error",
                "reason": reason,
                "version": locked.version,
            },
        )
    return locked


def view_event(actor: Actor, event: AdverseEvent, part: str = "side effect") -> None:
    """Record that ACTOR looked at EVENT (every view of clinical data is audited); printing
    the report summary is recorded as an export."""
    actor.require("outcome.view")
    _check_org(actor, event)
    audit(
        actor,
        Action.EXPORT if part == "report summary" else Action.VIEW,
        event,
        label=_label(event),
        detail={"patient": event.patient_id, "part": part},
    )


# --- reading ---------------------------------------------------------------------------------


def events_for(patient: Patient) -> list[AdverseEvent]:
    """PATIENT's events, newest onset first (entered-in-error ones included)."""
    return list(
        AdverseEvent.objects.for_org(patient.organization)
        .filter(patient=patient)
        .select_related("session", "recorded_by")
        .order_by("-onset_on", "-recorded_at")
    )


def to_report(organization: Organization) -> list[AdverseEvent]:
    """Serious events of ORGANIZATION not entered in error and not reported yet, oldest first
    (the longest waiting at the top)."""
    return list(
        AdverseEvent.objects.for_org(organization)
        .filter(serious=True, entered_in_error=False, reported_on__isnull=True)
        .select_related("patient", "session")
        .order_by("onset_on", "recorded_at")
    )


def history(event: AdverseEvent) -> list[AuditEvent]:
    """The writes to EVENT, oldest first (views are left out)."""
    return list(
        AuditEvent.objects.filter(
            organization_id=event.organization_id,
            object_type=AdverseEvent._meta.label_lower,
            object_id=str(event.pk),
        )
        .exclude(action__in=(Action.VIEW, Action.EXPORT))
        .order_by("seq")
    )


FIELD_LABELS = {
    "severity": "severity",
    "serious": "seriousness",
    "serious_criteria": "reasons it is serious",
    "outcome": "outcome",
    "outcome_on": "outcome date",
    "action_taken": "action taken",
    "description": "description",
}


def history_text(entry: AuditEvent) -> str:
    """One write to an event, in words."""
    detail = entry.detail or {}
    change = detail.get("change")
    if entry.action == Action.CREATE:
        return "recorded"
    if change == "follow-up":
        fields = ", ".join(FIELD_LABELS.get(f, f) for f in detail.get("fields", []))
        return f"follow-up: changed the {fields}"
    if change == "reported":
        after = detail.get("after", {})
        day = after.get("reported_on") or ""
        with contextlib.suppress(ValueError):
            day = _fmt(date.fromisoformat(day))
        return f"marked reported on {day}, ref {after.get('report_reference', '')}"
    if change == "entered_in_error":
        return f"marked entered in error: {detail.get('reason', '')}"
    return entry.get_action_display()


def signed_sessions(patient: Patient, limit: int = 6) -> list[TreatmentSession]:
    """PATIENT's most recent signed sessions: what a side effect can be recorded against."""
    return list(
        TreatmentSession.objects.for_org(patient.organization)
        .filter(patient=patient, status__in=RECORDABLE)
        .order_by("-treated_on", "-signed_at")[:limit]
    )


# --- the regulator's summary -----------------------------------------------------------------


@dataclass(frozen=True)
class Reporter:
    organization: str
    clinic: str
    clinic_address: str
    practitioner: str
    practitioner_email: str
    prescriber: str
    recorded_by: str


@dataclass(frozen=True)
class PatientPart:
    initials: str
    age_at_onset: int
    sex: str
    weight_kg: Decimal | None
    weight_recorded_on: date | None


@dataclass(frozen=True)
class LotPart:
    lot_number: str
    expiry: str
    source: str

    @property
    def text(self) -> str:
        return lot_text({"lot_number": self.lot_number, "expiry": self.expiry})


@dataclass(frozen=True)
class SuspectProduct:
    product_id: str
    brand: str
    generic: str
    unit_system: str
    lots: list[LotPart]
    total_units: Decimal
    route: str
    given_on: date
    indication: str
    areas: list[tuple[str, Decimal]]

    @property
    def area_rows(self) -> list[tuple[str, str]]:
        return [(area, _u(units)) for area, units in self.areas]

    @property
    def total_text(self) -> str:
        return f"{_u(self.total_units)} units of {self.brand}"


@dataclass(frozen=True)
class Reaction:
    kind: str
    other_text: str
    description: str
    onset_on: date
    days_to_onset: int
    severity: str
    serious: bool
    criteria: list[str]
    outcome: str
    outcome_on: date | None
    action_taken: str

    @property
    def time_to_onset(self) -> str:
        if self.days_to_onset == 0:
            return "the same day as the injection"
        return (
            f"{self.days_to_onset} day{'s' if self.days_to_onset != 1 else ''} after the injection"
        )


@dataclass(frozen=True)
class PriorTreatment:
    on: date
    product_id: str
    brand: str
    units: Decimal
    where: str  # "here" or "elsewhere"
    detail: str

    @property
    def units_text(self) -> str:
        return f"{_u(self.units)} units of {self.brand}"


@dataclass(frozen=True)
class ReportSummary:
    event_id: int
    serious: bool
    reported_on: date | None
    report_reference: str
    entered_in_error: bool
    error_reason: str
    recorded_at: datetime
    reporter: Reporter
    patient: PatientPart
    product: SuspectProduct
    reaction: Reaction
    history: list[str]
    medicines: list[str]
    prior_window_days: int
    prior: list[PriorTreatment] = field(default_factory=list)


def _person(user: Any) -> str:
    return str(user) if user is not None else ""


def _initials(patient: Patient) -> str:
    parts = [*patient.given_name.split(), *patient.family_name.split()]
    return "".join(p[0].upper() for p in parts if p)


def _history_text(item: HistoryItem) -> str:
    text = item.label
    if item.detail:
        text += f": {item.detail}"
    if item.resolved_on:
        text += f" (resolved {_fmt(item.resolved_on)})"
    return text


def _depths(points: list[InjectionPoint]) -> str:
    used = list(dict.fromkeys(p.depth for p in points))
    return ", ".join(Depth(d).label if d in Depth.values else d for d in used)


def report_summary(event: AdverseEvent) -> ReportSummary:
    """What a regulator's report form asks about EVENT (see the module's notes)."""
    session = TreatmentSession.objects.select_related(
        "clinic", "practitioner", "prescriber", "organization"
    ).get(pk=event.session_id)
    patient = Patient.objects.get(pk=event.patient_id)
    points = charting.live_points(session)
    try:
        product = catalogue.product(session.product_id)
        brand, generic, unit_system = product.brand, product.generic, product.unit_system
    except KeyError:
        brand, generic, unit_system = session.product_id, "", ""
    by_area: dict[str, Decimal] = defaultdict(Decimal)
    for p in points:
        by_area[_area_label(p.area)] += p.units
    suspect = SuspectProduct(
        product_id=session.product_id,
        brand=brand,
        generic=generic,
        unit_system=unit_system,
        lots=[
            LotPart(lot.get("lot_number", ""), lot.get("expiry", ""), lot.get("source", ""))
            for lot in event.lots
        ],
        total_units=sum((p.units for p in points), Decimal(0)),
        route=_depths(points),
        given_on=session.treated_on,
        indication=_indication_name(session.indication),
        areas=sorted(by_area.items()),
    )
    reaction = Reaction(
        kind=event.get_kind_display(),
        other_text=event.other_text,
        description=event.description,
        onset_on=event.onset_on,
        days_to_onset=(event.onset_on - session.treated_on).days,
        severity=event.get_severity_display(),
        serious=event.serious,
        criteria=criteria_labels(event),
        outcome=event.get_outcome_display(),
        outcome_on=event.outcome_on,
        action_taken=event.action_taken,
    )
    items = list(
        HistoryItem.objects.for_org(event.organization_id)
        .filter(patient=patient, entered_in_error=False)
        .order_by("kind", "recorded_at")
    )
    window = int(getattr(settings, "GLABELLA_CUMULATIVE_WINDOW_DAYS", 90))
    since = session.treated_on - timedelta(days=window)
    prior: list[PriorTreatment] = []
    others = (
        TreatmentSession.objects.for_org(event.organization_id)
        .filter(
            patient=patient,
            status__in=RECORDABLE,
            treated_on__gte=since,
            treated_on__lte=event.onset_on,
        )
        .exclude(pk=session.pk)
    )
    for other in others:
        units = sum((p.units for p in charting.live_points(other)), Decimal(0))
        prior.append(
            PriorTreatment(
                on=other.treated_on,
                product_id=other.product_id,
                brand=_brand(other.product_id),
                units=units,
                where="here",
                detail=_indication_name(other.indication),
            )
        )
    for item in items:
        if (
            item.kind == HistoryKind.OUTSIDE_TREATMENT
            and item.treated_on
            and since <= item.treated_on <= event.onset_on
            and item.units is not None
        ):
            prior.append(
                PriorTreatment(
                    on=item.treated_on,
                    product_id=item.product_id,
                    brand=_brand(item.product_id),
                    units=item.units,
                    where="elsewhere",
                    detail=", ".join(
                        t for t in (item.area, _indication_name(item.indication)) if t
                    ),
                )
            )
    prior.sort(key=lambda t: t.on, reverse=True)
    org = session.organization
    return ReportSummary(
        event_id=event.pk,
        serious=event.serious,
        reported_on=event.reported_on,
        report_reference=event.report_reference,
        entered_in_error=event.entered_in_error,
        error_reason=event.error_reason,
        recorded_at=event.recorded_at,
        reporter=Reporter(
            organization=org.name,
            clinic=session.clinic.name,
            clinic_address=session.clinic.address,
            practitioner=_person(session.practitioner),
            practitioner_email=session.practitioner.email,
            prescriber=_person(session.prescriber),
            recorded_by=_person(event.recorded_by),
        ),
        patient=PatientPart(
            initials=_initials(patient),
            age_at_onset=patient.age_on(event.onset_on),
            sex=patient.get_sex_display(),
            weight_kg=patient.weight_kg,
            weight_recorded_on=patient.weight_recorded_on,
        ),
        product=suspect,
        reaction=reaction,
        history=[_history_text(i) for i in items if i.kind in HISTORY_KINDS],
        medicines=[_history_text(i) for i in items if i.kind == HistoryKind.MEDICATION],
        prior_window_days=window,
        prior=prior,
    )
