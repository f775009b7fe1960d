"""Prepared queries: an ORM query whose shape never changes, compiled to SQL once per database
connection and then run with new values, as SQLAlchemy's compiled cache does.

Django builds and compiles a query's SQL anew every time it runs. For a query with a few
joins that costs more than the database takes to answer it (a session with its patient,
practitioners and consent: about 2 ms to compile, a tenth of that to run). The pages opened
most often (the chart, the patient) run the same handful of queries on every request, with
only the ids changing. A :class:`Prepared` query is written as an ordinary queryset, by a
function of its integer parameters::

    SESSION = Prepared(
        lambda org, pk: TreatmentSession.objects.filter(organization_id=org, pk=pk)
        .select_related("patient")
    )
    [session] = SESSION(request.org.pk, pk)  # a list of TreatmentSession, as the ORM loads them

The first run on a connection builds the queryset with stand-in values (integers no record
has), compiles it, and remembers the SQL, where each stand-in landed in its parameters, and
how the ORM turns rows into model instances (the compiler's columns, converters and related
populators). Every run after that substitutes the real values and runs the SQL, building the
instances exactly as ``QuerySet.__iter__`` does: the same ``from_db``, the same converters,
``select_related`` and annotations included. The tests compare every prepared query of the
app with its plain queryset, on SQLite and PostgreSQL.

On PostgreSQL the SQL is also prepared on the server, once per connection, and run by name
(``EXECUTE``), so the server plans it once rather than on every request (see "PostgreSQL:
planned once per connection" below).

Limits, checked rather than assumed:

- Parameters are plain integers (ids, within 64 bits), strings or time-zone-aware datetimes,
  as declared. Anything else (None, a model, a naive datetime, an id too large for any
  column) runs the queryset the ordinary way, so the result is always right. A datetime goes
  into the SQL as the database adapts a ``DateTimeField``'s value
  (``adapt_datetimefield_value``), as the ORM sends it.
- The function must use its parameters only as filter values: compiling checks that each
  stand-in appears in the SQL's parameters and never in its text, and compiles the query a
  second time with other stand-ins: the SQL and every other parameter must be the same (a
  value worked out from a parameter, ``pk + 1``, would otherwise keep its stand-in's value).
- Model instances (``select_related`` and annotations included) or ``values_list()`` rows
  (tuples, or single values with ``flat=True``); no ``prefetch_related``, ``values()``,
  ``named=True``, ``using()`` or ``select_for_update()``: rejected when compiled.
- Reads go to the database the router chooses for the model, as the ORM's do.
- The compiled query is kept per active time zone too (``__date`` and the like write it
  into the SQL).
"""

from __future__ import annotations

import itertools
import logging
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections, router
from django.db.models import QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.utils import timezone

_log = logging.getLogger(__name__)

M = TypeVar("M")  # what a row becomes: a model instance, or a values_list() tuple or value

# Stand-ins for the parameters, two sets (a query is compiled with each, see _compile).
# Integers: negative, within a 32-bit integer, and no record's id. Strings: wrapped in
# characters of Unicode's private use area, which nobody types. Datetimes: moments in 1901
# (before any record), each with its own microseconds.
_MAX = 8
_STAND_INS: dict[type, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    int: (
        tuple(-2_000_000_011 - 7 * i for i in range(_MAX)),
        tuple(-1_900_000_013 - 11 * i for i in range(_MAX)),
    ),
    str: (
        tuple(f"\ue000glabella-parameter-{i}\ue000" for i in range(_MAX)),
        tuple(f"\ue001glabella-stand-in-{i}\ue001" for i in range(_MAX)),
    ),
    datetime: (
        tuple(datetime(1901, 2, 3, 4, 5, 6, 123_457 + i, tzinfo=UTC) for i in range(_MAX)),
        tuple(datetime(1902, 7, 8, 9, 10, 11, 654_321 + i, tzinfo=UTC) for i in range(_MAX)),
    ),
}
# Integers the database drivers take (SQLite's stops at 64 bits): a larger id, which a URL
# may carry, goes the ordinary way, where the ORM finds nothing for it.
_INT64 = range(-(2**63), 2**63)


def _usable(value: Any, kind: type) -> bool:
    """VALUE is what a parameter of KIND is prepared for: exactly that type (True is not an
    id), and a datetime aware of its time zone (the ORM would warn of a naive one and read it
    in the server's zone: left to the ORM)."""
    if type(value) is not kind:
        return False
    if kind is int:
        return value in _INT64
    return kind is not datetime or value.utcoffset() is not None


