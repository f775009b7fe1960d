"""Clinic settings for the clinical rules: limits a clinic may tighten, never loosen.

A label limit is the loosest a clinic can go. A setting may make the engine stricter (a shorter
"3 months", a lower per-session cap) but constructing one that would loosen a label limit raises
``ValueError`` with a message saying which limit and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from glabella.clinical import _reference, catalogue, indications

__all__ = [
    "COSMETIC_RECALL_MAX_DAYS",
    "WINDOW_DAYS_CHOICES",
    "ClinicalSettings",
    "cosmetic_min_interval_days",
]


def _window_choices() -> tuple[int, int]:
    """(payer, label) days for "3 months", from the reference (84 and 90)."""
    data = _reference.load("limits")
    first = data["cumulative"][0]
    return int(first["window_days_payer"]), int(first["window_days_label"])


WINDOW_DAYS_CHOICES: tuple[int, int] = _window_choices()
"""The two readings of the label's "3 months": 84 days (payers) and 90 days (label)."""

COSMETIC_RECALL_MAX_DAYS = 123
"""Four months at most: the longest four consecutive calendar months have 123 days (derived).

The reference says cosmetic effect is maintained through about day 120 ("3-4 months") [S53, S54].
"""


def cosmetic_min_interval_days() -> int:
    """The longest labelled minimum interval of any cosmetic indication (90 days, 3 months)."""
    cosmetic = {i.id for i in indications.indications() if i.cosmetic}
    days = [
        row.days
        for row in indications.limits().min_interval
        if any(ident in cosmetic for ident in row.indications)
    ]
    return max(days)


def _as_positive_decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a number of units")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, (int, str)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{what}: {value!r} is not a number of units") from None
    else:
        raise ValueError(f"{what}: {value!r} is not a number of units (use Decimal)")
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{what}: {value!r} must be a positive number of units")
    return number


@dataclass(frozen=True)
class ClinicalSettings:
    """The clinic's choices within the labels.

    - ``cumulative_window_days``: how "3 months" is counted for cumulative limits: 90 (label,
      the default) or 84 (payers). Nothing else is accepted.
    - ``cosmetic_recall_days``: when a cosmetic patient is due again (3-4 months): at least the
      cosmetic minimum interval (90 days), at most :data:`COSMETIC_RECALL_MAX_DAYS`; default 120.
    - ``session_caps``: optional per-product caps on one session's units (product id -> units),
      tighter than the label. A cap above the label's per-session ceiling for that product raises.
    """

    cumulative_window_days: int = 90
    cosmetic_recall_days: int = 120
    session_caps: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        window = self.cumulative_window_days
        if isinstance(window, bool) or not isinstance(window, int):
            raise ValueError(
                f"cumulative_window_days must be a whole number of days, got {window!r}"
            )
        if window not in WINDOW_DAYS_CHOICES:
            payer, label = WINDOW_DAYS_CHOICES
            raise ValueError(
                f"cumulative_window_days must be {payer} or {label} (the label's '3 months' "
                f"counted as {payer} or {label} days), got {window}"
            )

        recall = self.cosmetic_recall_days
        if isinstance(recall, bool) or not isinstance(recall, int):
            raise ValueError(f"cosmetic_recall_days must be a whole number of days, got {recall!r}")
        minimum = cosmetic_min_interval_days()
        if recall < minimum:
            raise ValueError(
                f"cosmetic_recall_days {recall} is shorter than the labelled minimum interval of "
                f"{minimum} days between cosmetic treatments: a clinic may not loosen it"
            )
        if recall > COSMETIC_RECALL_MAX_DAYS:
            raise ValueError(
                f"cosmetic_recall_days {recall} is longer than 4 months "
                f"({COSMETIC_RECALL_MAX_DAYS} days); cosmetic recalls are 3-4 months"
            )

        if not isinstance(self.session_caps, Mapping):
            raise ValueError("session_caps must map product ids to units")
        caps: dict[str, Decimal] = {}
        for product_id, raw in self.session_caps.items():
            try:
                product = catalogue.product(product_id)
            except catalogue.UnknownProduct as exc:
                raise ValueError(f"session_caps: {exc}") from None
            cap = _as_positive_decimal(raw, f"session_caps[{product_id!r}]")
            ceiling = indications.limits().label_ceiling(product.generic)
            if ceiling is not None and cap > ceiling:
                raise ValueError(
                    f"session_caps[{product_id!r}]: {cap} U would loosen the label's {ceiling} U "
                    f"ceiling for {product.brand} ({product.generic}); a clinic may only set a "
                    "tighter cap"
                )
            caps[product_id] = cap
        object.__setattr__(self, "session_caps", MappingProxyType(caps))

    def __hash__(self) -> int:
        return hash(
            (
                self.cumulative_window_days,
                self.cosmetic_recall_days,
                tuple(sorted(self.session_caps.items())),
            )
        )

    def session_cap(self, product_id: str) -> Decimal | None:
        """The clinic's cap for one session of this product, if it set one."""
        return self.session_caps.get(product_id)
