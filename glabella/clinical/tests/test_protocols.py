"""Protocols: totals against the reference, site layout, sources and statuses."""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal

import pytest

from glabella.clinical import _reference, catalogue, protocols, sources
from glabella.clinical.protocols import Protocol, Site, UnknownProtocol

D = Decimal

REQUIRED_IDS = {
    "glabellar-lines-botox-cosmetic",
    "glabellar-lines-dysport",
    "glabellar-lines-xeomin",
    "glabellar-lines-jeuveau",
    "glabellar-lines-letybo",
    "glabellar-lines-daxxify",
    "lateral-canthal-lines",
    "forehead-lines",
    "upper-face",
    "platysma-bands",
    "chronic-migraine-preempt",
    "axillary-hyperhidrosis",
    "blepharospasm",
    "cervical-dystonia",
    "blank",
}
INDICATION_IDS = {
    "glabellar-lines",
    "lateral-canthal-lines",
    "forehead-lines",
    "platysma-bands",
    "chronic-migraine",
    "axillary-hyperhidrosis",
    "blepharospasm",
    "cervical-dystonia",
    "upper-limb-spasticity",
    "lower-limb-spasticity",
    "overactive-bladder",
    "other",
}


def _by(p: Protocol, **match: str) -> list[Site]:
    return [s for s in p.sites if all(getattr(s, k) == v for k, v in match.items())]


# -- the catalogue of protocols ------------------------------------------------------------------


def test_every_required_protocol_exists() -> None:
    ids = {p.id for p in protocols.all()}
    assert ids >= REQUIRED_IDS
    assert ids - REQUIRED_IDS == {"platysma-bands-31", "platysma-bands-36"}
    assert protocols.ids() == [p.id for p in protocols.all()]


def test_indication_ids_are_exactly_the_designed_ones() -> None:
    assert set(protocols.INDICATIONS) == INDICATION_IDS


def test_unknown_protocol_raises_with_the_valid_ids() -> None:
    with pytest.raises(UnknownProtocol) as exc:
        protocols.get("preempt")
    assert isinstance(exc.value, KeyError)
    assert "'preempt'" in str(exc.value)
    assert "chronic-migraine-preempt" in str(exc.value)


@pytest.mark.parametrize("protocol", protocols.all(), ids=lambda p: p.id)
def test_protocol_is_consistent(protocol: Protocol) -> None:
    assert protocol.indication in INDICATION_IDS
    assert set(protocol.indications) <= INDICATION_IDS
    assert protocol.indication in protocol.indications
    assert protocol.product_ids
    for pid in protocol.product_ids:
        catalogue.product(pid)
    for sid in (*protocol.sources, *protocol.max_total_sources):
        assert sources.get(sid).id == sid
    assert protocol.status in {"confirmed", "secondary", "unconfirmed"}
    assert protocol.total_units == sum((s.units * s.count for s in protocol.sites), D(0))
    assert isinstance(protocol.total_units, Decimal)
    assert protocol.site_count == sum(s.count for s in protocol.sites)
    for site in protocol.sites:
        assert site.side in {"L", "R", "mid"}
        assert site.depth in {"IM", "ID", "SC"}
        assert site.diagram in protocols.DIAGRAMS
        assert site.count == 1  # one Site per injection point
        for value in (site.units, site.x, site.y):
            assert isinstance(value, Decimal)
        assert D(0) <= site.x <= D(100) and D(0) <= site.y <= D(100)
        if site.units_range is not None:
            low, high = site.units_range
            assert low <= site.units <= high
    if protocol.id != "blank":
        assert protocol.sources


