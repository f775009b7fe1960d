"""API: stock. Lots, vials, the stock ledger and what is on hand.

Thin: every write is a call to :mod:`glabella.inventory.services` (the same call the stock
pages make: same checks, same ledger moves, same audit rows); reads are scoped to the token's
organization. Role rules are the pages': anyone may look (``stock.view``); staff receive
deliveries (``stock.receive``); prescribers and injectors open and waste vials (``stock.use``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db.models import DecimalField, F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from glabella.accounts.actor import Actor
from glabella.clinical import catalogue
from glabella.interop.api.base import (
    ERRORS,
    ApiError,
    Day,
    DayRange,
    Id,
    IdPath,
    Millilitres,
    Moment,
    Page,
    Paging,
    StrictIn,
    Text,
    Units,
    clinic_or_404,
    clinic_or_default,
    get_or_404,
    page,
    require,
    today_at,
    units_text,
    user_label,
)
from glabella.inventory import services
from glabella.inventory.models import Lot, StockMove, Vial
from glabella.scheduling.booking import clinic_zone

router = Router(tags=["stock"])

_MONEY = DecimalField(max_digits=14, decimal_places=2)


def _exact(value: Any) -> str:
    """Units for an answer ("97.50"); a database sum (SQLite sums decimals as floats) or
    nothing at all is read as its exact text."""
    return units_text(value if value is not None else 0)  # type: ignore[return-value]


def _brand(product_id: str) -> str:
    try:
        return catalogue.product(product_id).brand
    except KeyError:
        return product_id


# --- schemas ------------------------------------------------------------------------------------

VialStateName = Literal["sealed", "reconstituted", "finished", "discarded"]
MoveKindName = Literal[
    "receive",
    "transfer_out",
    "transfer_in",
    "reconstitute",
    "administer",
    "waste",
    "destroy",
    "adjust",
]


class LotOut(Schema):
    id: int
    product_id: str = Field(description="Catalogue product id, e.g. `botox`.")
    product: str = Field(description="The product's brand name.")
    gtin: str = Field(description="14-digit GTIN, or empty when none was given.")
    lot_number: str
    expiry: date
    vial_units: int = Field(description="Size of every vial of this lot, in the product's units.")
    expired: bool = Field(description="Past its expiry date at the caller's clinic today.")


class OpenVialOut(Schema):
    vial_id: int
    units_left: str
    use_by: datetime | None


class StockOut(Schema):
    """One lot at one clinic, summed from the ledger."""

    clinic_id: int
    clinic: str
    lot: LotOut
    sealed_vials: int
    sealed_units: str
    open_vials: list[OpenVialOut]
    open_units: str
    total_units: str = Field(description="Units on hand by the ledger.")
    unaccounted: str = Field(
        description="Units the ledger holds that no sealed or open vial does (should be 0)."
    )


class LotDetailOut(LotOut):
    stock: list[StockOut]


class VialOut(Schema):
    id: int
    clinic_id: int
    lot_id: int
    lot_number: str
    product_id: str
    units: int = Field(description="Vial size, in the product's units.")
    units_left: str = Field(description="Units in the vial now (from the ledger).")
    state: VialStateName
    opened_at: datetime | None
    opened_by: str | None
    diluent_ml: str | None
    concentration: str | None = Field(description="Units per 0.1 mL once reconstituted.")
    use_by: datetime | None
    closed_at: datetime | None
    closed_how: str


class VialDetailOut(VialOut):
    usable: bool = Field(description="Open, holds units, within use-by, lot in date.")
    blocks: list[str] = Field(description="Why it cannot be drawn from now (open vials).")


class MoveOut(Schema):
    id: int
    kind: MoveKindName
    clinic_id: int
    lot_id: int
    lot_number: str
    product_id: str
    vial_id: int | None
    units: str = Field(description="Signed change of the clinic's units of the lot.")
    vials: int = Field(description="Signed change of the clinic's sealed vials of the lot.")
    at: datetime
    by: str | None
    witness: str | None
    reason: str
    session_id: int | None
    point_number: int | None
    reverses_id: int | None
    other_clinic_id: int | None
    note: str


class ReceiveIn(StrictIn):
    """A delivery: the carton's barcode, or what is printed on it."""

    clinic_id: Id | None = Field(None, description="Default: the token's clinic.")
    barcode: str | None = Field(
        None, max_length=200, description="GS1 element string scanned from the carton."
    )
    product_id: str | None = Field(None, max_length=30)
    gtin: str | None = Field(None, max_length=20)
    lot_number: str | None = Field(None, max_length=60)
    expiry: Day | None = None
    vial_units: int | None = Field(None, ge=1, le=100_000)
    vial_count: int = Field(ge=1, le=services.MAX_VIALS_PER_MOVE)
    note: Text = ""


