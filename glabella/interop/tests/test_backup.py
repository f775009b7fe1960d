"""glabella backup / restore, end to end on the engine the suite runs on (SQLite or PostgreSQL).

A rich world (patients, a signed session, a lot in stock, a photo, a scanned consent) is backed
up with the command, changed, and restored; the restored data must equal the backup table by
table (digests) and file by file. Restores go into scratch databases of the tests' own (a file
for SQLite; for PostgreSQL a database named after the test database, dropped afterwards), or
into the suite's own test database where that is the point (--force into the configured one).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import sqlite3
import subprocess
import tarfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from glabella.audit.models import AuditEvent
from glabella.audit.services import verify_chain
from glabella.charting import services as charting
from glabella.consent import services as consent_services
from glabella.interop import backup
from glabella.inventory import services as inventory
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.photos import services as photo_services
from glabella.photos.tests import helpers as photo_helpers
from glabella.testing import signature_png

ENGINE = backup.SQLITE if connection.vendor == "sqlite" else backup.POSTGRESQL
_counter = itertools.count()


# --- the world and the scratch databases -----------------------------------------------------


def build_rich_world(world):
    """Patients, consents (one a scanned paper form), a signed session, a lot, a photo."""
    injector = world.actor("injector")
    consent_services.ensure_default_templates(world.org)
    consent_services.take_consent(
        injector,
        world.patient,
        "cosmetic",
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )
    photo_helpers.photography_consent(world)  # a scanned PDF under MEDIA_ROOT
    grace = photo_helpers.another_patient(world)
    session = charting.start_session(
        injector,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    session = charting.update_details(
        injector,
        session,
        session.version,
        {"lot_number": "C1234AB", "lot_expiry": date.today() + timedelta(days=200)},
    )
    session = charting.sign(injector, session, session.version)
    assert session.status == "signed"
    # Stock after the signing: a session charted before the clinic tracked stock keeps its
    # typed lot.
    inventory.receive(
        world.actor("owner"),
        world.clinic,
        product_id="botox_cosmetic",
        lot_number="C9876XY",
        expiry=date.today() + timedelta(days=300),
        vial_units=100,
        vial_count=3,
    )
    photo = photo_services.take_photo(
        injector,
        world.patient,
        photo_helpers.photo_upload(photo_helpers.gps_jpeg()),
        area="glabellar",
        view="front",
        expression="frown",
    )
    return grace, session, photo


@pytest.fixture
def rich(live_world):
    build_rich_world(live_world)
    return live_world


def files_under(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ROOT."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def suite_db_settings() -> dict:
    return connection.settings_dict


def pg_url(name: str) -> str:
    s = suite_db_settings()
    auth = quote(s["USER"] or "", safe="")
    if s["PASSWORD"]:
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{s['PORT'] or 5432}/{name}"


def _pg_admin(sql: str) -> None:
    import psycopg

    s = suite_db_settings()
    with psycopg.connect(
        dbname="postgres",
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        autocommit=True,
    ) as admin:
        admin.execute(sql)


@pytest.fixture
def scratch(tmp_path):
    """A factory of empty scratch databases of the suite's engine; returns their URLs.

    PostgreSQL: named after the test database (itself named after DATABASE_URL's) and this
    process, so parallel runs never collide; dropped at the end."""
    made: list[str] = []

    def make() -> str:
        n = next(_counter)
        if ENGINE == backup.SQLITE:
            return f"sqlite:///{tmp_path / f'scratch-{n}.sqlite3'}"
        name = f"{suite_db_settings()['NAME']}_bk{os.getpid()}_{n}"[:63]
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{name}"')
        made.append(name)
        return pg_url(name)

    yield make
    for name in made:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rows(url: str, sql: str) -> list[tuple]:
    """Rows of SQL run on the scratch database at URL (a plain driver connection)."""
    database = backup.database_from_url(url)
    wrapper = database.wrapper()
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
            return [tuple(r) for r in cursor.fetchall()]
    finally:
        backup._close(wrapper)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def take_backup(tmp_path, *extra) -> tuple[Path, str]:
    folder = tmp_path / "backups"
    folder.mkdir(exist_ok=True)
    out = run("backup", str(folder), *extra)
    archives = sorted(folder.glob("glabella-backup-*.tar.gz"))
    assert len(archives) == 1, archives
    return archives[0], out


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive, "r:gz") as tar:
        return json.load(tar.extractfile("manifest.json"))


def configured_digests() -> dict[str, backup.TableDigest]:
    return backup.inspect(backup.configured_database()).tables


def as_manifest(tables: dict[str, backup.TableDigest]) -> dict:
    return {t: {"rows": d.rows, "sha256": d.sha256} for t, d in tables.items()}


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def repack(archive: Path, target: Path, edit) -> Path:
    """A copy of ARCHIVE whose manifest EDIT changed, with every checksum made right again:
    an archive that is internally consistent but says something else."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    manifest = json.loads({m.name: d for m, d in members}["manifest.json"])
    edit(manifest)
    data = json.dumps(manifest).encode()
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member, content in members:
            if member.name == "manifest.json":
                content = data
            elif member.name == "manifest.json.sha256":
                content = f"{hashlib.sha256(data).hexdigest()}  manifest.json\n".encode()
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    target.write_bytes(raw.getvalue())
    return target


# --- backing up ----------------------------------------------------------------------------


def test_a_backup_holds_the_database_the_files_and_a_manifest_of_both(rich, tmp_path, settings):
    archive, out = take_backup(tmp_path)
    assert f"Backup written: {archive}" in out
    assert oct(archive.stat().st_mode & 0o777) == "0o600"  # every patient's record is in it
    manifest = manifest_of(archive)
    assert manifest["engine"] == ENGINE
    assert manifest["database"]["name"] == suite_db_settings()["NAME"]
    assert manifest["app_version"] == "0.1.0" and manifest["created_at"]
    assert manifest["migrations"]["patients"] and manifest["migrations"]["charting"]
    tables = manifest["tables"]
    assert tables["patients_patient"]["rows"] == Patient.objects.count() == 3  # Ada, Grace, Bob
    assert tables["charting_treatmentsession"]["rows"] == 1
    assert tables["inventory_lot"]["rows"] == 1
    assert tables["photos_photo"]["rows"] == 1
    # The manifest's digests are those of the database as it was (the backup's own audit
    # event is written after the snapshot, so compare all but the audit tables).
    now = as_manifest(configured_digests())
    for table in ("patients_patient", "charting_injectionpoint", "inventory_stockmove"):
        assert tables[table] == now[table]
    photos = files_under(Path(settings.GLABELLA_PHOTO_ROOT))
    media = files_under(Path(settings.MEDIA_ROOT))
    assert len(photos) == 2 and len(media) == 1  # the photo, its thumbnail; the consent scan
    members = manifest["members"]
    for rel, sha in photos.items():
        assert members[f"files/photos/{rel}"]["sha256"] == sha
    for rel, sha in media.items():
        assert members[f"files/media/{rel}"]["sha256"] == sha
    assert "photos: 2 files" in out and "media: 1 file " in out
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
    assert names[-2:] == ["manifest.json", "manifest.json.sha256"]
    assert names[0] == f"database/glabella.{'sqlite3' if ENGINE == 'sqlite' else 'pgdump'}"
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.object_type) == ("export", "backup")
    assert event.detail["manifest_sha256"]


