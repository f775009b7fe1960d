"""The resource types the FHIR server serves: where each comes from and how it is searched.

A :class:`Kind` is one FHIR resource type. It has one or more :class:`Source` s (Observation
has two: scored assessments, and headache days per month aggregated from the diary); a
source is an organization-scoped, stably ordered queryset, a builder (:mod:`.build`) and the
fields the common search parameters (``patient``, ``date``, ``_id``, ``_since``) filter on.
Every resource leaving this module has been validated with ``fhir.resources.R4B``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import (
    Count,
    DateField,
    Exists,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import TruncMonth
from django.utils import timezone
from fhir.resources.R4B.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.location import Location as FhirLocation
from fhir.resources.R4B.medicationadministration import (
    MedicationAdministration as FhirMedicationAdministration,
)
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.organization import Organization as FhirOrganization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner
from fhir.resources.R4B.procedure import Procedure as FhirProcedure

from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.charting.models import Amendment, InjectionPoint, TreatmentSession
from glabella.consent.models import Consent
from glabella.interop.fhir import build
from glabella.outcomes.models import AdverseEvent, Assessment, DiaryEntry
from glabella.patients.models import Patient
from glabella.scheduling.models import Appointment

DIGITS = re.compile(r"^[1-9][0-9]{0,17}$")


class UnknownType(KeyError):
    """A resource type the server does not serve."""


# --- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    queryset: Callable[[Any], QuerySet]  # organization -> stably ordered rows of it
    build: Callable[[Any], dict[str, Any]]
    since: Callable[[datetime], Q]  # changed at or after
    parse_id: Callable[[str], Q | None]  # resource id -> filter, or None (not this source)
    patient_field: str | None = None  # "patient_id", "session__patient_id"; None: no compartment
    date_field: str | None = None
    date_kind: str = "date"  # "date" | "datetime" | "month"
    params: dict[str, Any] = field(default_factory=dict)  # name -> (str -> Q) | DateParam


def pk_id(value: str) -> Q | None:
    return Q(pk=int(value)) if DIGITS.match(value) else None


def prefixed_id(prefix: str) -> Callable[[str], Q | None]:
    def parse(value: str) -> Q | None:
        if not value.startswith(prefix):
            return None
        rest = value[len(prefix) :]
        return Q(pk=int(rest)) if DIGITS.match(rest) else None

    return parse


DIARY_ID = re.compile(r"^diary-([1-9][0-9]{0,17})-([0-9]{4})-([0-9]{2})$")


def diary_id(value: str) -> Q | None:
    m = DIARY_ID.match(value)
    if not m:
        return None
    try:
        month = date(int(m.group(2)), int(m.group(3)), 1)
    except ValueError:
        return None
    return Q(patient_id=int(m.group(1)), month=month)


# --- querysets (each scoped to the organization, each with a stable order) -------------------


def organizations(org: Any) -> QuerySet:
    return Organization.objects.filter(pk=getattr(org, "pk", org)).order_by("pk")


def clinics(org: Any) -> QuerySet:
    return Clinic.objects.filter(organization=org).order_by("pk")


def practitioners(org: Any) -> QuerySet:
    members = Membership.objects.filter(organization=org, user=OuterRef("pk"))
    return (
        User.objects.filter(Exists(members))
        .annotate(active_here=Exists(members.filter(is_active=True)))
        .order_by("pk")
    )


def patients(org: Any) -> QuerySet:
    return Patient.objects.for_org(org).order_by("pk")


def sessions(org: Any) -> QuerySet:
    last = Amendment.objects.filter(session=OuterRef("pk")).order_by("-at").values("at")[:1]
    return (
        TreatmentSession.objects.for_org(org)
        .select_related("practitioner", "prescriber", "clinic")
        .annotate(last_amended_at=Subquery(last))
        .order_by("pk")
    )


def session_since(prefix: str = "") -> Callable[[datetime], Q]:
    def since(when: datetime) -> Q:
        amended = Amendment.objects.filter(session=OuterRef(f"{prefix}pk"), at__gte=when)
        return (
            Q(**{f"{prefix}created_at__gte": when})
            | Q(**{f"{prefix}signed_at__gte": when})
            | Q(**{f"{prefix}voided_at__gte": when})
            | Q(Exists(amended))
        )

    return since


def points(org: Any) -> QuerySet:
    last = Amendment.objects.filter(session=OuterRef("session_id")).order_by("-at").values("at")[:1]
    return (
        InjectionPoint.objects.for_org(org)
        .filter(removed=False)
        .select_related(
            "session",
            "session__practitioner",
            "session__vial__lot",
            "vial__lot",
        )
        .annotate(last_amended_at=Subquery(last))
        .order_by("pk")
    )


def _point_build(pt: Any) -> dict[str, Any]:
    pt.session.last_amended_at = pt.last_amended_at
    return build.medication_administration(pt)


def _point_since(when: datetime) -> Q:
    amended = Amendment.objects.filter(session=OuterRef("session_id"), at__gte=when)
    return (
        Q(session__created_at__gte=when)
        | Q(session__signed_at__gte=when)
        | Q(session__voided_at__gte=when)
        | Q(Exists(amended))
    )


def assessments(org: Any) -> QuerySet:
    return Assessment.objects.for_org(org).order_by("pk")


def diary_months(org: Any) -> QuerySet:
    return (
        DiaryEntry.objects.for_org(org)
        .filter(replaced_at__isnull=True)
        .annotate(month=TruncMonth("day", output_field=DateField()))
        .values("patient_id", "month")
        .annotate(
            recorded=Count("pk"),
            headache=Count("pk", filter=Q(headache=True)),
            migraine=Count("pk", filter=Q(migraine=True)),
            medication=Count("pk", filter=~Q(acute_medication=[])),
            last=Max("recorded_at"),
        )
        .order_by("patient_id", "month")
    )


def consents(org: Any) -> QuerySet:
    return Consent.objects.for_org(org).defer("signature", "scan").order_by("pk")


def appointments(org: Any) -> QuerySet:
    return (
        Appointment.objects.for_org(org)
        .select_related("practitioner", "clinic", "room")
        .order_by("pk")
    )


def adverse_events(org: Any) -> QuerySet:
    return AdverseEvent.objects.for_org(org).order_by("pk")


# --- search parameter helpers ----------------------------------------------------------------


@dataclass(frozen=True)
class DateParam:
    """A search parameter on a date field (prefixes eq, ne, gt, lt, ge, le)."""

    field: str
    kind: str = "date"


def parse_ref(value: str, resource_type: str) -> int:
    """``Type/123``, ``123`` or a full URL ending in ``Type/123`` -> 123 (else ValueError)."""
    tail = value.rsplit("/", 2)
    if len(tail) >= 2:
        if tail[-2] != resource_type:
            raise ValueError(f"expected a reference to a {resource_type}, e.g. {resource_type}/1")
        value = tail[-1]
    if not DIGITS.match(value):
        raise ValueError(f"expected a {resource_type} id (a number) or {resource_type}/<id>")
    return int(value)


def ref_param(field_name: str, resource_type: str) -> Callable[[str], Q]:
    def param(value: str) -> Q:
        return Q(**{field_name: parse_ref(value, resource_type)})

    return param


def _name_param(value: str) -> Q:
    q = Q()
    for word in value.split():
        q &= Q(given_name__icontains=word) | Q(family_name__icontains=word)
    return q


GENDERS = frozenset({"female", "male", "other", "unknown"})


def _gender_param(value: str) -> Q:
    if value not in GENDERS:
        raise ValueError(f"gender must be one of {', '.join(sorted(GENDERS))}")
    return Q(sex=value)


# --- kinds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    type: str
    model: Any  # the fhir.resources R4B class
    permission: str | None
    sources: tuple[Source, ...]
    description: str = ""

    @property
    def patient_compartment(self) -> bool:
        return any(s.patient_field for s in self.sources)

    @property
    def search_params(self) -> list[str]:
        names = {"_id", "_count"}
        for s in self.sources:
            if s.patient_field:
                names |= {"patient", "subject"}
            if s.date_field:
                names.add("date")
            names |= set(s.params)
        return sorted(names)

    def validate(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource as fhir.resources R4B parses and writes it (raises when invalid)."""
        return self.model.model_validate(resource).model_dump(mode="json")

    def rows(
        self,
        source: Source,
        organization: Any,
        *,
        since: datetime | None = None,
        patient_ids: Iterable[int] | None = None,
        where: Q | None = None,
    ) -> QuerySet:
        qs = source.queryset(organization)
        if since is not None:
            qs = qs.filter(source.since(since))
        if patient_ids is not None and source.patient_field:
            qs = qs.filter(**{f"{source.patient_field}__in": list(patient_ids)})
        if where is not None:
            qs = qs.filter(where)
        return qs

    def iterate(
        self,
        organization: Any,
        *,
        since: datetime | None = None,
        patient_ids: Iterable[int] | None = None,
        chunk_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        ids = list(patient_ids) if patient_ids is not None else None
        for source in self.sources:
            qs = self.rows(source, organization, since=since, patient_ids=ids)
            for row in qs.iterator(chunk_size=chunk_size):
                yield self.validate(source.build(row))

    def count(self, organization: Any, *, since: datetime | None = None) -> int:
        return sum(self.rows(s, organization, since=since).count() for s in self.sources)

    def read(self, organization: Any, resource_id: str) -> dict[str, Any] | None:
        for source in self.sources:
            q = source.parse_id(resource_id)
            if q is None:
                continue
            row = source.queryset(organization).filter(q).first()
            if row is not None:
                return self.validate(source.build(row))
        return None


def _today_consent(c: Any) -> dict[str, Any]:
    return build.consent(c, timezone.localdate())


KINDS: dict[str, Kind] = {
    k.type: k
    for k in (
        Kind(
            "Organization",
            FhirOrganization,
            None,
            (Source(organizations, build.organization, lambda w: Q(created_at__gte=w), pk_id),),
            "The clinic business (one per Glabella organization).",
        ),
        Kind(
            "Location",
            FhirLocation,
            None,
            (Source(clinics, build.location, lambda w: Q(created_at__gte=w), pk_id),),
            "A clinic of the organization.",
        ),
        Kind(
            "Practitioner",
            FhirPractitioner,
            None,
            (Source(practitioners, build.practitioner, lambda w: Q(date_joined__gte=w), pk_id),),
            "A member of staff (every user with a membership in the organization).",
        ),
        Kind(
            "Patient",
            FhirPatient,
            "patient.view_contact",
            (
                Source(
                    patients,
                    build.patient,
                    lambda w: Q(updated_at__gte=w),
                    pk_id,
                    patient_field="pk",
                    params={
                        "name": _name_param,
                        "family": lambda v: Q(family_name__icontains=v),
                        "given": lambda v: Q(given_name__icontains=v),
                        "gender": _gender_param,
                        "birthdate": DateParam("date_of_birth"),
                    },
                ),
            ),
            "A patient: demographics and contact details.",
        ),
        Kind(
            "Encounter",
            FhirEncounter,
            "session.view",
            (
                Source(
                    sessions,
                    build.encounter,
                    session_since(),
                    pk_id,
                    patient_field="patient_id",
                    date_field="treated_on",
                ),
            ),
            "The visit of a treatment session (one per session).",
        ),
        Kind(
            "Procedure",
            FhirProcedure,
            "session.view",
            (
                Source(
                    sessions,
                    build.procedure,
                    session_since(),
                    pk_id,
                    patient_field="patient_id",
                    date_field="treated_on",
                    params={"encounter": ref_param("pk", "Encounter")},
                ),
            ),
            "The botulinum toxin treatment of a session (one per session).",
        ),
        Kind(
            "MedicationAdministration",
            FhirMedicationAdministration,
            "session.view",
            (
                Source(
                    points,
                    _point_build,
                    _point_since,
                    pk_id,
                    patient_field="session__patient_id",
                    date_field="session__treated_on",
                    params={
                        "context": ref_param("session_id", "Encounter"),
                        "effective-time": DateParam("session__treated_on"),
                    },
                ),
            ),
            "One injection point: dose in the product's units, site, route, lot.",
        ),
        Kind(
            "Observation",
            FhirObservation,
            "outcome.view",
            (
                Source(
                    assessments,
                    build.assessment_observation,
                    lambda w: Q(recorded_at__gte=w),
                    prefixed_id("assessment-"),
                    patient_field="patient_id",
                    date_field="assessed_on",
                    params={"encounter": ref_param("session_id", "Encounter")},
                ),
                Source(
                    diary_months,
                    build.diary_observation,
                    lambda w: Q(last__gte=w),
                    diary_id,
                    patient_field="patient_id",
                    date_field="month",
                    date_kind="month",
                ),
            ),
            "Scale scores (HIT-6, MIDAS, HDSS, wrinkle grades) and headache days per month.",
        ),
        Kind(
            "Consent",
            FhirConsent,
            "consent.view",
            (
                Source(
                    consents,
                    _today_consent,
                    lambda w: Q(recorded_at__gte=w) | Q(withdrawn_at__gte=w),
                    pk_id,
                    patient_field="patient_id",
                    date_field="signed_on",
                ),
            ),
            "A signed treatment consent (withdrawn or expired: inactive).",
        ),
        Kind(
            "Appointment",
            FhirAppointment,
            "appointment.view",
            (
                Source(
                    appointments,
                    build.appointment,
                    lambda w: Q(updated_at__gte=w),
                    pk_id,
                    patient_field="patient_id",
                    date_field="starts_at",
                    date_kind="datetime",
                ),
            ),
            "An appointment of a patient with a practitioner at a clinic.",
        ),
        Kind(
            "AdverseEvent",
            FhirAdverseEvent,
            "outcome.view",
            (
                Source(
                    adverse_events,
                    build.adverse_event,
                    lambda w: Q(updated_at__gte=w),
                    pk_id,
                    patient_field="patient_id",
                    date_field="onset_on",
                ),
            ),
            "A side effect recorded against a treatment session.",
        ),
    )
}

RESOURCE_TYPES: tuple[str, ...] = tuple(KINDS)


def get(resource_type: str) -> Kind:
    try:
        return KINDS[resource_type]
    except KeyError:
        raise UnknownType(resource_type) from None