class ReceiptOut(Schema):
    lot: LotOut
    vial_ids: list[int]
    move: MoveOut
    gtin_remembered: bool = Field(description="A new GTIN was mapped to the product.")


class ReconstituteIn(StrictIn):
    diluent_ml: Millilitres = Field(description="Diluent added, in mL (0 for ready-to-use).")
    at: Moment | None = Field(None, description="When; default now. Not in the future.")


class WasteIn(StrictIn):
    units: Units | None = Field(None, description="Units wasted; or send `rest: true`.")
    rest: bool = Field(False, description="Waste everything left; finishes the vial.")
    reason: Text = Field(description="Why, in a few words.")


class WasteOut(Schema):
    move: MoveOut | None
    vial: VialOut


# --- lookups and mapping ------------------------------------------------------------------------


def _lot_out(lot: Lot, today: date) -> dict[str, Any]:
    return {
        "id": lot.pk,
        "product_id": lot.product_id,
        "product": _brand(lot.product_id),
        "gtin": lot.gtin,
        "lot_number": lot.lot_number,
        "expiry": lot.expiry,
        "vial_units": lot.vial_units,
        "expired": lot.expiry < today,
    }


def _vials(actor: Actor) -> QuerySet[Vial]:
    return (
        Vial.objects.for_org(actor.organization)
        .select_related("lot", "opened_by")
        .annotate(
            left=F("units") + Coalesce(Sum("moves__units"), Value(Decimal(0)), output_field=_MONEY)
        )
    )


def _vial_out(vial: Vial) -> dict[str, Any]:
    left = getattr(vial, "left", None)
    return {
        "id": vial.pk,
        "clinic_id": vial.clinic_id,
        "lot_id": vial.lot_id,
        "lot_number": vial.lot.lot_number,
        "product_id": vial.lot.product_id,
        "units": vial.units,
        "units_left": _exact(left if left is not None else services.units_left(vial)),
        "state": vial.state,
        "opened_at": vial.opened_at,
        "opened_by": user_label(vial.opened_by),
        "diluent_ml": _text(vial.diluent_ml),
        "concentration": _text(vial.concentration),
        "use_by": vial.use_by,
        "closed_at": vial.closed_at,
        "closed_how": vial.closed_how,
    }


def _move_out(move: StockMove) -> dict[str, Any]:
    return {
        "id": move.pk,
        "kind": move.kind,
        "clinic_id": move.clinic_id,
        "lot_id": move.lot_id,
        "lot_number": move.lot.lot_number,
        "product_id": move.lot.product_id,
        "vial_id": move.vial_id,
        "units": _exact(move.units),
        "vials": move.vials,
        "at": move.at,
        "by": user_label(move.by),
        "witness": user_label(move.witness),
        "reason": move.reason,
        "session_id": move.session_id,
        "point_number": move.point_number,
        "reverses_id": move.reverses_id,
        "other_clinic_id": move.other_clinic_id,
        "note": move.note,
    }


def _stock_out(s: services.LotStock, today: date) -> dict[str, Any]:
    return {
        "clinic_id": s.clinic.pk,
        "clinic": s.clinic.name,
        "lot": _lot_out(s.lot, today),
        "sealed_vials": s.sealed_vials,
        "sealed_units": _exact(s.sealed_units),
        "open_vials": [
            {"vial_id": v.vial.pk, "units_left": _exact(v.units_left), "use_by": v.use_by}
            for v in s.open_vials
        ],
        "open_units": _exact(s.open_units),
        "total_units": _exact(s.total_units),
        "unaccounted": _exact(s.unaccounted),
    }


def _text(value: Decimal | None) -> str | None:
    """A stored decimal as its exact text (as many places as it is kept with)."""
    return None if value is None else format(value, "f")


def _known_product(product: str | None) -> None:
    if product is not None and product not in {p.id for p in catalogue.products()}:
        raise ApiError(
            f"There is no product “{product}”. Use a catalogue id such as "
            f"{', '.join(p.id for p in catalogue.products()[:3])} (GET /api/v1/products).",
            field="product",
            status=422,
        )


