"""The product catalogue carries every figure with its status and sources."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from glabella.clinical import _reference, catalogue, indications, sources
from glabella.clinical.catalogue import UnknownProduct

D = Decimal

EXPECTED_IDS = [
    "botox",
    "botox_cosmetic",
    "dysport",
    "xeomin",
    "jeuveau",
    "daxxify",
    "letybo",
    "myobloc",
]


def _walk(value: Any) -> list[Any]:
    """Every leaf value inside a dataclass / tuple / frozenset."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [leaf for f in dataclasses.fields(value) for leaf in _walk(getattr(value, f.name))]
    if isinstance(value, (tuple, list, frozenset, set)):
        return [leaf for item in value for leaf in _walk(item)]
    return [value]


# -- reference loading ---------------------------------------------------------------------------


def test_reference_statuses_map_to_the_three_shipped_statuses() -> None:
    assert _reference.status("confirmed") == "confirmed"
    assert _reference.status("secondary_or_derived") == "secondary"
    assert _reference.status("unconfirmed") == "unconfirmed"


@pytest.mark.parametrize("raw", ["", "secondary", "CONFIRMED", "verified", "unknown"])
def test_unknown_reference_status_raises(raw: str) -> None:
    with pytest.raises(ValueError, match="Unknown reference status"):
        _reference.status(raw)


def test_reference_numbers_load_as_decimal_never_float() -> None:
    data = _reference.load("products")
    leaves: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        else:
            leaves.append(node)

    walk(data)
    assert not [leaf for leaf in leaves if isinstance(leaf, float)]
    assert D("1.25") in leaves


def test_reference_load_returns_a_fresh_copy() -> None:
    first = _reference.load("products")
    first["products"].clear()
    assert _reference.load("products")["products"]


@pytest.mark.parametrize("name", ["../pyproject", "/etc/passwd", ".hidden", ""])
def test_reference_load_refuses_paths(name: str) -> None:
    with pytest.raises(ValueError):
        _reference.load(name)


# -- products ------------------------------------------------------------------------------------


def test_catalogue_has_exactly_the_eight_products_in_order() -> None:
    assert [p.id for p in catalogue.products()] == EXPECTED_IDS
    assert list(catalogue.PRODUCT_IDS) == EXPECTED_IDS


def test_unknown_product_raises_with_the_valid_ids() -> None:
    with pytest.raises(UnknownProduct) as exc:
        catalogue.product("botoxx")
    assert isinstance(exc.value, KeyError)
    message = str(exc.value)
    assert "'botoxx'" in message
    for pid in EXPECTED_IDS:
        assert pid in message


def test_products_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.product("botox").brand = "Other"  # type: ignore[misc]


def test_botox_and_botox_cosmetic_share_the_generic_family() -> None:
    assert catalogue.product("botox").generic == "onabotulinumtoxinA"
    assert catalogue.product("botox_cosmetic").generic == "onabotulinumtoxinA"
    assert catalogue.product("botox_cosmetic").family == "onabotulinumtoxinA"
    generics = [p.generic for p in catalogue.products()]
    assert len(set(generics)) == 7


@pytest.mark.parametrize(
    ("pid", "brand", "generic", "serotype", "vials"),
    [
        ("botox", "Botox", "onabotulinumtoxinA", "A", (100, 200)),
        ("botox_cosmetic", "Botox Cosmetic", "onabotulinumtoxinA", "A", (50, 100)),
        ("dysport", "Dysport", "abobotulinumtoxinA", "A", (300, 500)),
        ("xeomin", "Xeomin", "incobotulinumtoxinA", "A", (50, 100, 200)),
        ("jeuveau", "Jeuveau", "prabotulinumtoxinA-xvfs", "A", (100,)),
        ("daxxify", "Daxxify", "daxibotulinumtoxinA-lanm", "A", (50, 100)),
        ("letybo", "Letybo", "letibotulinumtoxinA-wlbg", "A", (50, 100)),
        ("myobloc", "Myobloc", "rimabotulinumtoxinB", "B", (2500, 5000, 10000)),
    ],
)
def test_product_identity_and_vial_sizes(
    pid: str, brand: str, generic: str, serotype: str, vials: tuple[int, ...]
) -> None:
    item = catalogue.product(pid)
    assert (item.brand, item.generic, item.serotype, item.vial_units) == (
        brand,
        generic,
        serotype,
        vials,
    )
    assert brand in item.unit_system or generic in item.unit_system


def test_xeomin_200_unit_vial_is_unconfirmed() -> None:
    xeomin = catalogue.product("xeomin")
    assert xeomin.vial_status(200) == "unconfirmed"
    assert xeomin.vial_status(100) == "confirmed"
    with pytest.raises(ValueError, match="does not come in a 300 U vial"):
        xeomin.vial_status(300)


