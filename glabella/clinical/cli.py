"""Command functions over the clinical core, for the console / Django management layer.

Each command takes its arguments (without the program name), an output stream and an error
stream, and returns an exit code: 0 on success, 2 on bad input (with ONE clear line on ``err``).
Nothing here touches Django, files or the network.

- ``protocols_command``: ``[PROTOCOL_ID] [--json]``
- ``dilution_command``: ``PRODUCT VIAL_UNITS DILUENT_ML [--json]``
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NoReturn, TextIO

from glabella.clinical import catalogue, protocols, reconstitution, sources

__all__ = ["dilution_command", "protocols_command"]


class _UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one line and exit code 2 (never SystemExit)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _UsageError(f"{self.prog}: {(message or 'exit').strip()}")


def _parser(prog: str, description: str) -> _Parser:
    parser = _Parser(prog=prog, description=description, add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _fail(err: TextIO, message: str) -> int:
    err.write(" ".join(message.split()) + "\n")
    return 2


# -- display helpers (rounding here is for display only) -----------------------------------------


def _num(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros: 500, 8.333..., 1.25."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _round(value: Decimal, places: str = "0.001") -> str:
    return _num(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines


def _source_lines(ids: Sequence[str]) -> list[str]:
    return [f"  [{sid}] {sources.get(sid).citation}" for sid in dict.fromkeys(ids)]


# -- protocols -----------------------------------------------------------------------------------


def _site_json(site: protocols.Site) -> dict[str, Any]:
    return {
        "area": site.area,
        "muscle": site.muscle,
        "side": site.side,
        "units": _num(site.units),
        "count": site.count,
        "depth": site.depth,
        "x": _num(site.x),
        "y": _num(site.y),
        "diagram": site.diagram,
        "units_range": (None if site.units_range is None else [_num(v) for v in site.units_range]),
        "note": site.note,
    }


def _protocol_json(p: protocols.Protocol, *, with_sites: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "indication": p.indication,
        "indications": list(p.indications),
        "product_ids": list(p.product_ids),
        "total_units": _num(p.total_units),
        "total_status": p.total_status,
        "site_count": p.site_count,
        "max_total_units": None if p.max_total_units is None else _num(p.max_total_units),
        "max_total_status": p.max_total_status,
        "max_total_sources": list(p.max_total_sources),
        "status": p.status,
        "sources": list(p.sources),
    }
    if with_sites:
        data["notes"] = list(p.notes)
        data["units_by_area"] = {k: _num(v) for k, v in p.units_by_area().items()}
        data["units_by_side"] = {k: _num(v) for k, v in p.units_by_side().items()}
        data["sites"] = [_site_json(s) for s in p.sites]
        data["source_citations"] = {
            sid: sources.get(sid).citation
            for sid in dict.fromkeys((*p.sources, *p.max_total_sources))
        }
    return data


def _brands(product_ids: Sequence[str]) -> str:
    return ", ".join(catalogue.product(pid).brand for pid in product_ids)


def _protocol_list_text(out: TextIO) -> None:
    rows = [
        [
            p.id,
            p.name,
            p.indication,
            _brands(p.product_ids) if p.id != "blank" else "any",
            f"{_num(p.total_units)} U",
            str(p.site_count),
        ]
        for p in protocols.all()
    ]
    headers = ["id", "name", "indication", "products", "total", "sites"]
    out.write("\n".join(_table(headers, rows)) + "\n")


def _protocol_detail_text(p: protocols.Protocol, out: TextIO) -> None:
    lines = [
        f"{p.name}",
        f"id: {p.id}",
        f"indication: {p.indication}"
        + (f" (covers: {', '.join(p.indications)})" if len(p.indications) > 1 else ""),
        f"products: {_brands(p.product_ids)}",
        f"site map status: {p.status}",
        f"total: {_num(p.total_units)} U at {p.site_count} sites"
        + (f" (status: {p.total_status})" if p.total_status else " (no fixed reference total)"),
    ]
    if p.max_total_units is not None:
        lines.append(
            f"maximum: {_num(p.max_total_units)} U (status: {p.max_total_status}; "
            f"sources: {', '.join(p.max_total_sources)})"
        )
    lines.append("")
    rows = []
    for i, s in enumerate(p.sites, start=1):
        rows.append(
            [
                str(i),
                s.area,
                s.muscle,
                s.side,
                _num(s.units),
                str(s.count),
                s.depth,
                s.diagram,
                _num(s.x),
                _num(s.y),
                "" if s.units_range is None else "-".join(_num(v) for v in s.units_range),
                s.note,
            ]
        )
    if rows:
        headers = [
            "#",
            "area",
            "muscle",
            "side",
            "units",
            "count",
            "depth",
            "diagram",
            "x",
            "y",
            "range",
            "note",
        ]
        lines += _table(headers, rows)
        lines.append("")
        lines.append("Totals by area:")
        lines += [f"  {k}: {_num(v)} U" for k, v in p.units_by_area().items()]
        lines.append("Totals by side:")
        lines += [f"  {k}: {_num(v)} U" for k, v in p.units_by_side().items()]
    else:
        lines.append("No preset sites.")
    if p.notes:
        lines.append("Notes:")
        lines += [f"  - {n}" for n in p.notes]
    cited = (*p.sources, *p.max_total_sources)
    if cited:
        lines.append("Sources:")
        lines += _source_lines(cited)
    lines.append("Coordinates are a layout choice for drawing, not a dose.")
    out.write("\n".join(lines) + "\n")


def protocols_command(argv: list[str], out: TextIO, err: TextIO) -> int:
    """``protocols [PROTOCOL_ID] [--json]``: list protocols, or show one with its sites.

    Returns 0, or 2 with one line on ``err`` for an unknown protocol or bad arguments.
    """
    parser = _parser("glabella protocols", "List treatment protocols, or show one in full.")
    parser.add_argument("protocol_id", nargs="?", metavar="PROTOCOL_ID")
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(err, str(exc))
    if args.help:
        out.write(parser.format_help())
        return 0
    if args.protocol_id is None:
        if args.json:
            items = [_protocol_json(p, with_sites=False) for p in protocols.all()]
            out.write(json.dumps(items, indent=2, ensure_ascii=False) + "\n")
        else:
            _protocol_list_text(out)
        return 0
    try:
        protocol = protocols.get(args.protocol_id)
    except protocols.UnknownProtocol as exc:
        return _fail(err, f"glabella protocols: {exc}")
    if args.json:
        payload = _protocol_json(protocol, with_sites=True)
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        _protocol_detail_text(protocol, out)
    return 0


# -- dilution ------------------------------------------------------------------------------------


def _parse_decimal(text: str, what: str, example: str = "2.5") -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _UsageError(f"{what} must be a number, e.g. {example} (got {text!r})") from None
    if not value.is_finite():
        raise _UsageError(f"{what} must be a real number (got {text!r})")
    return value


def _parse_vial_units(text: str) -> int:
    value = _parse_decimal(text, "VIAL_UNITS", "100")
    if value != value.to_integral_value():
        raise _UsageError(f"VIAL_UNITS must be a whole number of units, e.g. 100 (got {text!r})")
    if value <= 0:
        raise _UsageError(f"VIAL_UNITS must be more than 0 (got {text!r})")
    return int(value)


def _common_doses(product_id: str, info: reconstitution.ConcentrationInfo) -> list[Decimal]:
    """Doses worth tabulating: per-site units and totals of the product's protocols, up to
    the vial's units; when there are none, the units in 0.1, 0.2, 0.5 and 1 mL."""
    doses: set[Decimal] = set()
    for p in protocols.all():
        if product_id not in p.product_ids or p.id == "blank":
            continue
        doses.update(s.units for s in p.sites if s.units > 0)
        if p.total_units > 0:
            doses.add(p.total_units)
    limit = Decimal(info.vial_units)
    chosen = sorted(d for d in doses if d <= limit)
    if not chosen:
        chosen = [
            info.units_per_0_1ml * k for k in (1, 2, 5, 10) if info.units_per_0_1ml * k <= limit
        ]
    return chosen