# --- lots ---------------------------------------------------------------------------------------


class LotsQuery(Paging):
    product: str | None = Field(None, max_length=30, description="Catalogue product id.")
    expired: bool | None = Field(None, description="true: expired only; false: in date only.")
    lot_number: str | None = Field(None, max_length=60)


@router.get("/lots", response={200: Page[LotOut], **ERRORS}, summary="List lots")
def list_lots(request: HttpRequest, q: Query[LotsQuery]) -> Any:
    """Lots of the organization, soonest expiry first."""
    actor = require(request, "stock.view")
    _known_product(q.product)
    today = today_at(actor)
    rows = Lot.objects.for_org(actor.organization).order_by("expiry", "lot_number", "pk")
    if q.product is not None:
        rows = rows.filter(product_id=q.product)
    if q.lot_number:
        rows = rows.filter(lot_number__iexact=q.lot_number.strip())
    if q.expired is True:
        rows = rows.filter(expiry__lt=today)
    elif q.expired is False:
        rows = rows.filter(expiry__gte=today)
    return page(rows, q, lambda lot: _lot_out(lot, today))


@router.get("/lots/{lot_id}", response={200: LotDetailOut, **ERRORS}, summary="Read a lot")
def get_lot(request: HttpRequest, lot_id: IdPath) -> Any:
    """One lot, with what each clinic holds of it."""
    actor = require(request, "stock.view")
    lot = get_or_404(Lot.objects.for_org(actor.organization), lot_id)
    today = today_at(actor)
    return {
        **_lot_out(lot, today),
        "stock": [_stock_out(s, today) for s in services.on_hand(actor.organization, lot=lot)],
    }


@router.post("/stock/receive", response={201: ReceiptOut, **ERRORS}, summary="Receive a delivery")
def receive(request: HttpRequest, payload: ReceiveIn) -> Any:
    """Receive sealed vials of one lot into a clinic's stock, with the receiving page's checks:
    an expired lot is refused, a GTIN's check digit is verified, a lot keeps one expiry and one
    vial size, and a GTIN seen for the first time needs its product (remembered after)."""
    actor = require(request, "stock.receive")
    clinic = clinic_or_default(actor, payload.clinic_id)
    receipt = services.receive(
        actor,
        clinic,
        barcode=payload.barcode,
        product_id=payload.product_id,
        gtin=payload.gtin or "",
        lot_number=payload.lot_number or "",
        expiry=payload.expiry,
        vial_units=payload.vial_units,
        vial_count=payload.vial_count,
        note=payload.note,
    )
    return Status(
        201,
        {
            "lot": _lot_out(receipt.lot, today_at(actor)),
            "vial_ids": [v.pk for v in receipt.vials],
            "move": _move_out(receipt.move),
            "gtin_remembered": receipt.gtin_remembered,
        },
    )


# --- vials --------------------------------------------------------------------------------------


class VialsQuery(Paging):
    clinic: Id | None = Field(None, description="Clinic id; default: every clinic.")
    state: VialStateName | None = None
    lot: Id | None = Field(None, description="Lot id.")
    product: str | None = Field(None, max_length=30, description="Catalogue product id.")


@router.get("/vials", response={200: Page[VialOut], **ERRORS}, summary="List vials")
def list_vials(request: HttpRequest, q: Query[VialsQuery]) -> Any:
    """Vials, newest first, each with the units left in it."""
    actor = require(request, "stock.view")
    _known_product(q.product)
    rows = _vials(actor).order_by("-pk")
    if q.clinic is not None:
        rows = rows.filter(clinic=clinic_or_404(actor, q.clinic, "clinic"))
    if q.state is not None:
        rows = rows.filter(state=q.state)
    if q.lot is not None:
        rows = rows.filter(lot=get_or_404(Lot.objects.for_org(actor.organization), q.lot, "lot"))
    if q.product is not None:
        rows = rows.filter(lot__product_id=q.product)
    return page(rows, q, _vial_out)


def _vial_detail(actor: Actor, vial_id: int) -> dict[str, Any]:
    vial = get_or_404(_vials(actor).select_related("clinic"), vial_id)
    info = services.vial_info(vial)
    return {**_vial_out(vial), "usable": info.usable, "blocks": info.blocks}


