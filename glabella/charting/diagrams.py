"""Charting diagrams: the face and body drawings, their muscle regions, and their inline SVG.

Pure Python (no Django), fully typed. The charting page draws :func:`svg`; a tap on the drawing is
turned into percentages and :func:`region_at` names the area, muscle and side it landed on, so the
injector never types them.

Coordinates
-----------
Everything in this module - region polygons, the decorative ``outline`` and ``landmarks`` path
data, point positions - is in **diagram percentages**: ``x`` and ``y`` run from 0 to 100 across
the width and down the height of the drawing, (0, 0) top-left, exactly as
:mod:`glabella.clinical.protocols` places protocol sites (read its docstring for the orientation
of each view: on the front views the patient's right is on the viewer's left; on ``head-back``
the patient's left is on the viewer's left; ``head-right`` is the mirror image of ``head-left``).

:func:`svg` draws in a viewBox of ``0 0 100 H`` with ``H = 100 * aspect`` (``aspect`` is the
drawing's height/width ratio). A diagram point ``(x, y)`` is drawn at viewBox ``(x, y * aspect)``,
so circles stay round and text is not stretched. To turn a tap back into percentages, map the
event into viewBox units (``getScreenCTM().inverse()``) and divide ``y`` by ``aspect``: the root
``<svg>`` carries ``data-aspect`` for that.

Regions
-------
A :class:`Region` is a simplified surface projection of one muscle (or, for the axillae, the
hair-bearing skin), not a dissection. Where two regions overlap, the smaller wins, both in
:func:`region_at` and in the drawing (smaller regions are drawn on top, so the browser's own hit
testing agrees). Paired regions are exact mirror images (``x -> 100 - x``), so "mirror to the other
side" (:func:`mirror`) always lands on the same muscle of the other side.

The SVG
-------
Self-contained and CSP-safe: no scripts, no event handlers, no ``<style>`` element, no external
references or fonts; styling is by presentation attributes, which a stylesheet may override
through the classes (``region``, ``point``, ``point-ok``/``point-warn``/``point-block``,
``is-selected``, ``compare-point``, ``outline``, ``landmarks``, ``region-labels``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal, TypeAlias
from xml.sax.saxutils import escape

__all__ = [
    "DIAGRAMS",
    "Diagram",
    "PointState",
    "Region",
    "Side",
    "SvgPoint",
    "get",
    "ids",
    "mirror",
    "region_at",
    "svg",
]

Side = Literal["L", "R", "mid"]
PointState = Literal["ok", "warn", "block"]
Coord: TypeAlias = tuple[Decimal, Decimal]
Polygon: TypeAlias = tuple[Coord, ...]
Number: TypeAlias = Decimal | int | float | str

_SIDES: frozenset[str] = frozenset({"L", "R", "mid"})
_STATES: frozenset[str] = frozenset({"ok", "warn", "block"})
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_STEP = Decimal("0.1")
_SIDE_WORD: dict[str, str] = {"L": "Left", "R": "Right"}


def _dec(value: Number, name: str = "value") -> Decimal:
    """A finite Decimal from a Decimal, int, float or numeric string (floats via their repr)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not a bool")
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{name} {value!r} is not finite")
    return result


# --- the data types ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Region:
    """A muscle region a tap can land in.

    ``polygon`` is in diagram percentages. ``short`` is the abbreviation drawn on the diagram;
    ``anchor`` is where that label goes and where a keyboard user's point is placed (inside the
    polygon; the vertex centroid when not given).
    """

    id: str
    area: str
    muscle: str
    side: Side
    label: str
    polygon: Polygon
    short: str = ""
    anchor: Coord | None = None

    def __post_init__(self) -> None:
        if self.side not in _SIDES:
            raise ValueError(f"region {self.id}: side {self.side!r} is not one of L, R, mid")
        if len(self.polygon) < 3:
            raise ValueError(f"region {self.id}: a polygon needs at least 3 vertices")
        for x, y in self.polygon:
            if not (_ZERO <= x <= _HUNDRED and _ZERO <= y <= _HUNDRED):
                raise ValueError(f"region {self.id}: vertex ({x}, {y}) outside 0-100")
        if self.anchor is not None and not self.contains(*self.anchor):
            raise ValueError(f"region {self.id}: anchor {self.anchor} is not inside the polygon")

    def contains(self, x: Number, y: Number) -> bool:
        """Whether (x, y) is inside the polygon (even-odd rule)."""
        return _inside(self.polygon, _dec(x, "x"), _dec(y, "y"))

    @property
    def size(self) -> Decimal:
        """The polygon's area in square percentage units (shoelace formula)."""
        pts = self.polygon
        twice = sum(
            (pts[i - 1][0] * pts[i][1] - pts[i][0] * pts[i - 1][1] for i in range(len(pts))),
            _ZERO,
        )
        return abs(twice) / 2

    @property
    def center(self) -> Coord:
        """``anchor`` if given, else the average of the vertices."""
        if self.anchor is not None:
            return self.anchor
        n = Decimal(len(self.polygon))
        cx = sum((p[0] for p in self.polygon), _ZERO) / n
        cy = sum((p[1] for p in self.polygon), _ZERO) / n
        return (cx.quantize(_STEP), cy.quantize(_STEP))


@dataclass(frozen=True, slots=True)
class Diagram:
    """One drawing: its regions, its decorative line work and its proportions.

    ``outline`` is SVG path data in diagram percentages (converted by :func:`svg`); its first
    path is the body silhouette (drawn with a light fill), the rest are the features (eyes, brows,
    nose, lips, ears...). ``landmarks`` are fainter guide lines (hairline, bony ridges, spine).
    ``aspect`` is the drawing's height / width. ``muscles_note`` says what the regions are and
    are not; ``orientation`` says which side is which.
    """

    id: str
    title: str
    regions: tuple[Region, ...]
    outline: tuple[str, ...]
    aspect: Decimal
    muscles_note: str
    orientation: str = ""
    landmarks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for region in self.regions:
            if region.id in seen:
                raise ValueError(f"diagram {self.id}: duplicate region id {region.id}")
            seen.add(region.id)
        if self.aspect <= 0:
            raise ValueError(f"diagram {self.id}: aspect must be positive")

    def region(self, region_id: str) -> Region:
        """The region with this id; an unknown id raises KeyError."""
        for region in self.regions:
            if region.id == region_id:
                return region
        raise KeyError(
            f"Unknown region {region_id!r} on diagram {self.id!r}: valid region ids are "
            + ", ".join(r.id for r in self.regions)
        )

    @property
    def height(self) -> Decimal:
        """The viewBox height (the width is 100)."""
        return _HUNDRED * self.aspect


@dataclass(frozen=True, slots=True)
class SvgPoint:
    """An injection point to draw: its number, position (diagram percentages), label and state."""

    number: int
    x: Decimal
    y: Decimal
    units_label: str = ""
    state: PointState = "ok"
    selected: bool = False

    def __post_init__(self) -> None:
        if self.state not in _STATES:
            raise ValueError(f"point state {self.state!r} is not one of ok, warn, block")


# --- geometry ------------------------------------------------------------------------------------


def _inside(polygon: Polygon, x: Decimal, y: Decimal) -> bool:
    inside = False
    xj, yj = polygon[-1]
    for xi, yi in polygon:
        if (yi > y) != (yj > y):
            cross = xi + (y - yi) * (xj - xi) / (yj - yi)
            if x < cross:
                inside = not inside
        xj, yj = xi, yi
    return inside


_P: TypeAlias = tuple[float, float]
_V: TypeAlias = tuple[float, ...]  # (x, y) or (x, y, corner radius)


def _mx(p: _P) -> _P:
    return (100.0 - p[0], p[1])


def _catmull_rom(p0: _P, p1: _P, p2: _P, p3: _P, t: float) -> _P:
    t2, t3 = t * t, t * t * t

    def axis(a: float, b: float, c: float, d: float) -> float:
        return 0.5 * (
            2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t2 + (-a + 3 * b - 3 * c + d) * t3
        )

    return (axis(p0[0], p1[0], p2[0], p3[0]), axis(p0[1], p1[1], p2[1], p3[1]))


def _spline_groups(vs: Sequence[_V], samples: int = 5) -> list[list[_P]]:
    """A closed Catmull-Rom curve through the vertices; group i samples the span from vertex i."""
    pts = [(v[0], v[1]) for v in vs]
    n = len(pts)
    groups: list[list[_P]] = []
    for i in range(n):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[(i + 1) % n], pts[(i + 2) % n]
        groups.append([_catmull_rom(p0, p1, p2, p3, k / samples) for k in range(samples)])
    return groups


