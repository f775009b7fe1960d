from datetime import date, timedelta

import pytest

from glabella.charting import services
from glabella.consent import services as consent_services
from glabella.testing import signature_png


@pytest.fixture
def consented(world):
    """Ada has a valid cosmetic and chronic-migraine consent."""
    actor = world.actor("injector")
    consent_services.ensure_default_templates(world.org)
    for category in ("cosmetic", "chronic-migraine"):
        consent_services.take_consent(
            actor,
            world.patient,
            category,
            method="drawn",
            signature_png=signature_png(),
            read_confirmed=True,
        )
    return world


def ready_to_sign(world, session, **extra):
    """Lot and expiry typed on the session, as until inventory exists."""
    data = {"lot_number": "C1234AB", "lot_expiry": date.today() + timedelta(days=200), **extra}
    return services.update_details(world.actor("injector"), session, session.version, data)


def signed_glabellar(world):
    """A signed Botox Cosmetic glabellar session (5 x 4 U) for Ada, typed lot."""
    session = services.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    session = ready_to_sign(world, session)
    return services.sign(world.actor("injector"), session, session.version)
