"""The only writers of patient data. Each function: validate, write, audit, in one transaction."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, overload

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.clinical import catalogue
from glabella.patients import screening
from glabella.patients.models import (
    Channel,
    HistoryItem,
    HistoryKind,
    Patient,
    Sex,
    digits,
    name_key,
)
from glabella.prepared import Prepared, numbered
from glabella.scheduling import recalls

PATIENT_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "weight_kg",
    "phone",
    "email",
    "address",
    "preferred_channel",
    "reminder_consent",
    "home_clinic",
)
CLINICAL_FIELDS = ("clinical_notes",)
EARLIEST_BIRTH = date(1900, 1, 1)
MIN_WEIGHT = Decimal("0.5")
MAX_WEIGHT = Decimal("400")


# --- validation ------------------------------------------------------------------


def parse_units(value: Any, field: str = "units") -> Decimal:
    """A positive, finite, sensible number of units, as Decimal. Raises ValidationError."""
    if isinstance(value, float):
        value = str(value)
    try:
        units = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError({field: f"“{value}” is not a number of units."}) from None
    if not units.is_finite():
        raise ValidationError({field: "Units must be an ordinary number."})
    if units <= 0:
        raise ValidationError({field: "Units must be more than zero."})
    if units != units.quantize(Decimal("0.01")):
        raise ValidationError({field: "Units can have at most two decimal places."})
    return units


def check_plausible_units(units: Decimal, product_id: str, field: str = "units") -> None:
    """Refuse figures no single treatment could have used (a typo, not a dose)."""
    product = catalogue.product(product_id)
    ceiling = Decimal(max(product.vial_units)) * 4
    if units > ceiling:
        raise ValidationError(
            {
                field: f"{units} U of {product.brand} is more than four of its largest vials "
                f"({max(product.vial_units)} U) in one treatment. Check the figure."
            }
        )


def clean_patient(data: Mapping[str, Any], today: date, organization_id: int) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for field in ("given_name", "family_name"):
        value = str(data.get(field) or "").strip()
        if not value:
            errors[field] = "Required."
        clean[field] = value
    dob = data.get("date_of_birth")
    if isinstance(dob, str):
        try:
            dob = date.fromisoformat(dob)
        except ValueError:
            errors["date_of_birth"] = "Enter the date as YYYY-MM-DD."
            dob = None
    if isinstance(dob, datetime):
        dob = dob.date()
    if dob is None and "date_of_birth" not in errors:
        errors["date_of_birth"] = "Required."
    elif isinstance(dob, date):
        if dob > today:
            errors["date_of_birth"] = "The date of birth is in the future."
        elif dob < EARLIEST_BIRTH:
            errors["date_of_birth"] = "The date of birth is before 1900. Check the year."
    clean["date_of_birth"] = dob
    sex = data.get("sex") or Sex.UNKNOWN
    if sex not in Sex.values:
        errors["sex"] = "Choose one of the options."
    clean["sex"] = sex
    weight = data.get("weight_kg")
    if weight in (None, ""):
        clean["weight_kg"] = None
    else:
        try:
            w = Decimal(str(weight))
        except (InvalidOperation, ValueError):
            w = None
        if w is None or not w.is_finite():
            errors["weight_kg"] = "Enter the weight in kilograms, e.g. 62.5."
        elif not MIN_WEIGHT <= w <= MAX_WEIGHT:
            errors["weight_kg"] = f"A weight of {w} kg is not possible. Check the figure."
        else:
            clean["weight_kg"] = w.quantize(Decimal("0.1"))
    clean["phone"] = str(data.get("phone") or "").strip()
    if clean["phone"] and len(digits(clean["phone"])) < 6:
        errors["phone"] = "That phone number is too short."
    clean["email"] = str(data.get("email") or "").strip().lower()
    if clean["email"] and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", clean["email"]):
        errors["email"] = "Enter a valid e-mail address."
    clean["address"] = str(data.get("address") or "").strip()
    channel = data.get("preferred_channel") or Channel.EMAIL
    if channel not in Channel.values:
        errors["preferred_channel"] = "Choose one of the options."
    clean["preferred_channel"] = channel
    clean["reminder_consent"] = bool(data.get("reminder_consent"))
    if clean["reminder_consent"] and channel == Channel.EMAIL and not clean["email"]:
        errors["email"] = "Reminders by e-mail need an e-mail address."
    if clean["reminder_consent"] and channel == Channel.SMS and not clean["phone"]:
        errors["phone"] = "Reminders by text message need a phone number."
    clean["home_clinic"] = data.get("home_clinic")
    if clean["home_clinic"] is not None and clean["home_clinic"].organization_id != organization_id:
        errors["home_clinic"] = "That clinic is not part of your organization."
    if errors:
        raise ValidationError(errors)
    return clean


def _duplicate_error(patient: Patient) -> ValidationError:
    return ValidationError(
        {
            "family_name": f"{patient.full_name}, born {patient.date_of_birth:%d/%m/%Y}, is "
            "already registered. Open the existing record instead of creating a new one."
        }
    )


# --- patients --------------------------------------------------------------------


def create_patient(actor: Actor, data: Mapping[str, Any]) -> Patient:
    actor.require("patient.create")
    clean = clean_patient(data, actor.today(), actor.organization.pk)
    key = name_key(clean["given_name"], clean["family_name"])
    existing = (
        Patient.objects.for_org(actor.organization)
        .filter(name_key=key, date_of_birth=clean["date_of_birth"])
        .first()
    )
    if existing is not None:
        raise _duplicate_error(existing)
    patient = Patient(organization=actor.organization, **clean)
    patient.name_key = key
    patient.phone_digits = digits(patient.phone)
    if patient.reminder_consent:
        patient.reminder_consent_at = timezone.now()
    if patient.weight_kg is not None:
        patient.weight_recorded_on = timezone.localdate()
    if patient.home_clinic is None:
        patient.home_clinic = actor.clinic
    try:
        with transaction.atomic():
            patient.save(force_insert=True)
            record(actor, Action.CREATE, patient, label=str(patient))
    except IntegrityError:
        # Two people registered the same patient at the same moment: one wins.
        existing = (
            Patient.objects.for_org(actor.organization)
            .filter(name_key=key, date_of_birth=clean["date_of_birth"])
            .first()
        )
        if existing is None:
            raise
        raise _duplicate_error(existing) from None
    return patient


def _value(v: Any) -> Any:
    if isinstance(v, Decimal | date):
        return str(v)
    if hasattr(v, "pk"):
        return v.pk
    return v


def update_patient(actor: Actor, patient: Patient, data: Mapping[str, Any]) -> Patient:
    actor.require("patient.edit_contact")
    _check_org(actor, patient)
    clean = clean_patient(data, actor.today(), actor.organization.pk)
    key = name_key(clean["given_name"], clean["family_name"])
    clash = (
        Patient.objects.for_org(actor.organization)
        .filter(name_key=key, date_of_birth=clean["date_of_birth"])
        .exclude(pk=patient.pk)
        .first()
    )
    if clash is not None:
        raise _duplicate_error(clash)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        changes: dict[str, list[Any]] = {}
        for field, new in clean.items():
            old = getattr(locked, field)
            if old != new:
                changes[field] = [_value(old), _value(new)]
                setattr(locked, field, new)
        if not changes:
            return locked
        if "reminder_consent" in changes:
            locked.reminder_consent_at = timezone.now() if locked.reminder_consent else None
        if "weight_kg" in changes:
            locked.weight_recorded_on = timezone.localdate() if locked.weight_kg else None
        locked.name_key = key
        locked.phone_digits = digits(locked.phone)
        locked.save()
        record(actor, Action.UPDATE, locked, label=str(locked), detail={"changes": changes})
    return locked


def update_clinical_notes(actor: Actor, patient: Patient, notes: str) -> Patient:
    actor.require("patient.edit_clinical")
    _check_org(actor, patient)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if locked.clinical_notes == notes:
            return locked
        locked.clinical_notes = notes
        locked.save(update_fields=["clinical_notes", "updated_at"])
        record(
            actor, Action.UPDATE, locked, label=str(locked), detail={"changes": ["clinical_notes"]}
        )
    return locked


def view_patient(actor: Actor, patient: Patient, part: str = "record") -> None:
    """Record that ACTOR looked at PATIENT (every view of patient data is audited)."""
    _check_org(actor, patient)
    record(actor, Action.VIEW, patient, label=str(patient), detail={"part": part})


def view_patient_list(actor: Actor, patients: list[Patient], where: str, query: str = "") -> None:
    """Record that ACTOR was shown a list of patients (search results, the dashboard)."""
    if not patients:
        return
    record(
        actor,
        Action.VIEW,
        object_type="patients.patient",
        label=f"{where}: {len(patients)} patients",
        detail={"part": where, "query": query[:100], "ids": [p.pk for p in patients]},
    )


RESULT_FIELDS = (
    "id",
    "organization_id",
    "family_name",
    "given_name",
    "date_of_birth",
    "phone",
    "email",
)
"""What the search results list shows of each patient (patients/_results.html), and their
organization (every check of a patient reads it): the list reads only these."""


def search_patients(
    actor: Actor, query: str, limit: int = 25, *, fields: Sequence[str] | None = None
) -> SearchResults | QuerySet[Patient]:
    """Find by name, date of birth (DD/MM/YYYY or YYYY-MM-DD), phone digits or e-mail.

    Every word must match: a date the date of birth, a word with "@" part of the e-mail, four
    or more digits part of the phone digits, anything else part of the name key. Results in
    order of family name, given name (then id, so a page is the same every time), at most LIMIT.

    A part of the phone or the name of three characters or more is looked up through the
    trigram index (migrations/0005_search_index.py); other words alone walk the
    organization's search index in order and stop at LIMIT. Either way the ids come first,
    from an index, then the rows of those LIMIT patients, in the same statement
    (:func:`search_sql`): one query. On SQLite the FTS table's candidates and the walk are two
    arms of one statement that each read their rows, the number of candidates choosing which
    one reads any (:func:`_either_sql`). On PostgreSQL phone digits alone are one level: the
    rows are read with the condition, and the planner chooses between the trigram index and
    the walk.

    The patients are read when first needed (:class:`SearchResults`): all of them when
    iterated; counted, then one page, when counted and sliced (the API's paging, whose LIMIT
    is large).

    FIELDS: read only these of each patient (the others are deferred, as ``only()`` leaves
    them: read from the database when first used); every field unless given.
    """
    actor.require("patient.view_contact")
    names = _fields(fields)
    query = query.strip()
    if not query:
        qs = Patient.objects.for_org(actor.organization)
        if fields is not None:
            qs = qs.only(*names)
        return qs.order_by("-updated_at")[:limit]
    return SearchResults(actor.organization.pk, query, limit, names)


class SearchResults(Sequence[Patient]):
    """The patients of a search, in order, read lazily: iterating (or indexing) reads them
    all, in one statement, once; ``len()`` before that counts them in the database, and a
    slice before that reads only its rows (LIMIT/OFFSET on the same statement), as a
    queryset would."""

    def __init__(
        self, organization_id: int, query: str, limit: int, fields: tuple[str, ...] | None = None
    ) -> None:
        self._organization_id = organization_id
        self._query = query
        self._limit = limit
        self._fields = fields or _fields(None)
        self._statement: _Statement | None = None
        self._cache: list[Patient] | None = None

    def _sql(self) -> _Statement:
        if self._statement is None:
            self._statement = _search_statement(self._organization_id, self._query, self._limit)
        return self._statement

    def _all(self) -> list[Patient]:
        if self._cache is None:
            self._cache = self._read(0, self._limit)
        return self._cache

    def _read(self, start: int, stop: int) -> list[Patient]:
        stop = min(stop, self._limit)
        if stop <= start:
            return []
        sql, params = _rows_statement(self._sql(), self._organization_id, self._fields)
        return _patients(sql, [*params, stop - start, start], self._fields)

    def __iter__(self) -> Iterator[Patient]:
        return iter(self._all())

    def __bool__(self) -> bool:  # as a queryset's: reads them
        return bool(self._all())

    def __len__(self) -> int:
        if self._cache is not None:
            return len(self._cache)
        ids, params = self._sql()[:2]
        with connections["default"].cursor() as cursor:
            _execute(cursor, f"SELECT COUNT(*) FROM ({ids}) found", params)  # noqa: S608
            (count,) = cursor.fetchone()
            return int(count)

    @overload
    def __getitem__(self, index: int) -> Patient: ...

    @overload
    def __getitem__(self, index: slice) -> list[Patient]: ...

    def __getitem__(self, index: int | slice) -> Patient | list[Patient]:
        if isinstance(index, int) or self._cache is not None:
            return self._all()[index]
        start, stop, step = index.start or 0, index.stop, index.step
        if step is not None or start < 0 or (stop is not None and stop < 0):
            return self._all()[index]
        return self._read(start, self._limit if stop is None else stop)


def search_sql(
    organization_id: int, query: str, limit: int, using: str = "default"
) -> tuple[str, list[Any]]:
    """The statement that reads the first LIMIT patients of ORGANIZATION_ID matching QUERY
    (not empty), in order, every column, and its parameters."""
    statement = _search_statement(organization_id, query, limit, using)
    sql, params = _rows_statement(statement, organization_id, _fields(None))
    return sql, [*params, limit, 0]


class _Statement(NamedTuple):
    """A search's first matches: IDS, the statement of their ids in order (with PARAMS);
    DIRECT, when the rows are best read by the same condition in one level (the condition
    on patients_patient, the organization's included, and its parameters); EITHER, on
    SQLite, when the FTS table's candidates or the walk give the rows in one statement
    (:func:`_either_sql`)."""

    ids: str
    params: list[Any]
    direct: tuple[str, list[Any]] | None
    either: _Either | None = None


def _rows_statement(
    statement: _Statement, organization_id: int, fields: tuple[str, ...]
) -> tuple[str, list[Any]]:
    """The statement reading the rows (FIELDS) of STATEMENT's matches, in order, and its
    parameters but the last two (the LIMIT and the OFFSET)."""
    if statement.either is not None:
        # Each arm reads its rows, in order, at most the search's limit; only one gives any.
        sql, params = _either_sql(statement.either, _columns(fields))
        return (
            f"SELECT * FROM ({sql}) AS {_TABLE} ORDER BY {_ORDER} LIMIT %s OFFSET %s",  # noqa: S608
            params,
        )
    if statement.direct is not None:
        where, params = statement.direct
        return (
            f"SELECT {_columns(fields)} FROM {_TABLE} WHERE {where} "  # noqa: S608
            f"ORDER BY {_ORDER} LIMIT %s OFFSET %s",
            params,
        )
    # The ids of the first matches, in order, come from an index, reading no rows; this
    # reads those few rows. The organization is required again, as an expression
    # (organization_id + 0) no index serves: the planner fetches those ids by key instead of
    # walking the organization's index once more.
    return (
        f"SELECT {_columns(fields)} FROM {_TABLE} "  # noqa: S608
        f'WHERE {_TABLE}."id" IN ({statement.ids}) '
        f'AND ({_TABLE}."organization_id" + 0) = %s ORDER BY {_ORDER} LIMIT %s OFFSET %s',
        [*statement.params, organization_id],
    )


def _patients(
    sql: str, params: list[Any], fields: tuple[str, ...], using: str = "default"
) -> list[Patient]:
    """The patients of SQL (the columns of FIELDS, in the model's order), as the ORM loads
    them: each value through the database's and the field's converters, then ``from_db``
    (which defers the fields not read)."""
    wrapper = connections[using]
    with wrapper.cursor() as cursor:
        _execute(cursor, sql, params)
        rows = cursor.fetchall()
    if not rows:
        return []
    converters = _converters(wrapper, fields)
    if converters:
        rows = [list(row) for row in rows]
        for row in rows:
            for i, functions, column in converters:
                value = row[i]
                for convert in functions:
                    value = convert(value, column, wrapper)
                row[i] = value
    if _plain_init():
        # What from_db makes of a row, without Model.__init__'s general path (about 7 µs a
        # patient, as much as a rare phone's whole look-up when ten patients share its
        # digits): the values read, the rest deferred (a field not in __dict__ is read when
        # first used, as only() leaves it), the instance loaded from USING.
        made = []
        for row in rows:
            patient = _new(Patient)
            patient._state = state = ModelState()
            state.adding, state.db = False, using
            patient.__dict__.update(zip(fields, row, strict=True))
            made.append(patient)
        return made
    return [Patient.from_db(using, fields, row) for row in rows]


_new = object.__new__


def _plain_init() -> bool:
    """Whether a patient read is only its values: Patient keeps Model.from_db and nothing
    listens for its pre_init or post_init signals (checked on every read, since a receiver
    can be connected at any time; otherwise the instances are made by from_db)."""
    return (
        Patient.from_db.__func__ is Model.from_db.__func__  # type: ignore[attr-defined]
        and not pre_init.has_listeners(Patient)
        and not post_init.has_listeners(Patient)
    )


def _execute(cursor: Any, sql: str, params: list[Any]) -> None:
    """CURSOR.execute(SQL, PARAMS), SQL's %s placeholders numbered on SQLite: Django turns a
    statement's %s into SQLite's ? with a regular expression, 25 µs for a search's statement
    (1,500 characters), and named ones with one % formatting, a tenth of that."""
    if cursor.db.vendor == "sqlite":
        cursor.execute(_numbered(sql), {f"p{i}": value for i, value in enumerate(params)})
    else:
        cursor.execute(sql, params)


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    """SQL with its %s placeholders as %(p0)s, %(p1)s, ... (a %% stays one)."""
    return numbered(sql, "%(p{})s", 0, "%%")


def _converters(wrapper: Any, fields: tuple[str, ...]) -> list[tuple[int, list[Any], Any]]:
    """(column, converters, expression) of every column of FIELDS that has converters on the
    database behind WRAPPER (as SQLCompiler.get_converters finds them). Kept per connection."""
    kept: dict[tuple[str, ...], Any] = wrapper.__dict__.setdefault(
        "_glabella_patient_converters", {}
    )
    known = kept.get(fields)
    if known is None:
        known = []
        by_name = {f.attname: f for f in Patient._meta.concrete_fields}
        for i, name in enumerate(fields):
            column = by_name[name].get_col(Patient._meta.db_table)
            functions = wrapper.ops.get_db_converters(column) + column.get_db_converters(wrapper)
            if functions:
                known.append((i, functions, column))
        kept[fields] = known
    return known  # type: ignore[no-any-return]


@functools.cache
def _all_fields() -> tuple[str, ...]:
    return tuple(f.attname for f in Patient._meta.concrete_fields)


def _fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    """FIELDS (attribute names, "id" for the key) in the model's order, the key and the
    organization always among them; every field when None."""
    if fields is None:
        return _all_fields()
    wanted = {"id", "organization_id", *fields}
    unknown = wanted - set(_all_fields())
    if unknown:
        raise ValueError(f"not fields of a patient: {sorted(unknown)}")
    return tuple(name for name in _all_fields() if name in wanted)


_TABLE = '"patients_patient"'


def _search_statement(
    organization_id: int, query: str, limit: int, using: str = "default"
) -> _Statement:
    """The ids of the first LIMIT patients of ORGANIZATION_ID matching QUERY (not empty), in
    order, as a subquery, and its parameters. Written by hand with the
    database's own lookups (``contains``/``icontains`` as the ORM writes them: the same
    casts, operators and escaping), so that a search costs one statement and no query
    building; test_search_index compares it with the ORM's plain LIKE scan."""
    connection = connections[using]
    where: list[str] = []
    params: list[Any] = []
    parts: list[tuple[str, str]] = []  # (column, substring) a trigram index can look up

    def like(column: str, lookup: str, text: str) -> None:
        # What the ORM writes for COLUMN__LOOKUP=TEXT (django.db.models.lookups.Contains).
        lhs = connection.ops.lookup_cast(lookup, "CharField") % f'{_TABLE}."{column}"'
        escaped = connection.ops.prep_for_like_query(text)
        if connection.vendor == "sqlite":
            # The pattern as an expression, as the ORM writes one it does not know yet
            # ('%' || %s || '%'). A pattern that is a bare parameter makes SQLite prepare the
            # whole statement again each time a value is bound to it (the plan could use an
            # index for a pattern's prefix): about 40 µs, as much as a rare phone's look-up.
            where.append(f"{lhs} {connection.pattern_ops[lookup].format('%s')}")
            params.append(escaped)
        else:
            where.append(f"{lhs} {connection.operators[lookup] % '%s'}")
            params.append(f"%{escaped}%")

    for token in query.split():
        dob = _parse_day(token)
        if dob is not None:
            where.append(f'{_TABLE}."date_of_birth" = %s')
            params.append(connection.ops.adapt_datefield_value(dob))
        elif "@" in token:
            like("email", "icontains", token.lower())
        elif len(digits(token)) >= 4 and len(digits(token)) == len(token.replace("+", "")):
            like("phone_digits", "contains", digits(token))
            parts.append(("phone_digits", digits(token)))
        else:
            key = name_key(token, "")
            like("name_key", "contains", key)
            parts.append(("name_key", key))
    condition = " AND ".join(where)
    plain = (
        f'SELECT {_TABLE}."id" FROM {_TABLE} '  # noqa: S608
        f'WHERE {_TABLE}."organization_id" = %s AND {condition} '
        f"ORDER BY {_ORDER} LIMIT %s",
        [organization_id, *params, limit],
    )
    if (
        parts
        and connections[using].vendor == "postgresql"
        and all(column == "phone_digits" for column, _ in parts)
    ):
        # Phone digits, no name: PostgreSQL's planner picks well between the trigram index
        # (a rare number, few rows to sort) and the walk of the organization in name order
        # (common digits, which sit anywhere in the alphabet, so the walk soon finds LIMIT),
        # in one level, the rows read with the condition.
        where = f'{_TABLE}."organization_id" = %s AND {condition}'
        return _Statement(*plain, direct=(where, [organization_id, *params]))
    match = _fts_match(parts) if connection.vendor == "sqlite" else ""
    if match and _has_fts_index(using):
        most = _fts_most(using, organization_id)
        either = _Either(match, organization_id, condition, params, limit, most)
        return _Statement(*_either_sql(either, f'{_TABLE}."id"'), direct=None, either=either)
    ids = _indexed_rows(using, organization_id, condition, params, parts, limit)
    if ids is None:
        # No word long enough for the substring index: walk the organization's search index
        # (patient_org_family_given: in order, with every searched column) and stop at LIMIT.
        ids = plain
    return _Statement(*ids, direct=None)


_ORDER = f'{_TABLE}."family_name", {_TABLE}."given_name", {_TABLE}."id"'


@functools.cache
def _columns(fields: tuple[str, ...]) -> str:
    """The columns of FIELDS, for the raw query that builds the instances."""
    by_name = {f.attname: f for f in Patient._meta.concrete_fields}
    return ", ".join(f'{_TABLE}."{by_name[name].column}"' for name in fields)


def _indexed_rows(
    using: str,
    organization_id: int,
    condition: str,
    params: list[Any],
    parts: list[tuple[str, str]],
    limit: int,
) -> tuple[str, list[Any]] | None:
    """The ids of the first LIMIT patients of ORGANIZATION_ID that meet CONDITION (SQL on
    patients_patient, with PARAMS), in order, found through PostgreSQL's trigram index, as a
    subquery (SQL and parameters); None when no part is long enough for trigrams, or the
    database is not PostgreSQL (SQLite's FTS table: :func:`_either_sql`).

    The organization's matches are MATERIALIZED (a fence the planner does not cross),
    collected with the trigram GIN index or the organization's index, whichever reads fewer
    rows, and the first LIMIT kept. Left to itself, for a word it thinks common the planner
    walks the organization in order, reading every entry before the first match; when the
    matches sit late in the alphabet that is most of the organization, and unless the table
    was freshly vacuumed each entry also reads its row (1,000,000 patients, a tenth of them
    updated since: "walsh" 1.6 s walking, 0.16 s this way; freshly vacuumed the walk is
    0.2 s). This way the time follows the word's matches whatever the table's state
    (docs/operators.md).
    """
    if not any(len(text) >= TRIGRAM_SHORTEST for _, text in parts):
        return None
    vendor = connections[using].vendor
    if vendor == "postgresql":
        return (
            "WITH c (id, family_name, given_name) AS MATERIALIZED ("  # noqa: S608
            f'SELECT {_TABLE}."id", {_TABLE}."family_name", {_TABLE}."given_name" '
            f'FROM {_TABLE} WHERE {_TABLE}."organization_id" = %s AND {condition}) '
            "SELECT c.id FROM c ORDER BY c.family_name, c.given_name, c.id LIMIT %s",
            [organization_id, *params, limit],
        )
    return None


# SQLite's substring index: an FTS5 table with the trigram tokenizer over phone_digits and
# name_key, its rowid the patient's id, kept in step by triggers (migration 0005).
FTS_TABLE = "patients_patient_fts"
FTS_TRIGGERS = (f"{FTS_TABLE}_insert", f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update")
TRIGRAM_SHORTEST = 3  # a trigram index finds nothing shorter: those stay LIKE only
FTS_MOST = 2000
"""SQLite: at this many FTS candidates (of every organization) or more, search walks the
organization's search index instead (fewer in a small organization: :func:`_fts_most`).
Fetching a candidate's row costs about 2 µs, reading an entry of the walk about 0.1 µs, and
the walk stops at the limit."""
WALK_SHARE = 20
"""SQLite: an organization of N patients walks at N / WALK_SHARE candidates, if that is fewer
than FTS_MOST: that many candidates' rows cost about what the walk of every patient of the
organization costs at worst, and counting them costs less the fewer they are."""
SIZE_SECONDS = 600.0  # how long a process keeps an organization's number of patients
_sizes: dict[tuple[str, str, int], tuple[float, int]] = {}


def _fts_most(using: str, organization_id: int) -> int:
    """SQLite: from how many FTS candidates a search of ORGANIZATION_ID walks its search
    index. Its number of patients is counted once per SIZE_SECONDS per process: only the
    search's speed depends on it, never what it finds."""
    key = (using, str(connections[using].settings_dict["NAME"]), organization_id)
    now = time.monotonic()
    kept = _sizes.get(key)
    if kept is None or now - kept[0] > SIZE_SECONDS:
        with connections[using].cursor() as cursor:
            cursor.execute(
                f'SELECT COUNT(*) FROM {_TABLE} WHERE "organization_id" = %s',  # noqa: S608
                [organization_id],
            )
            kept = _sizes[key] = (now, int(cursor.fetchone()[0]))
    return max(1, min(FTS_MOST, kept[1] // WALK_SHARE))


class _Either(NamedTuple):
    """A search on SQLite with the FTS index: MATCH, the FTS5 query of its long-enough parts;
    the patients of ORGANIZATION_ID meeting CONDITION (SQL on patients_patient, with
    PARAMS); the first LIMIT of them."""

    match: str
    organization_id: int
    condition: str
    params: list[Any]
    limit: int
    most: int  # from this many candidates, the walk (_fts_most)


def _either_sql(either: _Either, columns: str) -> tuple[str, list[Any]]:
    """SQLite: COLUMNS of the first LIMIT matches, in order, in one statement of two arms, of
    which the FTS table's count of candidates lets one read rows (a LIMIT of 0 stops the
    other before it reads any), and its parameters.

    The candidates: the FTS table's rows for MATCH (each part a phrase of trigrams: all the
    rows holding it, of every organization, and a few more that fold the same), at most
    MOST, MATERIALIZED once. Fewer than MOST: the first arm reads their rows by id
    (CROSS JOIN: the candidates first), the LIKE deciding; the organization is required as
    an expression (organization_id + 0) no index serves, since with it SQLite (which has no
    statistics unless someone runs ANALYZE) would walk the organization's index in order
    testing every id instead. MOST or more (a common word): the second arm walks the
    organization's search index (in order, with every searched column, so a row is read
    only when it matches) and stops at LIMIT; at worst it reads every entry of the
    organization. Either way one statement, so the search costs one round trip and the
    guard cannot go stale between two."""
    few = "(SELECT COUNT(*) FROM candidates) < %s"
    sql = (
        "WITH candidates (id) AS MATERIALIZED ("  # noqa: S608
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s LIMIT %s) "
        f"SELECT * FROM (SELECT {columns} FROM candidates CROSS JOIN {_TABLE} "
        f'ON {_TABLE}."id" = candidates.id '
        f'WHERE ({_TABLE}."organization_id" + 0) = %s AND {either.condition} '
        f"ORDER BY {_ORDER} LIMIT CASE WHEN {few} THEN %s ELSE 0 END) "
        f"UNION ALL SELECT * FROM (SELECT {columns} FROM {_TABLE} "
        f'WHERE {_TABLE}."organization_id" = %s AND {either.condition} '
        f"ORDER BY {_ORDER} LIMIT CASE WHEN {few} THEN 0 ELSE %s END)"
    )
    # Each arm's: the organization, the condition's, the guard's MOST and the LIMIT.
    arm = [either.organization_id, *either.params, either.most, either.limit]
    return sql, [either.match, either.most, *arm, *arm]


def _fts_match(parts: list[tuple[str, str]]) -> str:
    """An FTS5 query for every PART long enough: each a quoted phrase in its column, all
    required. A phrase of trigrams matches where the substring occurs (case folded): never
    fewer rows than the LIKE, which then decides."""
    phrases = [
        f'{column} : "{text.replace(chr(34), chr(34) * 2)}"'
        for column, text in parts
        if len(text) >= TRIGRAM_SHORTEST and "\x00" not in text
    ]
    return " AND ".join(phrases)


def _has_fts_index(alias: str) -> bool:
    """Whether the database behind ALIAS is SQLite with the FTS index and all its triggers
    (without them it would be stale: then search scans). Asked once per connection."""
    wrapper = connections[alias]
    if wrapper.vendor != "sqlite":
        return False
    wrapper.ensure_connection()
    known = getattr(wrapper, "_glabella_patient_fts", None)
    if known is not None and known[0] is wrapper.connection:
        return bool(known[1])
    with wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN (%s, %s, %s, %s)",
            [FTS_TABLE, *FTS_TRIGGERS],
        )
        present = cursor.fetchone()[0] == 1 + len(FTS_TRIGGERS)
    wrapper._glabella_patient_fts = (wrapper.connection, present)  # type: ignore[attr-defined]
    return present


_DAY_SHAPE = re.compile(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}")
"""Every date _parse_day reads has this shape: a word without it is not tried (four failed
strptime calls cost about 9 µs, a quarter of a search's own work)."""


def _parse_day(token: str) -> date | None:
    if not _DAY_SHAPE.fullmatch(token):
        return None
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(token, fmt).date()
        except ValueError:
            continue
    return None


def _check_org(actor: Actor, obj: Any) -> None:
    if obj.organization_id != actor.organization.pk:
        # Never reached through the pages (they look up within the organization),
        # but a service must not trust its caller.
        raise PermissionError("That record belongs to another organization.")


# --- history and screening -------------------------------------------------------


def active_history(patient: Patient) -> QuerySet[HistoryItem]:
    return patient.history.filter(resolved_on__isnull=True, entered_in_error=False)


_HISTORY = Prepared(
    lambda org, patient: (
        HistoryItem.objects.filter(organization_id=org, patient_id=patient)
        .select_related("recorded_by")
        .order_by("-recorded_at")
    )
)


def history_items(patient: Patient) -> list[HistoryItem]:
    """PATIENT's whole history (active, resolved, entered in error), newest first, with who
    recorded each item."""
    items = _HISTORY(patient.organization_id, patient.pk)
    for item in items:
        item.patient = patient
    return items


def patient_flags(patient: Patient, items: Iterable[HistoryItem] | None = None) -> frozenset[str]:
    """The safety flags of PATIENT's active history. ITEMS: their whole history, when the
    caller has read it already (the active items are picked out the way active_history does)."""
    if items is not None:
        return screening.flags_for((i.kind, i.code) for i in items if i.is_active)
    return screening.flags_for(active_history(patient).values_list("kind", "code"))


def add_history_item(actor: Actor, patient: Patient, data: Mapping[str, Any]) -> HistoryItem:
    actor.require("patient.edit_clinical")
    _check_org(actor, patient)
    kind = str(data.get("kind") or "")
    code = str(data.get("code") or "")
    errors: dict[str, str] = {}
    if kind not in HistoryKind.values:
        raise ValidationError({"kind": "Choose what kind of history this is."})
    if (kind, code) not in screening.BY_KEY:
        raise ValidationError({"code": "Choose one of the listed options."})
    detail = str(data.get("detail") or "").strip()
    if code in ("other", "other-neuromuscular", "other-nm-drug") and not detail:
        errors["detail"] = "Say what it is."
    item = HistoryItem(
        organization=actor.organization,
        patient=patient,
        kind=kind,
        code=code,
        detail=detail[:500],
        recorded_by=actor.user,
    )
    if kind == HistoryKind.OUTSIDE_TREATMENT:
        product_id = str(data.get("product_id") or "")
        try:
            catalogue.product(product_id)
        except KeyError:
            errors["product_id"] = "Choose the product that was used."
            product_id = ""
        treated_on = data.get("treated_on")
        if isinstance(treated_on, str):
            try:
                treated_on = date.fromisoformat(treated_on)
            except ValueError:
                treated_on = None
        if not isinstance(treated_on, date):
            errors["treated_on"] = "Enter the date of the treatment."
        elif treated_on > actor.today():
            errors["treated_on"] = "That date is in the future."
        elif treated_on < patient.date_of_birth:
            errors["treated_on"] = "That date is before the patient was born."
        units: Decimal | None = None
        try:
            units = parse_units(data.get("units"))
            if product_id:
                check_plausible_units(units, product_id)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
        area = str(data.get("area") or "").strip()
        if not area:
            errors["area"] = "Say where it was injected."
        item.treated_on = treated_on if isinstance(treated_on, date) else None
        item.product_id = product_id
        item.units = units
        item.area = area[:100]
        item.indication = str(data.get("indication") or "other")[:40]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        item.save(force_insert=True)
        record(
            actor,
            Action.CREATE,
            item,
            label=f"{patient}: {screening.BY_KEY[(kind, code)].label}",
            detail={"patient": patient.pk, "kind": kind, "code": code},
        )
        recalls.history_changed(item)
    return item


def close_history_item(
    actor: Actor, item: HistoryItem, *, reason: str, entered_in_error: bool
) -> HistoryItem:
    """Resolve an item (it no longer applies) or mark it entered in error. Never deleted."""
    actor.require("patient.edit_clinical")
    _check_org(actor, item)
    reason = reason.strip()
    if entered_in_error and not reason:
        raise ValidationError({"reason": "Say why this entry was wrong."})
    with transaction.atomic():
        locked = HistoryItem.objects.select_for_update().get(pk=item.pk)
        if not locked.is_active:
            return locked
        if entered_in_error:
            locked.entered_in_error = True
            locked.error_reason = reason[:300]
        else:
            locked.resolved_on = actor.today()
        locked.save()
        record(
            actor,
            Action.UPDATE,
            locked,
            label=f"{locked.patient}: {locked.code}",
            detail={
                "patient": locked.patient_id,
                "change": "entered_in_error" if entered_in_error else "resolved",
                "reason": reason[:300],
            },
        )
        recalls.history_changed(locked)
    return locked


def record_screening(
    actor: Actor,
    patient: Patient,
    answers: Mapping[str, bool],
    details: Mapping[str, str] | None = None,
) -> list[str]:
    """Apply a screening questionnaire: a yes adds the item if absent, a no resolves it.

    ANSWERS maps "kind:code" of every SCREENING_QUESTIONS entry to True/False; every
    question must be answered. Returns the list of changes made, for the message.
    """
    actor.require("patient.edit_clinical")
    _check_org(actor, patient)
    details = details or {}
    keys = [f"{q.kind}:{q.code}" for q in screening.SCREENING_QUESTIONS]
    missing = [k for k in keys if k not in answers]
    if missing:
        raise ValidationError(dict.fromkeys(missing, "Answer yes or no."))
    changes: list[str] = []
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        active = {(i.kind, i.code): i for i in active_history(locked)}
        for q in screening.SCREENING_QUESTIONS:
            key = f"{q.kind}:{q.code}"
            yes = bool(answers[key])
            current = active.get((q.kind, q.code))
            if yes and current is None:
                HistoryItem.objects.create(
                    organization=actor.organization,
                    patient=locked,
                    kind=q.kind,
                    code=q.code,
                    detail=str(details.get(key, "")).strip()[:500],
                    recorded_by=actor.user,
                )
                changes.append(f"added: {q.label}")
            elif yes and current is not None and details.get(key):
                if current.detail != details[key].strip()[:500]:
                    current.detail = details[key].strip()[:500]
                    current.save(update_fields=["detail"])
                    changes.append(f"updated: {q.label}")
            elif not yes and current is not None:
                current.resolved_on = actor.today()
                current.save(update_fields=["resolved_on"])
                changes.append(f"no longer: {q.label}")
        locked.screened_at = timezone.now()
        locked.screened_by = actor.user
        locked.save(update_fields=["screened_at", "screened_by", "updated_at"])
        record(
            actor,
            Action.UPDATE,
            locked,
            label=str(locked),
            detail={"screening": changes or ["no change"]},
        )
    return changes
