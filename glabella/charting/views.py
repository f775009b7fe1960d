"""Charting pages. Thin: look up within the organization, call a service, render.

The charting page of a draft is one HTMX workspace (``#workspace``): every change posts the
session's ``version`` and gets the whole workspace back (diagram, totals, findings, points).
A stale version re-renders what is stored now with the reason (409), a refused value says
why and writes nothing (422), and a session signed in the meantime sends the browser to the
read-only record. Without JavaScript the same forms post normally and redirect back.

A signed, amended or voided session is shown read-only; it changes only through the amend
and void forms (services.amend / services.void).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.forms.widgets import TextInput
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import capfirst
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.charting import diagrams, forms, services
from glabella.charting.models import (
    Depth,
    InjectionPoint,
    Override,
    SessionLocked,
    Status,
    TreatmentSession,
)
from glabella.charting.templatetags.charting_tags import DEPTH_WORDS, SIDE_WORDS, area_label
from glabella.clinical import catalogue, indications, overrides, protocols
from glabella.consent import services as consent_services
from glabella.consent.categories import label as consent_label
from glabella.inventory import services as stock
from glabella.inventory.models import Vial, VialState
from glabella.patients.models import Patient
from glabella.prepared import Prepared
from glabella.web import plain_html
from glabella.web.forms_util import apply_errors
from glabella.web.templatetags.glabella_tags import units as fmt_units

DIAGRAM_TABS: dict[str, str] = {
    "face-front": "Face",
    "head-back": "Back",
    "head-left": "Left",
    "head-right": "Right",
    "axillae": "Axillae",
    "neck-shoulders": "Neck",
}
INDICATION_DIAGRAM: dict[str, str] = {
    "axillary-hyperhidrosis": "axillae",
    "cervical-dystonia": "neck-shoulders",
}
SEVERITY_ORDER = {"block": 0, "warn": 1, "info": 2}


# --- lookups -------------------------------------------------------------------------------


def _patient(request: HttpRequest, pk: int) -> Patient:
    # Another organization's patient is simply not found.
    return get_object_or_404(Patient.objects.for_org(request.org), pk=pk)  # type: ignore[attr-defined]


# Every page of a session reads it with the people and the consent it shows: a query compiled
# once (glabella/prepared.py), not on every request. Not follow_up_of: it is rarely set (read
# when it is), and joining the sessions table to itself doubles PostgreSQL's planning time.
_SESSION = Prepared(
    lambda org, session: (
        TreatmentSession.objects.filter(organization_id=org, pk=session)
        .select_related("patient", "practitioner", "prescriber", "signed_by", "consent")
        # Whether any warning was overridden, in the same query: the signed record reads the
        # overrides only when there are some (most sessions have none).
        .annotate(
            any_override=Exists(
                Override.objects.filter(organization_id=org, session_id=OuterRef("pk"))
            )
        )
    )
)


def _session(request: HttpRequest, pk: int) -> TreatmentSession:
    session = _SESSION.first(request.org.pk, pk)  # type: ignore[attr-defined]
    if session is None:
        raise Http404("No treatment session matches the given query.")
    # Known already, so not read again (nor joined: every join costs the planner): the
    # organization it was found in, and the clinic when it is the one the user works at.
    session.organization = request.org  # type: ignore[attr-defined]
    membership = request.membership  # type: ignore[attr-defined]
    if membership.clinic_id == session.clinic_id:
        session.clinic = membership.clinic
    return session


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _htmx_redirect(url: str, status: int = 200) -> HttpResponse:
    """An answer to htmx that sends the whole page to URL."""
    response = HttpResponse(status=status)
    response["HX-Redirect"] = url
    return response


def _version(request: HttpRequest) -> int:
    """The version the page was showing; a missing or garbled one counts as stale."""
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return -1


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- cheaper rendering ---------------------------------------------------------------------
#
# The charting page is the busiest page of the program and its tables grow with the points
# (31 for a PREEMPT session). Django's template engine costs tens of microseconds per tag, so
# the per-point rows, the form widgets and the URLs are written here in Python instead: the
# same markup the templates wrote (test_page_cost compares them), made in a fraction of the time.

# The form widgets (input, textarea, select) are written as Django's templates write them by
# glabella/web/plain_html.py, shared with the other busy pages.


def _numbered_url(name: str, session_pk: int) -> Callable[[int], str]:
    """The URL of NAME for the session's point number N, reversed once for all points."""
    stand_in = 987654321
    head, found, tail = reverse(name, args=[session_pk, stand_in]).rpartition(str(stand_in))
    assert found, name
    return lambda number: f"{head}{number}{tail}"


def _diagram_title(diagram_id: str) -> str:
    """``diagram_titles|get_item:p.diagram`` (an unknown diagram shows as "()", as before)."""
    return str(DIAGRAM_TABS.get(diagram_id, ()))


def _e(value: Any) -> str:
    """What ``{{ value }}`` writes for the plain strings and whole numbers of the rows below."""
    return html.escape(str(value))


def _csrf_input(token: str) -> str:
    """What ``{% csrf_token %}`` writes."""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{_e(token)}">'


def _vial_cell(p: InjectionPoint, empty: str) -> str:
    if p.vial is None:
        return f'<td class="point-vial">{empty}</td>'
    return (
        f'<td class="point-vial">#{p.vial_id}'
        f'<span class="cell-sub">lot {_e(p.vial.lot.lot_number)}</span></td>'
    )


# The cells of a point that depend only on where it is (muscle, area, diagram, side, depth),
# written once per process for each such place: a protocol's sites come back on every chart.
# Bounded, as muscles may be typed in.
_PLACE_CELLS: dict[tuple[str, str, str, str, str], tuple[str, str]] = {}
_PLACE_CELLS_MOST = 5000


