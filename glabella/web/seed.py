"""Synthetic clinic data in bulk: the one generator behind ``glabella seed`` and ``make bench``.

``generate(Spec(...))`` makes one organization: clinics (with their recall intervals), staff of
every role, lots with sealed vials received into stock, patients, treatment sessions over the
years asked for (with the injection points of each session's protocol, if wanted), the recall
rows built by the real ``recalls.rebuild_all`` (the code behind ``glabella recalls-rebuild``),
a share of them acted on, and appointments booked for the recalls marked booked.

Rows are written with raw bulk SQL (COPY on PostgreSQL, chunked ``executemany`` on SQLite),
every column prepared by its model field, with a progress bar on a terminal. The data makes
volume, not clinical sense: no consent forms, no photos, no audit trail of how it was made.

It never writes into a database holding a real organization: an organization is synthetic
when every member's e-mail is at ``seed.invalid`` (or ``bench.test``, the benchmark's older
address); ``generate`` refuses otherwise unless ``force=True`` (``glabella seed --force``).
Generating is idempotent by name: an organization of that name already seeded with as many
patients is left as it is; with another size it is refused (choose another name). While it is
being generated the organization is named "<name> (unfinished)" and takes its own name only at
the end, so a seed that was interrupted is never taken for a finished one.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from django.db import connection, models, transaction
from django.utils import timezone

from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import protocols
from glabella.inventory.models import Lot, MoveKind, StockMove, Vial, VialState
from glabella.patients.models import Patient, name_key
from glabella.web.progress import ProgressBar

SEED_DOMAIN = "seed.invalid"
SYNTHETIC_DOMAINS = (SEED_DOMAIN, "bench.test")
"""Members' e-mail domains that mark an organization as synthetic (reserved names: never real)."""

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
"""(indication, product, protocol) of the sessions: every point comes from the protocol."""
CLINICS = [("North", 90), ("Central", 105), ("South", 120)]
"""Three clinics with different cosmetic recall intervals (days)."""
CHANNELS = ["email", "email", "email", "sms", "sms", "phone", "none"]
VIAL_UNITS = {"botox_cosmetic": 100, "botox": 200, "dysport": 500}
LOTS_PER_PRODUCT = 12
SLOTS_PER_DAY = 16  # half-hour treatment appointments, 9:00 to 17:00
SEALED_VIALS_PER_LOT = 10
ACTED_ON = (("contacted", 20, 1), ("declined", 20, 2), ("booked", 50, 3), ("not_due", 100, 4))
"""Recall states set on a share of the rows after rebuilding: (state, modulus, remainder) of id."""

Progress = Callable[[int, int], None]


class _Quiet:
    def isatty(self) -> bool:
        return False


_QUIET: Any = _Quiet()


class SeedRefused(Exception):
    """The database or the name cannot be seeded; the message says why in plain words."""


@dataclass(frozen=True)
class Spec:
    name: str
    patients: int
    years: float = 3.0
    sessions_per_patient: float = 5.0
    points: bool = True
    appointments: bool = True
    seed: int = 11
    today: date | None = None
    staff: int = 20
    clinics: list[tuple[str, int]] = field(default_factory=lambda: list(CLINICS))
    email_domain: str = SEED_DOMAIN

    @property
    def sessions(self) -> int:
        return round(self.patients * self.sessions_per_patient)


@dataclass
class Made:
    organization: Organization
    created: bool
    patients: int = 0
    sessions: int = 0
    points: int = 0
    recalls: int = 0
    appointments: int = 0
    seconds: float = 0.0


# --- which databases may be seeded ---------------------------------------------------------------


def is_synthetic(org: Organization) -> bool:
    """True when ORG has members and every one of them has a reserved, synthetic address."""
    emails = list(Membership.objects.filter(organization=org).values_list("user__email", flat=True))
    return bool(emails) and all(e.rsplit("@", 1)[-1] in SYNTHETIC_DOMAINS for e in emails)


def real_organizations() -> list[str]:
    return [o.name for o in Organization.objects.order_by("name") if not is_synthetic(o)]


def check_database(name: str, *, force: bool = False) -> None:
    real = real_organizations()
    if real and not force:
        shown = ", ".join(real[:3]) + (" …" if len(real) > 3 else "")
        raise SeedRefused(
            f"This database holds real organizations ({shown}). Synthetic data goes into a "
            "database of its own; --force writes it here anyway."
        )
    if name in real:
        raise SeedRefused(f"{name!r} is a real organization: choose another name with --org.")


# --- bulk writing ---------------------------------------------------------------------------------


