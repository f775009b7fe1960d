"""The only writers of treatment sessions. Every change: validate, check the version, write,
audit, in one transaction. Every check of a dose goes to ``glabella.clinical.safety``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q, Sum
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, User
from glabella.accounts.roles import can
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting import diagrams
from glabella.charting.models import (
    LOCKED,
    Amendment,
    Depth,
    InjectionPoint,
    Override,
    SessionLocked,
    Status,
    TreatmentSession,
)
from glabella.clinical import catalogue, indications, overrides, protocols, reconstitution, safety
from glabella.clinical.settings import ClinicalSettings
from glabella.consent import services as consent_services
from glabella.patients import services as patient_services
from glabella.patients.models import HistoryKind, Patient

MAX_UNITS_PER_POINT = Decimal(500)
REVIEW_AFTER_DAYS = 14


class StaleVersion(Exception):
    """Someone else changed the draft since this page loaded."""

    def __init__(self, current: int) -> None:
        super().__init__(
            "Someone else changed this session while you were working on it. Your last change "
            "was not saved; the page now shows the session as it is. Please check and redo it."
        )
        self.current = current


class SigningRefused(Exception):
    """Signing is not possible yet; ``reasons`` says why, in plain words."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(" ".join(reasons))
        self.reasons = reasons


def clinical_settings() -> ClinicalSettings:
    from django.conf import settings

    return ClinicalSettings(cumulative_window_days=settings.GLABELLA_CUMULATIVE_WINDOW_DAYS)


# --- reading ---------------------------------------------------------------------------


def live_points(session: TreatmentSession) -> list[InjectionPoint]:
    return list(session.points.filter(removed=False).order_by("number"))


def view_session(actor: Actor, session: TreatmentSession, part: str = "chart") -> None:
    """Record that ACTOR looked at SESSION (every view of clinical data is audited)."""
    actor.require("session.view")
    if session.organization_id != actor.organization.pk:
        raise PermissionError("That session belongs to another organization.")
    record(
        actor,
        Action.VIEW,
        session,
        label=f"{session.patient}: treatment session {session.treated_on:%d/%m/%Y}",
        detail={"patient": session.patient_id, "part": part, "version": session.version},
    )


def last_signed_session(patient: Patient) -> TreatmentSession | None:
    """The patient's most recent signed (or amended) session: what "repeat last" copies."""
    return (
        TreatmentSession.objects.filter(
            organization=patient.organization,
            patient=patient,
            status__in=[Status.SIGNED, Status.AMENDED],
        )
        .order_by("-treated_on", "-signed_at")
        .first()
    )


def recent_lot(session: TreatmentSession) -> tuple[str, date] | None:
    """A suggestion for a draft with no lot yet: the lot most recently typed on another session
    of the same product at the same clinic, if it is still in date on the session's day.

    Only ever offered to the user (one tap to accept); never applied on its own.
    """
    other = (
        TreatmentSession.objects.filter(
            organization=session.organization,
            clinic=session.clinic,
            product_id=session.product_id,
            lot_expiry__gte=session.treated_on,
        )
        .exclude(pk=session.pk)
        .exclude(lot_number="")
        .exclude(status=Status.VOIDED)
        .order_by("-created_at")
        .values_list("lot_number", "lot_expiry")
        .first()
    )
    return (other[0], other[1]) if other else None


def patient_facts(patient: Patient) -> safety.PatientFacts:
    return safety.PatientFacts(
        date_of_birth=patient.date_of_birth,
        weight_kg=patient.weight_kg,
        flags=patient_services.patient_flags(patient),
    )


def treatment_history(
    patient: Patient, *, exclude: TreatmentSession | None = None
) -> list[safety.PastTreatment]:
    """Signed sessions here (per product) and active treatments recorded from elsewhere."""
    history: list[safety.PastTreatment] = []
    # One query: each signed session's total in the database, never point by point.
    signed = TreatmentSession.objects.filter(
        organization_id=patient.organization_id,
        patient=patient,
        status__in=[Status.SIGNED, Status.AMENDED],
    )
    if exclude is not None:
        signed = signed.exclude(pk=exclude.pk)
    sessions = signed.annotate(
        total=Sum("points__units", filter=Q(points__removed=False))
    ).values_list("treated_on", "product_id", "indication", "total")
    for treated_on, product_id, indication, total in sessions:
        if total:
            history.append(safety.PastTreatment(treated_on, product_id, indication, total))
    outside = patient_services.active_history(patient).filter(kind=HistoryKind.OUTSIDE_TREATMENT)
    for item in outside:
        if item.treated_on and item.units and item.product_id:
            history.append(
                safety.PastTreatment(
                    item.treated_on,
                    item.product_id,
                    item.indication or "other",
                    item.units,
                    outside=True,
                )
            )
    return history