# -- totals against the reference ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "product", "per_site", "total"),
    [
        ("glabellar-lines-botox-cosmetic", "botox_cosmetic", 4, 20),
        ("glabellar-lines-dysport", "dysport", 10, 50),
        ("glabellar-lines-xeomin", "xeomin", 4, 20),
        ("glabellar-lines-jeuveau", "jeuveau", 4, 20),
        ("glabellar-lines-letybo", "letybo", 4, 20),
        ("glabellar-lines-daxxify", "daxxify", 8, 40),
    ],
)
def test_glabellar_lines_per_product(pid: str, product: str, per_site: int, total: int) -> None:
    p = protocols.get(pid)
    assert p.product_ids == (product,)
    assert p.indication == "glabellar-lines"
    assert p.total_units == total
    assert p.site_count == 5
    assert {s.units for s in p.sites} == {D(per_site)}
    assert len(_by(p, muscle="corrugator", side="L")) == 2
    assert len(_by(p, muscle="corrugator", side="R")) == 2
    assert [s.side for s in _by(p, muscle="procerus")] == ["mid"]
    assert all(s.depth == "IM" for s in p.sites)
    assert p.status == "confirmed" and p.total_status == "confirmed"


def test_lateral_canthal_lines_is_3_by_4_units_a_side() -> None:
    p = protocols.get("lateral-canthal-lines")
    assert p.total_units == 24
    assert p.units_by_side() == {"R": D(12), "L": D(12)}
    assert len(_by(p, side="R")) == len(_by(p, side="L")) == 3
    assert {s.muscle for s in p.sites} == {"lateral orbicularis oculi"}
    assert {s.units for s in p.sites} == {D(4)}


def test_forehead_lines_always_include_the_glabellar_points() -> None:
    p = protocols.get("forehead-lines")
    assert p.total_units == 40
    assert p.site_count == 10
    assert p.units_by_muscle() == {"frontalis": D(20), "corrugator": D(16), "procerus": D(4)}
    assert len(_by(p, muscle="frontalis")) == 5
    assert set(p.indications) == {"forehead-lines", "glabellar-lines"}
    # every frontalis point sits above every glabellar point
    assert max(s.y for s in _by(p, muscle="frontalis")) < min(
        s.y for s in p.sites if s.muscle != "frontalis"
    )


def test_upper_face_is_64_units_at_16_sites() -> None:
    p = protocols.get("upper-face")
    assert p.total_units == 64
    assert p.site_count == 16
    assert p.units_by_area() == {"glabella": D(20), "forehead": D(20), "lateral-canthus": D(24)}
    assert {s.units for s in p.sites} == {D(4)}


@pytest.mark.parametrize(
    ("pid", "total", "right", "left"),
    [
        ("platysma-bands", 26, 13, 13),
        ("platysma-bands-31", 31, 13, 18),
        ("platysma-bands-36", 36, 18, 18),
    ],
)
def test_platysma_variants_ship_with_their_site_map_unconfirmed(
    pid: str, total: int, right: int, left: int
) -> None:
    p = protocols.get(pid)
    assert p.total_units == total
    assert p.total_status == "confirmed"
    assert p.status == "unconfirmed"
    assert p.units_by_side() == {"R": D(right), "L": D(left)}
    assert any("UNCONFIRMED" in n for n in p.notes)
    assert all("unconfirmed" in s.note for s in p.sites)


PREEMPT_GROUPS = {
    # muscle: (sites, units, paired)
    "corrugator": (2, 10, True),
    "procerus": (1, 5, False),
    "frontalis": (4, 20, True),
    "temporalis": (8, 40, True),
    "occipitalis": (6, 30, True),
    "cervical paraspinal group": (4, 20, True),
    "trapezius": (6, 30, True),
}


def test_preempt_is_155_units_at_31_sites() -> None:
    p = protocols.get("chronic-migraine-preempt")
    assert p.total_units == 155
    assert p.site_count == 31
    assert p.product_ids == ("botox",)
    assert p.indication == "chronic-migraine"
    assert {s.units for s in p.sites} == {D(5)}
    assert {s.depth for s in p.sites} == {"IM"}