def model_rows(
    model: type[models.Model], rows: Iterable[dict[str, Any]]
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """The columns of MODEL (all but the key) and ROWS as tuples ready for the database: each
    value given by its field's attname (or name) or the field's default, prepared by the field."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    # Defaults: fixed ones worked out once; callable ones (a new UUID...) for every row.
    fixed = {f.attname: f.get_default() for f in fields if not callable(f.default)}

    def value(f: models.Field[Any, Any], row: dict[str, Any]) -> Any:
        if f.attname in row:
            return row[f.attname]
        if f.name in row:
            return row[f.name]
        return fixed[f.attname] if f.attname in fixed else f.get_default()

    def tuples() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            yield tuple(f.get_db_prep_save(value(f, row), connection) for f in fields)

    return [f.column for f in fields], tuples()


def bulk_insert(
    model: type[models.Model],
    rows: Iterable[dict[str, Any]],
    total: int,
    label: str,
    stream: TextIO | None = None,
) -> int:
    """Write ROWS into MODEL's table as fast as the database allows: COPY on PostgreSQL,
    executemany in chunks on SQLite (one transaction per chunk). Returns the rows written."""
    columns, tuples = model_rows(model, rows)
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    cols = ", ".join(qn(c) for c in columns)
    bar = ProgressBar(label, stream or sys.stderr)
    done = 0
    if connection.vendor == "postgresql":
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy,
        ):
            for row in tuples:
                copy.write_row(row)
                done += 1
                if done % 20000 == 0:
                    bar.update(done, total)
    else:
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"  # noqa: S608 (model names)
        batch: list[tuple[Any, ...]] = []
        for row in tuples:
            batch.append(row)
            if len(batch) >= 20000:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(sql, batch)
                done += len(batch)
                batch.clear()
                bar.update(done, total)
        if batch:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(sql, batch)
            done += len(batch)
    bar.update(done, max(total, done))
    bar.finish()
    return done


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# The tables a bulk load fills and the searches, worklists and reports then read by index.
_SETTLED = (
    "patients_patient",
    "charting_treatmentsession",
    "charting_injectionpoint",
    "scheduling_recall",
    "scheduling_appointment",
)


def _settle() -> None:
    """After the bulk load: the planner's statistics, and on PostgreSQL a VACUUM of the
    loaded tables as well, which merges the trigram indexes' pending entries (a GIN index
    takes bulk inserts into a pending list that every search then scans) and marks the pages
    all-visible (index-only scans of the covering search index read no table rows). VACUUM
    cannot run inside a transaction: there, statistics only."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        _analyze()
        return
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(_SETTLED)}")


# --- the generator ----------------------------------------------------------------------------


