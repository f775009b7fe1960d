"""The chairside organization of the benchmarks, and saving a 31-point session.

``chairside_org()`` makes (once) an organization whose staff can really sign in, chart and
sign: a prescriber and an injector with API tokens, patients with a cosmetic and a migraine
consent on file (taken through ``consent.services.take_consent``, the consent page's path).
``fresh_patients(n)`` adds patients with their consents for one run (a patient is treated once
a run, so no repeat-treatment rule refuses a signature).

The save case: the service path of the API's ``POST /api/v1/sessions`` and ``/sign`` (start the
session, type the lot, add the 31 points of the PREEMPT migraine protocol in one change as the
API does, each through the charting checks and with its own audit event, then sign: the dose
check, the consent check, the recall) against inserting the same rows (the session, its
points, its audit events and its recall row) with bare ``Model.objects.create`` calls in one
transaction.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.accounts.tokens import create_token
from glabella.audit.models import AuditEvent, ChainHead
from glabella.charting import services as charting
from glabella.charting.models import InjectionPoint, TreatmentSession
from glabella.clinical import protocols
from glabella.consent import services as consent_services
from glabella.patients.models import Patient, name_key
from glabella.scheduling.models import Recall
from glabella.testing import signature_png

CHAIRSIDE_ORG = "Benchmark Chairside v1"
PASSWORD_UNUSED = None  # nobody signs in with a password: sessions are made directly
PROTOCOL = "chronic-migraine-preempt"  # 31 sites, 155 units of Botox
_batch = itertools.count()


@dataclass
class Chairside:
    org: Organization
    clinic: Clinic
    prescriber: User
    injector: User
    owner: User
    tokens: dict[str, str]  # role -> API token secret (made fresh each run: shown once)

    def actor(self, user: User, role: str) -> Actor:
        return Actor(self.org, user, self.clinic, role)

    @property
    def prescriber_actor(self) -> Actor:
        return self.actor(self.prescriber, "prescriber")


def chairside_org() -> Chairside:
    org = Organization.objects.filter(name=CHAIRSIDE_ORG).first()
    if org is None:
        with transaction.atomic():
            org = Organization.objects.create(name=CHAIRSIDE_ORG)
            clinic = Clinic.objects.create(
                organization=org, name="Chairside", timezone="Europe/London"
            )
            for role in ("owner", "prescriber", "injector"):
                user = User.objects.create_user(f"chairside-{role}@bench.test", None)
                Membership.objects.create(user=user, clinic=clinic, organization=org, role=role)
        consent_services.ensure_default_templates(org)
    members = {
        m.role: m
        for m in Membership.objects.filter(organization=org).select_related("user", "clinic")
    }
    clinic = members["owner"].clinic
    side = Chairside(
        org,
        clinic,
        members["prescriber"].user,
        members["injector"].user,
        members["owner"].user,
        {},
    )
    for role in ("prescriber", "injector"):
        m = members[role]
        made = create_token(
            side.actor(m.user, role), name=f"bench {timezone.now():%Y%m%d%H%M%S}", membership=m
        )
        side.tokens[role] = made.secret
    return side


def fresh_patients(side: Chairside, count: int) -> list[Patient]:
    """COUNT new adult patients, each with cosmetic and chronic-migraine consent on file."""
    batch = f"{timezone.now():%Y%m%d%H%M%S}-{next(_batch)}"
    made = Patient.objects.bulk_create(
        Patient(
            organization=side.org,
            home_clinic=side.clinic,
            given_name="Chair",
            family_name=f"Side-{batch}-{i}",
            name_key=name_key("Chair", f"Side-{batch}-{i}"),
            date_of_birth=date(1980, 1, 1) + timedelta(days=i % 5000),
            phone=f"07900 {i:06d}",
            phone_digits=f"07900{i:06d}",
        )
        for i in range(count)
    )
    made = list(
        Patient.objects.filter(organization=side.org, family_name__startswith=f"Side-{batch}-")
    )
    png = signature_png()
    injector = side.actor(side.injector, "injector")
    for patient in made:
        for category in ("cosmetic", "chronic-migraine"):
            consent_services.take_consent(
                injector,
                patient,
                category,
                method="drawn",
                signature_png=png,
                read_confirmed=True,
            )
    return made


# --- saving a 31-point session ----------------------------------------------------------------


def save_session(side: Chairside, patient: Patient) -> TreatmentSession:
    """What the chairside tablet's save does, through the services: start, lot, 31 points,
    sign (the dose check, consent, recall; an audit event at every step)."""
    actor = side.prescriber_actor
    sites = protocols.get(PROTOCOL).sites
    with transaction.atomic():  # as POST /api/v1/sessions: the draft and its points together
        session = charting.start_session(
            actor, patient, indication="chronic-migraine", product_id="botox"
        )
        session = charting.update_details(
            actor,
            session,
            session.version,
            {"lot_number": "C1234", "lot_expiry": timezone.localdate() + timedelta(days=200)},
        )
        charting.add_points(
            actor,
            session,
            session.version,
            [charting.NewPoint.like(site) for site in sites],
        )
        session.refresh_from_db(fields=["version"])
    return charting.sign(actor, session, session.version)


SIGNATURE = ("status", "signed_at", "signed_by_id", "consent_id", "findings_at_signing")


@dataclass
class Written:
    session: dict[str, Any]
    points: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    recalls: list[dict[str, Any]]


def rows_of(session: TreatmentSession, audit_after: int) -> Written:
    """The rows SAVE_SESSION wrote, as field values (to write again by hand)."""

    def plain(obj: Any, drop: tuple[str, ...]) -> dict[str, Any]:
        d = model_to_dict(obj)
        for f in obj._meta.concrete_fields:
            if f.attname != f.name:  # foreign keys by id
                d[f.attname] = d.pop(f.name, getattr(obj, f.attname))
        for f in obj._meta.concrete_fields:  # model_to_dict leaves out non-editable fields
            d.setdefault(f.attname, getattr(obj, f.attname))
        for k in ("id", *drop):
            d.pop(k, None)
        return d

    return Written(
        plain(session, ()),
        [plain(p, ("session_id",)) for p in InjectionPoint.objects.filter(session=session)],
        [
            plain(e, ("seq", "hash", "prev_hash"))
            for e in AuditEvent.objects.filter(seq__gt=audit_after)
        ],
        [plain(r, ("patient_id",)) for r in Recall.objects.filter(patient=session.patient_id)],
    )


def insert_bare(written: Written, patient: Patient) -> int:
    """The same rows with bare ORM calls, one transaction: no checks, no version claims. The
    audit rows get the next numbers of the chain's head and a chained digest (SHA-256 of a
    plain JSON dump, not the audit module's canonical form: the benchmark database's chain does
    not verify after a run)."""
    with transaction.atomic():
        # Points can only be added to a draft (the model refuses a signed session's): insert
        # the draft, its points, then the signature, as the rows were written.
        signed = {k: written.session[k] for k in SIGNATURE}
        draft = {k: v for k, v in written.session.items() if k not in SIGNATURE}
        draft.update(status="draft", patient_id=patient.pk)
        session = TreatmentSession.objects.create(**draft)
        for p in written.points:
            InjectionPoint.objects.create(**p, session_id=session.pk)
        TreatmentSession.objects.filter(pk=session.pk).update(**signed)
        head = ChainHead.objects.select_for_update().get(pk=1)
        prev = head.hash
        for n, e in enumerate(written.audit, start=1):
            digest = hashlib.sha256(
                (prev + json.dumps(e, default=str, sort_keys=True)).encode()
            ).hexdigest()
            AuditEvent.objects.create(**e, seq=head.seq + n, prev_hash=prev, hash=digest)
            prev = digest
        ChainHead.objects.filter(pk=1).update(seq=head.seq + len(written.audit), hash=prev)
        for r in written.recalls:
            Recall.objects.create(**r, patient_id=patient.pk)
    return session.pk