def plan_for(session: TreatmentSession, points: list[InjectionPoint] | None = None) -> safety.Plan:
    points = live_points(session) if points is None else points
    vial = safety.VialFacts(lot_expiry=session.lot_expiry) if session.lot_expiry else None
    return safety.Plan(
        product_id=session.product_id,
        indication=session.indication,
        date=session.treated_on,
        points=[safety.PlannedPoint(p.area, p.muscle, p.side, p.units, p.depth) for p in points],
        vial=vial,
    )


def findings(session: TreatmentSession) -> list[safety.Finding]:
    return safety.check(
        plan_for(session),
        patient_facts(session.patient),
        treatment_history(session.patient, exclude=session),
        timezone.now(),
        clinical_settings(),
    )


@dataclass
class Totals:
    total: Decimal = Decimal(0)
    by_area: dict[str, Decimal] = field(default_factory=dict)
    by_side: dict[str, Decimal] = field(default_factory=dict)
    points: int = 0
    concentration: Decimal | None = None  # units per 0.1 mL
    volume_ml: Decimal | None = None
    vial_units: int | None = None

    @property
    def vial_left(self) -> Decimal | None:
        if self.vial_units is None:
            return None
        return Decimal(self.vial_units) - self.total


def totals(session: TreatmentSession, points: list[InjectionPoint] | None = None) -> Totals:
    points = live_points(session) if points is None else points
    by_area: dict[str, Decimal] = defaultdict(Decimal)
    by_side: dict[str, Decimal] = defaultdict(Decimal)
    for p in points:
        by_area[p.area] += p.units
        by_side[{"L": "Left", "R": "Right"}.get(p.side, "Midline")] += p.units
    t = Totals(
        total=sum((p.units for p in points), Decimal(0)),
        by_area=dict(by_area),
        by_side=dict(by_side),
        points=len(points),
        vial_units=session.vial_units,
    )
    if session.vial_units and session.diluent_ml:
        try:
            t.concentration = reconstitution.concentration(
                session.product_id, session.vial_units, session.diluent_ml
            )
            t.volume_ml = reconstitution.volume_ml(session.product_id, t.total, t.concentration)
        except (ValueError, KeyError):
            t.concentration = None
    return t


# --- validation ------------------------------------------------------------------------


def parse_point_units(raw: Any) -> Decimal:
    if isinstance(raw, float):
        raw = str(raw)
    text = str(raw if raw is not None else "").strip().replace(",", ".")
    if not text:
        raise ValidationError({"units": "Enter the units for this point."})
    try:
        units = Decimal(text)
    except InvalidOperation:
        raise ValidationError({"units": f"“{text}” is not a number of units."}) from None
    if not units.is_finite():
        raise ValidationError({"units": "Units must be an ordinary number."})
    if units <= 0:
        raise ValidationError({"units": "Units must be more than zero."})
    if units > MAX_UNITS_PER_POINT:
        raise ValidationError(
            {
                "units": f"{units} U at one point is not a plausible dose (more than "
                f"{MAX_UNITS_PER_POINT} U). Check the figure."
            }
        )
    if units != units.quantize(Decimal("0.01")):
        raise ValidationError({"units": "Units can have at most two decimal places."})
    return units


