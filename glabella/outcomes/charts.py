"""Server-rendered SVG charts: time series (lines, bars, injection markers) and survival curves.

Pages build a :class:`Chart` with :func:`time_chart` or :func:`survival_chart` and show it with
``{% include "outcomes/_chart.html" with chart=some_chart %}``. The include draws the SVG with a
table of the same values beside it, so every figure can be read without the picture.

The output is plain markup and no JavaScript: it scales with its container (``viewBox``), prints
in black and white (series differ by dash pattern, point shape and bar hatching as well as by
colour), every piece of text is escaped, and the same input always gives the same bytes (element
ids come from a hash of the input, so two different charts on one page never share an id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

__all__ = ["Chart", "Marker", "Series", "format_value", "survival_chart", "time_chart"]

KINDS = ("line", "bar", "step")
NONE = "\N{EN DASH}"

# Canvas, in viewBox units. The include keeps the figure at least ~560 px wide, so the 13-15 unit
# text stays at about 12 px or more on screen.
WIDTH = 640
PLOT_HEIGHT = 250
MARGIN_LEFT = 70
MARGIN_RIGHT = 18
MARGIN_BOTTOM = 62
LEGEND_TOP = 18
LEGEND_ROW = 24
FONT = 15
SMALL = 13
INNER_PAD = 14  # room between the axes and the first and last x position

# The Okabe and Ito colour-blind-safe palette; every series also has its own dash and shape.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "8 4", "2 4", "10 4 2 4", "4 4", "12 3 3 3 3 3", "1 3")
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "triangle-down", "plus")
INK = "#1b1f24"
MUTED = "#4f5963"
GRID = "#d5dbe1"
FONT_FAMILY = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


@dataclass(frozen=True)
class Series:
    """One series: (x, y) points; y None leaves a gap. kind is "line", "bar" or "step"."""

    label: str
    points: Sequence[tuple[Any, Any]]
    kind: str = "line"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown series kind {self.kind!r}: use one of {', '.join(KINDS)}.")


@dataclass(frozen=True)
class Marker:
    """A vertical dashed line at a date (or day number), e.g. an injection cycle."""

    at: Any
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    svg: SafeString
    columns: list[str]
    rows: list[list[str]]
    empty: bool
    empty_text: str


# --- formatting -----------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None:
        return None
    result = float(value)
    if math.isnan(result) or math.isinf(result):
        return None
    return result


def format_value(value: Any) -> str:
    """A value for people: whole numbers as they are, up to two decimals, an en dash for none."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | float):
        if isinstance(value, Decimal) and not value.is_finite():
            return NONE
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return NONE
        text = f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return "0" if text in ("-0", "") else text
    return str(value)


def _percent(value: float) -> str:
    return f"{round(value * 100)}%"


def _day_text(day: float) -> str:
    return format_value(int(day) if day == int(day) else day)