@pytest.mark.parametrize(
    ("pid", "hours", "status"),
    [
        ("botox", D(24), "confirmed"),
        ("botox_cosmetic", D(24), "secondary"),
        ("dysport", D(24), "secondary"),
        ("xeomin", D(24), "confirmed"),
        ("jeuveau", D(24), "confirmed"),
        ("daxxify", D(72), "unconfirmed"),
        ("letybo", D(24), "confirmed"),
        ("myobloc", None, None),
    ],
)
def test_use_within_hours_and_status(pid: str, hours: Decimal | None, status: str | None) -> None:
    item = catalogue.product(pid)
    assert item.use_within_hours == hours
    assert item.use_within_status == status
    if hours is not None:
        assert isinstance(item.use_within_hours, Decimal)


def test_myobloc_is_ready_to_use_with_an_unconfirmed_dilution_limit() -> None:
    myobloc = catalogue.product("myobloc")
    assert myobloc.ready_to_use
    assert myobloc.vial_volume_ml(5000) == D(1)
    assert myobloc.vial_volume_ml(2500) == D("0.5")
    assert myobloc.vial_volume_ml(10000) == D(2)
    assert myobloc.use_within_hours_after_dilution == D(4)
    assert myobloc.use_within_after_dilution_status == "unconfirmed"
    assert not catalogue.product("botox").ready_to_use
    assert catalogue.product("botox").vial_volume_ml(100) is None


def test_older_four_hour_label_wording_is_noted() -> None:
    for pid in ("botox_cosmetic", "dysport"):
        assert any("4 h" in n for n in catalogue.product(pid).notes), pid


@pytest.mark.parametrize(
    ("pid", "status"),
    [
        ("botox", "secondary"),
        ("botox_cosmetic", "secondary"),
        ("dysport", "secondary"),
        ("xeomin", "confirmed"),
        ("jeuveau", "unconfirmed"),
        ("daxxify", "unconfirmed"),
        ("letybo", "unconfirmed"),
        ("myobloc", "secondary"),
    ],
)
def test_unopened_storage_carries_its_status(pid: str, status: str) -> None:
    storage = catalogue.product(pid).storage
    assert storage.status == status
    assert storage.text


def test_xeomin_storage_needs_no_cold_chain() -> None:
    text = catalogue.product("xeomin").storage.text
    assert "Room temperature" in text and "freezer" in text


def test_shelf_life_figures_carry_their_status() -> None:
    botox = catalogue.product("botox")
    assert botox.shelf_life_for(100) == catalogue.ShelfLife(100, 36, "unconfirmed")
    assert botox.shelf_life_for(200) == catalogue.ShelfLife(200, 24, "unconfirmed")
    cosmetic = catalogue.product("botox_cosmetic")
    assert cosmetic.shelf_life_for(50) == catalogue.ShelfLife(50, 24, "unconfirmed")
    xeomin = catalogue.product("xeomin")
    assert xeomin.shelf_life_for(100) == catalogue.ShelfLife(None, 36, "secondary")
    assert catalogue.product("dysport").shelf_life_for(300) is None


def test_daxxify_diluent_is_unconfirmed() -> None:
    assert catalogue.product("daxxify").diluent_status == "unconfirmed"
    assert catalogue.product("botox").diluent_status == "confirmed"


@pytest.mark.parametrize(
    ("pid", "allergens"),
    [
        ("botox", {"albumin"}),
        ("botox_cosmetic", {"albumin"}),
        ("dysport", {"albumin", "cow-milk-protein"}),
        ("xeomin", {"albumin"}),
        ("jeuveau", {"albumin"}),
        ("daxxify", set()),
        ("letybo", set()),
        ("myobloc", {"albumin"}),
    ],
)
def test_allergens(pid: str, allergens: set[str]) -> None:
    item = catalogue.product(pid)
    assert item.allergens == frozenset(allergens)
    assert item.allergens <= catalogue.ALLERGENS


def test_allergen_statuses_and_sources() -> None:
    dysport = catalogue.product("dysport")
    assert dysport.allergen_status("cow-milk-protein") == "confirmed"
    assert dict(dysport.allergen_sources)["cow-milk-protein"] == ("S33",)
    # The reference is unsure about Xeomin albumin: shipped, marked unconfirmed.
    assert catalogue.product("xeomin").allergen_status("albumin") == "unconfirmed"
    assert catalogue.product("botox").allergen_status("albumin") == "confirmed"
    assert catalogue.product("daxxify").allergen_status("albumin") is None


