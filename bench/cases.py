"""The benchmark cases: Glabella's path and a hand-written SQL baseline for the same answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, Organization
from glabella.charting import services as charting
from glabella.inventory import services as inventory
from glabella.patients import services as patients
from glabella.patients.models import Patient


@dataclass(frozen=True)
class Case:
    name: str
    target: str
    setup: Callable[[Organization], Any]
    ours: Callable[[Any], Any]
    baseline: Callable[[Any], Any]
    normalise: Callable[[Any], Any] = lambda x: x


def _sql(query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _day(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _busiest_patient(org: Organization) -> Patient:
    rows = _sql(
        "SELECT patient_id FROM charting_treatmentsession WHERE organization_id = %s "
        "GROUP BY patient_id ORDER BY COUNT(*) DESC LIMIT 1",
        [org.pk],
    )
    return Patient.objects.get(pk=rows[0][0])


def _actor(org: Organization) -> Actor:
    m = Membership.objects.filter(organization=org).select_related("user", "clinic").first()
    assert m is not None
    return Actor(org, m.user, m.clinic, m.role)


def _search_setup(org: Organization) -> tuple[Actor, str]:
    p = Patient.objects.filter(organization=org).order_by("pk")[
        1234 % max(1, Patient.objects.count())
    ]
    return _actor(org), p.phone_digits[-6:]


SEARCH = Case(
    name="patient search by phone (as you type)",
    target="≤ 3x SQL",
    setup=_search_setup,
    ours=lambda ctx: sorted(p.pk for p in patients.search_patients(ctx[0], ctx[1])),
    baseline=lambda ctx: sorted(
        r[0]
        for r in _sql(
            "SELECT id FROM patients_patient WHERE organization_id = %s AND phone_digits LIKE %s "
            "ORDER BY family_name, given_name LIMIT 25",
            [ctx[0].organization.pk, f"%{ctx[1]}%"],
        )
    ),
)

HISTORY = Case(
    name="treatment history for the dose check (busiest patient)",
    # Two small indexed queries: the database answers in well under a millisecond, so the
    # ratio is Django's fixed cost of building two queries (~1 ms each), not data access.
    target="≤ 25x SQL (fixed ORM cost; < 5 ms)",
    setup=_busiest_patient,
    ours=lambda patient: sorted(
        (h.date, h.product_id, h.units) for h in charting.treatment_history(patient)
    ),
    baseline=lambda patient: sorted(
        (_day(d), prod, Decimal(str(u)))
        for d, prod, u in _sql(
            "SELECT s.treated_on, s.product_id, SUM(p.units) FROM charting_treatmentsession s "
            "JOIN charting_injectionpoint p ON p.session_id = s.id AND NOT p.removed "
            "WHERE s.organization_id = %s AND s.patient_id = %s "
            "AND s.status IN ('signed', 'amended') GROUP BY s.id, s.treated_on, s.product_id "
            "UNION ALL SELECT treated_on, product_id, units FROM patients_historyitem "
            "WHERE patient_id = %s AND kind = 'outside_treatment' AND resolved_on IS NULL "
            "AND NOT entered_in_error AND units IS NOT NULL",
            [patient.organization_id, patient.pk, patient.pk],
        )
    ),
    normalise=lambda rows: [(d, p, Decimal(u).quantize(Decimal("0.01"))) for d, p, u in rows],
)


def _recall_setup(org: Organization) -> tuple[Organization, str]:
    return org, "L0123"


RECALL = Case(
    name="recall trace of one lot (all patients, sessions, points)",
    target="≤ 3x SQL",
    setup=_recall_setup,
    ours=lambda ctx: sorted(
        (r.patient_id, r.session_id, r.point_number, r.units)
        for r in inventory.recall_trace(ctx[0], ctx[1]).rows
    ),
    # The same row the page and the CSV need: contact details, session, point, lot.
    baseline=lambda ctx: sorted(
        (row[0], row[8], row[12], Decimal(str(row[16])).copy_abs())
        for row in _sql(
            "SELECT p.id, p.given_name, p.family_name, p.date_of_birth, p.phone, p.email, "
            "p.reminder_consent, p.preferred_channel, s.id, s.treated_on, s.status, c.name, "
            "m.point_number, ip.area, ip.muscle, ip.side, m.units, m.at, m.vial_id, "
            "l.lot_number, l.product_id, l.expiry "
            "FROM inventory_lot l JOIN inventory_stockmove m ON m.lot_id = l.id "
            "JOIN charting_treatmentsession s ON s.id = m.session_id "
            "JOIN patients_patient p ON p.id = s.patient_id "
            "JOIN accounts_clinic c ON c.id = s.clinic_id "
            "LEFT JOIN charting_injectionpoint ip "
            "ON ip.session_id = m.session_id AND ip.number = m.point_number "
            "LEFT JOIN inventory_stockmove r ON r.reverses_id = m.id "
            "WHERE l.organization_id = %s AND l.lot_number = %s AND m.kind = 'administer' "
            "AND m.reverses_id IS NULL AND r.id IS NULL",
            [ctx[0].pk, ctx[1]],
        )
    ),
    normalise=lambda rows: [
        (a, b, c, Decimal(d).copy_abs().quantize(Decimal("0.01"))) for a, b, c, d in rows
    ],
)


def _recon_setup(org: Organization) -> Organization:
    return org


RECONCILIATION = Case(
    name="reconciliation of a clinic for a year (every lot)",
    target="≤ 3x SQL",
    setup=_recon_setup,
    ours=lambda org: sorted(
        (r.lot.lot_number, r.closing, r.administered)
        for r in inventory.reconciliation(org, start=date(2026, 1, 1), end=date(2026, 12, 31))
    ),
    baseline=lambda org: sorted(
        (lot, Decimal(str(closing)), -Decimal(str(administered)))
        for lot, closing, administered in _sql(
            "SELECT l.lot_number, SUM(m.units), "
            "SUM(CASE WHEN m.kind = 'administer' AND m.at >= %s THEN m.units ELSE 0 END) "
            "FROM inventory_lot l JOIN inventory_stockmove m ON m.lot_id = l.id "
            "WHERE l.organization_id = %s AND m.at < %s GROUP BY l.lot_number",
            ["2026-01-01", org.pk, "2027-01-01"],
        )
    ),
    normalise=lambda rows: [
        (a, Decimal(b).quantize(Decimal("0.01")), Decimal(c).copy_abs().quantize(Decimal("0.01")))
        for a, b, c in rows
    ],
)

CASES = [SEARCH, HISTORY, RECALL, RECONCILIATION]
