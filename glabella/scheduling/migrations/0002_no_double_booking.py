"""No practitioner and no room is booked twice at once: enforced by the database itself.

PostgreSQL: two exclusion constraints over ``tstzrange(starts_at, ends_at)`` (btree_gist for
the equality part), only for appointments that hold time (booked, arrived, done). SQLite has no
exclusion constraints: BEFORE INSERT and BEFORE UPDATE triggers refuse the same overlaps.
Either way the error is an IntegrityError naming the rule, which the booking service turns
into a message for the person booking.
"""

from django.db import migrations

ACTIVE = "('booked', 'arrived', 'done')"

PG_UP = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE scheduling_appointment ADD CONSTRAINT appointment_no_practitioner_overlap
  EXCLUDE USING gist (practitioner_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
  WHERE (status IN {ACTIVE});
ALTER TABLE scheduling_appointment ADD CONSTRAINT appointment_no_room_overlap
  EXCLUDE USING gist (room_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
  WHERE (status IN {ACTIVE} AND room_id IS NOT NULL);
"""
PG_DOWN = """
ALTER TABLE scheduling_appointment DROP CONSTRAINT IF EXISTS appointment_no_practitioner_overlap;
ALTER TABLE scheduling_appointment DROP CONSTRAINT IF EXISTS appointment_no_room_overlap;
"""


def _sqlite_trigger(event: str) -> str:
    # On UPDATE the row itself must not count as its own overlap.
    self_clause = "AND a.id <> NEW.id" if event == "UPDATE" else ""
    return f"""
CREATE TRIGGER appointment_no_overlap_{event.lower()} BEFORE {event} ON scheduling_appointment
WHEN NEW.status IN {ACTIVE}
BEGIN
  SELECT RAISE(ABORT, 'appointment_no_practitioner_overlap')
  WHERE EXISTS (
    SELECT 1 FROM scheduling_appointment a
    WHERE a.practitioner_id = NEW.practitioner_id {self_clause}
      AND a.status IN {ACTIVE}
      AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at
  );
  SELECT RAISE(ABORT, 'appointment_no_room_overlap')
  WHERE NEW.room_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM scheduling_appointment a
    WHERE a.room_id = NEW.room_id {self_clause}
      AND a.status IN {ACTIVE}
      AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at
  );
END;
"""


SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS appointment_no_overlap_insert;",
    "DROP TRIGGER IF EXISTS appointment_no_overlap_update;",
]


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(_sqlite_trigger("INSERT"))
        schema_editor.execute(_sqlite_trigger("UPDATE"))


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_DOWN:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]
    operations = [migrations.RunPython(up, down)]