def _point_cells(p: InjectionPoint) -> str:
    """Number, muscle, side, units and depth of a point: the cells both points tables share."""
    place = (p.muscle, p.area, p.diagram, p.side, p.depth)
    cells = _PLACE_CELLS.get(place)
    if cells is None:
        cells = (
            f"<td>{_e(capfirst(p.muscle))}"
            f'<span class="cell-sub">{_e(area_label(p.area))} · '
            f"{_e(_diagram_title(p.diagram))}</span>"
            f"</td><td>{_e(SIDE_WORDS.get(p.side, p.side))}</td>",
            f'<td><abbr title="{_e(DEPTH_WORDS.get(p.depth, p.depth))}">{_e(p.depth)}</abbr></td>',
        )
        if len(_PLACE_CELLS) < _PLACE_CELLS_MOST:
            _PLACE_CELLS[place] = cells
    where, depth = cells
    return (
        f'<td><span class="point-badge">{p.number}</span></td>{where}'
        f'<td class="num"><b>{_e(fmt_units(p.units))} U</b></td>{depth}'
    )


def _draft_point_rows(
    session: TreatmentSession,
    points: Iterable[InjectionPoint],
    selected: InjectionPoint | None,
    *,
    vial_column: bool,
    can_chart: bool,
    session_url: str,
    csrf: str,
) -> SafeString:
    """The rows of the draft's points table (charting/_points.html)."""
    mirror = _numbered_url("charting:point_mirror", session.pk)
    remove = _numbered_url("charting:point_remove", session.pk)
    hidden = f'{_csrf_input(csrf)}<input type="hidden" name="version" value="{session.version}">'
    url = _e(session_url)
    rows = []
    for p in points:
        n, d = p.number, _e(p.diagram)
        is_selected = "is-selected" if selected is not None and selected.number == n else ""
        rows.append(f'    <tr id="row-{n}" class="{is_selected}">{_point_cells(p)}')
        if vial_column:
            rows.append(_vial_cell(p, '<span class="no-vial">No vial</span>'))
        if can_chart:
            mirror_url, remove_url = _e(mirror(n)), _e(remove(n))
            rows.append(
                '\n      <td class="row-actions">\n'
                f'        <a class="button small" id="edit-{n}" href="?select={n}&ui_diagram={d}" '
                f"""hx-get="{url}" hx-vals='{{"select": "{n}", "ui_diagram": "{d}"}}'>"""
                f'Edit<span class="sr-only"> point {n}</span></a>\n'
                f'        <form method="post" action="{mirror_url}" hx-post="{mirror_url}" '
                'hx-disabled-elt="find button" class="inline">\n'
                f"          {hidden}\n"
                f'          <button type="submit" class="small" id="mirror-{n}">'
                f'Mirror<span class="sr-only"> point {n}</span></button>\n'
                "        </form>\n"
                f'        <form method="post" action="{remove_url}" hx-post="{remove_url}" '
                'hx-disabled-elt="find button" class="inline">\n'
                f"          {hidden}\n"
                f'          <button type="submit" class="small danger-outline" id="remove-{n}">'
                f'Remove<span class="sr-only"> point {n}</span></button>\n'
                "        </form>\n"
                "      </td>\n"
            )
        rows.append("</tr>\n")
    return SafeString("".join(rows))


def _signed_point_rows(points: Iterable[InjectionPoint], *, vial_column: bool) -> SafeString:
    """The rows of the signed record's points table (charting/signed.html)."""
    rows = []
    for p in points:
        vial = _vial_cell(p, "—") if vial_column else ""
        rows.append(f"        <tr>{_point_cells(p)}{vial}</tr>\n")
    return SafeString("".join(rows))


def _amend_rows(form: forms.AmendForm) -> SafeString:
    """The units rows of the amendment form (charting/signed.html)."""
    write = _unbound_units_writer(form)
    rows = []
    for p in form.points:
        if write is not None:
            the_id, field_html = write(p)
            errors = []
        else:
            # A form sent back (with errors), or fields not alike: as Django writes them.
            bound = form[f"units_{p.number}"]
            the_id, field_html = bound.id_for_label, conditional_escape(bound)
            errors = list(bound.errors)
        side = SIDE_WORDS.get(p.side, p.side).lower()
        rows.append(
            f'          <tr><td>{p.number}</td><td><label for="{_e(the_id)}">'
            f"{_e(capfirst(p.muscle))}, {_e(side)}</label></td>\n"
            f'            <td class="{"has-error" if errors else ""}">{field_html}'
            + "".join(f'<p class="error">{conditional_escape(e)}</p>' for e in errors)
            + "</td></tr>\n"
        )
    return SafeString("".join(rows))


def _field_kind(field: Any) -> tuple[Any, ...]:
    """What makes two fields write the same input, but for their name and value."""
    widget = field.widget
    return (
        type(field),
        type(widget),
        widget.attrs,
        widget.is_localized,
        field.required,
        field.disabled,
        field.help_text,
        field.localize,
        field.show_hidden_initial,
    )


def _unbound_units_writer(form: forms.AmendForm) -> Callable[[Any], tuple[str, str]] | None:
    """For the page as it opens (an unbound form, every point's field alike): a writer of a
    point's input id and the input, what ``{{ bound }}`` writes, its fixed attributes worked
    out once for all points. None otherwise: each field goes through :func:`_units_input`."""
    names = [f"units_{p.number}" for p in form.points]
    if form.is_bound or not names or form.prefix or "%s" not in str(form.auto_id):
        return None
    first = form.fields[names[0]]
    kind = _field_kind(first)
    if not isinstance(first.widget, TextInput) or kind[1].template_name != TextInput.template_name:
        return None
    if first.help_text or "id" in first.widget.attrs or first.show_hidden_initial:
        return None
    if any(_field_kind(form.fields[n]) != kind for n in names[1:]):
        return None
    # The attributes Django gives each input (build_widget_attrs: required, disabled), the same
    # for alike fields; the id comes last, as BoundField.as_widget adds it.
    fixed = first.widget.build_attrs(first.widget.attrs, form[names[0]].build_widget_attrs({}))
    tail, widget, auto_id = plain_html.attrs_html(fixed), first.widget, str(form.auto_id)
    head = f'<input type="{plain_html.out(widget.input_type)}"'

    def write(p: Any) -> tuple[str, str]:
        name = f"units_{p.number}"
        the_id = auto_id % name
        field = form.fields[name]
        value = widget.format_value(field.prepare_value(form.get_initial_for_field(field, name)))
        shown = "" if value is None else f' value="{plain_html.attr_value(value)}"'
        named = f'{head} name="{plain_html.out(name)}"{shown}{tail}'
        return the_id, f'{named} id="{plain_html.attr_value(the_id)}">'

    return write


