"""The printable treatment record: one A4 PDF per session, built by the app with reportlab.

What it holds, top to bottom: the clinic, the patient, the treatment and its status (a draft
carries a "DRAFT — not a signed record" watermark, a voided session "VOIDED — entered in error"
with the reason); the vial (lot, expiry, vial size, diluent, concentration); the diagrams with
the numbered points; a table of every point; totals per area, per side and for the session in
the product's own units; the dose checks at signing and the overrides; the consent; the
signatures; the amendments with what changed. Every page names the patient and ends with
"Printed by <user> on <date> — Glabella" and "Page n of N".

Everything on it is real text (a test extracts it). The font is Bitstream Vera, which ships
inside reportlab, so the PDF looks the same on every printer and nothing is downloaded;
characters Vera lacks are drawn from the standard Symbol font (arrows, Greek) or, failing that,
as their unaccented letter.

The diagrams are the charting page's own SVG (:func:`glabella.charting.diagrams.svg`) drawn
onto the PDF by :class:`SvgFlowable`, a small renderer for exactly the SVG subset that module
writes (groups with presentation attributes, paths of M/L/C/Z, circles, text), so the paper
and the screen always show the same drawing.

This module only reads: it never saves a model.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any
from xml.etree import ElementTree as ET

import reportlab
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.rl_codecs import RL_Codecs
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from glabella.charting import diagrams, services
from glabella.charting.models import Depth, Status, TreatmentSession
from glabella.clinical import catalogue, indications, protocols, reconstitution
from glabella.consent import services as consent_services
from glabella.consent.categories import CATEGORY_LABELS
from glabella.web.templatetags.glabella_tags import units as plain_units

__all__ = ["render_pdf"]

# --- fonts and text ---------------------------------------------------------------------------

FONT = "GlabellaSans"
BOLD = "GlabellaSans-Bold"
ITALIC = "GlabellaSans-Italic"
BOLD_ITALIC = "GlabellaSans-BoldItalic"


@cache
def _fonts() -> frozenset[int]:
    """Register Bitstream Vera (shipped with reportlab); return the code points it covers."""
    folder = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    for name, file in (
        (FONT, "Vera.ttf"),
        (BOLD, "VeraBd.ttf"),
        (ITALIC, "VeraIt.ttf"),
        (BOLD_ITALIC, "VeraBI.ttf"),
    ):
        pdfmetrics.registerFont(TTFont(name, os.path.join(folder, file)))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=BOLD, italic=ITALIC, boldItalic=BOLD_ITALIC
    )
    RL_Codecs.register()
    face = pdfmetrics.getFont(FONT).face  # type: ignore[attr-defined]
    return frozenset(face.charToGlyph)


def _in_symbol(ch: str) -> bool:
    try:
        ch.encode("symbol")
    except UnicodeError:
        return False
    return True


def _fallback(ch: str) -> str:
    """The letter without its accent (ő -> o), else "?": for characters Vera cannot draw."""
    covered = _fonts()
    base = "".join(
        c for c in unicodedata.normalize("NFKD", ch) if ord(c) in covered and c.isprintable()
    )
    return base or "?"


def plain(text: object) -> str:
    """Text for canvas drawing: every character drawable in the record's font."""
    covered = _fonts()
    out = []
    for ch in str(text):
        if ord(ch) in covered or ch in "\n\t ":
            out.append(ch)
        elif ch == "→":
            out.append("->")
        else:
            out.append(_fallback(ch))
    return "".join(out)


