"""Make the stock ledger append-only in the database itself.

PostgreSQL refuses UPDATE and DELETE of stock moves (TRUNCATE, used only by test teardown
and by a full restore, is left alone). SQLite refuses UPDATE; there a DELETE cannot be told
apart from the test runner's flush. The model and its queryset refuse both in any case.
"""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION glabella_stockmove_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'stock moves are append-only: % refused; reverse the move instead', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER stockmove_append_only BEFORE UPDATE OR DELETE ON inventory_stockmove
  FOR EACH ROW EXECUTE FUNCTION glabella_stockmove_append_only();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS stockmove_append_only ON inventory_stockmove;
DROP FUNCTION IF EXISTS glabella_stockmove_append_only();
"""
SQLITE_UP = """
CREATE TRIGGER stockmove_append_only BEFORE UPDATE ON inventory_stockmove
BEGIN SELECT RAISE(ABORT, 'stock moves are append-only: UPDATE refused'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS stockmove_append_only;"


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


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]
    operations = [migrations.RunPython(up, down)]
