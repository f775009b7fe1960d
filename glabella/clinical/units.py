"""Units of botulinum toxin: an amount that belongs to one product.

Every label says units of one botulinum toxin product cannot be compared to or converted into
units of another (clinical.md 1.2). So a :class:`Units` value carries its ``product_id``, and
adding, subtracting or comparing units of two different products raises :class:`UnitMismatch`.
Nothing here converts between products. :func:`literature_ratio` returns the ratios quoted in the
literature (clinical.md 1.3) as *information only*: they are on no label and are never applied.

Amounts are :class:`~decimal.Decimal` (an ``int`` is accepted and converted); floats are refused
with ``TypeError`` because binary floating point cannot hold 1.25 U or 0.1 mL exactly. Units are
never negative and never NaN or infinite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Literal

from glabella.clinical import _reference, catalogue
from glabella.clinical._reference import Status

__all__ = ["LiteratureRatio", "UnitMismatch", "Units", "literature_ratio", "total"]


class UnitMismatch(ValueError):
    """Units of two different products were combined; they are not interchangeable."""


def _brand(product_id: str) -> str:
    return catalogue.product(product_id).brand


def _check_number(value: object, what: str) -> Decimal:
    """Return ``value`` as a finite Decimal or raise (TypeError for float / non-numbers)."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a Decimal, not bool")
    if isinstance(value, float):
        raise TypeError(
            f"{what} must be a Decimal, not float ({value!r}): use Decimal('...') so that "
            "amounts like 1.25 U are exact"
        )
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class Units:
    """An amount of units of one product, e.g. ``Units(Decimal("20"), "botox_cosmetic")``.

    Supports ``+``, ``-``, ``<``, ``<=``, ``>``, ``>=`` with units of the *same* product,
    multiplication by a plain ``Decimal`` or ``int`` and :func:`total` (or ``sum()`` of a
    non-empty list). Mixing products raises :class:`UnitMismatch`. ``==`` between different
    products is simply False. The amount is never negative.
    """

    amount: Decimal
    product_id: str

    def __post_init__(self) -> None:
        amount = _check_number(self.amount, "Units amount")
        if amount < 0:
            raise ValueError(f"Units cannot be negative (got {amount} U)")
        if amount == 0:
            amount = Decimal(0)  # normalise -0
        object.__setattr__(self, "amount", amount)
        catalogue.product(self.product_id)  # unknown product -> UnknownProduct

    # -- helpers -------------------------------------------------------------------------------
    def _same_product(self, other: Units, verb: Literal["add", "subtract", "compare"]) -> None:
        if other.product_id == self.product_id:
            return
        mine, theirs = _brand(self.product_id), _brand(other.product_id)
        if verb == "add":
            head = f"Cannot add {mine} units to {theirs} units"
        elif verb == "subtract":
            head = f"Cannot subtract {theirs} units from {mine} units"
        else:
            head = f"Cannot compare {mine} units with {theirs} units"
        raise UnitMismatch(
            f"{head}: units of different toxin products are not interchangeable "
            "(every label says so)"
        )

    # -- arithmetic ----------------------------------------------------------------------------
    def __add__(self, other: object) -> Units:
        if not isinstance(other, Units):
            return NotImplemented
        self._same_product(other, "add")
        return Units(self.amount + other.amount, self.product_id)

    def __radd__(self, other: object) -> Units:
        # Lets the builtin sum() work on a non-empty list: sum() starts from the int 0.
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Units:
        if not isinstance(other, Units):
            return NotImplemented
        self._same_product(other, "subtract")
        if other.amount > self.amount:
            raise ValueError(
                f"Cannot subtract {other.amount} U from {self.amount} U of "
                f"{_brand(self.product_id)}: units cannot be negative"
            )
        return Units(self.amount - other.amount, self.product_id)

    def __mul__(self, factor: int | Decimal) -> Units:
        # Typed for int | Decimal; checked at run time too (a float raises TypeError).
        if not isinstance(factor, (int, Decimal, float)):
            return NotImplemented
        value = _check_number(factor, "Multiplier")
        if value < 0:
            raise ValueError(f"Cannot multiply units by a negative number ({value})")
        return Units(self.amount * value, self.product_id)

    def __rmul__(self, factor: int | Decimal) -> Units:
        return self.__mul__(factor)

    # -- ordering ------------------------------------------------------------------------------
    def _cmp_amount(self, other: object) -> Decimal | None:
        if not isinstance(other, Units):
            return None
        self._same_product(other, "compare")
        return other.amount

    def __lt__(self, other: object) -> bool:
        amount = self._cmp_amount(other)
        if amount is None:
            return NotImplemented
        return self.amount < amount

    def __le__(self, other: object) -> bool:
        amount = self._cmp_amount(other)
        if amount is None:
            return NotImplemented
        return self.amount <= amount

    def __gt__(self, other: object) -> bool:
        amount = self._cmp_amount(other)
        if amount is None:
            return NotImplemented
        return self.amount > amount

    def __ge__(self, other: object) -> bool:
        amount = self._cmp_amount(other)
        if amount is None:
            return NotImplemented
        return self.amount >= amount

    def __str__(self) -> str:
        return f"{self.amount} U {_brand(self.product_id)}"