def test_photos_kept_off_the_server_are_named_as_not_in_the_backup(live_world, tmp_path, settings):
    settings.GLABELLA_PHOTO_STORAGE = "django.core.files.storage.InMemoryStorage"
    archive, out = take_backup(tmp_path)
    assert "NOTE: Photos are kept in" in out and "NOT in this backup" in out
    manifest = manifest_of(archive)
    assert manifest["files"]["photos"]["copied"] is False
    assert any("NOT in this backup" in note for note in manifest["notes"])
    verified = run("backup", "--verify", str(archive))
    assert "NOTE: Photos are kept in" in verified


def test_verify_checks_an_archive_and_changes_nothing(rich, tmp_path):
    archive, _ = take_backup(tmp_path)
    before = configured_digests()
    out = run("backup", "--verify", str(archive))
    assert "OK: every checksum matches" in out and "The archive is intact." in out
    if ENGINE == backup.SQLITE:
        assert "every count and digest matches" in out
    else:
        assert "pg_restore reads the dump" in out
    assert configured_digests() == before


def test_an_interrupted_backup_leaves_no_half_archive_and_the_old_one_whole(live_world, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "nightly.tar.gz"
    backup.create_backup(target)
    good = target.read_bytes()

    def interrupt(label, done, total):
        if label == "Writing the archive" and done > total // 2:
            raise KeyboardInterrupt  # Ctrl-C, or the machine going down, half-way

    with pytest.raises(KeyboardInterrupt):
        backup.create_backup(target, progress=interrupt)
    assert target.read_bytes() == good
    assert sorted(p.name for p in folder.iterdir()) == ["nightly.tar.gz"]  # no temporary left
    backup.verify_backup(target)


def test_keep_removes_only_this_commands_old_backups(live_world, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    old = folder / "glabella-backup-20200101T020000Z.tar.gz"
    recent = folder / backup.default_name(backup.datetime.now(backup.UTC) - timedelta(days=2))
    other = folder / "glabella-backup-notes.txt"
    unrelated = folder / "glabella-backup-20200101T020000Z.tar.gz.asc"
    for path in (old, recent, other, unrelated):
        path.write_text("x")
    out = run("backup", str(folder), "--keep", "7")
    assert f"removed {old.name}" in out
    left = sorted(p.name for p in folder.iterdir())
    assert old.name not in left
    assert {recent.name, other.name, unrelated.name} <= set(left)
    assert len([n for n in left if n.endswith(".tar.gz")]) == 2  # the recent one and the new one
    with pytest.raises(CommandError, match="--keep needs FILE to be a folder"):
        run("backup", str(folder / "one.tar.gz"), "--keep", "7")


# --- restoring -----------------------------------------------------------------------------


def later_changes(world, settings) -> str:
    """What happens after the backup: a new patient, a photo file deleted, a stray file."""
    patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Late", "family_name": "Comer", "date_of_birth": date(1990, 5, 5)},
    )
    photo_root = Path(settings.GLABELLA_PHOTO_ROOT)
    deleted = sorted(p for p in photo_root.rglob("*") if p.is_file())[0]
    deleted.unlink()
    (photo_root / "stray.jpg").write_bytes(b"not in the backup")
    return deleted.relative_to(photo_root).as_posix()


def test_a_restore_into_an_empty_database_gives_back_exactly_the_backup(
    rich, tmp_path, settings, scratch
):
    photos_then = files_under(Path(settings.GLABELLA_PHOTO_ROOT))
    media_then = files_under(Path(settings.MEDIA_ROOT))
    archive, _ = take_backup(tmp_path)
    deleted = later_changes(rich, settings)
    url = scratch()
    drill = tmp_path / "drill"
    out = run("restore", str(archive), "--database-url", url, "--files-root", str(drill))
    assert "every table's row count and digest equal the backup's" in out
    # Checked again here, independently of the command's own check.
    restored = backup.inspect(backup.database_from_url(url)).tables
    assert as_manifest(restored) == manifest_of(archive)["tables"]
    assert rows(url, "SELECT COUNT(*) FROM patients_patient WHERE family_name = 'Comer'") == [(0,)]
    assert rows(url, "SELECT COUNT(*) FROM patients_patient") == [(3,)]
    assert rows(url, "SELECT status FROM charting_treatmentsession") == [("signed",)]
    assert rows(url, "SELECT lot_number FROM inventory_lot") == [("C9876XY",)]
    assert files_under(drill / "photos") == photos_then
    assert deleted in files_under(drill / "photos")
    assert files_under(drill / "media") == media_then
    # A restore drill leaves the installation's own database and files alone.
    assert Patient.objects.filter(family_name="Comer").exists()
    assert "stray.jpg" in files_under(Path(settings.GLABELLA_PHOTO_ROOT))


def test_restore_with_force_puts_the_configured_database_and_files_back(rich, tmp_path, settings):
    photos_then = files_under(Path(settings.GLABELLA_PHOTO_ROOT))
    media_then = files_under(Path(settings.MEDIA_ROOT))
    archive, _ = take_backup(tmp_path)
    manifest = manifest_of(archive)
    deleted = later_changes(rich, settings)
    out = run("restore", str(archive), "--force")
    assert "every table's row count and digest equal the backup's" in out
    assert not Patient.objects.filter(family_name="Comer").exists()
    assert Patient.objects.for_org(rich.org).count() == 2
    assert files_under(Path(settings.GLABELLA_PHOTO_ROOT)) == photos_then
    assert files_under(Path(settings.MEDIA_ROOT)) == media_then
    # What was there before is kept aside, not deleted.
    aside = next(Path(settings.GLABELLA_PHOTO_ROOT).parent.glob("photos.before-restore-*"))
    assert "stray.jpg" in files_under(aside) and deleted not in files_under(aside)
    assert f"kept in {aside}" in out
    # Everything equals the backup, but for the one audit event that records the restore.
    now = as_manifest(configured_digests())
    audit = {"audit_auditevent", "audit_chainhead"}
    assert {t: d for t, d in now.items() if t not in audit} == {
        t: d for t, d in manifest["tables"].items() if t not in audit
    }
    assert now["audit_auditevent"]["rows"] == manifest["tables"]["audit_auditevent"]["rows"] + 1
    last = AuditEvent.objects.order_by("-seq").first()
    assert (last.action, last.object_type) == ("update", "database")
    assert last.detail["backup_created_at"] == manifest["created_at"]
    assert verify_chain().ok


def test_a_database_that_is_not_empty_is_refused_without_force_and_left_alone(
    rich, tmp_path, settings
):
    archive, _ = take_backup(tmp_path)
    later_changes(rich, settings)
    before = configured_digests()
    photos = files_under(Path(settings.GLABELLA_PHOTO_ROOT))
    with pytest.raises(CommandError) as refused:
        run("restore", str(archive))
    message = str(refused.value)
    assert "is not empty: it holds 2 organizations" in message
    assert "4 patients" in message and "1 treatment session" in message
    assert "--force" in message
    assert configured_digests() == before
    assert files_under(Path(settings.GLABELLA_PHOTO_ROOT)) == photos
    assert not list(Path(settings.GLABELLA_PHOTO_ROOT).parent.glob(".photos.restore-*"))


@pytest.mark.parametrize("where", ["gzip header", "first third", "middle", "last bytes"])
def test_a_corrupted_archive_is_refused_before_anything_is_touched(rich, tmp_path, settings, where):
    archive, _ = take_backup(tmp_path)
    size = archive.stat().st_size
    offset = {"gzip header": 5, "first third": size // 3, "middle": size // 2}.get(where, size - 2)
    flip(archive, offset)
    later_changes(rich, settings)
    before = configured_digests()
    photos = files_under(Path(settings.GLABELLA_PHOTO_ROOT))
    with pytest.raises(CommandError, match="is damaged or is not a Glabella backup"):
        run("restore", str(archive), "--force")
    assert configured_digests() == before
    assert files_under(Path(settings.GLABELLA_PHOTO_ROOT)) == photos
    assert not list(Path(settings.GLABELLA_PHOTO_ROOT).parent.glob(".photos.restore-*"))
    with pytest.raises(CommandError, match="damaged"):
        run("backup", "--verify", str(archive))


def test_a_truncated_archive_is_refused(live_world, tmp_path):
    archive, _ = take_backup(tmp_path)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size - 700])
    with pytest.raises(CommandError, match="damaged"):
        run("backup", "--verify", str(archive))


