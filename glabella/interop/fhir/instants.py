"""FHIR instants written by the database: the bulk export reads each row's last change as the
text it puts in ``meta.lastUpdated`` instead of a datetime it would format again.

Reading a ``timestamptz`` into a datetime is the costliest part of a row for PostgreSQL's
driver under Django (whose time-zone loader runs psycopg's Python parser, about 7 µs a value),
and the export only formats it back to text. :class:`InstantText` has the database write
exactly what :func:`glabella.interop.fhir.build.iso_instant` writes for the same moment:
``YYYY-MM-DDThh:mm:ss`` in UTC, then ``.ffffff`` only when there are microseconds, then ``Z``.
test_instants checks the two agree, on both databases, for whole seconds, microseconds and the
stored rows.
"""

from __future__ import annotations

from typing import Any

from django.db import NotSupportedError
from django.db.models import CharField, Func


class InstantText(Func):
    """A DateTimeField (or expression) as its FHIR instant text; NULL stays NULL."""

    arity = 1
    output_field = CharField()

    def _column(self, compiler: Any, connection: Any) -> str:
        sql, params = compiler.compile(self.source_expressions[0])
        if params:  # the column is written several times below: it must carry no parameters
            raise NotSupportedError("InstantText takes a column, not an expression with values")
        return str(sql)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotSupportedError(f"InstantText is not written for {connection.vendor}")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        # Django keeps an aware datetime in SQLite as the text of its UTC time without an
        # offset, as str() writes it: "YYYY-MM-DD hh:mm:ss", then ".ffffff" when there are
        # microseconds.
        return f"(REPLACE({self._column(compiler, connection)}, ' ', 'T') || 'Z')", []

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column = self._column(compiler, connection)
        utc = f"({column} AT TIME ZONE 'UTC')"
        return (
            f"(TO_CHAR({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN DATE_TRUNC('second', {utc}) = {utc} THEN '' "
            f"ELSE TO_CHAR({utc}, '.US') END || 'Z')",
            [],
        )
