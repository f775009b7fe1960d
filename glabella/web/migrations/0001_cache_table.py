"""The shared cache's table (GLABELLA_CACHE_URL=db://, the default; docs/deploy.md).

Made by `migrate` so a new installation, `make run` and the tests need no extra step, and made
whichever cache is configured now, so switching to the database cache later needs none either.
Creating it again is harmless (Django's createcachetable skips a table that exists).
"""

from django.conf import settings
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "glabella_cache"


def create(apps, schema_editor):
    alias = schema_editor.connection.alias
    tables = {TABLE} | {
        cache["LOCATION"]
        for cache in settings.CACHES.values()
        if cache["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    }
    command = CreateCacheTable()
    command.verbosity = 0
    for table in sorted(tables):
        command.create_table(alias, table, dry_run=False)


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [migrations.RunPython(create, drop, elidable=False)]