def _coordinate(raw: Any, name: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValidationError({name: "The point's position is not a number."}) from None
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(100):
        raise ValidationError({name: "The point is off the diagram."})
    return value.quantize(Decimal("0.01"))


def _placement(diagram: str, x: Any, y: Any) -> tuple[str, Decimal, Decimal, diagrams.Region]:
    try:
        diagrams.get(diagram)
    except KeyError:
        raise ValidationError({"diagram": "Choose one of the diagrams."}) from None
    xd, yd = _coordinate(x, "x"), _coordinate(y, "y")
    region = diagrams.region_at(diagram, xd, yd)
    if region is None:
        raise ValidationError(
            {"x": "That spot is outside the marked muscle areas. Tap inside a marked area."}
        )
    return diagram, xd, yd, region


# --- version guard ---------------------------------------------------------------------


def _claim(session: TreatmentSession, expected_version: int) -> TreatmentSession:
    """Inside a transaction: bump the version if it is still EXPECTED_VERSION and a draft."""
    bumped = TreatmentSession.objects.filter(
        pk=session.pk, version=expected_version, status=Status.DRAFT
    ).update(version=F("version") + 1)
    current = TreatmentSession.objects.select_related("patient").get(pk=session.pk)
    if not bumped:
        if current.status in LOCKED:
            raise SessionLocked(
                "This session has been signed: it can no longer be changed except by amendment."
            )
        raise StaleVersion(current.version)
    return current


def _audit(actor: Actor, session: TreatmentSession, action: str, what: str, **detail: Any) -> None:
    record(
        actor,
        action,
        session,
        label=f"{session.patient}: {what}",
        detail={"patient": session.patient_id, "version": session.version, **detail},
    )


# --- drafting --------------------------------------------------------------------------


def start_session(
    actor: Actor,
    patient: Patient,
    *,
    indication: str,
    product_id: str,
    treated_on: date | None = None,
    prescriber: User | None = None,
    start_from: str = "blank",
    follow_up_of: TreatmentSession | None = None,
) -> TreatmentSession:
    """Open a draft session; START_FROM is "blank", "protocol:<id>" or "repeat"."""
    actor.require("session.chart")
    if patient.organization_id != actor.organization.pk or actor.clinic is None:
        raise PermissionError("That patient belongs to another organization.")
    errors: dict[str, str] = {}
    if not indications.exists(indication):
        errors["indication"] = "Choose the indication."
    try:
        catalogue.product(product_id)
    except KeyError:
        errors["product_id"] = "Choose the product."
    treated_on = treated_on or timezone.localdate()
    if treated_on > timezone.localdate():
        errors["treated_on"] = "A treatment cannot be charted for a future date."
    if prescriber is None and can(actor.role, "session.override"):
        prescriber = actor.user
    if (
        prescriber is not None
        and not Membership.objects.filter(
            user=prescriber, organization=actor.organization, role="prescriber", is_active=True
        ).exists()
    ):
        errors["prescriber"] = "The prescriber of record must be a prescriber of this organization."
    if follow_up_of is not None and (
        follow_up_of.patient_id != patient.pk
        or follow_up_of.status not in (Status.SIGNED, Status.AMENDED)
    ):
        errors["follow_up_of"] = "A touch-up must follow a signed session of the same patient."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        session = TreatmentSession.objects.create(
            organization=actor.organization,
            patient=patient,
            clinic=actor.clinic,
            practitioner=actor.user,
            prescriber=prescriber,
            indication=indication,
            product_id=product_id,
            treated_on=treated_on,
            flags=sorted(patient_services.patient_flags(patient)),
            created_by=actor.user,
            follow_up_of=follow_up_of,
        )
        _audit(actor, session, Action.CREATE, "treatment session started", start_from=start_from)
        if start_from.startswith("protocol:"):
            session = apply_protocol(actor, session, start_from.split(":", 1)[1], session.version)
        elif start_from == "repeat":
            session = repeat_last(actor, session, session.version)
    return session


def _next_number(session: TreatmentSession) -> int:
    top = session.points.aggregate(n=Max("number"))["n"]
    return (top or 0) + 1


def add_point(
    actor: Actor,
    session: TreatmentSession,
    expected_version: int,
    *,
    diagram: str,
    x: Any,
    y: Any,
    units: Any,
    depth: str = Depth.IM,
    muscle: str | None = None,
    area: str | None = None,
    side: str | None = None,
) -> InjectionPoint:
    actor.require("session.chart")
    units_d = parse_point_units(units)
    diagram, xd, yd, region = _placement(diagram, x, y)
    if depth not in Depth.values:
        raise ValidationError({"depth": "Choose intramuscular, intradermal or subcutaneous."})
    with transaction.atomic():
        session = _claim(session, expected_version)
        point = InjectionPoint.objects.create(
            organization=session.organization,
            session=session,
            number=_next_number(session),
            diagram=diagram,
            x=xd,
            y=yd,
            area=(area or region.area)[:60],
            muscle=(muscle or region.muscle)[:60],
            side=side if side in ("L", "R", "mid") else region.side,
            units=units_d,
            depth=depth,
        )
        _audit(actor, session, Action.UPDATE, f"point {point.number} added", point=point.as_dict())
    return point


def update_point(
    actor: Actor, session: TreatmentSession, expected_version: int, number: int, **changes: Any
) -> InjectionPoint:
    """Change a point's units, depth, place (x, y: area/muscle/side follow) or labels."""
    actor.require("session.chart")
    clean: dict[str, Any] = {}
    if "units" in changes:
        clean["units"] = parse_point_units(changes["units"])
    if "depth" in changes:
        if changes["depth"] not in Depth.values:
            raise ValidationError({"depth": "Choose intramuscular, intradermal or subcutaneous."})
        clean["depth"] = changes["depth"]
    with transaction.atomic():
        session = _claim(session, expected_version)
        point = session.points.select_for_update().get(number=number, removed=False)
        before = point.as_dict()
        if "x" in changes or "y" in changes:
            diagram, xd, yd, region = _placement(
                changes.get("diagram", point.diagram),
                changes.get("x", point.x),
                changes.get("y", point.y),
            )
            clean.update(
                diagram=diagram,
                x=xd,
                y=yd,
                area=region.area,
                muscle=region.muscle,
                side=region.side,
            )
        for name in ("area", "muscle"):
            if changes.get(name):
                clean[name] = str(changes[name]).strip()[:60]
        if changes.get("side") in ("L", "R", "mid"):
            clean["side"] = changes["side"]
        for name, value in clean.items():
            setattr(point, name, value)
        point.save()
        _audit(
            actor,
            session,
            Action.UPDATE,
            f"point {number} changed",
            before=before,
            after=point.as_dict(),
        )
    return point


def remove_point(
    actor: Actor, session: TreatmentSession, expected_version: int, number: int
) -> InjectionPoint:
    return _set_removed(actor, session, expected_version, number, removed=True)


def restore_point(
    actor: Actor, session: TreatmentSession, expected_version: int, number: int
) -> InjectionPoint:
    """Undo a removal."""
    return _set_removed(actor, session, expected_version, number, removed=False)


def _set_removed(
    actor: Actor, session: TreatmentSession, expected_version: int, number: int, *, removed: bool
) -> InjectionPoint:
    actor.require("session.chart")
    with transaction.atomic():
        session = _claim(session, expected_version)
        point = session.points.select_for_update().get(number=number)
        point.removed = removed
        point.save(update_fields=["removed"])
        _audit(
            actor, session, Action.UPDATE, f"point {number} {'removed' if removed else 'restored'}"
        )
    return point


def mirror_point(
    actor: Actor, session: TreatmentSession, expected_version: int, number: int
) -> InjectionPoint:
    """The same dose at the mirror-image spot on the other side."""
    point = session.points.get(number=number, removed=False)
    diagram, x, y = diagrams.mirror(point.diagram, point.x, point.y)
    region = diagrams.region_at(diagram, x, y)
    if region is None or region.side == point.side:
        raise ValidationError({"x": "This point has no other side to mirror to."})
    return add_point(
        actor,
        session,
        expected_version,
        diagram=diagram,
        x=x,
        y=y,
        units=point.units,
        depth=point.depth,
    )


def apply_protocol(
    actor: Actor, session: TreatmentSession, protocol_id: str, expected_version: int
) -> TreatmentSession:
    """Lay out a protocol's points (those with a fixed dose) on the draft."""
    actor.require("session.chart")
    try:
        protocol = protocols.get(protocol_id)
    except KeyError:
        raise ValidationError({"protocol": "Choose one of the protocols."}) from None
    if protocol.product_ids and session.product_id not in protocol.product_ids:
        names = ", ".join(catalogue.product(p).brand for p in protocol.product_ids)
        raise ValidationError(
            {
                "protocol": f"This protocol is for {names}; this session uses "
                f"{catalogue.product(session.product_id).brand}. Units are not interchangeable."
            }
        )
    with transaction.atomic():
        session = _claim(session, expected_version)
        number = _next_number(session)
        for site in protocol.sites:
            if site.units <= 0:
                continue  # a muscle whose dose the clinician decides (e.g. cervical dystonia)
            for _ in range(site.count):
                InjectionPoint.objects.create(
                    organization=session.organization,
                    session=session,
                    number=number,
                    diagram=site.diagram,
                    x=site.x,
                    y=site.y,
                    area=site.area,
                    muscle=site.muscle,
                    side=site.side,
                    units=site.units,
                    depth=site.depth,
                )
                number += 1
        session.protocol_id = protocol.id
        session.save(update_fields=["protocol_id"])
        _audit(actor, session, Action.UPDATE, f"protocol {protocol.id} laid out")
    return session


@dataclass(frozen=True)
class SessionRow:
    session: TreatmentSession
    indication: str
    product: str
    total: Decimal
    points: int


def sessions_for(patient: Patient) -> list[SessionRow]:
    """The patient's treatment sessions, newest first, with their totals (own product units)."""
    rows = []
    sessions = (
        TreatmentSession.objects.for_org(patient.organization)
        .filter(patient=patient)
        .select_related("practitioner")
        .prefetch_related("points")
        .order_by("-treated_on", "-created_at")
    )
    for s in sessions:
        live = [p for p in s.points.all() if not p.removed]
        rows.append(
            SessionRow(
                session=s,
                indication=indications.get(s.indication).name,
                product=catalogue.product(s.product_id).brand,
                total=sum((p.units for p in live), Decimal(0)),
                points=len(live),
            )
        )
    return rows


def previous_session(session: TreatmentSession) -> TreatmentSession | None:
    return (
        TreatmentSession.objects.filter(
            organization=session.organization,
            patient=session.patient,
            status__in=[Status.SIGNED, Status.AMENDED],
        )
        .exclude(pk=session.pk)
        .order_by("-treated_on", "-signed_at")
        .first()
    )


def repeat_last(actor: Actor, session: TreatmentSession, expected_version: int) -> TreatmentSession:
    """Copy the points of the patient's last signed session: same product only."""
    actor.require("session.chart")
    last = previous_session(session)
    if last is None:
        raise ValidationError({"start_from": "This patient has no signed treatment to repeat."})
    if last.product_id != session.product_id:
        last_brand = catalogue.product(last.product_id).brand
        this_brand = catalogue.product(session.product_id).brand
        raise ValidationError(
            {
                "start_from": f"The last treatment used {last_brand}; this session uses "
                f"{this_brand}. Units of different products are not interchangeable, so it "
                "cannot be repeated."
            }
        )
    with transaction.atomic():
        session = _claim(session, expected_version)
        number = _next_number(session)
        for p in live_points(last):
            InjectionPoint.objects.create(
                organization=session.organization,
                session=session,
                number=number,
                diagram=p.diagram,
                x=p.x,
                y=p.y,
                area=p.area,
                muscle=p.muscle,
                side=p.side,
                units=p.units,
                depth=p.depth,
            )
            number += 1
        session.protocol_id = last.protocol_id
        session.save(update_fields=["protocol_id"])
        _audit(actor, session, Action.UPDATE, "repeated the last treatment", repeated=last.pk)
    return session


DETAIL_FIELDS = ("lot_number", "lot_expiry", "vial_units", "diluent_ml", "pre_notes", "prescriber")


def update_details(
    actor: Actor, session: TreatmentSession, expected_version: int, data: dict[str, Any]
) -> TreatmentSession:
    """Lot number and expiry, vial size and diluent, notes, prescriber of record."""
    actor.require("session.chart")
    clean = _clean_details(session, data, actor)
    with transaction.atomic():
        session = _claim(session, expected_version)
        before = {k: _plain(getattr(session, k)) for k in clean}
        for k, v in clean.items():
            setattr(session, k, v)
        session.save()
        _audit(
            actor,
            session,
            Action.UPDATE,
            "details changed",
            before=before,
            after={k: _plain(v) for k, v in clean.items()},
        )
    return session


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal | date):
        return str(v)
    if hasattr(v, "pk"):
        return v.pk
    return v


