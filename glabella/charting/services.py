"""The only writers of treatment sessions. Every change: validate, check the version, write,
audit, in one transaction. Every check of a dose goes to ``glabella.clinical.safety``.

Drawing from stock
==================
Where a clinic keeps its stock of the session's product in Glabella
(``inventory.services.tracks_stock``), every injection point is drawn from a reconstituted vial:
one ``administer`` move in the stock ledger per point, written by
``inventory.services.draw`` in the same transaction as the change of the point, so a refused
draw (the vial holds too little, is past its use-by time, its lot has expired) rolls the
change back and the reason is shown; nothing is half-written.

- ``select_vial`` chooses the session's vial in use, only among
  ``inventory.services.usable_vials`` (the reason is given for any other). Its lot fills the
  session's lot number and expiry. The points charted before a vial was chosen (a protocol
  laid out at the start, say) are drawn from it then, in order, as many as it holds; the rest
  wait for the next vial chosen, so one session may draw from several vials.
- ``add_point`` / ``mirror_point`` draw the new point from the vial in use, if one is chosen.
  ``apply_protocol`` / ``repeat_last`` draw every point of the layout from it: if it runs out
  part way, nothing is laid out (lay the points out first, then choose the vials).
- ``update_point``: new units reverse the point's draw and draw the new units from the same
  vial; a new vial for the point reverses its draw and draws from that vial.
  ``remove_point`` reverses its draw; ``restore_point`` (undo) draws again, from the vial it
  came from if that vial can still give it, otherwise from the vial in use.
- ``sign``: where stock is kept, every point must have a draw whose units are the point's.
  Where it is not (a clinic not using the inventory yet), the typed lot number and expiry are
  needed as before.
- ``void`` reverses every draw of the session (the units go back to their vials).
- ``amend`` with new units reverses the point's draw and draws again from the same vial, both
  dated when the dose was given (the original draw's time), so the use-by and expiry checks
  apply to that moment and each period of the reconciliation shows what was given in it. If
  the vial cannot take the corrected draw (it has since been finished, wasted or destroyed, or
  holds too little), the amendment is refused as a whole: the stock side of the correction is
  then recorded by an owner as a stock adjustment of that vial (``inventory.services.adjust``),
  never by drawing from a closed vial.

The dose check sees the vial in use (``plan_for``): its lot expiry and use-by time, so the
core's ``expired-lot`` and ``vial-use-by`` blocks (never overridable) appear as soon as they
apply. The use-by time is checked against when the dose is given: now while points remain to
be drawn, otherwise the time of the last draw from the vial (a session charted in time and
signed after the vial's use-by is not blocked; its points were checked when they were drawn).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, User
from glabella.accounts.roles import can
from glabella.audit.models import Action
from glabella.audit.services import record, record_many
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
    live_point_count,
    live_units,
)
from glabella.clinical import catalogue, indications, overrides, protocols, reconstitution, safety
from glabella.clinical.settings import ClinicalSettings
from glabella.consent import services as consent_services
from glabella.inventory import services as stock
from glabella.inventory.models import CLOSED_STATES, StockMove, Vial, VialState
from glabella.patients import services as patient_services
from glabella.patients.models import HistoryItem, HistoryKind, Patient
from glabella.prepared import Prepared
from glabella.scheduling import recalls

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


_LIVE_POINTS = Prepared(
    lambda org, session: (
        InjectionPoint.objects.filter(organization_id=org, session_id=session, removed=False)
        .select_related("vial__lot")
        .order_by("number")
    )
)


def live_points(session: TreatmentSession) -> list[InjectionPoint]:
    """The session's points that are not removed, in order, with their vials and lots."""
    points = _LIVE_POINTS(session.organization_id, session.pk)
    for p in points:
        p.session = session  # as session.points would: the session in hand, not read again
    return points


_OVERRIDES = Prepared(
    lambda org, session: Override.objects.filter(
        organization_id=org, session_id=session
    ).select_related("by")
)


def session_overrides(session: TreatmentSession) -> list[Override]:
    """The warnings overridden on SESSION, with who overrode them, in the model's order.

    A session read with the ``any_override`` annotation (``charting.views._SESSION``) that had
    none and is no longer a draft is not asked again: only a draft takes new overrides
    (``override`` below), so the answer read with the session still holds."""
    if session.status != Status.DRAFT and getattr(session, "any_override", True) is False:
        return []
    found = _OVERRIDES(session.organization_id, session.pk)
    for o in found:
        o.session = session
    return found


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


