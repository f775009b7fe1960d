"""Real-format GS1 codes and a little stock, for the inventory tests."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.roles import Role
from glabella.accounts.services import add_member
from glabella.charting import services as charting
from glabella.conftest import PASSWORD
from glabella.inventory import services
from glabella.patients import services as patient_services

GS = "\x1d"  # FNC1 as a scanner sends it


def check_digit(body: str) -> str:
    """GS1 mod-10 check digit: weights 3, 1, 3, ... from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def gtin14(body13: str) -> str:
    assert len(body13) == 13 and body13.isdigit()
    return body13 + check_digit(body13)


# Made-up but well-formed GTIN-14s (company prefix 9501234, GS1's example prefix).
GTIN_BOTOX_COSMETIC_50 = gtin14("0950123400050")
GTIN_BOTOX_COSMETIC_100 = gtin14("0950123400100")
GTIN_DAXXIFY_100 = gtin14("0950123400777")


def yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def datamatrix(gtin: str, lot: str, expiry: date, serial: str = "") -> str:
    """What a scanner sends for a GS1 DataMatrix: ]d2, fixed fields, FNC1 after the lot."""
    tail = f"{GS}21{serial}" if serial else ""
    return f"]d201{gtin}17{yymmdd(expiry)}10{lot}{tail}"


def gs1_128(gtin: str, lot: str, expiry: date) -> str:
    """A GS1-128 scan with the lot in the middle: ]C1 and FNC1 ending the lot."""
    return f"]C101{gtin}10{lot}{GS}17{yymmdd(expiry)}"


def hri(gtin: str, lot: str, expiry: date) -> str:
    """The human-readable line under the code, typed by hand."""
    return f"(01){gtin}(17){yymmdd(expiry)}(10){lot}"


def in_a_year() -> date:
    return timezone.localdate() + timedelta(days=365)


def clinic_today(world, clinic=None) -> date:
    """Today at the clinic (its time zone), as the stock services count days: from 23:00 UTC in
    British Summer Time it is already tomorrow in London, while timezone.localdate() (UTC)
    still says today."""
    return services.local_date(clinic or world.clinic, timezone.now())


def receive_botox_cosmetic(world, lot="BC1001", count=2, size=50, clinic=None, **kw):
    gtin = GTIN_BOTOX_COSMETIC_50 if size == 50 else GTIN_BOTOX_COSMETIC_100
    return services.receive(
        world.actor("front_desk"),
        clinic or world.clinic,
        barcode=datamatrix(gtin, lot, kw.pop("expiry", in_a_year())),
        product_id="botox_cosmetic",
        vial_units=size,
        vial_count=count,
        **kw,
    )


def glabellar_session(world, patient=None, actor=None):
    """A draft Botox Cosmetic session with the 5 x 4 U glabellar protocol laid out."""
    return charting.start_session(
        actor or world.actor("injector"),
        patient or world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )


def draw_session(world, session, vial, actor=None):
    """Draw every live point of SESSION from VIAL."""
    actor = actor or world.actor("injector")
    return [
        services.draw(actor, vial, p.units, session=session, point_number=p.number)
        for p in charting.live_points(session)
    ]


def second_patient(world, given="Grace", family="Hopper", **extra):
    return patient_services.create_patient(
        world.actor("injector"),
        {
            "given_name": given,
            "family_name": family,
            "date_of_birth": date(1976, 12, 9),
            "phone": "07700 900456",
            "email": f"{given.lower()}@example.org",
            **extra,
        },
    )


def outsider_injector(world) -> Actor:
    """An injector of the other organization (its owner may not chart)."""
    owner = world.outsider_actor()
    m = add_member(
        owner,
        email="injector@beta.test",
        clinic=owner.clinic,
        role=Role.INJECTOR,
        password=PASSWORD,
    )
    return Actor(world.outsider_org, m.user, owner.clinic, Role.INJECTOR)


def ns(**kw):
    return SimpleNamespace(**kw)
