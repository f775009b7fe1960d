"""Reports and exports read from a PostgreSQL streaming replica; everything else from the primary.

With ``DATABASE_REPLICA_URL`` set, settings add a second database alias, ``"replica"`` (a hot
standby of the primary, read-only). :class:`ReplicaRouter` sends a read there only inside
``with reading_from_replica():``, which wraps the long report-style reads:

- the FHIR bulk export and the full export jobs (``interop/export/jobs.py``),
- the stock reconciliation report and its CSV (``inventory/views.py``),
- the duration-of-effect cohort (``outcomes/duration_views.py``).

Every write goes to the primary, and every other read too, so a page always sees what was just
saved on it (a replica lags by a little; a report may be that little behind, never a chart).
The audit rows those reports write (who exported what) are writes, so they go to the primary.

Without a replica the context manager changes nothing: every query goes to ``"default"``.
The flag is a :class:`contextvars.ContextVar`, so it holds for the thread (or task) that set it
and no other: an export's background thread sets it itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings

REPLICA = "replica"
PRIMARY = "default"

_reading_from_replica: ContextVar[bool] = ContextVar("glabella_reading_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextlib.contextmanager
def reading_from_replica() -> Iterator[str]:
    """Inside, reads go to the replica when there is one; yields the alias reads will use."""
    token = _reading_from_replica.set(True)
    try:
        yield REPLICA if replica_configured() else PRIMARY
    finally:
        _reading_from_replica.reset(token)


def replica_requested() -> bool:
    """Whether the code running here asked for the replica (whether or not there is one)."""
    return _reading_from_replica.get()


def read_alias() -> str:
    """Where a read made here and now goes."""
    if _reading_from_replica.get() and replica_configured():
        return REPLICA
    return PRIMARY


class ReplicaRouter:
    """Reads to the replica only inside :func:`reading_from_replica`; writes always primary."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # The replica holds the same rows as the primary: an object read from one may point
        # at an object read from the other.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica follows the primary's WAL; it is never migrated itself.
        return db != REPLICA