def _clean_details(session: TreatmentSession, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if "lot_number" in data:
        clean["lot_number"] = str(data["lot_number"] or "").strip().upper()[:40]
    if "lot_expiry" in data:
        clean["lot_expiry"] = data["lot_expiry"] or None
    if "pre_notes" in data:
        clean["pre_notes"] = str(data["pre_notes"] or "")
    if "vial_units" in data or "diluent_ml" in data:
        vial = data.get("vial_units") or None
        diluent = data.get("diluent_ml") or None
        if vial is not None:
            product = catalogue.product(session.product_id)
            if int(vial) not in product.vial_units:
                sizes = ", ".join(f"{v} U" for v in product.vial_units)
                errors["vial_units"] = f"{product.brand} comes in {sizes} vials."
        if diluent is not None and vial is not None and "vial_units" not in errors:
            try:
                reconstitution.concentration(session.product_id, int(vial), Decimal(str(diluent)))
            except ValueError as exc:
                errors["diluent_ml"] = str(exc)
        clean["vial_units"] = int(vial) if vial is not None else None
        clean["diluent_ml"] = Decimal(str(diluent)) if diluent is not None else None
    if "prescriber" in data:
        p = data["prescriber"]
        if (
            p is not None
            and not Membership.objects.filter(
                user=p, organization=actor.organization, role="prescriber", is_active=True
            ).exists()
        ):
            errors["prescriber"] = (
                "The prescriber of record must be a prescriber of this organization."
            )
        clean["prescriber"] = p
    if errors:
        raise ValidationError(errors)
    return clean


# --- overrides, signing, amending, voiding ----------------------------------------------


def open_blocks(
    session: TreatmentSession, current: list[safety.Finding] | None = None
) -> list[safety.Finding]:
    """Blocking findings not covered by an override of exactly that finding."""
    current = findings(session) if current is None else current
    covered = {(o.rule, o.message) for o in session.overrides.all()}
    return [f for f in current if f.severity == "block" and (f.rule, f.message) not in covered]


def override(actor: Actor, session: TreatmentSession, rule: str, reason: str) -> Override:
    actor.require("session.override")
    reason = reason.strip()
    if len(reason) < 10:
        raise ValidationError({"reason": "Write the clinical reason for going ahead (a sentence)."})
    if not overrides.can_override(rule):
        raise ValidationError({"reason": overrides.why_not(rule)})
    with transaction.atomic():
        session = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        if session.status != Status.DRAFT:
            raise SessionLocked("This session has been signed.")
        match = [f for f in findings(session) if f.rule == rule and f.severity == "block"]
        if not match:
            raise ValidationError(
                {"reason": "That finding is no longer there; nothing to override."}
            )
        created = [
            Override.objects.create(
                organization=session.organization,
                session=session,
                rule=f.rule,
                message=f.message,
                source=f.source,
                reason=reason,
                by=actor.user,
            )
            for f in match
        ]
        _audit(
            actor,
            session,
            Action.UPDATE,
            f"override of {rule}",
            rule=rule,
            reason=reason,
            findings=[f.message for f in match],
        )
    return created[0]


def sign(actor: Actor, session: TreatmentSession, expected_version: int) -> TreatmentSession:
    actor.require("session.sign")
    with transaction.atomic():
        session = _claim(session, expected_version)
        points = live_points(session)
        current = findings(session)
        reasons: list[str] = []
        if not points:
            reasons.append("Chart at least one injection point.")
        blocks = open_blocks(session, current)
        for f in blocks:
            tail = "" if overrides.can_override(f.rule) else " This cannot be overridden."
            reasons.append(f"{f.message}{tail}")
        if not session.lot_number or not session.lot_expiry:
            reasons.append("Enter the lot number and expiry date of the vial used.")
        if session.prescriber_id is None:
            reasons.append("Choose the prescriber of record.")
        category = consent_services.category_for_indication(session.indication)
        consent = consent_services.valid_consent(session.patient, category, session.treated_on)
        if consent is None:
            reasons.append(
                f"There is no valid {category.replace('-', ' ')} consent on file for this date."
            )
        if reasons:
            raise SigningRefused(reasons)
        session.status = Status.SIGNED
        session.signed_at = timezone.now()
        session.signed_by = actor.user
        session.consent = consent
        session.flags = sorted(patient_services.patient_flags(session.patient))
        session.findings_at_signing = [_finding_dict(f) for f in current]
        if indications.is_cosmetic(session.indication) and session.follow_up_of_id is None:
            earlier = TreatmentSession.objects.filter(
                organization=session.organization,
                patient=session.patient,
                indication=session.indication,
                status__in=[Status.SIGNED, Status.AMENDED],
            ).exclude(pk=session.pk)
            if not earlier.exists():
                session.review_due_on = session.treated_on + timedelta(days=REVIEW_AFTER_DAYS)
        session.save()
        _audit(
            actor,
            session,
            Action.SIGN,
            "treatment session signed",
            total=str(totals(session, points).total),
            points=len(points),
        )
    return session


def _finding_dict(f: safety.Finding) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity, "message": f.message, "source": f.source}