def _adapter(kind: type, wrapper: Any) -> Callable[[Any], Any] | None:
    """How a parameter of KIND goes into the SQL on WRAPPER's database, as a filter on a field
    of its type sends it (None: as it is)."""
    return wrapper.ops.adapt_datetimefield_value if kind is datetime else None


class NotPreparable(ValueError):
    """The queryset cannot be prepared (it uses a parameter other than as a filter value,
    or a feature a prepared query does not reproduce)."""


# What a queryset gives: model instances, tuples (values_list) or single values (flat=True).
_SHAPES = {ModelIterable: "model", ValuesListIterable: "tuple", FlatValuesListIterable: "flat"}


@dataclass(frozen=True)
class _Compiled:
    shape: str
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, int, Any], ...]  # (position in params, parameter number, adapter)
    compiler: Any
    converters: dict[int, Any]
    width: int | None  # columns to keep, when the compiler added extra ones
    start: int
    stop: int
    init_list: tuple[str, ...]
    populators: tuple[Any, ...]
    annotations: tuple[tuple[str, int], ...]


class Prepared(Generic[M]):
    """An ORM query of fixed shape, compiled once per connection (see the module's text)."""

    _counter = itertools.count()
    every: list[Prepared[Any]] = []  # every prepared query made (the tests run each one)

    def __init__(
        self, build: Callable[..., QuerySet[M]], *, kinds: tuple[type, ...] | None = None
    ) -> None:
        """BUILD: the queryset, as a function of its parameters. KINDS: each parameter's type,
        ``int``, ``str`` or ``datetime`` (all ``int`` unless given)."""
        self.build = build
        self.kinds = kinds if kinds is not None else (int,) * build.__code__.co_argcount
        if len(self.kinds) > _MAX or any(k not in _STAND_INS for k in self.kinds):
            raise NotPreparable(f"at most {_MAX} parameters, each an int, a str or a datetime")
        self.stand_ins = tuple(_STAND_INS[k][0][n] for n, k in enumerate(self.kinds))
        self.other_stand_ins = tuple(_STAND_INS[k][1][n] for n, k in enumerate(self.kinds))
        self._key = f"_glabella_prepared_{next(self._counter)}"
        self._model: type[M] | None = None
        Prepared.every.append(self)

    def __call__(self, *args: Any) -> list[M]:
        if len(args) != len(self.kinds):
            raise TypeError(f"this query takes {len(self.kinds)} parameters, not {len(args)}")
        if not all(_usable(a, k) for a, k in zip(args, self.kinds, strict=True)):
            return list(self.build(*args))  # not what it was prepared for: the ordinary way
        if self._model is None:
            self._model = self.build(*self.stand_ins).model
        using = router.db_for_read(self._model)
        wrapper = connections[using]
        # Kept on the connection object (one per thread and database), as Django keeps its
        # own per-connection state; and by the active time zone, which lookups such as
        # __date write into a query.
        cache: dict[tuple[str, str], _Compiled] = wrapper.__dict__.setdefault(
            "_glabella_prepared", {}
        )
        key = (self._key, timezone.get_current_timezone_name())
        compiled = cache.get(key)
        if compiled is None:
            compiled = cache[key] = _compile(
                self.build(*self.stand_ins),
                using,
                self.stand_ins,
                self.kinds,
                again=self.build(*self.other_stand_ins),
                other_stand_ins=self.other_stand_ins,
            )
        return _run(compiled, args, using, wrapper)

    def first(self, *args: Any) -> M | None:
        rows = self(*args)
        return rows[0] if rows else None


