"""Past treatments imported from another system (or from a Glabella export).

An imported session is recorded as it stands in the source: signed (or signed and amended)
when the treatment was given, voided with its reason, or a draft. It is marked as imported
(``import_run``, ``import_ref``, ``import_source``), is never charted or signed here (no dose
check runs on it, no consent is asked: it is history), draws nothing from stock, and counts
from then on like any signed session in the dose checks and recalls of later treatments
(``charting.services.treatment_history``; the caller refreshes the patient's recalls).

Points keep the diagram position the source gave. A source without positions (most vendors
record "Glabella, 20 U") gets one: :func:`place` finds the diagram region of the area (and
muscle and side) and puts the point inside it; points of the same region are spread out so
they do not sit on top of each other. An area no diagram knows keeps its words and is placed
along the top edge of the face diagram, outside every region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, User
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting import diagrams
from glabella.charting.models import Depth, InjectionPoint, Status, TreatmentSession
from glabella.charting.services import max_units_per_point
from glabella.clinical import catalogue, indications
from glabella.inventory import services as stock
from glabella.patients.models import Patient

_TWO = Decimal("0.01")
# How ``import_source`` names a practitioner or prescriber of the source system who is not a
# member here (the session then carries the importing owner as its user of record).
SOURCE_PRACTITIONER = "practitioner in the source: "
SOURCE_PRESCRIBER = "prescriber in the source: "


def source_person(session: TreatmentSession, label: str) -> str | None:
    """The name LABEL (SOURCE_PRACTITIONER or SOURCE_PRESCRIBER) gives in an imported session's
    source, or None: who really treated, when they are not a user here."""
    if not session.import_source:
        return None
    for part in session.import_source.split("; "):
        if part.startswith(label):
            return part[len(label) :].strip() or None
    return None


@dataclass(frozen=True)
class ImportedPoint:
    """A point ready to record (placed: see :func:`place`)."""

    area: str
    muscle: str
    side: str
    units: Decimal
    depth: str
    diagram: str
    x: Decimal
    y: Decimal


# --- placing points that came without a position ------------------------------------------------


def _n(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.casefold()).split())


# Words clinics use for treatment areas -> the diagrams' area ids. Only what is unambiguous.
AREA_WORDS: dict[str, str] = {
    "glabella": "glabella",
    "glabellar": "glabella",
    "glabellar lines": "glabella",
    "frown": "glabella",
    "frown lines": "glabella",
    "forehead": "forehead",
    "forehead lines": "forehead",
    "crow s feet": "lateral-canthus",
    "crows feet": "lateral-canthus",
    "crowsfeet": "lateral-canthus",
    "lateral canthal lines": "lateral-canthus",
    "lateral canthus": "lateral-canthus",
    "bunny lines": "nose",
    "nose": "nose",
    "lip flip": "upper-lip",
    "upper lip": "upper-lip",
    "lower lip": "lower-lip",
    "chin": "chin",
    "dimpled chin": "chin",
    "jaw": "jaw",
    "masseter": "jaw",
    "masseters": "jaw",
    "jawline": "jawline",
    "mouth corners": "mouth-corner",
    "mouth corner": "mouth-corner",
    "dao": "mouth-corner",
    "neck": "neck",
    "platysma": "neck",
    "platysmal bands": "neck",
    "neck bands": "neck",
    "temple": "temple",
    "temples": "temple",
    "underarm": "axilla",
    "underarms": "axilla",
    "axilla": "axilla",
    "axillae": "axilla",
    "armpit": "axilla",
    "armpits": "axilla",
    "occiput": "occiput",
    "shoulder": "shoulder",
    "shoulders": "shoulder",
    "upper eyelid": "upper-eyelid",
    "lower eyelid": "lower-eyelid",
    "cheek": "cheek",
}

# Diagram preference when a region is on several (the profiles last).
_ORDER = ("face-front", "axillae", "head-back", "neck-shoulders", "head-left", "head-right")
_SPREAD = [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2), (2, 2), (-2, -2), (2, -2), (-2, 2), (4, 0)]
_UNPLACED = ("face-front", Decimal(3), Decimal(2))


def _regions() -> list[tuple[str, diagrams.Region]]:
    return [(d, r) for d in _ORDER for r in diagrams.get(d).regions]


def find_region(area: str, muscle: str, side: str) -> tuple[str, diagrams.Region] | None:
    """The diagram region for AREA / MUSCLE / SIDE as a clinic writes them, or None."""
    a, m = _n(area), _n(muscle)
    area_id = AREA_WORDS.get(a) or next(
        (r.area for _, r in _regions() if _n(r.area) == a or _n(r.label) == a), ""
    )
    candidates = [
        (d, r)
        for d, r in _regions()
        if (not area_id or r.area == area_id) and (not m or _n(r.muscle) == m)
    ]
    if not area_id and not m:
        return None
    if not candidates and area_id and m:
        candidates = [(d, r) for d, r in _regions() if r.area == area_id]
    if not candidates:
        return None
    if side:
        same = [(d, r) for d, r in candidates if r.side == side]
        candidates = same or candidates
    else:
        # No side in the source: one point at the midline when the area has one (procerus for
        # "glabella"), otherwise the first region (the patient's right).
        mid = [(d, r) for d, r in candidates if r.side == "mid"]
        candidates = mid or candidates
    return candidates[0]


def place(
    area: str, muscle: str, side: str, used: dict[tuple[str, str], int]
) -> tuple[str, Decimal, Decimal, str, str, str]:
    """``(diagram, x, y, area, muscle, side)`` for a point without a position.

    USED counts the points already placed per region in this session (updated), so several
    points of one region are spread out. AREA / MUSCLE become the region's ids when the region
    is found; the side stays what the source said (empty when it did not say).
    """
    found = find_region(area, muscle, side)
    if found is None:
        k = used.get(("", ""), 0)
        used[("", "")] = k + 1
        d, x, y = _UNPLACED
        return d, x + Decimal(4 * (k % 24)), y + Decimal(4 * (k // 24)), area, muscle, side
    diagram_id, region = found
    k = used.get((diagram_id, region.id), 0)
    used[(diagram_id, region.id)] = k + 1
    cx, cy = region.center
    x, y = cx, cy
    dx, dy = _SPREAD[k % len(_SPREAD)]
    if region.contains(cx + dx, cy + dy):
        x, y = cx + dx, cy + dy
    new_side = side or ("mid" if region.side == "mid" else "")
    return (
        diagram_id,
        Decimal(x).quantize(_TWO),
        Decimal(y).quantize(_TWO),
        region.area,
        muscle or region.muscle,
        new_side,
    )


# --- recording -----------------------------------------------------------------------------------


def record_imported_session(
    actor: Actor,
    patient: Patient,
    *,
    import_run: Any,
    ref: str,
    source: str,
    clinic: Clinic,
    practitioner: User,
    prescriber: User | None,
    indication: str,
    product_id: str,
    treated_on: date,
    status: str,
    void_reason: str = "",
    lot_number: str = "",
    lot_expiry: date | None = None,
    notes: str = "",
    points: Sequence[ImportedPoint] = (),
) -> TreatmentSession:
    """Record one past session with its points, in one transaction, with an audit row."""
    actor.require("data.import")
    if patient.organization_id != actor.organization.pk or clinic.organization_id != (
        actor.organization.pk
    ):
        raise PermissionError("That record belongs to another organization.")
    errors: dict[str, str] = {}
    if not indications.exists(indication):
        errors["indication"] = "Choose the indication."
    try:
        catalogue.product(product_id)
    except KeyError:
        errors["product"] = "Choose the product."
    if treated_on > stock.local_date(clinic, timezone.now()):  # the clinic's day
        errors["date"] = "A past treatment cannot be in the future."
    if status not in Status.values:
        errors["status"] = "Unknown status."
    if status == Status.VOIDED and not void_reason.strip():
        errors["notes"] = "A voided treatment needs its reason."
    ceiling = max_units_per_point(product_id)
    for p in points:
        if not Decimal(0) < p.units <= ceiling or p.units != p.units.quantize(_TWO):
            errors["units"] = f"{p.units} U is not a plausible dose at one point."
        if p.depth not in Depth.values:
            errors["depth"] = "Choose intramuscular, intradermal or subcutaneous."
        if p.diagram not in diagrams.ids():
            errors["diagram"] = "Choose one of the diagrams."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    given = status in (Status.SIGNED, Status.AMENDED, Status.VOIDED)
    with transaction.atomic():
        session = TreatmentSession.objects.create(
            organization=actor.organization,
            patient=patient,
            clinic=clinic,
            practitioner=practitioner,
            prescriber=prescriber,
            indication=indication,
            product_id=product_id,
            treated_on=treated_on,
            status=status,
            pre_notes=notes,
            lot_number=lot_number[:40],
            lot_expiry=lot_expiry,
            created_by=actor.user,
            signed_at=now if given else None,
            signed_by=actor.user if given else None,
            voided_at=now if status == Status.VOIDED else None,
            void_reason=void_reason.strip()[:300] if status == Status.VOIDED else "",
            import_run=import_run,
            import_ref=ref[:100],
            import_source=source,
        )
        InjectionPoint.objects.bulk_create(
            [
                InjectionPoint(
                    organization=actor.organization,
                    session=session,
                    number=i,
                    diagram=p.diagram,
                    x=p.x,
                    y=p.y,
                    area=p.area[:60],
                    muscle=p.muscle[:60],
                    side=p.side[:3],
                    units=p.units,
                    depth=p.depth,
                )
                for i, p in enumerate(points, start=1)
            ]
        )
        record(
            actor,
            Action.CREATE,
            session,
            label=f"{patient}: past treatment imported",
            detail={
                "patient": patient.pk,
                "imported": True,
                "import_run": getattr(import_run, "pk", None),
                "ref": ref,
                "status": status,
                "points": len(points),
                "total": str(sum((p.units for p in points), Decimal(0))),
            },
        )
    return session
