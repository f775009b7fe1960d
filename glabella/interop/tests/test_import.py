"""CSV import: parsing, mapping, validation by row and column, dry run, all or nothing,
idempotence, and past treatments as imported sessions that count in the dose checks."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from pypdf import PdfReader

from glabella.audit.models import AuditEvent
from glabella.charting import services as charting
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import safety
from glabella.interop.imports.importer import Options, run_import
from glabella.interop.models import ImportRun, JobState
from glabella.inventory.models import Lot, StockMove
from glabella.patients.models import HistoryItem, Patient
from glabella.scheduling.models import Recall

PATIENTS = (
    "patient_ref,given_name,family_name,date_of_birth,sex,phone,email,address,weight_kg,"
    "preferred_channel,reminder_consent,clinical_notes\n"
    'P1,Grace,Hopper,1946-12-09,female,07700 900001,grace@example.org,"1 Navy Way, London",'
    "60.5,email,yes,Likes mornings\n"
    "P2,Alan,Turing,1952-06-23,male,,,,,,no,\n"
)


def owner(world):
    return world.actor("owner")


def imp(
    world, kind, text, *, dry_run=False, encoding=None, mapping=None, day_first=False, data=None
):
    raw = data if data is not None else text.encode("utf-8")
    return run_import(
        owner(world),
        kind,
        {kind: (f"{kind}.csv", raw)},
        Options(dry_run=dry_run, encoding=encoding, mapping=mapping or {}, day_first=day_first),
    )


def messages(report):
    return [str(p) for p in report.problems]


def counts():
    return (
        Patient.objects.count(),
        HistoryItem.objects.count(),
        TreatmentSession.objects.count(),
        InjectionPoint.objects.count(),
        Lot.objects.count(),
        AuditEvent.objects.count(),
    )


# --- patients ----------------------------------------------------------------------------------


def test_patients_import_through_the_service_with_audit_and_run(world):
    before = AuditEvent.objects.count()
    report = imp(world, "patients", PATIENTS)
    assert report.ok, messages(report)
    assert report.written and report.new["patients"] == 2
    grace = Patient.objects.get(organization=world.org, import_ref="P1")
    assert (grace.given_name, grace.family_name, grace.date_of_birth) == (
        "Grace",
        "Hopper",
        date(1946, 12, 9),
    )
    assert grace.weight_kg == Decimal("60.5") and grace.reminder_consent
    assert grace.clinical_notes == "Likes mornings"
    assert grace.address == "1 Navy Way, London"
    assert grace.home_clinic == world.clinic
    # create + notes for Grace, create for Alan: each write has its audit row
    assert AuditEvent.objects.count() - before == 3
    run = ImportRun.objects.get()
    assert run.state == JobState.DONE and run.kind == "patients" and not run.dry_run
    assert run.rows == 2 and run.created["new"] == {"patients": 2}
    assert len(run.sha256) == 64


def test_dry_run_writes_nothing_at_all(world):
    before = counts()
    report = imp(world, "patients", PATIENTS, dry_run=True)
    assert report.ok and not report.written and report.new["patients"] == 2
    assert counts() == before
    assert not ImportRun.objects.exists()


def test_second_import_of_the_same_file_creates_nothing(world):
    imp(world, "patients", PATIENTS)
    before = counts()
    report = imp(world, "patients", PATIENTS)
    assert report.ok
    assert report.new["patients"] == 0 and report.already["patients"] == 2
    assert counts() == before
    assert "2 patients already there" in report.summary()


def test_existing_patient_by_name_and_birth_is_linked_not_duplicated(world):
    text = "Patient ID,First Name,Surname,DOB\nV77,ada,LOVELACE,1985-12-10\n"
    report = imp(world, "patients", text)
    assert report.ok and report.already["patients"] == 1
    world.patient.refresh_from_db()
    assert world.patient.import_ref == "V77"
    assert Patient.objects.filter(organization=world.org).count() == 1


def test_header_synonyms_semicolons_bom_and_day_first(world):
    text = "\ufeffClient ID;Forename;Last Name;Date of Birth;Mobile;Email Address;Gender\n"
    text += "C1;Zoë;Brontë;27/03/1984;07700 900002;ZOE@example.org;F\n"
    report = imp(world, "patients", text, day_first=True)
    assert report.ok, messages(report)
    zoe = Patient.objects.get(import_ref="C1")
    assert (zoe.given_name, zoe.family_name) == ("Zoë", "Brontë")
    assert zoe.date_of_birth == date(1984, 3, 27)
    assert zoe.email == "zoe@example.org" and zoe.sex == "female"
    assert report.mapping["patients.csv"]["date_of_birth"] == "Date of Birth"


def test_ambiguous_dates_are_refused_without_day_first(world):
    text = "First Name,Surname,DOB\nZoe,Bronte,03/04/1984\n"
    report = imp(world, "patients", text)
    assert not report.ok
    (p,) = report.problems
    assert (p.row, p.column) == (2, "DOB")
    assert "could be read two ways" in p.message and "--day-first" in p.message


def test_explicit_mapping_and_tab_delimiter(world):
    text = "Client First Name\tClient Last Name\tBorn\tShoe size\nEmmy\tNoether\t1982-03-23\t38\n"
    report = imp(
        world,
        "patients",
        text,
        mapping={
            "Client First Name": "given_name",
            "Client Last Name": "family_name",
            "Born": "date_of_birth",
        },
    )
    assert report.ok, messages(report)
    assert Patient.objects.filter(given_name="Emmy", date_of_birth=date(1982, 3, 23)).exists()
    # the column Glabella has no place for is named, not silently dropped
    assert any("Shoe size" in str(w) for w in report.warnings)


def test_windows_1252_is_refused_in_words_unless_the_encoding_is_given(world):
    data = "First Name,Surname,DOB\nRené,Descartes,1996-03-31\n".encode("cp1252")
    report = imp(world, "patients", "", data=data)
    assert not report.ok and not Patient.objects.filter(family_name="Descartes").exists()
    (p,) = report.problems
    assert p.row == 2 and "not UTF-8" in p.message and "CSV UTF-8" in p.message
    report = imp(world, "patients", "", data=data, encoding="cp1252")
    assert report.ok, messages(report)
    assert Patient.objects.get(family_name="Descartes").given_name == "René"


def test_missing_columns_are_named_up_front(world):
    report = imp(world, "patients", "Name,Phone\nAda,123456\n")
    assert not report.ok
    (p,) = report.problems
    assert p.row is None
    assert "given_name, family_name, date_of_birth" in p.message
    assert "Name, Phone" in p.message


def test_every_problem_is_reported_by_row_and_column_and_nothing_is_written(world):
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    text = (
        "patient_ref,given_name,family_name,date_of_birth,sex,email,preferred_channel,weight_kg\n"
        "A1,Ok,Person,1990-01-01,female,ok@example.org,email,70\n"
        f"A2,Future,Born,{future},female,,,\n"
        "A3,Bad,Sex,1990-01-01,robot,,,\n"
        "A4,Bad,Channel,1990-01-01,,,pigeon,\n"
        "A5,Bad,Mail,1990-01-01,,not-an-email,,\n"
        "A6,Heavy,Weight,1990-01-01,,,,900\n"
        "A1,Same,Ref,1991-01-01,,,,\n"
        "A8,ok,person,1990-01-01,,,,\n"
        "A6,Heavy,Weight,1990-01-01,,,,900\n"
        "A10,,Noname,1990-01-01,,,,\n"
    )
    before = counts()
    report = imp(world, "patients", text)
    assert not report.ok and not report.written
    where = {(p.row, p.column) for p in report.problems}
    assert (3, "date_of_birth") in where
    assert (4, "sex") in where
    assert (5, "preferred_channel") in where
    assert (6, "email") in where
    assert (7, "weight_kg") in where
    assert (8, "patient_ref") in where  # same reference as row 2
    assert (9, "family_name") in where  # same person as row 2
    assert (10, "") in where  # the same row as row 7
    assert (11, "given_name") in where
    assert "in the future" in next(p.message for p in report.problems if p.row == 3)
    assert "female, male, other or unknown" in next(
        p.message for p in report.problems if p.row == 4
    )
    assert counts() == before
    run = ImportRun.objects.get()
    assert run.state == JobState.FAILED and len(run.problems) == len(report.problems)


def test_a_problem_found_while_writing_rolls_back_everything(world, monkeypatch):
    # Row 3's reference is taken by another patient between the check and the write: the
    # service refuses it, and row 2 (already written in the transaction) is rolled back.
    text = (
        "patient_ref,given_name,family_name,date_of_birth\n"
        "R1,First,Row,1990-01-01\nR2,Second,Row,1990-01-02\n"
    )
    from glabella.interop.imports import importer

    original = importer.Checker.check_patients

    def then_taken(self, t):
        original(self, t)
        Patient.objects.filter(pk=world.patient.pk).update(import_ref="R2")

    monkeypatch.setattr(importer.Checker, "check_patients", then_taken)
    before = counts()
    report = imp(world, "patients", text)
    assert not report.ok
    assert report.problems[-1].row == 3 and "R2" in report.problems[-1].message
    assert counts() == before
    assert not Patient.objects.filter(family_name="Row").exists()


# --- history -----------------------------------------------------------------------------------


def test_history_refers_to_patients_by_reference(world):
    imp(world, "patients", PATIENTS)
    text = (
        "patient_ref,kind,code,detail,treated_on,product,units,area,indication,resolved_on\n"
        "P1,allergy,albumin,,,,,,,\n"
        "P1,outside_treatment,toxin,,2024-01-15,Botox Cosmetic,20,Glabella,glabellar-lines,\n"
        "P2,condition,other,Asthma,,,,,,2020-05-01\n"
        "P9,allergy,albumin,,,,,,,\n"
    )
    report = imp(world, "history", text)
    assert not report.ok
    assert [(p.row, p.column) for p in report.problems] == [(5, "patient_ref")]
    assert "import the patients file first" in report.problems[0].message
    report = imp(world, "history", text.rsplit("P9", 1)[0])
    assert report.ok, messages(report)
    grace = Patient.objects.get(import_ref="P1")
    outside = grace.history.get(kind="outside_treatment")
    assert (outside.product_id, outside.units, outside.treated_on) == (
        "botox_cosmetic",
        Decimal("20"),
        date(2024, 1, 15),
    )
    asthma = Patient.objects.get(import_ref="P2").history.get()
    assert asthma.resolved_on == date(2020, 5, 1) and asthma.detail == "Asthma"
    # again: nothing new
    report = imp(world, "history", text.rsplit("P9", 1)[0])
    assert report.ok and report.already["history"] == 3 and not report.new["history"]


def test_history_unknown_product_names_the_valid_ones(world):
    imp(world, "patients", PATIENTS)
    text = (
        "patient_ref,kind,code,treated_on,product,units,area\n"
        "P1,outside_treatment,toxin,2024-01-01,Bocouture,20,Glabella\n"
    )
    report = imp(world, "history", text)
    (p,) = report.problems
    assert (p.row, p.column) == (2, "product")
    assert "Bocouture" in p.message and "xeomin (Xeomin)" in p.message


# --- lots --------------------------------------------------------------------------------------


def test_lots_past_expiry_is_accepted_with_a_note(world):
    text = (
        "Product,Batch,Expiry Date,Vial Size\n"
        "Botox Cosmetic,C1234AB,2020-01-31,100\ndysport,D1,2030-02-01,300\n"
    )
    report = imp(world, "lots", text)
    assert report.ok, messages(report)
    assert Lot.objects.filter(organization=world.org).count() == 2
    assert any("expired on 2020-01-31" in str(w) for w in report.warnings)
    assert not StockMove.objects.exists()  # a lot brings no stock
    report = imp(world, "lots", text)
    assert report.already["lots"] == 2
    clash = "product,lot_number,expiry,vial_units\nbotox_cosmetic,C1234AB,2021-01-31,100\n"
    report = imp(world, "lots", clash)
    assert not report.ok and "one expiry" in report.problems[0].message


def test_lot_vial_size_must_be_one_of_the_products(world):
    report = imp(world, "lots", "product,lot_number,expiry,vial_units\nxeomin,X1,2030-01-01,75\n")
    (p,) = report.problems
    assert p.column == "vial_units" and "50, 100, 200" in p.message


# --- treatments --------------------------------------------------------------------------------

TREATMENTS = """Patient ID,Treatment Date,Product,Area,Units,Batch,Practitioner
P1,2024-03-01,Botox Cosmetic,Glabella,20,C1234AB,prescriber@alpha.test
P1,2024-03-01,Botox Cosmetic,Forehead,10,C1234AB,prescriber@alpha.test
P1,2024-03-01,Botox Cosmetic,Crow's feet,12,C1234AB,prescriber@alpha.test
P2,2023-11-20,Dysport,Underarms,100,,someone@elsewhere.test
"""


def test_past_treatments_become_signed_imported_sessions_with_placed_points(world):
    imp(world, "patients", PATIENTS)
    imp(
        world,
        "lots",
        "product,lot_number,expiry,vial_units\nbotox_cosmetic,C1234AB,2025-01-31,100\n",
    )
    report = imp(world, "treatments", TREATMENTS)
    assert report.ok, messages(report)
    assert report.new["treatments"] == 2
    grace = Patient.objects.get(import_ref="P1")
    s = TreatmentSession.objects.get(patient=grace)
    assert s.status == Status.SIGNED and s.is_imported and s.import_run is not None
    assert s.practitioner == world.users["prescriber"]
    assert s.lot_number == "C1234AB" and s.lot_expiry == date(2025, 1, 31)  # from the lot
    assert "treatments.csv row 2 to 4" in s.import_source
    points = list(s.points.order_by("number"))
    assert [(p.area, p.muscle, p.units) for p in points] == [
        ("glabella", "procerus", Decimal("20")),
        ("forehead", "frontalis", Decimal("10")),
        ("lateral-canthus", "lateral orbicularis oculi", Decimal("12")),
    ]
    from glabella.charting import diagrams

    for p in points:  # each placed inside its region of the face
        region = diagrams.region_at(p.diagram, p.x, p.y)
        assert region is not None and region.area == p.area
    alan = Patient.objects.get(import_ref="P2")
    s2 = TreatmentSession.objects.get(patient=alan)
    assert s2.practitioner == world.users["owner"]
    assert "someone@elsewhere.test" in s2.import_source
    (pt,) = s2.points.all()
    assert pt.diagram == "axillae" and pt.depth == "ID"
    assert not StockMove.objects.exists()  # they draw no stock
    assert any("someone@elsewhere.test" in str(w) for w in report.warnings)
    # the same file again: nothing new
    before = counts()
    report = imp(world, "treatments", TREATMENTS)
    assert report.ok and report.already["treatments"] == 2 and counts() == before


def test_imported_sessions_count_in_dose_checks_and_recalls(world):
    imp(world, "patients", PATIENTS)
    recent = (timezone.localdate() - timedelta(days=20)).isoformat()
    text = (
        "patient_ref,date,product,indication,area,units\n"
        f"P1,{recent},botox_cosmetic,glabellar-lines,Glabella,20\n"
    )
    report = imp(world, "treatments", text)
    assert report.ok, messages(report)
    grace = Patient.objects.get(import_ref="P1")
    history = charting.treatment_history(grace)
    assert [(h.product_id, h.units) for h in history] == [("botox_cosmetic", Decimal("20"))]
    assert Recall.objects.filter(patient=grace, is_current=True).exists()
    # a new session 20 days after the imported one is flagged by the minimum interval
    plan = safety.Plan(
        "botox_cosmetic",
        "glabellar-lines",
        timezone.localdate(),
        [safety.PlannedPoint("glabella", "procerus", "mid", Decimal(4))],
    )
    found = safety.check(plan, charting.patient_facts(grace), history, timezone.now())
    assert "min-interval" in {f.rule for f in found}


def test_repeated_rows_without_point_numbers_are_separate_injections(world):
    # One row per injection, as many systems export: three equal rows are three points of 4 U,
    # never one (dropping them would under-count the dose in every later check).
    imp(world, "patients", PATIENTS)
    rows = "P1,2024-03-01,Botox Cosmetic,Forehead,4\n" * 3
    report = imp(world, "treatments", "Patient ID,Treatment Date,Product,Area,Units\n" + rows)
    assert report.ok, messages(report)
    session = TreatmentSession.objects.get(patient__import_ref="P1")
    assert sorted(p.units for p in session.points.all()) == [Decimal(4)] * 3
    # With point numbers, the same point twice is a mistake in the file and is refused.
    numbered = "Patient ID,Treatment Date,Product,Area,Units,point\n" + (
        "P2,2024-03-02,Botox Cosmetic,Forehead,4,1\n" * 2
    )
    report = imp(world, "treatments", numbered)
    assert [(p.row, p.message) for p in report.problems] == [
        (3, "This row is the same as row 2: remove one.")
    ]
    assert not TreatmentSession.objects.filter(patient__import_ref="P2").exists()


def test_treatment_problems_future_unknown_patient_bad_units(world):
    imp(world, "patients", PATIENTS)
    future = (timezone.localdate() + timedelta(days=1)).isoformat()
    text = (
        "treatment_ref,patient_ref,date,product,area,units,side\n"
        f"T1,P1,{future},botox_cosmetic,Glabella,20,\n"
        "T2,P404,2024-01-01,botox_cosmetic,Glabella,20,\n"
        "T3,P1,2024-01-01,botox_cosmetic,Glabella,twenty,\n"
        "T4,P1,2024-01-02,botox_cosmetic,Glabella,20.5,sideways\n"
        "T5,P1,2024-01-03,botox,Neck,600,\n"
        "T6,P1,1900-01-03,botox_cosmetic,Glabella,4,\n"
        "T7,P1,2024-01-04,botox_cosmetic,Glabella,4.333,\n"
    )
    report = imp(world, "treatments", text)
    where = {(p.row, p.column) for p in report.problems}
    assert where == {
        (2, "date"),
        (3, "patient_ref"),
        (4, "units"),
        (5, "side"),
        (6, "units"),
        (7, "date"),
        (8, "units"),
    }, messages(report)
    assert not TreatmentSession.objects.exists()


def test_implausible_total_for_the_product_is_refused(world):
    imp(world, "patients", PATIENTS)
    rows = "".join(f"T1,P1,2024-01-01,botox_cosmetic,Forehead,{n},{n}\n" for n in range(1, 6))
    text = "treatment_ref,patient_ref,date,product,area,units,point\n" + rows.replace(
        ",Forehead,5,5", ",Forehead,400,5"
    )
    report = imp(world, "treatments", text)
    assert not report.ok
    assert "four of its largest vials" in report.problems[0].message


def test_voided_and_draft_statuses_are_kept(world):
    imp(world, "patients", PATIENTS)
    text = (
        "treatment_ref,patient_ref,date,status,product,area,units,notes\n"
        "V1,P1,2024-01-01,voided,botox_cosmetic,Glabella,20,Voided: wrong patient\n"
        "D1,P1,2024-02-01,draft,botox_cosmetic,Glabella,20,\n"
    )
    report = imp(world, "treatments", text)
    assert report.ok, messages(report)
    voided = TreatmentSession.objects.get(import_ref="V1")
    assert voided.status == Status.VOIDED and voided.void_reason == "wrong patient"
    draft = TreatmentSession.objects.get(import_ref="D1")
    assert draft.status == Status.DRAFT and draft.signed_at is None
    # voided sessions do not count in dose checks
    grace = Patient.objects.get(import_ref="P1")
    assert charting.treatment_history(grace) == []


def test_rows_of_one_treatment_must_agree(world):
    imp(world, "patients", PATIENTS)
    text = (
        "treatment_ref,patient_ref,date,product,area,units\n"
        "T1,P1,2024-01-01,botox_cosmetic,Glabella,20\n"
        "T1,P1,2024-01-02,botox_cosmetic,Forehead,10\n"
    )
    report = imp(world, "treatments", text)
    (p,) = report.problems
    assert (p.row, p.column) == (3, "date") and "must agree" in p.message


# --- the command -------------------------------------------------------------------------------


def test_command_dry_run_then_import(world, tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text(PATIENTS, encoding="utf-8")
    out = io.StringIO()
    before = counts()
    call_command(
        "import", "patients", str(path), "--dry-run", "--org", "Alpha Aesthetics", stdout=out
    )
    assert "Dry run, nothing written: 2 rows checked: 2 patients to import." in out.getvalue()
    assert counts() == before
    out = io.StringIO()
    call_command("import", "patients", str(path), "--org", "Alpha Aesthetics", stdout=out)
    assert "2 patients imported" in out.getvalue()
    assert Patient.objects.filter(import_ref__in=["P1", "P2"]).count() == 2


def test_command_reports_problems_and_fails(world, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("First Name,Surname,DOB\nX,Y,2999-01-01\n", encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import", "patients", str(path), "--org", "Alpha Aesthetics", stdout=out)
    assert "PROBLEM  bad.csv, row 2, DOB: 2999-01-01 is in the future." in out.getvalue()


def test_command_mapping_options_and_file(world, tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("Nom,Prenom,Naissance\nCurie,Marie,1967-11-07\n", encoding="utf-8")
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Nom": "family_name", "Prenom": "given_name"}))
    call_command(
        "import",
        "patients",
        str(path),
        "--mapping",
        str(mapping),
        "--map",
        "Naissance=date_of_birth",
        "--org",
        "Alpha Aesthetics",
        stdout=io.StringIO(),
    )
    assert Patient.objects.filter(family_name="Curie", given_name="Marie").exists()
    with pytest.raises(CommandError, match="is not a mapping"):
        call_command("import", "patients", str(path), "--map", "nonsense", "--org", "1")


def test_imported_sessions_show_on_the_patient_chart_and_record(world):
    from django.urls import reverse

    imp(world, "patients", PATIENTS)
    imp(world, "treatments", TREATMENTS)
    grace = Patient.objects.get(import_ref="P1")
    session = TreatmentSession.objects.get(patient=grace)
    client = world.client("prescriber")
    assert client.get(reverse("patients:detail", args=[grace.pk])).status_code == 200
    page = client.get(reverse("charting:session", args=[session.pk]))
    assert page.status_code == 200
    assert b"procerus" in page.content.lower() or b"Procerus" in page.content
    # Clinicians are told it was never dose-checked or signed here, on the page and on paper.
    assert (
        b"data-imported" in page.content and b"not charted, dose-checked or signed" in page.content
    )
    pdf = client.get(reverse("charting:record", args=[session.pk]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = " ".join(
        (p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf.content)).pages
    ).replace("\n", " ")
    assert "Imported — a past treatment recorded in another system" in text


def test_an_import_stopped_half_way_writes_nothing_and_is_marked_failed(world):
    # Ctrl-C (or any crash) in the middle: the transaction rolls back whole, and the run is
    # recorded as failed, not left "running" in the list for ever.
    before = (Patient.objects.count(), AuditEvent.objects.count())

    def interrupted(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_import(
            owner(world),
            "patients",
            {"patients": ("patients.csv", PATIENTS.encode())},
            Options(),
            progress=interrupted,
        )
    assert (Patient.objects.count(), AuditEvent.objects.count()) == before
    run = ImportRun.objects.get()
    assert run.state == JobState.FAILED and run.finished_at is not None
    assert "stopped before the end and nothing was imported" in run.problems[0]["message"]


def test_fhir_names_the_source_practitioner_never_the_importing_owner(world):
    from glabella.interop.fhir import resources

    imp(world, "patients", PATIENTS)
    imp(world, "treatments", TREATMENTS)
    alan = Patient.objects.get(import_ref="P2")  # treated by someone who is not a user here
    given = list(
        resources.iter_resources(world.org, "MedicationAdministration", patient_ids=[alan.pk])
    )
    assert given
    for resource in given:
        assert resource["performer"][0]["actor"] == {"display": "someone@elsewhere.test"}
    owner_ref = f"Practitioner/{world.users['owner'].pk}"
    encounters = resources.iter_resources(world.org, "Encounter", patient_ids=[alan.pk])
    assert owner_ref not in str(list(encounters))
