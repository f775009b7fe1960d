"""Make the audit table append-only in the database itself, and create the chain head.

PostgreSQL refuses UPDATE and DELETE of audit rows (TRUNCATE, used only by test
teardown and by a full restore, is left alone). SQLite refuses UPDATE; there a DELETE
cannot be told apart from the test runner's flush, and the hash chain catches any
removal anyway (``glabella audit-verify``).
"""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION glabella_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION glabella_audit_append_only();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS audit_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS glabella_audit_append_only();
"""
SQLITE_UP = """
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS audit_append_only;"


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)


def chain_head(apps, schema_editor):
    ChainHead = apps.get_model("audit", "ChainHead")
    ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": "0" * 64})


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [
        migrations.RunPython(up, down),
        migrations.RunPython(chain_head, migrations.RunPython.noop),
    ]
