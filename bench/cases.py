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


SEARCH_COLUMNS = (
    "p.id, p.organization_id, p.family_name, p.given_name, p.date_of_birth, p.phone, p.email"
)
"""What the search results show (patients/_results.html): the baseline reads the same rows."""


def _search_query(column: str, text: str, common: bool) -> tuple[str, dict[str, Any]]:
    """The best hand-written SQL for an organization's first 25 patients, in order, whose
    COLUMN contains TEXT, on this database's indexes (migration patients/0005), and its
    parameters but the organization (``%(org)s``). COMMON: TEXT is in many patients.

    SQLite, a rare TEXT: the trigram FTS5 table gives the rows by id (CROSS JOIN: SQLite's own
    way to say "this table first"; without it, and with no statistics, it walks the
    organization's index in order testing each row against the FTS rows). A common TEXT:
    the plain query, which walks the organization's search index (in order, holding every
    searched column) and stops at 25; fetching every FTS candidate's row costs more.
    PostgreSQL, a rare TEXT: the plain query (the planner takes the trigram GIN index). A
    common TEXT: the organization's matches MATERIALIZED (GIN or organization index, as the
    planner finds cheaper), then the first 25 in order: left to itself the planner walks the
    organization in order testing every row, which reads most of it when the matches come
    late in the alphabet."""
    # SQLite: the pattern as an expression, not a bare parameter, which would make SQLite
    # prepare the statement again on every run (Glabella's statement writes it so too:
    # glabella/patients/services.py).
    if connection.vendor == "sqlite":
        pattern, like = "'%%' || %(text)s || '%%'", {"text": text}
    else:
        pattern, like = "%(like)s", {"like": f"%{text}%"}
    plain = (
        f"SELECT {SEARCH_COLUMNS} FROM patients_patient p "  # noqa: S608
        f"WHERE p.organization_id = %(org)s AND p.{column} LIKE {pattern} "
        "ORDER BY p.family_name, p.given_name, p.id LIMIT 25"
    )
    if connection.vendor == "sqlite" and not common:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'patients_patient_fts'", [])
            indexed = cursor.fetchone() is not None
        if indexed:
            return (
                f"SELECT {SEARCH_COLUMNS} FROM patients_patient_fts f "  # noqa: S608
                "CROSS JOIN patients_patient p ON p.id = f.rowid "
                "WHERE f.patients_patient_fts MATCH %(match)s AND p.organization_id = %(org)s "
                "ORDER BY p.family_name, p.given_name, p.id LIMIT 25",
                {"match": f'{column} : "{text}"'},
            )
    if connection.vendor == "postgresql" and common:
        return (
            "WITH c AS MATERIALIZED (SELECT id, family_name, given_name FROM patients_patient "  # noqa: S608
            f"WHERE organization_id = %(org)s AND {column} LIKE %(like)s) "
            f"SELECT {SEARCH_COLUMNS} FROM patients_patient p WHERE p.id IN "
            "(SELECT id FROM c ORDER BY family_name, given_name, id LIMIT 25) "
            "ORDER BY p.family_name, p.given_name, p.id",
            like,
        )
    return plain, like


def _results_list(ctx: tuple[Actor, str, Any]) -> list[Patient]:
    """The search as the results list makes it (patients.views.patient_list): the fields it
    shows, which the baseline reads too."""
    return list(patients.search_patients(ctx[0], ctx[1], fields=patients.RESULT_FIELDS))


def _search_sql(ctx: tuple[Actor, str, tuple[str, dict[str, Any]]]) -> list[int]:
    actor, _, (query, params) = ctx
    with connection.cursor() as cursor:
        cursor.execute(query, {**params, "org": actor.organization.pk})
        return [r[0] for r in cursor.fetchall()]


def _search_setup(org: Organization) -> tuple[Actor, str, tuple[str, dict[str, Any]]]:
    mine = Patient.objects.filter(organization=org)
    p = mine.order_by("pk")[1234 % max(1, mine.count())]
    typed = p.phone_digits[-6:]
    return _actor(org), typed, _search_query("phone_digits", typed, common=False)