def generate(spec: Spec, *, force: bool = False, stream: TextIO | None = None) -> Made:
    """Seed one organization as SPEC says (idempotent by name; see the module's docstring)."""
    from glabella.scheduling import recalls
    from glabella.scheduling.models import Recall

    if Organization.objects.filter(name=unfinished_name(spec.name)).exists():
        raise SeedRefused(
            f"An earlier seed of {spec.name!r} was interrupted: its partial organization is "
            f"{unfinished_name(spec.name)!r}. Seed with another name (--org) or start from an "
            "empty database."
        )
    existing = Organization.objects.filter(name=spec.name).first()
    if existing is not None:
        if not is_synthetic(existing):
            raise SeedRefused(f"{spec.name!r} is a real organization: choose another name.")
        have = Patient.objects.filter(organization=existing).count()
        if have != spec.patients:
            raise SeedRefused(
                f"{spec.name!r} was already seeded with {have:,} patients, not "
                f"{spec.patients:,}: choose another name with --org (or start from an empty "
                "database)."
            )
        return Made(existing, created=False, patients=have)
    check_database(spec.name, force=force)
    if spec.patients < 1:
        raise SeedRefused("Give at least one patient.")
    if spec.years <= 0:
        raise SeedRefused("Give a number of years above zero.")
    out = stream or sys.stderr
    rng = random.Random(spec.seed)  # noqa: S311 (synthetic data, not a secret)
    started = time.monotonic()
    today = spec.today or timezone.localdate()
    span_days = max(1, round(spec.years * 365))
    now = timezone.now()
    slug = "".join(ch for ch in spec.name.lower() if ch.isalnum())[:30] or "seed"

    with transaction.atomic():
        org = Organization.objects.create(name=unfinished_name(spec.name))
        clinics = _clinics(org, spec.clinics)
        staff = _staff(org, clinics, spec.staff, f"{slug}@{spec.email_domain}")
        lots = _lots(org, clinics, staff[0], today)
    clinic_ids = [c.pk for c in clinics]
    practitioners = [u for u, role in staff[1:] if role in ("prescriber", "injector")]
    created_at = timezone.make_aware(
        datetime.combine(today - timedelta(days=span_days), datetime.min.time())
    )

    def patient_rows() -> Iterator[dict[str, Any]]:
        for i in range(spec.patients):
            given = GIVEN[i % len(GIVEN)]
            family = f"{FAMILIES[(i * 7) % len(FAMILIES)]}-{i}"
            yield {
                "organization_id": org.pk,
                "home_clinic_id": clinic_ids[i % len(clinic_ids)],
                "given_name": given,
                "family_name": family,
                "name_key": name_key(given, family),
                "date_of_birth": date(1950, 1, 1) + timedelta(days=(i * 7919) % 18250),  # adults
                "sex": "unknown",
                "phone": f"07800 {i:07d}" if i % 9 else "",
                "phone_digits": f"07800{i:07d}" if i % 9 else "",
                "email": f"p{i}@example.org" if i % 5 else "",
                "preferred_channel": CHANNELS[i % len(CHANNELS)],
                "reminder_consent": i % 10 < 7,
                "reminder_opt_out_at": created_at + timedelta(days=i % 1000)
                if i % 33 == 0
                else None,
                "created_at": created_at,
                "updated_at": created_at,
            }

    made = Made(org, created=True)
    made.patients = bulk_insert(Patient, patient_rows(), spec.patients, "patients", out)
    patients = list(
        Patient.objects.filter(organization=org).order_by("pk").values_list("pk", "home_clinic_id")
    )

    def session_rows() -> Iterator[dict[str, Any]]:
        for _ in range(spec.sessions):
            n = rng.randrange(len(patients))
            patient_id, home = patients[n]
            # Most patients come back for the same thing; some try something else.
            plan = PLANS[n % len(PLANS)] if rng.random() < 0.8 else rng.choice(PLANS)
            treated = today - timedelta(days=rng.randint(0, span_days))
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
            practitioner = rng.choice(practitioners)
            signed = status != Status.DRAFT
            lot = rng.choice(lots[plan[1]])
            yield {
                "organization_id": org.pk,
                "patient_id": patient_id,
                "clinic_id": home if rng.random() < 0.9 else rng.choice(clinic_ids),
                "practitioner_id": practitioner,
                "indication": plan[0],
                "product_id": plan[1],
                "treated_on": treated,
                "status": status,
                "version": 1,
                "protocol_id": plan[2],
                "flags": [],
                "findings_at_signing": [],
                "lot_number": lot.lot_number,
                "lot_expiry": lot.expiry,
                "created_at": at,
                "created_by_id": practitioner,
                "signed_at": at if signed else None,
                "signed_by_id": practitioner if signed else None,
                "voided_at": at if status == Status.VOIDED else None,
                "void_reason": "entered in error" if status == Status.VOIDED else "",
            }

    made.sessions = bulk_insert(TreatmentSession, session_rows(), spec.sessions, "sessions", out)
    if spec.points and made.sessions:
        made.points = _points(org, made.sessions, out)
    _analyze()
    bar = ProgressBar("recalls (recalls.rebuild_all)", out)
    made.recalls = recalls.rebuild_all(org, progress=bar.update)
    bar.finish()
    with transaction.atomic(), connection.cursor() as cursor:
        for state, mod, rest in ACTED_ON:
            cursor.execute(
                f"UPDATE {Recall._meta.db_table} SET state = %s, state_reason = %s "  # noqa: S608
                "WHERE organization_id = %s AND id %% %s = %s",
                [state, f"seed: {state}", org.pk, mod, rest],
            )
    if spec.appointments:
        made.appointments = _appointments(org, clinics, today, now, out)
    _settle()
    Organization.objects.filter(pk=org.pk).update(name=spec.name)  # finished: its own name
    org.name = spec.name
    made.seconds = time.monotonic() - started
    return made


def unfinished_name(name: str) -> str:
    return f"{name} (unfinished)"


def _clinics(org: Organization, layout: list[tuple[str, int]]) -> list[Clinic]:
    from glabella.scheduling.models import SchedulingSettings

    clinics = []
    for name, days in layout:
        clinic = Clinic.objects.create(organization=org, name=name, timezone="Europe/London")
        SchedulingSettings.objects.create(
            organization=org, clinic=clinic, cosmetic_recall_days=days
        )
        clinics.append(clinic)
    return clinics


def _staff(
    org: Organization, clinics: list[Clinic], count: int, address: str
) -> list[tuple[int, str]]:
    """An owner, a front desk and an auditor, then COUNT practitioners (one prescriber in four).
    Nobody can sign in: the passwords are unusable. Returns (user id, role), the owner first."""
    local, domain = address.split("@")
    roles = ["owner", "front_desk", "auditor"] + [
        "prescriber" if n % 4 == 0 else "injector" for n in range(max(count, 2))
    ]
    out = []
    for n, role in enumerate(roles):
        user = User.objects.create_user(f"{local}-{role}{n}@{domain}", None)
        Membership.objects.create(
            user=user, clinic=clinics[n % len(clinics)], organization=org, role=role
        )
        out.append((user.pk, role))
    return out


