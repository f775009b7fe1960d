"""The SVG chart renderer: real geometry read back from the SVG, the table beside it, the include.

No database: charts are pure functions of their input.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from glabella.outcomes.charts import Chart, Marker, Series, survival_chart, time_chart

NS = "{http://www.w3.org/2000/svg}"
NONE = "\N{EN DASH}"
D = dt.date


def parse(chart: Chart) -> ET.Element:
    return ET.fromstring(str(chart.svg))  # noqa: S314 - our own output, parsed to check it


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in root.iter() if name in (el.get("class") or "").split()]


def plot_area(root: ET.Element) -> tuple[float, float, float, float]:
    (rect,) = by_class(root, "plot-area")
    x, y = float(rect.get("x")), float(rect.get("y"))
    return x, y, x + float(rect.get("width")), y + float(rect.get("height"))


def point_xy(el: ET.Element) -> tuple[float, float]:
    """The centre of a point symbol (circle, square or polygon)."""
    if el.tag == f"{NS}circle":
        return float(el.get("cx")), float(el.get("cy"))
    if el.tag == f"{NS}rect":
        return float(el.get("x")) + float(el.get("width")) / 2, float(el.get("y")) + float(
            el.get("height")
        ) / 2
    coords = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def path_pieces(d: str) -> list[list[tuple[float, float]]]:
    """The absolute vertices of an SVG path made of M, L, H and V commands, one list per piece."""
    pieces: list[list[tuple[float, float]]] = []
    x = y = 0.0
    for command, args in re.findall(r"([MLHV])([^MLHV]*)", d):
        numbers = [float(n) for n in re.split(r"[ ,]+", args.strip()) if n]
        if command == "M":
            x, y = numbers
            pieces.append([(x, y)])
        elif command == "L":
            x, y = numbers
            pieces[-1].append((x, y))
        elif command == "H":
            (x,) = numbers
            pieces[-1].append((x, y))
        else:
            (y,) = numbers
            pieces[-1].append((x, y))
    return pieces


def y_tick_labels(root: ET.Element) -> list[str]:
    axis = by_class(root, "y-axis")[0]
    return [t.text for t in axis.iter(f"{NS}text") if t.get("class") == "tick"]


def monthly(values: list, label: str = "Headache days") -> Series:
    return Series(label, [(D(2026, month, 1), v) for month, v in enumerate(values, start=1)], "bar")


# --- bars -----------------------------------------------------------------------------------


def test_bar_heights_are_proportional_to_their_values():
    chart = time_chart("Headache days per month", [monthly([4, 8, 2, 0])], y_label="Days")
    root = parse(chart)
    bars = by_class(root, "bar")
    heights = {bar.get("data-x"): float(bar.get("height")) for bar in bars}
    assert heights["2026-02-01"] == pytest.approx(2 * heights["2026-01-01"], rel=1e-3)
    assert heights["2026-01-01"] == pytest.approx(2 * heights["2026-03-01"], rel=1e-3)
    assert heights["2026-04-01"] == 0
    _, _, _, bottom = plot_area(root)
    for bar in bars:  # every bar stands on the zero line
        assert float(bar.get("y")) + float(bar.get("height")) == pytest.approx(bottom, abs=0.02)
    xs = [float(bar.get("x")) for bar in sorted(bars, key=lambda b: b.get("data-x"))]
    assert xs == sorted(xs)


def test_two_bar_series_stand_side_by_side_and_differ_without_colour():
    chart = time_chart(
        "Days per month",
        [monthly([10, 12], "Headache days"), monthly([5, 6], "Migraine days")],
        y_label="Days",
    )
    root = parse(chart)
    first = {b.get("data-x"): b for b in by_class(root, "bar") if b.get("data-series") == "0"}
    second = {b.get("data-x"): b for b in by_class(root, "bar") if b.get("data-series") == "1"}
    for day in ("2026-01-01", "2026-02-01"):
        assert float(first[day].get("x")) + float(first[day].get("width")) <= float(
            second[day].get("x")
        )
        assert float(first[day].get("height")) == pytest.approx(
            2 * float(second[day].get("height")), rel=1e-3
        )
    # One month's group ends before the next month's begins.
    assert float(second["2026-01-01"].get("x")) < float(first["2026-02-01"].get("x"))
    # The second series is hatched: a pattern fill, defined in the SVG itself.
    fill = second["2026-01-01"].get("fill")
    assert fill.startswith("url(#") and first["2026-01-01"].get("fill").startswith("#")
    pattern_id = fill[5:-1]
    assert [p for p in root.iter(f"{NS}pattern") if p.get("id") == pattern_id]


# --- lines ----------------------------------------------------------------------------------


def test_a_line_runs_in_date_order_and_rises_as_values_grow():
    points = [(D(2026, 3, 1), 3), (D(2026, 1, 1), 1), (D(2026, 2, 1), 2), (D(2026, 4, 1), 0)]
    chart = time_chart("Frown lines at rest", [Series("Glabella", points)], y_label="Score")
    root = parse(chart)
    (path,) = by_class(root, "series-line")
    (piece,) = path_pieces(path.get("d"))
    xs = [x for x, _ in piece]
    ys = [y for _, y in piece]
    assert xs == sorted(xs) and len(set(xs)) == 4
    # Values 1, 2, 3, 0 in date order: higher value, smaller SVG y.
    assert ys[0] > ys[1] > ys[2]
    assert ys[3] > ys[0]
    assert ys[1] - ys[2] == pytest.approx(ys[0] - ys[1], abs=0.02)
    # Dates are placed in proportion to the days between them (31, 28 and 31 days).
    assert (xs[2] - xs[1]) / (xs[1] - xs[0]) == pytest.approx(28 / 31, rel=1e-3)
    shapes = by_class(root, "point")
    assert sorted(s.get("data-value") for s in shapes) == ["0", "1", "2", "3"]
    left, top, right, bottom = plot_area(root)
    for shape in shapes:
        x, y = point_xy(shape)
        assert left < x < right and top - 0.01 <= y <= bottom + 0.01


def test_none_leaves_a_gap_in_the_line():
    points = [
        (D(2026, 1, 1), 2),
        (D(2026, 2, 1), 3),
        (D(2026, 3, 1), None),
        (D(2026, 4, 1), 1),
        (D(2026, 5, 1), 2),
    ]
    chart = time_chart("Scores", [Series("Forehead", points)], y_label="Score")
    root = parse(chart)
    (path,) = by_class(root, "series-line")
    pieces = path_pieces(path.get("d"))
    assert [len(piece) for piece in pieces] == [2, 2]
    assert pieces[0][-1][0] < pieces[1][0][0]
    assert len(by_class(root, "point")) == 4
    assert chart.rows[2] == ["01 Mar 2026", NONE]


def test_lines_differ_by_dash_and_shape_as_well_as_colour():
    series = [
        Series("At rest", [(D(2026, 1, 1), 1), (D(2026, 2, 1), 2)]),
        Series("Frowning", [(D(2026, 1, 1), 2), (D(2026, 2, 1), 3)]),
        Series("Raising", [(D(2026, 1, 1), 0), (D(2026, 2, 1), 1)]),
    ]
    root = parse(time_chart("Scores", series, y_label="Score", y_min=0, y_max=3, y_step=1))
    lines = by_class(root, "series-line")
    assert len({line.get("stroke") for line in lines}) == 3
    assert len({line.get("stroke-dasharray") for line in lines}) == 3
    shapes = {
        (el.get("data-series"), el.tag, el.get("points") is None) for el in by_class(root, "point")
    }
    kinds_by_series = {}
    for series_index, tag, _ in shapes:
        kinds_by_series.setdefault(series_index, set()).add(tag)
    assert kinds_by_series["0"] == {f"{NS}circle"}
    assert kinds_by_series["1"] == {f"{NS}rect"}
    assert kinds_by_series["2"] == {f"{NS}polygon"}
    legend = [t.text for t in by_class(root, "legend")[0].iter(f"{NS}text")]
    assert legend == ["At rest", "Frowning", "Raising"]
    # A fixed scale: ticks exactly 0, 1, 2, 3.
    assert y_tick_labels(root) == ["0", "1", "2", "3"]


def test_a_step_series_moves_across_then_down():
    points = [(D(2026, 1, 1), 3), (D(2026, 1, 15), 1)]
    root = parse(time_chart("Steps", [Series("Dose", points, "step")], y_label="Units"))
    (path,) = by_class(root, "series-line")
    (piece,) = path_pieces(path.get("d"))
    assert len(piece) == 3
    (_, y0), (x1, y1), (x2, y2) = piece
    assert y1 == y0 and x2 == x1 and y2 > y1


# --- markers --------------------------------------------------------------------------------


def test_a_marker_sits_at_its_date_between_its_neighbours():
    points = [(D(2026, 3, 1), 12), (D(2026, 3, 31), 8)]
    marker = Marker(D(2026, 3, 16), "Injection 16 Mar 2026 (155 U)")
    chart = time_chart("Headache days", [Series("Days", points)], y_label="Days", markers=[marker])
    root = parse(chart)
    (line,) = by_class(root, "marker")
    (path,) = by_class(root, "series-line")
    (first, last) = path_pieces(path.get("d"))[0]
    x = float(line.get("x1"))
    assert float(line.get("x2")) == x
    assert first[0] < x < last[0]
    assert (x - first[0]) / (last[0] - first[0]) == pytest.approx(15 / 30, rel=1e-3)
    assert line.get("stroke-dasharray")
    assert line.find(f"{NS}title").text == "Injection 16 Mar 2026 (155 U)"
    assert chart.columns == ["Date", "Days", "Marked"]
    assert chart.rows == [
        ["01 Mar 2026", "12", NONE],
        ["16 Mar 2026", NONE, "1: Injection 16 Mar 2026 (155 U)"],
        ["31 Mar 2026", "8", NONE],
    ]


def test_markers_are_numbered_in_date_order_and_shown_with_the_full_date_beside_months():
    markers = [Marker(D(2026, 4, 9), "Cycle 2"), Marker(D(2026, 1, 12), "Cycle 1")]
    chart = time_chart(
        "Headache days per month",
        [monthly([14, 12, 9, 7, 6])],
        y_label="Days",
        markers=markers,
        x_format="%B %Y",
    )
    assert [row[0] for row in chart.rows] == [
        "January 2026",
        "12 Jan 2026",
        "February 2026",
        "March 2026",
        "April 2026",
        "09 Apr 2026",
        "May 2026",
    ]
    assert chart.rows[1][1:] == [NONE, "1: Cycle 1"]
    assert chart.rows[5][1:] == [NONE, "2: Cycle 2"]
    assert chart.rows[0][1:] == ["14", NONE]
    root = parse(chart)
    numbers = [t.text for t in by_class(root, "marker-label")]
    assert numbers == ["1", "2"]
    lines = by_class(root, "marker")
    assert float(lines[0].get("x1")) < float(lines[1].get("x1"))
    # Month ticks under the bars.
    ticks = [
        t.text for t in by_class(root, "x-axis")[0].iter(f"{NS}text") if t.get("class") == "tick"
    ]
    assert ticks[0] == "Jan 2026"


# --- survival -------------------------------------------------------------------------------


def test_survival_steps_never_go_up_and_half_is_on_the_reference_line():
    curve = Series("Botox, glabellar lines", [(60, 0.9), (75, 0.75), (90, 0.5), (120, 0.1)])
    chart = survival_chart("How long it lasts", [curve])
    root = parse(chart)
    (path,) = by_class(root, "series-line")
    (piece,) = path_pieces(path.get("d"))
    ys = [y for _, y in piece]
    xs = [x for x, _ in piece]
    assert all(b >= a for a, b in itertools.pairwise(ys))  # SVG y grows = survival falls
    assert all(b >= a for a, b in itertools.pairwise(xs))
    (reference,) = by_class(root, "reference")
    assert reference.get("stroke-dasharray")
    half = float(reference.get("y1"))
    fifty = [el for el in by_class(root, "point") if el.get("data-value") == "50%"]
    assert point_xy(fifty[0])[1] == pytest.approx(half, abs=0.02)
    # The curve starts at 100% on day 0: the top of the plot, at the left.
    _, top, _, bottom = plot_area(root)
    assert piece[0][1] == pytest.approx(top, abs=0.02)
    assert half == pytest.approx((top + bottom) / 2, abs=0.02)
    assert y_tick_labels(root) == ["0%", "25%", "50%", "75%", "100%"]
    assert chart.columns == ["Days since the treatment", "Botox, glabellar lines"]
    assert chart.rows == [["60", "90%"], ["75", "75%"], ["90", "50%"], ["120", "10%"]]
    assert "half had worn off by day 90" in chart.description


def test_survival_table_carries_each_curve_forward_to_its_last_day():
    curves = [
        Series("Botox", [(0, 1.0), (60, 0.8), (90, 0.4)]),
        Series("Dysport", [(0, 1.0), (75, Decimal("0.6"))]),
    ]
    chart = survival_chart("Duration by product", curves)
    assert chart.rows == [
        ["0", "100%", "100%"],
        ["60", "80%", "100%"],
        ["75", "80%", "60%"],
        ["90", "40%", NONE],
    ]
    root = parse(chart)
    assert len({p.get("stroke-dasharray") for p in by_class(root, "series-line")}) == 2


# --- table, text and edge cases -------------------------------------------------------------


def test_the_table_holds_every_value_for_people_and_a_dash_for_what_is_missing():
    chart = time_chart(
        "Units per area",
        [
            Series(
                "Glabella", [(D(2026, 1, 5), Decimal("20.0")), (D(2026, 4, 2), Decimal("22.5"))]
            ),
            Series("Forehead", [(D(2026, 1, 5), 10), (D(2026, 6, 1), Decimal("12.345"))]),
        ],
        y_label="Units",
    )
    assert chart.columns == ["Date", "Glabella", "Forehead"]
    assert chart.rows == [
        ["05 Jan 2026", "20", "10"],
        ["02 Apr 2026", "22.5", NONE],
        ["01 Jun 2026", NONE, "12.35"],
    ]
    assert not chart.empty


def test_every_piece_of_text_is_escaped():
    evil = '<script>alert("x")</script>'
    chart = time_chart(
        evil,
        [Series(evil, [(D(2026, 1, 1), 1), (D(2026, 2, 1), 2)])],
        y_label=evil,
        x_label=evil,
        markers=[Marker(D(2026, 1, 15), evil)],
        description=evil,
    )
    svg = str(chart.svg)
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(chart)  # still well-formed
    assert root.find(f"{NS}title").text == evil
    assert root.find(f"{NS}desc").text == evil
    survival = survival_chart(evil, [Series(evil, [(30, 0.5)])], x_label=evil, y_label=evil)
    assert "<script" not in str(survival.svg)
    parse(survival)
    html = render_to_string("outcomes/_chart.html", {"chart": chart})
    assert "<script" not in html


def test_nothing_to_plot_is_an_empty_chart():
    for chart in (
        time_chart("Diary", [], y_label="Days"),
        time_chart("Diary", [Series("Days", [])], y_label="Days"),
        time_chart(
            "Diary",
            [Series("Days", [(D(2026, 1, 1), None)])],
            y_label="Days",
            empty_text="No diary yet.",
        ),
        survival_chart("Duration", [Series("Botox", [])]),
    ):
        assert chart.empty
        assert str(chart.svg) == ""
        assert chart.rows == []
    assert (
        time_chart("Diary", [], y_label="Days", empty_text="No diary yet.").empty_text
        == "No diary yet."
    )
    assert survival_chart("Duration", []).empty_text == "No treatments to show yet."


@pytest.mark.parametrize(
    "series",
    [
        Series("One", [(D(2026, 1, 1), 5)]),
        Series("One bar", [(D(2026, 1, 1), 5)], "bar"),
        Series("Flat", [(D(2026, 1, 1), 2), (D(2026, 2, 1), 2), (D(2026, 3, 1), 2)]),
        Series("Zeros", [(D(2026, 1, 1), 0), (D(2026, 2, 1), 0)], "bar"),
        Series("Negative", [(D(2026, 1, 1), -3), (D(2026, 2, 1), -3)]),
        Series("Same day", [(D(2026, 1, 1), 1), (D(2026, 1, 1), 2)]),
    ],
    ids=lambda s: s.label,
)
def test_a_single_point_or_equal_values_draw_inside_the_plot(series):
    chart = time_chart("Edge", [series], y_label="Value")
    root = parse(chart)
    left, top, right, bottom = plot_area(root)
    numbers = re.findall(r'(?:x|y|cx|cy|width|height|x1|x2|y1|y2)="(-?[\d.]+)"', str(chart.svg))
    assert numbers and all(n not in ("nan", "inf") for n in numbers)
    for el in by_class(root, "point"):
        x, y = point_xy(el)
        assert left <= x <= right and top - 0.01 <= y <= bottom + 0.01
    for bar in by_class(root, "bar"):
        assert left <= float(bar.get("x")) <= right
        assert float(bar.get("height")) >= 0
    assert len(y_tick_labels(root)) >= 2
    assert survival_chart("One", [Series("Only", [(0, 1.0)])]).rows == [["0", "100%"]]


def test_y_ticks_are_round_numbers_and_cover_the_values():
    root = parse(time_chart("HIT-6", [monthly([36, 61, 78])], y_label="Score"))
    assert y_tick_labels(root) == ["0", "20", "40", "60", "80"]
    root = parse(time_chart("Days", [monthly([3, 13])], y_label="Days"))
    assert y_tick_labels(root) == ["0", "5", "10", "15"]
    root = parse(
        time_chart(
            "Units",
            [Series("Dose", [(D(2026, 1, 1), Decimal("0.15")), (D(2026, 2, 1), 0.4)])],
            y_label="mL",
        )
    )
    assert y_tick_labels(root) == ["0.15", "0.20", "0.25", "0.30", "0.35", "0.40"]
    root = parse(time_chart("Dose", [monthly([2, 10])], y_label="Units", y_step=2.5))
    assert y_tick_labels(root) == ["0", "2.5", "5.0", "7.5", "10.0"]


def test_date_ticks_are_weeks_for_a_month_and_months_for_a_year():
    month = [(D(2026, 3, 1) + dt.timedelta(days=d), d % 3) for d in range(0, 31)]
    root = parse(time_chart("Diary", [Series("Severity", month)], y_label="Severity"))
    ticks = [
        t.text for t in by_class(root, "x-axis")[0].iter(f"{NS}text") if t.get("class") == "tick"
    ]
    assert ticks == ["2 Mar", "9 Mar", "16 Mar", "23 Mar", "30 Mar"]  # Mondays
    year = [(D(2026, 1, 10), 1), (D(2026, 12, 20), 2)]
    root = parse(time_chart("Scores", [Series("Score", year)], y_label="Score"))
    ticks = [
        t.text for t in by_class(root, "x-axis")[0].iter(f"{NS}text") if t.get("class") == "tick"
    ]
    assert ticks == ["Mar 2026", "May 2026", "Jul 2026", "Sep 2026", "Nov 2026"]


def test_the_svg_names_itself_for_screen_readers():
    chart = time_chart(
        "Frown lines",
        [Series("At rest", [(D(2026, 1, 1), 2)])],
        y_label="Score",
        description="Frown line score at rest.",
    )
    root = parse(chart)
    assert root.get("role") == "img"
    assert root.get("viewBox").startswith("0 0 ")
    assert root.get("width") == "100%"
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title.text == "Frown lines" and desc.text == "Frown line score at rest."
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
    assert chart.description == "Frown line score at rest."
    # Without a description one is written from the data.
    auto = time_chart("Frown lines", [Series("At rest", [(D(2026, 1, 1), 2)])], y_label="Score")
    assert "At rest" in auto.description and "table" in auto.description
    # Text is at least 13 units in a 640-unit-wide viewBox.
    sizes = {float(t.get("font-size")) for t in root.iter(f"{NS}text")}
    assert min(sizes) >= 13


def test_ids_are_unique_across_charts_and_output_is_deterministic():
    def make(label: str) -> Chart:
        return time_chart(
            "Days",
            [monthly([1, 2], label), monthly([3, 4], "Other")],
            y_label="Days",
            markers=[Marker(D(2026, 1, 15), "Injection")],
        )

    one, two = make("Headache days"), make("Migraine days")
    ids_one = {el.get("id") for el in parse(one).iter() if el.get("id")}
    ids_two = {el.get("id") for el in parse(two).iter() if el.get("id")}
    assert len(ids_one) >= 3 and not ids_one & ids_two
    assert str(make("Headache days").svg) == str(one.svg)
    assert make("Headache days") == one
    curve = [Series("Botox", [(30, 0.9), (90, 0.4)])]
    assert str(survival_chart("A", curve).svg) == str(survival_chart("A", curve).svg)
    survival_ids = {el.get("id") for el in parse(survival_chart("A", curve)).iter() if el.get("id")}
    assert not survival_ids & ids_one


def test_an_unknown_series_kind_or_a_non_date_is_refused():
    with pytest.raises(ValueError, match="Unknown series kind"):
        Series("Pie", [], "pie")
    with pytest.raises(TypeError, match="dates"):
        time_chart("Days", [Series("Days", [(3, 1)])], y_label="Days")


# --- the include ----------------------------------------------------------------------------


def test_the_include_shows_the_chart_with_its_table():
    chart = time_chart(
        "Headache days per month",
        [monthly([14, 9])],
        y_label="Days",
        x_format="%B %Y",
        markers=[Marker(D(2026, 1, 20), "Injection 20 Jan 2026 (155 U)")],
    )
    html = render_to_string("outcomes/_chart.html", {"chart": chart})
    assert 'href="/static/outcomes/charts.css"' in html
    assert "<figure" in html and "<figcaption" in html and "Headache days per month" in html
    assert html.count("<svg") == 1 and 'role="img"' in html
    assert "<caption>" in html
    assert '<th scope="col">Date</th>' in html and '<th scope="col">Marked</th>' in html
    assert '<th scope="row">January 2026</th>' in html
    assert "<td>14</td>" in html
    assert '<td class="chart-marked">1: Injection 20 Jan 2026 (155 U)</td>' in html
    assert "<script" not in html and "onclick" not in html
    assert "chart-beside" in html  # three columns: the table may sit beside the chart
    wide = time_chart(
        "Days",
        [monthly([1], "Headache"), monthly([1], "Migraine"), monthly([1], "Medication")],
        y_label="Days",
    )
    assert "chart-beside" not in render_to_string("outcomes/_chart.html", {"chart": wide})


def test_the_include_shows_a_plain_message_when_there_is_nothing_to_plot():
    chart = time_chart("Headache days", [], y_label="Days", empty_text="No diary entries yet.")
    html = render_to_string("outcomes/_chart.html", {"chart": chart})
    assert "No diary entries yet." in html
    assert "Headache days" in html
    assert "<svg" not in html and "<table" not in html
