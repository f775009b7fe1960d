"""A rich world for the FHIR tests, built only through the services, as a clinic would.

Ada has: a valid cosmetic consent; a signed Botox Cosmetic glabellar session (5 points of 4 U)
drawn from a reconstituted vial of lot C1234AB; a Facial Wrinkle Scale grade and a HIT-6 on
it; the first two weeks of last month's headache diary; a booked review appointment; and a
moderate eyelid ptosis recorded against the session. (Imported by the other FHIR tests.)
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.utils import timezone

from glabella.charting import services as charting
from glabella.charting.models import TreatmentSession
from glabella.consent import services as consent_services
from glabella.inventory import services as stock
from glabella.inventory.tests.helpers import receive_botox_cosmetic
from glabella.outcomes import adverse, assessments, diary
from glabella.scheduling import booking
from glabella.testing import signature_png

LOT = "C1234AB"


def next_weekday_at(tz: str, hour: int) -> datetime:
    """The next Monday to Thursday at HOUR:00 in TZ, at least two days away (clinic open)."""
    zone = ZoneInfo(tz)
    day = timezone.localdate() + timedelta(days=2)
    while day.weekday() > 3:
        day += timedelta(days=1)
    return datetime.combine(day, time(hour, 0), tzinfo=zone)


def make_rich(world):
    """Fill WORLD (the conftest ``world`` or ``live_world``) and return what was made."""
    injector = world.actor("injector")
    today = timezone.localdate()
    consent_services.ensure_default_templates(world.org)
    consent = consent_services.take_consent(
        injector,
        world.patient,
        "cosmetic",
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )
    receipt = receive_botox_cosmetic(world, lot=LOT, count=1)
    vial = stock.reconstitute(injector, receipt.vials[0], "1.25")
    session = charting.start_session(
        injector,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    session = TreatmentSession.objects.get(pk=session.pk)
    charting.select_vial(injector, session, session.version, vial)
    session = TreatmentSession.objects.get(pk=session.pk)
    session = charting.sign(injector, session, session.version)
    grade = assessments.record(
        injector,
        world.patient,
        "facial-wrinkle-scale",
        1,
        time_point="two_weeks",
        assessed_on=today,
        area="glabella",
        contraction="maximum",
        session=session,
    )
    hit6 = assessments.record(
        injector,
        world.patient,
        "hit-6",
        [10, 10, 8, 8, 11, 6],
        time_point="baseline",
        assessed_on=today,
    )
    diary_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    for n in range(14):
        diary.record_day(
            injector,
            world.patient,
            diary_month + timedelta(days=n),
            headache=n % 3 == 0,
            migraine=n % 6 == 0,
            severity=2 if n % 3 == 0 else None,
            acute_medication=["triptan"] if n % 6 == 0 else [],
        )
    appointment = booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=next_weekday_at(world.clinic.timezone, 10),
        kind="review",
        indication="glabellar-lines",
    )
    ptosis = adverse.record(
        injector,
        session,
        kind="eyelid_ptosis",
        onset_on=today,
        severity="moderate",
        serious=False,
        description="Left upper lid 2 mm lower than the right.",
    )
    points = list(session.points.filter(removed=False).order_by("number"))
    return SimpleNamespace(
        consent=consent,
        vial=vial,
        session=session,
        points=points,
        grade=grade,
        hit6=hit6,
        appointment=appointment,
        diary_month=diary_month,
        adverse=ptosis,
        units=[p.units for p in points],
        total=sum((p.units for p in points), Decimal(0)),
    )


def test_the_rich_world_is_what_the_fhir_tests_expect(world):
    rich = make_rich(world)
    assert rich.session.status == "signed"
    assert len(rich.points) == 5 and rich.total == Decimal(20)
    assert all(p.vial_id == rich.vial.pk for p in rich.points)
    assert rich.vial.lot.lot_number == LOT
