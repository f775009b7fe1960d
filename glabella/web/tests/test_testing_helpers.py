"""The test run's own shortcuts keep their promises: a database copied from the run's migrated
template is fully migrated and a database of its own (glabella/testing_processes.py), and the
fast flush between committing tests (glabella/conftest.py) empties every table and leaves the
append-only triggers on."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader

from glabella.audit.models import AuditEvent
from glabella.conftest import _make_world
from glabella.inventory.models import StockMove
from glabella.inventory.tests.helpers import receive_botox_cosmetic
from glabella.patients.models import Patient
from glabella.web.tests.test_fault_sigkill import engine_database


def _query(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(sql).fetchall()
        conn.close()
        return rows
    with psycopg.connect(url, autocommit=True) as pg:
        cursor = pg.execute(sql)  # type: ignore[arg-type]
        return list(cursor.fetchall()) if cursor.description else []


def test_a_database_from_the_migrated_template_is_fully_migrated_and_its_own(tmp_path):
    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    assert len(on_disk) > 30
    with (
        engine_database(tmp_path / "one") as one,
        engine_database(tmp_path / "two") as two,
    ):
        assert one != two
        for url in (one, two):
            applied = set(_query(url, "SELECT app, name FROM django_migrations"))
            assert applied == on_disk, on_disk ^ applied
            assert _query(url, "SELECT count(*) FROM patients_patient") == [(0,)]
            assert _query(url, "SELECT count(*) FROM accounts_organization") == [(0,)]
        # A write to one copy is not in the other (nor in the template the next copy gets).
        _query(
            one,
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('zz_probe', 'only_here', CURRENT_TIMESTAMP)",
        )
        with engine_database(tmp_path / "three") as three:
            for url in (two, three):
                assert _query(url, "SELECT count(*) FROM django_migrations WHERE app = 'zz_probe'")[
                    0
                ] == (0,)
            assert _query(one, "SELECT count(*) FROM django_migrations WHERE app = 'zz_probe'") == [
                (1,)
            ]
        if one.startswith("sqlite:///"):
            # As a migrated Glabella database: in WAL mode.
            assert _query(one, "PRAGMA journal_mode") == [("wal",)]


def test_migrated_sqlite_never_overwrites_a_database(tmp_path):
    from glabella.testing_processes import migrated_sqlite

    path = tmp_path / "there.sqlite3"
    path.write_bytes(b"not to be replaced")
    with pytest.raises(FileExistsError):
        migrated_sqlite(path)
    assert path.read_bytes() == b"not to be replaced"


def _counts() -> tuple[int, int, int]:
    return AuditEvent.objects.count(), StockMove.objects.count(), Patient.objects.count()


def test_the_flush_between_committing_tests_empties_everything_and_keeps_the_triggers(
    transactional_db, monkeypatch
):
    world = _make_world()
    receive_botox_cosmetic(world)
    audit, moves, patients = _counts()
    assert audit and moves and patients == 2
    if connection.vendor == "postgresql":
        # The fast way (conftest._fast_postgres_flush), not Django's TRUNCATE of every table.
        tables = connection.introspection.django_table_names(only_existing=True)
        statements = connection.ops.sql_flush(no_style(), tables)
        assert not any("TRUNCATE" in s for s in statements), statements
        assert sum(s.startswith("DELETE FROM") for s in statements) == len(tables)

    ran: list[str] = []
    execute = connection.ops.execute_sql_flush
    monkeypatch.setattr(
        connection.ops, "execute_sql_flush", lambda sql: (ran.extend(sql), execute(sql))
    )
    # As after a transactional test (which then lets post_migrate make the content types again).
    call_command(
        "flush", verbosity=0, interactive=False, reset_sequences=False, inhibit_post_migrate=True
    )
    assert ran
    if connection.vendor == "postgresql":
        assert not any("TRUNCATE" in s for s in ran), ran
    assert _counts() == (0, 0, 0)
    for model in connection.introspection.installed_models(
        connection.introspection.django_table_names(only_existing=True)
    ):
        assert not model._base_manager.exists(), model

    # The append-only triggers are on again: a new audit event cannot be changed.
    world = _make_world()
    receive_botox_cosmetic(world)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.update(actor_label="x")
    if connection.vendor == "postgresql":
        for table in ("audit_auditevent", "inventory_stockmove"):
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (a fixed name)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT tgenabled FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgname IN ('audit_append_only', 'stockmove_append_only')"
            )
            assert cursor.fetchall() == [("O",)]
