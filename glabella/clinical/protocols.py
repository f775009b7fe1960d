"""Treatment protocols: injection-site templates with units, sources and statuses.

Data: ``reference/protocols.json``. Units, site counts, totals, sources and statuses come from the
clinical reference; when the data is loaded the sum of the sites is checked against the
reference total (``reference_total_units``) and a mismatch refuses to load.

Coordinate convention (the charting SVGs are drawn to match)
------------------------------------------------------------
Every :class:`Site` names a ``diagram`` and has ``x`` and ``y`` as Decimal percentages (0-100) of
that diagram's width and height, with (0, 0) the top-left corner, drawn **as seen by the injector
facing the patient**:

- ``face-front``: head and neck from the front. The patient's RIGHT is on the viewer's LEFT
  (x < 50). Top of the head y=0, brows about y=33, eyes about y=38, chin about y=70, neck below.
- ``axillae``: both axillae, arms raised, from the front; the patient's right axilla is in the
  left half (x < 50), the left axilla in the right half.
- ``neck-shoulders``: neck and shoulders from the front (patient's right on the viewer's left).
- ``head-back``: head, neck and shoulders from behind. The patient's LEFT is on the viewer's
  LEFT (x < 50).
- ``head-left``: the patient's left profile, face toward the viewer's left (ear about x=60).
  ``head-right``: the right profile, the mirror image of ``head-left``.

Paired left/right sites are mirror images: x <-> 100 - x, same y (for the profiles, the left
point on ``head-left`` mirrors the right point on ``head-right``). Midline sites (``side="mid"``)
sit at x = 50 on the front and back views.

The coordinates are a layout choice for drawing, not a dose and not a label figure: the injector
places each point on the patient.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Literal, cast

from glabella.clinical import _reference, catalogue, indications, sources
from glabella.clinical._reference import Status

__all__ = [
    "DIAGRAMS",
    "INDICATIONS",
    "Depth",
    "Protocol",
    "Side",
    "Site",
    "UnknownProtocol",
    "all",
    "get",
    "ids",
]

Side = Literal["L", "R", "mid"]
Depth = Literal["IM", "ID", "SC"]

DIAGRAMS: tuple[str, ...] = (
    "face-front",
    "head-back",
    "head-left",
    "head-right",
    "axillae",
    "neck-shoulders",
)

INDICATIONS: tuple[str, ...] = indications.INDICATION_IDS

_SIDES: frozenset[str] = frozenset({"L", "R", "mid"})
_DEPTHS: frozenset[str] = frozenset({"IM", "ID", "SC"})


class UnknownProtocol(KeyError):
    """A protocol id that is not in the reference."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Unknown protocol"


@dataclass(frozen=True, slots=True)
class Site:
    """One injection point of a protocol.

    ``units`` is per injection; ``count`` is how many injections the point stands for (1 for
    nearly every site). ``units_range`` is the labeled per-site range where the label gives one
    (blepharospasm 1.25-2.5 U; cervical dystonia up to 50 U per site), in which case ``units`` is
    the pre-filled value. ``x``/``y``: see the module docstring (a layout choice, not a dose).
    """

    area: str
    muscle: str
    side: Side
    units: Decimal
    count: int
    depth: Depth
    x: Decimal
    y: Decimal
    diagram: str
    units_range: tuple[Decimal, Decimal] | None = None
    note: str = ""

    @property
    def total_units(self) -> Decimal:
        """Units for this point: ``units * count``."""
        return self.units * self.count


@dataclass(frozen=True, slots=True)
class Protocol:
    """A treatment template: its sites, their total and where every figure comes from.

    ``total_units`` is the sum of the sites (checked at load against the reference total when the
    reference gives one; ``total_status`` is that total's status, None when the reference gives
    no fixed total). ``max_total_units`` is a ceiling the protocol allows beyond its sites (PREEMPT
    follow-the-pain: 195 U), with its own status and sources. ``status`` is the status of the
    protocol's site map; ``indications`` lists every indication its areas cover (``indication``
    is the main one).
    """

    id: str
    name: str
    indication: str
    product_ids: tuple[str, ...]
    sites: tuple[Site, ...]
    total_units: Decimal
    max_total_units: Decimal | None
    sources: tuple[str, ...]
    status: Status
    notes: tuple[str, ...]
    indications: tuple[str, ...]
    total_status: Status | None
    max_total_status: Status | None = None
    max_total_sources: tuple[str, ...] = ()

    @property
    def site_count(self) -> int:
        """Number of injections (sum of ``count``)."""
        return sum(s.count for s in self.sites)

    def units_by_area(self) -> dict[str, Decimal]:
        """Total units per area, in first-seen order."""
        result: dict[str, Decimal] = {}
        for s in self.sites:
            result[s.area] = result.get(s.area, Decimal(0)) + s.total_units
        return result

    def units_by_side(self) -> dict[str, Decimal]:
        """Total units per side (``R``, ``L``, ``mid``), in first-seen order."""
        result: dict[str, Decimal] = {}
        for s in self.sites:
            result[s.side] = result.get(s.side, Decimal(0)) + s.total_units
        return result

    def units_by_muscle(self) -> dict[str, Decimal]:
        """Total units per muscle, in first-seen order."""
        result: dict[str, Decimal] = {}
        for s in self.sites:
            result[s.muscle] = result.get(s.muscle, Decimal(0)) + s.total_units
        return result


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"reference/protocols.json {where}: expected a number, got {value!r}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"reference/protocols.json {where}: {value!r} is not finite")
    return result


