"""Real signed sessions for the recall and cycle tests (through the charting services)."""

from __future__ import annotations

from datetime import date, timedelta

from glabella.charting import services
from glabella.charting.models import TreatmentSession
from glabella.charting.tests.conftest import ready_to_sign
from glabella.consent import services as consent_services
from glabella.consent.tests.helpers import PDF, upload

PROTOCOLS = {
    ("glabellar-lines", "botox_cosmetic"): "glabellar-lines-botox-cosmetic",
    ("glabellar-lines", "dysport"): "glabellar-lines-dysport",
    ("chronic-migraine", "botox"): "chronic-migraine-preempt",
    ("lateral-canthal-lines", "botox_cosmetic"): "lateral-canthal-lines",
}


def consent_from(world, days_ago: int, patient=None) -> None:
    """Paper consents (cosmetic and chronic migraine) signed DAYS_AGO days ago."""
    patient = patient or world.patient
    consent_services.ensure_default_templates(world.org)
    for category in ("cosmetic", "chronic-migraine"):
        consent_services.take_consent(
            world.actor("injector"),
            patient,
            category,
            method="paper",
            scan=upload("consent.pdf", PDF),
            signed_on=date.today() - timedelta(days=days_ago),
            read_confirmed=True,
        )


def signed(
    world,
    indication: str = "glabellar-lines",
    product_id: str = "botox_cosmetic",
    *,
    days_ago: int = 0,
    patient=None,
    follow_up_of: TreatmentSession | None = None,
    role: str = "injector",
) -> TreatmentSession:
    """A signed session DAYS_AGO days ago, laid out from the product's protocol."""
    actor = world.actor(role)
    session = services.start_session(
        actor,
        patient or world.patient,
        indication=indication,
        product_id=product_id,
        treated_on=date.today() - timedelta(days=days_ago),
        prescriber=world.users["prescriber"],
        start_from=f"protocol:{PROTOCOLS[(indication, product_id)]}",
        follow_up_of=follow_up_of,
    )
    session = ready_to_sign(world, session)
    if follow_up_of is not None:
        # A touch-up comes before the minimum interval: the prescriber overrides it.
        services.override(
            world.actor("prescriber"),
            session,
            "min-interval",
            "Touch-up at the two-week review, clinically indicated.",
        )
        session.refresh_from_db()
    return services.sign(actor, session, session.version)


def outside(world, indication: str, product_id: str, days_ago: int, units: str = "20", **kw):
    """An outside treatment recorded in the patient's history."""
    from glabella.patients import services as patient_services

    return patient_services.add_history_item(
        kw.pop("actor", None) or world.actor("injector"),
        kw.pop("patient", None) or world.patient,
        {
            "kind": "outside_treatment",
            "code": "toxin",
            "product_id": product_id,
            "treated_on": date.today() - timedelta(days=days_ago),
            "units": units,
            "area": "forehead",
            "indication": indication,
            **kw,
        },
    )