@pytest.mark.parametrize(("muscle", "expected"), PREEMPT_GROUPS.items())
def test_preempt_muscle_group_counts_and_units(
    muscle: str, expected: tuple[int, int, bool]
) -> None:
    sites_, units, paired = expected
    p = protocols.get("chronic-migraine-preempt")
    group = _by(p, muscle=muscle)
    assert len(group) == sites_
    assert sum(s.units for s in group) == units
    if paired:
        assert len(_by(p, muscle=muscle, side="L")) == len(_by(p, muscle=muscle, side="R"))
        assert not _by(p, muscle=muscle, side="mid")


def test_preempt_has_exactly_the_seven_muscle_groups() -> None:
    p = protocols.get("chronic-migraine-preempt")
    assert set(p.units_by_muscle()) == set(PREEMPT_GROUPS)


def test_preempt_procerus_is_the_only_midline_site() -> None:
    p = protocols.get("chronic-migraine-preempt")
    midline = [s for s in p.sites if s.side == "mid"]
    assert [s.muscle for s in midline] == ["procerus"]
    assert midline[0].x == 50


def test_preempt_follow_the_pain_maximum_is_195_units() -> None:
    p = protocols.get("chronic-migraine-preempt")
    assert p.max_total_units == 195
    assert p.max_total_status == "confirmed"
    assert p.max_total_sources == ("S13", "S83")
    assert any("39 sites" in n and "NOT the US label dose" in n for n in p.notes)
    assert any(n.startswith("UNCONFIRMED per-muscle split") for n in p.notes)


def test_preempt_sites_use_the_head_diagrams() -> None:
    p = protocols.get("chronic-migraine-preempt")
    diagrams = {m: {s.diagram for s in _by(p, muscle=m)} for m in PREEMPT_GROUPS}
    assert diagrams["temporalis"] == {"head-left", "head-right"}
    for muscle in ("occipitalis", "cervical paraspinal group", "trapezius"):
        assert diagrams[muscle] == {"head-back"}
    for muscle in ("corrugator", "procerus", "frontalis"):
        assert diagrams[muscle] == {"face-front"}
    assert {s.side for s in _by(p, diagram="head-left")} == {"L"}
    assert {s.side for s in _by(p, diagram="head-right")} == {"R"}


def test_axillary_hyperhidrosis_is_50_units_intradermal_per_axilla() -> None:
    p = protocols.get("axillary-hyperhidrosis")
    assert p.total_units == 100
    assert p.units_by_side() == {"R": D(50), "L": D(50)}
    assert {s.depth for s in p.sites} == {"ID"}
    assert {s.diagram for s in p.sites} == {"axillae"}
    for side in ("L", "R"):
        assert 10 <= len(_by(p, side=side)) <= 15
    assert all(s.x < 50 for s in _by(p, side="R"))
    assert all(s.x > 50 for s in _by(p, side="L"))


def test_blepharospasm_is_three_sites_per_eye_within_the_label_range() -> None:
    p = protocols.get("blepharospasm")
    assert len(_by(p, side="R")) == len(_by(p, side="L")) == 3
    for site in p.sites:
        assert site.units_range == (D("1.25"), D("2.5"))
        assert site.units == D("1.25")
    assert p.product_ids == ("botox",)


def test_cervical_dystonia_has_no_default_dose_and_the_per_site_ceiling() -> None:
    p = protocols.get("cervical-dystonia")
    assert p.total_units == 0
    assert p.total_status is None
    assert {s.muscle for s in p.sites} == {"sternocleidomastoid"}
    for site in p.sites:
        assert site.units == 0
        assert site.units_range == (D(0), D(50))
    assert any("236" in n for n in p.notes)


def test_blank_protocol_has_no_sites() -> None:
    p = protocols.get("blank")
    assert p.sites == ()
    assert p.total_units == 0
    assert p.indication == "other"
    assert set(p.product_ids) == set(catalogue.PRODUCT_IDS)