def _compile(
    queryset: QuerySet[Any],
    using: str,
    stand_ins: tuple[Any, ...],
    kinds: tuple[type, ...],
    *,
    again: QuerySet[Any],
    other_stand_ins: tuple[Any, ...],
) -> _Compiled:
    """Compile QUERYSET (built with STAND_INS) for USING, and AGAIN, the same query built with
    OTHER_STAND_INS: the two must differ only in the parameters' slots. A value the query
    works out from a parameter (``pk + 1``, ``now - timedelta(...)``), or a branch on one,
    would otherwise be kept at its stand-in's value."""
    if queryset._prefetch_related_lookups:
        raise NotPreparable("prefetch_related is not supported")
    shape = _SHAPES.get(queryset._iterable_class)
    if shape is None:
        raise NotPreparable("only model instances and values_list() are supported")
    if queryset._known_related_objects:
        raise NotPreparable("querysets from a related manager's filter are not supported")
    if queryset._db is not None or queryset._hints:
        raise NotPreparable("a prepared query reads where the router sends it: no using()")
    if queryset.query.select_for_update:
        raise NotPreparable("select_for_update is checked when run, not prepared")
    adapters = [_adapter(k, connections[using]) for k in kinds]
    compiler, sql, params, slots = _sql_and_slots(queryset, using, stand_ins, adapters)
    _, sql_again, params_again, slots_again = _sql_and_slots(
        again, using, other_stand_ins, adapters
    )
    filled = {position for position, _, _ in slots}
    if (
        sql_again != sql
        or slots_again != slots
        or len(params_again) != len(params)
        or any(
            params_again[i] != params[i] or type(params_again[i]) is not type(params[i])
            for i in range(len(params))
            if i not in filled
        )
    ):
        raise NotPreparable("the query changes with its parameters other than in their values")
    select, klass_info = compiler.select, compiler.klass_info
    fields = [s[0] for s in select[0 : compiler.col_count]]
    if compiler.has_composite_fields(fields):
        raise NotPreparable("composite fields are not supported")
    if shape == "model":
        select_fields = klass_info["select_fields"]
        start, stop = select_fields[0], select_fields[-1] + 1
        init_list = tuple(f[0].target.attname for f in select[start:stop])
        populators = tuple(get_related_populators(klass_info, select, using))
    else:
        start = stop = 0
        init_list, populators = (), ()
    return _Compiled(
        shape=shape,
        sql=sql,
        params=tuple(params),
        slots=tuple(slots),
        compiler=compiler,
        converters=compiler.get_converters(fields),
        width=compiler.col_count if compiler.has_extra_select else None,
        start=start,
        stop=stop,
        init_list=init_list,
        populators=populators,
        annotations=tuple((compiler.annotation_col_map or {}).items()),
    )


def _sql_and_slots(
    queryset: QuerySet[Any], using: str, stand_ins: tuple[Any, ...], adapters: list[Any]
) -> tuple[Any, str, tuple[Any, ...], list[tuple[int, int, Any]]]:
    """QUERYSET's compiler, SQL and parameters, and where each stand-in landed in them."""
    compiler = queryset.query.get_compiler(using=using)
    try:
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet) as exc:
        # A stand-in outside a field's range (a positive field), or no query at all (none()).
        raise NotPreparable(f"the query cannot be compiled with stand-ins ({exc!r})") from exc
    # Each stand-in as the SQL's parameters hold it (a datetime adapted for the database).
    sent = [s if a is None else a(s) for s, a in zip(stand_ins, adapters, strict=True)]
    number = {(type(v), v): n for n, v in enumerate(sent)}
    texts = {str(v) for v in (*stand_ins, *sent)}
    slots = []
    for position, value in enumerate(params):
        n = number.get((type(value), value)) if isinstance(value, int | str | datetime) else None
        if n is not None:
            slots.append((position, n, adapters[n]))
        elif any(t in str(value) for t in texts):
            raise NotPreparable(f"parameter {value!r} was changed on its way into the SQL")
    missing = sorted(set(range(len(stand_ins))) - {n for _, n, _ in slots})
    if missing:
        raise NotPreparable(f"parameters {missing} are not filter values of the query")
    if any(t in sql for t in texts):
        raise NotPreparable("a parameter was written into the SQL's text")
    return compiler, sql, tuple(params), slots


def _run(compiled: _Compiled, args: tuple[Any, ...], using: str, wrapper: Any) -> list[Any]:
    params = list(compiled.params)
    for position, n, adapt in compiled.slots:
        params[position] = args[n] if adapt is None else adapt(args[n])
    with wrapper.cursor() as cursor:
        name = _statement(wrapper, compiled.sql) if wrapper.vendor == "postgresql" else None
        if name is None:
            cursor.execute(compiled.sql, params)
        else:
            cursor.execute(_execute(wrapper, name, compiled.sql, len(params)), params)
        rows: Any = cursor.fetchall()
    if not rows:
        return []
    if compiled.width is not None:
        rows = [r[: compiled.width] for r in rows]
    if compiled.converters:
        rows = compiled.compiler.apply_converters(rows, compiled.converters)
    if compiled.shape == "tuple":
        return [tuple(row) for row in rows]
    if compiled.shape == "flat":
        return [row[0] for row in rows]
    model = compiled.compiler.klass_info["model"]
    init_list, start, stop = compiled.init_list, compiled.start, compiled.stop
    cut = operator.itemgetter(slice(start, stop))
    out = []
    for row in rows:
        obj = model.from_db(using, init_list, cut(row))
        for populator in compiled.populators:
            populator.populate(row, obj)
        for name, column in compiled.annotations:
            setattr(obj, name, row[column])
        out.append(obj)
    return out


