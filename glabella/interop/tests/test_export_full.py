"""The full export: everything the organization entered, checksummed, and nothing of anyone
else's."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from pypdf import PdfReader

from glabella.accounts.models import ApiToken, Clinic, Membership, Organization, User
from glabella.audit.models import AuditEvent
from glabella.charting.models import TreatmentSession
from glabella.consent.models import Consent
from glabella.interop.export import full, tables
from glabella.interop.fhir import resources
from glabella.interop.imports import formats
from glabella.interop.tests.test_export_world import rich_org
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.photos.storage import photo_storage


@pytest.fixture
def rich(world):
    return rich_org()


@pytest.fixture
def exported(rich, tmp_path):
    result = full.write_export(rich.org, tmp_path / "export", by="owner@test")
    return rich, tmp_path / "export", result.manifest


def _files(manifest, part):
    return {f["path"]: f for f in manifest["files"] if f["part"] == part}


def _table(directory: Path, label: str) -> list[dict[str, str]]:
    with (directory / "tables" / f"{label}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_file_matches_its_checksum_and_the_export_verifies(exported):
    rich, directory, manifest = exported
    assert manifest["organization"] == {"id": rich.org.pk, "name": rich.org.name}
    assert manifest["created_by"] == "owner@test" and manifest["app_version"]
    assert manifest["problems"] == []
    on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    assert on_disk == {f["path"] for f in manifest["files"]} | {"manifest.json", "SHA256SUMS"}
    for entry in manifest["files"]:
        data = (directory / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"], entry["path"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
    sums = (directory / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len(manifest["files"])
    assert full.verify(directory) == []


def test_only_this_account_can_read_the_export(exported):
    # It holds every patient's record: 0700 folders and 0600 files, whatever the umask.
    _rich, directory, _manifest = exported
    for path in [directory, *directory.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_the_import_files_stop_at_the_exports_start(rich, tmp_path):
    # Rows entered while the export runs are left out of csv/ (they are in the next export), so
    # a treatment never names a patient the patients file lacks: the export re-imports whole.
    cutoff = timezone.now()
    late = patient_services.create_patient(
        rich.injector,
        {"given_name": "Late", "family_name": "Comer", "date_of_birth": date(1990, 1, 1)},
    )
    sources = dict(full._csv_sources(rich.org, full.Tracker(total=0, callback=None), cutoff))
    refs = {row["patient_ref"] for row in sources["patients"]}
    assert str(late.pk) not in refs and refs
    everyone = dict(full._csv_sources(rich.org, full.Tracker(total=0, callback=None), None))
    assert str(late.pk) in {row["patient_ref"] for row in everyone["patients"]}


def test_verify_names_altered_missing_and_unlisted_files(exported):
    _, directory, _ = exported
    patients = directory / "csv" / "patients.csv"
    patients.write_bytes(patients.read_bytes().replace(b"\r\n", b"\n", 1))
    (directory / "fhir" / "Patient.ndjson").unlink()
    (directory / "tables" / "smuggled.csv").write_text("x")
    problems = full.verify(directory)
    assert any("csv/patients.csv" in p and "bytes" in p for p in problems)
    assert any("csv/patients.csv" in p and "SHA-256" in p for p in problems)
    assert "fhir/Patient.ndjson: missing." in problems
    assert "tables/smuggled.csv: not in the manifest." in problems
    (directory / "manifest.json").unlink()
    assert "not a finished Glabella export" in full.verify(directory)[0]


def test_every_organization_table_is_exported_whole_and_nothing_else(exported, world):
    rich, directory, manifest = exported
    assert tables.unexported_models() == []
    assert tables.unexported_many_to_many() == []
    written = {f["table"] for f in manifest["files"] if f["part"] == "tables"}
    must = {"accounts.organization", "accounts.clinic", "accounts.membership", "accounts.user"}
    for model in apps.get_models():
        field = next((f for f in model._meta.concrete_fields if f.name == "organization"), None)
        if field is not None and field.related_model is Organization:
            must.add(model._meta.label_lower)
    assert must <= written, must - written
    for label in must - {"accounts.organization", "accounts.user"}:
        model = apps.get_model(label)
        rows = _table(directory, label)
        assert len(rows) == model._base_manager.filter(organization=rich.org).count(), label
        assert {r["organization_id"] for r in rows} <= {str(rich.org.pk)}, label
        # every column but credentials and raw bytes
        columns = [f.attname for f in model._meta.concrete_fields]
        if rows:
            assert list(rows[0]) == [c for c in columns if c not in ("token_hash",)], label
    users = {r["email"] for r in _table(directory, "accounts.user")}
    members = set(
        Membership.objects.filter(organization=rich.org).values_list("user__email", flat=True)
    )
    assert users == members
    assert world.outsider.email not in users and "owner@alpha.test" not in users
    assert [r["name"] for r in _table(directory, "accounts.organization")] == [rich.org.name]
    assert (
        len(_table(directory, "accounts.clinic"))
        == Clinic.objects.filter(organization=rich.org).count()
        == 2
    )


def test_no_credential_is_exported(exported):
    rich, directory, manifest = exported
    user_columns = list(_table(directory, "accounts.user")[0])
    assert "password" not in user_columns
    assert "token_hash" not in list(_table(directory, "accounts.apitoken")[0])
    assert "accounts.user" in manifest["excluded_columns"]
    secrets = [rich.token_secret.encode(), *(t.token_hash.encode() for t in ApiToken.objects.all())]
    secrets += [
        u.password.encode() for u in User.objects.filter(memberships__organization=rich.org)
    ]
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret not in data, path


def test_tables_tell_null_from_empty_text_and_keep_values_exact(exported):
    rich, directory, _ = exported
    assert tables.csv_line([None, "", 'say "hi"', "a,b", "x\ny"]) == (
        ',"","say ""hi""","a,b","x\ny"\r\n'
    )
    patient = Patient.objects.for_org(rich.org).filter(weight_kg__isnull=True).first()
    raw = (directory / "tables" / "patients.patient.csv").read_bytes().decode("utf-8")
    line = next(x for x in raw.split("\r\n") if x.startswith(f'"{patient.pk}",'))
    # id, organization_id, home_clinic_id, given_name, family_name, name_key, date_of_birth,
    # sex, weight_kg (NULL: nothing, not even quotes)
    assert line.startswith(
        f'"{patient.pk}","{rich.org.pk}","{patient.home_clinic_id}","{patient.given_name}",'
    )
    assert f'"{patient.date_of_birth.isoformat()}","{patient.sex}",,' in line
    row = next(r for r in _table(directory, "patients.patient") if r["id"] == str(patient.pk))
    assert row["reminder_consent"] == ("true" if patient.reminder_consent else "false")
    assert row["created_at"] == patient.created_at.isoformat()
    assert row["address"] == patient.address


