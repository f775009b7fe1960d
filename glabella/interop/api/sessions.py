"""API: the dose check and treatment sessions (draft, points, overrides, sign).

Thin, like the charting page: every change goes through ``charting.services`` (the version
guard, the dose check of ``glabella.clinical.safety``, the stock draws and the audit row, in
one transaction). A request that adds several points adds all of them or none.

- ``POST /dose-check`` runs the same check as the charting page on a plan sent as JSON and
  writes nothing (no row, no audit event).
- ``POST /sessions/{id}/sign`` with the ``version`` read: refused with **422** and the reasons
  (``reasons``) and the blocking findings (``blocking``) when anything stops signing, **409**
  when the session changed since it was read (``current_version``) or is already signed.
- A signed session never changes through the API (409): it is corrected by amendment, with a
  reason, on its record page.

Points are placed on a charting diagram. Give ``diagram``, ``x`` and ``y`` (percentages, as
the protocols place their sites) to put a point exactly; otherwise it goes at the centre of
the diagram region of its muscle and side (``area``/``muscle``/``side`` are kept as sent).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NoReturn
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status
from pydantic import Field

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, User
from glabella.charting import diagrams
from glabella.charting import services as charting
from glabella.charting.models import SessionLocked, TreatmentSession
from glabella.charting.models import Status as SessionStatus
from glabella.clinical import catalogue, indications, protocols, safety
from glabella.interop.api.base import (
    ERRORS,
    ApiError,
    Coordinate,
    Day,
    ErrorOut,
    Id,
    IdPath,
    StrictIn,
    Units,
    get_or_404,
    patient_or_404,
    require,
    today_at,
    units_text,
)
from glabella.inventory.models import Vial
from glabella.patients import services as patient_services
from glabella.patients.models import Patient

router = Router(tags=["sessions"])

Side = Literal["L", "R", "mid"]
DepthName = Literal["IM", "ID", "SC"]

# Where a point without a position is looked for first, by indication (as the charting page
# opens its diagram); then every diagram in this order.
DIAGRAM_ORDER = ("face-front", "head-back", "neck-shoulders", "head-left", "head-right", "axillae")
INDICATION_DIAGRAM = {
    "axillary-hyperhidrosis": "axillae",
    "cervical-dystonia": "neck-shoulders",
}


# --- schemas -----------------------------------------------------------------------------------


class PointIn(StrictIn):
    area: str = Field(..., min_length=1, max_length=60, examples=["glabella"])
    muscle: str = Field(..., min_length=1, max_length=60, examples=["corrugator"])
    side: Side
    units: Units
    depth: DepthName = "IM"
    diagram: str | None = Field(
        None, max_length=30, description="a charting diagram id, with x and y"
    )
    x: Coordinate | None = None
    y: Coordinate | None = None


class PlanPointIn(PointIn):
    product: str | None = Field(
        None, max_length=30, description="only to check mixing: another product than the plan's"
    )


class DoseCheckIn(StrictIn):
    patient: Id = Field(..., description="patient id")
    product: str = Field(..., max_length=30, examples=["botox_cosmetic"])
    indication: str = Field(..., max_length=40, examples=["glabellar-lines"])
    date: Day | None = Field(None, description="the day of treatment (default today)")
    points: list[PlanPointIn] = Field(..., max_length=200)


class FindingOut(Schema):
    rule: str
    severity: str
    message: str
    source: str
    source_ids: list[str] = []
    status: str | None = None
    limit: str | None = None
    value: str | None = None


class TotalsOut(Schema):
    product: str
    brand: str
    total: str
    points: int
    by_area: dict[str, str]
    by_side: dict[str, str]


class DoseCheckOut(Schema):
    blocked: bool = Field(..., description="true when any finding blocks the plan")
    findings: list[FindingOut]
    totals: list[TotalsOut]


class SessionIn(StrictIn):
    patient: Id = Field(..., description="patient id")
    product: str = Field(..., max_length=30, examples=["botox_cosmetic"])
    indication: str = Field(..., max_length=40, examples=["glabellar-lines"])
    date: Day | None = Field(None, description="the day of treatment (default today)")
    prescriber_email: str | None = Field(
        None,
        max_length=254,
        description="the prescriber of record (default: the caller, when a prescriber)",
    )
    protocol: str | None = Field(
        None, max_length=60, description="lay out a protocol's points first"
    )
    lot_number: str | None = Field(None, max_length=40)
    lot_expiry: Day | None = None
    vial: Id | None = Field(None, description="an open vial to draw from (stock kept in Glabella)")
    pre_notes: str | None = Field(None, max_length=5000)
    points: list[PointIn] = Field([], max_length=200)


class PointsIn(StrictIn):
    version: Id = Field(..., description="the session's version, as read")
    points: list[PointIn] = Field(..., min_length=1, max_length=200)


class SignIn(StrictIn):
    version: Id = Field(..., description="the session's version, as read")


class OverrideIn(StrictIn):
    rule: str = Field(..., min_length=1, max_length=40, examples=["session-max"])
    reason: str = Field(..., max_length=2000, description="the clinical reason (a sentence)")


class PointOut(Schema):
    number: int
    area: str
    muscle: str
    side: str
    units: str
    depth: str
    diagram: str
    x: str
    y: str
    vial: int | None = None


class OverrideOut(Schema):
    rule: str
    message: str
    reason: str
    by: str
    at: datetime


class SessionSummaryOut(Schema):
    id: int
    patient: int
    date: date
    status: str
    version: int
    indication: str
    product: str
    total: str
    points: int


class SessionOut(Schema):
    id: int
    patient: int
    clinic: int
    practitioner: str
    prescriber: str | None = None
    date: date
    status: str = Field(..., description="draft, signed, amended or voided")
    version: int = Field(..., description="send it back with a change or to sign")
    indication: str
    product: str
    protocol: str | None = None
    lot_number: str
    lot_expiry: date | None = None
    vial: int | None = None
    pre_notes: str
    points: list[PointOut]
    totals: TotalsOut
    findings: list[FindingOut] = Field(
        ..., description="now for a draft; as they stood at signing for a signed session"
    )
    blocking: list[FindingOut] = Field(
        ..., description="blocking findings not overridden (a draft cannot be signed with any)"
    )
    overrides: list[OverrideOut]
    signed_at: datetime | None = None
    signed_by: str | None = None


class SignRefusedOut(ErrorOut):
    reasons: list[str] = []
    blocking: list[FindingOut] = []


class StaleOut(ErrorOut):
    current_version: int | None = None


SESSION_ERRORS: dict[int, type[ErrorOut]] = {**ERRORS, 409: StaleOut}


# --- helpers -----------------------------------------------------------------------------------


def _finding(f: safety.Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity,
        "message": f.message,
        "source": f.source,
        "source_ids": list(f.source_ids),
        "status": str(f.status) if f.status is not None else None,
        "limit": str(f.limit) if f.limit is not None else None,
        "value": str(f.value) if f.value is not None else None,
    }


def _stored_finding(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": str(f.get("rule", "")),
        "severity": str(f.get("severity", "")),
        "message": str(f.get("message", "")),
        "source": str(f.get("source", "")),
    }


def _totals(product_id: str, points: list[tuple[str, str, Decimal]]) -> dict[str, Any]:
    """POINTS: (area, side, units) of one product."""
    by_area: dict[str, Decimal] = defaultdict(Decimal)
    by_side: dict[str, Decimal] = defaultdict(Decimal)
    for area, side, units in points:
        by_area[area] += units
        by_side[{"L": "Left", "R": "Right"}.get(side, "Midline")] += units
    return {
        "product": product_id,
        "brand": catalogue.brand_name(product_id),
        "total": units_text(sum((u for _, _, u in points), Decimal(0))),
        "points": len(points),
        "by_area": {k: str(units_text(v)) for k, v in by_area.items()},
        "by_side": {k: str(units_text(v)) for k, v in by_side.items()},
    }


def _check_product_and_indication(product: str, indication: str) -> None:
    problems = []
    try:
        catalogue.product(product)
    except KeyError:
        problems.append(
            {"field": "product", "message": "Unknown product: GET /api/v1/products lists them."}
        )
    if not indications.exists(indication):
        names = ", ".join(i.id for i in indications.indications())
        problems.append({"field": "indication", "message": f"Unknown indication; one of {names}."})
    if problems:
        raise ApiError(
            " ".join(p["message"] for p in problems) + " Nothing was saved.",
            field=problems[0]["field"],
            status=422,
            errors=problems,
        )


def _refuse(exc: ValidationError, rename: dict[str, str], prefix: str = "") -> NoReturn:
    """A service's ValidationError with the API's field names (and a ``points[i].`` prefix)."""
    if hasattr(exc, "error_dict"):
        raise ValidationError(
            {prefix + rename.get(k, k): v for k, v in exc.message_dict.items()}
        ) from None
    raise exc


START_FIELDS = {
    "product_id": "product",
    "treated_on": "date",
    "prescriber": "prescriber_email",
    "start_from": "protocol",
    "protocol": "protocol",
}


EARLIEST = date(1900, 1, 1)
PLAN_AHEAD_DAYS = 366


def _check_day(day: date | None, patient: Patient, today: date, *, future: bool) -> None:
    """A treatment day that can be: not before the patient was born (nor 1900), and for a
    plan at most a year ahead (a session's own service refuses any future day)."""
    if day is None:
        return
    if day < max(EARLIEST, patient.date_of_birth):
        raise ApiError(
            "That day is before the patient was born. Check the date.", field="date", status=422
        )
    if future and day > today + timedelta(days=PLAN_AHEAD_DAYS):
        raise ApiError(
            "A plan can be checked at most a year ahead. Check the date.",
            field="date",
            status=422,
        )


def _prescriber(who: Actor, email: str | None) -> User | None:
    if not email:
        return None
    m = (
        Membership.objects.filter(
            organization=who.organization,
            user__email__iexact=email.strip(),
            role="prescriber",
            is_active=True,
        )
        .select_related("user")
        .first()
    )
    if m is None:
        raise ApiError(
            "That e-mail is not an active prescriber of your organization.",
            field="prescriber_email",
            status=422,
        )
    return m.user


def place(point: PointIn, indication: str, where: str) -> tuple[str, Decimal, Decimal]:
    """The diagram and position of POINT: as sent, or the centre of its muscle's region."""
    given = [v is not None for v in (point.diagram, point.x, point.y)]
    if any(given) and not all(given):
        raise ApiError(
            "Give the diagram, x and y together (or none of them).",
            field=f"{where}.diagram",
            status=422,
        )
    if point.diagram is not None and point.x is not None and point.y is not None:
        if point.diagram not in diagrams.ids():
            raise ApiError(
                "Unknown diagram; one of " + ", ".join(diagrams.ids()) + ".",
                field=f"{where}.diagram",
                status=422,
            )
        return point.diagram, point.x, point.y
    order = list(DIAGRAM_ORDER)
    first = INDICATION_DIAGRAM.get(indication)
    if first:
        order.remove(first)
        order.insert(0, first)
    muscle, area = point.muscle.strip().casefold(), point.area.strip().casefold()
    candidates = []
    for diagram_id in order:
        for region in diagrams.get(diagram_id).regions:
            if region.side != point.side:
                continue
            if region.muscle.casefold() == muscle:
                candidates.append((0 if region.area.casefold() == area else 1, diagram_id, region))
            elif region.area.casefold() == area:
                candidates.append((2, diagram_id, region))
    if not candidates:
        raise ApiError(
            f"No charting diagram has the {point.muscle} ({point.area}) on side {point.side}: "
            "give diagram, x and y for this point.",
            field=f"{where}.muscle",
            status=422,
        )
    candidates.sort(key=lambda c: c[0])
    _, diagram_id, region = candidates[0]
    x, y = region.center
    return diagram_id, x, y


def _find_session(who: Actor, session_id: int) -> TreatmentSession:
    return get_or_404(
        TreatmentSession.objects.for_org(who.organization).select_related(
            "patient", "practitioner", "prescriber", "signed_by", "clinic"
        ),
        session_id,
    )


def _add_points(
    who: Actor,
    session: TreatmentSession,
    version: int,
    points: list[PointIn],
    placed: list[Any],
) -> TreatmentSession:
    """Inside a transaction: add every point, in order, as one change of the draft at VERSION
    (409 if it has moved on), or raise (the caller rolls back)."""
    specs = [
        charting.NewPoint(
            diagram=diagram,
            x=x,
            y=y,
            units=p.units,
            depth=p.depth,
            muscle=p.muscle.strip(),
            area=p.area.strip(),
            side=p.side,
        )
        for p, (diagram, x, y) in zip(points, placed, strict=True)
    ]
    try:
        charting.add_points(who, session, version, specs)
    except charting.PointRefused as exc:
        _refuse(exc, {}, prefix=f"points[{exc.index}].")
    return TreatmentSession.objects.get(pk=session.pk)


def session_out(session: TreatmentSession) -> dict[str, Any]:
    s = _find_session_fresh(session)
    points = charting.live_points(s)
    if s.status == SessionStatus.DRAFT:
        current = charting.findings(s)
        found = [_finding(f) for f in current]
        blocking = [_finding(f) for f in charting.open_blocks(s, current)]
    else:
        found = [_stored_finding(f) for f in (s.findings_at_signing or [])]
        blocking = []
    return {
        "id": s.pk,
        "patient": s.patient_id,
        "clinic": s.clinic_id,
        "practitioner": s.practitioner.email,
        "prescriber": s.prescriber.email if s.prescriber else None,
        "date": s.treated_on,
        "status": s.status,
        "version": s.version,
        "indication": s.indication,
        "product": s.product_id,
        "protocol": s.protocol_id or None,
        "lot_number": s.lot_number,
        "lot_expiry": s.lot_expiry,
        "vial": s.vial_id,
        "pre_notes": s.pre_notes,
        "points": [
            {
                "number": p.number,
                "area": p.area,
                "muscle": p.muscle,
                "side": p.side,
                "units": units_text(p.units),
                "depth": p.depth,
                "diagram": p.diagram,
                "x": str(p.x),
                "y": str(p.y),
                "vial": p.vial_id,
            }
            for p in points
        ],
        "totals": _totals(s.product_id, [(p.area, p.side, p.units) for p in points]),
        "findings": found,
        "blocking": blocking,
        "overrides": [
            {
                "rule": o.rule,
                "message": o.message,
                "reason": o.reason,
                "by": o.by.email,
                "at": o.at,
            }
            for o in s.overrides.select_related("by")
        ],
        "signed_at": s.signed_at,
        "signed_by": s.signed_by.email if s.signed_by else None,
    }


def _find_session_fresh(session: TreatmentSession) -> TreatmentSession:
    return TreatmentSession.objects.select_related(
        "patient", "practitioner", "prescriber", "signed_by", "clinic"
    ).get(pk=session.pk)


# --- the dose check ----------------------------------------------------------------------------


@router.post("/dose-check", response={200: DoseCheckOut, **ERRORS}, summary="Check a planned dose")
def dose_check(request: HttpRequest, payload: DoseCheckIn) -> dict[str, Any]:
    """The findings (rule, severity, message, source) and totals of a planned session, as the
    charting page would show them: the patient's age, weight, flags and past treatments (here
    and recorded from elsewhere) count. Writes nothing."""
    who = require(request, "patient.view_clinical")
    patient = patient_or_404(who, payload.patient, "patient")
    _check_product_and_indication(payload.product, payload.indication)
    _check_day(payload.date, patient, today_at(who), future=True)
    problems = []
    for i, p in enumerate(payload.points):
        if p.product is not None:
            try:
                catalogue.product(p.product)
            except KeyError:
                problems.append({"field": f"points[{i}].product", "message": "Unknown product."})
    if problems:
        raise ApiError(
            problems[0]["message"], field=problems[0]["field"], status=422, errors=problems
        )
    day = payload.date or today_at(who)  # the clinic's day
    plan = safety.Plan(
        product_id=payload.product,
        indication=payload.indication,
        date=day,
        points=[
            safety.PlannedPoint(
                p.area.strip(),
                p.muscle.strip(),
                p.side,
                p.units,
                p.depth,
                product_id=p.product,
            )
            for p in payload.points
        ],
    )
    tz = ZoneInfo(who.clinic.timezone if who.clinic and who.clinic.timezone else "UTC")
    found = safety.check(
        plan,
        charting.patient_facts(patient),
        charting.treatment_history(patient),
        timezone.now().astimezone(tz),
        charting.clinical_settings(),
    )
    by_product: dict[str, list[tuple[str, str, Decimal]]] = {payload.product: []}
    for p in payload.points:
        by_product.setdefault(p.product or payload.product, []).append(
            (p.area.strip(), p.side, p.units)
        )
    return {
        "blocked": any(f.severity == "block" for f in found),
        "findings": [_finding(f) for f in found],
        "totals": [_totals(product, pts) for product, pts in by_product.items()],
    }


# --- sessions ----------------------------------------------------------------------------------


@router.post(
    "/sessions", response={201: SessionOut, **SESSION_ERRORS}, summary="Start a draft session"
)
def create_session(request: HttpRequest, payload: SessionIn) -> Status[dict[str, Any]]:
    """A draft with its points (and, optionally, a protocol laid out first, the lot typed or
    the vial in use). Every point goes through the charting checks; one refused point
    refuses the whole request (nothing is saved). Dose findings do not refuse a draft: they
    are in the answer's ``findings`` and ``blocking``, and stop the signing."""
    who = require(request, "session.chart")
    patient = patient_or_404(who, payload.patient, "patient")
    _check_product_and_indication(payload.product, payload.indication)
    _check_day(payload.date, patient, today_at(who), future=False)
    prescriber = _prescriber(who, payload.prescriber_email)
    if payload.protocol is not None:
        try:
            protocols.get(payload.protocol)
        except KeyError:
            raise ApiError(
                "Unknown protocol: GET /api/v1/protocols lists them.",
                field="protocol",
                status=422,
            ) from None
    vial = None
    if payload.vial is not None:
        vial = get_or_404(Vial.objects.for_org(who.organization), payload.vial, "vial")
    placed = [place(p, payload.indication, f"points[{i}]") for i, p in enumerate(payload.points)]
    with transaction.atomic():
        try:
            session = charting.start_session(
                who,
                patient,
                indication=payload.indication,
                product_id=payload.product,
                treated_on=payload.date,
                prescriber=prescriber,
                start_from=f"protocol:{payload.protocol}" if payload.protocol else "blank",
            )
            details: dict[str, Any] = {}
            if payload.lot_number is not None:
                details["lot_number"] = payload.lot_number
            if payload.lot_expiry is not None:
                details["lot_expiry"] = payload.lot_expiry
            if payload.pre_notes is not None:
                details["pre_notes"] = payload.pre_notes
            if details:
                session = charting.update_details(who, session, session.version, details)
            if vial is not None:
                session = charting.select_vial(who, session, session.version, vial).session
        except ValidationError as exc:
            _refuse(exc, START_FIELDS)
        session = _add_points(who, session, session.version, payload.points, placed)
        answer = session_out(session)  # inside: if the answer cannot be made, nothing stays
    return Status(201, answer)


@router.get(
    "/sessions/{session_id}", response={200: SessionOut, **ERRORS}, summary="A treatment session"
)
def get_session(request: HttpRequest, session_id: IdPath) -> dict[str, Any]:
    """Its points, totals, findings (blocking ones apart), overrides, status and version."""
    who = require(request, "session.view")
    session = _find_session(who, session_id)
    charting.view_session(who, session, part="api")
    return session_out(session)


@router.get(
    "/patients/{patient_id}/sessions",
    response={200: list[SessionSummaryOut], **ERRORS},
    summary="A patient's treatment sessions",
)
def list_patient_sessions(request: HttpRequest, patient_id: IdPath) -> list[dict[str, Any]]:
    """Newest first, with each session's total in its own product's units."""
    who = require(request, "session.view")
    patient = patient_or_404(who, patient_id)
    rows = charting.sessions_for(patient)
    patient_services.view_patient(who, patient, part="api sessions")
    return [
        {
            "id": r.session.pk,
            "patient": patient.pk,
            "date": r.session.treated_on,
            "status": r.session.status,
            "version": r.session.version,
            "indication": r.session.indication,
            "product": r.session.product_id,
            "total": units_text(r.total),
            "points": r.points,
        }
        for r in rows
    ]


@router.post(
    "/sessions/{session_id}/points",
    response={200: SessionOut, **SESSION_ERRORS},
    summary="Add points to a draft",
)
def add_points(request: HttpRequest, session_id: IdPath, payload: PointsIn) -> dict[str, Any]:
    """All the points or none. ``version`` is the session's version as read (409 when it has
    changed since, or when the session is signed)."""
    who = require(request, "session.chart")
    session = _find_session(who, session_id)
    if session.is_locked:
        raise SessionLocked("signed")
    if session.version != payload.version:  # early, before placing; claimed again inside
        raise charting.StaleVersion(session.version)
    placed = [place(p, session.indication, f"points[{i}]") for i, p in enumerate(payload.points)]
    with transaction.atomic():
        session = _add_points(who, session, payload.version, payload.points, placed)
        answer = session_out(session)
    return answer


@router.post(
    "/sessions/{session_id}/overrides",
    response={201: SessionOut, **SESSION_ERRORS},
    summary="Override a blocking finding (prescriber)",
)
def add_override(
    request: HttpRequest, session_id: IdPath, payload: OverrideIn
) -> Status[dict[str, Any]]:
    """A prescriber goes ahead despite a blocking finding that allows it, with the clinical
    reason (a sentence). Some findings can never be overridden (an expired lot, a
    contraindication the label forbids): refused with the reason."""
    who = require(request, "session.override")
    session = _find_session(who, session_id)
    if session.is_locked:
        raise SessionLocked("signed")
    charting.override(who, session, payload.rule.strip(), payload.reason)
    return Status(201, session_out(session))


@router.post(
    "/sessions/{session_id}/sign",
    response={
        200: SessionOut,
        422: SignRefusedOut,
        409: StaleOut,
        **{k: v for k, v in ERRORS.items() if k not in (409, 422)},
    },
    summary="Sign (lock) a draft",
)
def sign_session(request: HttpRequest, session_id: IdPath, payload: SignIn) -> dict[str, Any]:
    """Locks the record. Refused (422) with ``reasons`` (every reason, in words) and
    ``blocking`` (the blocking findings not overridden) when anything stops it: a blocked
    dose, no lot, no prescriber of record, no valid consent, no points. Nothing changes then.
    409 when the version is not the current one or the session is already signed."""
    who = require(request, "session.sign")
    session = _find_session(who, session_id)
    if session.is_locked:
        raise SessionLocked("signed")
    try:
        charting.sign(who, session, payload.version)
    except charting.SigningRefused as exc:
        fresh = _find_session_fresh(session)
        blocking = [_finding(f) for f in charting.open_blocks(fresh)]
        raise ApiError(
            "Not signed: " + " ".join(exc.reasons),
            status=422,
            errors=[{"field": None, "message": r} for r in exc.reasons],
            extra={"reasons": exc.reasons, "blocking": blocking},
        ) from None
    return session_out(session)