# --- PostgreSQL: planned once per connection ---------------------------------------------------
#
# PostgreSQL plans every statement it is sent. For the session's query with its people and
# consent (six tables) planning takes about 0.7 ms of the server's time, several times what
# running it takes. A prepared query is therefore also prepared on the server, once per
# connection (``PREPARE glabella_N AS ...``, parameters as $1, $2...; PostgreSQL works out
# their types from where they stand), and run as ``EXECUTE glabella_N(values)``. After five
# runs PostgreSQL keeps a generic plan when it costs no more than the plans made for the
# values (plan_cache_mode "auto"), and then plans nothing more.
#
# - Preparing is kept out of the query log, like the settings Django sends when it connects:
#   a statement is prepared once in a connection's life, so counting it would make a page's
#   query count depend on what the connection ran before. The EXECUTE is logged and counted.
# - PREPARE is not transactional: it stays when the transaction around it rolls back. Inside
#   a transaction it runs under a savepoint of its own (not logged either), so a statement the
#   server will not prepare leaves the transaction as it was; that statement then runs
#   unprepared on this connection, as before.
# - The statements belong to the database session: they are remembered on the driver's
#   connection object, which Django replaces when it reconnects.
# - GLABELLA_PG_PREPARE=0 turns it off, for a connection pooler that hands one client's
#   transactions to different server sessions (PgBouncer in transaction mode).

_PLACEHOLDER = re.compile(r"%%|%s")


def numbered(sql: str, placeholder: str, first: int, percent: str) -> str:
    """SQL with each of Django's placeholders (%s) as PLACEHOLDER.format(n), n counting from
    FIRST, and each %% (a percent sign) as PERCENT."""
    counter = itertools.count(first)
    return _PLACEHOLDER.sub(
        lambda m: percent if m.group() == "%%" else placeholder.format(next(counter)), sql
    )


def _numbered(sql: str) -> str:
    """SQL with Django's placeholders (%s, and %% for a percent sign) as PostgreSQL's $1, $2..."""
    return numbered(sql, "${}", 1, "%")


_SHOWN = " /* glabella prepared: "  # begins the comment an EXECUTE carries in a query log


def _execute(wrapper: Any, name: str, sql: str, count: int) -> str:
    """The statement that runs NAME with COUNT values. When queries are logged (debug, the
    tests' query capture) it carries the prepared SQL in a comment, so the log still says
    which tables a page read."""
    statement = f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
    if wrapper.queries_logged:
        shown = _numbered(sql).replace("*/", "* /").replace("%", "%%")
        statement = f"{statement}{_SHOWN}{shown} */"
    return statement


def logged_sql(logged: str) -> str:
    """The SQL a logged query ran: for an EXECUTE of a prepared query, the SQL it was prepared
    from (its parameters as $1, $2...); any other query as it was logged."""
    at = logged.rfind(_SHOWN)
    if not logged.startswith("EXECUTE glabella_") or at < 0 or not logged.endswith(" */"):
        return logged
    return logged[at + len(_SHOWN) : -3]


def _statement(wrapper: Any, sql: str) -> str | None:
    """The name SQL is prepared under on WRAPPER's current connection (preparing it the first
    time), or None: run it as it is."""
    if not getattr(settings, "GLABELLA_PG_PREPARE", True):
        return None
    raw = wrapper.connection
    names: dict[str, str | None] | None = getattr(raw, "_glabella_statements", None)
    if names is None:
        names = {}
        raw._glabella_statements = names
    try:
        return names[sql]
    except KeyError:
        pass
    name = f"glabella_{len(names)}"
    names[sql] = name if _prepare(wrapper, raw, name, _numbered(sql)) else None
    return names[sql]


def _prepare(wrapper: Any, raw: Any, name: str, text: str) -> bool:
    """PREPARE NAME AS TEXT on RAW, WRAPPER's connection, outside the query log; False when the
    server refuses the statement (a parameter whose type it cannot tell), with any transaction
    as it was. A lost connection is raised, as Django raises it."""
    import psycopg

    # In a transaction (an atomic block, or autocommit turned off by hand) a refused statement
    # would abort it: the savepoint keeps it usable. Outside one, a refusal leaves nothing.
    savepoint = not raw.autocommit
    with wrapper.wrap_database_errors, raw.cursor() as cursor:
        if savepoint:
            cursor.execute("SAVEPOINT glabella_prepare")
        try:
            cursor.execute(f"PREPARE {name} AS {text}")
        except (psycopg.ProgrammingError, psycopg.NotSupportedError):
            if savepoint:
                cursor.execute("ROLLBACK TO SAVEPOINT glabella_prepare")
                cursor.execute("RELEASE SAVEPOINT glabella_prepare")
            _log.warning("PostgreSQL did not prepare a query; it runs unprepared", exc_info=True)
            return False
        if savepoint:
            cursor.execute("RELEASE SAVEPOINT glabella_prepare")
    return True