def _rounded_groups(vs: Sequence[_V], radius: float, sharp: frozenset[int]) -> list[list[_P]]:
    """A closed polygon with rounded corners; group i replaces vertex i."""
    n = len(vs)
    groups: list[list[_P]] = []
    for i, v in enumerate(vs):
        x, y = v[0], v[1]
        r = v[2] if len(v) > 2 else radius
        if i in sharp or r <= 0:
            groups.append([(x, y)])
            continue
        ax, ay = vs[i - 1][0], vs[i - 1][1]
        bx, by = vs[(i + 1) % n][0], vs[(i + 1) % n][1]
        da, db = math.hypot(ax - x, ay - y), math.hypot(bx - x, by - y)
        rr = min(r, 0.45 * da, 0.45 * db)
        p1 = (x + (ax - x) * rr / da, y + (ay - y) * rr / da)
        p2 = (x + (bx - x) * rr / db, y + (by - y) * rr / db)
        group = []
        for k in range(5):
            t = k / 4
            u = 1 - t
            group.append(
                (
                    u * u * p1[0] + 2 * u * t * x + t * t * p2[0],
                    u * u * p1[1] + 2 * u * t * y + t * t * p2[1],
                )
            )
        groups.append(group)
    return groups


def _q(v: float) -> Decimal:
    return Decimal(f"{min(max(v, 0.0), 100.0):.1f}").quantize(_STEP, rounding=ROUND_HALF_EVEN)


def _quantize(pts: Iterable[_P]) -> list[Coord]:
    out: list[Coord] = []
    for x, y in pts:
        c = (_q(x), _q(y))
        if not out or out[-1] != c:
            out.append(c)
    while len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def _shape(vs: Sequence[_V], r: float | None = None) -> Polygon:
    """A region polygon through/around the vertices: smooth (r None) or rounded corners."""
    groups = _spline_groups(vs) if r is None else _rounded_groups(vs, r, frozenset())
    return tuple(_quantize(p for g in groups for p in g))


def _mid_shape(chain: Sequence[_V], r: float | None = None) -> Polygon:
    """A shape symmetric about x = 50 from its left half.

    ``chain`` runs from a point on the midline (x = 50) through the left half (x < 50) to another
    midline point; the right half is its exact mirror image.
    """
    if chain[0][0] != 50 or chain[-1][0] != 50:
        raise ValueError("a midline chain starts and ends at x = 50")
    full = list(chain) + [(100 - v[0], *v[1:]) for v in reversed(chain[1:-1])]
    k = len(chain) - 1
    if r is None:
        groups = _spline_groups(full)
        left = [p for g in groups[:k] for p in g] + [(chain[-1][0], chain[-1][1])]
    else:
        groups = _rounded_groups(full, r, frozenset({0, k}))
        left = [p for g in groups[: k + 1] for p in g]
    half = [(min(x, 50.0), y) for x, y in left]
    q = _quantize(half)
    right = [(_HUNDRED - x, y) for x, y in reversed(q[1:-1]) if x != 50]
    return tuple(q + right)


def _mirror_polygon(polygon: Polygon) -> Polygon:
    return tuple((_HUNDRED - x, y) for x, y in reversed(polygon))


def _c(x: float, y: float) -> Coord:
    return (Decimal(repr(x)).quantize(_STEP), Decimal(repr(y)).quantize(_STEP))


# --- path data (decorative) ----------------------------------------------------------------------


def _fmt(v: float) -> str:
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _xy(p: _P) -> str:
    return f"{_fmt(p[0])} {_fmt(p[1])}"


_Seg: TypeAlias = tuple[str, Sequence[_P]]  # ("s", smooth through points) or ("l", straight)


def _segment_commands(kind: str, pts: Sequence[_P]) -> list[str]:
    if kind == "l" or len(pts) == 2:
        return [f"L{_xy(p)}" for p in pts[1:]]
    out = []
    n = len(pts)
    for i in range(n - 1):
        p0 = pts[i - 1] if i > 0 else pts[i]
        p1, p2 = pts[i], pts[i + 1]
        p3 = pts[i + 2] if i + 2 < n else pts[i + 1]
        c1 = (p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6)
        c2 = (p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6)
        out.append(f"C{_xy(c1)} {_xy(c2)} {_xy(p2)}")
    return out


def _path(*segments: _Seg, closed: bool = False) -> str:
    """Path data through consecutive segments (each starts where the previous one ended)."""
    parts = [f"M{_xy(segments[0][1][0])}"]
    for kind, pts in segments:
        parts.extend(_segment_commands(kind, pts))
    if closed:
        parts.append("Z")
    return "".join(parts)


def _smooth(*pts: _P) -> str:
    return _path(("s", pts))


def _sym_open(*half: _P) -> str:
    """A smooth open curve from the left half through the midline and its mirror image."""
    if half[-1][0] != 50:
        raise ValueError("a symmetric curve's half ends on the midline")
    return _smooth(*half, *[_mx(p) for p in reversed(half[:-1])])


def _sym_closed(*segments: _Seg) -> str:
    """A closed outline symmetric about x = 50: the left half from the top midline point down to
    the bottom midline point; corners where segments meet."""
    mirrored: list[_Seg] = [
        (kind, [_mx(p) for p in reversed(pts)]) for kind, pts in reversed(segments)
    ]
    return _path(*segments, *mirrored, closed=True)


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    k = 0.5523
    return (
        f"M{_xy((cx - rx, cy))}"
        f"C{_xy((cx - rx, cy - k * ry))} {_xy((cx - k * rx, cy - ry))} {_xy((cx, cy - ry))}"
        f"C{_xy((cx + k * rx, cy - ry))} {_xy((cx + rx, cy - k * ry))} {_xy((cx + rx, cy))}"
        f"C{_xy((cx + rx, cy + k * ry))} {_xy((cx + k * rx, cy + ry))} {_xy((cx, cy + ry))}"
        f"C{_xy((cx - k * rx, cy + ry))} {_xy((cx - rx, cy + k * ry))} {_xy((cx - rx, cy))}Z"
    )


def _both(d: str) -> tuple[str, str]:
    """A feature drawn on the left half and its mirror image."""
    return (d, _transform_path(d, sx=-1.0, tx=100.0, sy=1.0))


