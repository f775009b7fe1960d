"""Charting diagrams: the regions agree with the protocol templates, mirror exactly, and draw as a
safe, self-contained SVG. No database."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from glabella.charting import diagrams
from glabella.charting.diagrams import Diagram, Region, SvgPoint
from glabella.clinical import protocols

D = Decimal
SVG = "{http://www.w3.org/2000/svg}"
IDS = ["face-front", "head-back", "head-left", "head-right", "axillae", "neck-shoulders"]
SYMMETRIC = ["face-front", "head-back", "axillae", "neck-shoulders"]
PROFILES = {"head-left": "head-right", "head-right": "head-left"}


STEP = D("0.7")


def _grid(region: Region, step: Decimal = STEP) -> list[tuple[Decimal, Decimal]]:
    """Points inside the region, off the 0.1 grid of the vertices (so never on an edge)."""
    xs = [p[0] for p in region.polygon]
    ys = [p[1] for p in region.polygon]
    out = []
    x = min(xs) + D("0.0137")
    while x < max(xs):
        y = min(ys) + D("0.0291")
        while y < max(ys):
            if region.contains(x, y):
                out.append((x, y))
            y += step
        x += step
    return out


def _partner(diagram_id: str, region: Region) -> Region:
    """The other side's region: same muscle and area, opposite side, id ending -l <-> -r."""
    other = PROFILES.get(diagram_id, diagram_id)
    suffix = {"L": "-r", "R": "-l"}[region.side]
    return diagrams.get(other).region(region.id[:-2] + suffix)


# --- the catalogue -------------------------------------------------------------------------------


def test_there_is_a_diagram_for_every_diagram_the_protocols_name() -> None:
    assert diagrams.ids() == IDS
    assert set(diagrams.DIAGRAMS) == set(protocols.DIAGRAMS)
    used = {s.diagram for p in protocols.all() for s in p.sites}
    assert used <= set(diagrams.DIAGRAMS)


def test_an_unknown_diagram_is_a_key_error_naming_the_valid_ids() -> None:
    with pytest.raises(KeyError) as excinfo:
        diagrams.get("nope")
    message = str(excinfo.value)
    assert "nope" in message
    for diagram_id in IDS:
        assert diagram_id in message
    for call in (
        lambda: diagrams.region_at("nope", 50, 50),
        lambda: diagrams.mirror("nope", 50, 50),
        lambda: diagrams.svg("nope"),
    ):
        with pytest.raises(KeyError, match="valid diagram ids"):
            call()


@pytest.mark.parametrize(
    ("diagram_id", "muscles"),
    [
        (
            "face-front",
            {
                "frontalis", "corrugator", "procerus", "lateral orbicularis oculi",
                "pretarsal orbicularis oculi", "nasalis", "levator labii superioris alaeque nasi",
                "orbicularis oris", "depressor anguli oris", "mentalis", "masseter", "platysma",
            },
        ),
        ("head-left", {"temporalis", "frontalis", "occipitalis", "masseter"}),
        ("head-right", {"temporalis", "frontalis", "occipitalis", "masseter"}),
        (
            "head-back",
            {"occipitalis", "cervical paraspinal group", "trapezius", "splenius capitis"},
        ),
        ("axillae", {"skin (intradermal)"}),
        (
            "neck-shoulders",
            {"sternocleidomastoid", "trapezius", "levator scapulae", "splenius capitis",
             "scalenes"},
        ),
    ],
)  # fmt: skip
def test_each_diagram_has_the_muscles_charted_on_it(diagram_id: str, muscles: set[str]) -> None:
    present = {r.muscle for r in diagrams.get(diagram_id).regions}
    assert muscles <= present


def test_paired_muscles_have_both_sides_and_midline_ones_sit_on_the_midline() -> None:
    for diagram_id in SYMMETRIC:
        diagram = diagrams.get(diagram_id)
        for region in diagram.regions:
            if region.side == "mid":
                assert min(p[0] for p in region.polygon) < 50 < max(p[0] for p in region.polygon)
                continue
            partner = _partner(diagram_id, region)
            assert (partner.muscle, partner.area) == (region.muscle, region.area)
            assert partner.side != region.side
    assert {r.side for r in diagrams.get("head-left").regions} == {"L"}
    assert {r.side for r in diagrams.get("head-right").regions} == {"R"}


def test_front_views_put_the_patients_right_on_the_left_and_the_back_view_their_left() -> None:
    def x_of(diagram_id: str, side: str) -> set[bool]:
        return {r.center[0] < 50 for r in diagrams.get(diagram_id).regions if r.side == side}

    for diagram_id in ("face-front", "axillae", "neck-shoulders"):
        assert x_of(diagram_id, "R") == {True} and x_of(diagram_id, "L") == {False}
    assert x_of("head-back", "L") == {True} and x_of("head-back", "R") == {False}


