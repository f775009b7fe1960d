"""Break-glass: in an emergency, someone whose role cannot see clinical data (the front desk)
opens one patient's emergency summary, with a written reason, for a limited time.

- ``start``: the reason (at least MIN_REASON_CHARACTERS, in words), then the access is open for
  GLABELLA_BREAK_GLASS_MINUTES. Audited (CREATE of the break-glass record, with the reason).
- ``open_access``: the user's access to the patient that is open now, or None.
- ``summary``: what a paramedic needs: allergies and medical history, screening flags, the last
  treatments (date, product, units per area and in total, lot and expiry, who treated) and side
  effects not yet resolved. Read through the models, scoped to the organization (the front
  desk's role cannot use the clinical services); ``record_view`` audits every look as the real
  user, with the break-glass id.
- ``end``: "End now". ``review``: the owner's note that they looked at it.

Owners see every break-glass until reviewed (``unreviewed_count``); auditors may read the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Organization, User
from glabella.audit.models import Action, AuditEvent
from glabella.audit.services import record
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import catalogue, indications
from glabella.outcomes.models import AdverseEvent, AdverseOutcome
from glabella.patients import screening
from glabella.patients.models import BreakGlass, HistoryItem, HistoryKind, Patient

MIN_REASON_CHARACTERS = 10
TREATMENTS_SHOWN = 5
UNRESOLVED_OUTCOMES = (
    AdverseOutcome.RECOVERING,
    AdverseOutcome.NOT_RECOVERED,
    AdverseOutcome.UNKNOWN,
)


def minutes() -> int:
    return int(getattr(settings, "GLABELLA_BREAK_GLASS_MINUTES", 30))


def clinic_time(value: datetime, actor_or_access: Actor | BreakGlass) -> datetime:
    """VALUE as the clock on the wall of the clinic where it happened, for display: a naive
    datetime (templates would otherwise show it in the server's time zone)."""
    clinic = actor_or_access.clinic
    tz = ZoneInfo(clinic.timezone) if clinic is not None else timezone.get_current_timezone()
    return timezone.localtime(value, tz).replace(tzinfo=None)


def _check_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON_CHARACTERS or len(re.findall(r"[^\W\d_]{2,}", reason)) < 2:
        raise ValidationError(
            {
                "reason": (
                    "Say in a few words why you need this patient's clinical summary now "
                    f"(at least {MIN_REASON_CHARACTERS} characters), for example "
                    "“patient collapsed in the waiting room, paramedics asking what was injected”."
                )
            }
        )
    return reason


def _own_patient(actor: Actor, patient: Patient) -> None:
    if patient.organization_id != actor.organization.pk:
        raise PermissionDenied("That patient is not part of your organization.")


@transaction.atomic
def start(actor: Actor, patient: Patient, reason: str) -> BreakGlass:
    """Open emergency access to PATIENT's summary for ACTOR, for ``minutes()``. An access the
    same person still had open on this patient is ended (the new reason replaces it)."""
    actor.require("patient.break_glass")
    _own_patient(actor, patient)
    if actor.user is None:
        raise PermissionDenied("Break-glass is for a person, not for a job.")
    reason = _check_reason(reason)
    now = timezone.now()
    BreakGlass.objects.for_org(actor.organization).filter(
        user=actor.user, patient=patient, ended_at__isnull=True, expires_at__gt=now
    ).update(ended_at=now)
    access = BreakGlass.objects.create(
        organization=actor.organization,
        clinic=actor.clinic,
        user=actor.user,
        patient=patient,
        reason=reason,
        started_at=now,
        expires_at=now + timedelta(minutes=minutes()),
    )
    record(
        actor,
        Action.CREATE,
        access,
        label=f"Broke the glass on {patient}'s record for {minutes()} minutes",
        detail={
            "break_glass": access.pk,
            "patient": patient.pk,
            "reason": reason,
            "minutes": minutes(),
        },
    )
    return access


def is_open(access: BreakGlass, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return access.ended_at is None and access.expires_at > now


def ended_at(access: BreakGlass) -> datetime:
    """When ACCESS ended or will end: ended early, else its expiry."""
    return access.ended_at or access.expires_at


def open_access(actor: Actor, patient: Patient) -> BreakGlass | None:
    return (
        BreakGlass.objects.for_org(actor.organization)
        .filter(
            user=actor.user,
            patient=patient,
            ended_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("-started_at", "-pk")
        .first()
    )


def last_access(actor: Actor, patient: Patient) -> BreakGlass | None:
    return (
        BreakGlass.objects.for_org(actor.organization)
        .filter(user=actor.user, patient=patient)
        .order_by("-started_at", "-pk")
        .first()
    )


@transaction.atomic
def end(actor: Actor, access: BreakGlass) -> BreakGlass:
    """ "End now": the summary is closed from this moment."""
    if access.organization_id != actor.organization.pk or access.user_id != getattr(
        actor.user, "pk", None
    ):
        raise PermissionDenied("Only the person who broke the glass can end it.")
    now = timezone.now()
    updated = (
        BreakGlass.objects.for_org(actor.organization)
        .filter(pk=access.pk, ended_at__isnull=True, expires_at__gt=now)
        .update(ended_at=now)
    )
    if updated:
        access.ended_at = now
        record(
            actor,
            Action.UPDATE,
            access,
            label=f"Ended emergency access to {access.patient}'s record",
            detail={"break_glass": access.pk, "change": "ended"},
        )
    return access


def record_view(actor: Actor, access: BreakGlass) -> None:
    record(
        actor,
        Action.VIEW,
        access.patient,
        label=str(access.patient),
        detail={"part": "emergency summary", "break_glass": access.pk},
    )


@transaction.atomic
def review(actor: Actor, access: BreakGlass, note: str) -> BreakGlass:
    """The owner looked at ACCESS (why, what was seen) and says so, with a note."""
    actor.require("organization.manage")
    if access.organization_id != actor.organization.pk:
        raise PermissionDenied("That record is not part of your organization.")
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Write a short note: was it a real emergency?"})
    locked = BreakGlass.objects.for_org(actor.organization).select_for_update().get(pk=access.pk)
    if locked.reviewed_at is not None:
        raise ValidationError(
            f"Already reviewed by {locked.reviewed_by} on "
            f"{clinic_time(locked.reviewed_at, actor):%d/%m/%Y %H:%M}."
        )
    locked.reviewed_by = actor.user
    locked.reviewed_at = timezone.now()
    locked.review_note = note[:2000]
    locked.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    record(
        actor,
        Action.UPDATE,
        locked,
        label=f"Reviewed the break-glass of {locked.user} on {locked.patient}'s record",
        detail={"break_glass": locked.pk, "change": "reviewed", "note": locked.review_note},
    )
    return locked


def unreviewed_count(organization: Organization) -> int:
    return BreakGlass.objects.for_org(organization).filter(reviewed_at__isnull=True).count()


def views_made(organization: Organization, accesses: list[BreakGlass]) -> dict[int, int]:
    """How many times each access's summary was looked at (from the audit log)."""
    if not accesses:
        return {}
    counts = dict.fromkeys((a.pk for a in accesses), 0)
    seen = AuditEvent.objects.filter(
        organization=organization,
        action=Action.VIEW,
        object_type="patients.patient",
        object_id__in=[str(a.patient_id) for a in accesses],
    ).values_list("detail", flat=True)
    for detail in seen:
        pk = detail.get("break_glass") if isinstance(detail, dict) else None
        if pk in counts:
            counts[pk] += 1
    return counts


# --- the emergency summary ---------------------------------------------------------------------


@dataclass
class AreaDose:
    area: str
    units: Decimal
    points: int


@dataclass
class TreatmentRow:
    session: TreatmentSession
    treated_on: date
    product: str
    indication: str
    areas: list[AreaDose]
    total: Decimal
    lots: list[tuple[str, date | None]]
    practitioner: str
    signed: bool


@dataclass
class Summary:
    patient: Patient
    age: int | None
    allergies: list[HistoryItem] = field(default_factory=list)
    history: list[HistoryItem] = field(default_factory=list)
    outside: list[HistoryItem] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    treatments: list[TreatmentRow] = field(default_factory=list)
    adverse: list[AdverseEvent] = field(default_factory=list)


def _age(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _product_name(product_id: str) -> str:
    try:
        return catalogue.product(product_id).brand
    except (KeyError, LookupError):
        return product_id


def _indication_name(code: str) -> str:
    try:
        return indications.get(code).name
    except (KeyError, LookupError):
        return code


def summary(access: BreakGlass) -> Summary:
    """The emergency summary of ACCESS's patient (everything read within its organization)."""
    org = access.organization
    patient = access.patient
    items = list(
        HistoryItem.objects.for_org(org)
        .filter(patient=patient, resolved_on__isnull=True, entered_in_error=False)
        .select_related("recorded_by")
        .order_by("kind", "-recorded_at")
    )
    flags = screening.flags_for((i.kind, i.code) for i in items)
    result = Summary(
        patient=patient,
        age=_age(patient.date_of_birth, timezone.localdate()),
        allergies=[i for i in items if i.kind == HistoryKind.ALLERGY],
        history=[
            i for i in items if i.kind not in (HistoryKind.ALLERGY, HistoryKind.OUTSIDE_TREATMENT)
        ],
        outside=[i for i in items if i.kind == HistoryKind.OUTSIDE_TREATMENT],
        flags=[screening.FLAG_LABELS.get(f, f) for f in sorted(flags)],
    )
    sessions = list(
        TreatmentSession.objects.for_org(org)
        .filter(patient=patient)
        .exclude(status=Status.VOIDED)
        .select_related("practitioner")
        .order_by("-treated_on", "-created_at")[:TREATMENTS_SHOWN]
    )
    points = (
        InjectionPoint.objects.for_org(org)
        .filter(session__in=sessions, removed=False)
        .select_related("vial__lot")
        .order_by("number")
    )
    by_session: dict[int, list[InjectionPoint]] = {}
    for p in points:
        by_session.setdefault(p.session_id, []).append(p)
    for s in sessions:
        areas: dict[str, AreaDose] = {}
        lots: dict[str, date | None] = {}
        if s.lot_number:
            lots[s.lot_number] = s.lot_expiry
        for p in by_session.get(s.pk, []):
            name = p.area or p.muscle
            dose = areas.setdefault(name, AreaDose(name, Decimal(0), 0))
            dose.units += p.units
            dose.points += 1
            if p.vial_id is not None and p.vial.lot.lot_number not in lots:
                lots[p.vial.lot.lot_number] = p.vial.lot.expiry
        result.treatments.append(
            TreatmentRow(
                session=s,
                treated_on=s.treated_on,
                product=_product_name(s.product_id),
                indication=_indication_name(s.indication),
                areas=list(areas.values()),
                total=sum((a.units for a in areas.values()), Decimal(0)),
                lots=sorted(lots.items()),
                practitioner=str(s.practitioner),
                signed=s.status != Status.DRAFT,
            )
        )
    result.adverse = list(
        AdverseEvent.objects.for_org(org)
        .filter(patient=patient, entered_in_error=False, outcome__in=UNRESOLVED_OUTCOMES)
        .order_by("-onset_on")
    )
    return result


def seconds_left(access: BreakGlass) -> int:
    return max(0, int((access.expires_at - timezone.now()).total_seconds()))


def describe(access: BreakGlass) -> dict[str, Any]:
    """Words for the log: how long it lasted (or lasts), and whether it is still open."""
    until = ended_at(access)
    lasted = max(0, int((min(until, timezone.now()) - access.started_at).total_seconds()))
    return {
        "open": is_open(access),
        "minutes": (lasted + 59) // 60,
        "ended_early": access.ended_at is not None and access.ended_at < access.expires_at,
    }


def user_label(user: User | None) -> str:
    return str(user) if user is not None else "—"