def total(items: Iterable[Units], product_id: str | None = None) -> Units:
    """Sum units of one product. An empty list needs ``product_id`` (its total is 0 U of it).

    Mixing products raises :class:`UnitMismatch`; ``product_id``, when given, must match every
    item.
    """
    result: Units | None = None if product_id is None else Units(Decimal(0), product_id)
    for item in items:
        if not isinstance(item, Units):
            raise TypeError(f"total() takes Units, not {type(item).__name__}")
        result = item if result is None else result + item
    if result is None:
        raise ValueError("total() of an empty list needs a product_id")
    return result


# -- literature ratios (information only) --------------------------------------------------------

LITERATURE_WARNING = (
    "From the published literature, not from any label. Every label forbids comparing or "
    "converting units between botulinum toxin products: never apply this ratio to a dose."
)


@dataclass(frozen=True, slots=True)
class LiteratureRatio:
    """A commonly cited dose ratio between two products: information, never a conversion.

    ``numerator_product`` : ``denominator_product`` is ``ratio_low`` to ``ratio_high`` (equal
    when the literature gives one figure), in the orientation the literature states it
    (e.g. Dysport : Botox 2.5-3 : 1), whichever order the products were asked in.
    ``origin`` is always ``"literature"`` and ``on_label`` always False.
    """

    numerator_product: str
    denominator_product: str
    ratio_low: Decimal
    ratio_high: Decimal
    often_quoted_range: tuple[Decimal, Decimal] | None
    status: Status
    status_note: str
    note: str
    sources: tuple[str, ...]
    origin: Literal["literature"] = "literature"
    on_label: Literal[False] = False
    apply: Literal[False] = False
    warning: str = LITERATURE_WARNING

    @property
    def label(self) -> str:
        """Human text, e.g. ``"Dysport : Botox 2.5-3.0 : 1 (literature, not on any label ...)"``."""
        num = _brand(self.numerator_product)
        den = _brand(self.denominator_product)
        if self.ratio_low == self.ratio_high:
            ratio = f"{self.ratio_low}"
        else:
            ratio = f"{self.ratio_low}-{self.ratio_high}"
        return (
            f"{num} : {den} {ratio} : 1 (literature, not on any label; "
            "for information only, never applied)"
        )


@cache
def _ratios() -> tuple[LiteratureRatio, ...]:
    result: list[LiteratureRatio] = []
    for row in _reference.load("conversion_ratios")["conversion_ratios_non_label"]:
        if row["label"] is not False:
            raise ValueError("conversion ratio marked as on-label: refusing to load it")
        num, den = str(row["pair"]).split(":")
        if "ratio_range" in row:
            low, high = (Decimal(v) for v in row["ratio_range"])
        else:
            low = high = Decimal(row["ratio"])
        often = row.get("ratio_often_quoted_range")
        result.append(
            LiteratureRatio(
                numerator_product=num,
                denominator_product=den,
                ratio_low=low,
                ratio_high=high,
                often_quoted_range=(
                    None if often is None else (Decimal(often[0]), Decimal(often[1]))
                ),
                status=_reference.status(row["status"]),
                status_note=str(row.get("status_note", "")),
                note=str(row.get("note", "")),
                sources=tuple(str(s) for s in row["sources"]),
            )
        )
    return tuple(result)


def literature_ratio(product_a: str, product_b: str) -> LiteratureRatio | None:
    """The literature's dose ratio between two products, or None when the reference has none.

    Information only: the result is never to be applied to a dose (see
    :data:`LITERATURE_WARNING`). Products are matched by family, so Botox Cosmetic matches the
    literature's "Botox" (both onabotulinumtoxinA). The ratio keeps the literature's
    orientation regardless of argument order. Unknown product ids raise ``UnknownProduct``.
    """
    fam_a = catalogue.product(product_a).generic
    fam_b = catalogue.product(product_b).generic
    if fam_a == fam_b:
        return None
    for ratio in _ratios():
        num = catalogue.product(ratio.numerator_product).generic
        den = catalogue.product(ratio.denominator_product).generic
        if {num, den} == {fam_a, fam_b}:
            return ratio
    return None