def test_photos_are_byte_identical_to_storage(exported):
    rich, directory, manifest = exported
    photos = _files(manifest, "photos")
    assert len(photos) == 1
    (path,) = photos
    assert path.startswith(f"photos/{rich.photo.patient_id}/{rich.photo.pk}-")
    with photo_storage().open(rich.photo.storage_name, "rb") as f:
        assert (directory / path).read_bytes() == f.read()
    assert photos[path]["sha256"] == rich.photo.sha256


def test_signed_records_are_pdfs_that_open(exported):
    rich, directory, manifest = exported
    signed = TreatmentSession.objects.for_org(rich.org).filter(signed_at__isnull=False)
    drafts = TreatmentSession.objects.for_org(rich.org).filter(signed_at__isnull=True)
    records = _files(manifest, "records")
    assert len(records) == signed.count() > 0
    for session in signed.select_related("patient"):
        path = (
            f"records/{session.patient_id}/treatment-{session.pk}-{session.treated_on:%Y-%m-%d}.pdf"
        )
        reader = PdfReader(directory / path)
        text = " ".join(page.extract_text() for page in reader.pages)
        assert session.patient.family_name.upper() in text
        assert "full export" in text
    for session in drafts:
        assert not list(directory.glob(f"records/*/treatment-{session.pk}-*"))