_REGION_OPTIONS: dict[str, SafeString] = {}


def _region_options_html(active: str) -> SafeString:
    """The muscle areas of every diagram, the active one first, as <optgroup>s: the same for
    every chart, so made once per process and diagram."""
    html = _REGION_OPTIONS.get(active)
    if html is None:
        html = _REGION_OPTIONS[active] = SafeString(
            "".join(
                format_html('\n          <optgroup label="{}">', title)
                + SafeString(
                    "".join(
                        format_html('<option value="{}">{}</option>', value, label)
                        for value, label in options
                    )
                )
                + SafeString("</optgroup>")
                for title, options in _region_options(active)
            )
        )
    return html


# --- the state of the page -----------------------------------------------------------------


@dataclass
class UI:
    """What the page was showing: the diagram tab, the units and depth for the next point and
    the selected point. Sent back with every request; never stored."""

    diagram: str
    units: str
    depth: str
    selected: int | None = None


@dataclass
class Note:
    """The message shown above the diagram after a change."""

    level: str  # ok | error | warn
    text: str
    undo: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _default_diagram(session: TreatmentSession, points: list[InjectionPoint]) -> str:
    if session.protocol_id:
        try:
            protocol = protocols.get(session.protocol_id)
        except KeyError:
            protocol = None
        if protocol is not None and protocol.sites:
            return protocol.sites[0].diagram
    if points:
        return points[0].diagram
    return INDICATION_DIAGRAM.get(session.indication, "face-front")


def _ui(
    request: HttpRequest, session: TreatmentSession, points: list[InjectionPoint] | None = None
) -> UI:
    params = request.POST if request.method == "POST" else request.GET
    diagram = params.get("ui_diagram", "")
    if diagram not in diagrams.DIAGRAMS:
        diagram = _default_diagram(
            session, services.live_points(session) if points is None else points
        )
    units = params.get("ui_units", "")
    try:
        services.parse_point_units(units, session.product_id)
    except ValidationError:
        units = forms.DEFAULT_UNITS.get(
            session.product_id, forms.quick_units(session.product_id)[0]
        )
    depth = params.get("ui_depth", "")
    if depth not in Depth.values:
        depth = Depth.IM
    return UI(diagram, units, depth, _int(params.get("select")))


def _session_url(session: TreatmentSession, ui: UI | None = None) -> str:
    url = reverse("charting:session", args=[session.pk])
    if ui is None:
        return url
    query = {"ui_diagram": ui.diagram}
    if ui.selected:
        query["select"] = str(ui.selected)
    return f"{url}?{urlencode(query)}"


def _finding_rows(
    session: TreatmentSession, current: list[Any], overrides_list: list[Any]
) -> list[dict[str, Any]]:
    by_key = {(o.rule, o.message): o for o in overrides_list}
    rows = []
    for f in sorted(current, key=lambda f: SEVERITY_ORDER.get(f.severity, 3)):
        rows.append(
            {
                "finding": f,
                "override": by_key.get((f.rule, f.message)) if f.severity == "block" else None,
                "can_override": overrides.can_override(f.rule),
                "why_not": overrides.why_not(f.rule),
                "unconfirmed": str(f.status or "") == "unconfirmed",
            }
        )
    return rows


def _check_summary(rows: list[dict[str, Any]]) -> tuple[str, str]:
    open_blocks = [r for r in rows if r["finding"].severity == "block" and not r["override"]]
    warns = [r for r in rows if r["finding"].severity == "warn"]
    if open_blocks:
        n = len(open_blocks)
        return "block", f"{n} blocked" if n > 1 else "Blocked"
    if warns:
        n = len(warns)
        return "warn", f"{n} warning{'s' if n != 1 else ''}"
    return "ok", "No blocks"


def _sides(by_side: dict[str, Decimal]) -> list[tuple[str, Decimal]]:
    return [(s, by_side[s]) for s in ("Right", "Left", "Midline") if s in by_side]


def _svg_points(points: list[InjectionPoint], diagram: str, selected: int | None) -> list[Any]:
    return [
        diagrams.SvgPoint(
            number=p.number,
            x=p.x,
            y=p.y,
            units_label=f"{fmt_units(p.units)} U",
            selected=p.number == selected,
        )
        for p in points
        if p.diagram == diagram
    ]


def _readiness(
    session: TreatmentSession,
    points: list[InjectionPoint],
    rows: list[dict[str, Any]],
    waiting: list[int] | None = None,
) -> list[dict[str, Any]]:
    """What signing will need, shown before the Sign button (signing checks it all again).
    WAITING: where stock is kept, the live points not drawn from a vial yet (else None)."""
    category = consent_services.category_for_indication(session.indication)
    consent = consent_services.valid_consent(session.patient, category, session.treated_on)
    blocks = [r for r in rows if r["finding"].severity == "block" and not r["override"]]
    if waiting is None:
        lot = {
            "ok": bool(session.lot_number and session.lot_expiry),
            "text": f"Lot {session.lot_number}, expires {session.lot_expiry:%d/%m/%Y}"
            if session.lot_number and session.lot_expiry
            else "Lot number and expiry",
        }
    elif not waiting:
        lot = {"ok": bool(points), "text": "Every point drawn from a vial"}
    else:
        n = len(waiting)
        lot = {
            "ok": False,
            "text": f"Point{'s' if n != 1 else ''} {services.numbers_text(waiting)} "
            f"{'have' if n != 1 else 'has'} no vial: choose the vial in use",
        }
    return [
        {
            "ok": bool(points),
            "text": f"{len(points)} point{'s' if len(points) != 1 else ''} charted"
            if points
            else "At least one point",
        },
        lot,
        {
            "ok": session.prescriber_id is not None,
            "text": f"Prescriber of record: {session.prescriber}"
            if session.prescriber_id
            else "Prescriber of record",
        },
        {
            "ok": consent is not None,
            "text": (
                f"{consent_label(category)} consent, version {consent.template_version}, "
                f"signed {consent.signed_on:%d/%m/%Y}"
            )
            if consent
            else f"A valid {consent_label(category).lower()} consent",
            "link": None
            if consent
            else reverse("consent:take", args=[session.patient_id, category]),
        },
        {
            "ok": not blocks,
            "text": "No open blocks"
            if not blocks
            else f"{len(blocks)} open block{'s' if len(blocks) != 1 else ''} (see Checks)",
        },
    ]


