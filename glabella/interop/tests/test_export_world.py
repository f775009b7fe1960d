"""A rich organization for the export tests (no tests here: a fixture module, named like
the tests it serves): the demo clinics (patients, history, signed and draft sessions, stock,
appointments, recalls, outcomes, paper consents with scans), plus a photograph and a consent
signed on the pad, all made through the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, Organization
from glabella.accounts.roles import Role
from glabella.accounts.tokens import create_token
from glabella.consent import services as consent_services
from glabella.consent.tests.helpers import make_png
from glabella.patients.models import Patient
from glabella.photos import services as photo_services
from glabella.photos.models import Photo
from glabella.photos.tests.helpers import gps_jpeg, photo_upload
from glabella.web import demo


@dataclass
class Rich:
    org: Organization
    owner: Actor
    injector: Actor
    photo: Photo
    token_secret: str


def rich_org(patients: int = 6) -> Rich:
    org = demo.load(patients=patients, now=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    owner_m = Membership.objects.filter(organization=org, role=Role.OWNER).first()
    injector_m = Membership.objects.filter(organization=org, role=Role.INJECTOR).first()
    owner = Actor(org, owner_m.user, owner_m.clinic, Role.OWNER)
    injector = Actor(org, injector_m.user, injector_m.clinic, Role.INJECTOR)
    patient = Patient.objects.for_org(org).order_by("pk").first()
    consent_services.ensure_default_templates(org)
    consent_services.take_consent(
        injector,
        patient,
        "photography",
        method="drawn",
        signature_png=make_png(),
        read_confirmed=True,
    )
    photo = photo_services.take_photo(
        injector,
        patient,
        photo_upload(gps_jpeg()),
        area="glabellar",
        view="front",
        expression="frown",
    )
    secret = create_token(owner, name="integration", membership=owner_m).secret
    return Rich(org, owner, injector, photo, secret)