def snapshot(session: TreatmentSession) -> dict[str, Any]:
    return {
        "status": session.status,
        "lot_number": session.lot_number,
        "lot_expiry": _plain(session.lot_expiry),
        "vial_units": session.vial_units,
        "diluent_ml": _plain(session.diluent_ml),
        "pre_notes": session.pre_notes,
        "points": [p.as_dict() for p in live_points(session)],
    }


def amend(
    actor: Actor,
    session: TreatmentSession,
    reason: str,
    *,
    point_units: dict[int, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> Amendment:
    """Correct a signed session: the record of what was given, with the reason. Never silent."""
    actor.require("session.sign")
    reason = reason.strip()
    if len(reason) < 5:
        raise ValidationError({"reason": "Say why the record is being corrected."})
    point_units = point_units or {}
    parsed = {int(n): parse_point_units(u) for n, u in point_units.items()}
    with transaction.atomic():
        session = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        if session.status not in (Status.SIGNED, Status.AMENDED):
            raise ValidationError(
                {"reason": "Only a signed session is amended; a draft is simply edited."}
            )
        clean = _clean_details(session, details or {}, actor)
        before = snapshot(session)
        changed = False
        for number, units in parsed.items():
            point = session.points.get(number=number, removed=False)
            if point.units != units:
                point.units = units
                point._allow_locked_write = True  # type: ignore[attr-defined]
                point.save(update_fields=["units"])
                changed = True
        for k, v in clean.items():
            if getattr(session, k) != v:
                setattr(session, k, v)
                changed = True
        if not changed:
            raise ValidationError({"reason": "Nothing was changed, so there is nothing to amend."})
        session.status = Status.AMENDED
        session.version += 1
        session._allow_locked_write = True  # type: ignore[attr-defined]
        session.save()
        after = snapshot(session)
        after["findings"] = [_finding_dict(f) for f in findings(session)]
        number = (session.amendments.aggregate(n=Max("number"))["n"] or 0) + 1
        amendment = Amendment.objects.create(
            organization=session.organization,
            session=session,
            number=number,
            reason=reason,
            by=actor.user,
            before=before,
            after=after,
        )
        _audit(actor, session, Action.UPDATE, f"amendment {number}", reason=reason)
    return amendment


def void(actor: Actor, session: TreatmentSession, reason: str) -> TreatmentSession:
    """Mark a session entered in error. It stays visible, struck through, with the reason."""
    actor.require("session.sign")
    reason = reason.strip()
    if len(reason) < 5:
        raise ValidationError({"reason": "Say why this session was entered in error."})
    with transaction.atomic():
        session = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        if session.status == Status.VOIDED:
            raise ValidationError({"reason": "This session is already voided."})
        before = snapshot(session)
        was_locked = session.status in LOCKED
        session.status = Status.VOIDED
        session.voided_at = timezone.now()
        session.void_reason = reason[:300]
        session.version += 1
        session._allow_locked_write = True  # type: ignore[attr-defined]
        session.save()
        if was_locked:
            number = (session.amendments.aggregate(n=Max("number"))["n"] or 0) + 1
            Amendment.objects.create(
                organization=session.organization,
                session=session,
                number=number,
                kind="void",
                reason=reason,
                by=actor.user,
                before=before,
                after=snapshot(session),
            )
        _audit(actor, session, Action.UPDATE, "voided", reason=reason)
    return session