def test_every_product_states_units_are_not_interchangeable() -> None:
    for item in catalogue.products():
        assert item.units_not_interchangeable.value is True
        assert item.units_not_interchangeable.sources
    assert catalogue.product("botox").units_not_interchangeable.status == "secondary"
    assert catalogue.product("dysport").units_not_interchangeable.status == "confirmed"


def test_daxxify_reconstitution_rows_keep_the_table_figure_unconfirmed() -> None:
    rows = catalogue.product("daxxify").reconstitution
    by_key = {(r.vial_units, r.diluent_ml): r for r in rows}
    assert by_key[(100, D("1.2"))].units_per_0_1ml == D(8)
    assert by_key[(100, D("1.2"))].status == "unconfirmed"
    assert by_key[(50, D("0.6"))].units_per_0_1ml == D(8)
    assert by_key[(50, D("0.6"))].status == "unconfirmed"


def test_dysport_glabellar_rows_keep_the_label_wording() -> None:
    rows = catalogue.product("dysport").reconstitution
    row = next(r for r in rows if (r.vial_units, r.diluent_ml) == (300, D("2.5")))
    assert row.units_per_0_1ml == D(12)
    assert row.label_expression == "10 U per 0.08 mL"
    assert row.status == "confirmed"


def test_botox_label_dilutions_are_confirmed_and_arithmetic_rows_secondary() -> None:
    rows = {(r.vial_units, r.diluent_ml): r for r in catalogue.product("botox").reconstitution}
    assert rows[(100, D(2))].status == "confirmed"
    assert rows[(200, D(4))].status == "confirmed"
    assert rows[(100, D(4))].status == "confirmed"
    assert rows[(100, D(1))].status == "secondary"
    assert rows[(100, D(10))].units_per_0_1ml == D(1)  # OAB: 100 U in 10 mL = 10 U/mL


def test_every_reconstitution_row_is_for_a_vial_the_product_comes_in() -> None:
    for item in catalogue.products():
        assert item.reconstitution, item.id
        for row in item.reconstitution:
            assert row.vial_units in item.vial_units, (item.id, row)
            assert row.units_per_0_1ml > 0


def test_no_float_anywhere_in_the_catalogue() -> None:
    for item in catalogue.products():
        assert not [leaf for leaf in _walk(item) if isinstance(leaf, float)], item.id


def test_every_status_in_the_catalogue_is_one_of_the_three() -> None:
    allowed = {"confirmed", "secondary", "unconfirmed"}
    for item in catalogue.products():
        found = [item.diluent_status, item.storage.status, item.units_not_interchangeable.status]
        found += [s for _, s in item.vial_unit_statuses]
        found += [s for _, s in item.allergen_statuses]
        found += [r.status for r in item.reconstitution]
        found += [s.status for s in item.shelf_life]
        found += [item.use_within_status or "confirmed"]
        assert set(found) <= allowed, item.id


# -- sources -------------------------------------------------------------------------------------


def test_every_product_source_id_resolves() -> None:
    for item in catalogue.products():
        cited = list(item.sources) + list(item.units_not_interchangeable.sources)
        cited += [sid for _, ids in item.allergen_sources for sid in ids]
        for sid in cited:
            assert sources.get(sid).id == sid, (item.id, sid)


def test_sources_cover_every_id_listed_in_the_reference() -> None:
    ids = [s.id for s in sources.all()]
    assert len(ids) == len(set(ids)) == 103
    expected = [f"S{n}" for n in range(1, 107) if n not in (27, 65, 72)]
    assert ids == expected


def test_source_citations_and_urls() -> None:
    s1 = sources.get("S1")
    assert s1.citation.startswith("drugs.com/dosage/botox-cosmetic.html")
    assert s1.url == "https://drugs.com/dosage/botox-cosmetic.html"
    assert sources.get("S13").url is None
    for source in sources.all():
        assert source.citation
        assert source.url is None or source.url.startswith("https://")


def test_unknown_source_raises_key_error() -> None:
    with pytest.raises(KeyError, match="S999"):
        sources.get("S999")
    assert not sources.exists("S27")
    assert sources.exists("S105")


def test_brand_name_reads_the_brand_and_keeps_an_unknown_id_as_recorded():
    assert catalogue.brand_name("botox") == catalogue.product("botox").brand
    assert catalogue.brand_name("withdrawn_toxin") == "withdrawn_toxin"


def test_indication_display_name_reads_the_name_and_keeps_an_unknown_id_as_recorded():
    assert indications.display_name("chronic-migraine") == indications.get("chronic-migraine").name
    assert indications.display_name("retired-indication") == "retired-indication"
    assert indications.display_name("") == ""
