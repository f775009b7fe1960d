"""The bulk export writes resources without validating each one: these tests are why that is
safe.

The export (``ndjson.write_types``) validates only the first resource of each source at run
time; the others are written as the builders made them. So here every line of every type of
an export of a fixture that takes every branch of every builder (:func:`make_everything`) is
validated with fhir.resources (R4B) and must be, byte for byte, the line fhir.resources
writes back; and it must be what the read API (which validates every resource) returns.
The fixture's breadth is pinned too: the set of element paths the export holds is listed in
full (:data:`PATHS`), so a builder that grows an element fails here until the fixture covers
it. (A line trace of build.py during the fixture's export ran every line but two: the
refusal of an inexact decimal, tested on its own below, and a date conversion for a backend
that returns a month as a datetime, which neither SQLite nor PostgreSQL does.)
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from glabella.accounts.models import Clinic, Membership
from glabella.charting import imported
from glabella.charting.models import Amendment, InjectionPoint, Status, TreatmentSession
from glabella.consent import services as consent_services
from glabella.consent.models import Consent
from glabella.interop.export import ndjson
from glabella.interop.export.files import ndjson_line
from glabella.interop.fhir import build, kinds
from glabella.interop.fhir.resources import RESOURCE_TYPES, iter_resources
from glabella.interop.tests.test_fhir_world import make_rich
from glabella.outcomes import diary
from glabella.outcomes.models import AdverseEvent, Assessment
from glabella.patients.models import Patient, name_key
from glabella.scheduling.models import Appointment, Room
from glabella.testing import signature_png

# --- the fixture: every branch of every builder ---------------------------------------------


def _patient(world: Any, given: str, family: str, dob: date, **extra: Any) -> Patient:
    return Patient.objects.create(
        organization=world.org,
        given_name=given,
        family_name=family,
        name_key=name_key(given, family),
        date_of_birth=dob,
        **extra,
    )


def _session(world: Any, patient: Patient, **extra: Any) -> TreatmentSession:
    fields: dict[str, Any] = {
        "organization": world.org,
        "patient": patient,
        "clinic": world.clinic,
        "practitioner": world.users["injector"],
        "created_by": world.users["injector"],
        "indication": "chronic-migraine",
        "product_id": "botox",
        "treated_on": timezone.localdate() - timedelta(days=30),
        "status": Status.SIGNED,
        **extra,
    }
    return TreatmentSession.objects.create(**fields)


def _point(session: TreatmentSession, number: int, **extra: Any) -> InjectionPoint:
    fields: dict[str, Any] = {
        "organization": session.organization,
        "session": session,
        "number": number,
        "diagram": "face",
        "x": Decimal("50"),
        "y": Decimal("40"),
        "area": "neck",
        "muscle": "platysma",
        "side": "L",
        "units": Decimal("5"),
        **extra,
    }
    # bulk_create: a signed session refuses new points through save() (amendments only).
    return InjectionPoint.objects.bulk_create([InjectionPoint(**fields)])[0]


def make_everything(world: Any) -> Any:
    """The rich world (test_fhir_world) and, beside it, a row for each case a builder
    handles differently. Rows the services would never make (an empty given name, a session
    typed with neither vial nor lot) are written directly: an export must still cope."""
    rich = make_rich(world)
    users = world.users
    now = timezone.now()
    today = timezone.localdate()

    # Practitioners: full name, family only, given only, none (e-mail); an inactive
    # membership and an inactive account.
    type(users["owner"]).objects.filter(pk=users["owner"].pk).update(
        first_name="Olive", last_name="Owner"
    )
    type(users["owner"]).objects.filter(pk=users["prescriber"].pk).update(last_name="Price")
    type(users["owner"]).objects.filter(pk=users["injector"].pk).update(first_name="Ines")
    Membership.objects.filter(user=users["auditor"]).update(is_active=False)
    type(users["owner"]).objects.filter(pk=users["front_desk"].pk).update(is_active=False)

    # Locations: with and without an address.
    Clinic.objects.create(
        organization=world.org, name="Alpha North", address="1 High Street\nLeeds LS1 1AA"
    )

    # Patients: every contact preference; names a JSON writer must escape; nothing optional.
    zoe = _patient(
        world,
        'Zoë "Zed"',
        "O'Brien\\Ng 🙂",
        date(1990, 2, 28),
        sex="male",
        phone="+44 7700 900001",
        preferred_channel="sms",
        address="Flat 2\n10 Rue de l\u2019Église\u2028Paris",
    )
    _patient(
        world,
        "Emil",
        "Mailonly",
        date(1975, 6, 1),
        sex="other",
        email="emil@example.org",
        preferred_channel="phone",
    )
    _patient(world, "", "Nobody", date(2001, 1, 1), sex="unknown", preferred_channel="none")
    _patient(
        world,
        "Phoebe",
        "",
        date(1960, 12, 31),
        sex="female",
        phone="07700 900002",
        email="phoebe@example.org",
        preferred_channel="phone",
    )

    # Sessions: a draft typed by hand (no vial, no prescriber, fractional units and
    # coordinates, empty codes); one drawn from the session's vial; a voided one; an amended
    # follow-up; an imported one (source names, unknown product and indication); one with
    # no indication.
    draft = _session(
        world,
        zoe,
        status=Status.DRAFT,
        pre_notes="Asked about bruising.",
        lot_number="TYPED1",
        lot_expiry=today + timedelta(days=200),
    )
    _point(draft, 1, side="R", depth="ID", x=Decimal("12.25"), y=Decimal("7.5"))
    _point(draft, 2, units=Decimal("2.5"), muscle="mystery muscle", side="mid", depth="SC")
    _point(draft, 3, muscle="", area="", side="", units=Decimal("0.75"))
    _point(draft, 4, removed=True)  # not exported
    bare = _session(world, zoe, status=Status.DRAFT, indication="")
    _point(bare, 1, side="sup")
    _point(bare, 2, depth="", diagram="", x=Decimal("0"), y=Decimal("100.5"))
    by_vial = _session(
        world,
        world.patient,
        vial=rich.vial,
        product_id="botox_cosmetic",
        indication="glabellar-lines",
        prescriber=users["prescriber"],
        signed_by=users["injector"],
        signed_at=now,
        protocol_id="glabellar-lines-botox-cosmetic",
    )
    _point(by_vial, 1, muscle="masseter", area="jaw")
    _session(
        world,
        world.patient,
        status=Status.VOIDED,
        voided_at=now,
        void_reason="Charted on the wrong patient",
        pre_notes="Was nervous.",
    )
    amended = _session(
        world,
        world.patient,
        status=Status.AMENDED,
        signed_at=now,
        signed_by=users["injector"],
        follow_up_of=rich.session,
        prescriber=users["owner"],
    )
    amendment = Amendment.objects.create(
        organization=world.org,
        session=amended,
        number=1,
        reason="Units corrected",
        by=users["prescriber"],
        before={},
        after={},
    )
    Amendment.objects.filter(pk=amendment.pk).update(at=now + timedelta(minutes=5))
    outside = _session(
        world,
        zoe,
        indication="mystery-indication",
        product_id="mystery_toxin",
        prescriber=users["prescriber"],
        import_source=(
            f"Old Clinic export; {imported.SOURCE_PRACTITIONER}Dr Jane Who; "
            f"{imported.SOURCE_PRESCRIBER}Dr Stephen Strange"
        ),
        import_ref="S-1",
        lot_number="",
    )
    _point(outside, 1, units=Decimal("7"))
    unnamed = _session(world, zoe, import_source="Old Clinic export", import_ref="S-2")
    _point(unnamed, 1, depth="IV")  # a depth with no SNOMED route: the route is text only

    # Assessments: rated by the patient; by nobody recorded; entered in error; band only;
    # grade only; a fractional score.
    base: dict[str, Any] = {
        "organization": world.org,
        "patient": world.patient,
        "time_point": "day_30",
        "assessed_on": today,
        "recorded_by": users["injector"],
    }
    Assessment.objects.create(
        **{**base, "recorded_by": None},
        scale_id="hit-6",
        value=Decimal("56"),
        band="substantial",
        rater="patient",
        via="portal",
    )
    Assessment.objects.create(
        **{**base, "recorded_by": None},
        scale_id="midas",
        value=Decimal("12.5"),
        grade="II",
    )
    Assessment.objects.create(
        **{**base, "time_point": "baseline"},
        scale_id="hdss",
        value=Decimal("3"),
        entered_in_error=True,
        error_reason="Wrong patient",
        source="Solish 2007",
        area="axilla",
        contraction="rest",
    )

    # The diary: a month recorded on 13 days (a per-28 figure with a decimal), another
    # patient.
    month = (rich.diary_month - timedelta(days=1)).replace(day=1)
    injector = world.actor("injector")
    for n in range(13):
        diary.record_day(
            injector,
            zoe,
            month + timedelta(days=n),
            headache=n % 2 == 0,
            migraine=False,
            acute_medication=[],
        )

    # Consents: withdrawn (with a reason) and expired.
    withdrawn = consent_services.take_consent(
        injector,
        zoe,
        "chronic-migraine",
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )
    Consent.objects.filter(pk=withdrawn.pk).update(
        withdrawn_at=now, withdrawn_reason="Changed her mind", withdrawn_by=users["injector"]
    )
    expired = consent_services.take_consent(
        injector,
        zoe,
        "cosmetic",
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )
    Consent.objects.filter(pk=expired.pk).update(
        signed_on=today - timedelta(days=800), valid_until=today - timedelta(days=435)
    )

    # Appointments: cancelled in a room with a reason and notes; a no-show; done; arrived
    # without an indication.
    room = Room.objects.create(organization=world.org, clinic=world.clinic, name="Room 2")
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    common: dict[str, Any] = {
        "organization": world.org,
        "clinic": world.clinic,
        "patient": zoe,
        "practitioner": users["prescriber"],
        "kind": "treatment",
        "indication": "chronic-migraine",
    }
    for n, (status, extra) in enumerate(
        [
            (
                "cancelled",
                {"room": room, "status_reason": "Unwell", "notes": "Call to rebook.\nAfter 2pm."},
            ),
            ("no_show", {"status_reason": "No answer"}),
            ("done", {"kind": "consultation"}),
            ("arrived", {"indication": "", "kind": "mystery-kind"}),
        ]
    ):
        at = start + timedelta(days=n, microseconds=123_456 * n)
        Appointment.objects.create(
            **{**common, **extra},
            status=status,
            starts_at=at,
            ends_at=at + timedelta(minutes=45),
        )

    # Adverse events: serious, reported, with suspect lots; entered in error; other kind.
    AdverseEvent.objects.create(
        organization=world.org,
        patient=world.patient,
        session=rich.session,
        kind="other",
        other_text="Dysphagia",
        description="Difficulty swallowing solids.",
        onset_on=today,
        severity="severe",
        serious=True,
        serious_criteria=["hospitalisation", "medically_important"],
        outcome="recovered",
        outcome_on=today,
        action_taken="Admitted for observation.",
        lots=[
            {"product_id": "botox_cosmetic", "lot_number": "C1234AB", "expiry": "2027-01-31"},
            {"product_id": "mystery", "lot_number": "Z9"},
        ],
        reported_on=today,
        report_reference="MHRA-123",
        recorded_by=users["injector"],
    )
    AdverseEvent.objects.create(
        organization=world.org,
        patient=world.patient,
        session=rich.session,
        kind="headache",
        onset_on=today,
        severity="mild",
        serious=True,
        serious_criteria=[],
        outcome="unknown",
        reported_on=today,
        entered_in_error=True,
        recorded_by=users["injector"],
    )
    AdverseEvent.objects.create(
        organization=world.org,
        patient=zoe,
        session=draft,
        kind="bruising",
        onset_on=today,
        severity="mild",
        entered_in_error=True,
        error_reason="Duplicate",
        recorded_by=users["injector"],
    )
    return rich


@pytest.fixture
def everything(world: Any) -> Any:
    world.rich = make_everything(world)
    return world


def export_lines(org: Any, root: Path) -> dict[str, list[bytes]]:
    """Every line of a bulk export of every type, by type."""
    written = ndjson.write_types(org, root, ndjson.served_types(), keep_empty=True)
    return {t: (root / e.path).read_bytes().splitlines(keepends=True) for t, e in written}


# --- the line by line proof ------------------------------------------------------------------


def test_every_exported_line_validates_and_is_what_fhir_resources_writes(everything, tmp_path):
    lines = export_lines(everything.org, tmp_path)
    assert set(lines) == set(RESOURCE_TYPES)
    for resource_type, type_lines in lines.items():
        assert type_lines, f"no {resource_type} exported"
        kind = kinds.get(resource_type)
        for line in type_lines:
            resource = json.loads(line)
            assert resource["resourceType"] == resource_type
            validated = kind.model.model_validate(resource).model_dump(mode="json")
            assert ndjson_line(validated) == line, f"{resource_type}/{resource['id']}"


def test_every_exported_line_is_what_the_read_api_returns(everything, tmp_path):
    for resource_type, type_lines in export_lines(everything.org, tmp_path).items():
        kind = kinds.get(resource_type)
        for line in type_lines:
            resource = json.loads(line)
            assert ndjson_line(kind.read(everything.org, resource["id"])) == line


def test_unchecked_and_validated_iteration_give_the_same_resources_in_the_same_order(
    everything,
):
    for resource_type in RESOURCE_TYPES:
        fast = [
            ndjson_line(r) for r in iter_resources(everything.org, resource_type, check="first")
        ]
        slow = [ndjson_line(r) for r in iter_resources(everything.org, resource_type)]
        assert fast == slow, resource_type


def _paths(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        out = {prefix} if prefix else set()
        for key, value in node.items():
            out |= _paths(value, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(node, list):
        out = {prefix}
        for value in node:
            out |= _paths(value, prefix)
        return out
    return {prefix}


# Every element path the fixture's export holds, by type. A builder that starts writing an
# element the fixture does not reach fails here: extend make_everything, then this list.
_PATH_TEXT: dict[str, str] = {
    "Organization": """
        active id meta meta.lastUpdated name resourceType
        """,
    "Location": """
        address address.text extension extension.url extension.valueCode id managingOrganization
        managingOrganization.reference meta meta.lastUpdated mode name resourceType status
        """,
    "Practitioner": """
        active id meta meta.lastUpdated name name.family name.given name.text resourceType
        telecom telecom.system telecom.use telecom.value
        """,
    "Patient": """
        active address address.text birthDate gender id identifier identifier.system
        identifier.value managingOrganization managingOrganization.reference meta
        meta.lastUpdated name name.family name.given name.text name.use resourceType telecom
        telecom.rank telecom.system telecom.value
        """,
    "Encounter": """
        class class.code class.display class.system id location location.location
        location.location.display location.location.reference meta meta.lastUpdated partOf
        partOf.reference participant participant.individual participant.individual.display
        participant.individual.reference participant.type participant.type.text period
        period.end period.start reasonCode reasonCode.coding reasonCode.coding.code
        reasonCode.coding.display reasonCode.coding.system reasonCode.text resourceType
        serviceProvider serviceProvider.reference serviceType serviceType.text status subject
        subject.reference
        """,
    "Procedure": """
        asserter asserter.reference code code.coding code.coding.code code.coding.display
        code.coding.system code.text encounter encounter.reference extension extension.url
        extension.valueString id location location.display location.reference meta
        meta.lastUpdated note note.text performedDateTime performer performer.actor
        performer.actor.display performer.actor.reference performer.function
        performer.function.text performer.onBehalfOf performer.onBehalfOf.reference reasonCode
        reasonCode.coding reasonCode.coding.code reasonCode.coding.display
        reasonCode.coding.system reasonCode.text recorder recorder.reference resourceType status
        subject subject.reference usedCode usedCode.coding usedCode.coding.code
        usedCode.coding.display usedCode.coding.system usedCode.text
        """,
    "MedicationAdministration": """
        category category.text contained contained.batch contained.batch.expirationDate
        contained.batch.lotNumber contained.code contained.code.coding
        contained.code.coding.code contained.code.coding.display contained.code.coding.system
        contained.code.text contained.id contained.resourceType context context.reference dosage
        dosage.dose dosage.dose.code dosage.dose.system dosage.dose.unit dosage.dose.value
        dosage.route dosage.route.coding dosage.route.coding.code dosage.route.coding.display
        dosage.route.coding.system dosage.route.text dosage.site dosage.site.coding
        dosage.site.coding.code dosage.site.coding.display dosage.site.coding.system
        dosage.site.extension dosage.site.extension.extension
        dosage.site.extension.extension.url dosage.site.extension.extension.valueDecimal
        dosage.site.extension.extension.valueInteger dosage.site.extension.extension.valueString
        dosage.site.extension.url dosage.site.extension.valueCodeableConcept
        dosage.site.extension.valueCodeableConcept.coding
        dosage.site.extension.valueCodeableConcept.coding.code
        dosage.site.extension.valueCodeableConcept.coding.display
        dosage.site.extension.valueCodeableConcept.coding.system
        dosage.site.extension.valueCodeableConcept.text dosage.site.text dosage.text
        effectiveDateTime id medicationReference medicationReference.display
        medicationReference.reference meta meta.lastUpdated partOf partOf.reference performer
        performer.actor performer.actor.display performer.actor.reference reasonCode
        reasonCode.coding reasonCode.coding.code reasonCode.coding.display
        reasonCode.coding.system reasonCode.text resourceType status subject subject.reference
        """,
    "Observation": """
        bodySite bodySite.coding bodySite.coding.code bodySite.coding.system bodySite.text
        category category.coding category.coding.code category.coding.display
        category.coding.system code code.coding code.coding.code code.coding.display
        code.coding.system code.text component component.code component.code.coding
        component.code.coding.code component.code.coding.system component.code.text
        component.valueQuantity component.valueQuantity.unit component.valueQuantity.value
        effectiveDateTime effectivePeriod effectivePeriod.end effectivePeriod.start encounter
        encounter.reference extension extension.url extension.valueCoding
        extension.valueCoding.code extension.valueCoding.display extension.valueCoding.system id
        interpretation interpretation.text issued meta meta.lastUpdated method method.text note
        note.text performer performer.reference resourceType status subject subject.reference
        valueQuantity valueQuantity.unit valueQuantity.value
        """,
    "Consent": """
        category category.coding category.coding.code category.coding.display
        category.coding.system dateTime extension extension.url extension.valueCode
        extension.valueString id meta meta.lastUpdated organization organization.reference
        patient patient.reference performer performer.reference policyRule policyRule.coding
        policyRule.coding.code policyRule.coding.system policyRule.text provision
        provision.period provision.period.end provision.period.start provision.type resourceType
        scope scope.coding scope.coding.code scope.coding.display scope.coding.system
        sourceAttachment sourceAttachment.contentType sourceAttachment.creation
        sourceAttachment.data sourceAttachment.language sourceAttachment.title status
        verification verification.verificationDate verification.verified
        verification.verifiedWith verification.verifiedWith.reference
        """,
    "Appointment": """
        cancelationReason cancelationReason.text comment created description end extension
        extension.url extension.valueString id meta meta.lastUpdated minutesDuration participant
        participant.actor participant.actor.display participant.actor.reference
        participant.required participant.status reasonCode reasonCode.coding
        reasonCode.coding.code reasonCode.coding.display reasonCode.coding.system
        reasonCode.text resourceType serviceType serviceType.coding serviceType.coding.code
        serviceType.coding.display serviceType.coding.system serviceType.text start status
        """,
    "AdverseEvent": """
        actuality date detected encounter encounter.reference event event.coding
        event.coding.code event.coding.display event.coding.system event.text extension
        extension.extension extension.extension.url extension.extension.valueCoding
        extension.extension.valueCoding.code extension.extension.valueCoding.display
        extension.extension.valueCoding.system extension.extension.valueDate
        extension.extension.valueString extension.url extension.valueCoding
        extension.valueCoding.code extension.valueCoding.display extension.valueCoding.system
        extension.valueString id meta meta.lastUpdated outcome outcome.coding
        outcome.coding.code outcome.coding.display outcome.coding.system outcome.text
        recordedDate recorder recorder.reference resourceType seriousness seriousness.coding
        seriousness.coding.code seriousness.coding.display seriousness.coding.system severity
        severity.coding severity.coding.code severity.coding.display severity.coding.system
        subject subject.reference suspectEntity suspectEntity.instance
        suspectEntity.instance.reference
        """,
}
PATHS = {resource_type: set(text.split()) for resource_type, text in _PATH_TEXT.items()}


def test_the_fixture_reaches_every_element_the_builders_write(everything, tmp_path):
    seen: dict[str, set[str]] = {}
    for resource_type, type_lines in export_lines(everything.org, tmp_path).items():
        for line in type_lines:
            seen.setdefault(resource_type, set()).update(_paths(json.loads(line)))
    assert seen == PATHS


# --- run-time checks -------------------------------------------------------------------------


def test_the_bulk_export_validates_only_the_first_resource_of_each_source(
    everything, tmp_path, monkeypatch
):
    calls: list[str] = []
    validate = kinds.Kind.validate

    def counting(self: kinds.Kind, resource: dict[str, Any]) -> dict[str, Any]:
        calls.append(self.type)
        return validate(self, resource)

    monkeypatch.setattr(kinds.Kind, "validate", counting)
    written = dict(ndjson.write_types(everything.org, tmp_path, ["Patient", "Observation"]))
    assert written["Patient"].records == 5 and written["Observation"].records >= 6
    assert calls == ["Patient", "Observation", "Observation"]  # Observation: two sources


def test_an_invalid_first_resource_stops_the_export(everything, tmp_path):
    first = Patient.objects.for_org(everything.org).order_by("pk").first()
    Patient.objects.filter(pk=first.pk).update(sex="fe  male")  # a FHIR code has no double space
    with pytest.raises(ValueError, match="gender"):
        ndjson.write_types(everything.org, tmp_path, ["Patient"])


def _reordered(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": resource["resourceType"], **dict(reversed(list(resource.items())))}


def _offset_not_z(resource: dict[str, Any]) -> dict[str, Any]:
    stamp = resource["meta"]["lastUpdated"]
    return {**resource, "meta": {"lastUpdated": stamp.replace("Z", "+00:00")}}


@pytest.mark.parametrize(
    ("drift", "where"),
    [
        (_reordered, "the resource: elements ['resourceType', 'managingOrganization'"),
        (_offset_not_z, "meta.lastUpdated: the value differs (str built, str written)"),
    ],
)
def test_a_builder_that_drifts_from_fhir_resources_stops_the_export(
    everything, tmp_path, monkeypatch, drift, where
):
    kind = kinds.get("Patient")
    source = dataclasses.replace(kind.sources[0], build=lambda row: drift(build.patient(row)))
    monkeypatch.setitem(kinds.KINDS, "Patient", dataclasses.replace(kind, sources=(source,)))
    with pytest.raises(kinds.BuilderDrift) as caught:
        ndjson.write_types(everything.org, tmp_path, ["Patient"])
    message = str(caught.value)
    assert message.startswith(f"Patient/{everything.patient.pk}: ") and where in message
    # The message is logged: element names only, never the patient's data.
    assert "Lovelace" not in message and "1985" not in message and "ada@" not in message


def test_instants_are_written_as_fhir_resources_writes_them():
    utc = UTC
    assert build.instant(datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc)) == "2026-01-02T03:04:05Z"
    assert (
        build.instant(datetime(2026, 1, 2, 3, 4, 5, 120_000, tzinfo=utc))
        == "2026-01-02T03:04:05.120000Z"
    )
    plus_one = dt_timezone(timedelta(hours=1))
    assert build.instant(datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_one)) == (
        "2026-01-02T03:04:05+01:00"
    )


def test_a_decimal_is_written_exactly_or_refused():
    assert build.number(Decimal("2.50")) == 2.5 and isinstance(build.number(Decimal("2.5")), float)
    assert build.number(Decimal("4.00")) == 4 and isinstance(build.number(Decimal("4.00")), int)
    assert json.dumps(build.number(Decimal("0.05"))) == "0.05"
    with pytest.raises(ValueError, match="exact"):
        build.number(Decimal("0.1000000000000000000001"))
    assert build.figure(Decimal("2.50")) == "2.5" and build.figure(Decimal("20.00")) == "20"


def test_an_ndjson_line_is_compact_utf8_json_with_a_newline():
    resource = {"resourceType": "Patient", "name": [{"text": 'Zoë "Z" \u2028 🙂'}], "n": 2.5}
    line = ndjson_line(resource)
    assert line == (json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    assert line.count(b"\n") == 1 and json.loads(line) == resource
    assert ndjson_line({"units": Decimal("2.50")}) == b'{"units":2.5}\n'
    with pytest.raises(TypeError, match="exact"):
        ndjson_line({"units": Decimal("0.1000000000000000000001")})