def _signed_totals(org: int, patient: int, but: int | None = None) -> Any:
    # Each signed session's total in the database, never point by point.
    signed = TreatmentSession.objects.filter(
        organization_id=org, patient_id=patient, status__in=[Status.SIGNED, Status.AMENDED]
    )
    if but is not None:
        signed = signed.exclude(pk=but)
    return signed.annotate(total=live_units()).values_list(
        "treated_on", "product_id", "indication", "total"
    )


# The dose check reads these on every check (each point typed, each plan): compiled once
# (glabella/prepared.py). Outside treatments: the patient's active history of that kind.
_SIGNED_TOTALS = Prepared(lambda org, patient: _signed_totals(org, patient))
_SIGNED_TOTALS_BUT = Prepared(lambda org, patient, session: _signed_totals(org, patient, session))
_OUTSIDE_TREATMENTS = Prepared(
    lambda org, patient: HistoryItem.objects.filter(
        organization_id=org,
        patient_id=patient,
        kind=HistoryKind.OUTSIDE_TREATMENT,
        resolved_on__isnull=True,
        entered_in_error=False,
    )
)


def treatment_history(
    patient: Patient, *, exclude: TreatmentSession | None = None
) -> list[safety.PastTreatment]:
    """Signed sessions here (per product) and active treatments recorded from elsewhere."""
    history: list[safety.PastTreatment] = []
    org = patient.organization_id
    sessions = (
        _SIGNED_TOTALS(org, patient.pk)
        if exclude is None
        else _SIGNED_TOTALS_BUT(org, patient.pk, exclude.pk)
    )
    for treated_on, product_id, indication, total in sessions:
        if total:
            history.append(safety.PastTreatment(treated_on, product_id, indication, total))
    for item in _OUTSIDE_TREATMENTS(org, patient.pk):
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


def clinic_tz(session: TreatmentSession) -> ZoneInfo:
    return ZoneInfo(session.clinic.timezone or "UTC")


def vial_in_use(session: TreatmentSession) -> Vial | None:
    """The session's chosen vial (with its lot and clinic), or None."""
    if session.vial_id is None:
        return None
    return Vial.objects.select_related("lot", "clinic").get(pk=session.vial_id)


def plan_for(
    session: TreatmentSession,
    points: list[InjectionPoint] | None = None,
    vial: Vial | None = None,
) -> safety.Plan:
    """The plan the core checks. The vial is the vial in use (its lot expiry and use-by time),
    or, with no vial chosen, the lot expiry typed on the session."""
    points = live_points(session) if points is None else points
    vial = vial if vial is not None else vial_in_use(session)
    facts = None
    if vial is not None:
        facts = safety.VialFacts(
            lot_expiry=vial.lot.expiry,
            use_by=vial.use_by.astimezone(clinic_tz(session)) if vial.use_by else None,
        )
    elif session.lot_expiry:
        facts = safety.VialFacts(lot_expiry=session.lot_expiry)
    return safety.Plan(
        product_id=session.product_id,
        indication=session.indication,
        date=session.treated_on,
        points=[safety.PlannedPoint(p.area, p.muscle, p.side, p.units, p.depth) for p in points],
        vial=facts,
    )


def check_time(
    session: TreatmentSession,
    points: list[InjectionPoint] | None = None,
    draws: list[StockMove] | None = None,
) -> datetime:
    """When the dose is given, for the vial's use-by check: now while a live point still has
    to be drawn (or nothing was drawn from the vial in use), otherwise the time of the last
    draw from the vial in use."""
    now = timezone.now()
    if session.vial_id is None:
        return now
    points = live_points(session) if points is None else points
    draws = stock.session_draws(session) if draws is None else draws
    drawn = {d.point_number for d in draws}
    if not points or any(p.number not in drawn for p in points):
        return now
    from_vial = [d.at for d in draws if d.vial_id == session.vial_id]
    return max(from_vial) if from_vial else now