def test_a_backup_of_the_other_engine_is_refused_pointing_to_export_and_import(
    live_world, tmp_path
):
    archive, _ = take_backup(tmp_path)
    other = backup.POSTGRESQL if ENGINE == backup.SQLITE else backup.SQLITE
    forged = repack(archive, tmp_path / "other.tar.gz", lambda m: m.update(engine=other))
    before = configured_digests()
    with pytest.raises(CommandError) as refused:
        run("restore", str(forged), "--force")
    message = str(refused.value)
    assert "restores only into the same engine" in message
    assert "glabella export --org ORG DIR" in message and "glabella import export DIR" in message
    assert configured_digests() == before


def test_a_restore_that_differs_from_the_manifest_fails_naming_the_tables(rich, tmp_path, scratch):
    archive, _ = take_backup(tmp_path)

    def tamper(manifest):
        manifest["tables"]["patients_patient"]["sha256"] = "0" * 64
        manifest["tables"]["inventory_lot"]["rows"] += 1

    forged = repack(archive, tmp_path / "tampered.tar.gz", tamper)
    with pytest.raises(CommandError) as failed:
        run("restore", str(forged), "--database-url", scratch(), "--no-files")
    assert failed.value.returncode == 1
    message = str(failed.value)
    assert "patients_patient: 3 rows as in the backup, but different content" in message
    assert "inventory_lot: 2 rows in the backup, 1 here" in message
    assert "charting_treatmentsession" not in message


