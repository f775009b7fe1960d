"""The botulinum toxin products a clinic can chart, with every figure sourced.

Data: ``reference/products.json``, carried from the clinical reference (``clinical.json``
``products``). Each figure keeps its source ids and its status (see
:data:`glabella.clinical._reference.Status`); a figure the reference could not confirm is shipped
with status ``"unconfirmed"`` and must be shown as such.

Product ids: ``botox``, ``botox_cosmetic``, ``dysport``, ``xeomin``, ``jeuveau``, ``daxxify``,
``letybo``, ``myobloc``. Botox and Botox Cosmetic share ``generic`` (``onabotulinumtoxinA``): the
generic name is the product *family* used for cumulative limits and intervals. Units are never
interchangeable between products (every label says so): see :mod:`glabella.clinical.units`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from glabella.clinical import _reference
from glabella.clinical._reference import Status

__all__ = [
    "ALLERGENS",
    "PRODUCT_IDS",
    "Allergen",
    "LabelStatement",
    "Product",
    "ReconstitutionRow",
    "ShelfLife",
    "Storage",
    "UnknownProduct",
    "brand_name",
    "product",
    "products",
]

Allergen = Literal["albumin", "cow-milk-protein"]
ALLERGENS: frozenset[str] = frozenset({"albumin", "cow-milk-protein"})

PRODUCT_IDS: tuple[str, ...] = (
    "botox",
    "botox_cosmetic",
    "dysport",
    "xeomin",
    "jeuveau",
    "daxxify",
    "letybo",
    "myobloc",
)


class UnknownProduct(KeyError):
    """A product id that is not in the catalogue."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Unknown product"


@dataclass(frozen=True, slots=True)
class Storage:
    """Storage of the unopened product: human text plus the status of that statement."""

    text: str
    status: Status


@dataclass(frozen=True, slots=True)
class ShelfLife:
    """Unopened shelf life. ``vial_units`` is None when the figure applies to every vial size."""

    vial_units: int | None
    months: int
    status: Status


@dataclass(frozen=True, slots=True)
class ReconstitutionRow:
    """One row of a label (or derived) reconstitution table.

    ``units_per_0_1ml`` is the table's figure, kept even where plain arithmetic
    (vial_units / diluent_ml / 10) gives something else (Daxxify 100 U + 1.2 mL: table 8,
    arithmetic 8.33; the row is unconfirmed). ``label_expression`` keeps the label's own wording
    when it is expressed differently (Dysport "10 U per 0.08 mL").
    """

    vial_units: int
    diluent_ml: Decimal
    units_per_0_1ml: Decimal
    use_for: str
    status: Status
    label_expression: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class LabelStatement:
    """A yes/no statement from the label (e.g. units not interchangeable), with its status."""

    value: bool
    status: Status
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Product:
    """A botulinum toxin product as the clinic buys it.

    ``use_within_hours`` is the time a reconstituted vial may be used (None when the product has
    no such figure: Myobloc is a ready-to-use solution; its unconfirmed 4 h limit applies only
    after *dilution* and is ``use_within_hours_after_dilution``).
    ``allergens`` holds the allergy-relevant excipients (``"albumin"``, ``"cow-milk-protein"``);
    the status of each is in ``allergen_statuses``.
    """

    id: str
    brand: str
    generic: str
    serotype: str
    form: str
    vial_units: tuple[int, ...]
    vial_unit_statuses: tuple[tuple[int, Status], ...]
    unit_system: str
    units_not_interchangeable: LabelStatement
    diluent: str
    diluent_status: Status
    storage: Storage
    shelf_life: tuple[ShelfLife, ...]
    reconstitution: tuple[ReconstitutionRow, ...]
    use_within_hours: Decimal | None
    use_within_status: Status | None
    reconstituted_storage: str | None
    use_within_hours_after_dilution: Decimal | None
    use_within_after_dilution_status: Status | None
    allergens: frozenset[str]
    allergen_statuses: tuple[tuple[str, Status], ...]
    allergen_sources: tuple[tuple[str, tuple[str, ...]], ...]
    vial_volumes_ml: tuple[tuple[int, Decimal], ...]
    notes: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def ready_to_use(self) -> bool:
        """True for a product supplied as a solution (Myobloc): no reconstitution needed."""
        return bool(self.vial_volumes_ml)

    @property
    def family(self) -> str:
        """The product family (the generic name): Botox and Botox Cosmetic share one."""
        return self.generic

    def vial_status(self, vial_units: int) -> Status:
        """Status of a vial size; a size the product does not come in raises ``ValueError``."""
        for size, st in self.vial_unit_statuses:
            if size == vial_units:
                return st
        raise ValueError(f"{self.brand} does not come in a {vial_units} U vial")

    def vial_volume_ml(self, vial_units: int) -> Decimal | None:
        """Volume of solution in a ready-to-use vial (Myobloc); None for a powder."""
        for size, volume in self.vial_volumes_ml:
            if size == vial_units:
                return volume
        return None

    def allergen_status(self, allergen: str) -> Status | None:
        """Status of an allergen listed for this product, or None when it is not listed."""
        for name, st in self.allergen_statuses:
            if name == allergen:
                return st
        return None

    def shelf_life_for(self, vial_units: int) -> ShelfLife | None:
        """The shelf-life figure for a vial size, if the reference has one."""
        for row in self.shelf_life:
            if row.vial_units in (None, vial_units):
                return row
        return None