def findings(
    session: TreatmentSession,
    now: datetime | None = None,
    points: list[InjectionPoint] | None = None,
) -> list[safety.Finding]:
    """Every check of the clinical core on SESSION as it stands. POINTS: its live points, when
    the caller has just read them (the charting page does, for its rows)."""
    points = live_points(session) if points is None else points
    now = now or check_time(session, points)
    return safety.check(
        plan_for(session, points),
        patient_facts(session.patient),
        treatment_history(session.patient, exclude=session),
        now.astimezone(clinic_tz(session)),
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


def max_units_per_point(product_id: str | None) -> Decimal:
    """The most units one point may hold: MAX_UNITS_PER_POINT, or the product's largest vial
    when that is more (Myobloc comes in vials of up to 10,000 U and is dosed in thousands)."""
    try:
        largest = max(catalogue.product(product_id or "").vial_units, default=0)
    except KeyError:
        largest = 0
    return max(MAX_UNITS_PER_POINT, Decimal(largest))


def parse_point_units(raw: Any, product_id: str | None = None) -> Decimal:
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
    ceiling = max_units_per_point(product_id)
    if units > ceiling:
        raise ValidationError(
            {
                "units": f"{units} U at one point is not a plausible dose (more than "
                f"{ceiling} U). Check the figure."
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


def _claim(actor: Actor, session: TreatmentSession, expected_version: int) -> TreatmentSession:
    """Inside a transaction: bump the version if it is still EXPECTED_VERSION and a draft of
    ACTOR's organization (every draft edit comes through here)."""
    if session.organization_id != actor.organization.pk:
        raise PermissionError("That session belongs to another organization.")
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


# --- drawing from stock ----------------------------------------------------------------


def _u(value: Decimal) -> str:
    """Units for a message: 2.50 -> 2.5, 10.00 -> 10."""
    text = format(Decimal(value).quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def numbers_text(numbers: Iterable[int]) -> str:
    """Point numbers in words: [1, 2, 3, 5] -> "1 to 3, 5"."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(
        str(r[0]) if len(r) == 1 else f"{r[0]}, {r[1]}" if len(r) == 2 else f"{r[0]} to {r[-1]}"
        for r in runs
    )


def tracks_stock(session: TreatmentSession) -> bool:
    """Whether the session's clinic keeps its stock of the session's product in Glabella."""
    return stock.tracks_stock(session.organization, session.clinic, session.product_id)


def point_draws(session: TreatmentSession) -> dict[int, StockMove]:
    """The draw in force for each point of SESSION, by point number."""
    return {d.point_number: d for d in stock.session_draws(session) if d.point_number}


@dataclass(frozen=True)
class LotUsed:
    """A lot the points of a session were drawn from: its vials and the points of each."""

    lot_number: str
    expiry: date
    vials: tuple[tuple[int, tuple[int, ...]], ...]  # (vial id, point numbers)

    @property
    def vials_text(self) -> str:
        return "; ".join(f"vial #{v} (points {numbers_text(ns)})" for v, ns in self.vials)


def lots_used(points: list[InjectionPoint]) -> list[LotUsed]:
    """The lots and vials POINTS were drawn from (each point's ``vial``), in point order."""
    by_lot: dict[int, dict[int, list[int]]] = {}
    lots: dict[int, Any] = {}
    for p in points:
        if p.vial is None:
            continue
        lots[p.vial.lot_id] = p.vial.lot
        by_lot.setdefault(p.vial.lot_id, {}).setdefault(p.vial_id, []).append(p.number)  # type: ignore[arg-type]
    return [
        LotUsed(
            lot_number=lots[lot_id].lot_number,
            expiry=lots[lot_id].expiry,
            vials=tuple((v, tuple(ns)) for v, ns in vials.items()),
        )
        for lot_id, vials in by_lot.items()
    ]


def _brand(product_id: str) -> str:
    return catalogue.product(product_id).brand


def vial_refusal(session: TreatmentSession, vial: Vial, now: datetime | None = None) -> str:
    """Why VIAL cannot be the session's vial in use at NOW ("" when it can): only a vial that
    ``inventory.services.usable_vials`` offers can be."""
    now = now or timezone.now()
    name = f"Vial #{vial.pk}"
    if vial.organization_id != session.organization_id:
        return f"{name} is not one of your vials."
    if vial.lot.product_id != session.product_id:
        return (
            f"{name} is {_brand(vial.lot.product_id)}; this session is charted with "
            f"{_brand(session.product_id)}. Units of different products are not interchangeable."
        )
    if vial.clinic_id != session.clinic_id:
        return f"{name} is at {vial.clinic.name}, not at {session.clinic.name}."
    if vial.state == VialState.SEALED:
        return f"{name} is still sealed: record its reconstitution first."
    if vial.state in CLOSED_STATES:
        return f"{name} is {vial.get_state_display().lower()}; choose an open vial."
    info = stock.vial_info(vial, now)
    if info.blocks:
        return f"{name} cannot be used. " + " ".join(info.blocks)
    if info.units_left <= 0:
        return f"{name} is empty; choose another vial."
    usable = stock.usable_vials(session.organization, session.clinic, session.product_id, now)
    if vial.pk not in {v.pk for v in usable}:
        return f"{name} cannot be drawn from now; choose another vial."
    return ""


def _draw(
    actor: Actor,
    session: TreatmentSession,
    point: InjectionPoint,
    vial: Vial,
    *,
    now: datetime | None = None,
    returned: Decimal | None = None,
) -> StockMove:
    """Draw POINT's units from VIAL (the stock ledger locks the vial, so two sessions drawing
    at once never overdraw it). A refusal names the vial and why. RETURNED: the units of the
    point's own draw just put back in the vial (a change of the point's units)."""
    try:
        move = stock.draw(
            actor, vial, point.units, session=session, point_number=point.number, now=now
        )
    except ValidationError as exc:
        raise ValidationError({"vial": _draw_refusal(vial, point, exc, returned)}) from None
    if point.vial_id != vial.pk:
        point.vial = vial
        point.save(update_fields=["vial"])
    return move


def _draw_refusal(
    vial: Vial, point: InjectionPoint, exc: ValidationError, returned: Decimal | None = None
) -> str:
    fresh = Vial.objects.select_related("lot").get(pk=vial.pk)
    left = stock.units_left(fresh)
    short = hasattr(exc, "error_dict") and "units" in exc.error_dict
    emptied = fresh.state == VialState.FINISHED and left == 0
    if (short or emptied) and returned:
        return (
            f"Vial #{fresh.pk} has {_u(left - returned)} U left besides the {_u(returned)} U "
            f"already drawn for point {point.number}; point {point.number} needs "
            f"{_u(point.units)} U. Choose another vial for this point."
        )
    if short or emptied:
        return (
            f"Vial #{fresh.pk} has {_u(left)} U left; point {point.number} needs "
            f"{_u(point.units)} U. Choose another vial for the remaining points."
        )
    return f"Vial #{fresh.pk} cannot be drawn from for point {point.number}: " + " ".join(
        exc.messages
    )


def _reverse_point(
    actor: Actor,
    session: TreatmentSession,
    number: int,
    reason: str,
    draws: dict[int, StockMove],
    *,
    now: datetime | None = None,
) -> StockMove | None:
    """Reverse the draw of point NUMBER, if it has one; returns the draw reversed."""
    original = draws.get(number)
    if original is not None:
        stock.reverse_session_draws(actor, session, reason, point_number=number, now=now)
    return original


def _draw_layout(actor: Actor, session: TreatmentSession, points: list[InjectionPoint]) -> None:
    """Draw every point of a new layout from the vial in use, or refuse the whole layout."""
    vial = vial_in_use(session)
    if vial is None or not points:
        return
    left = stock.units_left(vial)
    need = sum((p.units for p in points), Decimal(0))
    if need > left:
        running = Decimal(0)
        first_short = points[-1]
        for p in points:
            running += p.units
            if running > left:
                first_short = p
                break
        raise ValidationError(
            {
                "vial": f"Vial #{vial.pk} has {_u(left)} U left; these {len(points)} points "
                f"need {_u(need)} U, so it runs out at point {first_short.number}. Choose "
                "another vial for the remaining points: nothing was laid out (to draw them "
                "from several vials, lay them out with no vial chosen, then choose the vials)."
            }
        )
    for p in points:
        try:
            _draw(actor, session, p, vial)
        except ValidationError as exc:
            raise ValidationError(
                {"vial": " ".join(exc.messages) + " Nothing was laid out."}
            ) from None


@dataclass(frozen=True)
class VialChoice:
    """What choosing a vial did: the points drawn from it now, and those still waiting."""

    session: TreatmentSession
    vial: Vial | None
    drawn: list[int]
    waiting: list[int]
    units_left: Decimal | None


def select_vial(
    actor: Actor,
    session: TreatmentSession,
    expected_version: int,
    vial: Vial | None,
    *,
    now: datetime | None = None,
) -> VialChoice:
    """Choose the vial new points are drawn from (None: no vial).

    Only a vial that ``inventory.services.usable_vials`` offers for the session's product and
    clinic can be chosen: reconstituted, units left, within its use-by time, lot in date; any
    other is refused with the reason. Its lot fills the session's lot number and expiry (and
    its size and diluent the volume). The live points not drawn yet are drawn from it now, in
    order, as many as it holds; the others wait for another vial.
    """
    actor.require("session.chart")
    if vial is not None and vial.organization_id != actor.organization.pk:
        raise Vial.DoesNotExist("No such vial.")
    now = now or timezone.now()
    with transaction.atomic():
        session = _claim(actor, session, expected_version)
        before = session.vial_id
        draws = point_draws(session)
        undrawn = [p for p in live_points(session) if p.number not in draws]
        if vial is None:
            session.vial = None
            session.save(update_fields=["vial"])
            _audit(actor, session, Action.UPDATE, "no vial in use", before=before)
            return VialChoice(session, None, [], [p.number for p in undrawn], None)
        vial = Vial.objects.select_related("lot", "clinic").get(pk=vial.pk)
        reason = vial_refusal(session, vial, now)
        if reason:
            raise ValidationError({"vial": reason})
        lot = vial.lot
        session.vial = vial
        session.lot_number = lot.lot_number
        session.lot_expiry = lot.expiry
        session.vial_units = vial.units
        session.diluent_ml = vial.diluent_ml
        session.save(update_fields=["vial", "lot_number", "lot_expiry", "vial_units", "diluent_ml"])
        left = stock.units_left(vial)
        drawn: list[int] = []
        for p in undrawn:
            if p.units > left:
                break
            _draw(actor, session, p, vial, now=now)
            left -= p.units
            drawn.append(p.number)
        waiting = [p.number for p in undrawn if p.number not in drawn]
        _audit(
            actor,
            session,
            Action.UPDATE,
            f"vial #{vial.pk} in use (lot {lot.lot_number})",
            before=before,
            vial=vial.pk,
            lot_number=lot.lot_number,
            drawn=drawn,
            waiting=waiting,
        )
    return VialChoice(session, vial, drawn, waiting, left)


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
    today = actor.today()  # the clinic's day, not the server's (UTC)
    treated_on = treated_on or today
    if treated_on > today:
        errors["treated_on"] = "A treatment cannot be charted for a future date."
    elif treated_on < patient.date_of_birth:
        errors["treated_on"] = "The treatment date is before the patient's date of birth."
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


@dataclass(frozen=True)
class NewPoint:
    """A point to add, as the chart or the API gives it (checked by ``add_points``)."""

    diagram: str
    x: Any
    y: Any
    units: Any
    depth: str = Depth.IM
    muscle: str | None = None
    area: str | None = None
    side: str | None = None

    @classmethod
    def like(cls, src: Any) -> NewPoint:
        """The same point as SRC (a protocol's site, an earlier point): its place and dose."""
        return cls(
            diagram=src.diagram,
            x=src.x,
            y=src.y,
            units=src.units,
            depth=src.depth,
            muscle=src.muscle,
            area=src.area,
            side=src.side,
        )


class PointRefused(ValidationError):
    """One point of several could not be added (nothing was): INDEX is its place in the list,
    the messages are that point's, keyed by field."""

    def __init__(self, index: int, error: ValidationError) -> None:
        super().__init__(error.error_dict if hasattr(error, "error_dict") else error.messages)
        self.index = index


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
    spec = NewPoint(diagram, x, y, units, depth, muscle, area, side)
    [point] = add_points(actor, session, expected_version, [spec])
    return point


def add_points(
    actor: Actor, session: TreatmentSession, expected_version: int, specs: Sequence[NewPoint]
) -> list[InjectionPoint]:
    """Add the points of SPECS, in order, as one change of the draft (one version step): every
    point is checked (its units in the product's own units, a place inside a marked muscle, the
    depth), drawn from the vial in use if one is chosen, and audited, one event each. One
    refused point refuses them all (``PointRefused`` says which); nothing is written."""
    actor.require("session.chart")
    checked = []
    for i, spec in enumerate(specs):
        try:
            units_d = parse_point_units(spec.units, session.product_id)
            diagram, xd, yd, region = _placement(spec.diagram, spec.x, spec.y)
            if spec.depth not in Depth.values:
                raise ValidationError(
                    {"depth": "Choose intramuscular, intradermal or subcutaneous."}
                )
        except ValidationError as exc:
            raise PointRefused(i, exc) from None
        checked.append((spec, units_d, diagram, xd, yd, region))
    if not checked:
        return []
    with transaction.atomic():
        session = _claim(actor, session, expected_version)
        first = _next_number(session)
        points = InjectionPoint.objects.bulk_create(
            InjectionPoint(
                organization=session.organization,
                session=session,
                number=first + i,
                diagram=diagram,
                x=xd,
                y=yd,
                area=(spec.area or region.area)[:60],
                muscle=(spec.muscle or region.muscle)[:60],
                side=spec.side if spec.side in ("L", "R", "mid") else region.side,
                units=units_d,
                depth=spec.depth,
            )
            for i, (spec, units_d, diagram, xd, yd, region) in enumerate(checked)
        )
        vial = vial_in_use(session)
        if vial is not None:
            for i, point in enumerate(points):
                try:
                    _draw(actor, session, point, vial)
                except ValidationError as exc:
                    raise PointRefused(i, exc) from None
        label = f"{session.patient}: point "
        detail = {"patient": session.patient_id, "version": session.version}
        record_many(
            actor,
            Action.UPDATE,
            session,
            [(f"{label}{p.number} added", {**detail, "point": p.as_dict()}) for p in points],
        )
    return points


def update_point(
    actor: Actor, session: TreatmentSession, expected_version: int, number: int, **changes: Any
) -> InjectionPoint:
    """Change a point's units, depth, place (x, y: area/muscle/side follow) or labels, or the
    vial it is drawn from (``vial``).

    New units: the point's draw is reversed and the new units drawn from the same vial. A new
    vial: its draw is reversed and the units drawn from that vial (a vial the session could
    choose). A refused draw changes nothing.
    """
    actor.require("session.chart")
    clean: dict[str, Any] = {}
    new_vial: Vial | None = changes.pop("vial", None)
    if new_vial is not None and new_vial.organization_id != actor.organization.pk:
        raise Vial.DoesNotExist("No such vial.")
    if "units" in changes:
        clean["units"] = parse_point_units(changes["units"], session.product_id)
    if "depth" in changes:
        if changes["depth"] not in Depth.values:
            raise ValidationError({"depth": "Choose intramuscular, intradermal or subcutaneous."})
        clean["depth"] = changes["depth"]
    with transaction.atomic():
        session = _claim(actor, session, expected_version)
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
        units_changed = "units" in clean and clean["units"] != Decimal(before["units"])
        if units_changed or new_vial is not None:
            draws = point_draws(session)
            vial = draws[number].vial if number in draws else None
            if new_vial is not None and new_vial.pk != getattr(vial, "pk", None):
                new_vial = Vial.objects.select_related("lot", "clinic").get(pk=new_vial.pk)
                reason = vial_refusal(session, new_vial)
                if reason:
                    raise ValidationError({"vial": reason})
                vial = new_vial
            elif number not in draws:
                vial = None  # never drawn: stays so until a vial is chosen
            elif not units_changed:
                vial = None  # already drawn from that vial: nothing to do
            if vial is not None:
                what = (
                    f"{_u(Decimal(before['units']))} U → {_u(point.units)} U"
                    if units_changed
                    else f"drawn from vial #{vial.pk} instead"
                )
                original = _reverse_point(
                    actor, session, number, f"point {number} changed: {what}", draws
                )
                returned = None
                if original is not None and original.vial_id == vial.pk:
                    returned = -original.units
                _draw(actor, session, point, vial, returned=returned)
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
        session = _claim(actor, session, expected_version)
        point = session.points.select_for_update().get(number=number)
        point.removed = removed
        point.save(update_fields=["removed"])
        if removed:
            _reverse_point(actor, session, number, f"point {number} removed", point_draws(session))
        else:
            _redraw_restored(actor, session, point)
        _audit(
            actor, session, Action.UPDATE, f"point {number} {'removed' if removed else 'restored'}"
        )
    return point


def _redraw_restored(actor: Actor, session: TreatmentSession, point: InjectionPoint) -> None:
    """Draw a restored point again: from the vial it came from when that vial can still give
    it, otherwise from the vial in use. With neither, it waits for a vial to be chosen."""
    if point.number in point_draws(session):
        return
    candidates: list[Vial] = []
    if point.vial_id is not None:
        candidates.append(Vial.objects.select_related("lot", "clinic").get(pk=point.vial_id))
    selected = vial_in_use(session)
    if selected is not None and selected.pk != point.vial_id:
        candidates.append(selected)
    refusal: ValidationError | None = None
    for vial in candidates:
        try:
            _draw(actor, session, point, vial)
            return
        except ValidationError as exc:
            refusal = exc
    if refusal is not None:
        raise refusal


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


def _lay_out(session: TreatmentSession, sources: Sequence[Any]) -> list[InjectionPoint]:
    """New points on SESSION copied from protocol sites or earlier points (same attributes),
    numbered after the session's last point. The caller draws them and audits."""
    number = _next_number(session)
    return [
        InjectionPoint.objects.create(
            organization=session.organization,
            session=session,
            number=number + i,
            diagram=src.diagram,
            x=src.x,
            y=src.y,
            area=src.area,
            muscle=src.muscle,
            side=src.side,
            units=src.units,
            depth=src.depth,
        )
        for i, src in enumerate(sources)
    ]


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
        session = _claim(actor, session, expected_version)
        # Sites without a fixed dose are muscles whose dose the clinician decides
        # (e.g. cervical dystonia): not laid out.
        sites = [site for site in protocol.sites if site.units > 0 for _ in range(site.count)]
        laid = _lay_out(session, sites)
        _draw_layout(actor, session, laid)
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


_SESSIONS_OF = Prepared(
    lambda org, patient: (
        TreatmentSession.objects.filter(organization_id=org, patient_id=patient)
        .select_related("practitioner")
        .annotate(live_units=live_units(), live_points=live_point_count())
        .order_by("-treated_on", "-created_at")
    )
)


def sessions_for(patient: Patient) -> list[SessionRow]:
    """The patient's treatment sessions, newest first, with their totals (own product units).

    The totals and counts are added up by the database (live points only) in the same query:
    a patient with years of sessions has hundreds of points, none of which the list shows."""
    sessions = _SESSIONS_OF(patient.organization_id, patient.pk)
    return [
        SessionRow(
            session=s,
            indication=indications.get(s.indication).name,
            product=catalogue.product(s.product_id).brand,
            total=s.live_units or Decimal(0),  # type: ignore[attr-defined]
            points=s.live_points,  # type: ignore[attr-defined]
        )
        for s in sessions
    ]


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
        session = _claim(actor, session, expected_version)
        laid = _lay_out(session, live_points(last))
        _draw_layout(actor, session, laid)
        session.protocol_id = last.protocol_id
        session.save(update_fields=["protocol_id"])
        _audit(actor, session, Action.UPDATE, "repeated the last treatment", repeated=last.pk)
    return session


DETAIL_FIELDS = ("lot_number", "lot_expiry", "vial_units", "diluent_ml", "pre_notes", "prescriber")


def update_details(
    actor: Actor, session: TreatmentSession, expected_version: int, data: dict[str, Any]
) -> TreatmentSession:
    """Lot number and expiry, vial size and diluent, notes, prescriber of record.

    With a vial in use, the lot, vial size and diluent are the vial's: they change by choosing
    another vial, never by typing."""
    actor.require("session.chart")
    clean = _clean_details(session, data, actor)
    with transaction.atomic():
        session = _claim(actor, session, expected_version)
        _refuse_typed_vial_facts(session, clean)
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


VIAL_FACTS = ("lot_number", "lot_expiry", "vial_units", "diluent_ml")


def _refuse_typed_vial_facts(session: TreatmentSession, clean: dict[str, Any]) -> None:
    if session.vial_id is None:
        return
    typed = [k for k in VIAL_FACTS if k in clean and clean[k] != getattr(session, k)]
    if typed:
        raise ValidationError(
            {
                typed[0]: f"The lot, vial size and diluent are those of vial #{session.vial_id} "
                "in use: choose another vial to change them."
            }
        )


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
        session = _claim(actor, session, expected_version)
        points = live_points(session)
        current = findings(session)
        reasons: list[str] = []
        if not points:
            reasons.append("Chart at least one injection point.")
        blocks = open_blocks(session, current)
        for f in blocks:
            tail = "" if overrides.can_override(f.rule) else " This cannot be overridden."
            reasons.append(f"{f.message}{tail}")
        if tracks_stock(session):
            reasons += _undrawn_reasons(points, point_draws(session))
        elif not session.lot_number or not session.lot_expiry:
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
        recalls.refresh(session.patient)
    return session


def _undrawn_reasons(points: list[InjectionPoint], draws: dict[int, StockMove]) -> list[str]:
    """Where stock is kept: every live point drawn from a vial, for exactly its units."""
    reasons: list[str] = []
    missing = [p.number for p in points if p.number not in draws]
    if len(missing) == 1:
        reasons.append(f"Point {missing[0]} has no vial: choose the vial it was drawn from.")
    elif missing:
        reasons.append(
            f"Points {numbers_text(missing)} have no vial: choose the vial they were drawn from."
        )
    for p in points:
        d = draws.get(p.number)
        if d is not None and -d.units != p.units:
            reasons.append(
                f"Point {p.number} is charted as {_u(p.units)} U but {_u(-d.units)} U were drawn "
                f"from vial #{d.vial_id}: change the point's units to draw it again."
            )
    return reasons


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
    """Correct a signed session: the record of what was given, with the reason. Never silent.

    A point drawn from a vial whose units change: its draw is reversed and the corrected units
    drawn from the same vial, both dated at the original draw's time (the dose was given then:
    the use-by and expiry checks apply to that moment, and the reconciliation shows the
    corrected dose in the period it was given). If that vial cannot take the corrected draw
    (it has since been finished, wasted or destroyed, or holds too little), the whole
    amendment is refused: the ledger never draws from a closed vial, and the stock side of
    the correction is recorded by an owner as a stock adjustment of the vial instead. The lots
    of a session drawn from vials come from the vials and are not amended by typing.
    """
    actor.require("session.sign")
    reason = reason.strip()
    if len(reason) < 5:
        raise ValidationError({"reason": "Say why the record is being corrected."})
    point_units = point_units or {}
    parsed = {int(n): parse_point_units(u, session.product_id) for n, u in point_units.items()}
    with transaction.atomic():
        session = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        if session.status not in (Status.SIGNED, Status.AMENDED):
            raise ValidationError(
                {"reason": "Only a signed session is amended; a draft is simply edited."}
            )
        clean = _clean_details(session, details or {}, actor)
        if any(k in clean and clean[k] != getattr(session, k) for k in VIAL_FACTS):
            drawn = StockMove.objects.filter(session=session).exists()
            if drawn:
                raise ValidationError(
                    {
                        "lot_number": "The lots of this session are those of the vials its "
                        "points were drawn from; they are not typed."
                    }
                )
        before = snapshot(session)
        changed = False
        draws = point_draws(session)
        for number, units in parsed.items():
            point = session.points.get(number=number, removed=False)
            if point.units != units:
                old_units = point.units
                point.units = units
                point._allow_locked_write = True  # type: ignore[attr-defined]
                point.save(update_fields=["units"])
                if number in draws:
                    _redraw_amended(actor, session, point, old_units, draws[number], reason)
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
        recalls.refresh(session.patient)
    return amendment


def _redraw_amended(
    actor: Actor,
    session: TreatmentSession,
    point: InjectionPoint,
    old_units: Decimal,
    original: StockMove,
    reason: str,
) -> None:
    """Reverse the draw of an amended point and draw its corrected units from the same vial,
    both dated when the dose was given. Refused as a whole if the vial cannot take it."""
    vial = original.vial
    assert vial is not None
    at = original.at
    stock.reverse_session_draws(
        actor, session, f"amendment: {reason}", point_number=point.number, now=at
    )
    try:
        stock.draw(actor, vial, point.units, session=session, point_number=point.number, now=at)
    except ValidationError as exc:
        fresh = Vial.objects.get(pk=vial.pk)
        if fresh.state in CLOSED_STATES:
            why = f"has since been {fresh.get_state_display().lower()}"
        else:
            why = "cannot take it (" + " ".join(exc.messages).rstrip(".") + ")"
        raise ValidationError(
            {
                "reason": f"Point {point.number} was drawn from vial #{vial.pk} "
                f"({_u(old_units)} U), which {why}: the stock ledger cannot record "
                f"{_u(point.units)} U drawn from it, so the amendment was not saved. Record the "
                f"difference in the stock as an owner's stock adjustment of vial #{vial.pk} "
                "instead."
            }
        ) from None


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
        if stock.session_draws(session):
            # The units go back to their vials (a closed vial's show as a discrepancy).
            stock.reverse_session_draws(actor, session, f"voided: {reason}")
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
        recalls.refresh(session.patient)
    return session
