"""Demo data: one organization, two clinics, a user for every role and ~60 patients.

Everything is created through the services, as a real clinic would create it: treatments,
stock, rooms, and appointments from three days ago to two weeks ahead (relative to the day the
demo is loaded, inside opening hours), and a calendar feed link for the prescriber.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.accounts.roles import Role
from glabella.accounts.services import add_clinic, add_member, setup_organization
from glabella.charting import services as charting
from glabella.charting.models import TreatmentSession
from glabella.clinical import catalogue
from glabella.consent import services as consent_services
from glabella.inventory import services as inventory
from glabella.inventory.models import Vial, VialState
from glabella.patients import screening, services
from glabella.patients.models import Patient, name_key
from glabella.scheduling import booking, feeds
from glabella.scheduling.models import Appointment, AppointmentStatus, Room
from glabella.web import demo_outcomes

DEMO_ORG = "Glabella Demo Clinics"
DEMO_PASSWORD = "chairside-demo-2026"  # noqa: S105  (published demo login, demo data only)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    clinic: str


DEMO_USERS = [
    ("owner@demo.glabella.test", "Olivia", "Owen", Role.OWNER),
    ("prescriber@demo.glabella.test", "Dr Priya", "Shah", Role.PRESCRIBER),
    ("injector@demo.glabella.test", "Isla", "Jones", Role.INJECTOR),
    ("frontdesk@demo.glabella.test", "Fran", "Desai", Role.FRONT_DESK),
    ("auditor@demo.glabella.test", "Adam", "Ortiz", Role.AUDITOR),
]

GIVEN_F = [
    "Amelia",
    "Sofia",
    "Grace",
    "Chloe",
    "Hannah",
    "Maya",
    "Leah",
    "Zara",
    "Nora",
    "Ella",
    "Ruth",
    "Priya",
    "Aisha",
    "Mei",
    "Ines",
    "Clara",
    "Jade",
    "Lucy",
    "Freya",
    "Rosa",
]
GIVEN_M = [
    "James",
    "Omar",
    "Lukas",
    "Daniel",
    "Arjun",
    "Tom",
    "Ben",
    "Mateo",
    "Kenji",
    "Sam",
    "Felix",
    "Noah",
    "Ravi",
    "Leo",
    "Hugo",
]
FAMILY = [
    "Smith",
    "Patel",
    "Nguyen",
    "O'Brien",
    "Kowalski",
    "Garcia",
    "Müller",
    "Okafor",
    "Rossi",
    "Johansson",
    "Chen",
    "Dubois",
    "Haddad",
    "Walsh",
    "Silva",
    "Novak",
    "Ahmed",
    "Evans",
    "Fischer",
    "Costa",
    "Murphy",
    "Tanaka",
    "Brennan",
    "Lindqvist",
    "Moreau",
]
STREETS = [
    "High Street",
    "Church Road",
    "Station Road",
    "Mill Lane",
    "Park Avenue",
    "Victoria Road",
]


def demo_logins() -> list[DemoLogin]:
    """One line per demo user: e-mail, role(s) and the clinics they work at."""
    by_user: dict[str, tuple[list[str], list[str]]] = {}
    memberships = (
        Membership.objects.filter(organization__name=DEMO_ORG)
        .select_related("user", "clinic")
        .order_by("user_id", "clinic__name")
    )
    for m in memberships:
        roles, clinics = by_user.setdefault(m.user.email, ([], []))
        if m.get_role_display() not in roles:
            roles.append(m.get_role_display())
        clinics.append(m.clinic.name)
    return [DemoLogin(e, ", ".join(r), ", ".join(c)) for e, (r, c) in by_user.items()]


def load(*, patients: int = 60, seed: int = 2026, now: datetime | None = None) -> Organization:
    """Load the demo organization. NOW (default: the real time) places the appointments."""
    rng = random.Random(seed)  # noqa: S311  (reproducible demo data, not security)
    with transaction.atomic():
        org, main_clinic, owner = setup_organization(
            org_name=DEMO_ORG,
            clinic_name="Marylebone",
            timezone="Europe/London",
            owner_email=DEMO_USERS[0][0],
            password=DEMO_PASSWORD,
            clinic_address="12 Wimpole Street\nLondon W1G 9SX",
        )
        owner.first_name, owner.last_name = DEMO_USERS[0][1], DEMO_USERS[0][2]
        owner.save(update_fields=["first_name", "last_name"])
        owner_actor = Actor(org, owner, main_clinic, Role.OWNER, via="demo")
        second = add_clinic(
            owner_actor,
            name="Headache Centre Leeds",
            timezone="Europe/London",
            address="3 Park Square East\nLeeds LS1 2NE",
        )
        members = {}
        for email, first, last, role in DEMO_USERS[1:]:
            members[role] = add_member(
                owner_actor,
                email=email,
                clinic=main_clinic,
                role=role,
                password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
            )
        # The prescriber and injector also work at the headache centre.
        for role in (Role.PRESCRIBER, Role.INJECTOR):
            add_member(
                owner_actor,
                email=members[role].user.email,
                clinic=second,
                role=role,
                password=DEMO_PASSWORD,
            )
        injector = members[Role.INJECTOR]
        staff = Actor(org, injector.user, main_clinic, Role.INJECTOR, via="demo")
        for i in range(patients):
            _demo_patient(rng, staff, clinic=main_clinic if i % 3 else second, index=i)
        prescriber = members[Role.PRESCRIBER].user
        leeds = Actor(org, injector.user, second, Role.INJECTOR, "demo")
        _demo_sessions(rng, org, staff, leeds, prescriber)
        _demo_stock(staff, leeds, owner_actor)
        desk = Actor(org, members[Role.FRONT_DESK].user, main_clinic, Role.FRONT_DESK, "demo")
        _demo_schedule(org, owner_actor, desk, leeds, prescriber, injector.user, now)
        demo_outcomes.load(
            rng,
            staff,
            leeds,
            Actor(org, prescriber, second, Role.PRESCRIBER, "demo"),
            timezone.localdate(),
        )
    return org


# A scanned paper consent form, as a clinic keeps for treatments before it used Glabella.
DEMO_SCAN = b"%PDF-1.4\n% Glabella demo: signed paper consent form (scan)\n%%EOF\n"


def _paper_consent(actor: Actor, patient: Patient, category: str, signed_on: date) -> None:
    consent_services.take_consent(
        actor,
        patient,
        category,
        method="paper",
        signed_on=signed_on,
        read_confirmed=True,
        scan=SimpleUploadedFile("consent.pdf", DEMO_SCAN, content_type="application/pdf"),
    )


def _signed_session(
    actor: Actor,
    patient: Patient,
    *,
    indication: str,
    product_id: str,
    protocol: str,
    treated_on: date,
    prescriber: User,
    lot: str,
    follow_up_of: TreatmentSession | None = None,
) -> TreatmentSession:
    session = charting.start_session(
        actor,
        patient,
        indication=indication,
        product_id=product_id,
        treated_on=treated_on,
        prescriber=prescriber,
        start_from=protocol,
        follow_up_of=follow_up_of,
    )
    product = catalogue.product(product_id)
    session = charting.update_details(
        actor,
        session,
        session.version,
        {
            "lot_number": lot,
            "lot_expiry": treated_on + timedelta(days=400),
            "vial_units": max(product.vial_units) if product_id != "myobloc" else None,
            "diluent_ml": {"botox": "4", "botox_cosmetic": "2.5", "dysport": "2.5"}.get(product_id),
        },
    )
    return charting.sign(actor, session, session.version)


def _demo_stock(london: Actor, leeds: Actor, owner: Actor) -> None:
    """Today's fridge (received after the history above, whose lots were typed by hand):
    Botox Cosmetic and Dysport in London, Botox in Leeds, one lot expiring within 30 days,
    one vial mixed this morning, minimums and prices."""
    today = timezone.localdate()
    deliveries = [
        (london, "botox_cosmetic", "C8812AB", today + timedelta(days=300), 100, 6),
        (london, "botox_cosmetic", "C8640AA", today + timedelta(days=20), 50, 2),
        (london, "dysport", "D51208", today + timedelta(days=240), 300, 3),
        (leeds, "botox", "M9034C", today + timedelta(days=420), 200, 8),
    ]
    for actor, product, lot, expiry, size, count in deliveries:
        inventory.receive(
            actor,
            actor.clinic,
            product_id=product,
            lot_number=lot,
            expiry=expiry,
            vial_units=size,
            vial_count=count,
        )
    # scoped: demo loader: only its own organization's data exists here
    vial = Vial.objects.filter(lot__lot_number="C8812AB", state=VialState.SEALED).first()
    if vial is not None:
        inventory.reconstitute(london, vial, "2.5")
    for actor, product, minimum in (
        (london, "botox_cosmetic", 4),
        (london, "dysport", 2),
        (leeds, "botox", 6),
    ):
        inventory.set_threshold(owner, actor.clinic, product, minimum)
    inventory.set_price(owner, london.clinic, "botox_cosmetic", "per_area", "180", "GBP")
    inventory.set_price(owner, leeds.clinic, "botox", "per_unit", "2.40", "GBP")


def _demo_sessions(
    rng: random.Random, org: Organization, london: Actor, leeds: Actor, prescriber: User
) -> None:
    """Signed treatments for patients without safety flags: glabellar and crow's feet lines in
    London, PREEMPT cycles every 12 weeks in Leeds, one touch-up and one draft for today."""
    today = timezone.localdate()
    candidates = [
        p
        for p in Patient.objects.for_org(org).order_by("pk")
        if p.screened_at and p.age_on(today) >= 18 and not services.active_history(p).exists()
    ]
    cosmetic, migraine = candidates[:14], candidates[14:18]
    for n, patient in enumerate(cosmetic):
        first_day = today - timedelta(days=rng.randint(100, 150))
        _paper_consent(london, patient, "cosmetic", first_day - timedelta(days=1))
        first = _signed_session(
            london,
            patient,
            indication="glabellar-lines",
            product_id="botox_cosmetic",
            protocol="protocol:glabellar-lines-botox-cosmetic",
            treated_on=first_day,
            prescriber=prescriber,
            lot=f"C{7100 + n}AB",
        )
        if n % 4 == 1:
            _signed_session(
                london,
                patient,
                indication="lateral-canthal-lines",
                product_id="botox_cosmetic",
                protocol="protocol:lateral-canthal-lines",
                treated_on=first_day,
                prescriber=prescriber,
                lot=f"C{7100 + n}AB",
            )
        if n == 2:  # weaker on the left at the two-week review: a 2 U touch-up
            touch = charting.start_session(
                london,
                patient,
                indication="glabellar-lines",
                product_id="botox_cosmetic",
                treated_on=first_day + timedelta(days=14),
                prescriber=prescriber,
                follow_up_of=first,
            )
            corrugator = next(p for p in charting.live_points(first) if p.muscle == "corrugator")
            charting.add_point(
                london,
                touch,
                touch.version,
                diagram=corrugator.diagram,
                x=corrugator.x,
                y=corrugator.y,
                units="2",
            )
            touch.refresh_from_db()
            touch = charting.update_details(
                london,
                touch,
                touch.version,
                {"lot_number": f"C{7100 + n}AB", "lot_expiry": first_day + timedelta(days=400)},
            )
            # Re-treatment before 3 months: the engine blocks it; the prescriber decides.
            charting.override(
                Actor(org, prescriber, london.clinic, Role.PRESCRIBER, via="demo"),
                touch,
                "min-interval",
                "Two-week review touch-up of the same treatment: asymmetry on "
                "the left, 2 U agreed with the patient.",
            )
            touch.refresh_from_db()
            charting.sign(london, touch, touch.version)
    for n, patient in enumerate(migraine):
        start = today - timedelta(days=3 * 84 + rng.randint(0, 6))
        _paper_consent(leeds, patient, "chronic-migraine", start - timedelta(days=2))
        for cycle in range(3):
            _signed_session(
                leeds,
                patient,
                indication="chronic-migraine",
                product_id="botox",
                protocol="protocol:chronic-migraine-preempt",
                treated_on=start + timedelta(days=84 * cycle),
                prescriber=prescriber,
                lot=f"M{3300 + n}{cycle}",
            )
    if cosmetic:
        charting.start_session(
            london,
            cosmetic[-1],
            indication="glabellar-lines",
            product_id="botox_cosmetic",
            prescriber=prescriber,
            start_from="repeat",
        )


def _demo_patient(rng: random.Random, actor: Actor, clinic: object, index: int) -> None:
    today = timezone.localdate()
    child = index in (7, 31, 44)  # spasticity patients: children, one without a weight
    female = rng.random() < (0.5 if child else 0.78)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    family = FAMILY[index % len(FAMILY)] if index < len(FAMILY) else rng.choice(FAMILY)
    age = rng.randint(4, 15) if child else rng.randint(22, 74)
    dob = today - timedelta(days=age * 365 + rng.randint(0, 364))
    weight: Decimal | None
    if child:
        weight = None if index == 44 else Decimal(12 + age * 3 + rng.randint(0, 6))
    else:
        weight = Decimal(rng.randint(52, 98)) if rng.random() < 0.6 else None
    phone = f"07{rng.randint(100, 999)} {rng.randint(100000, 999999)}"
    mailbox = re.sub(r"[^a-z]", "", name_key(family, "").replace(" ", ""))
    email = f"{given.split()[-1].lower()}.{mailbox}{index}@example.org"
    consent = rng.random() < 0.8
    patient = services.create_patient(
        actor,
        {
            "given_name": given,
            "family_name": family,
            "date_of_birth": dob,
            "sex": "female" if female else "male",
            "weight_kg": weight,
            "phone": phone,
            "email": email,
            "address": f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
            "preferred_channel": rng.choice(["email", "email", "sms"]),
            "reminder_consent": consent,
            "home_clinic": clinic,
        },
    )
    if index % 12 == 11:
        return  # a few patients not screened yet, as in any real clinic
    yes: set[str] = set()
    details: dict[str, str] = {}
    if rng.random() < 0.12:
        yes.add("medication:anticoagulant")
        details["medication:anticoagulant"] = rng.choice(
            ["apixaban 5 mg", "warfarin", "aspirin 75 mg"]
        )
    if female and 20 <= age <= 44 and rng.random() < 0.06:
        yes.add("pregnancy:pregnant")
    if female and 20 <= age <= 44 and rng.random() < 0.05:
        yes.add("breastfeeding:breastfeeding")
    if index == 13:
        yes.add("condition:myasthenia-gravis")
        details["condition:myasthenia-gravis"] = "ocular MG, on pyridostigmine"
    if index in (5, 29):
        yes.add("allergy:cow-milk-protein")
    if index == 22:
        yes.add("allergy:albumin")
    if index == 17:
        yes.add("medication:aminoglycoside")
        details["medication:aminoglycoside"] = "gentamicin course until next week"
    if index == 38:
        yes.add("infection:infection-at-site")
        details["infection:infection-at-site"] = "cold sore, upper lip"
    answers = {
        f"{q.kind}:{q.code}": f"{q.kind}:{q.code}" in yes for q in screening.SCREENING_QUESTIONS
    }
    services.record_screening(actor, patient, answers, details)
    if not child and rng.random() < 0.25:
        product = rng.choice(["botox_cosmetic", "dysport", "xeomin"])
        units = {"botox_cosmetic": "20", "dysport": "50", "xeomin": "20"}[product]
        services.add_history_item(
            actor,
            patient,
            {
                "kind": "outside_treatment",
                "code": "toxin",
                "treated_on": today - timedelta(days=rng.randint(20, 400)),
                "product_id": product,
                "units": units,
                "area": "Glabella (frown lines)",
                "indication": "glabellar-lines",
                "detail": rng.choice(["another clinic in town", "while travelling", ""]),
            },
        )
    if index == 9:
        services.add_history_item(
            actor,
            patient,
            {"kind": "allergy", "code": "product:dysport", "detail": "hives after Dysport in 2023"},
        )


# --- appointments ------------------------------------------------------------------------------

SCHEDULE_PAST_DAYS = 3
SCHEDULE_DAYS_AHEAD = 13  # today and the next two weeks
LONDON_VISITS = [
    ("treatment", "glabellar-lines"),
    ("consultation", ""),
    ("review", "glabellar-lines"),
    ("treatment", "lateral-canthal-lines"),
]


@dataclass(frozen=True)
class _Shift:
    """Who works where on which weekdays (0 = Monday), and how their slots are laid out."""

    practitioner: User
    clinic: Clinic
    room: Room
    weekdays: frozenset[int]
    first_offset: timedelta
    every: timedelta


def _demo_schedule(
    org: Organization,
    owner: Actor,
    desk: Actor,
    leeds: Actor,
    prescriber: User,
    injector: User,
    now: datetime | None = None,
) -> None:
    """Rooms in both clinics and a realistic fortnight: the injector in Marylebone every open
    day, the prescriber in Marylebone on Monday, Wednesday, Friday and Saturday and at the
    headache centre on Tuesday and Thursday. Past appointments are done (one did not attend);
    today's are done, arrived or booked by the clock; one next appointment is cancelled."""
    london, headache = desk.clinic, leeds.clinic
    assert london is not None and headache is not None
    room_1 = booking.add_room(owner, london, "Room 1")
    room_2 = booking.add_room(owner, london, "Room 2")
    room_a = booking.add_room(owner, headache, "Clinic room A")
    shifts = [
        _Shift(injector, london, room_1, frozenset(range(7)), timedelta(0), timedelta(minutes=75)),
        _Shift(
            prescriber,
            london,
            room_2,
            frozenset({0, 2, 4, 5}),
            timedelta(minutes=30),
            timedelta(minutes=90),
        ),
        _Shift(
            prescriber,
            headache,
            room_a,
            frozenset({1, 3}),
            timedelta(minutes=30),
            timedelta(minutes=75),
        ),
    ]
    patients = Patient.objects.for_org(org).order_by("pk")
    london_pool = list(patients.filter(home_clinic=london))
    migraine_ids = set(
        TreatmentSession.objects.for_org(org)
        .filter(indication="chronic-migraine")
        .values_list("patient_id", flat=True)
    )
    migraine = [p for p in patients if p.pk in migraine_ids]
    leeds_pool = [p for p in patients.filter(home_clinic=headache) if p.pk not in migraine_ids]
    rng = random.Random(606)  # noqa: S311  (reproducible demo data, not security)
    now = now or timezone.now()
    today = booking.local(now, london).date()
    turn = {"london": 0, "leeds": 0, "migraine": 0}
    past: list[Appointment] = []
    upcoming: list[Appointment] = []
    for offset in range(-SCHEDULE_PAST_DAYS, SCHEDULE_DAYS_AHEAD + 1):
        day = today + timedelta(days=offset)
        for shift in shifts:
            if day.weekday() not in shift.weekdays:
                continue
            for opens, closes in booking.opening_intervals(shift.clinic, day):
                start = opens + shift.first_offset
                while start + shift.every <= closes:
                    slot, start = start, start + shift.every
                    if rng.random() > 0.6:
                        continue
                    if shift.clinic == headache:
                        if offset >= 0 and turn["migraine"] < len(migraine):
                            # The PREEMPT patients are due their next cycle about now.
                            patient = migraine[turn["migraine"]]
                            kind, indication = "migraine_cycle", "chronic-migraine"
                            turn["migraine"] += 1
                        else:
                            pool = leeds_pool or london_pool
                            patient = pool[turn["leeds"] % len(pool)]
                            kind, indication = "consultation", ""
                            turn["leeds"] += 1
                        actor = leeds
                    else:
                        patient = london_pool[turn["london"] % len(london_pool)]
                        kind, indication = LONDON_VISITS[turn["london"] % len(LONDON_VISITS)]
                        turn["london"] += 1
                        actor = desk
                    appointment = booking.book(
                        actor,
                        patient=patient,
                        clinic=shift.clinic,
                        practitioner=shift.practitioner,
                        room=shift.room,
                        starts_at=slot,
                        kind=kind,
                        indication=indication,
                        now=slot - timedelta(days=7),  # booked the week before
                    )
                    (past if appointment.starts_at <= now else upcoming).append(appointment)
    _demo_statuses(desk, past, upcoming, now)
    feeds.create_feed(Actor(org, prescriber, london, Role.PRESCRIBER, via="demo"))