def _dec(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"reference/products.json: expected a number, got {value!r}")
    return Decimal(value)


def _opt_status(raw: Any) -> Status | None:
    return None if raw is None else _reference.status(str(raw))


def _build(row: Mapping[str, Any]) -> Product:
    pid = str(row["id"])
    vial_units = tuple(int(v) for v in row["vial_units"])
    statuses = row["vial_units_status"]
    vial_unit_statuses = tuple((v, _reference.status(statuses[str(v)])) for v in vial_units)
    storage_raw = row["storage_unopened"]
    allergens_raw = row["allergens"]
    allergens = frozenset(str(a["allergen"]) for a in allergens_raw)
    unknown = allergens - ALLERGENS
    if unknown:
        raise ValueError(f"reference/products.json: {pid} has unknown allergens {sorted(unknown)}")
    statement = row["non_interchangeable_label_statement"]
    after_dilution = row.get("use_within_hours_after_dilution")
    use_within = row.get("use_within_hours")
    return Product(
        id=pid,
        brand=str(row["brand"]),
        generic=str(row["generic"]),
        serotype=str(row["serotype"]),
        form=str(row["form"]),
        vial_units=vial_units,
        vial_unit_statuses=vial_unit_statuses,
        unit_system=str(row["unit_system"]),
        units_not_interchangeable=LabelStatement(
            value=bool(statement["value"]),
            status=_reference.status(statement["status"]),
            sources=tuple(statement["sources"]),
        ),
        diluent=str(row["diluent"]),
        diluent_status=_reference.status(row["diluent_status"]),
        storage=Storage(
            text=str(storage_raw["text"]), status=_reference.status(storage_raw["status"])
        ),
        shelf_life=tuple(
            ShelfLife(
                vial_units=None if s["vial_units"] is None else int(s["vial_units"]),
                months=int(s["months"]),
                status=_reference.status(s["status"]),
            )
            for s in row["shelf_life_months"]
        ),
        reconstitution=tuple(
            ReconstitutionRow(
                vial_units=int(r["vial_units"]),
                diluent_ml=_dec(r["diluent_ml"]),
                units_per_0_1ml=_dec(r["units_per_0_1ml"]),
                use_for=str(r["use_for"]),
                status=_reference.status(r["status"]),
                label_expression=r.get("label_expression"),
                note=str(r.get("note", "")),
            )
            for r in row["reconstitution"]
        ),
        use_within_hours=None if use_within is None else _dec(use_within),
        use_within_status=_opt_status(row.get("use_within_status")),
        reconstituted_storage=row.get("reconstituted_storage"),
        use_within_hours_after_dilution=(None if after_dilution is None else _dec(after_dilution)),
        use_within_after_dilution_status=_opt_status(row.get("use_within_after_dilution_status")),
        allergens=allergens,
        allergen_statuses=tuple(
            (str(a["allergen"]), _reference.status(a["status"])) for a in allergens_raw
        ),
        allergen_sources=tuple(
            (str(a["allergen"]), tuple(str(s) for s in a["sources"])) for a in allergens_raw
        ),
        vial_volumes_ml=tuple(
            (int(k), _dec(v)) for k, v in dict(row.get("vial_volumes_ml", {})).items()
        ),
        notes=tuple(str(n) for n in row["notes"]),
        sources=tuple(str(s) for s in row["sources"]),
    )


@cache
def _catalogue() -> dict[str, Product]:
    data = _reference.load("products")
    result: dict[str, Product] = {}
    for row in data["products"]:
        item = _build(row)
        if item.id in result:
            raise ValueError(f"reference/products.json: duplicate product id {item.id}")
        result[item.id] = item
    if tuple(result) != PRODUCT_IDS:
        raise ValueError(
            f"reference/products.json: product ids {tuple(result)} differ from {PRODUCT_IDS}"
        )
    return result


def products() -> list[Product]:
    """Every product in the catalogue, in a stable order (see :data:`PRODUCT_IDS`)."""
    return list(_catalogue().values())


def product(product_id: str) -> Product:
    """The product with this id; an unknown id raises :class:`UnknownProduct`."""
    try:
        return _catalogue()[product_id]
    except (KeyError, TypeError):
        raise UnknownProduct(
            f"Unknown product {product_id!r}: valid product ids are {', '.join(PRODUCT_IDS)}"
        ) from None


def brand_name(product_id: str) -> str:
    """The brand a person reads for PRODUCT_ID; an id not in the catalogue (an off-label or
    withdrawn product recorded earlier) is shown as it was recorded."""
    try:
        return product(product_id).brand
    except UnknownProduct:
        return product_id