def test_consents_have_their_text_signature_and_scan(exported):
    rich, directory, _ = exported
    consents = Consent.objects.for_org(rich.org)
    assert consents.exclude(signature=None).exists() and consents.exclude(scan="").exists()
    for consent in consents:
        base = directory / "consents" / str(consent.patient_id) / f"consent-{consent.pk}"
        text = Path(f"{base}.txt").read_text("utf-8")
        assert hashlib.sha256(text.encode()).hexdigest() == consent.text_hash or text == (
            consent.rendered_text
        )
        if consent.signature:
            assert Path(f"{base}-signature.png").read_bytes() == bytes(consent.signature)
        if consent.scan:
            with consent.scan.open("rb") as f:
                assert Path(f"{base}-scan.pdf").read_bytes() == f.read()
    signature_cells = [
        r["signature"] for r in _table(directory, "consent.consent") if r["signature"]
    ]
    assert signature_cells and all((directory / c).is_file() for c in signature_cells)


def test_fhir_files_hold_every_type_and_every_line_validates(exported):
    rich, directory, manifest = exported
    fhir = {f["type"]: f for f in manifest["files"] if f["part"] == "fhir"}
    assert list(fhir) == list(resources.RESOURCE_TYPES)
    for resource_type, entry in fhir.items():
        model = get_fhir_model_class(resource_type)
        lines = (directory / entry["path"]).read_text("utf-8").splitlines()
        assert len(lines) == entry["records"] == resources.count_resources(rich.org, resource_type)
        for line in lines:
            model.model_validate_json(line)
    assert fhir["Patient"]["records"] == Patient.objects.for_org(rich.org).count()


def test_csv_files_are_the_import_formats(exported):
    rich, directory, manifest = exported
    csvs = {f["kind"]: f for f in manifest["files"] if f["part"] == "csv"}
    assert list(csvs) == list(formats.KINDS)
    for kind, entry in csvs.items():
        with (directory / entry["path"]).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        assert tuple(reader.fieldnames) == formats.COLUMNS[kind]
        assert len(rows) == entry["records"]
    patients = _table(directory, "patients.patient")
    assert csvs["patients"]["records"] == len(patients) == Patient.objects.for_org(rich.org).count()
    assert csvs["treatments"]["records"] >= TreatmentSession.objects.for_org(rich.org).count()


def test_an_existing_non_empty_directory_is_refused(rich, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(full.ExportRefused, match="not empty"):
        full.write_export(rich.org, mine, by="x")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    with pytest.raises(full.ExportRefused, match="is a file"):
        full.write_export(rich.org, mine / "notes.txt", by="x")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert full.write_export(rich.org, empty, by="x").manifest["files"]


def test_the_command_exports_verifies_and_is_audited(rich, tmp_path):
    target = tmp_path / "out"
    out, err = io.StringIO(), io.StringIO()
    call_command("export", "--org", rich.org.name, str(target), stdout=out, stderr=err)
    assert "Check it with: glabella export --verify" in out.getvalue()
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["created_by"] == "system (command)"
    event = AuditEvent.objects.filter(organization=rich.org, action="export").latest("seq")
    assert event.detail["files"] == len(manifest["files"])
    out = io.StringIO()
    call_command("export", "--verify", str(target), stdout=out)
    assert "every file matches the manifest" in out.getvalue()

    (target / "fhir" / "Patient.ndjson").write_text("{}\n")
    with pytest.raises(CommandError, match="incomplete or altered"):
        call_command("export", "--verify", str(target), stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="not empty"):
        call_command("export", "--org", str(rich.org.pk), str(target))
    with pytest.raises(CommandError, match="No organization with id or name 'Nobody'"):
        call_command("export", "--org", "Nobody", str(tmp_path / "other"))
    assert not (tmp_path / "other").exists()