@router.get("/vials/{vial_id}", response={200: VialDetailOut, **ERRORS}, summary="Read a vial")
def get_vial(request: HttpRequest, vial_id: IdPath) -> Any:
    actor = require(request, "stock.view")
    return _vial_detail(actor, vial_id)


@router.post(
    "/vials/{vial_id}/reconstitute",
    response={200: VialDetailOut, **ERRORS},
    summary="Reconstitute a vial",
)
def reconstitute(request: HttpRequest, vial_id: IdPath, payload: ReconstituteIn) -> Any:
    """Open a sealed vial: the concentration comes from the label's table and the use-by time
    from the product's use-within hours. An expired lot is refused."""
    actor = require(request, "stock.use")
    vial = get_or_404(Vial.objects.for_org(actor.organization).select_related("clinic"), vial_id)
    at = payload.at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=clinic_zone(vial.clinic))
    services.reconstitute(actor, vial, payload.diluent_ml, at)
    return _vial_detail(actor, vial_id)


@router.post("/vials/{vial_id}/waste", response={200: WasteOut, **ERRORS}, summary="Record waste")
def waste(request: HttpRequest, vial_id: IdPath, payload: WasteIn) -> Any:
    """Units of an open vial wasted (or, with ``rest``, everything left: the vial is then
    finished). A sealed vial is not wasted but destroyed, with a witness, on its page."""
    actor = require(request, "stock.use")
    vial = get_or_404(Vial.objects.for_org(actor.organization), vial_id)
    move = services.waste(actor, vial, payload.units, rest=payload.rest, reason=payload.reason)
    fresh = get_or_404(_vials(actor), vial_id)
    return {"move": _move_out(move) if move is not None else None, "vial": _vial_out(fresh)}


# --- the ledger ---------------------------------------------------------------------------------


class MovesQuery(DayRange):
    lot: Id | None = Field(None, description="Lot id.")
    kind: MoveKindName | None = None
    clinic: Id | None = Field(None, description="Clinic id.")
    vial: Id | None = Field(None, description="Vial id.")


def _day_start(zone: ZoneInfo, day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone)


@router.get("/stock-moves", response={200: Page[MoveOut], **ERRORS}, summary="The stock ledger")
def list_moves(request: HttpRequest, q: Query[MovesQuery]) -> Any:
    """Ledger rows, oldest first (days are the caller's clinic's calendar days). Rows are
    never changed: a mistaken move is reversed by a later one naming it (``reverses_id``)."""
    actor = require(request, "stock.view")
    q.check_days()
    zone = clinic_zone(actor.clinic)
    rows = (
        StockMove.objects.for_org(actor.organization)
        .select_related("lot", "by", "witness")
        .order_by("at", "pk")
    )
    if q.lot is not None:
        rows = rows.filter(lot=get_or_404(Lot.objects.for_org(actor.organization), q.lot, "lot"))
    if q.kind is not None:
        rows = rows.filter(kind=q.kind)
    if q.clinic is not None:
        rows = rows.filter(clinic=clinic_or_404(actor, q.clinic, "clinic"))
    if q.vial is not None:
        rows = rows.filter(
            vial=get_or_404(Vial.objects.for_org(actor.organization), q.vial, "vial")
        )
    if q.date_from is not None:
        rows = rows.filter(at__gte=_day_start(zone, q.date_from))
    if q.date_to is not None:
        rows = rows.filter(at__lt=_day_start(zone, q.date_to + timedelta(days=1)))
    return page(rows, q, _move_out)


class OnHandQuery(Paging):
    clinic: Id | None = Field(None, description="Clinic id; default: every clinic.")
    product: str | None = Field(None, max_length=30, description="Catalogue product id.")


@router.get("/stock/on-hand", response={200: Page[StockOut], **ERRORS}, summary="What is on hand")
def on_hand(request: HttpRequest, q: Query[OnHandQuery]) -> Any:
    """Stock per clinic and lot, from the ledger: sealed vials, open vials with the units left
    in each, and the total. Ordered by clinic, then soonest expiry."""
    actor = require(request, "stock.view")
    _known_product(q.product)
    clinic = clinic_or_404(actor, q.clinic, "clinic") if q.clinic is not None else None
    rows = services.on_hand(actor.organization, clinic=clinic)
    if q.product is not None:
        rows = [s for s in rows if s.lot.product_id == q.product]
    today = today_at(actor)
    return page(rows, q, lambda s: _stock_out(s, today))