def _plain(value: Decimal) -> Decimal:
    """The same number written plainly (7.5 rather than 7.50, 40 rather than 4E+1)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _site(raw: Mapping[str, Any], where: str) -> Site:
    side = str(raw["side"])
    depth = str(raw["depth"])
    diagram = str(raw["diagram"])
    if side not in _SIDES:
        raise ValueError(f"{where}: side {side!r} is not one of L, R, mid")
    if depth not in _DEPTHS:
        raise ValueError(f"{where}: depth {depth!r} is not one of IM, ID, SC")
    if diagram not in DIAGRAMS:
        raise ValueError(f"{where}: unknown diagram {diagram!r}")
    units = _dec(raw["units"], where)
    count = raw["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{where}: count must be a whole number of at least 1")
    x, y = _dec(raw["x"], where), _dec(raw["y"], where)
    if not (0 <= x <= 100 and 0 <= y <= 100):
        raise ValueError(f"{where}: coordinates ({x}, {y}) outside 0-100")
    if units < 0:
        raise ValueError(f"{where}: negative units")
    units_range: tuple[Decimal, Decimal] | None = None
    if raw.get("units_range") is not None:
        low, high = (_dec(v, where) for v in raw["units_range"])
        if not low <= units <= high:
            raise ValueError(f"{where}: units {units} outside units_range {low}-{high}")
        units_range = (low, high)
    return Site(
        area=str(raw["area"]),
        muscle=str(raw["muscle"]),
        side=cast(Side, side),
        units=units,
        count=count,
        depth=cast(Depth, depth),
        x=x,
        y=y,
        diagram=diagram,
        units_range=units_range,
        note=str(raw.get("note", "")),
    )


def _check_sources(ids_: tuple[str, ...], where: str) -> None:
    for sid in ids_:
        if not sources.exists(sid):
            raise ValueError(f"{where}: unknown source {sid}")


def _opt_status(raw: Any) -> Status | None:
    return None if raw is None else _reference.status(str(raw))


def _protocol(raw: Mapping[str, Any]) -> Protocol:
    pid = str(raw["id"])
    where = f"reference/protocols.json protocol {pid}"
    sites = tuple(_site(s, f"{where} site {i + 1}") for i, s in enumerate(raw["sites"]))
    total = _plain(sum((s.total_units for s in sites), Decimal(0)))
    reference_total = raw.get("reference_total_units")
    if reference_total is not None and total != _dec(reference_total, where):
        raise ValueError(
            f"{where}: sites add up to {total} U but the reference total is {reference_total} U"
        )
    indication = str(raw["indication"])
    indications = tuple(str(i) for i in raw["indications"])
    for ind in (indication, *indications):
        if ind not in INDICATIONS:
            raise ValueError(f"{where}: unknown indication {ind!r}")
    if indication not in indications:
        raise ValueError(f"{where}: indication {indication!r} missing from indications")
    product_ids = tuple(str(p) for p in raw["product_ids"])
    for p in product_ids:
        catalogue.product(p)
    src = tuple(str(s) for s in raw["sources"])
    max_src = tuple(str(s) for s in raw.get("max_total_sources", ()))
    _check_sources(src + max_src, where)
    max_total = raw.get("max_total_units")
    max_total_units = None if max_total is None else _dec(max_total, where)
    if max_total_units is not None and max_total_units < total:
        raise ValueError(f"{where}: max_total_units below the protocol's own total")
    return Protocol(
        id=pid,
        name=str(raw["name"]),
        indication=indication,
        product_ids=product_ids,
        sites=sites,
        total_units=total,
        max_total_units=max_total_units,
        sources=src,
        status=_reference.status(str(raw["status"])),
        notes=tuple(str(n) for n in raw["notes"]),
        indications=indications,
        total_status=_opt_status(raw.get("total_status")),
        max_total_status=_opt_status(raw.get("max_total_status")),
        max_total_sources=max_src,
    )


@cache
def _protocols() -> dict[str, Protocol]:
    data = _reference.load("protocols")
    result: dict[str, Protocol] = {}
    for raw in data["protocols"]:
        item = _protocol(raw)
        if item.id in result:
            raise ValueError(f"reference/protocols.json: duplicate protocol id {item.id}")
        result[item.id] = item
    return result


def all() -> builtins.list[Protocol]:
    """Every protocol, in reference order."""
    return builtins.list(_protocols().values())


def ids() -> builtins.list[str]:
    """Every protocol id, in reference order."""
    return builtins.list(_protocols())


def get(protocol_id: str) -> Protocol:
    """The protocol with this id; an unknown id raises :class:`UnknownProtocol`."""
    try:
        return _protocols()[protocol_id]
    except (KeyError, TypeError):
        raise UnknownProtocol(
            f"Unknown protocol {protocol_id!r}: valid protocol ids are {', '.join(_protocols())}"
        ) from None
