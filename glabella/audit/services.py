"""The one way to write an audit event."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from glabella.audit.models import GENESIS_HASH, AuditEvent, ChainHead

if TYPE_CHECKING:
    from glabella.accounts.actor import Actor
    from glabella.accounts.models import Organization, User


def record(
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    *,
    object_type: str = "",
    object_id: str = "",
    label: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event for ACTOR doing ACTION to OBJ (inside the caller's transaction)."""
    return append(**_by_actor(actor, action, obj, object_type, object_id, label, detail))


def record_many(
    actor: Actor, action: str, obj: models.Model, items: list[tuple[str, dict[str, Any]]]
) -> list[AuditEvent]:
    """One event per (label, detail) in ITEMS, all for ACTOR doing ACTION to OBJ, appended in
    one turn of the chain (one lock of its head): several points added in one save."""
    return append_many(
        [
            _unsaved(**_by_actor(actor, action, obj, "", "", label, detail))
            for label, detail in items
        ]
    )


def _by_actor(
    actor: Actor,
    action: str,
    obj: models.Model | None,
    object_type: str,
    object_id: str,
    label: str,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    """``append``'s arguments for ACTOR doing ACTION to OBJ."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    return {
        "organization": actor.organization,
        "user": actor.user,
        "actor_label": actor.label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_label": label[:200],
        "ip": actor.ip,
        "request_id": actor.request_id,
        "detail": detail or {},
    }


def append(
    *,
    organization: Organization | None,
    user: User | None,
    actor_label: str,
    action: str,
    object_type: str = "",
    object_id: str = "",
    object_label: str = "",
    ip: str = "",
    request_id: str = "",
    detail: dict[str, Any] | None = None,
    any_schema: bool = False,
) -> AuditEvent:
    """ANY_SCHEMA: the database may predate the chain head's ``prev_hash`` (a backup of an
    older version just restored, not yet migrated): the ordinary path reads the head's
    number and hash only."""
    [event] = append_many(
        [
            _unsaved(
                organization=organization,
                user=user,
                actor_label=actor_label,
                action=action,
                object_type=object_type,
                object_id=object_id,
                object_label=object_label,
                ip=ip,
                request_id=request_id,
                detail=detail,
            )
        ],
        one_statement=not any_schema,
    )
    return event


def _unsaved(
    *,
    organization: Organization | None,
    user: User | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    object_label: str,
    ip: str,
    request_id: str,
    detail: dict[str, Any] | None,
) -> AuditEvent:
    """An event not yet numbered, hashed or written (``append_many`` does that)."""
    return AuditEvent(
        organization=organization,
        actor=user,
        actor_label=actor_label[:254],
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_label=object_label,
        ip=ip,
        request_id=request_id,
        detail=detail or {},
    )


def append_many(events: list[AuditEvent], *, one_statement: bool = True) -> list[AuditEvent]:
    """Chain EVENTS (unsaved, in order) onto the trail and write them (inside the caller's
    transaction): numbered and hashed one after the other, under one lock of the head.
    ONE_STATEMENT: a single event may go in by ``_append_in_one_statement`` (PostgreSQL)."""
    if not events:
        return events
    if (
        one_statement
        and len(events) == 1
        and connection.vendor == "postgresql"
        and _append_in_one_statement(events[0])
    ):
        return events
    with transaction.atomic():
        n = len(events)
        seq, prev = _advance_head(n)
        now = timezone.now()
        for number, event in enumerate(events, start=seq - n + 1):
            event.seq, event.at, event.prev_hash = number, now, prev
            event.hash = prev = event.compute_hash()
        if n == 1 and connection.vendor != "postgresql":
            _insert_one_and_set_head(events[0])
        else:
            AuditEvent.objects.bulk_create(events)
            with connection.cursor() as cursor:
                cursor.execute(_SET_HASH_SQL, [prev])
    return events


# One event, the hot path of every audited page view: the INSERT the ORM would send (the same
# columns, each value prepared by its own field as ``save()`` prepares it), written once as
# text. It sends no pre_save/post_save signal (none is listened to for events; a test says so).
_COLUMNS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
_FROM_HEAD = ("seq", "prev_hash", "hash")  # what the one-statement append takes from the head


def _quoted() -> tuple[str, str, str]:
    quote = connection.ops.quote_name
    table, pk = quote(AuditEvent._meta.db_table), quote(AuditEvent._meta.pk.column)
    return table, pk, ", ".join(quote(f.column) for f in _COLUMNS)


def _insert_sql() -> str:
    """SQLite: the INSERT alone (the head's hash is set by a second statement)."""
    table, _, columns = _quoted()
    values = ", ".join(["%s"] * len(_COLUMNS))
    return f"INSERT INTO {table} ({columns}) VALUES ({values})"  # noqa: S608 (our own names)


def _one_statement_sql() -> str:
    """PostgreSQL: move the head on, hash the event and write it, in one statement.

    The head's UPDATE numbers the event, keeps the old hash as ``prev_hash`` and finishes the
    new hash with ``sha256()`` from the body Python wrote up to the number
    (``AuditEvent.body_before_seq``). Every expression in its SET reads the row as it was; a
    writer that waited for the head's row lock reads the row as the writer before left it, so
    two events never chain onto the same one. The INSERT takes the number and the hashes from
    the UPDATE's RETURNING and every other column from Python. No head row: nothing is written
    and nothing is returned.
    """
    table, pk, columns = _quoted()
    values = ", ".join(f"h.{f.column}" if f.attname in _FROM_HEAD else "%s" for f in _COLUMNS)
    return (
        f"WITH h AS (UPDATE {_HEAD} SET seq = seq + 1, prev_hash = hash, "  # noqa: S608 (our own names)
        "hash = encode(sha256(convert_to(hash || '|' || %s || (seq + 1)::text || '}', 'UTF8')), "
        "'hex') WHERE id = 1 RETURNING seq, prev_hash, hash) "
        f"INSERT INTO {table} ({columns}) SELECT {values} FROM h "
        f"RETURNING {pk}, seq, prev_hash, hash"
    )


_SQL: dict[str, str] = {}


def _sql(name: str, build: Callable[[], str]) -> str:
    key = f"{connection.vendor}:{name}"
    sql = _SQL.get(key)
    if sql is None:
        sql = _SQL[key] = build()
    return sql


def _prepared(event: AuditEvent, skip: tuple[str, ...] = ()) -> list[Any]:
    return [
        f.get_db_prep_save(f.pre_save(event, True), connection)
        for f in _COLUMNS
        if f.attname not in skip
    ]


def _saved(event: AuditEvent, pk: int) -> None:
    event.pk = pk
    event._state.adding = False
    event._state.db = connection.alias


def _append_in_one_statement(event: AuditEvent) -> bool:
    """Number, hash and write EVENT in one statement (PostgreSQL), which commits by itself
    outside a transaction: one round trip for a page view's event instead of four (BEGIN, the
    head, the event, COMMIT). False, with nothing written, when there is no head row yet."""
    # Stamped before the head is locked (the hash covers it): under contention an event's
    # time can be a little earlier than the one numbered before it. The number orders the trail.
    event.at = timezone.now()
    sql = _sql("one", _one_statement_sql)
    params = [event.body_before_seq(), *_prepared(event, skip=_FROM_HEAD)]
    # Inside the caller's transaction it has a savepoint of its own, as the ordinary path has:
    # an error here undoes the event only. Outside one, the statement commits by itself.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    pk, event.seq, event.prev_hash, event.hash = row
    _saved(event, pk)
    return True


def _insert_one_and_set_head(event: AuditEvent) -> None:
    """Write EVENT (numbered and hashed) and make its hash the chain head's (SQLite)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("insert", _insert_sql), _prepared(event))
        pk = cursor.lastrowid
        cursor.execute(_SET_HASH_SQL, [event.hash])
    _saved(event, pk)


_HEAD = ChainHead._meta.db_table
# The hot path of every audited page view, as plain SQL (no query to compile).
_ADVANCE_SQL = f"UPDATE {_HEAD} SET seq = seq + %s WHERE id = 1 RETURNING seq, hash"  # noqa: S608
_SET_HASH_SQL = f"UPDATE {_HEAD} SET hash = %s WHERE id = 1"  # noqa: S608


def _update_returns() -> bool:
    """Whether the database has ``UPDATE ... RETURNING`` (as it has ``INSERT ... RETURNING``)."""
    return bool(connection.features.can_return_columns_from_insert)


def _advance_head(n: int) -> tuple[int, str]:
    """Move the chain head on by N events and return its new number and the hash the first of
    them chains onto (the last event's so far).

    The update comes first: it takes the head's row lock (PostgreSQL) or the write lock
    (SQLite) before the head is read, so two writers can never chain onto the same event. With
    ``RETURNING`` (PostgreSQL, SQLite 3.35+) the update reads the head in the same statement;
    otherwise it is read again under ``SELECT ... FOR UPDATE``.
    """
    if _update_returns():
        with connection.cursor() as cursor:
            cursor.execute(_ADVANCE_SQL, [n])
            row = cursor.fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
    bumped = ChainHead.objects.filter(pk=1).update(seq=F("seq") + n)
    if not bumped:
        ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})
        ChainHead.objects.filter(pk=1).update(seq=F("seq") + n)
    head = ChainHead.objects.select_for_update().get(pk=1)
    return head.seq, head.hash


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""


def verify_chain(*, progress: Any = None) -> ChainReport:
    """Walk every event in order and check each link. Stops at the first broken one."""
    prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    # scoped: the audit hash chain runs across every organization (verification)
    events = AuditEvent.objects.order_by("seq")
    total = events.count()
    for event in events.iterator(chunk_size=2000):
        # detail round-trips through JSON in the database; recompute from what is stored.
        if event.seq != expected_seq:
            return ChainReport(
                False,
                checked,
                expected_seq,
                f"event #{expected_seq} is missing (next is #{event.seq})",
            )
        if event.prev_hash != prev:
            return ChainReport(
                False,
                checked,
                event.seq,
                f"event #{event.seq} does not point to the event before it",
            )
        if event.compute_hash() != event.hash:
            return ChainReport(
                False, checked, event.seq, f"event #{event.seq} was changed after it was written"
            )
        prev = event.hash
        expected_seq += 1
        checked += 1
        if progress is not None:
            progress(checked, total)
    # The number and hash only (an older version's head, restored, not yet migrated, checks).
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    if head is not None and head[0] != checked:
        return ChainReport(
            False,
            checked,
            checked + 1,
            f"the chain should hold {head[0]} events but holds {checked}: "
            "the last ones are missing",
        )
    if head is not None and checked and head[1] != prev:
        return ChainReport(False, checked, checked, "the last event does not match the chain head")
    return ChainReport(True, checked)
