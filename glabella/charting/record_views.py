"""The printable treatment record (PDF) and the side-by-side comparison with the previous session.

Thin, like every view: look the session up within the organization (another organization's is a
404), read through the charting services, audit, render. Printing a record is audited as an
export; looking at a comparison as a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.audit.models import Action
from glabella.audit.services import record as audit
from glabella.charting import diagrams, record, services
from glabella.charting.models import Status, TreatmentSession
from glabella.clinical import catalogue, indications
from glabella.web.templatetags.glabella_tags import units as plain_units

PRIVATE = "private, no-store"


def _sessions(request: HttpRequest) -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.for_org(request.org).select_related(  # type: ignore[attr-defined]
        "patient", "clinic", "organization", "practitioner", "prescriber", "signed_by", "consent"
    )


@require("session.view")
@require_GET
def record_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The session's treatment record as a PDF, shown in the browser, never cached."""
    session = get_object_or_404(_sessions(request), pk=pk)
    actor = Actor.from_request(request)
    pdf = record.render_pdf(session, printed_by=str(actor.user) if actor.user else actor.label)
    audit(
        actor,
        Action.EXPORT,
        session,
        label=f"{session.patient}: treatment record printed",
        detail={
            "patient": session.patient_id,
            "version": session.version,
            "status": session.status,
            "format": "pdf",
            "bytes": len(pdf),
        },
    )
    family = slugify(session.patient.family_name) or "patient"
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="treatment-{session.treated_on:%Y-%m-%d}-{family}.pdf"'
    )
    response["Cache-Control"] = PRIVATE
    return response


# --- comparison ---------------------------------------------------------------------------------


def _before(a: TreatmentSession, b: TreatmentSession) -> bool:
    """Whether A came before B (treatment date, then signing time; a draft comes last)."""
    if a.treated_on != b.treated_on:
        return a.treated_on < b.treated_on
    if b.signed_at is None:
        return True
    return a.signed_at is not None and a.signed_at < b.signed_at


def previous_for(session: TreatmentSession) -> TreatmentSession | None:
    """The signed session of the same patient just before SESSION.

    ``services.previous_session`` gives the patient's latest signed session, which is the one
    before for a draft or the newest record; for an older record look further back.
    """
    latest = services.previous_session(session)
    if latest is None or _before(latest, session):
        return latest
    earlier = (
        TreatmentSession.objects.for_org(session.organization)
        .filter(
            patient=session.patient,
            status__in=[Status.SIGNED, Status.AMENDED],
            treated_on__lte=session.treated_on,
        )
        .exclude(pk=session.pk)
        .order_by("-treated_on", "-signed_at")
    )
    return next((s for s in earlier if _before(s, session)), None)


@dataclass
class Side:
    """One session as the comparison shows it."""

    session: TreatmentSession
    heading: str
    brand: str
    generic: str
    date: str
    total: Decimal
    total_text: str
    by_area: dict[str, Decimal]
    by_side: dict[str, Decimal]
    points: dict[str, list[diagrams.SvgPoint]]
    count: int


@dataclass
class Row:
    label: str
    this: str
    previous: str
    difference: str
    change: str  # "up", "down", "same": for styling only; the text says it


@dataclass
class DiagramRow:
    id: str
    title: str
    orientation: str
    this_svg: str
    previous_svg: str
    overlay_svg: str
    this_count: int
    previous_count: int


def _side(session: TreatmentSession, heading: str) -> Side:
    points = services.live_points(session)
    t = services.totals(session, points)
    product = catalogue.product(session.product_id)
    by_diagram: dict[str, list[diagrams.SvgPoint]] = {}
    for p in points:
        by_diagram.setdefault(p.diagram, []).append(
            diagrams.SvgPoint(p.number, p.x, p.y, units_label=f"{plain_units(p.units)} U")
        )
    return Side(
        session=session,
        heading=heading,
        brand=product.brand,
        generic=product.generic,
        date=f"{session.treated_on:%d/%m/%Y}",
        total=t.total,
        total_text=_u(t.total),
        by_area=t.by_area,
        by_side=t.by_side,
        points=by_diagram,
        count=len(points),
    )


def _u(value: Decimal | None) -> str:
    return "—" if value is None else f"{plain_units(value)} U"


