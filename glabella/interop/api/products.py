"""API: the products and protocols of the clinical core, with the sources of every figure.

Reference data, the same for every organization: any signed-in token may read it. Units are
decimal strings in the product's own units ("4.00"); they never convert between products.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from glabella.clinical import catalogue, protocols, sources
from glabella.clinical.catalogue import Product
from glabella.clinical.protocols import Protocol, Site
from glabella.interop.api.base import ERRORS, ApiError, units_text

router = Router(tags=["products"])


class SourceOut(Schema):
    id: str
    citation: str
    url: str | None = None


class ProductOut(Schema):
    id: str
    brand: str
    generic: str
    serotype: str
    form: str
    unit_system: str
    units_not_interchangeable: bool
    vial_units: list[int]
    diluent: str
    use_within_hours: str | None = None
    allergens: list[str]
    ready_to_use: bool
    notes: list[str]
    sources: list[SourceOut]


class SiteOut(Schema):
    area: str
    muscle: str
    side: str
    units: str
    count: int
    depth: str
    diagram: str
    x: str
    y: str
    units_range: list[str] | None = None
    note: str = ""


class ProtocolSummaryOut(Schema):
    id: str
    name: str
    indication: str
    indications: list[str]
    product_ids: list[str]
    total_units: str
    max_total_units: str | None = None
    site_count: int
    status: str


class ProtocolOut(ProtocolSummaryOut):
    sites: list[SiteOut]
    notes: list[str]
    sources: list[SourceOut]


def _sources(ids: tuple[str, ...]) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for source_id in ids:
        if sources.exists(source_id):
            s = sources.get(source_id)
            out.append({"id": s.id, "citation": s.citation, "url": s.url})
        else:  # pragma: no cover (the reference is checked at load)
            out.append({"id": source_id, "citation": source_id, "url": None})
    return out


def product_out(p: Product) -> dict[str, object]:
    return {
        "id": p.id,
        "brand": p.brand,
        "generic": p.generic,
        "serotype": p.serotype,
        "form": p.form,
        "unit_system": p.unit_system,
        "units_not_interchangeable": p.units_not_interchangeable.value,
        "vial_units": list(p.vial_units),
        "diluent": p.diluent,
        "use_within_hours": str(p.use_within_hours) if p.use_within_hours is not None else None,
        "allergens": sorted(p.allergens),
        "ready_to_use": p.ready_to_use,
        "notes": list(p.notes),
        "sources": _sources(p.sources),
    }


def _site(s: Site) -> dict[str, object]:
    return {
        "area": s.area,
        "muscle": s.muscle,
        "side": s.side,
        "units": units_text(s.units),
        "count": s.count,
        "depth": s.depth,
        "diagram": s.diagram,
        "x": str(s.x),
        "y": str(s.y),
        "units_range": [str(units_text(v)) for v in s.units_range] if s.units_range else None,
        "note": s.note,
    }


def protocol_summary(p: Protocol) -> dict[str, object]:
    return {
        "id": p.id,
        "name": p.name,
        "indication": p.indication,
        "indications": list(p.indications),
        "product_ids": list(p.product_ids),
        "total_units": units_text(p.total_units),
        "max_total_units": units_text(p.max_total_units),
        "site_count": p.site_count,
        "status": str(p.status),
    }


def protocol_out(p: Protocol) -> dict[str, object]:
    return {
        **protocol_summary(p),
        "sites": [_site(s) for s in p.sites],
        "notes": list(p.notes),
        "sources": _sources(tuple(dict.fromkeys(p.sources + p.max_total_sources))),
    }


@router.get("/products", response={200: list[ProductOut], **ERRORS}, summary="Products")
def list_products(request: HttpRequest) -> list[dict[str, object]]:
    """Every botulinum toxin product Glabella knows, with vial sizes and the sources."""
    return [product_out(p) for p in catalogue.products()]


@router.get("/protocols", response={200: list[ProtocolSummaryOut], **ERRORS}, summary="Protocols")
def list_protocols(request: HttpRequest) -> list[dict[str, object]]:
    """Every treatment protocol (without its sites; read one for those)."""
    return [protocol_summary(p) for p in protocols.all()]


@router.get(
    "/protocols/{protocol_id}",
    response={200: ProtocolOut, **ERRORS},
    summary="One protocol, with its sites and sources",
)
def get_protocol(request: HttpRequest, protocol_id: str) -> dict[str, object]:
    try:
        p = protocols.get(protocol_id)
    except KeyError:
        raise ApiError(
            "There is no such protocol. GET /api/v1/protocols lists them.",
            field="protocol_id",
            status=404,
        ) from None
    return protocol_out(p)