# --- the vial in use -----------------------------------------------------------------------


def _time_left(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 120:
        return f"1 h {minutes % 60:02d} min"
    return f"{minutes // 60} h"


def vial_label(vial: Vial, units_left: Decimal, now: datetime) -> str:
    """ "Vial #12 · lot C1234AB · 37 U left · 18 h left" """
    parts = [f"Vial #{vial.pk}", f"lot {vial.lot.lot_number}", f"{fmt_units(units_left)} U left"]
    if vial.state != VialState.RECONSTITUTED:
        parts.append(vial.get_state_display().lower())
    elif vial.use_by is not None:
        if vial.use_by <= now:
            parts.append("past its use-by time")
        else:
            parts.append(f"{_time_left(vial.use_by - now)} left")
    return " · ".join(parts)


def _use_by_text(vial: Vial | None, tz: Any, now: datetime) -> str:
    if vial is None or vial.use_by is None:
        return ""
    local = vial.use_by.astimezone(tz)
    left = f" ({_time_left(vial.use_by - now)} left)" if vial.use_by > now else ""
    return f"{local:%H:%M on %d/%m}{left}"


@dataclass
class VialPanel:
    """The vial picker and what it says about the vial in use."""

    tracked: bool
    vial: Vial | None
    units_left: Decimal | None
    use_by: str  # "00:54 on 22/11 (23 h left)", at the clinic
    options: list[dict[str, Any]]
    warning: Note | None
    waiting: list[int]

    @property
    def collapse(self) -> bool:
        """The vial in use can be drawn from: the other vials are one tap away, folded."""
        return self.vial is not None and (self.warning is None or self.warning.level == "warn")


def _vial_panel(
    actor: Actor, session: TreatmentSession, points: list[InjectionPoint]
) -> VialPanel | None:
    """None when the clinic keeps no stock of the product in Glabella (lot typed instead)."""
    tracked = services.tracks_stock(session)
    vial = services.vial_in_use(session)
    if not tracked and vial is None:
        return None
    now = timezone.now()
    tz = services.clinic_tz(session)
    usable = stock.usable_vials(session.organization, session.clinic, session.product_id, now)
    options = [
        {
            "pk": v.pk,
            "label": vial_label(v, v.units_left, now),  # type: ignore[attr-defined]
            "selected": vial is not None and v.pk == vial.pk,
        }
        for v in usable
    ]
    drawn = services.point_draws(session)
    waiting = [p.number for p in points if p.number not in drawn]
    info = stock.vial_info(vial, now) if vial is not None else None
    warning = None
    if vial is not None and info is not None:
        name = f"Vial #{vial.pk}"
        local = vial.use_by.astimezone(tz) if vial.use_by else None
        after = "choose another vial for new points."
        if info.units_left <= 0:
            warning = Note("error", f"{name} is empty: {after}")
        elif vial.state != VialState.RECONSTITUTED:
            warning = Note("error", f"{name} is {vial.get_state_display().lower()}: {after}")
        elif local is not None and vial.use_by is not None and vial.use_by <= now:
            warning = Note("error", f"{name} had to be used by {local:%H:%M on %d/%m}: {after}")
        elif info.blocks:
            lot = vial.lot
            warning = Note(
                "error", f"Lot {lot.lot_number} expired on {lot.expiry:%d/%m/%Y}: {after}"
            )
        elif (
            local is not None
            and info.time_left is not None
            and info.time_left <= stock.USE_BY_WARNING
        ):
            warning = Note(
                "warn", f"{name} must be used by {local:%H:%M} (in {_time_left(info.time_left)})."
            )
        if not any(o["selected"] for o in options):
            label = vial_label(vial, info.units_left, now)
            options.insert(0, {"pk": vial.pk, "label": label, "selected": True, "dead": True})
    return VialPanel(
        tracked=tracked,
        vial=vial,
        units_left=info.units_left if info else None,
        use_by=_use_by_text(vial, tz, now),
        options=options,
        warning=warning,
        waiting=waiting if tracked else [],
    )


def _region_options(active: str) -> list[tuple[str, list[tuple[str, str]]]]:
    order = [active] + [d for d in diagrams.ids() if d != active]
    return [
        (
            diagrams.get(d).title,
            [(f"{d}:{r.id}", r.label) for r in sorted(diagrams.get(d).regions, key=_region_key)],
        )
        for d in order
    ]


def _region_key(region: diagrams.Region) -> tuple[str, str]:
    return (region.muscle, region.side)


def _workspace_context(
    request: HttpRequest,
    actor: Actor,
    session: TreatmentSession,
    ui: UI,
    *,
    note: Note | None = None,
    sign_reasons: list[str] | None = None,
    details_form: forms.DetailsForm | None = None,
    override_errors: dict[str, list[str]] | None = None,
    focus: str = "",
    points: list[InjectionPoint] | None = None,
) -> dict[str, Any]:
    """POINTS: the session's live points when the caller has them already."""
    points = services.live_points(session) if points is None else points
    by_number = {p.number: p for p in points}
    selected = by_number.get(ui.selected) if ui.selected else None
    if selected is not None and selected.diagram != ui.diagram:
        ui.diagram = selected.diagram
    ui.selected = selected.number if selected else None
    totals = services.totals(session, points)
    overrides_list = services.session_overrides(session)
    current = services.findings(session, points=points)
    rows = _finding_rows(session, current, overrides_list)
    check_state, check_text = _check_summary(rows)
    product = catalogue.product(session.product_id)
    counts: dict[str, int] = {}
    for p in points:
        counts[p.diagram] = counts.get(p.diagram, 0) + 1
    svg = diagrams.svg(
        ui.diagram,
        points=_svg_points(points, ui.diagram, ui.selected),
        interactive=actor.can("session.chart"),
    )
    vial_panel = _vial_panel(actor, session, points)
    price = stock.session_price(session, points)
    suggestion = None
    can_chart = actor.can("session.chart")
    if vial_panel is None and not session.lot_number and can_chart:
        suggestion = services.recent_lot(session)
    # Reversed once here rather than by {% url %} at every use in the templates.
    urls = {
        name: reverse(f"charting:{name}", args=[session.pk])
        for name in ("session", "point_add", "vial", "details", "override", "sign", "void")
    }
    if selected is not None:
        for name in ("point_update", "point_mirror", "point_remove"):
            urls[name] = reverse(f"charting:{name}", args=[session.pk, selected.number])
    # The token every form of the page carries (the points rows have forms when one may chart).
    csrf = get_token(request) if can_chart else ""
    details_form = plain_html.plain(details_form or forms.DetailsForm(session=session))
    context = {
        "urls": urls,
        "point_rows": _draft_point_rows(
            session,
            points,
            selected,
            vial_column=vial_panel is not None,
            can_chart=can_chart,
            session_url=urls["session"],
            csrf=csrf,
        ),
        "session": session,
        "patient": session.patient,
        "product": product,
        "indication": indications.get(session.indication),
        "points": points,
        "selected": selected,
        "totals": totals,
        "price": price,
        "sides": _sides(totals.by_side),
        "areas": sorted(totals.by_area.items(), key=lambda kv: area_label(kv[0])),
        "finding_rows": rows,
        "overrides": overrides_list,
        "check_state": check_state,
        "check_text": check_text,
        "tabs": [
            {
                "id": d,
                "label": DIAGRAM_TABS.get(d, d),
                "title": diagrams.get(d).title,
                "count": counts.get(d, 0),
            }
            for d in diagrams.ids()
        ],
        "diagram": diagrams.get(ui.diagram),
        "svg": mark_safe(svg),  # noqa: S308  (built by diagrams.svg, every value escaped)
        "ui": ui,
        "quick_units": forms.quick_units(session.product_id),
        "depths": forms.DEPTHS,
        "side_choices": list(SIDE_WORDS.items()),
        "note": note,
        "sign_reasons": sign_reasons or [],
        "readiness": _readiness(
            session, points, rows, vial_panel.waiting if vial_panel and vial_panel.tracked else None
        ),
        "vial_panel": vial_panel,
        "point_vial_options": [
            o
            for o in (vial_panel.options if vial_panel and selected else [])
            if not o.get("dead") and o["pk"] != selected.vial_id  # type: ignore[union-attr]
        ],
        "details_form": details_form,
        "override_errors": override_errors or {},
        "region_options": _region_options_html(ui.diagram),
        "diagram_titles": DIAGRAM_TABS,
        "lot_suggestion": suggestion,
        "can_chart": can_chart,
        "can_sign": actor.can("session.sign"),
        "can_override": actor.can("session.override"),
        "focus": focus,
        "void_form": forms.VoidForm(),
    }
    if csrf:  # the same token in the rows and in the template's {% csrf_token %}
        context["csrf_token"] = csrf
    return context


def _respond(
    request: HttpRequest,
    actor: Actor,
    session: TreatmentSession,
    ui: UI,
    *,
    status: int = 200,
    note: Note | None = None,
    **extra: Any,
) -> HttpResponse:
    """The workspace for HTMX; otherwise back to the page (post/redirect/get)."""
    session = _session(request, session.pk)
    if session.is_locked:
        return _locked(request, session)
    if _is_htmx(request):
        context = _workspace_context(request, actor, session, ui, note=note, **extra)
        return render(request, "charting/_workspace.html", context, status=status)
    if note is not None:
        level = {"ok": messages.SUCCESS, "warn": messages.WARNING}.get(note.level, messages.ERROR)
        messages.add_message(request, level, note.text)
    if extra.get("sign_reasons"):
        for reason in extra["sign_reasons"]:
            messages.error(request, reason)
    return redirect(_session_url(session, ui))


def _locked(request: HttpRequest, session: TreatmentSession) -> HttpResponse:
    """A change to a session that is (now) signed: refused; show the read-only record."""
    messages.warning(
        request,
        "This session has been signed: it can no longer be changed except by amendment. "
        "It is shown below as signed.",
    )
    url = reverse("charting:session", args=[session.pk])
    if _is_htmx(request):
        return _htmx_redirect(url, 409)
    return redirect(url)


def _change(
    request: HttpRequest,
    actor: Actor,
    session: TreatmentSession,
    ui: UI,
    action: Any,
) -> HttpResponse:
    """Run ACTION (a service call) and answer with the workspace, whatever happened."""
    if session.is_locked:
        return _locked(request, session)
    try:
        note = action()
    except SessionLocked:
        return _locked(request, session)
    except services.StaleVersion as exc:
        return _respond(request, actor, session, ui, status=409, note=Note("error", str(exc)))
    except InjectionPoint.DoesNotExist:
        return _respond(
            request,
            actor,
            session,
            ui,
            status=409,
            note=Note("error", "That point is no longer on the chart. Nothing was changed."),
        )
    except ValidationError as exc:
        text = " ".join(exc.messages) + " Nothing was saved."
        return _respond(request, actor, session, ui, status=422, note=Note("error", text))
    return _respond(request, actor, session, ui, note=note, focus=note.extra.get("focus", ""))


def _point_words(p: InjectionPoint) -> str:
    side = SIDE_WORDS.get(p.side, p.side).lower()
    return f"{p.muscle}, {side}, {fmt_units(p.units)} U {p.depth}"


# --- pages ---------------------------------------------------------------------------------


@require("session.chart")
def start(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    patient = _patient(request, pk)
    last = services.last_signed_session(patient)
    follow: TreatmentSession | None = None
    raw_follow = request.POST.get("follow_up_of") or request.GET.get("follow_up_of")
    if raw_follow:
        follow_pk = _int(raw_follow)
        if follow_pk is None:
            raise Http404("No such session.")
        ours = TreatmentSession.objects.for_org(request.org)  # type: ignore[attr-defined]
        follow = get_object_or_404(ours, pk=follow_pk, patient=patient)
    base = follow or last
    prescriber = None
    if actor.can("session.override"):
        prescriber = actor.user
    elif base is not None and base.prescriber_id:
        prescriber = base.prescriber
    else:
        candidates = list(forms.prescribers(actor.organization)[:2])
        prescriber = candidates[0] if len(candidates) == 1 else None
    initial = {
        "indication": request.GET.get("indication") or (base.indication if base else ""),
        "product_id": request.GET.get("product_id") or (base.product_id if base else ""),
        "treated_on": actor.today(),
        "prescriber": prescriber.pk if prescriber else None,
        "start_from": "blank",
        "follow_up_of": follow.pk if follow else None,
    }
    if request.method == "POST":
        data = request.POST.copy()
        for name in ("treated_on", "prescriber"):
            if name not in data and initial[name] is not None:
                data[name] = str(initial[name])
        quick = data.get("quick", "")
        if quick.startswith("protocol:"):
            try:
                protocol = protocols.get(quick.split(":", 1)[1])
            except KeyError:
                protocol = None
            if protocol is not None and protocol.sites:
                data["indication"] = protocol.indication
                data["product_id"] = protocol.product_ids[0]
                data["start_from"] = quick
        elif quick == "repeat" and last is not None:
            data["indication"] = last.indication
            data["product_id"] = last.product_id
            data["start_from"] = "repeat"
        form = forms.StartForm(data, organization=actor.organization, last=last, initial=initial)
        if form.is_valid():
            cd = form.cleaned_data
            try:
                session = services.start_session(
                    actor,
                    patient,
                    indication=cd["indication"],
                    product_id=cd["product_id"],
                    treated_on=cd["treated_on"],
                    prescriber=cd["prescriber"],
                    start_from=cd["start_from"],
                    follow_up_of=follow,
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict") and "protocol" in exc.error_dict:
                    exc = ValidationError(
                        {
                            ("start_from" if k == "protocol" else k): v
                            for k, v in exc.error_dict.items()
                        }
                    )
                apply_errors(form, exc)
            else:
                return redirect("charting:session", pk=session.pk)
        status = 422
    else:
        form = forms.StartForm(organization=actor.organization, last=last, initial=initial)
        status = 200
    context = {
        "patient": patient,
        "form": form,
        "last": last,
        "last_total": services.totals(last).total if last else None,
        "follow": follow,
        "starters": [(p, forms.laid_out(p)) for p in forms.starter_protocols()],
        "product_names": {p.id: p.brand for p in catalogue.products()},
    }
    return render(request, "charting/start.html", context, status=status)


@require("session.view")
def session_page(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    if session.is_locked:
        if _is_htmx(request):
            return _locked(request, session)
        services.view_session(actor, session, part="record")
        return render(request, "charting/signed.html", _signed_context(actor, session))
    points = services.live_points(session)
    ui = _ui(request, session, points)
    context = _workspace_context(request, actor, session, ui, points=points)
    if _is_htmx(request):
        # A tab or a selection: part of the page already opened (and audited).
        if ui.selected:
            context["focus"] = "edit-units"
        return render(request, "charting/_workspace.html", context)
    services.view_session(actor, session)
    return render(request, "charting/session.html", context)


# --- draft changes -------------------------------------------------------------------------


@require_POST
@require("session.chart")
def point_add(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)
    data = request.POST

    def action() -> Note:
        diagram, x, y = data.get("diagram", ""), data.get("x"), data.get("y")
        region_value = data.get("region", "")
        if region_value:
            diagram, _, region_id = region_value.partition(":")
            try:
                region = diagrams.get(diagram).region(region_id)
            except KeyError:
                raise ValidationError({"region": "Choose one of the muscle areas."}) from None
            x, y = region.center
        elif "region" in data:
            raise ValidationError({"region": "Choose a muscle area for the point."})
        point = services.add_point(
            actor,
            session,
            _version(request),
            diagram=diagram,
            x=x,
            y=y,
            units=data.get("units"),
            depth=data.get("depth") or Depth.IM,
        )
        ui.diagram = point.diagram
        ui.selected = None
        return Note("ok", f"Point {point.number} added: {_point_words(point)}.")

    return _change(request, actor, session, ui, action)


@require_POST
@require("session.chart")
def point_update(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)
    data = request.POST

    def action() -> Note:
        changes: dict[str, Any] = {}
        for name in ("units", "depth", "muscle", "area", "side"):
            if name in data:
                changes[name] = data[name]
        if data.get("vial"):
            changes["vial"] = _vial(request, data["vial"])
        if "x" in data or "y" in data:
            changes["x"], changes["y"] = data.get("x"), data.get("y")
            if data.get("diagram"):
                changes["diagram"] = data["diagram"]
        if not changes:
            raise ValidationError("Nothing to change.")
        point = services.update_point(actor, session, _version(request), number, **changes)
        ui.selected = point.number
        ui.diagram = point.diagram
        what = "moved" if "x" in changes else "changed"
        if "vial" in changes:
            return Note("ok", f"Point {point.number} is drawn from vial #{point.vial_id} now.")
        return Note("ok", f"Point {point.number} {what}: {_point_words(point)}.")

    return _change(request, actor, session, ui, action)


@require_POST
@require("session.chart")
def point_mirror(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)

    def action() -> Note:
        point = services.mirror_point(actor, session, _version(request), number)
        ui.selected = point.number
        ui.diagram = point.diagram
        return Note(
            "ok",
            f"Point {point.number} added on the other side: {_point_words(point)}.",
            extra={"focus": "edit-units"},
        )

    return _change(request, actor, session, ui, action)


@require_POST
@require("session.chart")
def point_remove(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)

    def action() -> Note:
        if not session.points.filter(number=number, removed=False).exists():
            raise InjectionPoint.DoesNotExist
        point = services.remove_point(actor, session, _version(request), number)
        ui.selected = None
        return Note(
            "ok",
            f"Point {point.number} removed ({point.muscle}, {fmt_units(point.units)} U).",
            undo=point.number,
            extra={"focus": "undo"},
        )

    return _change(request, actor, session, ui, action)


@require_POST
@require("session.chart")
def point_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)

    def action() -> Note:
        if not session.points.filter(number=number, removed=True).exists():
            raise InjectionPoint.DoesNotExist
        point = services.restore_point(actor, session, _version(request), number)
        ui.selected = point.number
        ui.diagram = point.diagram
        return Note("ok", f"Point {point.number} is back: {_point_words(point)}.")

    return _change(request, actor, session, ui, action)


def _vial(request: HttpRequest, raw: str) -> Vial:
    """A vial of the organization (another organization's, or none, is a 404)."""
    vial_pk = _int(raw)
    if vial_pk is None:
        raise Http404("No such vial.")
    ours = Vial.objects.for_org(request.org).select_related("lot", "clinic")  # type: ignore[attr-defined]
    return get_object_or_404(ours, pk=vial_pk)


@require_POST
@require("session.chart")
def vial(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose the vial in use (or none): the points waiting for a vial are drawn from it."""
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)

    def action() -> Note:
        raw = request.POST.get("vial")
        if raw is None:
            raise ValidationError({"vial": "Choose the vial in use."})
        chosen = _vial(request, raw) if raw not in ("", "none") else None
        choice = services.select_vial(actor, session, _version(request), chosen)
        if choice.vial is None:
            return Note("ok", "No vial in use: new points are not drawn from stock.")
        v = choice.vial
        left = fmt_units(choice.units_left)
        text = f"Vial #{v.pk} (lot {v.lot.lot_number}) in use"
        if choice.drawn:
            n = len(choice.drawn)
            text += (
                f": point{'s' if n != 1 else ''} {services.numbers_text(choice.drawn)} drawn "
                f"from it, {left} U left."
            )
        else:
            text += f": {left} U left. New points are drawn from it."
        if choice.waiting:
            n = len(choice.waiting)
            text += (
                f" Not enough for point{'s' if n != 1 else ''} "
                f"{services.numbers_text(choice.waiting)}: choose another vial for the "
                "remaining points."
            )
            return Note("warn", text)
        return Note("ok", text)

    return _change(request, actor, session, ui, action)


@require_POST
@require("session.chart")
def details(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)
    if session.is_locked:
        return _locked(request, session)
    form = forms.DetailsForm(request.POST, session=session)
    if not form.is_valid():
        return _respond(
            request,
            actor,
            session,
            ui,
            status=422,
            note=Note("error", "Check the details below: nothing was saved."),
            details_form=form,
        )
    try:
        services.update_details(actor, session, _version(request), form.changes())
    except SessionLocked:
        return _locked(request, session)
    except services.StaleVersion as exc:
        return _respond(request, actor, session, ui, status=409, note=Note("error", str(exc)))
    except ValidationError as exc:
        apply_errors(form, exc)
        return _respond(
            request,
            actor,
            session,
            ui,
            status=422,
            note=Note("error", " ".join(exc.messages) + " Nothing was saved."),
            details_form=form,
        )
    return _respond(request, actor, session, ui, note=Note("ok", "Details saved."))


@require_POST
@require("session.override")
def override(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)
    if session.is_locked:
        return _locked(request, session)
    form = forms.OverrideForm(request.POST)
    rule = request.POST.get("rule", "")
    if not form.is_valid():
        errors = [e for errs in form.errors.values() for e in errs]
        return _respond(
            request,
            actor,
            session,
            ui,
            status=422,
            note=Note("error", " ".join(errors)),
            override_errors={rule: errors},
        )
    try:
        services.override(actor, session, form.cleaned_data["rule"], form.cleaned_data["reason"])
    except SessionLocked:
        return _locked(request, session)
    except ValidationError as exc:
        return _respond(
            request,
            actor,
            session,
            ui,
            status=422,
            note=Note("error", " ".join(exc.messages)),
            override_errors={rule: exc.messages},
        )
    return _respond(
        request, actor, session, ui, note=Note("ok", "Override recorded with its reason.")
    )


@require_POST
@require("session.sign")
def sign(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    ui = _ui(request, session)
    if session.is_locked:
        return _locked(request, session)
    try:
        signed = services.sign(actor, session, _version(request))
    except SessionLocked:
        return _locked(request, session)
    except services.StaleVersion as exc:
        return _respond(request, actor, session, ui, status=409, note=Note("error", str(exc)))
    except services.SigningRefused as exc:
        return _respond(
            request,
            actor,
            session,
            ui,
            status=422,
            note=Note("error", "Not signed yet: see the reasons beside the Sign button."),
            sign_reasons=exc.reasons,
            focus="sign-reasons",
        )
    text = "Signed. The record is locked; corrections are made by amendment."
    if signed.review_due_on:
        text += f" Review due on {signed.review_due_on:%d/%m/%Y}."
    messages.success(request, text)
    url = reverse("charting:session", args=[signed.pk])
    if _is_htmx(request):
        return _htmx_redirect(url)
    return redirect(url)


# --- the signed record ---------------------------------------------------------------------


FIELD_LABELS = {
    "status": "Status",
    "lot_number": "Lot number",
    "lot_expiry": "Lot expiry",
    "vial_units": "Vial size",
    "diluent_ml": "Diluent (mL)",
    "pre_notes": "Pre-treatment notes",
}


def _show(key: str, value: Any) -> str:
    if value in (None, ""):
        return "—"
    if key == "status":
        try:
            return str(Status(value).label)
        except ValueError:
            return str(value)
    if key == "lot_expiry":
        try:
            return date.fromisoformat(str(value)).strftime("%d/%m/%Y")
        except ValueError:
            return str(value)
    if key == "vial_units":
        return f"{value} U"
    return str(value)


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def amendment_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What one amendment changed, in words: "Point 1 (corrugator, right): 4 U → 5 U"."""
    out: list[str] = []
    for key, label in FIELD_LABELS.items():
        if key in before or key in after:
            b, a = before.get(key), after.get(key)
            if (b or None) != (a or None):
                out.append(f"{label}: {_show(key, b)} → {_show(key, a)}")
    bp = {p["number"]: p for p in before.get("points", [])}
    ap = {p["number"]: p for p in after.get("points", [])}
    for n in sorted(set(bp) | set(ap)):
        b, a = bp.get(n), ap.get(n)
        ref = a or b
        assert ref is not None
        where = f"{ref['muscle']}, {SIDE_WORDS.get(ref['side'], ref['side']).lower()}"
        if b and a and _dec(b["units"]) != _dec(a["units"]):
            out.append(
                f"Point {n} ({where}): {fmt_units(b['units'])} U → {fmt_units(a['units'])} U"
            )
        elif b and not a:
            out.append(f"Point {n} ({where}) removed")
        elif a and not b:
            out.append(f"Point {n} ({where}) added: {fmt_units(a['units'])} U")
    tb = sum((_dec(p["units"]) for p in bp.values()), Decimal(0))
    ta = sum((_dec(p["units"]) for p in ap.values()), Decimal(0))
    if tb != ta:
        out.append(f"Total: {fmt_units(tb)} U → {fmt_units(ta)} U")
    return out


def _signed_context(
    actor: Actor,
    session: TreatmentSession,
    *,
    amend_form: forms.AmendForm | None = None,
    void_form: forms.VoidForm | None = None,
    open_amend: bool = False,
) -> dict[str, Any]:
    """The signed record's page; OPEN_AMEND: with the amendment form open (AMEND_FORM, the
    one sent back with errors, or a new one)."""
    points = services.live_points(session)
    totals = services.totals(session, points)
    used = [d for d in diagrams.ids() if any(p.diagram == d for p in points)]
    svgs = [
        {
            "id": d,
            "title": diagrams.get(d).title,
            "svg": mark_safe(  # noqa: S308  (built by diagrams.svg, every value escaped)
                diagrams.svg(d, points=_svg_points(points, d, None), interactive=False)
            ),
        }
        for d in used
    ]
    # Only amending and voiding write amendments, and each leaves the session AMENDED or
    # VOIDED: a session that is simply SIGNED has none to read.
    amendments = (
        [] if session.status == Status.SIGNED else list(session.amendments.select_related("by"))
    )
    history = [
        {
            "version": i + 2,
            "amendment": a,
            "changes": amendment_changes(a.before, a.after)
            if a.kind != "void"
            else [f"Status: {_show('status', a.before.get('status'))} → Voided"],
            "findings": [f for f in a.after.get("findings", []) if f.get("severity") != "info"],
        }
        for i, a in enumerate(amendments)
    ]
    findings_at_signing = sorted(
        session.findings_at_signing or [],
        key=lambda f: SEVERITY_ORDER.get(f.get("severity", ""), 3),
    )
    can_change = actor.can("session.sign") and session.status in (Status.SIGNED, Status.AMENDED)
    lots = services.lots_used(points)
    # The amendment form is written only when it is open: a form sent back with errors, or
    # the form asked for on its own (``amend`` answers a GET). Otherwise the page holds a
    # link to it that htmx follows when "Amend" is opened: most views of a record amend nothing.
    amend: dict[str, Any] = {}
    if can_change and open_amend:
        amend = _amend_context(amend_form or forms.AmendForm(session=session, points=points))
    return {
        **amend,
        "open_amend": open_amend,
        "lots_typed": forms.lots_typed(session, points),
        "price": stock.session_price(session, points),
        "lots": lots,
        "point_rows": _signed_point_rows(points, vial_column=bool(lots)),
        "session": session,
        "patient": session.patient,
        "product": catalogue.product(session.product_id),
        "indication": indications.get(session.indication),
        "points": points,
        "totals": totals,
        "sides": _sides(totals.by_side),
        "areas": sorted(totals.by_area.items(), key=lambda kv: area_label(kv[0])),
        "svgs": svgs,
        "findings_at_signing": findings_at_signing,
        "overrides": services.session_overrides(session),
        "history": history,
        "diagram_titles": DIAGRAM_TABS,
        "can_change": can_change,
        "void_form": plain_html.plain(void_form or forms.VoidForm()),
        "consent_category": consent_label(
            consent_services.category_for_indication(session.indication)
        ),
    }


def _amend_context(form: forms.AmendForm) -> dict[str, Any]:
    """What charting/_amend_form.html needs."""
    form = plain_html.plain(form)
    return {"amend_form": form, "amend_rows": _amend_rows(form)}


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")  # the form alone for htmx, the page otherwise: cached apart
@require("session.sign")
def amend(request: HttpRequest, pk: int) -> HttpResponse:
    """POST: save an amendment. GET: the amendment form, on its own for htmx (the record page
    asks for it when "Amend" is opened), else the record page with the form open."""
    actor = Actor.from_request(request)
    session = _session(request, pk)
    if not session.is_locked or session.status == Status.VOIDED:
        messages.error(
            request,
            "Only a signed session is amended; a draft is simply edited and a voided one "
            "stays as it is.",
        )
        if _is_htmx(request):
            return _htmx_redirect(reverse("charting:session", args=[session.pk]))
        return redirect("charting:session", pk=session.pk)
    if request.method == "GET":
        if _is_htmx(request):
            # The form shows every point's units: a view of the record, audited as one.
            services.view_session(actor, session, part="amendment form")
            context = {"session": session, **_amend_context(forms.AmendForm(session=session))}
            return render(request, "charting/_amend_form.html", context)
        services.view_session(actor, session, part="record")
        context = _signed_context(actor, session, open_amend=True)
        return render(request, "charting/signed.html", context)
    form = forms.AmendForm(request.POST, session=session)
    if form.is_valid():
        try:
            amendment = services.amend(
                actor,
                session,
                form.cleaned_data["reason"],
                point_units=form.point_units(),
                details=form.details(),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request, f"Amendment {amendment.number} saved (version {amendment.number + 1})."
            )
            return redirect("charting:session", pk=session.pk)
    context = _signed_context(actor, session, amend_form=form, open_amend=True)
    return render(request, "charting/signed.html", context, status=422)


@require_POST
@require("session.sign")
def void(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    session = _session(request, pk)
    form = forms.VoidForm(request.POST)
    if form.is_valid():
        try:
            services.void(actor, session, form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "The session is voided: it stays on record, struck through.")
            return redirect("charting:session", pk=session.pk)
    if not session.is_locked:
        for error in [e for errs in form.errors.values() for e in errs]:
            messages.error(request, error)
        return redirect("charting:session", pk=session.pk)
    context = _signed_context(actor, session, void_form=form)
    context["open_void"] = True
    return render(request, "charting/signed.html", context, status=422)