def test_a_restore_drill_must_say_where_the_files_go(live_world, tmp_path, scratch):
    archive, _ = take_backup(tmp_path)
    with pytest.raises(CommandError, match=r"--files-root DIR .* or --no-files"):
        run("restore", str(archive), "--database-url", scratch())


def test_restoring_a_file_that_is_not_there_says_so(live_world, tmp_path):
    with pytest.raises(CommandError, match="There is no backup at"):
        run("restore", str(tmp_path / "nothing.tar.gz"))


def test_a_file_that_is_not_a_backup_is_refused(live_world, tmp_path):
    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    with pytest.raises(CommandError, match="not a Glabella backup"):
        run("backup", "--verify", str(bogus))


def test_the_database_in_the_archive_is_readable_by_the_engines_own_tools(live_world, tmp_path):
    archive, _ = take_backup(tmp_path)
    member = f"database/glabella.{'sqlite3' if ENGINE == backup.SQLITE else 'pgdump'}"
    copy_path = tmp_path / "copy"
    with tarfile.open(archive, "r:gz") as tar:
        copy_path.write_bytes(tar.extractfile(member).read())
    if ENGINE == backup.SQLITE:
        # A plain self-contained file (no write-ahead log beside it), openable by sqlite3.
        copy = sqlite3.connect(copy_path)
        try:
            assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert copy.execute("SELECT COUNT(*) FROM accounts_organization").fetchone()[0] == 2
        finally:
            copy.close()
    else:
        listed = subprocess.run(
            [backup.pg_tool("pg_restore"), "--list", str(copy_path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "TABLE DATA public patients_patient" in listed


def test_without_the_postgresql_tools_nothing_is_written_or_changed(live_world, tmp_path):
    archive, _ = take_backup(tmp_path)
    empty = tmp_path / "no-tools"
    empty.mkdir()
    target = tmp_path / "elsewhere.tar.gz"
    before = configured_digests()
    if ENGINE == backup.POSTGRESQL:
        with pytest.raises(CommandError, match=f"pg_dump was not found in {empty}"):
            run("backup", str(target), "--pg-bin", str(empty))
        assert not target.exists()
        out = run("backup", "--verify", str(archive), "--pg-bin", str(empty))
        assert "OK: every checksum matches" in out and "pg_restore is not installed here" in out
        with pytest.raises(CommandError, match=f"pg_restore was not found in {empty}"):
            run("restore", str(archive), "--force", "--pg-bin", str(empty))
        assert configured_digests() == before
    else:
        # SQLite needs no outside tool: the same commands simply work.
        run("backup", str(target), "--pg-bin", str(empty))
        assert "every count and digest matches" in run(
            "backup", "--verify", str(target), "--pg-bin", str(empty)
        )


def test_a_backup_into_a_folder_that_does_not_exist_says_so(live_world, tmp_path):
    with pytest.raises(CommandError, match="does not exist: create it first"):
        run("backup", str(tmp_path / "missing" / "x.tar.gz"))
