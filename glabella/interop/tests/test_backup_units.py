"""The parts of backup and restore that need no database: versions of the PostgreSQL tools,
the canonical form of values behind the digests, and the words a refusal uses."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from glabella.interop import backup


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", (15,)),
        ("pg_restore (PostgreSQL) 17.2", (17,)),
        ("pg_dump (PostgreSQL) 9.6.24", (9, 6)),
        ("pg_dump (PostgreSQL) 16beta2", (16,)),
    ],
)
def test_the_version_of_a_postgresql_tool_is_read_from_its_output(text, version):
    assert backup.parse_tool_version(text) == version


def test_server_version_numbers_are_read_like_the_tools_versions():
    assert backup.parse_server_version(150020) == (15,)
    assert backup.parse_server_version(170002) == (17,)
    assert backup.parse_server_version(90624) == (9, 6)


def test_a_pg_dump_older_than_the_server_is_refused_saying_what_to_install():
    backup.check_dump_version((16,), (15,))
    backup.check_dump_version((15,), (15,))
    with pytest.raises(backup.BackupError) as refused:
        backup.check_dump_version((13,), (15,))
    message = str(refused.value)
    assert "pg_dump 13 is older than the PostgreSQL 15 server" in message
    assert "postgresql-client-15" in message and "--pg-bin" in message
    with pytest.raises(backup.BackupError, match=r"pg_dump 9\.6 is older"):
        backup.check_dump_version((9, 6), (10,))


def test_a_pg_restore_older_than_the_dump_is_refused():
    backup.check_restore_version((15,), (15,))
    with pytest.raises(backup.BackupError, match="written by pg_dump 16; pg_restore 15 cannot"):
        backup.check_restore_version((15,), (16,))


def test_a_missing_postgresql_tool_is_named_with_how_to_get_it(tmp_path):
    with pytest.raises(backup.BackupError) as missing:
        backup.pg_tool("pg_dump", tmp_path)
    message = str(missing.value)
    assert f"pg_dump was not found in {tmp_path}" in message
    assert "apt install postgresql-client" in message


def test_the_password_goes_to_the_tools_in_the_environment_only():
    config = {
        "NAME": "glabella",
        "USER": "clinic",
        "PASSWORD": "s3cret-pw",
        "HOST": "db.internal",
        "PORT": "5433",
        "OPTIONS": {"sslmode": "verify-full", "connect_timeout": 5, "pool": True},
    }
    env = backup.pg_environment(config)
    assert env["PGPASSWORD"] == "s3cret-pw"
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"]) == ("db.internal", "5433", "clinic")
    assert (env["PGSSLMODE"], env["PGCONNECT_TIMEOUT"], env["PGDATABASE"]) == (
        "verify-full",
        "5",
        "glabella",
    )
    assert "s3cret" not in backup._conninfo_dbname(config["NAME"])
    assert backup._conninfo_dbname("o'brien\\x") == "dbname='o\\'brien\\\\x'"


def test_values_have_one_canonical_form_whichever_engine_returned_them():
    c = backup.canonical
    # SQLite's driver answers with ints, floats and text where PostgreSQL's gives types.
    assert c(True, "BooleanField") == c(1, "BooleanField") == "1"
    assert c(False, "BooleanField") == c(0, "BooleanField") == "0"
    assert c(Decimal("4.00"), "DecimalField") == c(4, "DecimalField") == "4"
    assert c(Decimal("2.50"), "DecimalField") == c(2.5, "DecimalField") == "2.5"
    assert c(Decimal("0.00"), "DecimalField") == "0"
    aware = datetime(2025, 3, 4, 11, 12, 13, tzinfo=timezone(timedelta(hours=1)))
    assert (
        c(aware, "DateTimeField")
        == c(datetime(2025, 3, 4, 10, 12, 13), "DateTimeField")
        == c("2025-03-04 10:12:13", "DateTimeField")
        == "2025-03-04T10:12:13.000000"
    )
    assert c(date(2025, 3, 4), "DateField") == "2025-03-04"
    assert c(time(9, 30), "TimeField") == "09:30:00.000000"
    assert c('{"b": 1, "a": [1, 2]}', "JSONField") == c({"a": [1, 2], "b": 1}, "JSONField")
    u = uuid.uuid4()
    assert c(u, "UUIDField") == c(u.hex, "UUIDField") == c(str(u), "UUIDField")
    assert c(timedelta(seconds=1), "DurationField") == "1000000"
    assert c(memoryview(b"\x00\xff")) == c(b"\x00\xff") == "x:00ff"
    assert c(None, "CharField") is None
    assert c("", "CharField") == ""  # an empty text is not a missing one


def test_a_refusal_says_in_words_what_a_database_holds():
    counts = {
        "accounts_organization": 2,
        "accounts_user": 7,
        "patients_patient": 1,
        "charting_treatmentsession": 3,
        "django_migrations": 40,
        "auth_permission": 168,
        "scheduling_appointment": 4,
        "consent_consent": 1,
        "inventory_lot": 0,
    }
    assert backup.describe_contents(counts) == (
        "2 organizations, 7 users, 1 patient, 3 treatment sessions and 5 rows in 2 other tables"
    )
    assert not backup.is_empty(counts)
    fresh = {"django_migrations": 40, "auth_permission": 168, "audit_chainhead": 1}
    assert backup.is_empty(fresh) and backup.is_empty({})
    assert backup.describe_contents(fresh) == "no data"


def test_a_database_url_is_read_or_refused_with_the_forms_that_work(tmp_path):
    database = backup.database_from_url(f"sqlite:///{tmp_path / 'drill.sqlite3'}")
    assert database.engine == backup.SQLITE and not database.configured
    assert database.name == str(tmp_path / "drill.sqlite3")
    pg = backup.database_from_url("postgres://clinic@db.internal:5433/drill")
    assert pg.engine == backup.POSTGRESQL
    assert pg.label == "the PostgreSQL database 'drill' on db.internal:5433"
    with pytest.raises(backup.BackupError, match="Cannot read the database URL"):
        backup.database_from_url("mongodb://somewhere/clinic")
    with pytest.raises(backup.BackupError, match="support SQLite and PostgreSQL"):
        backup.database_from_url("mysql://clinic@db/clinic")


def test_archives_are_named_by_their_utc_time():
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert backup.default_name(when) == "glabella-backup-20250102T030405Z.tar.gz"