def test_region_data_is_decimal_labelled_and_every_region_can_be_hit() -> None:
    for diagram in diagrams.DIAGRAMS.values():
        assert isinstance(diagram.aspect, Decimal) and diagram.aspect > 0
        assert diagram.outline and diagram.title and diagram.muscles_note
        ids = [r.id for r in diagram.regions]
        assert len(ids) == len(set(ids))
        for region in diagram.regions:
            assert all(isinstance(c, Decimal) for p in region.polygon for c in p)
            assert region.side in ("L", "R", "mid")
            if region.side != "mid":
                assert region.label.startswith({"L": "Left ", "R": "Right "}[region.side])
            # The keyboard/label anchor is inside, and no other region hides it.
            assert diagrams.region_at(diagram.id, *region.center) is region, region.id


# --- the protocols land on their muscles ---------------------------------------------------------


def test_every_protocol_site_lands_on_its_own_muscle_and_side() -> None:
    """The charting page infers area, muscle and side from where a tap lands: every template
    point must land on the region the template names, with a little room around it."""
    misses = []
    checked = 0
    sites = sum(len(p.sites) for p in protocols.all())
    jitter = (D("-0.75"), D(0), D("0.75"))
    for protocol in protocols.all():
        for n, site in enumerate(protocol.sites, 1):
            for dx in jitter:
                for dy in jitter:
                    region = diagrams.region_at(site.diagram, site.x + dx, site.y + dy)
                    checked += 1
                    got = None if region is None else (region.area, region.muscle, region.side)
                    if got != (site.area, site.muscle, site.side):
                        misses.append(
                            f"{protocol.id} site {n} ({site.diagram} {site.x + dx}, "
                            f"{site.y + dy}): expected {site.area}/{site.muscle}/{site.side}, "
                            f"got {got}"
                        )
    assert sites > 100 and checked == 9 * sites
    assert misses == []


def test_a_preempt_template_point_is_found_by_its_exact_coordinates() -> None:
    preempt = protocols.get("chronic-migraine-preempt")
    temporal = [s for s in preempt.sites if s.muscle == "temporalis"]
    assert {s.diagram for s in temporal} == {"head-left", "head-right"}
    for site in temporal:
        region = diagrams.region_at(site.diagram, site.x, site.y)
        assert region is not None and region.id == f"temporalis-{site.side.lower()}"


# --- outside every region ------------------------------------------------------------------------


@pytest.mark.parametrize("diagram_id", IDS)
def test_the_corners_and_the_margins_are_outside_every_region(diagram_id: str) -> None:
    for x, y in [(0, 0), (100, 0), (0, 100), (100, 100), (1, 1), (99, 1), (50, 0.5)]:
        assert diagrams.region_at(diagram_id, x, y) is None, (x, y)


def test_points_off_the_muscles_return_none() -> None:
    assert diagrams.region_at("face-front", 1, 1) is None
    assert diagrams.region_at("face-front", 50, 5) is None  # crown of the head
    assert diagrams.region_at("face-front", "50", "50.5") is None  # nasal dorsum
    assert diagrams.region_at("head-back", 50, 20) is None  # back of the skull, above occipitalis
    assert diagrams.region_at("axillae", 50, 80) is None  # sternum


def test_region_at_takes_decimals_ints_floats_and_strings_and_refuses_nonsense() -> None:
    for x, y in [(D(50), D(35)), (50, 35), (50.0, 35.0), ("50", "35.00")]:
        region = diagrams.region_at("face-front", x, y)
        assert region is not None and region.muscle == "procerus"
    for bad in ("NaN", "abc", "Infinity"):
        with pytest.raises(ValueError):
            diagrams.region_at("face-front", bad, 35)


def test_where_regions_overlap_the_smallest_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    def square(rid: str, lo: str, hi: str) -> Region:
        a, b = D(lo), D(hi)
        return Region(rid, "area", rid, "mid", rid, ((a, a), (b, a), (b, b), (a, b)))

    big, small = square("big", "10", "90"), square("small", "40", "60")
    test = Diagram("test", "Test", (big, small), ("M0 0L1 1",), D(1), "note")
    monkeypatch.setitem(diagrams.DIAGRAMS, "test", test)
    monkeypatch.setitem(diagrams._INDEX, "test", diagrams._index(test))
    assert diagrams.region_at("test", 50, 50) is small
    assert diagrams.region_at("test", 20, 20) is big
    assert diagrams.region_at("test", 5, 5) is None
    svg = diagrams.svg("test")
    # Drawn larger first, so the smaller one is on top for the browser's own hit testing too.
    assert svg.index('data-region="big"') < svg.index('data-region="small"')


