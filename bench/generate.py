"""Synthetic data for the benchmarks: organizations, patients, sessions and injection points.

Rows are written with bulk_create in large batches (fast, not clinically meaningful): this is
volume for timing queries, never a real clinic's data.

``generate_recalls`` makes a second organization for the recall worklist (by default 1,000,000
patients and 5,000,000 sessions, sized by BENCH_PATIENTS / BENCH_SESSIONS): patients and
sessions are written with raw bulk SQL (COPY on PostgreSQL, executemany on SQLite), without
injection points, then the recall rows are built by ``recalls.rebuild_all``, the same code the
``glabella recalls-rebuild`` command runs.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import protocols
from glabella.inventory.models import Lot, MoveKind, StockMove, Vial, VialState
from glabella.patients.models import Patient, name_key

BENCH_ORG = "Benchmark Clinics v2"  # v2: with lots, vials and the stock ledger
RECALL_ORG = "Benchmark Recalls v1"
BENCH_ORGS = (BENCH_ORG, RECALL_ORG)
BENCH_TODAY = date(2026, 11, 1)
"""The day the recall benchmark's worklist is read on (the data is dated around it)."""
FAMILIES = [
    "Smith",
    "Patel",
    "Nguyen",
    "Garcia",
    "Kowalski",
    "Okafor",
    "Rossi",
    "Chen",
    "Evans",
    "Moreau",
    "Silva",
    "Novak",
    "Haddad",
    "Walsh",
    "Tanaka",
    "Fischer",
    "Costa",
    "Murphy",
]
GIVEN = ["Amelia", "Sofia", "Grace", "James", "Omar", "Lukas", "Maya", "Leah", "Zara", "Noah"]
PLANS = [
    ("glabellar-lines", "botox_cosmetic", "glabellar-lines-botox-cosmetic"),
    ("lateral-canthal-lines", "botox_cosmetic", "lateral-canthal-lines"),
    ("chronic-migraine", "botox", "chronic-migraine-preempt"),
    ("glabellar-lines", "dysport", "glabellar-lines-dysport"),
    ("axillary-hyperhidrosis", "botox", "axillary-hyperhidrosis"),
]