def markup(text: object) -> str:
    """Text for a Paragraph: escaped, with characters Vera lacks drawn from Symbol."""
    covered = _fonts()
    out = []
    for ch in str(text):
        if ord(ch) in covered:
            out.append({"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(ch, ch))
        elif ch == "\n":
            out.append("<br/>")
        elif _in_symbol(ch):
            out.append(f'<font name="Symbol">{ch}</font>')
        else:
            out.append(_fallback(ch))
    return "".join(out)


# --- display helpers --------------------------------------------------------------------------

SIDES = {"L": "Left", "R": "Right", "mid": "Midline"}
DEPTHS = dict(Depth.choices)
SEVERITY = {"block": "Block", "warn": "Warning", "info": "Information"}


def u(value: object) -> str:
    """Units without trailing zeros, with the unit sign: 12.50 -> '12.5 U'."""
    return f"{plain_units(value)} U"


def ml(value: Decimal | None) -> str:
    """Millilitres, rounded for display only (to 0.001 mL), without trailing zeros."""
    if value is None:
        return ""
    shown = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return f"{plain_units(shown)} mL"


def day(value: date | str | None) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    return f"{value:%d/%m/%Y}"


def _tz(session: TreatmentSession) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(session.clinic.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def moment(value: datetime | None, tz: zoneinfo.ZoneInfo | None) -> str:
    if value is None:
        return ""
    local = timezone.localtime(value, tz) if tz is not None else timezone.localtime(value)
    return local.strftime("%d/%m/%Y %H:%M %Z").strip()


def person(user: Any) -> str:
    return str(user) if user is not None else ""


def area_name(area: str) -> str:
    return area[:1].upper() + area[1:] if area else ""


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- what the record says: gathered first, then laid out ---------------------------------------


@dataclass
class PointRow:
    number: int
    diagram: str
    area: str
    muscle: str
    side: str
    units: str
    depth: str
    volume: str
    vial: str = ""  # "#12 · lot C1234AB": the vial the point was drawn from


@dataclass
class Amend:
    number: int
    kind: str
    by: str
    at: str
    reason: str
    changes: list[str]


@dataclass
class Record:
    session: TreatmentSession
    clinic_name: str
    clinic_address: list[str]
    organization: str
    patient_name: str
    patient_dob: str
    patient_age: int
    treated_on: str
    indication: str
    protocol: str
    product_brand: str
    product_generic: str
    product_units: str
    status: str
    status_label: str
    practitioner: str
    prescriber: str
    flags: list[str]
    pre_notes: str
    lot_number: str
    lot_expiry: str
    vial: str
    diluent: str
    concentration: str
    points: list[PointRow]
    diagram_ids: list[str]
    svg_points: dict[str, list[diagrams.SvgPoint]]
    total: str
    total_volume: str
    by_area: list[tuple[str, str]]
    by_side: list[tuple[str, str]]
    findings: list[dict[str, str]]
    findings_live: bool
    overrides: list[dict[str, str]]
    consent: dict[str, str] | None
    consent_on_file: bool
    signed_by: str
    signed_at: str
    void_reason: str
    voided_at: str
    voided_by: str
    amendments: list[Amend]
    printed_by: str
    printed_at: str
    reference: str
    lots: list[str] = field(default_factory=list)  # lots and vials the points were drawn from
    imported: str = ""  # where an imported past treatment came from ("" when charted here)


def _protocol_name(protocol_id: str) -> str:
    if not protocol_id:
        return ""
    try:
        return protocols.get(protocol_id).name
    except KeyError:
        return protocol_id


_indication_name = indications.display_name


_DETAIL_LABELS = {
    "status": "Status",
    "lot_number": "Lot number",
    "lot_expiry": "Lot expiry",
    "vial_units": "Vial size",
    "diluent_ml": "Diluent",
    "pre_notes": "Pre-treatment notes",
}


def _detail_value(key: str, value: Any) -> str:
    if value in (None, ""):
        return "none"
    if key == "lot_expiry":
        return day(value)
    if key == "vial_units":
        return u(value)
    if key == "diluent_ml":
        return f"{plain_units(value)} mL"
    if key == "status":
        return str(dict(Status.choices).get(value, value))
    if key == "pre_notes":
        text = str(value).strip().replace("\n", " ")
        return f"“{text[:80]}{'…' if len(text) > 80 else ''}”"
    return str(value)


def _point_label(p: dict[str, Any]) -> str:
    return f"Point {p['number']} ({p.get('muscle', '')}, {SIDES.get(p.get('side', ''), '')})"


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What an amendment changed, in words: "Point 1 (corrugator, Right): 4 U → 5 U"."""
    out: list[str] = []
    for key, label in _DETAIL_LABELS.items():
        if key in before or key in after:
            old, new = before.get(key), after.get(key)
            if old != new:
                out.append(f"{label}: {_detail_value(key, old)} → {_detail_value(key, new)}")
    old_points = {p["number"]: p for p in before.get("points", [])}
    new_points = {p["number"]: p for p in after.get("points", [])}
    for n in sorted(old_points.keys() | new_points.keys()):
        old, new = old_points.get(n), new_points.get(n)
        if old is not None and new is None:
            out.append(f"{_point_label(old)}: {u(old['units'])} → removed")
        elif new is not None and old is None:
            out.append(f"{_point_label(new)}: added, {u(new['units'])}")
        elif old is not None and new is not None:
            if Decimal(str(old["units"])) != Decimal(str(new["units"])):
                out.append(f"{_point_label(new)}: {u(old['units'])} → {u(new['units'])}")
            for key, label in (("depth", "depth"), ("area", "area"), ("muscle", "muscle")):
                if old.get(key) != new.get(key):
                    out.append(f"{_point_label(new)}: {label} {old.get(key)} → {new.get(key)}")
            if old.get("side") != new.get("side"):
                out.append(
                    f"{_point_label(new)}: side {SIDES.get(old.get('side', ''), '')} → "
                    f"{SIDES.get(new.get('side', ''), '')}"
                )
    return out


def gather(
    session: TreatmentSession, *, printed_by: str = "", printed_at: datetime | None = None
) -> Record:
    """Everything the record shows, as display strings (reads only)."""
    tz = _tz(session)
    patient = session.patient
    product = catalogue.product(session.product_id)
    points = services.live_points(session)
    t = services.totals(session, points)
    concentration = t.concentration

    rows: list[PointRow] = []
    svg_points: dict[str, list[diagrams.SvgPoint]] = {}
    for p in points:
        volume = ""
        per_point = p.vial.concentration if p.vial is not None else None
        if per_point or concentration:
            volume = ml(
                reconstitution.volume_ml(session.product_id, p.units, per_point or concentration)
            )
        rows.append(
            PointRow(
                number=p.number,
                diagram=p.diagram,
                area=area_name(p.area),
                muscle=p.muscle,
                side=SIDES.get(p.side, p.side),
                units=u(p.units),
                depth=str(DEPTHS.get(p.depth, p.depth)),
                volume=volume,
                vial=f"#{p.vial_id} · lot {p.vial.lot.lot_number}" if p.vial is not None else "",
            )
        )
        svg_points.setdefault(p.diagram, []).append(
            diagrams.SvgPoint(p.number, p.x, p.y, units_label=u(p.units))
        )
    diagram_ids = [d for d in diagrams.ids() if d in svg_points]  # catalogue order

    live = session.status == Status.DRAFT
    if live:
        found = [
            {"rule": f.rule, "severity": f.severity, "message": f.message, "source": f.source}
            for f in services.findings(session)
        ]
    else:
        found = [{k: str(v) for k, v in f.items()} for f in (session.findings_at_signing or [])]

    overrides = [
        {
            "rule": o.rule,
            "message": o.message,
            "reason": o.reason,
            "by": person(o.by),
            "at": moment(o.at, tz),
        }
        for o in session.overrides.select_related("by").order_by("at")
    ]

    consent = session.consent
    on_file = False
    if consent is None and session.status == Status.DRAFT:
        category = consent_services.category_for_indication(session.indication)
        consent = consent_services.valid_consent(patient, category, session.treated_on)
        on_file = consent is not None
    consent_row = None
    if consent is not None:
        consent_row = {
            "category": CATEGORY_LABELS.get(consent.category, consent.category),
            "version": str(consent.template_version),
            "signed_on": day(consent.signed_on),
            "valid_until": day(consent.valid_until),
            "method": str(consent.get_method_display()),
            "hash": consent.text_hash[:12],
        }

    amendments = [
        Amend(
            number=a.number,
            kind=a.kind,
            by=person(a.by),
            at=moment(a.at, tz),
            reason=a.reason,
            changes=changes(a.before or {}, a.after or {}),
        )
        for a in session.amendments.select_related("by").order_by("number")
    ]
    void = next((a for a in reversed(amendments) if a.kind == "void"), None)

    vial = f"{session.vial_units} U" if session.vial_units else ""
    diluent = ""
    if session.diluent_ml is not None:
        diluent = f"{plain_units(session.diluent_ml)} mL {product.diluent}"
    conc = f"{plain_units(concentration)} U per 0.1 mL" if concentration else ""

    address = [line.strip() for line in (session.clinic.address or "").splitlines() if line.strip()]
    return Record(
        session=session,
        clinic_name=session.clinic.name,
        clinic_address=address,
        organization=str(session.organization),
        patient_name=str(patient),
        patient_dob=day(patient.date_of_birth),
        patient_age=age_on(patient.date_of_birth, session.treated_on),
        treated_on=day(session.treated_on),
        indication=_indication_name(session.indication),
        protocol=_protocol_name(session.protocol_id),
        product_brand=product.brand,
        product_generic=product.generic,
        product_units=product.unit_system,
        status=session.status,
        status_label=str(session.get_status_display()),
        practitioner=person(session.practitioner),
        prescriber=person(session.prescriber),
        flags=[str(f).replace("-", " ") for f in (session.flags or [])],
        pre_notes=session.pre_notes,
        lot_number=session.lot_number,
        lot_expiry=day(session.lot_expiry),
        vial=vial,
        diluent=diluent,
        concentration=conc,
        points=rows,
        diagram_ids=diagram_ids,
        svg_points=svg_points,
        total=u(t.total),
        total_volume=ml(t.volume_ml),
        by_area=[(area_name(a), u(v)) for a, v in t.by_area.items()],
        by_side=[(s, u(t.by_side[s])) for s in ("Right", "Left", "Midline") if s in t.by_side],
        findings=found,
        findings_live=live,
        overrides=overrides,
        consent=consent_row,
        consent_on_file=on_file,
        signed_by=person(session.signed_by),
        signed_at=moment(session.signed_at, tz),
        void_reason=session.void_reason,
        voided_at=moment(session.voided_at, tz),
        voided_by=void.by if void else "",
        amendments=amendments,
        printed_by=printed_by,
        printed_at=moment(printed_at or timezone.now(), tz),
        reference=f"Session {session.pk} · version {session.version}",
        imported=(session.import_source or "another system") if session.is_imported else "",
        lots=[
            f"{lot.lot_number}, expires {day(lot.expiry)}: {lot.vials_text}"
            for lot in services.lots_used(points)
        ],
    )


# --- the SVG diagram on the PDF -----------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PATH_TOKEN = re.compile(r"([A-Za-z])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_INHERITED = (
    "fill",
    "stroke",
    "stroke-width",
    "fill-opacity",
    "stroke-opacity",
    "stroke-dasharray",
    "stroke-linecap",
    "stroke-linejoin",
    "font-size",
    "font-weight",
    "text-anchor",
)
_DEFAULTS = {"fill": "#000000", "stroke": "none", "stroke-width": "1", "font-size": "16"}
_CAPS = {"butt": 0, "round": 1, "square": 2}
_JOINS = {"miter": 0, "round": 1, "bevel": 2}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _num(value: str | None, default: float = 0.0) -> float:
    if not value:
        return default
    match = _NUMBER.match(value.strip())
    return float(match.group()) if match else default


def _colour(value: str | None) -> colors.Color | None:
    if not value or value == "none":
        return None
    try:
        return colors.HexColor(value) if value.startswith("#") else colors.toColor(value)
    except ValueError:
        return None


class SvgFlowable(Flowable):  # type: ignore[misc]
    """An SVG from :func:`diagrams.svg`, scaled to fit WIDTH x MAX_HEIGHT, as vector PDF."""

    def __init__(self, svg_text: str, width: float, max_height: float) -> None:
        super().__init__()
        self.root = ET.fromstring(svg_text)  # noqa: S314 - our own SVG, from diagrams.svg
        box = [float(v) for v in self.root.get("viewBox", "0 0 100 100").split()]
        self.vb_x, self.vb_y, self.vb_w, self.vb_h = box
        self.scale = min(width / self.vb_w, max_height / self.vb_h)
        self.width = self.vb_w * self.scale
        self.height = self.vb_h * self.scale

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        c.saveState()
        c.translate(0, self.height)
        c.scale(self.scale, -self.scale)
        c.translate(-self.vb_x, -self.vb_y)
        self._children(self.root, dict(_DEFAULTS))
        c.restoreState()

    def _children(self, node: ET.Element, style: dict[str, str]) -> None:
        for child in node:
            tag = _local(child.tag)
            own = dict(style)
            for name in _INHERITED:
                if child.get(name) is not None:
                    own[name] = child.get(name, "")
            if tag == "g":
                self._children(child, own)
            elif tag == "path":
                self._path(child.get("d", ""), own)
            elif tag == "circle":
                self._circle(child, own)
            elif tag == "text":
                self._text(child, own)
            # title, desc and anything unknown draw nothing

    def _paint(self, style: dict[str, str]) -> tuple[bool, bool]:
        c = self.canv
        fill = _colour(style.get("fill"))
        stroke = _colour(style.get("stroke"))
        if fill is not None:
            c.setFillColor(fill, alpha=_num(style.get("fill-opacity"), 1.0))
        if stroke is not None:
            c.setStrokeColor(stroke, alpha=_num(style.get("stroke-opacity"), 1.0))
            c.setLineWidth(_num(style.get("stroke-width"), 1.0))
            dash = [float(v) for v in _NUMBER.findall(style.get("stroke-dasharray") or "")]
            c.setDash(dash if dash and any(dash) else [])
            c.setLineCap(_CAPS.get(style.get("stroke-linecap", ""), 0))
            c.setLineJoin(_JOINS.get(style.get("stroke-linejoin", ""), 0))
        return fill is not None, stroke is not None

    def _path(self, d: str, style: dict[str, str]) -> None:
        c = self.canv
        path = c.beginPath()
        command, values = "", []
        drawn = False

        def flush() -> bool:
            nonlocal drawn
            if not command:
                return True
            if command == "M" and len(values) >= 2:
                path.moveTo(values[0], values[1])
                for i in range(2, len(values) - 1, 2):
                    path.lineTo(values[i], values[i + 1])
            elif command == "L":
                for i in range(0, len(values) - 1, 2):
                    path.lineTo(values[i], values[i + 1])
            elif command == "C":
                for i in range(0, len(values) - 5, 6):
                    path.curveTo(*values[i : i + 6])
            elif command in ("Z", "z"):
                path.close()
            else:
                return False  # a command diagrams.svg does not write: stop here
            drawn = True
            return True

        for match in _PATH_TOKEN.finditer(d):
            letter, number = match.groups()
            if letter:
                if not flush():
                    break
                command, values = letter, []
            else:
                values.append(float(number))
        else:
            flush()
        if not drawn:
            return
        c.saveState()
        fill, stroke = self._paint(style)
        c.drawPath(path, stroke=int(stroke), fill=int(fill))
        c.restoreState()

    def _circle(self, node: ET.Element, style: dict[str, str]) -> None:
        c = self.canv
        c.saveState()
        fill, stroke = self._paint(style)
        c.circle(_num(node.get("cx")), _num(node.get("cy")), _num(node.get("r")), stroke, fill)
        c.restoreState()

    def _text(self, node: ET.Element, style: dict[str, str]) -> None:
        text = plain("".join(node.itertext()).strip())
        if not text:
            return
        c = self.canv
        size = _num(style.get("font-size"), 16.0)
        font = BOLD if style.get("font-weight") in ("bold", "700", "800", "900") else FONT
        x, y = _num(node.get("x")), _num(node.get("y"))
        dy = node.get("dy", "")
        y += _num(dy) * (size if dy.endswith("em") else 1.0)
        anchor = style.get("text-anchor", "start")
        width = pdfmetrics.stringWidth(text, font, size)
        left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
        c.saveState()
        if node.get("paint-order") == "stroke" and _colour(node.get("stroke")) is not None:
            # The screen draws a halo behind the label; on paper a pale box does the same.
            halo = _colour(node.get("stroke"))
            c.setFillColor(halo, alpha=0.85)
            pad = size * 0.12
            c.rect(left - pad, y - size * 0.78, width + 2 * pad, size * 0.98, stroke=0, fill=1)
        fill = _colour(style.get("fill")) or colors.black
        c.setFillColor(fill, alpha=_num(style.get("fill-opacity"), 1.0))
        c.translate(left, y)
        c.scale(1, -1)
        c.setFont(font, size)
        c.drawString(0, 0, text)
        c.restoreState()


# --- layout -------------------------------------------------------------------------------------

PAGE_W, PAGE_H = A4
MARGIN_X = 16 * mm
TOP = 24 * mm
BOTTOM = 20 * mm
CONTENT_W = PAGE_W - 2 * MARGIN_X
FACT_WIDTHS = [28 * mm, 68 * mm, 34 * mm, CONTENT_W - 130 * mm]

INK = colors.HexColor("#1b1f24")
MUTED = colors.HexColor("#4f5963")
LINE = colors.HexColor("#cfd6dd")
SHADE = colors.HexColor("#f1f4f7")
ACCENT = colors.HexColor("#0b5cad")
DANGER = colors.HexColor("#a4161a")
DANGER_BG = colors.HexColor("#fde8e8")
WARN = colors.HexColor("#7a4b00")
WARN_BG = colors.HexColor("#fff3d6")
OK = colors.HexColor("#1d6b35")
OK_BG = colors.HexColor("#e3f4e8")


@cache
def _styles() -> dict[str, ParagraphStyle]:
    _fonts()
    base = ParagraphStyle("base", fontName=FONT, fontSize=9, leading=11.5, textColor=INK)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5),
        "cell_r": ParagraphStyle(
            "cell_r", parent=base, fontSize=8.5, leading=10.5, alignment=TA_RIGHT
        ),
        "head": ParagraphStyle(
            "head", parent=base, fontName=BOLD, fontSize=8, leading=10, textColor=MUTED
        ),
        "head_r": ParagraphStyle(
            "head_r",
            parent=base,
            fontName=BOLD,
            fontSize=8,
            leading=10,
            textColor=MUTED,
            alignment=TA_RIGHT,
        ),
        "label": ParagraphStyle(
            "label", parent=base, fontName=BOLD, fontSize=8, leading=11.5, textColor=MUTED
        ),
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=17, leading=21),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontName=BOLD,
            fontSize=11,
            leading=14,
            spaceBefore=10,
            spaceAfter=4,
            textColor=ACCENT,
        ),
        "caption": ParagraphStyle(
            "caption", parent=base, fontSize=7.5, leading=9.5, textColor=MUTED, alignment=TA_CENTER
        ),
        "banner": ParagraphStyle("banner", parent=base, fontName=BOLD, fontSize=11, leading=14),
    }


def P(text: str, style: str = "base") -> Paragraph:
    return Paragraph(text, _styles()[style])


def T(text: object, style: str = "cell") -> Paragraph:
    """A paragraph of plain TEXT (escaped)."""
    return Paragraph(markup(text), _styles()[style])


def _table(
    data: Sequence[Sequence[Any]],
    widths: Sequence[float],
    *,
    header: bool = True,
    total_row: bool = False,
    extra: Iterable[tuple[Any, ...]] = (),
) -> Table:
    table = Table(data, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
    ]
    if header:
        style += [
            ("BACKGROUND", (0, 0), (-1, 0), SHADE),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, MUTED),
        ]
    if total_row:
        style += [
            ("LINEABOVE", (0, -1), (-1, -1), 0.8, INK),
            ("BACKGROUND", (0, -1), (-1, -1), SHADE),
        ]
    style += list(extra)
    table.setStyle(TableStyle(style))
    return table


def _h2(text: str, room: float = 30 * mm) -> list[Any]:
    """A section heading, on a new page when less than ROOM is left under it."""
    return [CondPageBreak(room), P(markup(text), "h2")]


def _facts(pairs: Sequence[tuple[str, str]], widths: Sequence[float]) -> Table:
    """Label/value pairs in two columns of pairs."""
    half = (len(pairs) + 1) // 2
    left, right = pairs[:half], pairs[half:]
    rows = []
    for i in range(half):
        row: list[Any] = [T(left[i][0], "label"), P(left[i][1])]
        if i < len(right):
            row += [T(right[i][0], "label"), P(right[i][1])]
        else:
            row += ["", ""]
        rows.append(row)
    table = Table(rows, colWidths=list(widths), hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def _banner(rec: Record) -> Table | None:
    if rec.status == Status.DRAFT:
        title = "DRAFT — not a signed record"
        body = (
            "This session has not been signed. It is not a record of treatment given, and the "
            "dose checks below are as they stand now."
        )
        fg, bg = DANGER, DANGER_BG
    elif rec.status == Status.VOIDED:
        title = f"VOIDED — entered in error: {rec.void_reason}"
        body = "This session was voided"
        if rec.voided_by:
            body += f" by {rec.voided_by}"
        if rec.voided_at:
            body += f" on {rec.voided_at}"
        body += ". It is kept, unchanged, for the record; it does not count as treatment given."
        fg, bg = DANGER, DANGER_BG
    elif rec.status == Status.AMENDED:
        n = len([a for a in rec.amendments if a.kind != "void"])
        title = f"Signed — Amended ({n} amendment{'s' if n != 1 else ''})"
        listed = "; ".join(
            f"amendment {a.number}, {a.at}, by {a.by}: {a.reason}"
            for a in rec.amendments
            if a.kind != "void"
        )
        body = f"Signed by {rec.signed_by} on {rec.signed_at}, then corrected — {listed}."
        body += " Details under Amendments."
        fg, bg = WARN, WARN_BG
    elif rec.imported:
        title = "Imported — a past treatment recorded in another system"
        body = (
            f"Imported from {rec.imported}. It was not charted, dose-checked or signed in "
            "Glabella; it is kept as it came and counts in the dose limits and recalls. Any "
            "correction is made by amendment, with a reason."
        )
        fg, bg = WARN, WARN_BG
    else:
        title = "Signed"
        body = (
            f"Signed by {rec.signed_by} on {rec.signed_at}. This record is locked; any "
            "correction is made by amendment, with a reason."
        )
        fg, bg = OK, OK_BG
    style = ParagraphStyle("b", parent=_styles()["banner"], textColor=fg)
    table = Table(
        [[Paragraph(markup(title), style)], [P(markup(body))]], colWidths=[CONTENT_W], hAlign="LEFT"
    )
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), bg),
                ("BOX", (0, 0), (-1, -1), 1, fg),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (0, 0), 6),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
                ("TOPPADDING", (0, 1), (-1, -1), 1),
            ]
        )
    )
    return table


def _diagram_cell(diagram_id: str, rec: Record, width: float, max_height: float) -> list[Any]:
    d = diagrams.get(diagram_id)
    pts = rec.svg_points.get(diagram_id, [])
    drawing = SvgFlowable(
        diagrams.svg(diagram_id, points=pts, interactive=False), width, max_height
    )
    drawing.hAlign = "CENTER"
    n = len(pts)
    caption = f"{d.title} — {n} point{'s' if n != 1 else ''}. {d.orientation}"
    return [drawing, Spacer(1, 2), T(caption, "caption")]


def _diagrams(rec: Record) -> list[Any]:
    ids = rec.diagram_ids
    if not ids:
        return [P(markup("No injection points were charted."), "small")]
    if len(ids) == 1:
        cell = _diagram_cell(ids[0], rec, CONTENT_W * 0.6, 96 * mm)
        table = Table([[cell]], colWidths=[CONTENT_W], hAlign="CENTER")
        table.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER")]))
        return [table]
    col = (CONTENT_W - 6 * mm) / 2
    out: list[Any] = []
    for i in range(0, len(ids), 2):
        # One table per row of two, so a page can break between rows.
        row: list[Any] = [_diagram_cell(d, rec, col - 4 * mm, 98 * mm) for d in ids[i : i + 2]]
        if len(row) == 1:
            row.append([])
        table = Table([row], colWidths=[col + 3 * mm, col + 3 * mm], hAlign="CENTER")
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                    ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                    ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        out.append(table)
    return out


def _points_table(rec: Record) -> Table:
    with_volume = any(p.volume for p in rec.points)
    with_vial = any(p.vial for p in rec.points)
    head = ["No.", "Area", "Muscle", "Side", "Depth", "Units"]
    widths = [11 * mm, 27 * mm, 50 * mm, 19 * mm, 28 * mm, 18 * mm]
    if with_vial:
        widths = [11 * mm, 25 * mm, 30 * mm, 15 * mm, 24 * mm, 16 * mm]
    if with_volume:
        head.append("Volume")
        widths.append(18 * mm if with_vial else 21 * mm)
    if with_vial:
        head.append("Vial · lot")
        widths.append(33 * mm)
    widths[2] += CONTENT_W - sum(widths)
    right = {0, 5, 6} if with_volume else {0, 5}
    data: list[list[Any]] = [[T(h, "head_r" if i in right else "head") for i, h in enumerate(head)]]
    for p in rec.points:
        row = [
            T(p.number, "cell_r"),
            T(p.area),
            T(p.muscle),
            T(p.side),
            T(p.depth),
            T(p.units, "cell_r"),
        ]
        if with_volume:
            row.append(T(p.volume, "cell_r"))
        if with_vial:
            row.append(T(p.vial))
        data.append(row)
    n = len(rec.points)
    total = [
        "",
        P(f"<b>Session total</b> ({n} point{'s' if n != 1 else ''})"),
        "",
        "",
        "",
        P(f"<b>{markup(rec.total)}</b>", "cell_r"),
    ]
    if with_volume:
        total.append(P(f"<b>{markup(rec.total_volume)}</b>", "cell_r"))
    if with_vial:
        total.append("")
    data.append(total)
    return _table(data, widths, total_row=True, extra=[("SPAN", (1, -1), (4, -1))])


def _totals(rec: Record) -> Table:
    w = (CONTENT_W - 8 * mm) / 3
    area = [[T("By area", "head"), T("Units", "head_r")]]
    area += [[T(a), T(v, "cell_r")] for a, v in rec.by_area]
    side = [[T("By side (patient's)", "head"), T("Units", "head_r")]]
    side += [[T(s), T(v, "cell_r")] for s, v in rec.by_side]
    session = [[T("This session", "head"), T("", "head_r")]]
    session += [
        [T("Points"), T(len(rec.points), "cell_r")],
        [P("<b>Total</b>", "cell"), P(f"<b>{markup(rec.total)}</b>", "cell_r")],
    ]
    if rec.total_volume:
        session.append([T("Volume"), T(rec.total_volume, "cell_r")])
    tables = [
        _table(area, [w * 0.62, w * 0.38]),
        _table(side, [w * 0.62, w * 0.38]),
        _table(session, [w * 0.62, w * 0.38]),
    ]
    outer = Table([tables], colWidths=[w + 4 * mm, w + 4 * mm, w], hAlign="LEFT")
    outer.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return outer


def _findings(rec: Record) -> list[Any]:
    title = "Dose checks now (draft)" if rec.findings_live else "Dose checks at signing"
    out: list[Any] = [*_h2(title)]
    if not rec.findings:
        text = (
            "No findings: the doses are within every limit checked."
            if rec.findings_live
            else "No findings at signing: the doses were within every limit checked."
        )
        return [*out, P(markup(text))]
    data: list[list[Any]] = [[T("Severity", "head"), T("Finding", "head"), T("Source", "head")]]
    extra = []
    for i, f in enumerate(rec.findings, start=1):
        sev = f.get("severity", "")
        data.append(
            [
                P(
                    f"<b>{markup(SEVERITY.get(sev, sev))}</b><br/>"
                    f'<font size="7.5">{markup(f.get("rule", ""))}</font>',
                    "cell",
                ),
                T(f.get("message", "")),
                T(f.get("source", ""), "small"),
            ]
        )
        colour = {"block": DANGER, "warn": WARN}.get(sev, MUTED)
        extra.append(("TEXTCOLOR", (0, i), (0, i), colour))
        extra.append(("LINEBEFORE", (0, i), (0, i), 2.5, colour))
    out.append(_table(data, [36 * mm, 84 * mm, CONTENT_W - 120 * mm], extra=extra))
    return out


def _overrides(rec: Record) -> list[Any]:
    out: list[Any] = [*_h2("Overrides")]
    if not rec.overrides:
        return [*out, P(markup("None: no finding was overridden."))]
    data: list[list[Any]] = [
        [
            T("Rule", "head"),
            T("Finding overridden", "head"),
            T("Reason", "head"),
            T("By, at", "head"),
        ]
    ]
    for o in rec.overrides:
        data.append(
            [
                T(o["rule"]),
                T(o["message"]),
                T(o["reason"]),
                P(f"{markup(o['by'])}<br/>{markup(o['at'])}", "cell"),
            ]
        )
    out.append(_table(data, [34 * mm, 50 * mm, 52 * mm, CONTENT_W - 136 * mm]))
    return out


def _consent(rec: Record) -> list[Any]:
    out: list[Any] = [*_h2("Consent")]
    c = rec.consent
    if c is None:
        return [*out, P(markup("No valid consent is on file for this treatment date."))]
    data = [
        [
            T("Category", "head"),
            T("Form version", "head"),
            T("Signed on", "head"),
            T("Valid until", "head"),
            T("Method", "head"),
            T("Text hash (SHA-256)", "head"),
        ],
        [
            T(c["category"]),
            T(f"version {c['version']}"),
            T(c["signed_on"]),
            T(c["valid_until"]),
            T(c["method"]),
            T(f"{c['hash']}…"),
        ],
    ]
    widths = [48 * mm, 22 * mm, 22 * mm, 22 * mm, 30 * mm]
    widths.append(CONTENT_W - sum(widths))
    out.append(_table(data, widths))
    if rec.consent_on_file:
        out.append(
            P(
                markup("The consent on file now; it is attached to the session when signed."),
                "small",
            )
        )
    return out


def _signatures(rec: Record) -> list[Any]:
    if rec.signed_at:
        signed = f"<b>{markup(rec.signed_by)}</b><br/>{markup(rec.signed_at)}"
    else:
        signed = "<b>Not signed</b><br/>draft"
    cells = [
        [
            T("Practitioner", "label"),
            T("Prescriber of record", "label"),
            T("Signed by, at", "label"),
        ],
        [
            P(f"<b>{markup(rec.practitioner)}</b>"),
            P(f"<b>{markup(rec.prescriber)}</b>" if rec.prescriber else "not chosen"),
            P(signed),
        ],
    ]
    w = CONTENT_W / 3
    table = Table(cells, colWidths=[w, w, w], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOX", (0, 0), (0, -1), 0.6, LINE),
                ("BOX", (1, 0), (1, -1), 0.6, LINE),
                ("BOX", (2, 0), (2, -1), 0.6, LINE),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, 0), 5),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 8),
            ]
        )
    )
    note = (
        "Signed electronically in Glabella; the signature locks the record."
        if rec.signed_at
        else "Not yet signed."
    )
    return [KeepTogether([*_h2("Signatures"), table, Spacer(1, 2), P(markup(note), "small")])]


def _amendments(rec: Record) -> list[Any]:
    if not rec.amendments:
        return []
    data: list[list[Any]] = [
        [T("No.", "head_r"), T("By, at", "head"), T("Reason", "head"), T("What changed", "head")]
    ]
    for a in rec.amendments:
        what = "<br/>".join(markup(c) for c in a.changes) or markup("(no recorded difference)")
        kind = "" if a.kind == "amend" else f" ({a.kind})"
        data.append(
            [
                T(f"{a.number}{kind}", "cell_r"),
                P(f"{markup(a.by)}<br/>{markup(a.at)}", "cell"),
                T(a.reason),
                P(what, "cell"),
            ]
        )
    return [*_h2("Amendments"), _table(data, [14 * mm, 40 * mm, 50 * mm, CONTENT_W - 104 * mm])]


def _story(rec: Record) -> list[Any]:
    story: list[Any] = []
    story.append(P(markup("Botulinum toxin treatment record"), "title"))
    story.append(Spacer(1, 5))
    banner = _banner(rec)
    if banner is not None:
        story += [banner, Spacer(1, 6)]
    product = f"<b>{markup(rec.product_brand)}</b> ({markup(rec.product_generic)})"
    age = f"{rec.patient_dob} (aged {rec.patient_age} at treatment)"
    pairs = [
        ("Patient", f"<b>{markup(rec.patient_name)}</b>"),
        ("Date of birth", markup(age)),
        ("Indication", markup(rec.indication)),
        ("Product", product),
        ("Protocol", markup(rec.protocol or "none (charted point by point)")),
        ("Screening flags", markup(", ".join(rec.flags) if rec.flags else "none")),
        ("Treatment date", f"<b>{markup(rec.treated_on)}</b>"),
        ("Clinic", markup(rec.clinic_name)),
        ("Practitioner", markup(rec.practitioner)),
        ("Prescriber of record", markup(rec.prescriber or "not chosen")),
        ("Status", f"<b>{markup(rec.status_label)}</b>"),
        ("Record", markup(rec.reference)),
    ]
    story.append(_facts(pairs, FACT_WIDTHS))
    if rec.pre_notes.strip():
        story += [*_h2("Pre-treatment notes"), T(rec.pre_notes, "base")]

    story += _h2("Product and vial")
    lot_rows = [
        ("Lot number", f"<b>{markup(rec.lot_number)}</b>" if rec.lot_number else "not recorded"),
        ("Lot expiry", markup(rec.lot_expiry or "not recorded")),
    ]
    if rec.lots:
        vials = sum(line.count("vial #") for line in rec.lots)
        label = f"Lot{'s' if len(rec.lots) > 1 else ''} and vial{'s' if vials > 1 else ''}"
        lot_rows = [(label, "<br/>".join(markup(line) for line in rec.lots))]
    vial = [
        *lot_rows,
        ("Vial size", markup(rec.vial or "not recorded")),
        ("Diluent", markup(rec.diluent or "not recorded")),
        ("Concentration", markup(rec.concentration or "not known (no vial size or diluent)")),
        ("Total volume", markup(rec.total_volume or "not known")),
    ]
    story.append(_facts(vial, FACT_WIDTHS))
    story.append(Spacer(1, 3))
    units_note = f"{rec.product_units}. They are not interchangeable with any other product's."
    story.append(P(markup(units_note), "small"))

    story += _h2("Injection sites", room=80 * mm)
    story += _diagrams(rec)

    heading = _h2(f"Injection points ({len(rec.points)})")
    if rec.points:
        table = _points_table(rec)
        # A short table stays in one piece; a long one (PREEMPT) runs on, its header repeated.
        story += [KeepTogether([*heading, table])] if len(rec.points) <= 20 else [*heading, table]
        story += _h2("Totals", room=45 * mm)
        story.append(
            P(
                markup(f"In {rec.product_brand} units; never converted to another product's."),
                "small",
            )
        )
        story.append(Spacer(1, 3))
        story.append(_totals(rec))
    else:
        story += [*heading, P(markup("No injection points were charted."))]
    story += _findings(rec)
    story += _overrides(rec)
    story += _consent(rec)
    story += _signatures(rec)
    story += _amendments(rec)
    return story


# --- pages ----------------------------------------------------------------------------------


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """A canvas that knows the page count when it finishes: "Page n of N" on every page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawRightString(
                PAGE_W - MARGIN_X, BOTTOM - 9 * mm, f"Page {self._pageNumber} of {total}"
            )
            super().showPage()
        super().save()


def _on_page(
    rec: Record,
) -> tuple[Callable[[Canvas, Any], None], Callable[[Canvas, Any], None]]:
    """What every page carries: the header and footer (drawn first) and the status mark
    (drawn last)."""
    watermark = ""
    if rec.status == Status.DRAFT:
        watermark = "DRAFT — not a signed record"
    elif rec.status == Status.VOIDED:
        watermark = "VOIDED — entered in error"
    header_right = plain(f"{rec.patient_name} · born {rec.patient_dob} · treated {rec.treated_on}")
    address = plain(", ".join(rec.clinic_address))
    by = f"by {rec.printed_by} " if rec.printed_by else ""
    footer = plain(f"Printed {by}on {rec.printed_at} — Glabella")

    def draw(c: Canvas, doc: Any) -> None:
        c.saveState()
        top = PAGE_H - 12 * mm
        c.setFillColor(INK)
        c.setFont(BOLD, 10.5)
        c.drawString(MARGIN_X, top, plain(rec.clinic_name))
        c.setFont(FONT, 7.5)
        c.setFillColor(MUTED)
        sub = address or plain(rec.organization)
        if address and rec.organization and rec.organization != rec.clinic_name:
            sub = f"{plain(rec.organization)} · {address}"
        c.drawString(MARGIN_X, top - 10, sub)
        c.setFont(BOLD, 8.5)
        c.setFillColor(INK)
        c.drawRightString(PAGE_W - MARGIN_X, top, "Treatment record")
        c.setFont(FONT, 7.5)
        c.setFillColor(MUTED)
        c.drawRightString(PAGE_W - MARGIN_X, top - 10, header_right)
        c.setStrokeColor(LINE)
        c.setLineWidth(0.8)
        c.line(MARGIN_X, top - 15, PAGE_W - MARGIN_X, top - 15)
        c.line(MARGIN_X, BOTTOM - 5 * mm, PAGE_W - MARGIN_X, BOTTOM - 5 * mm)
        c.setFont(FONT, 7.5)
        c.drawString(MARGIN_X, BOTTOM - 9 * mm, footer)
        c.restoreState()

    def stamp(c: Canvas, doc: Any) -> None:
        """Across the finished page, over the content, so nothing on it can hide the mark."""
        if not watermark:
            return
        c.saveState()
        c.setFillColor(DANGER, alpha=0.13)
        c.setFont(BOLD, 40)
        c.translate(PAGE_W / 2, PAGE_H / 2)
        c.rotate(52)
        c.drawCentredString(0, -14, plain(watermark))
        c.restoreState()

    return draw, stamp


def render_pdf(
    session: TreatmentSession, *, printed_by: str = "", printed_at: datetime | None = None
) -> bytes:
    """The session's treatment record as an A4 PDF.

    ``printed_by`` names who printed it (the footer says "Printed by ... on ... — Glabella");
    ``printed_at`` defaults to now. Reads only; the caller audits the export.
    """
    _fonts()
    rec = gather(session, printed_by=printed_by, printed_at=printed_at)
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=TOP,
        bottomMargin=BOTTOM,
        title=plain(f"Treatment record — {rec.patient_name} — {rec.treated_on}"),
        author=plain(rec.clinic_name),
        subject=plain(f"{rec.indication}, {rec.product_brand}: {rec.status_label}"),
        creator="Glabella",
    )
    frame = Frame(MARGIN_X, BOTTOM, CONTENT_W, PAGE_H - TOP - BOTTOM, id="body", showBoundary=0)
    header_footer, stamp = _on_page(rec)
    template = PageTemplate(id="record", frames=[frame], onPage=header_footer, onPageEnd=stamp)
    doc.addPageTemplates([template])
    doc.build(_story(rec), canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