def _demo_statuses(
    desk: Actor, past: list[Appointment], upcoming: list[Appointment], now: datetime
) -> None:
    """What has happened by now: finished appointments are done (the second one of the last
    open day before today did not attend), one under way has arrived, and the first
    appointment from tomorrow on is cancelled with a reason."""
    assert desk.clinic is not None
    today = booking.local(now, desk.clinic).date()
    before_today = [a for a in past if booking.local(a.starts_at, a.clinic).date() < today]
    no_show = None
    if before_today:
        last_day = booking.local(before_today[-1].starts_at, before_today[-1].clinic).date()
        that_day = [
            a for a in before_today if booking.local(a.starts_at, a.clinic).date() == last_day
        ]
        no_show = that_day[min(1, len(that_day) - 1)]
    for appointment in past:
        if appointment is no_show:
            booking.set_status(desk, appointment, AppointmentStatus.NO_SHOW)
            continue
        arrived = booking.set_status(desk, appointment, AppointmentStatus.ARRIVED)
        if appointment.ends_at <= now:
            booking.set_status(desk, arrived, AppointmentStatus.DONE)
    later = [a for a in upcoming if booking.local(a.starts_at, a.clinic).date() > today]
    if later:
        booking.set_status(
            desk,
            later[0],
            AppointmentStatus.CANCELLED,
            reason="Patient has a heavy cold and will call to rebook.",
        )