SEARCH = Case(
    name="patient search by phone (as you type)",
    target="≤ 3x SQL",
    setup=_search_setup,
    ours=lambda ctx: sorted(p.pk for p in _results_list(ctx)),
    baseline=lambda ctx: sorted(_search_sql(ctx)),
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


def _name_search_setup(org: Organization) -> tuple[Actor, str, tuple[str, dict[str, Any]]]:
    """What the desk types for a surname: its first five letters (one family in eighteen)."""
    return _actor(org), "kowal", _search_query("name_key", "kowal", common=True)


NAME_SEARCH = Case(
    name="patient search by name (as you type)",
    target="≤ 1.5x SQL",
    setup=_name_search_setup,
    ours=lambda ctx: [p.pk for p in _results_list(ctx)],
    baseline=_search_sql,
)

CASES = [SEARCH, HISTORY, RECALL, RECONCILIATION]


# --- the recall worklist ------------------------------------------------------------------------

WORKLIST_LIMIT = 50


def _worklist_setup(org: Organization) -> dict[str, Any]:
    """ORG: one of the patients organizations (bench.generate.generate_patients)."""
    from bench.generate import BENCH_TODAY
    from glabella.scheduling import recalls

    today = BENCH_TODAY
    _, week_end = recalls.tab_range("week", today)
    up_start, up_end = recalls.tab_range("upcoming", today)
    # Dates go to the hand-written SQL as ISO text (what both databases accept for a date).
    return {
        "org": org,
        "today": today,
        "today_s": today.isoformat(),
        "week_end": week_end.isoformat(),
        "up_start": up_start.isoformat(),
        "up_end": up_end.isoformat(),
    }


def _ours_worklist(ctx: dict[str, Any], state: str = "") -> tuple[Any, ...]:
    """What the worklist page asks for: the first page of the overdue tab and every count."""
    from glabella.scheduling import recalls

    page = recalls.worklist(
        ctx["org"], today=ctx["today"], tab="overdue", filters=recalls.Filters(state=state)
    )
    rows = [
        (
            r.patient_id,
            r.indication,
            r.due_on,
            r.basis_on,
            r.product_id,
            r.patient.family_name,
            r.patient.phone,
            r.clinic.name if r.clinic else None,
            r.practitioner.email if r.practitioner else None,
        )
        for r in page.rows
    ]
    return rows, page.counts["overdue"], page.counts["week"], page.counts["upcoming"]


def _normalise_worklist(answer: tuple[Any, ...]) -> tuple[Any, ...]:
    rows, *counts = answer
    return (
        [(a, b, _day(c), _day(d), *rest) for a, b, c, d, *rest in rows],
        *(int(n) for n in counts),
    )


def _worklist_sql(ctx: dict[str, Any]) -> tuple[Any, ...]:
    """The same answer from the recall rows, by hand: one count query, one page query."""
    org, today = ctx["org"].pk, ctx["today_s"]
    states = ["open", "contacted"]
    [(overdue, week, upcoming)] = _sql(
        "SELECT SUM(CASE WHEN due_on < %s THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN due_on >= %s AND due_on <= %s THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN due_on >= %s THEN 1 ELSE 0 END) "
        "FROM scheduling_recall WHERE organization_id = %s AND is_current = %s "
        "AND state IN (%s, %s) AND due_on <= %s",
        [today, today, ctx["week_end"], ctx["up_start"], org, True, *states, ctx["up_end"]],
    )
    rows = _sql(
        "SELECT r.patient_id, r.indication, r.due_on, r.basis_on, r.product_id, "
        "p.family_name, p.phone, c.name, u.email "
        "FROM scheduling_recall r JOIN patients_patient p ON p.id = r.patient_id "
        "LEFT JOIN accounts_clinic c ON c.id = r.clinic_id "
        "LEFT JOIN accounts_user u ON u.id = r.practitioner_id "
        "WHERE r.organization_id = %s AND r.is_current = %s AND r.state IN (%s, %s) "
        "AND r.due_on < %s ORDER BY r.due_on DESC, r.patient_id, r.indication, r.kind "
        "LIMIT %s",
        [org, True, *states, today, WORKLIST_LIMIT],
    )
    return [tuple(r) for r in rows], overdue or 0, week or 0, upcoming or 0


RECALL_WORKLIST = Case(
    name="recall worklist: first page of overdue + tab counts (recall rows)",
    target="≤ 2x SQL",
    setup=_worklist_setup,
    ours=_ours_worklist,
    baseline=_worklist_sql,
    normalise=_normalise_worklist,
)


def _intervals(ctx: dict[str, Any]) -> str:
    """The recall interval per indication, product and clinic, as the core gives it (every
    benchmark patient is an adult), written out as a VALUES list for the SQL."""
    from bench.generate import PLANS
    from glabella.scheduling import recalls
    from glabella.scheduling.models import SchedulingSettings

    rows = []
    for clinic_id, days in SchedulingSettings.objects.filter(organization=ctx["org"]).values_list(
        "clinic_id", "cosmetic_recall_days"
    ):
        for indication, product_id, _ in sorted(set(PLANS)):
            delta, _minimum = recalls._interval(indication, product_id, days, "adult", None)
            assert delta is not None
            rows.append(f"('{indication}', '{product_id}', {int(clinic_id)}, {int(delta)})")
    return ", ".join(rows)


def _from_sessions_sql(ctx: dict[str, Any]) -> tuple[Any, ...]:
    """The due list straight from the sessions, with no recall rows: the last signed session
    per patient and indication (a window over every session), plus its interval."""
    org, today = ctx["org"].pk, ctx["today_s"]
    if connection.vendor == "postgresql":
        due = "l.treated_on + iv.days"
    else:
        due = "date(l.treated_on, '+' || iv.days || ' days')"
    # The VALUES list and the date arithmetic are code, not input.
    last = (
        (
            "WITH iv(indication, product_id, clinic_id, days) AS (VALUES {intervals}), "
            "ranked AS (SELECT s.id, s.patient_id, s.indication, s.product_id, s.treated_on, "
            "s.clinic_id, s.practitioner_id, ROW_NUMBER() OVER (PARTITION BY s.patient_id, "
            "s.indication ORDER BY s.treated_on DESC, s.signed_at DESC, s.id DESC) AS n "
            "FROM charting_treatmentsession s WHERE s.organization_id = %s "
            "AND s.status IN ('signed', 'amended')), "
            "due AS (SELECT l.*, {due} AS due_on FROM ranked l JOIN iv "
            "ON iv.indication = l.indication AND iv.product_id = l.product_id "
            "AND iv.clinic_id = l.clinic_id WHERE l.n = 1) "
        )
        .replace("{intervals}", ctx.setdefault("intervals", _intervals(ctx)))
        .replace("{due}", due)
    )
    counts_sql = last + (  # noqa: S608
        "SELECT SUM(CASE WHEN due_on < %s THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN due_on >= %s AND due_on <= %s THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN due_on >= %s AND due_on <= %s THEN 1 ELSE 0 END) FROM due"
    )
    page_sql = last + (  # noqa: S608
        "SELECT d.patient_id, d.indication, d.due_on, d.treated_on, d.product_id, "
        "p.family_name, p.phone, c.name, u.email FROM due d "
        "JOIN patients_patient p ON p.id = d.patient_id "
        "LEFT JOIN accounts_clinic c ON c.id = d.clinic_id "
        "LEFT JOIN accounts_user u ON u.id = d.practitioner_id "
        "WHERE d.due_on < %s ORDER BY d.due_on DESC, d.patient_id, d.indication LIMIT %s"
    )
    [(overdue, week, upcoming)] = _sql(
        counts_sql, [org, today, today, ctx["week_end"], ctx["up_start"], ctx["up_end"]]
    )
    rows = _sql(page_sql, [org, today, WORKLIST_LIMIT])
    return [tuple(r) for r in rows], overdue or 0, week or 0, upcoming or 0


RECALL_FROM_SESSIONS = Case(
    name="recall worklist, any state (vs SQL from the sessions, no recall rows)",
    # Not a target to meet: how much keeping the recall rows saves over computing the due
    # list from every session on each page view (a ratio below 1 is the saving).
    target="report only (< 1 = recall rows faster)",
    setup=_worklist_setup,
    ours=lambda ctx: _ours_worklist(ctx, state="all"),
    baseline=_from_sessions_sql,
    normalise=_normalise_worklist,
)

CASES += [RECALL_WORKLIST, RECALL_FROM_SESSIONS]