def _tick_text(value: float, step: float) -> str:
    decimals = next((d for d in range(5) if abs(round(step, d) - step) < 1e-9), 4)
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def _n(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros, never "-0"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _tag(name: str, attrs: Mapping[str, Any], body: str | None = None) -> str:
    """One SVG element; attribute values are escaped, numbers rounded, None left out."""
    parts = [name]
    for key, value in attrs.items():
        if value is None or value == "":
            continue
        text = _n(value) if isinstance(value, float) else str(value)
        parts.append(f'{key}="{escape(text, quote=True)}"')
    opening = " ".join(parts)
    return f"<{opening}/>" if body is None else f"<{opening}>{body}</{name}>"


def _text(value: Any) -> str:
    return escape(str(value), quote=True)


# --- scales ---------------------------------------------------------------------------------


def _nice_step(span: float, target: int = 5) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``target`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5):
        if raw <= factor * power * 1.0000001:
            return factor * power
    return 10 * power


def _y_domain(
    values: list[float],
    y_min: float | None,
    y_max: float | None,
    y_step: float | None,
    *,
    zero: bool,
) -> tuple[float, float, float]:
    """The y range (low, high) and tick step; always a non-empty range."""
    lo, hi = min(values), max(values)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if y_min is not None:
        lo = min(lo, float(y_min))
    if y_max is not None:
        hi = max(hi, float(y_max))
    if hi == lo:
        if y_min is None and lo > 0 and not zero:
            lo = 0.0
        else:
            hi = lo + 1.0
    step = float(y_step) if y_step is not None and float(y_step) > 0 else _nice_step(hi - lo)
    if y_min is None:
        lo = math.floor(lo / step + 1e-9) * step
    if y_max is None:
        hi = math.ceil(hi / step - 1e-9) * step
    return lo, hi, step


def _y_ticks(lo: float, hi: float, step: float) -> list[float]:
    ticks: list[float] = []
    tick = math.ceil(lo / step - 1e-9) * step
    while tick <= hi + step * 1e-6 and len(ticks) < 60:
        ticks.append(round(tick, 10))
        tick += step
    return ticks


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _date_ticks(start: dt.date, end: dt.date) -> list[tuple[dt.date, str]]:
    """Date ticks between two dates: days, weeks, months or years depending on the range."""
    span = (end - start).days
    ticks: list[tuple[dt.date, str]] = []
    if span <= 70:
        if span <= 7:
            step, day = 1, start
        elif span <= 14:
            step, day = 2, start
        else:
            step = 7 if span <= 49 else 14
            day = start + dt.timedelta(days=(7 - start.weekday()) % 7)  # Mondays
        while day <= end:
            ticks.append((day, f"{day.day} {day:%b}"))
            day += dt.timedelta(days=step)
        return ticks
    months = span / 30.44
    every = next((m for m in (1, 2, 3, 6, 12, 24, 60, 120) if months / m <= 7), 240)
    day = _add_months(start, 0 if start.day == 1 else 1)
    if every <= 12:
        while (day.month - 1) % every:
            day = _add_months(day, 1)
    else:
        while day.month != 1 or day.year % (every // 12):
            day = _add_months(day, 1)
    while day <= end:
        ticks.append((day, f"{day:%Y}" if every >= 12 else f"{day:%b %Y}"))
        day = _add_months(day, every)
    return ticks


def _thin(ticks: list[tuple[float, str]], min_gap: float) -> list[tuple[float, str]]:
    """Keep every other tick until neighbouring labels are at least ``min_gap`` apart."""
    while len(ticks) > 2 and min(b[0] - a[0] for a, b in itertools.pairwise(ticks)) < min_gap:
        ticks = ticks[::2]
    return ticks


# --- drawing --------------------------------------------------------------------------------


def _shape(kind: str, x: float, y: float, colour: str, attrs: Mapping[str, Any]) -> str:
    """A point symbol: each series has its own shape so they differ without colour."""
    common = {**attrs, "fill": colour, "stroke": "#fff", "stroke-width": "1"}
    r = 5.0
    if kind == "circle":
        return _tag("circle", {**common, "cx": x, "cy": y, "r": r})
    if kind == "square":
        return _tag("rect", {**common, "x": x - r, "y": y - r, "width": 2 * r, "height": 2 * r})
    a, b = r + 1, 2.2
    outlines = {
        "triangle": [(0, -a), (a, r), (-a, r)],
        "triangle-down": [(0, a), (a, -r), (-a, -r)],
        "diamond": [(0, -a), (a, 0), (0, a), (-a, 0)],
        "cross": [
            (-a, -a + b),
            (-a + b, -a),
            (0, -b),
            (a - b, -a),
            (a, -a + b),
            (b, 0),
            (a, a - b),
            (a - b, a),
            (0, b),
            (-a + b, a),
            (-a, a - b),
            (-b, 0),
        ],
        "plus": [
            (-b, -a),
            (b, -a),
            (b, -b),
            (a, -b),
            (a, b),
            (b, b),
            (b, a),
            (-b, a),
            (-b, b),
            (-a, b),
            (-a, -b),
            (-b, -b),
        ],
    }
    points = " ".join(f"{_n(x + dx)},{_n(y + dy)}" for dx, dy in outlines[kind])
    return _tag("polygon", {**common, "points": points})


def _style(index: int) -> tuple[str, str, str]:
    """(colour, dash pattern, point shape) of the series at ``index``."""
    return PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)], SHAPES[index % len(SHAPES)]


def _bar_fill(position: int, uid: str) -> str:
    """Solid, hatched or cross-hatched: bar series differ in black and white too."""
    return (
        PALETTE[position % len(PALETTE)] if position % 3 == 0 else f"url(#{uid}-hatch-{position})"
    )


def _patterns(uid: str, count: int) -> str:
    out: list[str] = []
    for position in range(count):
        if position % 3 == 0:
            continue
        colour = PALETTE[position % len(PALETTE)]
        if position % 3 == 1:
            body = _tag(
                "path",
                {"d": "M0,6 L6,0 M-1,1 L1,-1 M5,7 L7,5", "stroke": colour, "stroke-width": "2.2"},
            )
        else:
            body = _tag(
                "path", {"d": "M3,0 L3,6 M0,3 L6,3", "stroke": colour, "stroke-width": "1.6"}
            )
        background = _tag("rect", {"width": "6", "height": "6", "fill": "#fff"})
        out.append(
            _tag(
                "pattern",
                {
                    "id": f"{uid}-hatch-{position}",
                    "width": "6",
                    "height": "6",
                    "patternUnits": "userSpaceOnUse",
                },
                background + body,
            )
        )
    return _tag("defs", {}, "".join(out)) if out else ""


def _line_swatch(index: int) -> str:
    colour, dash, shape = _style(index)
    line = {"x1": "0", "y1": "0", "x2": "28", "y2": "0", "stroke": colour, "stroke-width": "3"}
    return _tag("line", {**line, "stroke-dasharray": dash}) + _shape(
        shape, 14.0, 0.0, colour, {"class": "swatch"}
    )


def _legend(entries: list[tuple[str, str]]) -> tuple[str, float]:
    """Legend items in rows across the top of the chart; returns the markup and its height."""
    out: list[str] = []
    x, y, rows = float(MARGIN_LEFT), float(LEGEND_TOP), 1
    for swatch, label in entries:
        width = 34 + len(label) * FONT * 0.56 + 18
        if x + width > WIDTH - MARGIN_RIGHT and x > MARGIN_LEFT:
            x, y, rows = float(MARGIN_LEFT), y + LEGEND_ROW, rows + 1
        text = _tag("text", {"x": "34", "y": "5", "font-size": FONT, "fill": INK}, _text(label))
        out.append(
            _tag(
                "g",
                {"class": "legend-item", "transform": f"translate({_n(x)},{_n(y)})"},
                swatch + text,
            )
        )
        x += width
    return _tag("g", {"class": "legend"}, "".join(out)), rows * LEGEND_ROW


def _uid(*parts: Any) -> str:
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=6).hexdigest()
    return f"chart-{digest}"


def _svg(uid: str, title: str, description: str, height: float, body: list[str]) -> SafeString:
    attrs = {
        "xmlns": "http://www.w3.org/2000/svg",
        "class": "chart-svg",
        "role": "img",
        "aria-labelledby": f"{uid}-title {uid}-desc",
        "viewBox": f"0 0 {WIDTH} {_n(height)}",
        "width": "100%",
        "preserveAspectRatio": "xMidYMid meet",
        "font-family": FONT_FAMILY,
    }
    head = _tag("title", {"id": f"{uid}-title"}, _text(title)) + _tag(
        "desc", {"id": f"{uid}-desc"}, _text(description)
    )
    # Every piece of text and every attribute above went through escape().
    return mark_safe(_tag("svg", attrs, head + "".join(body)))  # noqa: S308


@dataclass(frozen=True)
class _Frame:
    left: float
    right: float
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom + MARGIN_BOTTOM


def _frame(legend_height: float) -> _Frame:
    top = LEGEND_TOP + legend_height + 10
    return _Frame(float(MARGIN_LEFT), float(WIDTH - MARGIN_RIGHT), top, top + PLOT_HEIGHT)


def _axes(
    frame: _Frame,
    x_ticks: list[tuple[float, str]],
    y_ticks: list[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> str:
    f = frame
    out = [
        _tag(
            "rect",
            {
                "class": "plot-area",
                "x": f.left,
                "y": f.top,
                "width": f.right - f.left,
                "height": f.bottom - f.top,
                "fill": "none",
                "stroke": "none",
            },
        )
    ]
    ys = []
    for y, text in y_ticks:
        ys.append(
            _tag(
                "line",
                {
                    "class": "grid",
                    "x1": f.left,
                    "y1": y,
                    "x2": f.right,
                    "y2": y,
                    "stroke": GRID,
                    "stroke-width": "1",
                },
            )
        )
        ys.append(
            _tag(
                "text",
                {
                    "class": "tick",
                    "x": f.left - 8,
                    "y": y + 5,
                    "text-anchor": "end",
                    "font-size": SMALL,
                    "fill": INK,
                },
                _text(text),
            )
        )
    mid = (f.top + f.bottom) / 2
    ys.append(
        _tag(
            "text",
            {
                "class": "axis-label",
                "x": "16",
                "y": mid,
                "transform": f"rotate(-90 16 {_n(mid)})",
                "text-anchor": "middle",
                "font-size": FONT,
                "fill": INK,
            },
            _text(y_label),
        )
    )
    out.append(_tag("g", {"class": "y-axis"}, "".join(ys)))
    xs = [
        _tag(
            "line",
            {
                "x1": f.left,
                "y1": f.bottom,
                "x2": f.right,
                "y2": f.bottom,
                "stroke": INK,
                "stroke-width": "1.2",
            },
        )
    ]
    for x, text in x_ticks:
        xs.append(
            _tag(
                "line",
                {
                    "x1": x,
                    "y1": f.bottom,
                    "x2": x,
                    "y2": f.bottom + 6,
                    "stroke": INK,
                    "stroke-width": "1",
                },
            )
        )
        xs.append(
            _tag(
                "text",
                {
                    "class": "tick",
                    "x": x,
                    "y": f.bottom + 22,
                    "text-anchor": "middle",
                    "font-size": SMALL,
                    "fill": INK,
                },
                _text(text),
            )
        )
    xs.append(
        _tag(
            "text",
            {
                "class": "axis-label",
                "x": (f.left + f.right) / 2,
                "y": f.bottom + 48,
                "text-anchor": "middle",
                "font-size": FONT,
                "fill": INK,
            },
            _text(x_label),
        )
    )
    out.append(_tag("g", {"class": "x-axis"}, "".join(xs)))
    return "".join(out)


def _path(points: list[tuple[float, float] | None], step: bool) -> str:
    """An SVG path through the points; None lifts the pen (a gap)."""
    parts: list[str] = []
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        x, y = point
        if not pen_down:
            parts.append(f"M{_n(x)},{_n(y)}")
            pen_down = True
        elif step:
            parts.append(f"H{_n(x)}V{_n(y)}")
        else:
            parts.append(f"L{_n(x)},{_n(y)}")
    return " ".join(parts)


def _series_group(
    index: int, kind: str, coords: list[tuple[float, float] | None], shapes: list[str]
) -> str:
    colour, dash, _ = _style(index)
    line = _tag(
        "path",
        {
            "class": "series-line step" if kind == "step" else "series-line",
            "data-series": index,
            "d": _path(coords, kind == "step"),
            "fill": "none",
            "stroke": colour,
            "stroke-width": "3",
            "stroke-linejoin": "round",
            "stroke-dasharray": dash,
        },
    )
    return _tag("g", {"class": f"series kind-{kind}", "data-series": index}, line + "".join(shapes))


def _empty(title: str, description: str, empty_text: str, columns: list[str]) -> Chart:
    return Chart(
        title=title,
        description=description or empty_text,
        svg=SafeString(""),
        columns=columns,
        rows=[],
        empty=True,
        empty_text=empty_text,
    )


# --- time chart -----------------------------------------------------------------------------


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"A time chart needs dates on the x axis, not {value!r}.")


def time_chart(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str,
    x_label: str = "Date",
    markers: Sequence[Marker] = (),
    y_min: float | None = None,
    y_max: float | None = None,
    y_step: float | None = None,
    x_format: str = "%d %b %Y",
    description: str = "",
    empty_text: str = "Nothing recorded yet.",
) -> Chart:
    """A chart over dates: "line" and "step" series (None breaks the line), grouped "bar" series
    and markers (dashed vertical lines, numbered, listed in the table's "Marked" column)."""
    series = list(series)
    markers = list(markers)
    columns = [x_label, *(s.label for s in series)] + (["Marked"] if markers else [])
    data = [[(_as_date(x), y, _number(y)) for x, y in s.points] for s in series]
    values = [v for points in data for _, _, v in points if v is not None]
    if not values:
        return _empty(title, description, empty_text, columns)

    # Markers are numbered in date order: the number is on the line and starts its table entry.
    placed = sorted(((_as_date(m.at), m.label) for m in markers), key=lambda item: item[0])
    numbered = [(number, day, label) for number, (day, label) in enumerate(placed, start=1)]

    dates = sorted({d for points in data for d, _, _ in points} | {day for day, _ in placed})
    # A marker-only row gets the full date when x_format hides the day ("%B %Y" for monthly bars).
    data_days = {d for points in data for d, _, _ in points}
    shows_day = any(code in x_format for code in ("%d", "%e", "%j", "%-d"))
    rows: list[list[str]] = []
    for day in dates:
        row = [day.strftime(x_format if shows_day or day in data_days else "%d %b %Y")]
        for points in data:
            same_day = [raw for d, raw, _ in points if d == day]
            row.append(format_value(same_day[-1]) if same_day else NONE)
        if markers:
            marked = [f"{number}: {label}" for number, at, label in numbered if at == day]
            row.append("; ".join(marked) if marked else NONE)
        rows.append(row)

    if not description:
        what = "Bar chart" if {s.kind for s in series} == {"bar"} else "Chart"
        plural = "s" if len(markers) > 1 else ""
        marked = f", with {len(markers)} marked date{plural}" if markers else ""
        description = (
            f"{what} of {', '.join(s.label for s in series)} from {dates[0].strftime(x_format)} "
            f"to {dates[-1].strftime(x_format)}{marked}. The values are in the table."
        )

    uid = _uid(
        "time",
        title,
        description,
        y_label,
        x_label,
        x_format,
        y_min,
        y_max,
        y_step,
        [(s.label, s.kind, list(s.points)) for s in series],
        [(m.at, m.label) for m in markers],
    )

    bars = [i for i, s in enumerate(series) if s.kind == "bar"]
    entries: list[tuple[str, str]] = []
    for i, s in enumerate(series):
        if s.kind == "bar":
            swatch = _tag(
                "rect",
                {
                    "class": "swatch",
                    "x": "4",
                    "y": "-8",
                    "width": "20",
                    "height": "16",
                    "fill": _bar_fill(bars.index(i), uid),
                    "stroke": _style(i)[0],
                    "stroke-width": "1.5",
                },
            )
        else:
            swatch = _line_swatch(i)
        entries.append((swatch, s.label))
    if markers:
        swatch = _tag(
            "line",
            {
                "x1": "14",
                "y1": "-10",
                "x2": "14",
                "y2": "10",
                "stroke": MUTED,
                "stroke-width": "2",
                "stroke-dasharray": "5 3",
            },
        )
        entries.append((swatch, "Marked date (numbered in the table)"))
    legend, legend_height = _legend(entries)
    frame = _frame(legend_height)

    # x: days. Bars sit in slots as wide as the smallest gap between bar dates.
    lo_x, hi_x = float(dates[0].toordinal()), float(dates[-1].toordinal())
    bar_days = sorted({d.toordinal() for i in bars for d, _, v in data[i] if v is not None})
    slot = 0.0
    if bar_days:
        slot = float(min((b - a for a, b in itertools.pairwise(bar_days)), default=30))
        lo_x, hi_x = lo_x - slot / 2, hi_x + slot / 2
    if hi_x == lo_x:
        lo_x, hi_x = lo_x - 1, hi_x + 1
    plot_left, plot_right = frame.left + INNER_PAD, frame.right - INNER_PAD
    per_day = (plot_right - plot_left) / (hi_x - lo_x)

    def px(day: dt.date) -> float:
        return plot_left + (day.toordinal() - lo_x) * per_day

    lo_y, hi_y, step_y = _y_domain(values, y_min, y_max, y_step, zero=bool(bar_days))

    def py(value: float) -> float:
        return frame.bottom - (value - lo_y) / (hi_y - lo_y) * (frame.bottom - frame.top)

    y_ticks = [(py(t), _tick_text(t, step_y)) for t in _y_ticks(lo_y, hi_y, step_y)]
    if bar_days and len(bar_days) <= 14 and x_format in ("%B %Y", "%b %Y"):
        x_ticks = [
            (px(dt.date.fromordinal(o)), f"{dt.date.fromordinal(o):%b %Y}") for o in bar_days
        ]
    else:
        start = dt.date.fromordinal(math.ceil(lo_x))
        end = dt.date.fromordinal(math.floor(hi_x))
        x_ticks = [(px(d), text) for d, text in _date_ticks(start, end)]

    body = [
        _patterns(uid, len(bars)),
        legend,
        _axes(frame, _thin(x_ticks, 64), y_ticks, x_label, y_label),
    ]

    if bar_days:
        group = min(slot * per_day * 0.8, 40.0 * len(bars))
        width = group / len(bars)
        base = py(min(max(0.0, lo_y), hi_y))
        rects = []
        for position, i in enumerate(bars):
            for day, raw, value in data[i]:
                if value is None:
                    continue
                y_top, y_bottom = sorted((py(value), base))
                tip = f"{series[i].label}, {day.strftime(x_format)}: {format_value(raw)}"
                attrs = {
                    "class": "bar",
                    "data-series": i,
                    "data-x": day.isoformat(),
                    "data-value": format_value(raw),
                    "x": px(day) - group / 2 + position * width + 1,
                    "y": y_top,
                    "width": max(width - 2, 1.0),
                    "height": y_bottom - y_top,
                    "fill": _bar_fill(position, uid),
                    "stroke": _style(i)[0],
                    "stroke-width": "1.5",
                }
                rects.append(_tag("rect", attrs, _tag("title", {}, _text(tip))))
        body.append(_tag("g", {"class": "bars"}, "".join(rects)))

    if numbered:
        lines = []
        for number, day, label in numbered:
            x = px(day)
            lines.append(
                _tag(
                    "line",
                    {
                        "class": "marker",
                        "data-at": day.isoformat(),
                        "x1": x,
                        "y1": frame.top,
                        "x2": x,
                        "y2": frame.bottom,
                        "stroke": MUTED,
                        "stroke-width": "2",
                        "stroke-dasharray": "5 3",
                    },
                    _tag("title", {}, _text(label)),
                )
            )
            lines.append(
                _tag(
                    "text",
                    {
                        "class": "marker-label",
                        "x": x + 4,
                        "y": frame.top + 14,
                        "font-size": SMALL,
                        "fill": INK,
                    },
                    str(number),
                )
            )
        body.append(_tag("g", {"class": "markers"}, "".join(lines)))

    for i, s in enumerate(series):
        if s.kind == "bar":
            continue
        colour, _, shape = _style(i)
        ordered = sorted(data[i], key=lambda item: item[0])
        coords = [None if v is None else (px(d), py(v)) for d, _, v in ordered]
        shapes = [
            _shape(
                shape,
                c[0],
                c[1],
                colour,
                {"class": "point", "data-series": i, "data-value": format_value(raw)},
            )
            for (_, raw, _), c in zip(ordered, coords, strict=True)
            if c is not None
        ]
        body.append(_series_group(i, s.kind, coords, shapes))

    return Chart(
        title=title,
        description=description,
        svg=_svg(uid, title, description, frame.height, body),
        columns=columns,
        rows=rows,
        empty=False,
        empty_text=empty_text,
    )


# --- survival chart -------------------------------------------------------------------------


def survival_chart(
    title: str,
    curves: Sequence[Series],
    *,
    x_label: str = "Days since the treatment",
    y_label: str = "Still working",
    description: str = "",
    empty_text: str = "No treatments to show yet.",
) -> Chart:
    """Kaplan-Meier curves: x in days, y the share still working (0..1), drawn as steps from
    100% on day 0, shown as percentages, with a dashed 50% reference line."""
    curves = list(curves)
    columns = [x_label, *(c.label for c in curves)]
    data: list[list[tuple[float, float | None]]] = []
    for curve in curves:
        points: list[tuple[float, float | None]] = []
        for x, y in curve.points:
            day = _number(x)
            if day is None:
                raise ValueError(
                    f"A survival curve needs a number of days on the x axis, not {x!r}."
                )
            value = _number(y)
            points.append((day, None if value is None else min(max(value, 0.0), 1.0)))
        data.append(sorted(points, key=lambda item: item[0]))
    if not any(v is not None for points in data for _, v in points):
        return _empty(title, description, empty_text, columns)

    days = sorted({d for points in data for d, _ in points})
    rows = [[_day_text(day), *(_value_at(points, day) for points in data)] for day in days]

    if not description:
        parts = []
        for curve, points in zip(curves, data, strict=True):
            median = next((d for d, v in points if v is not None and v <= 0.5), None)
            if median is None:
                parts.append(f"{curve.label}: more than half still working at the last follow-up")
            else:
                parts.append(f"{curve.label}: half had worn off by day {_day_text(median)}")
        description = (
            "Step chart of the share of treatments still working by days since the treatment. "
            f"{'; '.join(parts)}. The values are in the table."
        )

    uid = _uid(
        "survival",
        title,
        description,
        x_label,
        y_label,
        [(c.label, list(c.points)) for c in curves],
    )
    entries = [(_line_swatch(i), c.label) for i, c in enumerate(curves)]
    reference = {
        "x1": "0",
        "y1": "0",
        "x2": "28",
        "y2": "0",
        "stroke": INK,
        "stroke-width": "1.5",
        "stroke-dasharray": "3 3",
    }
    entries.append((_tag("line", reference), "50% mark"))
    legend, legend_height = _legend(entries)
    frame = _frame(legend_height)

    step_x = _nice_step(max(days[-1], 1.0), 6)
    hi_x = math.ceil(max(days[-1], 1.0) / step_x - 1e-9) * step_x
    plot_left, plot_right = frame.left + INNER_PAD, frame.right - INNER_PAD

    def px(day: float) -> float:
        return plot_left + day / hi_x * (plot_right - plot_left)

    def py(value: float) -> float:
        return frame.bottom - value * (frame.bottom - frame.top)

    x_ticks = [
        (px(k * step_x), _tick_text(k * step_x, step_x)) for k in range(round(hi_x / step_x) + 1)
    ]
    y_ticks = [(py(k / 4), _percent(k / 4)) for k in range(5)]
    body = [legend, _axes(frame, _thin(x_ticks, 48), y_ticks, x_label, y_label)]
    half = py(0.5)
    body.append(
        _tag(
            "line",
            {
                "class": "reference",
                "x1": frame.left,
                "y1": half,
                "x2": frame.right,
                "y2": half,
                "stroke": INK,
                "stroke-width": "1.5",
                "stroke-dasharray": "3 3",
            },
            _tag("title", {}, "50% still working"),
        )
    )

    for i, points in enumerate(data):
        colour, _, shape = _style(i)
        coords: list[tuple[float, float] | None] = [
            None if v is None else (px(d), py(v)) for d, v in points
        ]
        first = next((k for k, c in enumerate(coords) if c is not None), None)
        if first is not None and points[first][0] > 0:
            coords.insert(first, (px(0.0), py(1.0)))  # every curve starts at 100% on day 0
        shapes = [
            _shape(
                shape,
                px(d),
                py(v),
                colour,
                {"class": "point", "data-series": i, "data-value": _percent(v)},
            )
            for d, v in points
            if v is not None
        ]
        body.append(_series_group(i, "step", coords, shapes))

    return Chart(
        title=title,
        description=description,
        svg=_svg(uid, title, description, frame.height, body),
        columns=columns,
        rows=rows,
        empty=False,
        empty_text=empty_text,
    )


def _value_at(points: list[tuple[float, float | None]], day: float) -> str:
    """A step curve's value on a day: the last step at or before it; none outside it or in a gap."""
    if not points or day < points[0][0] or day > points[-1][0]:
        return NONE
    current: float | None = None
    for d, v in points:
        if d > day:
            break
        current = v
    return NONE if current is None else _percent(current)