def _lots(
    org: Organization, clinics: list[Clinic], owner: tuple[int, str], today: date
) -> dict[str, list[Lot]]:
    """LOTS_PER_PRODUCT lots of every product, each with sealed vials received at every clinic."""
    lots: dict[str, list[Lot]] = {}
    received = timezone.make_aware(
        datetime.combine(today - timedelta(days=30), datetime.min.time())
    )
    vials, moves = [], []
    for product, size in VIAL_UNITS.items():
        lots[product] = Lot.objects.bulk_create(
            Lot(
                organization=org,
                product_id=product,
                lot_number=f"{product[:1].upper()}{n:04d}",
                expiry=today + timedelta(days=365 + 30 * n),
                vial_units=size,
            )
            for n in range(LOTS_PER_PRODUCT)
        )
        for lot in lots[product]:
            for clinic in clinics:
                moves.append(
                    StockMove(
                        organization=org,
                        clinic=clinic,
                        kind=MoveKind.RECEIVE,
                        lot=lot,
                        units=Decimal(SEALED_VIALS_PER_LOT * size),
                        vials=SEALED_VIALS_PER_LOT,
                        at=received,
                        by_id=owner[0],
                    )
                )
                vials += [
                    Vial(
                        organization=org, clinic=clinic, lot=lot, units=size, state=VialState.SEALED
                    )
                    for _ in range(SEALED_VIALS_PER_LOT)
                ]
    Vial.objects.bulk_create(vials)
    StockMove.objects.bulk_create(moves)
    return lots


def _points(org: Organization, sessions: int, out: TextIO) -> int:
    """Every session's points, as its protocol lays them out (sessions read by key, in chunks)."""
    layouts = {pid: protocols.get(pid).sites for _, _, pid in PLANS}
    per_session = sum(len(s) for s in layouts.values()) / len(layouts)
    total = round(sessions * per_session)

    bar = ProgressBar("injection points", out)
    written = 0
    after = 0
    while True:
        chunk = list(
            TreatmentSession.objects.filter(organization=org, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "protocol_id")[:10000]
        )
        if not chunk:
            break
        rows = [
            {
                "organization_id": org.pk,
                "session_id": session_id,
                "number": n,
                "diagram": site.diagram,
                "x": site.x,
                "y": site.y,
                "area": site.area,
                "muscle": site.muscle,
                "side": site.side,
                "units": site.units if site.units > 0 else Decimal(5),
                "depth": site.depth,
            }
            for session_id, protocol_id in chunk
            for n, site in enumerate(layouts[protocol_id], start=1)
        ]
        written += bulk_insert(InjectionPoint, rows, len(rows), "", _QUIET)
        after = chunk[-1][0]
        bar.update(written, max(total, written))
    bar.finish()
    return written


def _appointments(
    org: Organization, clinics: list[Clinic], today: date, now: datetime, out: TextIO
) -> int:
    """A treatment appointment for every recall marked booked, on its due day (or, when that
    has passed, within the next four weeks; or the next day the practitioner has a free
    half hour between 9:00 and 17:00)."""
    from glabella.scheduling.models import Appointment, AppointmentStatus, AppointmentType, Recall

    zones = {c.pk: ZoneInfo(c.timezone) for c in clinics}
    fallback = clinics[0].pk
    booked = list(
        Recall.objects.filter(organization=org, state="booked", is_current=True).values_list(
            "pk", "patient_id", "clinic_id", "practitioner_id", "indication", "due_on"
        )
    )

    taken: dict[tuple[int, date], int] = {}  # (practitioner, day) -> slots used

    def rows() -> Iterator[dict[str, Any]]:
        for pk, patient_id, clinic_id, practitioner_id, indication, due_on in booked:
            clinic_id = clinic_id or fallback
            day = due_on if due_on > today else today + timedelta(days=1 + pk % 28)
            while taken.get((practitioner_id, day), 0) >= SLOTS_PER_DAY:
                day += timedelta(days=1)  # a practitioner is never booked twice at once
            slot = taken.get((practitioner_id, day), 0)
            taken[(practitioner_id, day)] = slot + 1
            start = datetime.combine(day, datetime.min.time()).replace(
                tzinfo=zones[clinic_id]
            ) + timedelta(minutes=9 * 60 + 30 * slot)
            yield {
                "organization_id": org.pk,
                "clinic_id": clinic_id,
                "patient_id": patient_id,
                "practitioner_id": practitioner_id,
                "kind": AppointmentType.TREATMENT,
                "indication": indication,
                "starts_at": start,
                "ends_at": start + timedelta(minutes=30),
                "status": AppointmentStatus.BOOKED,
                "recall_id": pk,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }

    booked = [r for r in booked if r[3] is not None]  # an appointment needs a practitioner
    return bulk_insert(Appointment, rows(), len(booked), "appointments", out)
