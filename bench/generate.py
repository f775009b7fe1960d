"""Synthetic data for the benchmarks: organizations, patients, sessions and injection points.

Rows are written with bulk_create in large batches (fast, not clinically meaningful): this is
volume for timing queries, never a real clinic's data.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction

from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import protocols
from glabella.patients.models import Patient, name_key

BENCH_ORG = "Benchmark Clinics"
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
    if Organization.objects.exists():
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
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"generated {made:,} points in {time.monotonic() - started:.0f} s")
    return org