def dilution_command(argv: list[str], out: TextIO, err: TextIO) -> int:
    """``dilution PRODUCT VIAL_UNITS DILUENT_ML [--json]``: concentration of a reconstituted vial.

    Prints units per 0.1 mL and per mL, whether the figure is the label table's or arithmetic,
    its status and sources, the use-within time, and units -> volume for common doses. For
    Myobloc (a ready-to-use solution) DILUENT_ML is the saline added, 0 for undiluted.
    Returns 0, or 2 with one line on ``err`` for bad input.
    """
    parser = _parser(
        "glabella dilution", "Concentration of a reconstituted vial and volumes for common doses."
    )
    parser.add_argument("product", metavar="PRODUCT", help="product id, e.g. botox")
    parser.add_argument("vial_units", metavar="VIAL_UNITS", help="vial size in units, e.g. 100")
    parser.add_argument("diluent_ml", metavar="DILUENT_ML", help="saline added in mL, e.g. 2.5")
    if "-h" in argv or "--help" in argv:
        out.write(parser.format_help())
        return 0
    try:
        args = parser.parse_args(argv)
        product = catalogue.product(args.product)
        vial_units = _parse_vial_units(args.vial_units)
        diluent_ml = _parse_decimal(args.diluent_ml, "DILUENT_ML")
        info = reconstitution.concentration_info(product.id, vial_units, diluent_ml)
    except _UsageError as exc:
        message = str(exc)
        if not message.startswith("glabella dilution:"):
            message = f"glabella dilution: {message}"
        return _fail(err, message)
    except catalogue.UnknownProduct as exc:
        return _fail(err, f"glabella dilution: {exc}")
    except reconstitution.ReconstitutionError as exc:
        return _fail(err, f"glabella dilution: {exc}")

    doses = _common_doses(product.id, info)
    volumes = [(d, reconstitution.volume_ml(product.id, d, info.units_per_0_1ml)) for d in doses]
    if product.use_within_hours is not None:
        use_within = (
            f"{_num(product.use_within_hours)} h after reconstitution"
            + (f", {product.reconstituted_storage}" if product.reconstituted_storage else "")
            + f" (status: {product.use_within_status})"
        )
    elif product.use_within_hours_after_dilution is not None:
        use_within = (
            "ready-to-use solution, single-dose vial, one session per patient; if diluted, use "
            f"within {_num(product.use_within_hours_after_dilution)} h "
            f"(status: {product.use_within_after_dilution_status})"
        )
    else:
        use_within = "no use-within figure in the reference"

    if args.json:
        payload: dict[str, Any] = {
            "product_id": product.id,
            "brand": product.brand,
            "vial_units": vial_units,
            "diluent_ml": _num(diluent_ml),
            "units_per_0_1ml": _num(info.units_per_0_1ml),
            "units_per_ml": _num(info.units_per_ml),
            "basis": info.basis,
            "status": info.status,
            "arithmetic_units_per_0_1ml": _num(info.arithmetic_units_per_0_1ml),
            "differs_from_arithmetic": info.differs_from_arithmetic,
            "use_for": info.use_for,
            "label_expression": info.label_expression,
            "note": info.note,
            "sources": list(info.sources),
            "use_within_hours": (
                None if product.use_within_hours is None else _num(product.use_within_hours)
            ),
            "use_within_status": product.use_within_status,
            "use_within_hours_after_dilution": (
                None
                if product.use_within_hours_after_dilution is None
                else _num(product.use_within_hours_after_dilution)
            ),
            "use_within_after_dilution_status": product.use_within_after_dilution_status,
            "doses": [
                {"units": _num(d), "volume_ml": _num(v), "volume_ml_display": _round(v)}
                for d, v in volumes
            ],
        }
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return 0

    if product.ready_to_use:
        head = (
            f"{product.brand} {vial_units} U vial (ready-to-use solution)"
            f" + {_num(diluent_ml)} mL saline"
        )
    else:
        head = f"{product.brand} {vial_units} U vial + {_num(diluent_ml)} mL {product.diluent}"
    if info.basis == "table":
        basis = "reconstitution table"
        extras = [x for x in (info.use_for and f"use for: {info.use_for}",) if x]
        if info.label_expression:
            extras.append(f"label: {info.label_expression}")
        if extras:
            basis += f" ({'; '.join(extras)})"
    else:
        basis = "arithmetic (vial units / diluent mL / 10): not a row of the label table"
    lines = [
        head,
        f"Concentration: {_round(info.units_per_0_1ml)} U per 0.1 mL"
        f" = {_round(info.units_per_ml)} U per mL",
        f"Basis: {basis}",
        f"Status: {info.status}",
    ]
    if info.differs_from_arithmetic and info.basis == "table":
        lines.append(
            f"WARNING: arithmetic gives {_round(info.arithmetic_units_per_0_1ml)} U per 0.1 mL; "
            "the table figure is shown"
            + (
                " and is UNCONFIRMED: verify against the current label"
                if info.status == "unconfirmed"
                else ""
            )
        )
    if info.note:
        lines.append(f"Note: {info.note}")
    lines.append(f"Use within: {use_within}")
    lines.append("Sources:")
    lines += _source_lines(info.sources)
    if volumes:
        lines.append("Units -> volume (volumes rounded to 0.001 mL for display):")
        lines += [
            "  " + line
            for line in _table(
                ["units", "volume"], [[f"{_num(d)} U", f"{_round(v)} mL"] for d, v in volumes]
            )
        ]
    out.write("\n".join(lines) + "\n")
    return 0