_PATH_TOKEN = re.compile(r"([MmLlHhVvCcSsQqTtZz])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_ARITY: dict[str, int] = {"M": 2, "L": 2, "T": 2, "C": 6, "S": 4, "Q": 4, "H": 1, "V": 1, "Z": 0}


def _transform_path(d: str, *, sx: float, tx: float = 0.0, sy: float, ty: float = 0.0) -> str:
    """Path data under x' = sx*x + tx, y' = sy*y + ty (relative commands: offsets scaled only).

    Supports M L H V C S Q T Z in both cases; elliptical arcs are refused.
    """
    out: list[str] = []
    command = ""
    numbers: list[float] = []

    def flush() -> None:
        if not command:
            if numbers:
                raise ValueError(f"path data {d!r} starts with a number")
            return
        upper = command.upper()
        arity = _ARITY[upper]
        relative = command.islower()
        if arity == 0:
            if numbers:
                raise ValueError(f"path data {d!r}: numbers after Z")
            out.append(command)
            return
        if not numbers or len(numbers) % arity:
            raise ValueError(f"path data {d!r}: wrong number of values for {command}")
        values: list[str] = []
        for i, v in enumerate(numbers):
            is_x = (upper != "V") and (upper == "H" or i % 2 == 0)
            scale, shift = (sx, tx) if is_x else (sy, ty)
            values.append(_fmt(v * scale if relative else v * scale + shift))
        out.append(command + " ".join(values))

    for match in _PATH_TOKEN.finditer(d):
        letter, number = match.groups()
        if letter:
            flush()
            command, numbers = letter, []
        else:
            numbers.append(float(number))
    flush()
    leftover = _PATH_TOKEN.sub("", d).replace(",", "").strip()
    if leftover:
        raise ValueError(f"path data {d!r} has unsupported content {leftover!r}")
    return "".join(out)


# --- building regions ----------------------------------------------------------------------------


def _pair(
    near: Side,
    base_id: str,
    area: str,
    muscle: str,
    name: str,
    polygon: Polygon,
    short: str = "",
    anchor: tuple[float, float] | None = None,
) -> tuple[Region, Region]:
    """A region drawn on the left half of the drawing (side ``near``) and its mirror image."""
    far: Side = "L" if near == "R" else "R"
    anc = None if anchor is None else _c(*anchor)
    return (
        Region(
            f"{base_id}-{near.lower()}", area, muscle, near, f"{_SIDE_WORD[near]} {name}",
            polygon, short, anc,
        ),
        Region(
            f"{base_id}-{far.lower()}", area, muscle, far, f"{_SIDE_WORD[far]} {name}",
            _mirror_polygon(polygon), short,
            None if anc is None else (_HUNDRED - anc[0], anc[1]),
        ),
    )  # fmt: skip


def _mid(
    base_id: str,
    area: str,
    muscle: str,
    label: str,
    polygon: Polygon,
    short: str = "",
    anchor: tuple[float, float] | None = None,
) -> Region:
    return Region(
        base_id, area, muscle, "mid", label, polygon, short, None if anchor is None else _c(*anchor)
    )


def _mirror_regions(regions: Iterable[Region]) -> tuple[Region, ...]:
    """The regions of a profile seen from the other side (for head-right from head-left)."""
    out = []
    for r in regions:
        side: Side = "R" if r.side == "L" else "L" if r.side == "R" else "mid"
        rid = re.sub(r"-(l|r)$", lambda m: "-r" if m.group(1) == "l" else "-l", r.id)
        label = r.label
        for a, b in (("Left ", "Right "), ("Right ", "Left ")):
            if r.label.startswith(a):
                label = b + r.label[len(a) :]
                break
        anchor = None if r.anchor is None else (_HUNDRED - r.anchor[0], r.anchor[1])
        out.append(
            Region(rid, r.area, r.muscle, side, label, _mirror_polygon(r.polygon), r.short, anchor)
        )
    return tuple(out)


# --- face, front view ----------------------------------------------------------------------------


def _face_front() -> Diagram:
    frontalis = _pair(
        "R", "frontalis", "forehead", "frontalis", "frontalis",
        _shape(
            [(45.6, 12.4), (45.6, 27.4), (42.0, 26.5), (38.0, 25.2), (34.0, 25.4), (29.5, 27.0),
             (24.5, 28.4), (20.8, 27.4), (20.7, 22.8), (23.8, 17.6), (29.8, 14.4), (37.5, 12.6)],
            r=1.6,
        ),
        "Fr", (31.0, 20.5),
    )  # fmt: skip
    frontalis_mid = _mid(
        "frontalis-mid", "forehead", "frontalis", "Frontalis (central)",
        _mid_shape([(50, 11.7), (46.3, 12.0), (46.3, 28.0), (50, 28.0)], r=1.0),
        "Fr", (50, 16.0),
    )  # fmt: skip
    corrugator = _pair(
        "R", "corrugator", "glabella", "corrugator", "corrugator",
        _shape(
            [(46.3, 34.0), (46.3, 30.2), (42.0, 28.2), (38.0, 26.2), (34.2, 25.9), (35.4, 28.5),
             (38.5, 30.6), (42.2, 32.6)],
            r=1.2,
        ),
        "Co", (40.5, 29.5),
    )  # fmt: skip
    procerus = _mid(
        "procerus", "glabella", "procerus", "Procerus",
        _mid_shape([(50, 28.8), (47.0, 28.9), (46.9, 35.0), (47.4, 40.5), (48.5, 43.0), (50, 43.2)],
                   r=1.2),
        "Pr", (50, 39.5),
    )  # fmt: skip
    temporalis = _pair(
        "R", "temporalis", "temple", "temporalis", "temporalis",
        _shape([(16.2, 20.6), (19.4, 23.4), (19.1, 28.8), (17.6, 31.4), (14.8, 33.2), (14.3, 26.8)],
               r=1.2),
        "Te",
    )  # fmt: skip
    oo_lateral = _pair(
        "R", "orbicularis-oculi-lateral", "lateral-canthus", "lateral orbicularis oculi",
        "lateral orbicularis oculi (crow's feet)",
        _shape(
            [(25.0, 30.4), (21.0, 31.0), (17.6, 34.6), (16.6, 38.4), (17.4, 42.6), (19.8, 45.6),
             (23.4, 46.4), (25.8, 44.6), (26.8, 41.4), (27.0, 38.2), (26.4, 34.8), (25.6, 32.0)],
        ),
        "OO", (21.0, 38.5),
    )  # fmt: skip
    upper_lid = _pair(
        "R", "orbicularis-oculi-upper-lid", "upper-eyelid", "pretarsal orbicularis oculi",
        "upper eyelid (pretarsal orbicularis oculi)",
        _shape(
            [(27.9, 38.3), (28.6, 35.6), (31.5, 33.9), (36.0, 33.6), (39.5, 33.9), (42.0, 35.4),
             (42.8, 38.6), (35.6, 38.3)],
            r=1.0,
        ),
        "", (35.5, 36.3),
    )  # fmt: skip
    lower_lid = _pair(
        "R", "orbicularis-oculi-lower-lid", "lower-eyelid", "pretarsal orbicularis oculi",
        "lower eyelid (pretarsal orbicularis oculi)",
        _shape(
            [(27.9, 38.5), (35.6, 38.6), (42.8, 38.9), (41.6, 41.0), (38.5, 42.6), (34.5, 43.1),
             (30.6, 42.8), (28.8, 41.2)],
            r=1.0,
        ),
        "", (35.5, 41.0),
    )  # fmt: skip
    nasalis = _pair(
        "R", "nasalis", "nose", "nasalis", "nasalis",
        _shape([(48.6, 44.2), (48.6, 49.6), (46.4, 50.4), (44.9, 48.8), (45.1, 45.4), (46.8, 44.0)],
               r=1.0),
        "Na",
    )  # fmt: skip
    llsan = _pair(
        "R", "levator-labii", "nose", "levator labii superioris alaeque nasi",
        "levator labii superioris alaeque nasi",
        _shape(
            [(42.8, 42.0), (44.4, 42.8), (44.2, 48.0), (43.2, 51.0), (42.6, 55.4), (40.6, 55.2),
             (41.0, 50.4), (41.8, 45.0)],
            r=0.9,
        ),
        "",
    )  # fmt: skip
    zygomaticus = _pair(
        "R", "zygomaticus", "cheek", "zygomaticus major", "zygomaticus major",
        _shape([(24.2, 47.6), (27.8, 46.6), (35.0, 51.0), (40.0, 55.6), (40.4, 57.6),
                (38.6, 58.0), (32.2, 54.6), (26.6, 51.0)], r=1.4),
        "Zy", (31.5, 51.8),
    )  # fmt: skip
    oris_upper = _mid(
        "orbicularis-oris-upper", "upper-lip", "orbicularis oris", "Orbicularis oris (upper lip)",
        _mid_shape([(50, 55.0), (47.0, 55.1), (43.8, 56.3), (41.4, 58.2), (45.0, 58.6), (50, 58.8)],
                   r=0.8),
        "", (50, 56.9),
    )  # fmt: skip
    oris_lower = _mid(
        "orbicularis-oris-lower", "lower-lip", "orbicularis oris", "Orbicularis oris (lower lip)",
        _mid_shape([(50, 59.0), (45.0, 58.8), (41.4, 58.6), (42.6, 60.6), (45.6, 62.1), (50, 62.5)],
                   r=0.8),
        "", (50, 60.8),
    )  # fmt: skip
    dao = _pair(
        "R", "depressor-anguli-oris", "mouth-corner", "depressor anguli oris",
        "depressor anguli oris",
        _shape([(41.0, 59.5), (42.7, 62.6), (42.7, 65.6), (39.6, 64.9), (36.6, 63.8), (38.6, 61.6)],
               r=1.0),
        "DAO", (40.6, 63.0),
    )  # fmt: skip
    mentalis = _mid(
        "mentalis", "chin", "mentalis", "Mentalis",
        _mid_shape([(50, 63.8), (47.0, 63.9), (44.4, 65.1), (44.2, 67.1), (45.8, 68.6),
                    (48.0, 69.1), (50, 69.2)], r=1.0),
        "Me", (50, 66.5),
    )  # fmt: skip
    masseter = _pair(
        "R", "masseter", "jaw", "masseter", "masseter",
        _shape([(15.4, 48.4), (23.6, 48.0), (27.4, 53.2), (28.2, 59.0), (24.0, 57.0), (20.4, 54.6),
                (17.2, 51.6)], r=1.4),
        "Ma", (22.5, 52.8),
    )  # fmt: skip
    platysma_jaw = _pair(
        "R", "platysma-jawline", "jawline", "platysma", "platysma (jawline)",
        _shape([(19.6, 55.4), (23.6, 58.0), (30.4, 61.3), (38.0, 65.0), (42.6, 66.8), (42.6, 71.1),
                (38.0, 69.9), (30.5, 66.4), (27.4, 65.2), (23.2, 61.0), (19.2, 57.8)], r=0.8),
        "", (31.0, 64.3),
    )  # fmt: skip
    platysma_neck = _pair(
        "R", "platysma-neck", "neck", "platysma", "platysma (neck)",
        _shape([(28.2, 67.4), (30.5, 67.1), (38.0, 70.6), (42.6, 71.8), (49.2, 71.8), (48.7, 80.0),
                (46.0, 97.6), (35.0, 97.6), (23.0, 96.0), (25.0, 92.4), (27.7, 87.0), (28.2, 78.0)],
               r=1.4),
        "Pl", (35.5, 80.0),
    )  # fmt: skip
    regions = (
        *frontalis, frontalis_mid, *temporalis, *corrugator, procerus, *oo_lateral, *upper_lid,
        *lower_lid, *nasalis, *llsan, *zygomaticus, oris_upper, oris_lower, *dao, mentalis,
        *masseter, *platysma_jaw, *platysma_neck,
    )  # fmt: skip

    silhouette = _sym_closed(
        ("s", [(50, 1.5), (38.0, 2.4), (27.5, 5.8), (20.0, 11.5), (15.6, 18.5), (13.6, 26.0),
               (13.1, 33.0), (13.4, 40.0), (14.2, 46.0), (15.6, 51.5), (18.5, 56.5), (23.0, 60.3),
               (27.3, 62.6)]),
        ("s", [(27.3, 62.6), (27.6, 70.0), (27.8, 80.0), (27.2, 87.5), (24.5, 91.5), (17.0, 94.5),
               (8.0, 96.8), (0, 98.2)]),
        ("l", [(0, 98.2), (0, 100), (50, 100)]),
    )  # fmt: skip
    features = [
        silhouette,
        _sym_open((27.3, 62.6), (30.0, 64.0), (38.0, 67.6), (44.0, 69.4), (50, 70.0)),  # jaw
        *_both(_smooth((13.3, 35.5), (10.8, 34.0), (8.9, 36.2), (8.5, 40.5), (9.2, 45.5),
                       (10.4, 49.5), (12.2, 52.3), (14.4, 52.0))),  # ear
        *_both(_smooth((11.3, 37.0), (10.6, 40.5), (11.1, 45.0), (12.5, 48.5))),
        *_both(_path(("s", [(45.8, 34.0), (45.6, 32.8), (41.0, 31.1), (35.0, 30.0), (29.5, 30.2),
                            (24.6, 31.8)]),
                     ("s", [(24.6, 31.8), (29.6, 31.4), (35.0, 31.4), (41.0, 32.5), (45.8, 34.0)]),
                     closed=True)),  # brow
        *_both(_path(("s", [(28.2, 38.2), (31.0, 36.9), (35.0, 36.5), (39.0, 37.0), (42.4, 38.9)]),
                     ("s", [(42.4, 38.9), (39.0, 39.9), (35.0, 40.3), (31.0, 39.9), (28.2, 38.2)]),
                     closed=True)),  # eye
        *_both(_ellipse(35.2, 38.4, 1.9, 1.35)),  # iris
        *_both(_smooth((29.3, 37.3), (32.0, 35.8), (35.5, 35.3), (39.0, 35.8), (41.4, 37.4))),
        *_both(_smooth((45.2, 50.2), (43.4, 51.3), (43.2, 52.9), (44.8, 53.9))),  # ala
        _sym_open((44.8, 53.9), (46.5, 54.4), (48.2, 54.0), (50, 54.3)),  # under the nose tip
        *_both(_smooth((45.9, 53.3), (47.0, 53.1), (48.0, 53.5))),  # nostril
        _sym_open((41.2, 58.4), (43.5, 57.4), (46.5, 56.6), (48.4, 56.5), (50, 57.1)),  # lip
        _sym_open((41.2, 58.4), (44.0, 58.7), (47.0, 58.9), (50, 58.8)),  # mouth
        _sym_open((41.2, 58.4), (43.5, 60.0), (47.0, 61.0), (50, 61.2)),  # lower lip
    ]  # fmt: skip
    landmarks = [
        _sym_open((15.3, 36.5), (15.9, 30.0), (17.8, 23.0), (22.5, 17.2), (30.0, 13.3),
                  (40.0, 11.6), (50, 11.2)),  # hairline
        *_both(_smooth((46.6, 41.0), (46.3, 46.0), (45.6, 49.8))),  # nose side
        *_both(_smooth((42.8, 51.6), (40.6, 54.6), (39.6, 58.5), (39.9, 60.5))),  # nasolabial
        *_both(_smooth((48.8, 54.8), (48.6, 56.5))),  # philtrum
        _sym_open((46.0, 63.4), (50, 63.8)),  # mentolabial sulcus
        *_both(_smooth((26.0, 67.0), (33.0, 80.0), (41.5, 91.5), (47.0, 96.8))),  # SCM
        *_both(_smooth((47.5, 97.2), (40.0, 96.4), (31.0, 96.8), (24.0, 97.7))),  # clavicle
    ]  # fmt: skip
    return Diagram(
        id="face-front",
        title="Face and neck, front view",
        regions=regions,
        outline=tuple(features),
        aspect=Decimal("1.5"),
        muscles_note=(
            "Simplified surface areas of the facial muscles, the platysma over the jawline and "
            "neck, and the eyelids (pretarsal orbicularis oculi). Glabella: corrugators and "
            "procerus; crow's feet: lateral orbicularis oculi."
        ),
        orientation="Drawn facing the patient: the patient's right is on the left of the drawing.",
        landmarks=tuple(landmarks),
    )


# --- head, back view -----------------------------------------------------------------------------


def _head_back() -> Diagram:
    occipitalis = _pair(
        "L", "occipitalis", "occiput", "occipitalis", "occipitalis",
        _shape([(48.3, 29.0), (48.3, 42.3), (41.0, 43.0), (32.0, 43.3), (28.2, 40.5), (28.2, 32.5),
                (31.0, 28.6), (38.0, 27.0), (44.0, 27.4)], r=2.0),
        "Occ", (39.0, 35.0),
    )  # fmt: skip
    splenius = _pair(
        "L", "splenius-capitis", "neck", "splenius capitis", "splenius capitis",
        _shape([(40.8, 47.2), (40.8, 58.0), (37.8, 60.0), (33.8, 57.0), (30.6, 50.4), (32.2, 47.2)],
               r=1.2),
        "Spl", (36.6, 52.5),
    )  # fmt: skip
    paraspinal = _pair(
        "L", "cervical-paraspinal", "neck", "cervical paraspinal group",
        "cervical paraspinal muscles",
        _shape([(48.6, 46.6), (48.6, 66.5), (42.0, 66.5), (41.8, 46.9)], r=1.5),
        "Para", (45.3, 50.5),
    )  # fmt: skip
    trapezius = _pair(
        "L", "trapezius", "shoulder", "trapezius", "trapezius",
        _shape([(30.5, 53.0), (33.0, 58.8), (37.5, 61.8), (40.9, 62.5), (40.9, 67.6), (48.6, 67.9),
                (48.6, 99.6), (14.0, 99.6), (0.4, 86.0), (0.4, 76.3), (5.5, 74.9), (14.2, 72.8),
                (23.0, 70.6), (27.9, 67.9), (29.6, 63.0), (29.8, 57.0)], r=1.2),
        "Trap", (26.0, 85.0),
    )  # fmt: skip
    regions = (*occipitalis, *splenius, *paraspinal, *trapezius)
    silhouette = _sym_closed(
        ("s", [(50, 1.8), (38.0, 2.6), (29.0, 6.3), (23.0, 12.5), (20.3, 20.0), (19.8, 28.0),
               (20.6, 36.0), (22.4, 42.5), (25.2, 47.5), (28.6, 51.5)]),
        ("s", [(28.6, 51.5), (29.3, 56.0), (29.3, 62.0), (27.8, 66.5), (23.0, 69.2), (14.0, 71.4),
               (5.0, 73.5), (0, 75.0)]),
        ("l", [(0, 75.0), (0, 100), (50, 100)]),
    )  # fmt: skip
    features = [
        silhouette,
        *_both(_smooth((20.4, 35.5), (17.4, 34.8), (16.0, 38.5), (16.3, 43.5), (17.6, 48.0),
                       (19.8, 50.8), (23.2, 48.6))),  # ear
        *_both(_smooth((18.6, 37.5), (17.8, 41.5), (18.6, 46.5))),
    ]  # fmt: skip
    landmarks = [
        _sym_open((28.8, 53.6), (34.0, 53.2), (40.0, 54.2), (45.0, 55.2), (50, 55.5)),  # nape
        _sym_open((26.8, 46.4), (33.0, 45.2), (40.0, 44.3), (46.0, 44.0), (50, 44.4)),  # ridge
        _ellipse(50, 44.4, 0.9, 0.6),  # external occipital protuberance
        _smooth((50, 57.0), (50, 100)),  # spine
        _ellipse(50, 68.6, 0.9, 0.6),  # C7
        *_both(_smooth((39.0, 80.0), (37.6, 90.0), (36.2, 100))),  # scapula, medial border
        *_both(_smooth((38.6, 84.0), (30.0, 81.4), (20.0, 79.6), (10.0, 78.6))),  # spine of scapula
    ]  # fmt: skip
    return Diagram(
        id="head-back",
        title="Head, neck and shoulders, back view",
        regions=regions,
        outline=tuple(features),
        aspect=Decimal("1.35"),
        muscles_note=(
            "Simplified surface areas seen from behind: occipitalis above the occipital ridge, "
            "cervical paraspinal muscles beside the cervical spine, splenius capitis in the upper "
            "neck, trapezius over the neck, shoulders and upper back."
        ),
        orientation="Drawn from behind: the patient's left is on the left of the drawing.",
        landmarks=tuple(landmarks),
    )


# --- head, profiles ------------------------------------------------------------------------------


def _head_left() -> Diagram:
    def one(base: str, area: str, muscle: str, name: str, polygon: Polygon, short: str,
            anchor: tuple[float, float] | None = None) -> Region:  # fmt: skip
        return Region(
            f"{base}-l", area, muscle, "L", f"Left {name}", polygon, short,
            None if anchor is None else _c(*anchor),
        )  # fmt: skip

    regions = (
        one("frontalis", "forehead", "frontalis", "frontalis",
            _shape([(21.8, 17.0), (26.5, 12.0), (31.5, 11.8), (34.0, 16.5), (33.2, 23.0),
                    (31.2, 31.5), (27.0, 34.0), (20.0, 33.2), (17.6, 30.0), (17.8, 23.5)], r=1.6),
            "Fr", (25.5, 22.0)),
        one("temporalis", "temple", "temporalis", "temporalis",
            _shape([(34.8, 42.0), (33.2, 33.0), (35.6, 24.0), (41.5, 17.6), (49.5, 14.2),
                    (58.0, 14.8), (65.0, 18.8), (68.8, 26.0), (68.0, 33.2), (63.2, 35.5),
                    (57.5, 36.8), (55.0, 43.3), (46.0, 43.6)], r=2.0),
            "Temp", (52.0, 25.0)),
        one("orbicularis-oculi-lateral", "lateral-canthus", "lateral orbicularis oculi",
            "lateral orbicularis oculi (crow's feet)",
            _shape([(26.4, 36.4), (30.0, 36.4), (32.0, 40.5), (31.0, 45.4), (27.2, 46.8),
                    (25.8, 43.5), (26.6, 40.5)]),
            "OO", (29.0, 41.5)),
        one("masseter", "jaw", "masseter", "masseter",
            _shape([(36.0, 48.0), (53.8, 47.8), (55.6, 56.0), (53.4, 63.0), (46.0, 65.8),
                    (40.0, 63.8), (37.0, 56.0)], r=2.0),
            "Ma", (46.0, 56.0)),
        one("occipitalis", "occiput", "occipitalis", "occipitalis",
            _shape([(75.5, 28.0), (82.5, 28.5), (85.0, 35.0), (84.4, 44.0), (81.2, 50.5),
                    (76.0, 52.0), (73.2, 45.0), (73.0, 35.0)], r=2.0),
            "Occ", (79.8, 40.0)),
        one("sternocleidomastoid", "neck", "sternocleidomastoid", "sternocleidomastoid",
            _shape([(61.5, 57.2), (66.8, 58.0), (61.5, 70.5), (51.0, 85.5), (42.5, 96.5),
                    (34.5, 96.8), (41.5, 86.5), (53.5, 69.0)], r=1.5),
            "SCM", (52.0, 77.0)),
        one("splenius-capitis", "neck", "splenius capitis", "splenius capitis",
            _shape([(68.6, 58.6), (73.6, 60.4), (72.2, 67.0), (67.0, 68.6), (65.6, 64.5)], r=1.0),
            "Spl", (69.8, 63.5)),
        one("levator-scapulae", "neck", "levator scapulae", "levator scapulae",
            _shape([(65.4, 71.0), (71.2, 69.8), (71.6, 78.0), (69.4, 85.4), (64.0, 82.8),
                    (60.6, 78.5)], r=1.2),
            "LS", (68.5, 77.5)),
        one("scalenes", "neck", "scalenes", "scalenes",
            _shape([(58.8, 80.8), (63.5, 85.5), (68.5, 89.8), (62.0, 93.8), (51.5, 93.8),
                    (52.6, 88.5)], r=1.2),
            "Sc", (59.0, 89.5)),
        one("trapezius", "shoulder", "trapezius", "trapezius",
            _shape([(77.0, 62.0), (75.0, 67.5), (75.6, 76.2), (80.0, 85.8), (89.4, 92.6),
                    (99.6, 96.0), (99.6, 99.6), (75.0, 99.6), (70.6, 92.0), (72.8, 84.0),
                    (72.6, 70.0), (74.6, 63.0)], r=1.0),
            "Trap", (84.0, 97.0)),
    )  # fmt: skip
    silhouette = _path(
        ("s", [(17.0, 37.3), (15.0, 42.0), (12.0, 46.8), (9.2, 50.2)]),
        ("s", [(9.2, 50.2), (9.4, 51.6), (11.2, 52.3), (13.4, 52.6)]),
        ("s", [(13.4, 52.6), (13.6, 54.6), (12.6, 56.6), (14.4, 57.8)]),
        ("s", [(14.4, 57.8), (13.2, 59.2), (13.8, 61.0), (16.6, 62.8)]),
        ("s", [(16.6, 62.8), (15.4, 65.6), (15.6, 68.6), (17.8, 71.2), (21.5, 72.4)]),
        ("s", [(21.5, 72.4), (27.0, 73.0), (31.0, 74.6)]),
        ("s", [(31.0, 74.6), (31.8, 80.0), (32.6, 88.0), (32.5, 96.0), (32.0, 100)]),
        ("l", [(32.0, 100), (100, 100), (100, 95.0)]),
        ("s", [(100, 95.0), (90.0, 91.5), (81.0, 85.0), (76.5, 76.0), (75.8, 67.0), (78.0, 60.0)]),
        ("s", [(78.0, 60.0), (82.5, 53.0), (86.0, 44.0), (87.4, 34.0), (85.6, 23.0), (79.5, 13.0),
               (69.0, 5.8), (55.0, 3.0), (44.0, 3.4), (33.5, 5.8), (25.0, 10.5), (19.5, 17.0),
               (16.4, 24.5), (15.4, 30.5), (15.3, 34.0), (17.0, 37.3)]),
        closed=True,
    )  # fmt: skip
    features = [
        silhouette,
        _smooth((57.8, 52.0), (57.6, 45.0), (57.8, 38.5), (61.2, 37.2), (64.8, 38.8), (66.3, 43.5),
                (65.5, 48.8), (63.2, 53.0), (60.6, 55.6), (58.3, 54.8), (57.8, 52.0)),  # ear
        _smooth((59.8, 40.4), (63.2, 40.8), (64.2, 45.0), (62.4, 50.0)),
        _smooth((59.4, 44.0), (61.0, 47.2), (59.8, 50.2)),
        _path(("s", [(19.0, 39.2), (21.8, 38.2), (25.0, 40.2)]),
              ("s", [(25.0, 40.2), (22.2, 41.6), (19.4, 41.4)])),  # eye
        _smooth((19.9, 39.0), (19.4, 40.3), (19.9, 41.5)),  # iris
        _smooth((16.8, 35.0), (20.5, 34.2), (24.5, 34.5), (27.5, 35.8)),  # brow
        _smooth((12.6, 49.0), (14.4, 49.8), (14.8, 51.4), (13.4, 52.2)),  # ala
        _smooth((14.4, 57.8), (18.0, 58.2)),  # mouth
    ]  # fmt: skip
    landmarks = [
        _smooth((22.0, 71.8), (32.0, 70.5), (45.0, 68.2), (53.8, 65.2), (55.8, 61.0),
                (56.8, 55.8)),  # mandible
        _smooth((31.5, 45.8), (43.0, 45.5), (56.5, 46.3)),  # zygomatic arch
        _smooth((26.5, 10.8), (30.5, 14.0), (33.6, 21.0), (38.0, 29.0), (45.0, 34.5),
                (52.5, 38.0), (55.0, 44.0)),  # hairline
        _smooth((33.0, 95.4), (40.0, 94.6), (48.0, 95.0)),  # clavicle
    ]  # fmt: skip
    return Diagram(
        id="head-left",
        title="Head and neck, left side",
        regions=regions,
        outline=tuple(features),
        aspect=Decimal("1.3"),
        muscles_note=(
            "Simplified surface areas of the left side of the head and neck: temporalis fan above "
            "the zygomatic arch, lateral frontalis, crow's feet, masseter, occipitalis, "
            "sternocleidomastoid and the muscles of the posterior triangle."
        ),
        orientation="The patient's left profile, face toward the left of the drawing.",
        landmarks=tuple(landmarks),
    )


def _mirrored(diagram: Diagram, *, id: str, title: str, note: str, orientation: str) -> Diagram:
    def flip(d: str) -> str:
        return _transform_path(d, sx=-1.0, tx=100.0, sy=1.0)

    return Diagram(
        id=id,
        title=title,
        regions=_mirror_regions(diagram.regions),
        outline=tuple(flip(d) for d in diagram.outline),
        aspect=diagram.aspect,
        muscles_note=note,
        orientation=orientation,
        landmarks=tuple(flip(d) for d in diagram.landmarks),
    )


# --- axillae -------------------------------------------------------------------------------------


def _axillae() -> Diagram:
    cx, cy, rx, ry = 25.0, 50.0, 11.4, 12.9
    oval = [
        (cx + rx * math.cos(a) * (1.0 + 0.04 * math.sin(a)), cy + ry * math.sin(a))
        for a in (2 * math.pi * k / 12 for k in range(12))
    ]
    axilla = _pair(
        "R", "axilla", "axilla", "skin (intradermal)", "axilla (hair-bearing skin)",
        _shape(oval), "", (25.0, 46.0),
    )  # fmt: skip
    silhouette = _sym_closed(
        ("s", [(50, 2.0), (45.0, 3.6), (41.2, 9.0), (40.4, 16.0), (41.6, 23.5), (43.6, 28.4),
               (45.2, 30.6)]),
        ("s", [(45.2, 30.6), (45.3, 34.8)]),
        ("s", [(45.3, 34.8), (41.5, 37.6), (37.8, 39.4)]),
        ("s", [(37.8, 39.4), (34.2, 35.5), (30.2, 26.0), (26.6, 13.0), (24.2, 0)]),
        ("l", [(24.2, 0), (2.0, 0)]),
        ("s", [(2.0, 0), (3.2, 16.0), (5.8, 32.0), (9.0, 45.0), (12.0, 55.0), (13.8, 64.0)]),
        ("s", [(13.8, 64.0), (14.6, 75.0), (15.4, 88.0), (15.8, 100)]),
        ("l", [(15.8, 100), (50, 100)]),
    )  # fmt: skip
    features = [
        silhouette,
        *_both(_smooth((41.0, 12.6), (39.4, 13.0), (39.0, 16.6), (40.6, 19.4))),  # ear
        *_both(_smooth((44.0, 14.8), (45.6, 14.0), (47.2, 14.8))),  # eye
        _smooth((50, 15.4), (49.2, 19.6), (50.4, 20.4)),  # nose
        _sym_open((47.8, 24.5), (50, 24.7)),  # mouth
        *_both(_smooth((37.8, 39.4), (36.4, 47.0), (37.4, 55.0), (40.2, 59.8))),  # anterior fold
    ]  # fmt: skip
    landmarks = [
        *_both(_smooth((45.2, 36.6), (41.5, 38.2), (38.6, 39.6))),  # clavicle
        *_both(_smooth((34.2, 41.0), (26.0, 43.6), (18.0, 49.0), (12.6, 55.6))),  # axillary vault
        _smooth((50, 40.0), (50, 100)),  # sternum
    ]  # fmt: skip
    return Diagram(
        id="axillae",
        title="Both axillae, arms raised, front view",
        regions=axilla,
        outline=tuple(features),
        aspect=Decimal("0.8"),
        muscles_note=(
            "The hair-bearing skin of each axilla, injected intradermally. Outline the area "
            "on the patient (for example with the starch-iodine test) before charting."
        ),
        orientation=(
            "Drawn facing the patient with arms raised: the patient's right axilla is on the left "
            "of the drawing."
        ),
        landmarks=tuple(landmarks),
    )


# --- neck and shoulders --------------------------------------------------------------------------


def _neck_shoulders() -> Diagram:
    scm = _pair(
        "R", "sternocleidomastoid", "neck", "sternocleidomastoid", "sternocleidomastoid",
        _shape([(32.6, 15.2), (36.6, 18.8), (41.2, 27.0), (44.2, 36.0), (46.9, 48.0), (48.4, 57.0),
                (45.5, 57.8), (41.0, 57.3), (39.6, 47.0), (36.5, 33.0), (34.0, 23.0)], r=1.2),
        "SCM", (40.0, 38.0),
    )  # fmt: skip
    splenius = _pair(
        "R", "splenius-capitis", "neck", "splenius capitis", "splenius capitis",
        _shape([(30.6, 18.0), (32.5, 18.8), (33.5, 24.5), (34.4, 28.6), (31.4, 30.4), (29.6, 27.5),
                (29.4, 21.5)], r=1.0),
        "Spl", (31.6, 24.5),
    )  # fmt: skip
    levator = _pair(
        "R", "levator-scapulae", "neck", "levator scapulae", "levator scapulae",
        _shape([(31.6, 32.3), (35.3, 31.6), (36.5, 35.6), (34.8, 40.2), (29.0, 45.8), (23.6, 50.0),
                (21.8, 48.6), (27.4, 42.6), (31.0, 37.0)], r=1.0),
        "LS", (32.2, 37.6),
    )  # fmt: skip
    scalenes = _pair(
        "R", "scalenes", "neck", "scalenes", "scalenes",
        _shape([(35.8, 42.0), (37.9, 43.2), (39.4, 52.0), (39.8, 56.0), (31.0, 56.4), (17.6, 55.0),
                (20.6, 53.0), (25.2, 50.8), (30.4, 46.4)], r=1.2),
        "Sc", (34.0, 52.0),
    )  # fmt: skip
    trapezius = _pair(
        "R", "trapezius", "shoulder", "trapezius", "trapezius",
        _shape([(27.9, 30.4), (30.4, 31.6), (30.2, 35.8), (27.4, 41.0), (21.0, 46.8), (16.5, 51.6),
                (12.0, 54.4), (6.0, 54.6), (0.4, 54.6), (0.4, 49.4), (6.5, 47.0), (14.4, 44.0),
                (21.8, 40.4), (25.8, 35.8)], r=1.0),
        "Trap", (10.0, 50.5),
    )  # fmt: skip
    regions = (*scm, *splenius, *levator, *scalenes, *trapezius)
    silhouette = _sym_closed(
        ("l", [(50, 0), (32.6, 0)]),
        ("s", [(32.6, 0), (32.8, 6.5), (33.2, 12.4)]),
        ("s", [(33.2, 12.4), (30.5, 15.5), (28.6, 22.0), (27.6, 29.0), (26.0, 35.0), (22.0, 39.5),
               (14.5, 43.2), (6.5, 46.2), (0, 48.6)]),
        ("l", [(0, 48.6), (0, 100), (50, 100)]),
    )  # fmt: skip
    features = [
        silhouette,
        _sym_open((33.2, 12.4), (36.8, 17.8), (42.8, 21.7), (50, 23.2)),  # jaw
        *_both(_smooth((32.6, 1.5), (30.6, 2.8), (30.3, 6.2), (32.0, 8.6), (33.0, 8.8))),  # lobe
        _sym_open((44.5, 7.8), (47.0, 6.6), (48.8, 6.4), (50, 7.0)),  # upper lip
        _sym_open((44.5, 7.9), (47.0, 8.3), (50, 8.4)),  # mouth
        _sym_open((44.5, 7.9), (46.8, 10.0), (50, 10.6)),  # lower lip
        _sym_open((45.4, 0), (45.1, 1.4), (46.6, 2.4), (48.6, 2.2), (50, 2.8)),  # nose base
        *_both(_smooth((47.6, 58.6), (40.0, 57.3), (30.0, 57.7), (20.0, 56.6), (10.0, 55.4),
                       (3.0, 56.0))),  # clavicle
        _sym_open((47.6, 58.6), (50, 60.4)),  # sternal notch
    ]  # fmt: skip
    landmarks = [
        _sym_open((47.2, 13.4), (50, 13.9)),  # chin crease
        _sym_open((48.4, 30.5), (50, 33.5)),  # larynx
        _smooth((50, 60.4), (50, 100)),  # sternum
        *_both(_smooth((8.0, 59.5), (11.0, 72.0), (13.0, 88.0), (13.5, 100))),  # deltopectoral
    ]  # fmt: skip
    return Diagram(
        id="neck-shoulders",
        title="Neck and shoulders, front view",
        regions=regions,
        outline=tuple(features),
        aspect=Decimal("0.8"),
        muscles_note=(
            "Simplified surface areas for cervical dystonia: sternocleidomastoid, trapezius, and "
            "in the posterior triangle from top to bottom splenius capitis, levator scapulae and "
            "the scalenes. Deep muscles are drawn where they are reached, not where they lie."
        ),
        orientation="Drawn facing the patient: the patient's right is on the left of the drawing.",
        landmarks=tuple(landmarks),
    )


# --- the catalogue -------------------------------------------------------------------------------


def _build() -> dict[str, Diagram]:
    left = _head_left()
    right = _mirrored(
        left,
        id="head-right",
        title="Head and neck, right side",
        note=left.muscles_note.replace("left side", "right side"),
        orientation="The patient's right profile, face toward the right of the drawing.",
    )
    diagrams = (_face_front(), _head_back(), left, right, _axillae(), _neck_shoulders())
    return {d.id: d for d in diagrams}


DIAGRAMS: dict[str, Diagram] = _build()

_OTHER_PROFILE: dict[str, str] = {"head-left": "head-right", "head-right": "head-left"}

_Box: TypeAlias = tuple[Decimal, Decimal, Decimal, Decimal]


def _index(diagram: Diagram) -> tuple[tuple[Region, _Box], ...]:
    """(region, bounding box) from the smallest region to the largest: the first hit is the most
    specific."""
    return tuple(
        (
            r,
            (
                min(p[0] for p in r.polygon),
                min(p[1] for p in r.polygon),
                max(p[0] for p in r.polygon),
                max(p[1] for p in r.polygon),
            ),
        )
        for r in sorted(diagram.regions, key=lambda r: r.size)
    )


_INDEX: dict[str, tuple[tuple[Region, _Box], ...]] = {d.id: _index(d) for d in DIAGRAMS.values()}


def ids() -> list[str]:
    """Every diagram id, in catalogue order."""
    return list(DIAGRAMS)


def get(diagram_id: str) -> Diagram:
    """The diagram with this id; an unknown id raises KeyError naming the valid ones."""
    try:
        return DIAGRAMS[diagram_id]
    except (KeyError, TypeError):
        raise KeyError(
            f"Unknown diagram {diagram_id!r}: valid diagram ids are {', '.join(DIAGRAMS)}"
        ) from None


def region_at(diagram_id: str, x: Number, y: Number) -> Region | None:
    """The region under (x, y) (diagram percentages), the smallest if regions overlap; None when
    the point is in no region."""
    get(diagram_id)
    xd, yd = _dec(x, "x"), _dec(y, "y")
    for region, (x0, y0, x1, y1) in _INDEX[diagram_id]:
        if x0 <= xd <= x1 and y0 <= yd <= y1 and _inside(region.polygon, xd, yd):
            return region
    return None


def mirror(diagram_id: str, x: Number, y: Number) -> tuple[str, Decimal, Decimal]:
    """The same spot on the other side: ``(diagram id, 100 - x, y)``.

    Front and back views mirror onto themselves; the left profile mirrors onto the right profile
    and back. Coordinates must be within 0-100.
    """
    get(diagram_id)
    xd, yd = _dec(x, "x"), _dec(y, "y")
    if not (_ZERO <= xd <= _HUNDRED and _ZERO <= yd <= _HUNDRED):
        raise ValueError(f"({xd}, {yd}) is outside the diagram (0-100)")
    return _OTHER_PROFILE.get(diagram_id, diagram_id), _HUNDRED - xd, yd


# --- SVG -----------------------------------------------------------------------------------------

_FONT = "system-ui, sans-serif"
_STATE_FILL: dict[str, str] = {"ok": "#0f766e", "warn": "#b45309", "block": "#b91c1c"}
_STATE_WORD: dict[str, str] = {"ok": "", "warn": "warning", "block": "blocked"}
_POINT_R = Decimal(3)


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _num(value: Decimal) -> str:
    """Compact decimal text: exact up to 4 decimals (rounded beyond), no exponent, no trailing
    zeros."""
    q = value
    exponent = q.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        q = q.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _scaled_path(d: str, aspect: Decimal) -> str:
    return _transform_path(d, sx=1.0, sy=float(aspect))


def _polygon_path(polygon: Polygon, aspect: Decimal) -> str:
    pts = [f"{_num(x)} {_num(y * aspect)}" for x, y in polygon]
    return "M" + "L".join(pts) + "Z"


def _describe(diagram: Diagram, points: Sequence[SvgPoint], compare: Sequence[SvgPoint]) -> str:
    parts = [diagram.title + ".", diagram.orientation]
    n = len(points)
    parts.append(f"{n} injection point{'s' if n != 1 else ''} charted.")
    if compare:
        m = len(compare)
        parts.append(f"{m} point{'s' if m != 1 else ''} from the previous session shown hollow.")
    return " ".join(p for p in parts if p)


def _point_title(diagram_id: str, point: SvgPoint, prefix: str = "Point") -> str:
    region = region_at(diagram_id, point.x, point.y)
    text = f"{prefix} {point.number}"
    if region is not None:
        text += f", {region.label}"
    if point.units_label:
        text += f": {point.units_label}"
    word = _STATE_WORD[point.state] if prefix == "Point" else ""
    if word:
        text += f" ({word})"
    return text


_DRAWINGS: dict[tuple[str, bool, bool], str] = {}


def _drawing(diagram_id: str, interactive: bool, labels: bool) -> str:
    """The diagram's own layers (outline, landmarks, regions, their labels): the same for every
    chart, so made once per process (a diagram never changes while the program runs). A plain
    dict, not functools: this module imports only what test_diagrams allows."""
    key = (diagram_id, interactive, labels)
    drawn = _DRAWINGS.get(key)
    if drawn is None:
        drawn = _DRAWINGS[key] = _draw(diagram_id, interactive, labels)
    return drawn


def _draw(diagram_id: str, interactive: bool, labels: bool) -> str:
    diagram = get(diagram_id)
    aspect = diagram.aspect
    out: list[str] = []
    # Line work, beneath everything and never in the way of a tap.
    out.append(
        '<g class="outline" fill="none" stroke="#64748b" stroke-width="0.35" '
        'stroke-linecap="round" stroke-linejoin="round" pointer-events="none" aria-hidden="true">'
    )
    for i, d in enumerate(diagram.outline):
        extra = ' class="silhouette" fill="#f8fafc"' if i == 0 else ""
        out.append(f'<path d="{_scaled_path(d, aspect)}"{extra}/>')
    out.append("</g>")
    if diagram.landmarks:
        out.append(
            '<g class="landmarks" fill="none" stroke="#94a3b8" stroke-width="0.25" '
            'stroke-dasharray="0.9 0.7" stroke-linecap="round" pointer-events="none" '
            'aria-hidden="true">'
        )
        out.extend(f'<path d="{_scaled_path(d, aspect)}"/>' for d in diagram.landmarks)
        out.append("</g>")
    # Regions: the largest first, so smaller ones lie on top (as region_at decides).
    out.append(
        '<g class="regions" fill="#0284c7" fill-opacity="0.07" stroke="#0369a1" '
        'stroke-opacity="0.55" stroke-width="0.3" stroke-linejoin="round">'
    )
    for region in sorted(diagram.regions, key=lambda r: r.size, reverse=True):
        cx, cy = region.center
        attrs = (
            f'class="region" d="{_polygon_path(region.polygon, aspect)}" '
            f'data-region="{_attr(region.id)}" data-area="{_attr(region.area)}" '
            f'data-muscle="{_attr(region.muscle)}" data-side="{_attr(region.side)}" '
            f'data-x="{_num(cx)}" data-y="{_num(cy)}"'
        )
        if interactive:
            attrs += f' tabindex="0" role="button" aria-label="{_attr(region.label)}"'
        out.append(f"<path {attrs}><title>{escape(region.label)}</title></path>")
    out.append("</g>")
    if labels:
        out.append(
            '<g class="region-labels" fill="#0c4a6e" fill-opacity="0.6" font-size="2.2" '
            'text-anchor="middle" pointer-events="none" aria-hidden="true">'
        )
        for region in diagram.regions:
            if region.short:
                cx, cy = region.center
                out.append(
                    f'<text x="{_num(cx)}" y="{_num(cy * aspect)}" dy="0.35em">'
                    f"{escape(region.short)}</text>"
                )
        out.append("</g>")
    return "".join(out)


_SVGS: dict[tuple[Any, ...], str] = {}
_SVGS_KEPT = 128  # drawings kept per process (a 31-point chart is some 30 kB)


def svg(
    diagram_id: str,
    *,
    points: Sequence[SvgPoint] = (),
    interactive: bool = True,
    title: str | None = None,
    compare: Sequence[SvgPoint] = (),
    labels: bool = True,
) -> str:
    """The diagram as a self-contained inline ``<svg>`` element.

    ``points`` are drawn as numbered circles coloured by state, with their units label beside
    them; ``compare`` (say, the previous session) as hollow grey rings. ``interactive`` makes
    every region a focusable button for the charting script; otherwise the whole drawing is one
    image. ``labels`` draws each region's short name. ``title`` replaces the diagram's title.

    The drawing depends on nothing but these arguments, so the ones made lately are kept: a
    record shown again (or a chart's tab opened again) is not drawn again.
    """
    key = (diagram_id, tuple(points), interactive, title, tuple(compare), labels)
    drawn = _SVGS.get(key)
    if drawn is None:
        drawn = _svg(diagram_id, key[1], interactive, title, key[4], labels)
        if len(_SVGS) >= _SVGS_KEPT:
            _SVGS.clear()  # full: start again (simple, and safe with threads)
        _SVGS[key] = drawn
    return drawn


def _svg(
    diagram_id: str,
    points: Sequence[SvgPoint],
    interactive: bool,
    title: str | None,
    compare: Sequence[SvgPoint],
    labels: bool,
) -> str:
    diagram = get(diagram_id)
    aspect = diagram.aspect
    height = diagram.height
    name = title if title is not None else diagram.title
    root_role = 'role="group"' if interactive else 'role="img"'
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 {_num(height)}" '
        f'class="diagram" data-diagram="{_attr(diagram.id)}" data-aspect="{_num(aspect)}" '
        f'{root_role} aria-label="{_attr(name)}" font-family="{_FONT}">',
        f"<title>{escape(name)}</title>",
        f"<desc>{escape(_describe(diagram, points, compare))}</desc>",
    ]
    out.append(_drawing(diagram.id, interactive, labels))
    if compare:
        out.append(
            '<g class="compare" fill="none" stroke="#6b7280" stroke-width="0.5" '
            'stroke-dasharray="1 0.7" pointer-events="none">'
        )
        for p in compare:
            out.append(
                f'<circle class="compare-point" cx="{_num(p.x)}" cy="{_num(p.y * aspect)}" '
                f'r="4" data-number="{p.number}">'
                f"<title>{escape(_point_title(diagram.id, p, 'Previous point'))}</title></circle>"
            )
        out.append("</g>")
    if points:
        out.append(f'<g class="points" font-size="3" font-family="{_FONT}">')
        for p, spot in zip(points, _label_spots(diagram, points), strict=True):
            out.append(_point_markup(diagram, p, spot))
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


