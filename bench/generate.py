"""Synthetic data for the benchmarks.

``generate`` makes the organization of the query benchmarks (about BENCH_POINTS injection points,
every session drawn from its own vial, so the stock ledger balances as a real one).
``generate_patients`` makes the organizations of the search, worklist and export benchmarks at
each size through the same generator as ``glabella seed`` (glabella/web/seed.py): patients,
five sessions each over four years (no injection points), the recall rows built by
``recalls.rebuild_all`` and appointments for the booked ones.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import protocols
from glabella.inventory.models import Lot, MoveKind, StockMove, Vial, VialState
from glabella.patients.models import Patient, name_key
from glabella.web import seed as seeding
from glabella.web.seed import FAMILIES, GIVEN, PLANS

BENCH_ORG = "Benchmark Clinics v2"  # v2: with lots, vials and the stock ledger
BENCH_TODAY = date(2026, 11, 1)
"""The day the recall benchmark's worklist is read on (the data is dated around it)."""


def patients_org(patients: int) -> str:
    """The name of the benchmark organization with PATIENTS patients."""
    return f"Benchmark Patients {patients}"


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
    try:
        seeding.check_database(BENCH_ORG)
    except seeding.SeedRefused as exc:
        raise SystemExit(str(exc)) from None
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


# --- the search, recall worklist and export organizations, one per size ----------------------


def generate_patients(patients: int, sessions_per_patient: float = 5.0) -> Organization:
    """The organization with PATIENTS patients (idempotent per size): seed.generate, dated
    around BENCH_TODAY so the worklist reads the same on any day."""
    spec = seeding.Spec(
        name=patients_org(patients),
        patients=patients,
        years=1500 / 365,
        sessions_per_patient=sessions_per_patient,
        points=False,
        today=BENCH_TODAY,
        seed=11,
    )
    try:
        made = seeding.generate(spec)
    except seeding.SeedRefused as exc:
        raise SystemExit(str(exc)) from None
    if made.created:
        print(
            f"generated {made.patients:,} patients, {made.sessions:,} sessions, {made.recalls:,} "
            f"recall rows and {made.appointments:,} appointments in {made.seconds:.0f} s"
        )
    return made.organization
