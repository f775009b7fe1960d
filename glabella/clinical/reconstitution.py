"""Reconstitution: concentration of a vial, units <-> volume, and the use-by time.

Concentration is expressed in **units per 0.1 mL** (the way labels and syringes speak). When the
label's reconstitution table has a row for the vial size and diluent volume, its figure is used
as printed, with its status, even where plain arithmetic disagrees: Daxxify 100 U + 1.2 mL is
"8 U/0.1 mL" in the table while 100 / 1.2 / 10 = 8.33 (that row is *unconfirmed*; the arithmetic
figure is reported beside it in :class:`ConcentrationInfo`). Otherwise the concentration is
``vial_units / diluent_ml / 10`` computed in Decimal (status ``"secondary"``: derived by
arithmetic).

Myobloc is a ready-to-use solution, 5,000 U/mL = 500 U per 0.1 mL. For Myobloc ``diluent_ml`` is
the saline *added* to the vial (0 for the undiluted solution) and the arithmetic uses the vial's
own volume plus the added saline.

All arithmetic is Decimal (never float) in a local context of 28 significant digits; results are
rounded only for display, by the caller. Bad input raises :class:`ReconstitutionError` with a
message a nurse can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Literal

from glabella.clinical import catalogue
from glabella.clinical._reference import Status
from glabella.clinical.units import UnitMismatch, Units

__all__ = [
    "ConcentrationInfo",
    "ReconstitutionError",
    "concentration",
    "concentration_info",
    "units_for_volume",
    "use_by",
    "volume_ml",
]

_CONTEXT = Context(prec=28)
_TENTH = Decimal("0.1")
_STATUS_RANK: dict[Status, int] = {"confirmed": 0, "secondary": 1, "unconfirmed": 2}


class ReconstitutionError(ValueError):
    """Reconstitution input that cannot be right (message written for the nurse)."""


@dataclass(frozen=True, slots=True)
class ConcentrationInfo:
    """A concentration and where it comes from.

    ``basis`` is ``"table"`` when a label (or reference) reconstitution table row matched, else
    ``"arithmetic"``. ``status`` is the weaker of the row's status (or ``"secondary"`` for
    arithmetic) and the vial size's status. ``arithmetic_units_per_0_1ml`` is always
    vial_units / total_ml / 10 so a discrepancy with the table can be shown.
    """

    product_id: str
    vial_units: int
    diluent_ml: Decimal
    units_per_0_1ml: Decimal
    units_per_ml: Decimal
    basis: Literal["table", "arithmetic"]
    status: Status
    sources: tuple[str, ...]
    arithmetic_units_per_0_1ml: Decimal
    use_for: str | None = None
    label_expression: str | None = None
    note: str = ""

    @property
    def differs_from_arithmetic(self) -> bool:
        """True when the table figure is not what vial_units / diluent / 10 gives."""
        return self.units_per_0_1ml != self.arithmetic_units_per_0_1ml


def _weaker(a: Status, b: Status) -> Status:
    return a if _STATUS_RANK[a] >= _STATUS_RANK[b] else b


def _as_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ReconstitutionError(
            f"{what} must be an exact decimal number (e.g. Decimal('2.5')), not {value!r}"
        )
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, Decimal):
        raise ReconstitutionError(f"{what} must be a number, not {value!r}")
    if not value.is_finite():
        raise ReconstitutionError(f"{what} must be a real number, not {value}")
    return value


def _vial_units(value: object, product: catalogue.Product) -> int:
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReconstitutionError(f"Vial size must be a whole number of units, not {value!r}")
    if value not in product.vial_units:
        sizes = ", ".join(f"{v} U" for v in product.vial_units)
        raise ReconstitutionError(
            f"{product.brand} does not come in a {value} U vial (vial sizes: {sizes}); "
            "check the vial label"
        )
    return value


def _concentration_value(value: object) -> Decimal:
    conc = _as_decimal(value, "Concentration (units per 0.1 mL)")
    if conc <= 0:
        raise ReconstitutionError(
            f"Concentration must be more than 0 units per 0.1 mL (got {conc})"
        )
    return conc


def concentration_info(product_id: str, vial_units: int, diluent_ml: Decimal) -> ConcentrationInfo:
    """Concentration (units per 0.1 mL) of ``product_id`` after adding ``diluent_ml`` of diluent.

    Uses the reconstitution table row when one matches (its figure and status, kept even where it
    differs from arithmetic), otherwise vial_units / diluent_ml / 10 in Decimal. Raises
    ``UnknownProduct`` for an unknown product and :class:`ReconstitutionError` for a vial size the
    product does not come in, a diluent volume that is not more than 0 (0 is allowed only for
    Myobloc, meaning undiluted), NaN/infinity, or a float.
    """
    item = catalogue.product(product_id)
    units = _vial_units(vial_units, item)
    diluent = _as_decimal(diluent_ml, "Diluent volume (mL)")
    ready = item.vial_volume_ml(units)
    if ready is None:
        if diluent <= 0:
            raise ReconstitutionError(
                f"Diluent volume must be more than 0 mL (got {diluent} mL): {item.brand} is a "
                "powder and must be reconstituted with saline"
            )
        total_ml = diluent
    else:
        if diluent < 0:
            raise ReconstitutionError(
                f"Added saline cannot be negative (got {diluent} mL); enter 0 for undiluted "
                f"{item.brand}"
            )
        total_ml = ready + diluent

    with localcontext(_CONTEXT):
        arithmetic = _plain(Decimal(units) / total_ml / 10)

    vial_status = item.vial_status(units)
    rows = [r for r in item.reconstitution if r.vial_units == units and r.diluent_ml == diluent]
    if rows:
        if len({r.units_per_0_1ml for r in rows}) != 1:  # pragma: no cover - data error
            raise ValueError(f"Conflicting reconstitution rows for {product_id} {units} U")
        best = min(rows, key=lambda r: _STATUS_RANK[r.status])
        value = _plain(best.units_per_0_1ml)
        notes = [r.note for r in rows if r.note]
        return ConcentrationInfo(
            product_id=item.id,
            vial_units=units,
            diluent_ml=diluent,
            units_per_0_1ml=value,
            units_per_ml=_plain(value * 10),
            basis="table",
            status=_weaker(best.status, vial_status),
            sources=item.sources,
            arithmetic_units_per_0_1ml=arithmetic,
            use_for="; ".join(dict.fromkeys(r.use_for for r in rows)),
            label_expression=next((r.label_expression for r in rows if r.label_expression), None),
            note="; ".join(notes),
        )
    return ConcentrationInfo(
        product_id=item.id,
        vial_units=units,
        diluent_ml=diluent,
        units_per_0_1ml=arithmetic,
        units_per_ml=_plain(arithmetic * 10),
        basis="arithmetic",
        status=_weaker("secondary", vial_status),
        sources=item.sources,
        arithmetic_units_per_0_1ml=arithmetic,
        note=(
            f"Not a row of the reconstitution table: {units} U / {_short(total_ml)} mL / 10"
            + (f" (vial holds {_short(ready)} mL of solution)" if ready is not None else "")
        ),
    )


def concentration(product_id: str, vial_units: int, diluent_ml: Decimal) -> Decimal:
    """Units per 0.1 mL of ``product_id`` reconstituted with ``diluent_ml`` (see
    :func:`concentration_info` for where the figure comes from and its status)."""
    return concentration_info(product_id, vial_units, diluent_ml).units_per_0_1ml


def _units_amount(product_id: str, units: object) -> Decimal:
    if isinstance(units, Units):
        if units.product_id != product_id:
            raise UnitMismatch(
                f"These are {catalogue.product(units.product_id).brand} units but the vial is "
                f"{catalogue.product(product_id).brand}: units of different toxin products are "
                "not interchangeable (every label says so)"
            )
        return units.amount
    amount = _as_decimal(units, "Units")
    if amount < 0:
        raise ReconstitutionError(f"Units cannot be negative (got {amount} U)")
    return amount


def volume_ml(product_id: str, units: Decimal | Units, concentration: Decimal) -> Decimal:
    """Millilitres that hold ``units`` at ``concentration`` units per 0.1 mL.

    ``volume = units / concentration * 0.1``, in Decimal, unrounded (28 significant digits when
    the division does not terminate, e.g. 10 U at 12 U/0.1 mL = 0.08333... mL). ``units`` may be
    a plain Decimal or a :class:`Units` of the same product.
    """
    catalogue.product(product_id)
    amount = _units_amount(product_id, units)
    conc = _concentration_value(concentration)
    with localcontext(_CONTEXT):
        return _plain(amount * _TENTH / conc)


def units_for_volume(product_id: str, volume_ml: Decimal, concentration: Decimal) -> Decimal:
    """Units in ``volume_ml`` mL at ``concentration`` units per 0.1 mL (volume * conc * 10)."""
    catalogue.product(product_id)
    volume = _as_decimal(volume_ml, "Volume (mL)")
    if volume < 0:
        raise ReconstitutionError(f"Volume cannot be negative (got {volume} mL)")
    conc = _concentration_value(concentration)
    with localcontext(_CONTEXT):
        return _plain(volume * conc * 10)


def use_by(
    product_id: str, reconstituted_at: datetime, *, diluted: bool = False
) -> datetime | None:
    """When a reconstituted vial must be used by: ``reconstituted_at + use_within_hours``.

    ``reconstituted_at`` must be timezone-aware (a naive time raises
    :class:`ReconstitutionError`). The hours are added in real elapsed time (through UTC), so a
    daylight-saving change never stretches 24 h into 25; the result is in the same time zone as
    the input.

    Returns None when the product has no use-within figure: Myobloc is a ready-to-use solution
    (single-dose vial, one session per patient). With ``diluted=True`` Myobloc's *unconfirmed*
    4 h limit after dilution with saline is applied instead (see
    ``Product.use_within_hours_after_dilution``); for the powders ``diluted`` changes nothing,
    since reconstitution is the dilution. The status of the figure used is
    ``Product.use_within_status`` (Daxxify's 72 h is unconfirmed).
    """
    item = catalogue.product(product_id)
    if not isinstance(reconstituted_at, datetime):
        raise ReconstitutionError("Reconstitution time must be a date and time")
    if reconstituted_at.tzinfo is None or reconstituted_at.utcoffset() is None:
        raise ReconstitutionError(
            "Reconstitution time needs a time zone (an aware datetime); a time without one is "
            "ambiguous"
        )
    hours = item.use_within_hours
    if hours is None and diluted:
        hours = item.use_within_hours_after_dilution
    if hours is None:
        return None
    try:
        micro = int(hours * 3_600_000_000)
    except (InvalidOperation, ValueError):  # pragma: no cover - reference data is finite
        raise ValueError(f"Bad use-within figure for {product_id}: {hours}") from None
    utc = reconstituted_at.astimezone(UTC) + timedelta(microseconds=micro)
    return utc.astimezone(reconstituted_at.tzinfo)


def _plain(value: Decimal) -> Decimal:
    """The same number without exponent notation or trailing zeros (500, not 5.0E+2)."""
    with localcontext(_CONTEXT):
        if value == value.to_integral_value():
            return value.quantize(Decimal(1))
        return value.normalize()


def _short(value: Decimal) -> str:
    """Display form: at most 3 decimal places, trailing zeros dropped (display only)."""
    q = value.quantize(Decimal("0.001")) if value.as_tuple().exponent != 0 else value
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
