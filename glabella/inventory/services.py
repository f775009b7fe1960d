"""Stock: the only writers of lots, vials and the ledger, and the reads built on the ledger.

The ledger
==========
Every movement of toxin is one ``StockMove`` row, appended and never changed: ``receive``,
``transfer_out`` / ``transfer_in`` (a pair, one per clinic), ``reconstitute``, ``administer``,
``waste``, ``destroy`` and ``adjust``. A mistaken move is undone by a new move of the same kind
with the opposite sign whose ``reverses`` names it (a move is reversed at most once: the column
is unique). Nothing on hand is stored as a counter; it is always a sum of moves.

Sign convention
---------------
``units`` and ``vials`` are *signed changes of the stock of one lot at one clinic*: positive
into the clinic's stock, negative out of it. ``units`` are the product's own units (never
converted between products); ``vials`` counts *sealed* vials only.

===============  =============================  ==========================  ============
kind             units                          vials                       vial named?
===============  =============================  ==========================  ============
receive          + count x vial size            + count                     no
transfer_in      + count x vial size            + count                     no
transfer_out     - count x vial size            - count                     no
reconstitute     0 (units move sealed → open)   -1                          yes
administer       - units drawn (+ on reversal)  0                           yes
waste            - units wasted                 0                           yes
destroy          - a sealed vial's size, or     -1 for a sealed vial,       yes
                 - what an open vial held       0 for an open one
adjust           ± units (an open vial), or     ± count (sealed vials)      - count: yes
                 ± count x vial size                                        + count: no
===============  =============================  ==========================  ============

So for a clinic and lot, at any moment:

- units on hand = Σ units; sealed vials = Σ vials;
- units left in a vial = vial size + Σ units of the moves that name the vial (a sealed vial
  has no such move but ``reconstitute``, which carries 0, so it holds its full size);
- units on hand = sealed vials x vial size + units left in the open vials + units left in
  vials that were closed (finished or discarded) with something still in them. That last
  term should be zero: it is the **discrepancy**, units the ledger says are there but no vial
  holds (a vial marked finished with 2 U neither drawn nor wasted, or a draw reversed after
  its vial was thrown away).

Vial life cycle
---------------
sealed --reconstitute--> reconstituted --(a draw empties it | waste the rest | finish)-->
finished; sealed or open --destroy (witnessed) | adjust (written off)--> discarded. The way a
vial was closed is kept (``Vial.closed_how``): reversing a draw puts its units back in the vial
and re-opens a vial that draw had emptied; a vial closed any other way stays closed and the
returned units show as a discrepancy until they are wasted or adjusted.

Reconciliation identity
-----------------------
For a clinic, a lot and a period [start, end):

    opening + received + transferred in - transferred out - administered - wasted
        - destroyed ± adjusted = closing

where opening is Σ units of the moves before ``start``, closing is Σ units of the moves before
``end``, and every other figure is the sum of that kind's moves in the period (outflows shown as
positive numbers, reversals netted into their kind). ``closing`` is computed by its own sum and
compared with the identity (``expected``); ``physical`` = closing - discrepancy is what the
vials actually hold. A period *balances* when expected == closing and the discrepancy is 0.

Rules every writer here follows (DESIGN.md): ``actor.require(permission)``, then validation that
raises ``ValidationError({field: message a nurse understands})``, then one
``transaction.atomic()`` holding the state change, the ledger move(s) and one audit event per
move. Another organization's clinic, lot, vial or session is *not found*: the writers raise that
model's ``DoesNotExist`` (an ``ObjectDoesNotExist``), which views turn into a 404.

Concurrency: every writer that takes units out of a vial first locks the vial row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the IMMEDIATE transactions already serialize
writers), then sums the vial's moves, so two draws at once can never overdraw it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from biip import BiipException
from biip.gtin import Gtin
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import catalogue, reconstitution, safety
from glabella.inventory import gs1
from glabella.inventory.gs1 import normalize_lot
from glabella.inventory.models import (
    CLOSED_STATES,
    ClosedHow,
    GtinProduct,
    Lot,
    MoveKind,
    Price,
    PriceBasis,
    StockMove,
    Threshold,
    Vial,
    VialState,
)
from glabella.patients.services import parse_units
from glabella.prepared import Prepared

MAX_VIALS_PER_MOVE = 500
EXPIRY_WARNING_DAYS = 30
USE_BY_WARNING = timedelta(hours=2)
MAX_LOT_LENGTH = 40
_CENT = Decimal("0.01")
_MONEY = DecimalField(max_digits=14, decimal_places=2)
_ZERO = Value(Decimal(0), output_field=_MONEY)
VIAL_RULES = frozenset({"expired-lot", "vial-use-by"})


# --- small helpers ---------------------------------------------------------------------


def _own(actor: Actor, obj: models.Model, what: str) -> None:
    """Another organization's object is not found (a 404 in a view), never 'forbidden'."""
    if getattr(obj, "organization_id", None) != actor.organization.pk:
        raise type(obj).DoesNotExist(f"No such {what}.")  # type: ignore[attr-defined]


def _now(now: datetime | None) -> datetime:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be an aware datetime")
    return now


def _tz(clinic: Clinic) -> ZoneInfo:
    return ZoneInfo(clinic.timezone or "UTC")


def local_date(clinic: Clinic, when: datetime) -> date:
    """The calendar day at CLINIC at the moment WHEN (expiry dates are calendar days)."""
    return when.astimezone(_tz(clinic)).date()


def _brand(product_id: str) -> str:
    return catalogue.product(product_id).brand