# -- coordinates ---------------------------------------------------------------------------------

_MIRROR_DIAGRAM = {"head-left": "head-right", "head-right": "head-left"}


def _mirror_key(site: Site) -> tuple[object, ...]:
    diagram = _MIRROR_DIAGRAM.get(site.diagram, site.diagram)
    return (site.area, site.muscle, site.units, site.depth, diagram, 100 - site.x, site.y)


def _key(site: Site) -> tuple[object, ...]:
    return (site.area, site.muscle, site.units, site.depth, site.diagram, site.x, site.y)


@pytest.mark.parametrize("protocol", protocols.all(), ids=lambda p: p.id)
def test_left_and_right_sites_are_mirror_images(protocol: Protocol) -> None:
    right = Counter(_mirror_key(s) for s in protocol.sites if s.side == "R")
    left = Counter(_key(s) for s in protocol.sites if s.side == "L")
    if protocol.id == "platysma-bands-31":
        # one extra band on the left, nothing unpaired on the right
        assert not right - left
        extra = list((left - right).elements())
        assert len(extra) == 1 and extra[0][1] == "platysma"
    else:
        assert right == left


@pytest.mark.parametrize("protocol", protocols.all(), ids=lambda p: p.id)
def test_sides_fall_on_the_documented_half_of_each_diagram(protocol: Protocol) -> None:
    for site in protocol.sites:
        if site.side == "mid":
            assert site.x == 50, site
        elif site.diagram in ("face-front", "axillae", "neck-shoulders"):
            # the patient's right is on the viewer's left
            assert (site.x < 50) == (site.side == "R"), site
        elif site.diagram == "head-back":
            # seen from behind: the patient's left is on the viewer's left
            assert (site.x < 50) == (site.side == "L"), site
        elif site.diagram == "head-left":
            assert site.side == "L"
        elif site.diagram == "head-right":
            assert site.side == "R"


def test_procerus_sits_between_the_corrugators() -> None:
    p = protocols.get("glabellar-lines-botox-cosmetic")
    procerus = _by(p, muscle="procerus")[0]
    corrugators = _by(p, muscle="corrugator")
    assert procerus.x == 50
    assert min(s.x for s in corrugators) < procerus.x < max(s.x for s in corrugators)


def test_reference_says_coordinates_are_a_layout_choice() -> None:
    data = _reference.load("protocols")
    assert "LAYOUT CHOICE" in data["_coordinates"]
    assert set(data["diagrams"]) == set(protocols.DIAGRAMS)
    assert "layout choice" in (protocols.__doc__ or "")


# -- the loader refuses bad data -----------------------------------------------------------------


def _raw(protocol_id: str) -> dict[str, object]:
    data = _reference.load("protocols")
    return copy.deepcopy(next(p for p in data["protocols"] if p["id"] == protocol_id))


def test_loader_refuses_sites_that_do_not_add_up_to_the_reference_total() -> None:
    raw = _raw("glabellar-lines-dysport")
    raw["reference_total_units"] = 60
    with pytest.raises(ValueError, match="add up to 50 U but the reference total is 60 U"):
        protocols._protocol(raw)


def test_loader_refuses_an_unknown_indication_or_source() -> None:
    raw = _raw("blank")
    raw["indication"] = "wrinkles"
    with pytest.raises(ValueError, match="unknown indication"):
        protocols._protocol(raw)
    raw = _raw("upper-face")
    raw["sources"] = ["S27"]
    with pytest.raises(ValueError, match="unknown source S27"):
        protocols._protocol(raw)


def test_loader_refuses_a_site_outside_the_diagram() -> None:
    raw = _raw("lateral-canthal-lines")
    sites = raw["sites"]
    assert isinstance(sites, list)
    sites[0]["x"] = 120
    with pytest.raises(ValueError, match="outside 0-100"):
        protocols._protocol(raw)