# --- mirroring -----------------------------------------------------------------------------------


@pytest.mark.parametrize("diagram_id", IDS)
def test_mirroring_a_point_lands_on_the_same_muscle_on_the_other_side(diagram_id: str) -> None:
    diagram = diagrams.get(diagram_id)
    for region in diagram.regions:
        target = region if region.side == "mid" else _partner(diagram_id, region)
        inside = _grid(region)
        assert len(inside) >= 3, region.id
        for x, y in inside:
            if diagrams.region_at(diagram_id, x, y) is not region:
                continue
            other, mx, my = diagrams.mirror(diagram_id, x, y)
            assert other == PROFILES.get(diagram_id, diagram_id)
            assert (mx, my) == (100 - x, y)
            assert target.contains(mx, my), (region.id, x, y)
            assert diagrams.region_at(other, mx, my) is target, (region.id, x, y)


@pytest.mark.parametrize("diagram_id", IDS)
def test_mirror_of_the_mirror_is_the_identity(diagram_id: str) -> None:
    for x, y in [(D(0), D(0)), (D("12.34"), D("56.78")), (D(50), D(35)), (D(100), D("99.99"))]:
        other, mx, my = diagrams.mirror(diagram_id, x, y)
        assert diagrams.mirror(other, mx, my) == (diagram_id, x, y)


def test_the_profiles_mirror_onto_each_other_and_the_other_views_onto_themselves() -> None:
    assert diagrams.mirror("head-left", D(44), D(36)) == ("head-right", D(56), D(36))
    assert diagrams.mirror("head-right", 56, 36) == ("head-left", D(44), D(36))
    assert diagrams.mirror("face-front", D("43.5"), D(30)) == ("face-front", D("56.5"), D(30))
    assert diagrams.mirror("head-back", 50, 40) == ("head-back", D(50), D(40))
    with pytest.raises(ValueError):
        diagrams.mirror("face-front", 101, 50)
    with pytest.raises(ValueError):
        diagrams.mirror("face-front", 50, -1)


def test_paired_regions_are_exact_mirror_images() -> None:
    for diagram_id in IDS:
        for region in diagrams.get(diagram_id).regions:
            if region.side == "mid":
                assert {(100 - x, y) for x, y in region.polygon} == set(region.polygon)
            else:
                partner = _partner(diagram_id, region)
                assert {(100 - x, y) for x, y in region.polygon} == set(partner.polygon)


# --- the SVG -------------------------------------------------------------------------------------

POINTS = [
    SvgPoint(1, D(44), D(31), "4 U"),
    SvgPoint(2, D(56), D(31), "4 U", "warn"),
    SvgPoint(3, D(50), D(35), "4 U", "block", selected=True),
    SvgPoint(12, D("30.57"), D("36.13"), ""),  # two decimals, as the charting service stores
]
COMPARE = [SvgPoint(1, D(44), D(31), "4 U"), SvgPoint(2, D(57), D(30), "5 U")]


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - our own output


def _regions(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}path") if e.get("class") == "region"]


