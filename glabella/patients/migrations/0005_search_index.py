"""Patient search that scales: substring search through a trigram index, results in order.

``search_patients`` finds a patient by any part of the phone digits or of the name key
(``LIKE '%…%'``) and lists them by family name, given name. Without an index for the substring
that is a scan of every patient of the organization.

Both: a btree on ``(organization_id, family_name, given_name, id)``, the order of the results,
followed by every column a search word is tested against (``name_key, phone_digits,
date_of_birth, email``): a search the trigram index does not serve walks it in order, reads
nothing else, and stops at the limit.

PostgreSQL: pg_trgm GIN indexes on ``phone_digits`` and ``name_key`` answer ``LIKE '%…%'``.
pg_trgm is a trusted extension (the database owner may create it); when it cannot be created
the migration says so and goes on without the trigram indexes (search still works, reading
the organization's rows). To add them later: ``CREATE EXTENSION pg_trgm`` as a user who may,
then the two ``CREATE INDEX`` of ``pg_up`` below.

SQLite: an external-content FTS5 table with the ``trigram`` tokenizer over the same two
columns, ``patients_patient_fts`` (its rowid is the patient's id), kept in step with
``patients_patient`` by triggers on insert, update and delete, so raw bulk SQL (``glabella
seed``) keeps it right too. ``search_patients`` narrows with it for every substring of three
characters or more (the tokenizer's shortest) and keeps the ``LIKE`` as the exact test. Where
SQLite has no FTS5 or no trigram tokenizer (before 3.34) the table is not made and search scans
as before.

Warning for later migrations: on SQLite, Django rebuilds a table it alters (create a copy,
drop the old table, rename), and dropping the old table drops its triggers. A migration that
alters ``patients_patient`` on SQLite must run ``sqlite_up`` of this module again afterwards
(it recreates the triggers and rebuilds the index); ``test_search_index`` fails until it does.
"""

from django.db import migrations, models, transaction

PG_INDEXES = {"patient_phone_digits_trgm": "phone_digits", "patient_name_key_trgm": "name_key"}

SQLITE_UP = [
    # From scratch every time (a later migration runs this again after rebuilding the table).
    "DROP TRIGGER IF EXISTS patients_patient_fts_insert",
    "DROP TRIGGER IF EXISTS patients_patient_fts_delete",
    "DROP TRIGGER IF EXISTS patients_patient_fts_update",
    "DROP TABLE IF EXISTS patients_patient_fts",
    """CREATE VIRTUAL TABLE patients_patient_fts USING fts5(
  phone_digits, name_key, content='patients_patient', content_rowid='id', tokenize='trigram'
)""",
    # An external-content index removes a row by being told the values it indexed: the old ones.
    """CREATE TRIGGER patients_patient_fts_insert AFTER INSERT ON patients_patient BEGIN
  INSERT INTO patients_patient_fts(rowid, phone_digits, name_key)
  VALUES (new.id, new.phone_digits, new.name_key);
END""",
    """CREATE TRIGGER patients_patient_fts_delete AFTER DELETE ON patients_patient BEGIN
  INSERT INTO patients_patient_fts(patients_patient_fts, rowid, phone_digits, name_key)
  VALUES ('delete', old.id, old.phone_digits, old.name_key);
END""",
    """CREATE TRIGGER patients_patient_fts_update
AFTER UPDATE OF id, phone_digits, name_key ON patients_patient
WHEN old.id IS NOT new.id OR old.phone_digits IS NOT new.phone_digits
  OR old.name_key IS NOT new.name_key
BEGIN
  INSERT INTO patients_patient_fts(patients_patient_fts, rowid, phone_digits, name_key)
  VALUES ('delete', old.id, old.phone_digits, old.name_key);
  INSERT INTO patients_patient_fts(rowid, phone_digits, name_key)
  VALUES (new.id, new.phone_digits, new.name_key);
END""",
    "INSERT INTO patients_patient_fts(patients_patient_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS patients_patient_fts_insert",
    "DROP TRIGGER IF EXISTS patients_patient_fts_delete",
    "DROP TRIGGER IF EXISTS patients_patient_fts_update",
    "DROP TABLE IF EXISTS patients_patient_fts",
]


def sqlite_up(schema_editor) -> bool:
    """Make (or remake) the FTS5 index, its triggers, and fill it. False: SQLite cannot."""
    from django.db.utils import OperationalError

    connection = schema_editor.connection
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for sql in SQLITE_UP:
                cursor.execute(sql)
    except OperationalError as exc:  # no FTS5, or no trigram tokenizer (SQLite < 3.34)
        print(f"\n  Patient search index not made ({exc}): search will scan.")
        return False
    return True


def pg_up(schema_editor) -> bool:
    from django.db.utils import DatabaseError

    connection = schema_editor.connection
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # not allowed to create it: go on without
        print(f"\n  pg_trgm not available ({exc}): patient search will scan.")
        return False
    with connection.cursor() as cursor:
        for name, column in PG_INDEXES.items():
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON patients_patient "
                f"USING gin ({column} gin_trgm_ops)"
            )
    return True


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        sqlite_up(schema_editor)
    elif vendor == "postgresql":
        pg_up(schema_editor)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "sqlite":
            for sql in SQLITE_DOWN:
                cursor.execute(sql)
        elif vendor == "postgresql":
            for name in PG_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("patients", "0004_breakglass")]

    operations = [
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(
                fields=[
                    "organization",
                    "family_name",
                    "given_name",
                    "id",
                    "name_key",
                    "phone_digits",
                    "date_of_birth",
                    "email",
                ],
                name="patient_org_family_given",
            ),
        ),
        migrations.RunPython(up, down),
    ]
