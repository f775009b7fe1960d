"""Done when: an export of the demo organization, imported into an empty organization, gives
the same patients, sessions, points and lots.

The demo organization is loaded through its services, exported with the real command
(``glabella export --org ... DIR``), and imported with the real command (``glabella import
export DIR``) into a NEW organization of the same database that had no patients, sessions or
lots before. The comparison is by what a clinician sees (names, dates, products, areas,
units), never by database ids, so an import that merely pointed at the demo's rows could not
pass.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from glabella.accounts.services import setup_organization
from glabella.charting.imported import SOURCE_PRACTITIONER, SOURCE_PRESCRIBER, source_person
from glabella.charting.models import InjectionPoint, TreatmentSession
from glabella.interop.imports.formats import write_csv
from glabella.interop.imports.importer import Options, export_files, run_import
from glabella.inventory.models import Lot
from glabella.patients.models import Patient
from glabella.web import demo

pytestmark = pytest.mark.django_db


def _patients(org):
    return Counter(
        Patient.objects.for_org(org).values_list(
            "given_name",
            "family_name",
            "date_of_birth",
            "sex",
            "phone",
            "email",
            "address",
            "weight_kg",
            "preferred_channel",
            "reminder_consent",
            "clinical_notes",
        )
    )


def _who(session):
    p = session.patient
    return (p.given_name, p.family_name, p.date_of_birth)


def _person(session, label, user):
    """Who treated (or prescribed): the source system's name for someone who is not a user
    here, else the user's e-mail. Never the owner who ran the import."""
    return source_person(session, label) or (user.email if user else "")


def _sessions(org):
    return Counter(
        (
            *_who(s),
            s.treated_on,
            s.product_id,
            s.indication,
            s.status,
            s.lot_number,
            s.lot_expiry,
            _person(s, SOURCE_PRACTITIONER, s.practitioner),
            _person(s, SOURCE_PRESCRIBER, s.prescriber),
        )
        for s in TreatmentSession.objects.for_org(org).select_related(
            "patient", "practitioner", "prescriber"
        )
    )


def _points(org):
    return Counter(
        (
            *_who(p.session),
            p.session.treated_on,
            p.session.product_id,
            p.number,
            p.area,
            p.muscle,
            p.side,
            p.units,
            p.depth,
            p.diagram,
            p.x,
            p.y,
        )
        for p in InjectionPoint.objects.for_org(org)
        .filter(removed=False)
        .select_related("session__patient")
    )


def _lots(org):
    return Counter(
        Lot.objects.for_org(org).values_list(
            "product_id", "lot_number", "expiry", "vial_units", "gtin"
        )
    )


def _history(org):
    from glabella.patients.models import HistoryItem

    return Counter(
        (
            h.patient.given_name,
            h.patient.family_name,
            h.kind,
            h.code,
            h.detail,
            h.treated_on,
            h.product_id,
            h.units,
            h.area,
            h.indication,
            h.resolved_on,
        )
        for h in HistoryItem.objects.for_org(org)
        .filter(entered_in_error=False)
        .select_related("patient")
    )


def _empty_org():
    org, clinic, owner = setup_organization(
        org_name="Round Trip Clinic",
        clinic_name="Round Trip One",
        timezone="Europe/London",
        owner_email="owner@roundtrip.test",
        password="a-long-test-password-42",
    )
    return org, clinic, owner


def test_demo_export_imported_into_an_empty_organization_is_the_same(tmp_path: Path):
    source = demo.load(patients=24)
    out_dir = tmp_path / "export"
    call_command("export", "--org", source.name, str(out_dir), stdout=io.StringIO())
    assert (out_dir / "csv" / "treatments.csv").is_file()

    target, _, _ = _empty_org()
    assert not Patient.objects.for_org(target).exists()
    assert not TreatmentSession.objects.for_org(target).exists()
    assert not Lot.objects.for_org(target).exists()

    out = io.StringIO()
    call_command("import", "export", str(out_dir), "--org", target.name, stdout=out)
    assert "imported" in out.getvalue()

    assert _patients(target) == _patients(source)
    assert _sessions(target) == _sessions(source)
    assert _points(target) == _points(source)
    assert _lots(target) == _lots(source)
    assert _history(target) == _history(source)
    # every imported session says where it came from
    assert not TreatmentSession.objects.for_org(target).filter(import_run__isnull=True).exists()
    # the source was only read
    assert not TreatmentSession.objects.for_org(source).filter(import_run__isnull=False).exists()

    # importing the same export again changes nothing
    before = (_patients(target), _sessions(target), _points(target), _lots(target))
    out = io.StringIO()
    call_command("import", "export", str(out_dir), "--org", target.name, stdout=out)
    assert "already there" in out.getvalue()
    assert (_patients(target), _sessions(target), _points(target), _lots(target)) == before


def test_files_written_with_the_formats_reimport(world, tmp_path: Path):
    """The contract on its own: rows written by ``formats`` read back the same."""
    from glabella.interop.imports import formats

    org = world.org
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    rows = {
        "patients": [
            {
                "patient_ref": 7,
                "given_name": "Élise",
                "family_name": "Ó Briain",
                "date_of_birth": "1980-02-29",
                "sex": "female",
                "address": "1 Rue, Paris\nFrance",
                "reminder_consent": False,
            },
        ],
        "lots": [
            {"product": "xeomin", "lot_number": "X-9", "expiry": "2031-05-31", "vial_units": 100}
        ],
        "treatments": [
            {
                "treatment_ref": 1,
                "patient_ref": 7,
                "date": "2024-05-01",
                "status": "signed",
                "indication": "glabellar-lines",
                "product": "xeomin",
                "lot_number": "X-9",
                "point": 1,
                "area": "glabella",
                "muscle": "procerus",
                "side": "mid",
                "units": "4",
                "depth": "IM",
                "diagram": "face-front",
                "x": "50",
                "y": "39.5",
            },
        ],
    }
    for kind, items in rows.items():
        with (csv_dir / formats.EXPORT_FILES[kind]).open("w", encoding="utf-8", newline="") as fh:
            write_csv(kind, items, fh)
    report = run_import(world.actor("owner"), "export", export_files(str(tmp_path)), Options())
    assert report.ok, [str(p) for p in report.problems]
    p = Patient.objects.for_org(org).get(import_ref="7")
    assert (p.given_name, p.family_name, p.address) == ("Élise", "Ó Briain", "1 Rue, Paris\nFrance")
    s = TreatmentSession.objects.get(patient=p)
    assert s.lot_expiry.isoformat() == "2031-05-31"  # from the lot in the same export
    (pt,) = s.points.all()
    assert (pt.diagram, str(pt.x), str(pt.y), pt.side) == ("face-front", "50.00", "39.50", "mid")
