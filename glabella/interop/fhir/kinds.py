"""The resource types the FHIR server serves: where each comes from and how it is searched.

A :class:`Kind` is one FHIR resource type. It has one or more :class:`Source` s (Observation
has two: scored assessments, and headache days per month aggregated from the diary); a
source is an organization-scoped, stably ordered queryset of plain rows (``.values()`` of the
columns its builder names), a builder (:mod:`.build`) and the fields the common search
parameters (``patient``, ``date``, ``_id``, ``_since``) filter on.

Validation with ``fhir.resources.R4B``:

- the read and search API (:meth:`Kind.read`, :mod:`.search`) and :meth:`Kind.iterate` by
  default validate every resource;
- the bulk export (``$export``, ``glabella export``: :func:`glabella.interop.export.ndjson.
  write_types`) calls :meth:`Kind.iterate` with ``check="first"``: it validates the first
  resource of each source and stops the export unless fhir.resources writes it back byte
  for byte as built (:class:`BuilderDrift`), then writes the rest as built. Validating each
  of a million rows through pydantic cost about 85% of an export's time, and it cannot change
  the output: a builder returns the resource exactly as fhir.resources writes it (see
  :mod:`.build`), which the test suite checks for every resource of every type on a fixture
  that takes every branch of every builder (``interop/tests/test_bulk_fast.py``).
"""

from __future__ import annotations

import json
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
from glabella.interop.fhir.instants import InstantText
from glabella.outcomes.models import AdverseEvent, Assessment, DiaryEntry
from glabella.patients.models import Patient
from glabella.scheduling.models import Appointment

DIGITS = re.compile(r"^[1-9][0-9]{0,17}$")


class UnknownType(KeyError):
    """A resource type the server does not serve."""


class BuilderDrift(ValueError):
    """A builder's resource is not exactly what fhir.resources writes after validating it."""


def _text(resource: dict[str, Any]) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def _difference(built: Any, written: Any, path: str = "") -> str:
    """Where BUILT and WRITTEN first differ, by element path and key names only (never a
    value: it may be patient data, and the message is logged)."""
    where = path or "the resource"
    if isinstance(built, dict) and isinstance(written, dict):
        if list(built) != list(written):
            return f"{where}: elements {list(built)} built, {list(written)} written"
        for key in built:
            found = _difference(built[key], written[key], f"{path}.{key}" if path else key)
            if found:
                return found
        return ""
    if isinstance(built, list) and isinstance(written, list):
        if len(built) != len(written):
            return f"{where}: {len(built)} items built, {len(written)} written"
        for n, (b, w) in enumerate(zip(built, written, strict=True)):
            found = _difference(b, w, f"{path}[{n}]")
            if found:
                return found
        return ""
    if type(built) is not type(written) or built != written:
        what = f"{type(built).__name__} built, {type(written).__name__} written"
        return f"{where}: the value differs ({what})"
    return ""


# --- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    queryset: Callable[[Any], QuerySet]  # organization -> its rows (dicts), stably ordered
    build: Callable[[dict[str, Any]], dict[str, Any]]
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
    return (
        Organization.objects.filter(pk=getattr(org, "pk", org))
        .order_by("pk")
        .values(*build.ORGANIZATION_COLUMNS)
    )


def clinics(org: Any) -> QuerySet:
    return Clinic.objects.filter(organization=org).order_by("pk").values(*build.LOCATION_COLUMNS)


def practitioners(org: Any) -> QuerySet:
    members = Membership.objects.filter(organization=org, user=OuterRef("pk"))
    return (
        User.objects.filter(Exists(members))
        .annotate(active_here=Exists(members.filter(is_active=True)))
        .order_by("pk")
        .values(*build.PRACTITIONER_COLUMNS)
    )


def patients(org: Any) -> QuerySet:
    # The last change as the text of meta.lastUpdated, from the database: a bulk export of
    # patients spent a fifth of its time reading it as a datetime only to format it again.
    return (
        Patient.objects.for_org(org)
        .annotate(last_updated=InstantText("updated_at"))
        .order_by("pk")
        .values(*build.PATIENT_COLUMNS)
    )


def sessions(org: Any) -> QuerySet:
    last = Amendment.objects.filter(session=OuterRef("pk")).order_by("-at").values("at")[:1]
    return (
        TreatmentSession.objects.for_org(org)
        .annotate(last_amended_at=Subquery(last))
        .order_by("pk")
        .values(*build.SESSION_COLUMNS)
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
        .annotate(last_amended_at=Subquery(last))
        .order_by("pk")
        .values(*build.POINT_COLUMNS)
    )


def _point_since(when: datetime) -> Q:
    amended = Amendment.objects.filter(session=OuterRef("session_id"), at__gte=when)
    return (
        Q(session__created_at__gte=when)
        | Q(session__signed_at__gte=when)
        | Q(session__voided_at__gte=when)
        | Q(Exists(amended))
    )


def assessments(org: Any) -> QuerySet:
    return Assessment.objects.for_org(org).order_by("pk").values(*build.ASSESSMENT_COLUMNS)


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
    return Consent.objects.for_org(org).order_by("pk").values(*build.CONSENT_COLUMNS)


def appointments(org: Any) -> QuerySet:
    return Appointment.objects.for_org(org).order_by("pk").values(*build.APPOINTMENT_COLUMNS)


def adverse_events(org: Any) -> QuerySet:
    return AdverseEvent.objects.for_org(org).order_by("pk").values(*build.ADVERSE_EVENT_COLUMNS)


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

    def checked(self, resource: dict[str, Any]) -> dict[str, Any]:
        """RESOURCE if fhir.resources validates it and writes it back exactly as built (same
        keys, order and values); else :class:`BuilderDrift` (or the validation error)."""
        written = self.validate(resource)
        if _text(written) != _text(resource):
            raise BuilderDrift(
                f"{self.type}/{resource.get('id')}: fhir.resources writes this resource "
                f"differently from how Glabella built it ({_difference(resource, written)}), "
                "so the export stopped rather than write resources it cannot vouch for."
            )
        return resource

    def iterate(
        self,
        organization: Any,
        *,
        since: datetime | None = None,
        patient_ids: Iterable[int] | None = None,
        chunk_size: int = 500,
        check: str = "all",
    ) -> Iterator[dict[str, Any]]:
        """Every resource of ORGANIZATION, source by source in primary-key order.

        CHECK ``"all"`` validates each one (what the API returns); ``"first"`` (the bulk
        export) checks the first of each source with :meth:`checked` and yields the others
        as built, unvalidated (see the module's docstring for why that is safe).
        """
        if check not in ("all", "first"):
            raise ValueError(f"check must be 'all' or 'first', not {check!r}")
        ids = list(patient_ids) if patient_ids is not None else None
        for source in self.sources:
            qs = self.rows(source, organization, since=since, patient_ids=ids)
            rows = qs.iterator(chunk_size=chunk_size)
            build_one = source.build
            try:
                if check == "all":
                    for row in rows:
                        yield self.validate(build_one(row))
                    continue
                first = next(rows, None)
                if first is None:
                    continue
                yield self.checked(build_one(first))
                for row in rows:
                    yield build_one(row)
            finally:
                rows.close()  # the database cursor, now, even when a check raised

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
                    build.medication_administration,
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