def _u(value: Decimal) -> str:
    """Units for a message: 2.50 -> 2.5, 10.00 -> 10."""
    text = format(value.quantize(_CENT), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _q(value: Decimal | int | float | None) -> Decimal:
    """A database sum as an exact 2-place Decimal (SQLite sums decimals as floats)."""
    if value is None:
        return Decimal(0).quantize(_CENT)
    return Decimal(str(value)).quantize(_CENT)


def _require_reason(reason: str, what: str = "reason") -> str:
    text = str(reason or "").strip()
    if len(text) < 3:
        raise ValidationError({what: "Say why, in a few words."})
    return text[:300]


def _whole_count(value: Any, field_name: str = "vial_count", *, signed: bool = False) -> int:
    """A whole number of vials: positive (or, when SIGNED, non-zero). Raises ValidationError."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationError({field_name: "Enter the number of vials."})
    if isinstance(value, int):
        number = value
    else:
        try:
            exact = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError({field_name: f"“{value}” is not a number of vials."}) from None
        if not exact.is_finite():
            raise ValidationError({field_name: "Enter an ordinary number of vials."})
        if exact != exact.to_integral_value():
            raise ValidationError(
                {field_name: f"Vials are counted whole: {value} is not a number of vials."}
            )
        number = int(exact)
    if signed:
        if number == 0:
            raise ValidationError({field_name: "An adjustment of 0 vials changes nothing."})
    elif number <= 0:
        raise ValidationError(
            {field_name: f"The number of vials must be at least 1 (got {number})."}
        )
    if abs(number) > MAX_VIALS_PER_MOVE:
        raise ValidationError(
            {field_name: f"{abs(number)} vials in one go is not plausible; check the figure."}
        )
    return number


def _clean_gtin(value: Any) -> str:
    """A typed GTIN (8, 12, 13 or 14 digits, check digit verified) as 14 digits; "" if none."""
    text = re.sub(r"\s", "", str(value or ""))
    if not text:
        return ""
    try:
        return Gtin.parse(text).as_gtin_14()
    except (BiipException, ValueError) as exc:
        raise ValidationError(
            {"gtin": f"“{text}” is not a valid product code (GTIN): {exc}"}
        ) from None


def _clean_date(value: Any, field_name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError({field_name: "Enter the date as YYYY-MM-DD."}) from None
    raise ValidationError({field_name: "Enter the expiry date."})


def _vial_size(value: Any, product: catalogue.Product) -> int:
    sizes = ", ".join(f"{v} U" for v in product.vial_units)
    try:
        size = int(Decimal(str(value).strip()))
        exact = Decimal(str(value).strip()) == size
    except (InvalidOperation, ValueError, OverflowError):
        size, exact = 0, False
    if not exact or size not in product.vial_units:
        raise ValidationError(
            {
                "vial_units": f"{product.brand} does not come in a {value} U vial "
                f"(it comes in {sizes}). Check the carton."
            }
        )
    return size


def _membership_user(organization: Organization, user: User | None) -> bool:
    return (
        user is not None
        and Membership.objects.filter(user=user, organization=organization, is_active=True).exists()
    )


def _audit_move(actor: Actor, move: StockMove, what: str, **detail: Any) -> None:
    lot = move.lot
    record(
        actor,
        Action.CREATE,
        move,
        label=f"{what}: {_brand(lot.product_id)} lot {lot.lot_number}",
        detail={
            "kind": move.kind,
            "clinic": move.clinic_id,
            "lot": lot.pk,
            "lot_number": lot.lot_number,
            "vial": move.vial_id,
            "units": str(move.units),
            "vials": move.vials,
            "session": move.session_id,
            "point": move.point_number,
            "reverses": move.reverses_id,
            "reason": move.reason,
            **{k: _plain(v) for k, v in detail.items()},
        },
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def _move(actor: Actor, **fields: Any) -> StockMove:
    move = StockMove(organization=actor.organization, by=actor.user, **fields)
    move.save()
    return move


def units_left(vial: Vial) -> Decimal:
    """What is in VIAL now, exactly: its size plus the sum of the moves that name it."""
    moved = sum(
        (Decimal(v) for v in StockMove.objects.filter(vial=vial).values_list("units", flat=True)),
        Decimal(0),
    )
    return (Decimal(vial.units) + moved).quantize(_CENT)


def _lock_vial(vial: Vial) -> Vial:
    """Re-read VIAL under a row lock (PostgreSQL); SQLite's write lock is already held."""
    return (
        Vial.objects.select_for_update(of=("self",)).select_related("lot", "clinic").get(pk=vial.pk)
    )


def vial_blocks(vial: Vial, now: datetime) -> list[str]:
    """Why VIAL cannot be drawn from at NOW, in the clinical core's words (empty: it can).

    The core's ``expired-lot`` and ``vial-use-by`` rules decide; times are shown in the clinic's
    own time zone.
    """
    tz = _tz(vial.clinic)
    plan = safety.Plan(
        product_id=vial.lot.product_id,
        indication="other",
        date=local_date(vial.clinic, now),
        points=[safety.PlannedPoint("vial", "vial", "mid", Decimal(1))],
        vial=safety.VialFacts(
            lot_expiry=vial.lot.expiry,
            use_by=vial.use_by.astimezone(tz) if vial.use_by else None,
        ),
    )
    anyone = safety.PatientFacts(date_of_birth=date(1970, 1, 1), weight_kg=None, flags=frozenset())
    findings = safety.check(plan, anyone, [], now.astimezone(tz))
    return [f.message for f in findings if f.rule in VIAL_RULES and f.severity == "block"]


# --- receiving -------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    lot: Lot
    vials: list[Vial]
    move: StockMove
    gtin_remembered: bool = False
    serial: str = ""


def receive(
    actor: Actor,
    clinic: Clinic,
    *,
    barcode: str | None = None,
    product_id: str | None = None,
    gtin: str = "",
    lot_number: str = "",
    expiry: date | str | None = None,
    vial_units: int | str | None = None,
    vial_count: Any,
    now: datetime | None = None,
    note: str = "",
) -> Receipt:
    """Receive VIAL_COUNT sealed vials of one lot into CLINIC's stock.

    Either BARCODE (a GS1 element string: GTIN, lot, expiry; see :mod:`.gs1`) or typed
    PRODUCT_ID / GTIN / LOT_NUMBER / EXPIRY. A GTIN seen for the first time needs PRODUCT_ID
    (and VIAL_UNITS) once: the mapping is remembered for the organization. Nothing is written
    unless everything is valid.
    """
    actor.require("stock.receive")
    _own(actor, clinic, "clinic")
    now = _now(now)
    serial = ""
    if barcode not in (None, ""):
        code = gs1.parse(str(barcode))
        gtin, lot_number, expiry, serial = code.gtin, code.lot_number, code.expiry, code.serial
    errors: dict[str, str] = {}

    def collect(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, " ".join(messages))
            return None

    gtin = collect(_clean_gtin, gtin) or ""
    lot_number = normalize_lot(lot_number)
    if not lot_number:
        errors["lot_number"] = "Enter the lot number printed on the carton."
    elif len(lot_number) > MAX_LOT_LENGTH or any(not ch.isprintable() for ch in lot_number):
        errors["lot_number"] = "That is not a lot number; check what was typed or scanned."
    expiry_d = collect(_clean_date, expiry, "expiry")
    count = collect(_whole_count, vial_count, "vial_count")

    mapping = (
        GtinProduct.objects.for_org(actor.organization).filter(gtin=gtin).first() if gtin else None
    )
    product: catalogue.Product | None = None
    if product_id:
        try:
            product = catalogue.product(product_id)
        except KeyError:
            errors["product_id"] = "Choose the product."
    if mapping is not None:
        known = catalogue.product(mapping.product_id)
        if product is not None and product.id != known.id:
            errors["product_id"] = (
                f"The product code {gtin} is {known.brand} in your stock records, not "
                f"{product.brand}. Check the carton."
            )
        product = known
    elif product is None and "product_id" not in errors:
        errors["product_id"] = (
            f"The product code {gtin} is new here: choose which product it is. Glabella will "
            "remember it for the next delivery."
            if gtin
            else "Choose the product."
        )

    lot: Lot | None = None
    if product is not None and lot_number:
        lot = (
            Lot.objects.for_org(actor.organization)
            .filter(product_id=product.id, lot_number=lot_number)
            .first()
        )
    size: int | None = None
    if product is not None:
        if vial_units in (None, ""):
            vial_units = (mapping.vial_units if mapping else None) or (
                lot.vial_units if lot else None
            )
        if vial_units in (None, ""):
            errors["vial_units"] = "Choose the vial size."
        else:
            size = collect(_vial_size, vial_units, product)
        if size is not None and mapping is not None and mapping.vial_units not in (None, size):
            errors["vial_units"] = (
                f"The product code {gtin} is the {mapping.vial_units} U vial of "
                f"{product.brand}, not {size} U. Check the carton."
            )
    if expiry_d is not None and expiry_d < local_date(clinic, now):
        errors["expiry"] = (
            f"This lot expired on {expiry_d:%d/%m/%Y}: expired stock is not received. "
            "Return it to the supplier."
        )
    if lot is not None:
        if expiry_d is not None and lot.expiry != expiry_d and "expiry" not in errors:
            errors["expiry"] = (
                f"Lot {lot.lot_number} is recorded with expiry {lot.expiry:%d/%m/%Y}, but this "
                f"carton says {expiry_d:%d/%m/%Y}. Check the carton."
            )
        if size is not None and lot.vial_units != size and "vial_units" not in errors:
            errors["vial_units"] = (
                f"Lot {lot.lot_number} was received as {lot.vial_units} U vials; a lot has one "
                "vial size. Check the carton."
            )
        if gtin and lot.gtin and lot.gtin != gtin:
            errors["gtin"] = (
                f"Lot {lot.lot_number} was received under product code {lot.gtin}, not {gtin}."
            )
    if errors:
        raise ValidationError(errors)
    assert product is not None and size is not None and expiry_d is not None and count

    remembered = False
    with transaction.atomic():
        if gtin and mapping is None:
            mapping, remembered = GtinProduct.objects.get_or_create(
                organization=actor.organization,
                gtin=gtin,
                defaults={"product_id": product.id, "vial_units": size, "created_by": actor.user},
            )
            if remembered:
                record(
                    actor,
                    Action.CREATE,
                    mapping,
                    label=f"product code {gtin} is {product.brand} {size} U",
                    detail={"gtin": gtin, "product": product.id, "vial_units": size},
                )
        elif mapping is not None and mapping.vial_units is None:
            mapping.vial_units = size
            mapping.save(update_fields=["vial_units"])
        lot, created = Lot.objects.get_or_create(
            organization=actor.organization,
            product_id=product.id,
            lot_number=lot_number,
            defaults={"gtin": gtin, "expiry": expiry_d, "vial_units": size},
        )
        if not created and (lot.expiry != expiry_d or lot.vial_units != size):
            raise ValidationError(
                {"lot_number": f"Lot {lot_number} was just recorded differently; check it."}
            )
        if gtin and not lot.gtin:
            lot.gtin = gtin
            lot.save(update_fields=["gtin"])
        vials = Vial.objects.bulk_create(
            [
                Vial(organization=actor.organization, clinic=clinic, lot=lot, units=size)
                for _ in range(count)
            ]
        )
        move = _move(
            actor,
            clinic=clinic,
            kind=MoveKind.RECEIVE,
            lot=lot,
            units=Decimal(count * size),
            vials=count,
            at=now,
            note=" ".join(filter(None, [note.strip(), f"serial {serial}" if serial else ""])),
        )
        _audit_move(
            actor,
            move,
            f"received {count} x {size} U",
            gtin=gtin,
            expiry=expiry_d,
            scanned=barcode not in (None, ""),
        )
    return Receipt(lot=lot, vials=vials, move=move, gtin_remembered=remembered, serial=serial)


def transfer(
    actor: Actor,
    from_clinic: Clinic,
    to_clinic: Clinic,
    lot: Lot,
    vial_count: Any,
    *,
    now: datetime | None = None,
    note: str = "",
) -> tuple[StockMove, StockMove]:
    """Move sealed vials of LOT from one clinic of the organization to another."""
    actor.require("stock.receive")
    _own(actor, from_clinic, "clinic")
    _own(actor, to_clinic, "clinic")
    _own(actor, lot, "lot")
    count = _whole_count(vial_count)
    if from_clinic.pk == to_clinic.pk:
        raise ValidationError({"to_clinic": "Choose another clinic to send the vials to."})
    now = _now(now)
    with transaction.atomic():
        vials = list(
            Vial.objects.select_for_update()
            .filter(lot=lot, clinic=from_clinic, state=VialState.SEALED)
            .order_by("pk")[:count]
        )
        if len(vials) < count:
            raise ValidationError(
                {
                    "vial_count": f"{from_clinic.name} has {len(vials)} sealed vial"
                    f"{'' if len(vials) == 1 else 's'} of lot {lot.lot_number}; "
                    f"{count} cannot be sent."
                }
            )
        Vial.objects.filter(pk__in=[v.pk for v in vials]).update(clinic=to_clinic)
        units = Decimal(count * lot.vial_units)
        out = _move(
            actor,
            clinic=from_clinic,
            other_clinic=to_clinic,
            kind=MoveKind.TRANSFER_OUT,
            lot=lot,
            units=-units,
            vials=-count,
            at=now,
            note=note.strip(),
        )
        _audit_move(actor, out, f"{count} vials sent to {to_clinic.name}")
        into = _move(
            actor,
            clinic=to_clinic,
            other_clinic=from_clinic,
            kind=MoveKind.TRANSFER_IN,
            lot=lot,
            units=units,
            vials=count,
            at=now,
            note=note.strip(),
        )
        _audit_move(actor, into, f"{count} vials received from {from_clinic.name}")
    return out, into


# --- vials -----------------------------------------------------------------------------


def reconstitute(actor: Actor, vial: Vial, diluent_ml: Any, at: datetime | None = None) -> Vial:
    """Open VIAL with DILUENT_ML of diluent at AT (default now): concentration from the label's
    table, use-by from the product's use-within hours."""
    actor.require("stock.use")
    _own(actor, vial, "vial")
    now = timezone.now()
    at = at or now
    if timezone.is_naive(at):
        raise ValidationError({"at": "The reconstitution time needs a time zone."})
    if at > now + timedelta(minutes=5):
        raise ValidationError({"at": "The reconstitution time is in the future."})
    try:
        diluent = Decimal(str(diluent_ml).strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError({"diluent_ml": f"“{diluent_ml}” is not a volume in mL."}) from None
    if not diluent.is_finite() or diluent != diluent.quantize(_CENT):
        raise ValidationError({"diluent_ml": "Enter the diluent volume in mL, e.g. 2.5."})
    with transaction.atomic():
        vial = _lock_vial(vial)
        lot = vial.lot
        if vial.state != VialState.SEALED:
            raise ValidationError(
                {"vial": f"This vial is already {vial.get_state_display().lower()}."}
            )
        if lot.expiry < local_date(vial.clinic, at):
            raise ValidationError(
                {
                    "vial": f"Lot {lot.lot_number} expired on {lot.expiry:%d/%m/%Y}: an expired "
                    "vial is not reconstituted. Destroy it, with a witness."
                }
            )
        try:
            conc = reconstitution.concentration(lot.product_id, vial.units, diluent)
            use_by = reconstitution.use_by(lot.product_id, at, diluted=diluent > 0)
        except reconstitution.ReconstitutionError as exc:
            raise ValidationError({"diluent_ml": str(exc)}) from None
        vial.state = VialState.RECONSTITUTED
        vial.opened_at = at
        vial.opened_by = actor.user
        vial.diluent_ml = diluent
        vial.concentration = conc.quantize(Decimal("0.000001"))
        vial.use_by = use_by
        vial.save(
            update_fields=[
                "state",
                "opened_at",
                "opened_by",
                "diluent_ml",
                "concentration",
                "use_by",
            ]
        )
        move = _move(
            actor,
            clinic=vial.clinic,
            kind=MoveKind.RECONSTITUTE,
            lot=lot,
            vial=vial,
            units=Decimal(0),
            vials=-1,
            at=at,
        )
        _audit_move(
            actor,
            move,
            f"vial #{vial.pk} reconstituted with {_u(diluent)} mL",
            diluent_ml=diluent,
            concentration=conc,
            use_by=use_by.isoformat() if use_by else None,
        )
    return vial


@dataclass(frozen=True)
class VialInfo:
    """What a vial's page shows."""

    vial: Vial
    units_left: Decimal
    use_by: datetime | None
    time_left: timedelta | None
    blocks: list[str]

    @property
    def usable(self) -> bool:
        return (
            self.vial.state == VialState.RECONSTITUTED and self.units_left > 0 and not self.blocks
        )


def vial_info(vial: Vial, now: datetime | None = None) -> VialInfo:
    now = _now(now)
    blocks = vial_blocks(vial, now) if vial.state == VialState.RECONSTITUTED else []
    return VialInfo(
        vial=vial,
        units_left=units_left(vial),
        use_by=vial.use_by,
        time_left=(vial.use_by - now) if vial.use_by else None,
        blocks=blocks,
    )


def _units_left_expr(at_before: datetime | None = None) -> ExpressionWrapper:
    moved = Sum("moves__units", filter=Q(moves__at__lt=at_before) if at_before else None)
    return ExpressionWrapper(
        F("units") + Coalesce(moved, _ZERO, output_field=_MONEY), output_field=_MONEY
    )


def usable_vials(
    organization: Organization, clinic: Clinic, product_id: str, now: datetime | None = None
) -> list[Vial]:
    """Reconstituted vials of PRODUCT_ID at CLINIC that can be drawn from at NOW: units left,
    within use-by, lot in date. Soonest use-by first; each has ``units_left`` set."""
    now = _now(now)
    if clinic.organization_id != getattr(organization, "pk", None):
        return []
    vials = (
        Vial.objects.for_org(organization)
        .filter(
            clinic=clinic,
            state=VialState.RECONSTITUTED,
            lot__product_id=product_id,
            lot__expiry__gte=local_date(clinic, now),
        )
        .filter(Q(use_by__isnull=True) | Q(use_by__gt=now))
        .select_related("lot", "clinic")
        .annotate(left=_units_left_expr())
        .filter(left__gt=0)
        .order_by(F("use_by").asc(nulls_last=True), "pk")
    )
    result = []
    for v in vials:
        v.units_left = _q(v.left)  # type: ignore[attr-defined]
        result.append(v)
    return result


def tracks_stock(organization: Organization, clinic: Clinic, product_id: str) -> bool:
    """Whether ORGANIZATION keeps its stock of PRODUCT_ID at CLINIC in Glabella: some lot of
    it has ever been received (or sent) there. Charting then draws every point from a vial;
    until then a session's lot number and expiry are typed."""
    return StockMove.objects.filter(
        organization=organization, clinic=clinic, lot__product_id=product_id
    ).exists()


def draw(
    actor: Actor,
    vial: Vial,
    units: Any,
    *,
    session: TreatmentSession,
    point_number: int,
    now: datetime | None = None,
) -> StockMove:
    """Draw UNITS from VIAL for point POINT_NUMBER of SESSION (an ``administer`` move).

    Blocked, with the reason, when the vial is past its use-by time or its lot has expired;
    refused when the vial is not open or holds less than UNITS. Safe against concurrent draws.
    """
    actor.require("stock.use")
    _own(actor, vial, "vial")
    _own(actor, session, "session")
    now = _now(now)
    amount = parse_units(units)
    if session.status == Status.VOIDED:
        raise ValidationError({"session": "This session was voided; nothing is drawn for it."})
    if not InjectionPoint.objects.filter(
        session=session, number=point_number, removed=False
    ).exists():
        raise ValidationError({"point_number": f"This session has no point {point_number}."})
    with transaction.atomic():
        vial = _lock_vial(vial)
        lot = vial.lot
        if lot.product_id != session.product_id:
            raise ValidationError(
                {
                    "vial": f"This vial is {_brand(lot.product_id)}; the session is charted with "
                    f"{_brand(session.product_id)}. Units of different products are not "
                    "interchangeable."
                }
            )
        if vial.clinic_id != session.clinic_id:
            raise ValidationError(
                {"vial": f"This vial is at {vial.clinic.name}, not where the session is."}
            )
        if vial.state == VialState.SEALED:
            raise ValidationError(
                {"vial": "This vial is still sealed: record its reconstitution first."}
            )
        if vial.state in CLOSED_STATES:
            raise ValidationError(
                {"vial": f"This vial is {vial.get_state_display().lower()}; use another vial."}
            )
        blocks = vial_blocks(vial, now)
        if blocks:
            raise ValidationError({"vial": " ".join(blocks)})
        left = units_left(vial)
        if amount > left:
            raise ValidationError(
                {
                    "units": f"This vial holds only {_u(left)} U; {_u(amount)} U cannot be "
                    "drawn from it. Draw the rest from another vial."
                }
            )
        move = _move(
            actor,
            clinic=vial.clinic,
            kind=MoveKind.ADMINISTER,
            lot=lot,
            vial=vial,
            units=-amount,
            at=now,
            session=session,
            point_number=point_number,
        )
        if left - amount == 0:
            _close(vial, actor, now, VialState.FINISHED, ClosedHow.EMPTIED)
        _audit_move(
            actor,
            move,
            f"{_u(amount)} U drawn from vial #{vial.pk} for point {point_number}",
            patient=session.patient_id,
            units_left=left - amount,
        )
    return move


def _close(vial: Vial, actor: Actor, now: datetime, state: str, how: str) -> None:
    vial.state = state
    vial.closed_at = now
    vial.closed_by = actor.user
    vial.closed_how = how
    vial.save(update_fields=["state", "closed_at", "closed_by", "closed_how"])


def session_draws(session: TreatmentSession) -> list[StockMove]:
    """The draws of SESSION still in force (not reversed), by point."""
    return list(
        StockMove.objects.filter(
            session=session,
            kind=MoveKind.ADMINISTER,
            reverses__isnull=True,
            reversed_by__isnull=True,
        )
        .select_related("vial", "lot")
        .order_by("point_number", "pk")
    )


def reverse_session_draws(
    actor: Actor,
    session: TreatmentSession,
    reason: str,
    *,
    point_number: int | None = None,
    now: datetime | None = None,
) -> list[StockMove]:
    """Reverse every draw of SESSION (or of one point) not yet reversed. Idempotent.

    Used when a session is amended or voided, or a draft point is changed or removed. The
    units go back to their vial; a vial that had been emptied by these draws is open again.
    Units returned to a vial that was finished with something in it, or discarded, show up
    as a discrepancy until they are wasted or adjusted.
    """
    actor.require("stock.use")
    _own(actor, session, "session")
    reason = _require_reason(reason)
    now = _now(now)
    reversals: list[StockMove] = []
    with transaction.atomic():
        # One reverser per session at a time; the unique ``reverses`` column backs it up.
        TreatmentSession.objects.select_for_update().filter(pk=session.pk).first()
        draws = StockMove.objects.filter(
            session=session,
            kind=MoveKind.ADMINISTER,
            reverses__isnull=True,
            reversed_by__isnull=True,
        )
        if point_number is not None:
            draws = draws.filter(point_number=point_number)
        for original in draws.order_by("pk"):
            vial = _lock_vial(original.vial)  # type: ignore[arg-type]
            move = _move(
                actor,
                clinic=original.clinic,
                kind=MoveKind.ADMINISTER,
                lot=original.lot,
                vial=vial,
                units=-original.units,
                at=now,
                session=session,
                point_number=original.point_number,
                reverses=original,
                reason=reason,
            )
            if vial.state == VialState.FINISHED and vial.closed_how == ClosedHow.EMPTIED:
                vial.state = VialState.RECONSTITUTED
                vial.closed_at = None
                vial.closed_by = None
                vial.closed_how = ""
                vial.save(update_fields=["state", "closed_at", "closed_by", "closed_how"])
            _audit_move(
                actor,
                move,
                f"draw for point {original.point_number} reversed ({_u(-original.units)} U "
                f"back to vial #{vial.pk})",
                patient=session.patient_id,
            )
            reversals.append(move)
    return reversals


def waste(
    actor: Actor,
    vial: Vial,
    units: Any = None,
    *,
    rest: bool = False,
    reason: str,
    now: datetime | None = None,
) -> StockMove | None:
    """Record UNITS (or, with REST, everything left) of an open vial as wasted.

    Wasting the rest finishes the vial. A finished vial that still has units on the books
    (the discrepancy) may have them recorded as wasted afterwards. Returns None when REST
    finds the vial already empty (it is just finished).
    """
    actor.require("stock.use")
    _own(actor, vial, "vial")
    reason = _require_reason(reason)
    now = _now(now)
    if rest == (units not in (None, "")):
        raise ValidationError({"units": "Enter the units wasted, or choose “the rest”."})
    amount = None if rest else parse_units(units)
    with transaction.atomic():
        vial = _lock_vial(vial)
        if vial.state == VialState.SEALED:
            raise ValidationError(
                {"vial": "A sealed vial is not wasted: destroy it, with a witness."}
            )
        if vial.state == VialState.DISCARDED:
            raise ValidationError({"vial": "This vial has been discarded already."})
        left = units_left(vial)
        if amount is None:
            amount = left
        if amount > left:
            raise ValidationError(
                {"units": f"This vial holds only {_u(left)} U; {_u(amount)} U cannot be wasted."}
            )
        if amount == 0 and vial.state != VialState.RECONSTITUTED:
            raise ValidationError({"units": "This vial is finished and empty: nothing to waste."})
        move = None
        if amount > 0:
            move = _move(
                actor,
                clinic=vial.clinic,
                kind=MoveKind.WASTE,
                lot=vial.lot,
                vial=vial,
                units=-amount,
                at=now,
                reason=reason,
            )
            _audit_move(actor, move, f"{_u(amount)} U wasted from vial #{vial.pk}")
        if vial.state == VialState.RECONSTITUTED and left - amount == 0:
            _close(vial, actor, now, VialState.FINISHED, ClosedHow.WASTED)
            if move is None:
                record(
                    actor,
                    Action.UPDATE,
                    vial,
                    label=f"vial #{vial.pk} finished (empty)",
                    detail={"state": vial.state},
                )
    return move


def finish(actor: Actor, vial: Vial, *, note: str = "", now: datetime | None = None) -> Decimal:
    """Mark an open vial finished (thrown away). Returns the units it still held on the books:
    anything but 0 is unaccounted for and shows as a discrepancy. Prefer ``waste(rest=True)``."""
    actor.require("stock.use")
    _own(actor, vial, "vial")
    now = _now(now)
    with transaction.atomic():
        vial = _lock_vial(vial)
        if vial.state != VialState.RECONSTITUTED:
            raise ValidationError(
                {"vial": f"Only an open vial is finished; this one is {vial.get_state_display()}."}
            )
        left = units_left(vial)
        _close(vial, actor, now, VialState.FINISHED, ClosedHow.FINISHED)
        record(
            actor,
            Action.UPDATE,
            vial,
            label=f"vial #{vial.pk} marked finished"
            + (f" with {_u(left)} U not accounted for" if left else ""),
            detail={"state": vial.state, "units_unaccounted": str(left), "note": note},
        )
    return left


def destroy(
    actor: Actor,
    target: Vial | Lot,
    *,
    reason: str,
    witness: User | None,
    vials: Any = None,
    clinic: Clinic | None = None,
    now: datetime | None = None,
) -> list[StockMove]:
    """Destroy a vial (sealed or open: everything in it), or VIALS sealed vials of a lot at
    CLINIC (default: the actor's clinic). WITNESS, another member of the organization, is
    required. One ``destroy`` move per vial."""
    actor.require("stock.use")
    _own(actor, target, "vial" if isinstance(target, Vial) else "lot")
    reason = _require_reason(reason)
    if witness is None:
        raise ValidationError(
            {"witness": "Destruction needs a witness: choose the colleague who saw it."}
        )
    if actor.user is not None and witness.pk == actor.user.pk:
        raise ValidationError({"witness": "The witness must be someone else."})
    if not _membership_user(actor.organization, witness):
        raise ValidationError({"witness": "The witness must be a member of your organization."})
    now = _now(now)
    moves: list[StockMove] = []
    with transaction.atomic():
        if isinstance(target, Vial):
            locked = [_lock_vial(target)]
            if locked[0].state == VialState.DISCARDED:
                raise ValidationError({"vial": "This vial has been discarded already."})
        else:
            clinic = clinic or actor.clinic
            if clinic is None:
                raise ValidationError({"clinic": "Choose the clinic."})
            _own(actor, clinic, "clinic")
            count = _whole_count(vials, "vials")
            locked = list(
                Vial.objects.select_for_update(of=("self",))
                .select_related("lot", "clinic")
                .filter(lot=target, clinic=clinic, state=VialState.SEALED)
                .order_by("pk")[:count]
            )
            if len(locked) < count:
                raise ValidationError(
                    {
                        "vials": f"{clinic.name} has {len(locked)} sealed vials of lot "
                        f"{target.lot_number}; {count} cannot be destroyed."
                    }
                )
        for vial in locked:
            sealed = vial.state == VialState.SEALED
            left = units_left(vial)
            if not sealed and left <= 0:
                raise ValidationError(
                    {"vial": "This vial is empty: there is nothing left to destroy."}
                )
            move = _move(
                actor,
                clinic=vial.clinic,
                kind=MoveKind.DESTROY,
                lot=vial.lot,
                vial=vial,
                units=-left,
                vials=-1 if sealed else 0,
                at=now,
                witness=witness,
                reason=reason,
            )
            _close(vial, actor, now, VialState.DISCARDED, ClosedHow.DESTROYED)
            _audit_move(
                actor,
                move,
                f"vial #{vial.pk} destroyed ({_u(left)} U), witnessed by {witness}",
                witness=witness.pk,
            )
            moves.append(move)
    return moves


def adjust(
    actor: Actor,
    clinic: Clinic,
    lot: Lot,
    *,
    reason: str,
    units: Any = None,
    vials: Any = None,
    vial: Vial | None = None,
    now: datetime | None = None,
) -> list[StockMove]:
    """Correct the stock with a reason (stock.manage).

    VIALS (signed whole number): sealed vials found (+, new sealed vials) or missing (-, the
    oldest sealed vials written off). UNITS (signed) with VIAL: correct what an opened vial
    holds, e.g. units not accounted for in a finished vial. Between 0 and the vial size.
    """
    actor.require("stock.manage")
    _own(actor, clinic, "clinic")
    _own(actor, lot, "lot")
    reason = _require_reason(reason)
    now = _now(now)
    if (units in (None, "")) == (vials in (None, "")):
        raise ValidationError({"units": "Adjust either units (of an open vial) or sealed vials."})
    moves: list[StockMove] = []
    with transaction.atomic():
        if vials not in (None, ""):
            count = _whole_count(vials, "vials", signed=True)
            if count > 0:
                Vial.objects.bulk_create(
                    [
                        Vial(
                            organization=actor.organization,
                            clinic=clinic,
                            lot=lot,
                            units=lot.vial_units,
                        )
                        for _ in range(count)
                    ]
                )
                move = _move(
                    actor,
                    clinic=clinic,
                    kind=MoveKind.ADJUST,
                    lot=lot,
                    units=Decimal(count * lot.vial_units),
                    vials=count,
                    at=now,
                    reason=reason,
                )
                _audit_move(actor, move, f"{count} sealed vials added by adjustment")
                moves.append(move)
            else:
                locked = list(
                    Vial.objects.select_for_update(of=("self",))
                    .select_related("lot", "clinic")
                    .filter(lot=lot, clinic=clinic, state=VialState.SEALED)
                    .order_by("pk")[:-count]
                )
                if len(locked) < -count:
                    raise ValidationError(
                        {
                            "vials": f"{clinic.name} has {len(locked)} sealed vials of lot "
                            f"{lot.lot_number}; {-count} cannot be written off."
                        }
                    )
                for v in locked:
                    move = _move(
                        actor,
                        clinic=clinic,
                        kind=MoveKind.ADJUST,
                        lot=lot,
                        vial=v,
                        units=-Decimal(v.units),
                        vials=-1,
                        at=now,
                        reason=reason,
                    )
                    _close(v, actor, now, VialState.DISCARDED, ClosedHow.ADJUSTED)
                    _audit_move(actor, move, f"sealed vial #{v.pk} written off by adjustment")
                    moves.append(move)
        else:
            amount = _signed_units(units)
            if vial is None:
                raise ValidationError({"vial": "Choose the vial whose units are corrected."})
            _own(actor, vial, "vial")
            locked_vial = _lock_vial(vial)
            if locked_vial.lot_id != lot.pk or locked_vial.clinic_id != clinic.pk:
                raise ValidationError({"vial": "That vial is not of this lot at this clinic."})
            if locked_vial.state == VialState.SEALED:
                raise ValidationError(
                    {"vial": "A sealed vial is counted in whole vials: adjust vials instead."}
                )
            left = units_left(locked_vial)
            if not 0 <= left + amount <= locked_vial.units:
                raise ValidationError(
                    {
                        "units": f"The vial holds {_u(left)} U on the books; after this it would "
                        f"hold {_u(left + amount)} U, outside 0-{locked_vial.units} U."
                    }
                )
            move = _move(
                actor,
                clinic=clinic,
                kind=MoveKind.ADJUST,
                lot=lot,
                vial=locked_vial,
                units=amount,
                at=now,
                reason=reason,
            )
            _audit_move(actor, move, f"vial #{locked_vial.pk} corrected by {_u(amount)} U")
            moves.append(move)
    return moves


def _signed_units(value: Any) -> Decimal:
    text = str(value if value is not None else "").strip()
    negative = text.startswith("-")
    amount = parse_units(text.lstrip("+-"))
    return -amount if negative else amount


# --- what is on hand -------------------------------------------------------------------


@dataclass(frozen=True)
class OpenVial:
    vial: Vial
    units_left: Decimal
    use_by: datetime | None


@dataclass(frozen=True)
class LotStock:
    """One lot at one clinic, from the ledger."""

    clinic: Clinic
    lot: Lot
    sealed_vials: int
    open_vials: tuple[OpenVial, ...]
    total_units: Decimal

    @property
    def sealed_units(self) -> Decimal:
        return Decimal(self.sealed_vials * self.lot.vial_units)

    @property
    def open_units(self) -> Decimal:
        return sum((v.units_left for v in self.open_vials), Decimal(0))

    @property
    def unaccounted(self) -> Decimal:
        """Units on the books that neither a sealed nor an open vial holds."""
        return self.total_units - self.sealed_units - self.open_units


def on_hand(
    organization: Organization, clinic: Clinic | None = None, lot: Lot | None = None
) -> list[LotStock]:
    """Stock per clinic and lot: sealed vials, open vials with units left, total units.

    Four queries whatever the size of the ledger."""
    moves = StockMove.objects.for_org(organization)
    opened = Vial.objects.for_org(organization).filter(state=VialState.RECONSTITUTED)
    if clinic is not None:
        moves, opened = moves.filter(clinic=clinic), opened.filter(clinic=clinic)
    if lot is not None:
        moves, opened = moves.filter(lot=lot), opened.filter(lot=lot)
    sums = {
        (r["clinic_id"], r["lot_id"]): r
        for r in moves.values("clinic_id", "lot_id")
        .annotate(units_sum=Sum("units"), vials_sum=Sum("vials"))
        .order_by()
    }
    open_by: dict[tuple[int, int], list[OpenVial]] = defaultdict(list)
    for v in opened.annotate(left=_units_left_expr()).filter(left__gt=0).order_by("use_by", "pk"):
        open_by[(v.clinic_id, v.lot_id)].append(OpenVial(v, _q(v.left), v.use_by))  # type: ignore[attr-defined]
    keys = set(open_by) | {
        k for k, r in sums.items() if _q(r["units_sum"]) != 0 or (r["vials_sum"] or 0) != 0
    }
    # scoped: lot ids from this organization's scoped stock rows above
    lots = Lot.objects.in_bulk({k[1] for k in keys})
    clinics = Clinic.objects.in_bulk({k[0] for k in keys})
    result = []
    for key in keys:
        r = sums.get(key, {})
        result.append(
            LotStock(
                clinic=clinics[key[0]],
                lot=lots[key[1]],
                sealed_vials=int(r.get("vials_sum") or 0),
                open_vials=tuple(open_by.get(key, [])),
                total_units=_q(r.get("units_sum")),
            )
        )
    return sorted(result, key=lambda s: (s.clinic.name, s.lot.expiry, s.lot.lot_number))


# --- reconciliation --------------------------------------------------------------------


@dataclass(frozen=True)
class ReconRow:
    clinic: Clinic
    lot: Lot
    start: datetime
    end: datetime
    opening: Decimal
    received: Decimal
    transferred_in: Decimal
    transferred_out: Decimal
    administered: Decimal
    wasted: Decimal
    destroyed: Decimal
    adjusted: Decimal
    closing: Decimal
    sealed_vials: int
    discrepancy: Decimal
    unaccounted_vials: tuple[tuple[int, Decimal], ...] = field(default=())

    @property
    def expected(self) -> Decimal:
        """opening + in - out: what the movements say the closing balance is."""
        return (
            self.opening
            + self.received
            + self.transferred_in
            - self.transferred_out
            - self.administered
            - self.wasted
            - self.destroyed
            + self.adjusted
        )

    @property
    def physical(self) -> Decimal:
        """What the vials hold: sealed vials and open vials, without the unaccounted units."""
        return self.closing - self.discrepancy

    @property
    def balanced(self) -> bool:
        return self.expected == self.closing and self.discrepancy == 0


def _bounds(
    clinic: Clinic, start: date | datetime, end: date | datetime
) -> tuple[datetime, datetime]:
    """Dates are whole days at the clinic (END included); datetimes are [START, END)."""
    tz = _tz(clinic)

    def point(value: date | datetime, *, after: bool) -> datetime:
        if isinstance(value, datetime):
            if timezone.is_naive(value):
                raise ValueError("reconciliation times must be aware datetimes")
            return value
        day = value + timedelta(days=1) if after else value
        return datetime.combine(day, time.min, tzinfo=tz)

    return point(start, after=False), point(end, after=True)


def reconciliation(
    organization: Organization,
    clinic: Clinic | None = None,
    lot: Lot | None = None,
    *,
    start: date | datetime,
    end: date | datetime,
) -> list[ReconRow]:
    """Per clinic and lot for the period: opening, each kind of movement, closing (all from
    sums of moves), sealed vials at the end, and the discrepancy (units on the books of vials
    closed by END that no draw, waste or destruction accounts for)."""
    clinics = Clinic.objects.filter(organization=organization)
    if clinic is not None:
        clinics = clinics.filter(pk=clinic.pk)
    rows: list[ReconRow] = []
    for c in clinics.order_by("name"):
        start_at, end_at = _bounds(c, start, end)
        if end_at <= start_at:
            raise ValidationError({"end": "The end of the period is before its start."})
        moves = StockMove.objects.for_org(organization).filter(clinic=c, at__lt=end_at)
        vials = Vial.objects.for_org(organization).filter(clinic=c, closed_at__lt=end_at)
        if lot is not None:
            moves, vials = moves.filter(lot=lot), vials.filter(lot=lot)
        # One row per lot and kind of move, four sums each, added up per lot below: eleven
        # filtered sums per lot cost SQLite twice as much, each filter tested on every move.
        # The lots are named by a subquery on the organization's lots, so that SQLite walks
        # the (lot, kind) index lot by lot, already in the grouping's order; on its own it
        # would walk the whole index (every organization's moves) or sort.
        by_kind = (
            moves.filter(lot_id__in=Lot.objects.filter(organization=organization).values("pk"))
            .values_list("lot_id", "kind")
            .annotate(
                before=Sum("units", filter=Q(at__lt=start_at)),
                during=Sum("units", filter=Q(at__gte=start_at)),
                moves_during=Count("pk", filter=Q(at__gte=start_at)),
                vials_sum=Sum("vials"),
            )
            .order_by()
        )
        sums: dict[int, dict[str, Any]] = {}
        for lot_id, kind, before, during, moves_during, vials_sum in by_kind:
            r = sums.setdefault(lot_id, {"opening": _q(0), "closing": _q(0), "n": 0, "sealed": 0})
            r[kind] = during = _q(during)
            r["opening"] += (before := _q(before))
            r["closing"] += before + during
            r["n"] += moves_during
            r["sealed"] += int(vials_sum or 0)
        unaccounted: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
        for v in (
            vials.annotate(left=_units_left_expr(at_before=end_at))
            .exclude(left=0)
            .values("pk", "lot_id", "left")
            .order_by("pk")
        ):
            unaccounted[v["lot_id"]].append((v["pk"], _q(v["left"])))
        # scoped: lot ids from this organization's scoped stock rows above
        lots = Lot.objects.in_bulk(list(sums))
        zero = _q(0)
        for lot_id, r in sums.items():
            opening, closing = r["opening"], r["closing"]
            if not r["n"] and opening == 0 and closing == 0:
                continue
            found = tuple(unaccounted.get(lot_id, ()))
            rows.append(
                ReconRow(
                    clinic=c,
                    lot=lots[lot_id],
                    start=start_at,
                    end=end_at,
                    opening=opening,
                    received=r.get(MoveKind.RECEIVE, zero),
                    transferred_in=r.get(MoveKind.TRANSFER_IN, zero),
                    transferred_out=-r.get(MoveKind.TRANSFER_OUT, zero),
                    administered=-r.get(MoveKind.ADMINISTER, zero),
                    wasted=-r.get(MoveKind.WASTE, zero),
                    destroyed=-r.get(MoveKind.DESTROY, zero),
                    adjusted=r.get(MoveKind.ADJUST, zero),
                    closing=closing,
                    sealed_vials=r["sealed"],
                    discrepancy=sum((u for _, u in found), Decimal(0)).quantize(_CENT),
                    unaccounted_vials=found,
                )
            )
    return sorted(rows, key=lambda r: (r.clinic.name, r.lot.product_id, r.lot.lot_number))


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


RECONCILIATION_HEADER = (
    "clinic",
    "product",
    "lot",
    "expiry",
    "period start",
    "period end",
    "opening units",
    "received",
    "transferred in",
    "transferred out",
    "administered",
    "wasted",
    "destroyed",
    "adjusted",
    "closing units",
    "expected (opening + in - out)",
    "sealed vials",
    "physical units",
    "discrepancy units",
    "vials with units unaccounted",
)


def reconciliation_csv(
    organization: Organization,
    clinic: Clinic | None = None,
    lot: Lot | None = None,
    *,
    start: date | datetime,
    end: date | datetime,
) -> str:
    rows = reconciliation(organization, clinic, lot, start=start, end=end)
    return _csv(
        RECONCILIATION_HEADER,
        (
            (
                r.clinic.name,
                _brand(r.lot.product_id),
                r.lot.lot_number,
                r.lot.expiry.isoformat(),
                r.start.isoformat(),
                r.end.isoformat(),
                r.opening,
                r.received,
                r.transferred_in,
                r.transferred_out,
                r.administered,
                r.wasted,
                r.destroyed,
                r.adjusted,
                r.closing,
                r.expected,
                r.sealed_vials,
                r.physical,
                r.discrepancy,
                " ".join(f"#{pk}:{_u(u)}U" for pk, u in r.unaccounted_vials),
            )
            for r in rows
        ),
    )


# --- recall trace ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecallRow:
    patient_id: int
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str
    email: str
    reminder_consent: bool
    preferred_channel: str
    session_id: int
    treated_on: date
    session_status: str
    clinic: str
    point_number: int | None
    area: str
    muscle: str
    side: str
    units: Decimal
    drawn_at: datetime
    vial_id: int | None
    lot_number: str
    product_id: str
    expiry: date

    @property
    def patient_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class RecallTrace:
    lot_number: str
    lots: list[Lot]
    rows: list[RecallRow]

    @property
    def patient_ids(self) -> list[int]:
        return list(dict.fromkeys(r.patient_id for r in self.rows))

    @property
    def session_ids(self) -> list[int]:
        return list(dict.fromkeys(r.session_id for r in self.rows))


# What each row of the trace reads, by the field of RecallRow it fills (the point's area,
# muscle and side are annotated below: a draw names its point by session and number).
_TRACE_COLUMNS = {
    "patient_id": "session__patient_id",
    "given_name": "session__patient__given_name",
    "family_name": "session__patient__family_name",
    "date_of_birth": "session__patient__date_of_birth",
    "phone": "session__patient__phone",
    "email": "session__patient__email",
    "reminder_consent": "session__patient__reminder_consent",
    "preferred_channel": "session__patient__preferred_channel",
    "session_id": "session_id",
    "treated_on": "session__treated_on",
    "session_status": "session__status",
    "clinic": "session__clinic__name",
    "point_number": "point_number",
    "area": "point_area",
    "muscle": "point_muscle",
    "side": "point_side",
    "units": "units",
    "drawn_at": "at",
    "vial_id": "vial_id",
    "lot_number": "lot__lot_number",
    "product_id": "lot__product_id",
    "expiry": "lot__expiry",
}


def _trace_rows(organization_id: int, **lots: Any) -> QuerySet[StockMove]:
    """The draws from the organization's LOTS (filters on the move) that were not reversed,
    as tuples of _TRACE_COLUMNS, in the trace's order: patient, then session, then point."""
    point = InjectionPoint.objects.filter(
        session=OuterRef("session_id"), number=OuterRef("point_number")
    )
    return (
        StockMove.objects.filter(
            organization_id=organization_id,
            kind=MoveKind.ADMINISTER,
            session__isnull=False,  # always true for a draw; lets the joins be inner joins
            reverses__isnull=True,
            reversed_by__isnull=True,
            **lots,
        )
        .annotate(
            point_area=Subquery(point.values("area")[:1]),
            point_muscle=Subquery(point.values("muscle")[:1]),
            point_side=Subquery(point.values("side")[:1]),
        )
        .values_list(*_TRACE_COLUMNS.values())
        .order_by(
            "session__patient__family_name",
            "session__patient__given_name",
            "session__patient_id",
            "session__treated_on",
            "session_id",
            "point_number",
            "pk",
        )
    )


# Compiled once per connection (glabella/prepared.py): building this query of six tables and
# three subqueries cost the ORM about five times what the database takes to answer it.
_TRACE_OF_NUMBER = Prepared(
    lambda org, number: _trace_rows(org, lot__organization_id=org, lot__lot_number=number),
    kinds=(int, str),
)
_TRACE_OF_LOT = Prepared(lambda org, lot: _trace_rows(org, lot_id=lot))
_LOTS_NUMBERED = Prepared(
    lambda org, number: Lot.objects.for_org(org).filter(lot_number=number), kinds=(int, str)
)


def recall_trace(
    organization: Organization, lot_number: str | None = None, *, lot: Lot | None = None
) -> RecallTrace:
    """Every patient, session and point that received the lot (every product's lot with that
    number, or LOT), through draws that were not reversed. One query for the lots, one for
    the rows.

    The query walks lot (index ``lot_number``, or its id) → administer moves (index
    ``move_lot_kind_session``) → the reversal check (the unique index on ``reverses``) →
    session (pk) → patient (pk) → clinic (pk), and looks the point up by the session's
    ``(session, number)`` unique index.
    """
    if lot is not None:
        if lot.organization_id != getattr(organization, "pk", None):
            raise Lot.DoesNotExist("No such lot.")
        lots, label = [lot], lot.lot_number
    else:
        label = normalize_lot(lot_number)
        if not label:
            raise ValidationError({"lot_number": "Enter the lot number to trace."})
        lots = _LOTS_NUMBERED(organization.pk, label)
    if not lots:
        return RecallTrace(label, [], [])
    if lot is not None:
        found = _TRACE_OF_LOT(organization.pk, lot.pk)
    else:
        found = _TRACE_OF_NUMBER(organization.pk, label)
    # Each row's values in RecallRow's order (_TRACE_COLUMNS); a point no longer on the chart
    # has no area, muscle or side; a draw's units are negative on the books.
    rows = []
    for *patient_and_session, area, muscle, side, units, at, vial, lot_no, product, expiry in found:
        rows.append(
            RecallRow(
                *patient_and_session,
                area or "",
                muscle or "",
                side or "",
                -_q(units),
                at,
                vial,
                lot_no,
                product,
                expiry,
            )
        )
    return RecallTrace(label, lots, rows)


def view_recall(
    actor: Actor, lot_number: str | None = None, *, lot: Lot | None = None
) -> RecallTrace:
    """The recall trace for a page: permission checked and the look-up audited."""
    actor.require("stock.recall")
    trace = recall_trace(actor.organization, lot_number, lot=lot)
    record(
        actor,
        Action.VIEW,
        object_type="inventory.lot",
        object_id=",".join(str(x.pk) for x in trace.lots)[:64],
        label=f"recall trace of lot {trace.lot_number}",
        detail={"lot_number": trace.lot_number, "patients": trace.patient_ids},
    )
    return trace


RECALL_HEADER = (
    "lot",
    "product",
    "expiry",
    "family name",
    "given name",
    "date of birth",
    "phone",
    "e-mail",
    "agrees to reminders",
    "reminders by",
    "treated on",
    "clinic",
    "session",
    "session status",
    "point",
    "area",
    "muscle",
    "side",
    "units",
    "vial",
)


def recall_csv(actor: Actor, lot_number: str | None = None, *, lot: Lot | None = None) -> str:
    """The recall trace as CSV (patient contact details: permission checked, export audited)."""
    actor.require("stock.recall")
    trace = recall_trace(actor.organization, lot_number, lot=lot)
    record(
        actor,
        Action.EXPORT,
        object_type="inventory.lot",
        object_id=",".join(str(x.pk) for x in trace.lots)[:64],
        label=f"recall trace of lot {trace.lot_number} exported (CSV)",
        detail={"lot_number": trace.lot_number, "rows": len(trace.rows)},
    )
    return _csv(
        RECALL_HEADER,
        (
            (
                r.lot_number,
                _brand(r.product_id),
                r.expiry.isoformat(),
                r.family_name,
                r.given_name,
                r.date_of_birth.isoformat(),
                r.phone,
                r.email,
                "yes" if r.reminder_consent else "no",
                r.preferred_channel,
                r.treated_on.isoformat(),
                r.clinic,
                r.session_id,
                r.session_status,
                r.point_number,
                r.area,
                r.muscle,
                r.side,
                r.units,
                r.vial_id,
            )
            for r in trace.rows
        ),
    )


# --- alerts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One thing the dashboard and the daily digest show.

    ``kind``: ``lot-expired``, ``lot-expiring``, ``low-stock``, ``vial-timed-out``,
    ``vial-use-by-soon``. ``severity``: ``urgent`` or ``warn``.
    """

    kind: str
    severity: str
    message: str
    clinic_id: int
    product_id: str
    lot_id: int | None = None
    vial_id: int | None = None
    due: date | datetime | None = None


def alerts(organization: Organization, clinic: Clinic, now: datetime | None = None) -> list[Alert]:
    """Lots expiring within 30 days (or expired) with stock, products below their threshold
    and open vials within 2 hours of their use-by time (or past it) with units left."""
    now = _now(now)
    if clinic.organization_id != getattr(organization, "pk", None):
        return []
    today = local_date(clinic, now)
    tz = _tz(clinic)
    found: list[Alert] = []
    stock = on_hand(organization, clinic)
    for s in stock:
        if s.total_units <= 0 or s.lot.expiry > today + timedelta(days=EXPIRY_WARNING_DAYS):
            continue
        brand = _brand(s.lot.product_id)
        what = f"{brand} lot {s.lot.lot_number} ({s.sealed_vials} sealed, {_u(s.total_units)} U)"
        if s.lot.expiry < today:
            found.append(
                Alert(
                    "lot-expired",
                    "urgent",
                    f"{what} expired on {s.lot.expiry:%d/%m/%Y}: destroy it, with a witness.",
                    clinic.pk,
                    s.lot.product_id,
                    lot_id=s.lot.pk,
                    due=s.lot.expiry,
                )
            )
        else:
            days = (s.lot.expiry - today).days
            found.append(
                Alert(
                    "lot-expiring",
                    "warn",
                    f"{what} expires on {s.lot.expiry:%d/%m/%Y}, in {days} day"
                    f"{'' if days == 1 else 's'}.",
                    clinic.pk,
                    s.lot.product_id,
                    lot_id=s.lot.pk,
                    due=s.lot.expiry,
                )
            )
    sealed_by_product: dict[str, int] = defaultdict(int)
    for s in stock:
        if s.lot.expiry >= today:
            sealed_by_product[s.lot.product_id] += s.sealed_vials
    for t in Threshold.objects.for_org(organization).filter(clinic=clinic).order_by("product_id"):
        have = sealed_by_product.get(t.product_id, 0)
        if have < t.min_vials:
            found.append(
                Alert(
                    "low-stock",
                    "warn",
                    f"{_brand(t.product_id)}: {have} sealed vial{'' if have == 1 else 's'} in "
                    f"date, below the minimum of {t.min_vials}. Order more.",
                    clinic.pk,
                    t.product_id,
                )
            )
    for s in stock:
        for ov in s.open_vials:
            if ov.use_by is None or ov.use_by > now + USE_BY_WARNING:
                continue
            local = ov.use_by.astimezone(tz)
            label = f"{_brand(s.lot.product_id)} vial #{ov.vial.pk} ({_u(ov.units_left)} U left)"
            if ov.use_by <= now:
                found.append(
                    Alert(
                        "vial-timed-out",
                        "urgent",
                        f"{label} had to be used by {local:%H:%M on %d/%m}: waste the rest.",
                        clinic.pk,
                        s.lot.product_id,
                        lot_id=s.lot.pk,
                        vial_id=ov.vial.pk,
                        due=ov.use_by,
                    )
                )
            else:
                minutes = int((ov.use_by - now).total_seconds() // 60)
                found.append(
                    Alert(
                        "vial-use-by-soon",
                        "warn",
                        f"{label} must be used by {local:%H:%M} (in {minutes // 60} h "
                        f"{minutes % 60:02d} min).",
                        clinic.pk,
                        s.lot.product_id,
                        lot_id=s.lot.pk,
                        vial_id=ov.vial.pk,
                        due=ov.use_by,
                    )
                )
    order = {"urgent": 0, "warn": 1}
    return sorted(found, key=lambda a: (order[a.severity], str(a.due or "")))


def digest_text(organization: Organization, clinic: Clinic, now: datetime | None = None) -> str:
    """The daily stock digest for a clinic's owner, as plain text."""
    now = _now(now)
    items = alerts(organization, clinic, now)
    lines = [f"Stock at {clinic.name}, {local_date(clinic, now):%d/%m/%Y}", ""]
    if not items:
        lines.append("Nothing needs attention today.")
    for a in items:
        lines.append(f"{'URGENT' if a.severity == 'urgent' else 'Note'}: {a.message}")
    return "\n".join(lines) + "\n"


# --- thresholds and prices -------------------------------------------------------------


def set_threshold(actor: Actor, clinic: Clinic, product_id: str, min_vials: Any) -> Threshold:
    actor.require("stock.manage")
    _own(actor, clinic, "clinic")
    try:
        catalogue.product(product_id)
    except KeyError:
        raise ValidationError({"product_id": "Choose the product."}) from None
    count = 0 if str(min_vials).strip() == "0" else _whole_count(min_vials, "min_vials")
    with transaction.atomic():
        threshold, _ = Threshold.objects.update_or_create(
            organization=actor.organization,
            clinic=clinic,
            product_id=product_id,
            defaults={"min_vials": count},
        )
        record(
            actor,
            Action.UPDATE,
            threshold,
            label=f"{_brand(product_id)} minimum at {clinic.name}: {count} vials",
            detail={"product": product_id, "min_vials": count},
        )
    return threshold


def set_price(
    actor: Actor, clinic: Clinic, product_id: str, basis: str, amount: Any, currency: str
) -> Price:
    actor.require("stock.manage")
    _own(actor, clinic, "clinic")
    errors: dict[str, str] = {}
    try:
        catalogue.product(product_id)
    except KeyError:
        errors["product_id"] = "Choose the product."
    if basis not in PriceBasis.values:
        errors["basis"] = "Choose per unit or per area."
    try:
        money = Decimal(str(amount).strip().replace(",", "."))
        if not money.is_finite() or money < 0 or money != money.quantize(_CENT):
            raise InvalidOperation
    except InvalidOperation:
        errors["amount"] = "Enter the price, e.g. 9.50."
        money = Decimal(0)
    code = str(currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        errors["currency"] = "Enter a three-letter currency code, e.g. GBP or EUR."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        price, _ = Price.objects.update_or_create(
            organization=actor.organization,
            clinic=clinic,
            product_id=product_id,
            defaults={"basis": basis, "amount": money, "currency": code},
        )
        record(
            actor,
            Action.UPDATE,
            price,
            label=f"{_brand(product_id)} price at {clinic.name}: {money} {code} {basis}",
            detail={"product": product_id, "basis": basis, "amount": str(money), "currency": code},
        )
    return price


@dataclass(frozen=True)
class PriceLine:
    area: str
    units: Decimal
    amount: Decimal


@dataclass(frozen=True)
class SessionPrice:
    product_id: str
    basis: str
    rate: Decimal
    currency: str
    quantity: Decimal  # units, or number of areas
    lines: tuple[PriceLine, ...]
    total: Decimal


_PRICE = Prepared(
    lambda org, clinic, product: Price.objects.filter(
        organization_id=org, clinic_id=clinic, product_id=product
    ).order_by("pk")[:1],
    kinds=(int, int, str),
)


def session_price(
    session: TreatmentSession, points: Iterable[InjectionPoint] | None = None
) -> SessionPrice | None:
    """The session's price at its clinic: units x price per unit, or areas x price per area.
    None when the clinic has no price for the product. POINTS, when the caller has read them
    already, are the session's live (not removed) points in order of number."""
    price = _PRICE.first(session.organization_id, session.clinic_id, session.product_id)
    if price is None:
        return None
    if points is None:
        points = InjectionPoint.objects.filter(session=session, removed=False).order_by("number")
    by_area: dict[str, Decimal] = defaultdict(Decimal)
    for p in points:
        by_area[p.area] += p.units
    if price.basis == PriceBasis.PER_UNIT:
        lines = tuple(
            PriceLine(area, units, (units * price.amount).quantize(_CENT))
            for area, units in by_area.items()
        )
        quantity = sum(by_area.values(), Decimal(0))
    else:
        lines = tuple(PriceLine(area, units, price.amount) for area, units in by_area.items())
        quantity = Decimal(len(by_area))
    return SessionPrice(
        product_id=session.product_id,
        basis=price.basis,
        rate=price.amount,
        currency=price.currency,
        quantity=quantity,
        lines=lines,
        total=sum((line.amount for line in lines), Decimal(0)).quantize(_CENT),
    )


__all__ = [
    "Alert",
    "LotStock",
    "ObjectDoesNotExist",
    "OpenVial",
    "PriceLine",
    "RecallRow",
    "RecallTrace",
    "Receipt",
    "ReconRow",
    "SessionPrice",
    "VialInfo",
    "adjust",
    "alerts",
    "destroy",
    "digest_text",
    "draw",
    "finish",
    "on_hand",
    "recall_csv",
    "recall_trace",
    "receive",
    "reconciliation",
    "reconciliation_csv",
    "reconstitute",
    "reverse_session_draws",
    "session_draws",
    "session_price",
    "set_price",
    "set_threshold",
    "tracks_stock",
    "transfer",
    "units_left",
    "usable_vials",
    "vial_blocks",
    "vial_info",
    "view_recall",
    "waste",
]


def price_export_csv(
    organization: Organization, clinic: Clinic | None, *, start: date, end: date
) -> str:
    """Signed treatments of the period (dates inclusive) with their price, one row a session,
    in each product's own units; a session whose clinic has no price for the product says so."""
    sessions = (
        TreatmentSession.objects.filter(
            organization_id=getattr(organization, "pk", None),
            status__in=[Status.SIGNED, Status.AMENDED],
            treated_on__gte=start,
            treated_on__lte=end,
        )
        .select_related("patient", "clinic")
        .order_by("treated_on", "pk")
    )
    if clinic is not None:
        sessions = sessions.filter(clinic=clinic)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "date",
            "clinic",
            "patient",
            "date_of_birth",
            "product",
            "indication",
            "units",
            "basis",
            "rate",
            "currency",
            "total",
        ]
    )
    for session in sessions:
        units = sum(
            InjectionPoint.objects.filter(session=session, removed=False).values_list(
                "units", flat=True
            ),
            Decimal(0),
        )
        price = session_price(session)
        writer.writerow(
            [
                session.treated_on.isoformat(),
                session.clinic.name,
                session.patient.full_name,
                session.patient.date_of_birth.isoformat(),
                session.product_id,
                session.indication,
                format(units.normalize(), "f"),
                price.basis if price else "no price set",
                str(price.rate) if price else "",
                price.currency if price else "",
                str(price.total) if price else "",
            ]
        )
    return out.getvalue()