def progress(label: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'█' * filled}{'·' * (width - filled)}] {done:,}/{total:,}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def generate(points_wanted: int, seed: int = 7) -> Organization:
    """Make an organization with about POINTS_WANTED injection points (idempotent per size)."""
    rng = random.Random(seed)
    existing = Organization.objects.filter(name=BENCH_ORG).first()
    if existing is not None:
        have = InjectionPoint.objects.filter(organization=existing).count()
        if have >= points_wanted * 0.95:  # the layout makes "about" N points
            return existing
        raise SystemExit(
            f"The benchmark database holds {have:,} points, far fewer than {points_wanted:,}: "
            "remove var/bench/ (or drop the database) and run again."
        )
    if Organization.objects.exclude(name__in=BENCH_ORGS).exists():
        raise SystemExit("Refusing to generate benchmark data into a database with real data.")
    started = time.monotonic()
    with transaction.atomic():
        org = Organization.objects.create(name=BENCH_ORG)
        clinic = Clinic.objects.create(organization=org, name="Bench", timezone="Europe/London")
        user = User.objects.create_user("bench@bench.test", None)
        Membership.objects.create(user=user, clinic=clinic, organization=org, role="injector")
    layouts = {pid: protocols.get(pid).sites for _, _, pid in PLANS}
    per_session = sum(len(s) for s in layouts.values()) / len(layouts)
    sessions_wanted = max(1, int(points_wanted / per_session))
    patients_wanted = max(1, sessions_wanted // 6)
    today = date(2026, 11, 1)
    patients = [
        Patient(
            organization=org,
            home_clinic=clinic,
            given_name=rng.choice(GIVEN),
            family_name=f"{rng.choice(FAMILIES)}-{i}",
            name_key="",
            date_of_birth=date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            phone=f"07700 {i:06d}",
            phone_digits=f"07700{i:06d}",
            email=f"p{i}@example.org",
        )
        for i in range(patients_wanted)
    ]
    for p in patients:
        p.name_key = name_key(p.given_name, p.family_name)
    for start in range(0, len(patients), 5000):
        Patient.objects.bulk_create(patients[start : start + 5000])
        progress("patients", min(start + 5000, len(patients)), len(patients))
    patient_ids = list(Patient.objects.filter(organization=org).values_list("pk", flat=True))
    # 400 lots over the three products; each session draws every point from its own vial of
    # one lot (reconstituted, drawn, the rest wasted), so the ledger balances like a real one.
    vial_size = {"botox_cosmetic": 100, "botox": 200, "dysport": 500}
    lots: dict[str, list[Lot]] = {p: [] for p in vial_size}
    for n in range(400):
        product = list(vial_size)[n % 3]
        lots[product].append(
            Lot(
                organization=org,
                product_id=product,
                lot_number=f"L{n:04d}",
                expiry=date(2028, 1, 1),
                vial_units=vial_size[product],
            )
        )
    Lot.objects.bulk_create([lot for group in lots.values() for lot in group])
    for product in lots:
        lots[product] = list(
            Lot.objects.filter(organization=org, product_id=product).order_by("pk")
        )
    vials_per_lot: dict[int, int] = {}
    moment = timezone.make_aware(datetime(2026, 1, 1, 9, 0))
    made = 0
    batch_sessions: list[TreatmentSession] = []
    plans: list[tuple[str, str, str]] = []

    def flush() -> None:
        nonlocal made
        with transaction.atomic():
            created = TreatmentSession.objects.bulk_create(batch_sessions)
            points = []
            for session, (_, _, pid) in zip(created, plans, strict=True):
                for n, site in enumerate(layouts[pid], start=1):
                    points.append(
                        InjectionPoint(
                            organization=org,
                            session=session,
                            number=n,
                            diagram=site.diagram,
                            x=site.x,
                            y=site.y,
                            area=site.area,
                            muscle=site.muscle,
                            side=site.side,
                            units=site.units if site.units > 0 else Decimal(5),
                            depth=site.depth,
                        )
                    )
            InjectionPoint.objects.bulk_create(points, batch_size=5000)
            made += len(points)
            vials, moves = [], []
            for session, (_, product, _pid) in zip(created, plans, strict=True):
                lot = lots[product][session.pk % len(lots[product])]
                vials_per_lot[lot.pk] = vials_per_lot.get(lot.pk, 0) + 1
                vials.append(
                    Vial(
                        organization=org,
                        clinic=clinic,
                        lot=lot,
                        units=lot.vial_units,
                        state=VialState.FINISHED,
                        opened_at=moment,
                        use_by=moment,
                        concentration=Decimal(5),
                        diluent_ml=Decimal(2),
                    )
                )
            Vial.objects.bulk_create(vials, batch_size=5000)
            by_session: dict[int, list[InjectionPoint]] = {}
            for point in points:
                by_session.setdefault(point.session_id, []).append(point)
            for session, vial in zip(created, vials, strict=True):
                moves.append(
                    StockMove(
                        organization=org,
                        clinic=clinic,
                        kind=MoveKind.RECONSTITUTE,
                        lot=vial.lot,
                        vial=vial,
                        units=0,
                        vials=-1,
                        at=moment,
                        by=user,
                    )
                )
                used = Decimal(0)
                for point in by_session[session.pk]:
                    used += point.units
                    moves.append(
                        StockMove(
                            organization=org,
                            clinic=clinic,
                            kind=MoveKind.ADMINISTER,
                            lot=vial.lot,
                            vial=vial,
                            units=-point.units,
                            at=moment,
                            by=user,
                            session=session,
                            point_number=point.number,
                        )
                    )
                rest = Decimal(vial.units) - used
                if rest > 0:
                    moves.append(
                        StockMove(
                            organization=org,
                            clinic=clinic,
                            kind=MoveKind.WASTE,
                            lot=vial.lot,
                            vial=vial,
                            units=-rest,
                            at=moment,
                            by=user,
                            reason="end of vial",
                        )
                    )
            StockMove.objects.bulk_create(moves, batch_size=5000)
        batch_sessions.clear()
        plans.clear()
        progress("injection points", min(made, points_wanted), points_wanted)

    for i in range(sessions_wanted):
        plan = PLANS[i % len(PLANS)]
        plans.append(plan)
        batch_sessions.append(
            TreatmentSession(
                organization=org,
                patient_id=rng.choice(patient_ids),
                clinic=clinic,
                practitioner=user,
                indication=plan[0],
                product_id=plan[1],
                treated_on=today - timedelta(days=rng.randint(0, 1500)),
                status=Status.SIGNED,
                created_by=user,
                lot_number=f"L{i % 400:04d}",
                lot_expiry=today,
            )
        )
        if len(batch_sessions) >= 2000:
            flush()
    if batch_sessions:
        flush()
    receipts = [
        StockMove(
            organization=org,
            clinic=clinic,
            kind=MoveKind.RECEIVE,
            lot=lot,
            units=Decimal(count * lot.vial_units),
            vials=count,
            at=moment - timedelta(days=30),
            by=user,
        )
        for lot in Lot.objects.filter(organization=org)
        if (count := vials_per_lot.get(lot.pk, 0))
    ]
    StockMove.objects.bulk_create(receipts)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"generated {made:,} points in {time.monotonic() - started:.0f} s")
    return org


