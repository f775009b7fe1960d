"""Drop the single-column indexes on ``name_key`` and ``phone_digits`` (``db_index=True``).

Nothing reads through them. Search tests a substring (``LIKE '%…%'``), which a btree cannot
serve: it uses the trigram indexes, or walks ``patient_org_family_given`` (migration 0005). The
duplicate check looks up (organization, name key, date of birth), which the unique constraint
``patient_unique_name_dob_per_org`` serves. Yet every insert and every change of a name or a
phone wrote them: four indexes on PostgreSQL (each column's btree and its ``_like`` copy for
prefix patterns), about 200 MB per million patients, a third of the table's indexes, competing
with the table for the server's memory; two on SQLite.

Django's own ``AlterField`` for this rebuilds the table on SQLite (copy, drop, rename), which
drops the search triggers (see 0005), for every patient in the database. The indexes are
dropped by name instead, and the state is altered alone. The names are the ones Django gave
them (a hash of table, column and suffix, the same on every database).
"""

from django.db import migrations, models

# (index, column, PostgreSQL operator class or "" for the plain btree): as 0001 made them.
DROPPED = [
    ("patients_patient_name_key_6ec9f336", "name_key", ""),
    ("patients_patient_name_key_6ec9f336_like", "name_key", "varchar_pattern_ops"),
    ("patients_patient_phone_digits_0242ea22", "phone_digits", ""),
    ("patients_patient_phone_digits_0242ea22_like", "phone_digits", "varchar_pattern_ops"),
]


def _made(vendor: str) -> list[tuple[str, str, str]]:
    """The indexes 0001 made on this database: SQLite has no ``_like`` copies."""
    return [index for index in DROPPED if vendor == "postgresql" or not index[2]]


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name, _, _ in _made(schema_editor.connection.vendor):
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def make_again(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name, column, opclass in _made(schema_editor.connection.vendor):
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "patients_patient" ("{column}" {opclass})'
            )


class Migration(migrations.Migration):
    dependencies = [("patients", "0005_search_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="patient",
                    name="name_key",
                    field=models.CharField(editable=False, max_length=210),
                ),
                migrations.AlterField(
                    model_name="patient",
                    name="phone_digits",
                    field=models.CharField(blank=True, editable=False, max_length=40),
                ),
            ],
            database_operations=[migrations.RunPython(drop, make_again)],
        )
    ]
