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

Limits, checked rather than assumed:

- Parameters are plain integers (ids) or strings, as declared. Anything else (None, a
  model) runs the queryset the ordinary way, so the result is always right.
- The function must use its parameters only as filter values: compiling checks that each
  stand-in appears in the SQL's parameters and never in its text.
- Model instances (``select_related`` and annotations included) or ``values_list()`` rows
  (tuples, or single values with ``flat=True``); no ``prefetch_related``, ``values()`` or
  ``named=True``: rejected when compiled.
- Reads go to the database the router chooses for the model, as the ORM's do.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.models import QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)

M = TypeVar("M")  # what a row becomes: a model instance, or a values_list() tuple or value

# Stand-ins for the parameters. Integers: negative, within a 32-bit integer, and no record's
# id. Strings: wrapped in characters of Unicode's private use area, which nobody types.
_MAX = 8
_STAND_INS: dict[type, tuple[Any, ...]] = {
    int: tuple(-2_000_000_011 - 7 * i for i in range(_MAX)),
    str: tuple(f"\ue000glabella-parameter-{i}\ue000" for i in range(_MAX)),
}


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
    slots: tuple[tuple[int, int], ...]  # (position in params, parameter number)
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
        ``int`` or ``str`` (all ``int`` unless given)."""
        self.build = build
        self.kinds = kinds if kinds is not None else (int,) * build.__code__.co_argcount
        if len(self.kinds) > _MAX or any(k not in _STAND_INS for k in self.kinds):
            raise NotPreparable(f"at most {_MAX} parameters, each an int or a str")
        self.stand_ins = tuple(_STAND_INS[k][n] for n, k in enumerate(self.kinds))
        self._key = f"_glabella_prepared_{next(self._counter)}"
        self._model: type[M] | None = None
        Prepared.every.append(self)

    def __call__(self, *args: Any) -> list[M]:
        if len(args) != len(self.kinds):
            raise TypeError(f"this query takes {len(self.kinds)} parameters, not {len(args)}")
        if any(type(a) is not k for a, k in zip(args, self.kinds, strict=True)):
            return list(self.build(*args))  # not what it was prepared for: the ordinary way
        if self._model is None:
            self._model = self.build(*self.stand_ins).model
        using = router.db_for_read(self._model)
        wrapper = connections[using]
        # Kept on the connection object (one per thread and database), as Django keeps its
        # own per-connection state.
        cache: dict[str, _Compiled] = wrapper.__dict__.setdefault("_glabella_prepared", {})
        compiled = cache.get(self._key)
        if compiled is None:
            queryset = self.build(*self.stand_ins)
            compiled = cache[self._key] = _compile(queryset, using, self.stand_ins)
        return _run(compiled, args, using, wrapper)

    def first(self, *args: Any) -> M | None:
        rows = self(*args)
        return rows[0] if rows else None


def _compile(queryset: QuerySet[Any], using: str, stand_ins: tuple[Any, ...]) -> _Compiled:
    if queryset._prefetch_related_lookups:
        raise NotPreparable("prefetch_related is not supported")
    shape = _SHAPES.get(queryset._iterable_class)
    if shape is None:
        raise NotPreparable("only model instances and values_list() are supported")
    if queryset._known_related_objects:
        raise NotPreparable("querysets from a related manager's filter are not supported")
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    number = {(type(s), s): n for n, s in enumerate(stand_ins)}
    slots = []
    for position, value in enumerate(params):
        n = number.get((type(value), value)) if isinstance(value, int | str) else None
        if n is not None:
            slots.append((position, n))
        elif any(str(s) in str(value) for s in stand_ins):
            raise NotPreparable(f"parameter {value!r} was changed on its way into the SQL")
    missing = sorted(set(range(len(stand_ins))) - {n for _, n in slots})
    if missing:
        raise NotPreparable(f"parameters {missing} are not filter values of the query")
    if any(str(s) in sql for s in stand_ins):
        raise NotPreparable("a parameter was written into the SQL's text")
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


def _run(compiled: _Compiled, args: tuple[Any, ...], using: str, wrapper: Any) -> list[Any]:
    params = list(compiled.params)
    for position, n in compiled.slots:
        params[position] = args[n]
    with wrapper.cursor() as cursor:
        cursor.execute(compiled.sql, params)
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