# --- the recall worklist: a million patients, five million sessions ---------------------------

RECALL_CLINICS = [("Bench North", 90), ("Bench Central", 105), ("Bench South", 120)]
"""Three clinics with different cosmetic recall intervals (days)."""
CHANNELS = ["email", "email", "email", "sms", "sms", "phone", "none"]


def _formats() -> tuple[Any, Any, Any]:
    """How dates, aware datetimes and booleans are written for this database's bulk path."""
    if connection.vendor == "postgresql":
        return (lambda d: d), (lambda dt: dt), (lambda b: b)
    return (
        (lambda d: d.isoformat()),
        (lambda dt: dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")),
        (lambda b: 1 if b else 0),
    )


def _bulk_insert(
    table: str, columns: list[str], rows: Iterable[tuple[Any, ...]], total: int, label: str
) -> None:
    """Write ROWS into TABLE as fast as the database allows: COPY on PostgreSQL, chunked
    executemany in one transaction per chunk on SQLite. A progress bar on a terminal."""
    from glabella.web.progress import ProgressBar

    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    bar = ProgressBar(label, sys.stderr)
    done = 0
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(f"COPY {qn(table)} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    done += 1
                    if done % 20000 == 0:
                        bar.update(done, total)
        bar.update(done, total)
        bar.finish()
        return
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {qn(table)} ({cols}) VALUES ({marks})"  # noqa: S608 (model names)
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 50000:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(sql, batch)
            done += len(batch)
            batch.clear()
            bar.update(done, total)
    if batch:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
        done += len(batch)
    bar.update(done, total)
    bar.finish()


def generate_recalls(patients_wanted: int, sessions_wanted: int, seed: int = 11) -> Organization:
    """An organization with PATIENTS_WANTED patients and SESSIONS_WANTED sessions (no points),
    and its recalls (idempotent per size)."""
    from glabella.scheduling import recalls
    from glabella.scheduling.models import Recall, SchedulingSettings

    existing = Organization.objects.filter(name=RECALL_ORG).first()
    if existing is not None:
        have_p = Patient.objects.filter(organization=existing).count()
        have_s = TreatmentSession.objects.filter(organization=existing).count()
        have_r = Recall.objects.filter(organization=existing).exists()
        if have_p == patients_wanted and have_s == sessions_wanted and have_r:
            return existing
        raise SystemExit(
            f"The benchmark database holds {have_p:,} patients and {have_s:,} sessions for the "
            f"recall worklist, not {patients_wanted:,} and {sessions_wanted:,}: remove "
            "var/bench/ (or drop the database) and run again."
        )
    if Organization.objects.exclude(name__in=BENCH_ORGS).exists():
        raise SystemExit("Refusing to generate benchmark data into a database with real data.")
    rng = random.Random(seed)
    started = time.monotonic()
    day, moment, flag = _formats()
    with transaction.atomic():
        org = Organization.objects.create(name=RECALL_ORG)
        clinics = []
        for name, days in RECALL_CLINICS:
            clinic = Clinic.objects.create(organization=org, name=name, timezone="Europe/London")
            SchedulingSettings.objects.create(
                organization=org, clinic=clinic, cosmetic_recall_days=days
            )
            clinics.append(clinic)
        staff = []
        for n in range(20):
            user = User.objects.create_user(f"recall{n}@bench.test", None)
            Membership.objects.create(
                user=user,
                clinic=clinics[n % len(clinics)],
                organization=org,
                role="prescriber" if n % 4 == 0 else "injector",
            )
            staff.append(user.pk)
    clinic_ids = [c.pk for c in clinics]
    created = timezone.make_aware(datetime(2022, 1, 1, 9, 0))

    def patient_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(patients_wanted):
            given = GIVEN[i % len(GIVEN)]
            family = f"{FAMILIES[(i * 7) % len(FAMILIES)]}-R{i}"
            opted_out = i % 33 == 0
            yield (
                org.pk,
                clinic_ids[i % len(clinic_ids)],
                given,
                family,
                name_key(given, family),
                day(date(1950, 1, 1) + timedelta(days=(i * 7919) % 18250)),  # adults
                "unknown",
                f"07800 {i:07d}" if i % 9 else "",
                f"07800{i:07d}" if i % 9 else "",
                f"r{i}@example.org" if i % 5 else "",
                "",
                CHANNELS[i % len(CHANNELS)],
                flag(i % 10 < 7),
                moment(created + timedelta(days=i % 1000)) if opted_out else None,
                "",
                moment(created),
                moment(created),
            )

    _bulk_insert(
        Patient._meta.db_table,
        [
            "organization_id",
            "home_clinic_id",
            "given_name",
            "family_name",
            "name_key",
            "date_of_birth",
            "sex",
            "phone",
            "phone_digits",
            "email",
            "address",
            "preferred_channel",
            "reminder_consent",
            "reminder_opt_out_at",
            "clinical_notes",
            "created_at",
            "updated_at",
        ],
        patient_rows(),
        patients_wanted,
        "recall patients",
    )
    patients = list(
        Patient.objects.filter(organization=org).order_by("pk").values_list("pk", "home_clinic_id")
    )

    def session_rows() -> Iterator[tuple[Any, ...]]:
        for _ in range(sessions_wanted):
            n = rng.randrange(len(patients))
            patient_id, home = patients[n]
            # Most patients come back for the same thing; some try something else.
            plan = PLANS[n % len(PLANS)] if rng.random() < 0.8 else rng.choice(PLANS)
            treated = BENCH_TODAY - timedelta(days=rng.randint(0, 1500))
            roll = rng.random()
            status = (
                Status.SIGNED
                if roll < 0.95
                else Status.AMENDED
                if roll < 0.97
                else Status.VOIDED
                if roll < 0.99
                else Status.DRAFT
            )
            at = timezone.make_aware(datetime.combine(treated, datetime.min.time())) + timedelta(
                hours=9, seconds=rng.randrange(9 * 3600)
            )
            practitioner = rng.choice(staff)
            signed = status != Status.DRAFT
            yield (
                org.pk,
                patient_id,
                home if rng.random() < 0.9 else rng.choice(clinic_ids),
                practitioner,
                plan[0],
                plan[1],
                day(treated),
                status,
                1,
                plan[2],
                "",
                "[]",
                "L0001",
                "[]",
                moment(at),
                practitioner,
                moment(at) if signed else None,
                practitioner if signed else None,
                moment(at) if status == Status.VOIDED else None,
                "entered in error" if status == Status.VOIDED else "",
            )

    _bulk_insert(
        TreatmentSession._meta.db_table,
        [
            "organization_id",
            "patient_id",
            "clinic_id",
            "practitioner_id",
            "indication",
            "product_id",
            "treated_on",
            "status",
            "version",
            "protocol_id",
            "pre_notes",
            "flags",
            "lot_number",
            "findings_at_signing",
            "created_at",
            "created_by_id",
            "signed_at",
            "signed_by_id",
            "voided_at",
            "void_reason",
        ],
        session_rows(),
        sessions_wanted,
        "recall sessions",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    from glabella.web.progress import ProgressBar

    bar = ProgressBar("recall rows (recalls.rebuild_all)", sys.stderr)
    built = time.monotonic()
    made = recalls.rebuild_all(org, progress=bar.update)
    bar.finish()
    rebuild_s = time.monotonic() - built
    # Some recalls already acted on: contacted, declined, booked, not due.
    with transaction.atomic(), connection.cursor() as cursor:
        for state, mod, rest in (
            ("contacted", 20, 1),
            ("declined", 20, 2),
            ("booked", 50, 3),
            ("not_due", 100, 4),
        ):
            cursor.execute(
                f"UPDATE {Recall._meta.db_table} SET state = %s, state_reason = %s "  # noqa: S608
                "WHERE organization_id = %s AND id %% %s = %s",
                [state, f"bench: {state}", org.pk, mod, rest],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"generated {patients_wanted:,} patients, {sessions_wanted:,} sessions and {made:,} "
        f"recalls in {time.monotonic() - started:.0f} s (rebuild_all {rebuild_s:.0f} s)"
    )
    return org