_LabelSpot: TypeAlias = tuple[Decimal, Decimal, str]  # x, y (centre line), text-anchor
_Rect: TypeAlias = tuple[Decimal, Decimal, Decimal, Decimal]
_LABEL_SIZE = Decimal(3)


def _label_spots(diagram: Diagram, points: Sequence[SvgPoint]) -> list[_LabelSpot | None]:
    """Where each point's units label goes: beside the dot (away from the midline on the front
    and back views), else below or above it; None when every spot would cover another point or
    label (the point's title still carries the label)."""
    aspect, height = diagram.aspect, diagram.height
    r = _POINT_R
    pad = Decimal("0.3")
    dots: list[_Rect] = [
        (p.x - r - pad, p.y * aspect - r - pad, p.x + r + pad, p.y * aspect + r + pad)
        for p in points
    ]
    placed: list[_Rect] = []
    spots: list[_LabelSpot | None] = []
    half = _LABEL_SIZE / 2 + Decimal("0.2")
    for i, p in enumerate(points):
        if not p.units_label:
            spots.append(None)
            continue
        cx, cy = p.x, p.y * aspect
        width = Decimal(len(p.units_label)) * _LABEL_SIZE * Decimal("0.58")
        gap = r + Decimal("0.9")
        right: _LabelSpot = (cx + gap, cy, "start")
        left: _LabelSpot = (cx - gap, cy, "end")
        sides = [left, right] if p.x < 50 and diagram.id not in _OTHER_PROFILE else [right, left]
        candidates = [
            *sides,
            (cx, cy + r + Decimal("2.2"), "middle"),
            (cx, cy - r - Decimal("2.2"), "middle"),
        ]
        chosen: _LabelSpot | None = None
        for tx, ty, anchor in candidates:
            x0 = tx if anchor == "start" else tx - width if anchor == "end" else tx - width / 2
            box = (x0, ty - half, x0 + width, ty + half)
            if box[0] < 0 or box[2] > 100 or box[1] < 0 or box[3] > height:
                continue
            others = [d for j, d in enumerate(dots) if j != i] + placed
            if any(_overlaps(box, o) for o in others):
                continue
            chosen = (tx, ty, anchor)
            placed.append(box)
            break
        spots.append(chosen)
    return spots