def _markers(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


@pytest.mark.parametrize("diagram_id", IDS)
@pytest.mark.parametrize("interactive", [True, False])
def test_svg_is_well_formed_and_names_every_region(diagram_id: str, interactive: bool) -> None:
    diagram = diagrams.get(diagram_id)
    text = diagrams.svg(diagram_id, points=POINTS, compare=COMPARE, interactive=interactive)
    root = _parse(text)
    assert root.tag == f"{SVG}svg"
    box = (root.get("viewBox") or "").split()
    assert box[:3] == ["0", "0", "100"] and D(box[3]) == 100 * diagram.aspect
    assert root.get("data-diagram") == diagram_id
    assert D(root.get("data-aspect") or "") == diagram.aspect
    assert root.get("font-family") == "system-ui, sans-serif"
    assert root.get("role") == ("group" if interactive else "img")
    assert root.get("aria-label") == diagram.title
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    assert (root.findtext(f"{SVG}title") or "") == diagram.title

    drawn = {e.get("data-region"): e for e in _regions(root)}
    assert set(drawn) == {r.id for r in diagram.regions}
    for region in diagram.regions:
        element = drawn[region.id]
        assert element.get("data-area") == region.area
        assert element.get("data-muscle") == region.muscle
        assert element.get("data-side") == region.side
        assert element.findtext(f"{SVG}title") == region.label
        assert (element.get("tabindex") == "0") is interactive
        assert (element.get("aria-label") == region.label) is interactive
    # Larger regions first, so smaller ones are on top (matches region_at).
    sizes = [diagram.region(e.get("data-region") or "").size for e in _regions(root)]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("diagram_id", IDS)
def test_svg_has_no_script_handlers_styles_or_external_references(diagram_id: str) -> None:
    text = diagrams.svg(diagram_id, points=POINTS, compare=COMPARE)
    lowered = text.lower()
    for forbidden in ("<script", "<style", "<foreignobject", "<image", "href", "url(", "@import"):
        assert forbidden not in lowered
    assert re.search(r"\son[a-z]+\s*=", lowered) is None
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    for element in _parse(text).iter():
        assert not any(name.lower().startswith("on") for name in element.attrib)
        assert "style" not in element.attrib
        family = element.get("font-family")
        assert family in (None, "system-ui, sans-serif")


def test_svg_escapes_labels_and_titles() -> None:
    nasty = '<b onclick="x()">&amp;</b> 4 U'
    text = diagrams.svg(
        "face-front",
        points=[SvgPoint(1, D(30), D(20), nasty)],
        compare=[SvgPoint(2, D(70), D(20), nasty)],
        title='Ada <Lovelace> & "friends"',
    )
    root = _parse(text)
    assert "<b" not in text
    assert all("onclick" not in e.attrib for e in root.iter())
    assert "&lt;b onclick=" in text and "&amp;amp;" in text
    assert root.findtext(f"{SVG}title") == 'Ada <Lovelace> & "friends"'
    assert root.get("aria-label") == 'Ada <Lovelace> & "friends"'
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert nasty in texts
    point = _markers(root, "point")[0]
    assert (point.findtext(f"{SVG}title") or "").endswith(nasty)


@pytest.mark.parametrize("diagram_id", IDS)
def test_svg_draws_one_numbered_marker_per_point_and_hollow_ones_to_compare(
    diagram_id: str,
) -> None:
    diagram = diagrams.get(diagram_id)
    root = _parse(diagrams.svg(diagram_id, points=POINTS, compare=COMPARE))
    markers = _markers(root, "point")
    assert [m.get("data-number") for m in markers] == ["1", "2", "3", "12"]
    for marker, point in zip(markers, POINTS, strict=True):
        classes = (marker.get("class") or "").split()
        assert f"point-{point.state}" in classes
        assert ("is-selected" in classes) is point.selected
        circles = marker.findall(f"{SVG}circle")
        dot = circles[-1]
        # The percentages map exactly onto the drawing: x as is, y scaled by the aspect.
        assert D(dot.get("cx") or "") == point.x
        assert D(dot.get("cy") or "") == point.y * diagram.aspect
        assert D(dot.get("r") or "") >= 3
        assert dot.get("fill") not in (None, "none")
        number = marker.findall(f"{SVG}text")[0]
        assert number.text == str(point.number)
    compare = _markers(root, "compare-point")
    assert len(compare) == len(COMPARE)
    for marker, point in zip(compare, COMPARE, strict=True):
        assert marker.tag == f"{SVG}circle"
        assert marker.get("fill") in (None, "none")
        assert D(marker.get("cx") or "") == point.x
        assert D(marker.get("cy") or "") == point.y * diagram.aspect
    assert _markers(_parse(diagrams.svg(diagram_id)), "point") == []
    assert _markers(_parse(diagrams.svg(diagram_id)), "compare-point") == []


def test_units_labels_are_drawn_beside_their_points_without_covering_other_points() -> None:
    preempt = protocols.get("chronic-migraine-preempt")
    points = [
        SvgPoint(n, s.x, s.y, f"{s.units} U")
        for n, s in enumerate(preempt.sites, 1)
        if s.diagram == "head-back"
    ]
    root = _parse(diagrams.svg("head-back", points=points))
    labelled = 0
    for marker in _markers(root, "point"):
        texts = marker.findall(f"{SVG}text")
        if len(texts) == 2:
            labelled += 1
            assert texts[1].text == "5 U"
    assert labelled >= len(points) - 2


def test_point_titles_name_the_muscle_and_the_state() -> None:
    root = _parse(diagrams.svg("face-front", points=POINTS))
    titles = [m.findtext(f"{SVG}title") for m in _markers(root, "point")]
    assert titles[0] == "Point 1, Right corrugator: 4 U"
    assert titles[1] == "Point 2, Left corrugator: 4 U (warning)"
    assert titles[2] == "Point 3, Procerus: 4 U (blocked)"


def test_a_point_state_must_be_ok_warn_or_block() -> None:
    with pytest.raises(ValueError):
        SvgPoint(1, D(1), D(1), "", "maybe")  # type: ignore[arg-type]


# --- purity --------------------------------------------------------------------------------------


def test_the_diagrams_module_is_pure_python() -> None:
    source = Path(diagrams.__file__).read_text()
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= {"__future__", "collections", "dataclasses", "decimal", "math", "re",
                     "typing", "xml"}  # fmt: skip
    code = (
        "import sys, glabella.charting.diagrams; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