def _difference(this: Decimal | None, previous: Decimal | None) -> tuple[str, str]:
    delta = (this or Decimal(0)) - (previous or Decimal(0))
    if delta > 0:
        return f"+{plain_units(delta)} U", "up"
    if delta < 0:
        return f"\u2212{plain_units(-delta)} U", "down"  # a true minus sign
    return "no change", "same"


def _rows(
    labels: list[str],
    this: dict[str, Decimal],
    previous: dict[str, Decimal],
    comparable: bool,
    name: dict[str, str] | None = None,
) -> list[Row]:
    rows = []
    for label in labels:
        a, b = this.get(label), previous.get(label)
        diff, change = _difference(a, b) if comparable else ("", "")
        shown = (name or {}).get(label, label[:1].upper() + label[1:])
        rows.append(Row(shown, _u(a), _u(b), diff, change))
    return rows


def _figures(this: Side, previous: Side) -> list[DiagramRow]:
    used = set(this.points) | set(previous.points)
    rows = []
    for diagram_id in [d for d in diagrams.ids() if d in used]:
        d = diagrams.get(diagram_id)
        mine, theirs = this.points.get(diagram_id, []), previous.points.get(diagram_id, [])
        rows.append(
            DiagramRow(
                id=diagram_id,
                title=d.title,
                orientation=d.orientation,
                this_svg=diagrams.svg(
                    diagram_id,
                    points=mine,
                    interactive=False,
                    title=f"This session, {this.date}: {d.title}",
                ),
                previous_svg=diagrams.svg(
                    diagram_id,
                    points=theirs,
                    interactive=False,
                    title=f"Previous session, {previous.date}: {d.title}",
                ),
                overlay_svg=diagrams.svg(
                    diagram_id,
                    points=mine,
                    compare=theirs,
                    interactive=False,
                    labels=False,
                    title=f"Both sessions on one drawing: {d.title}",
                ),
                this_count=len(mine),
                previous_count=len(theirs),
            )
        )
    return rows


def comparison(session: TreatmentSession, previous: TreatmentSession | None) -> dict[str, object]:
    """What the comparison page shows (display values only)."""
    this = _side(session, "This session")
    context: dict[str, object] = {
        "session": session,
        "patient": session.patient,
        "this": this,
        "indication": indications.get(session.indication).name
        if indications.exists(session.indication)
        else session.indication,
        "previous": None,
    }
    if previous is None:
        return context
    before = _side(previous, "Previous session")
    comparable = session.product_id == previous.product_id
    areas = list(this.by_area) + [a for a in before.by_area if a not in this.by_area]
    sides = [s for s in ("Right", "Left", "Midline") if s in this.by_side or s in before.by_side]
    total_diff, total_change = _difference(this.total, before.total) if comparable else ("", "")
    context.update(
        previous=before,
        sessions=[this, before],
        comparable=comparable,
        area_rows=_rows(areas, this.by_area, before.by_area, comparable),
        side_rows=_rows(sides, this.by_side, before.by_side, comparable),
        total_row=Row("Session total", _u(this.total), _u(before.total), total_diff, total_change),
        figures=_figures(this, before),
        days_apart=(session.treated_on - previous.treated_on).days,
        weeks_apart=(session.treated_on - previous.treated_on).days // 7,
        previous_indication=indications.get(previous.indication).name
        if indications.exists(previous.indication)
        else previous.indication,
    )
    return context


def _session_page(session: TreatmentSession) -> str | None:
    """The charting page of a session, once that page exists."""
    try:
        return reverse("charting:session", args=[session.pk])
    except NoReverseMatch:
        return None


@require("session.view")
@require_GET
def compare(request: HttpRequest, pk: int) -> HttpResponse:
    """This session and the previous signed one of the same patient, side by side."""
    session = get_object_or_404(_sessions(request), pk=pk)
    actor = Actor.from_request(request)
    previous = previous_for(session)
    context = comparison(session, previous)
    context.update(
        session_url=_session_page(session),
        previous_url=_session_page(previous) if previous is not None else None,
        printed_on=timezone.localdate(),
    )
    audit(
        actor,
        Action.VIEW,
        session,
        label=f"{session.patient}: treatment compared with the previous one",
        detail={
            "patient": session.patient_id,
            "part": "comparison",
            "previous": previous.pk if previous is not None else None,
        },
    )
    response = render(request, "charting/compare.html", context)
    response["Cache-Control"] = PRIVATE
    return response