def _overlaps(a: _Rect, b: _Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _point_markup(diagram: Diagram, p: SvgPoint, label: _LabelSpot | None) -> str:
    cx, cy = p.x, p.y * diagram.aspect
    r = _POINT_R
    fill = _STATE_FILL[p.state]
    classes = f"point point-{p.state}" + (" is-selected" if p.selected else "")
    parts = [
        f'<g class="{classes}" data-number="{p.number}" data-x="{_num(p.x)}" '
        f'data-y="{_num(p.y)}" data-state="{p.state}">',
        f"<title>{escape(_point_title(diagram.id, p))}</title>",
    ]
    if p.selected:
        parts.append(
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r + Decimal("1.9"))}" fill="none" '
            'stroke="#111827" stroke-width="0.7"/>'
        )
    if p.state != "ok":
        dash = ' stroke-dasharray="1.2 0.8"' if p.state == "warn" else ""
        parts.append(
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r + Decimal("0.9"))}" fill="none" '
            f'stroke="{fill}" stroke-width="0.7"{dash}/>'
        )
    parts.append(
        f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r)}" fill="{fill}" stroke="#ffffff" '
        'stroke-width="0.6"/>'
    )
    digits = len(str(p.number))
    size = "3" if digits == 1 else "2.6" if digits == 2 else "2"
    parts.append(
        f'<text x="{_num(cx)}" y="{_num(cy)}" dy="0.35em" text-anchor="middle" fill="#ffffff" '
        f'font-size="{size}" font-weight="700" pointer-events="none">{p.number}</text>'
    )
    if label is not None:
        tx, ty, anchor = label
        parts.append(
            f'<text x="{_num(tx)}" y="{_num(ty)}" dy="0.35em" text-anchor="{anchor}" '
            'fill="#111827" stroke="#ffffff" stroke-width="0.8" paint-order="stroke" '
            f'stroke-linejoin="round" pointer-events="none">{escape(p.units_label)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)
