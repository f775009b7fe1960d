"""Every organization-scoped table as CSV: all columns, every row, nothing the clinic entered
left out.

Which tables: every model of a Glabella app with an ``organization`` foreign key, the
organization itself and the users who are (or were) its members, found by walking
``django.apps`` — so a model added later is exported without anyone remembering to add it
(a test fails if a Glabella model is neither exported nor named in :data:`NOT_ORGANIZATION_DATA`).

What is left out, on purpose, and said so in the manifest (:func:`excluded_columns`): password
hashes and the hashes of secret tokens and links (they are credentials, and useless to anyone
else), and raw bytes (a drawn signature): those are written as files next to the table,
``tables/<app>.<model>/<pk>.<column>.bin``, and the cell holds that file's path.

The CSV dialect (RFC 4180, UTF-8, CRLF, a header row of column names as in the database):
every value is quoted except NULL, which is an empty unquoted cell — so ``,"",`` is an empty
text and ``,,`` is NULL (PostgreSQL's ``COPY ... CSV`` reads it the same way). Booleans are
``true``/``false``, dates and times ISO 8601 (date-times in UTC with their offset), decimals
exactly as stored, JSON columns as compact JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from glabella.interop.export.files import HashingWriter, Written, private_file, write_bytes

FOLDER = "tables/"

# Columns never written, by name, in every table: credentials (hashes of passwords and of
# secret tokens/links). Why, for the manifest.
SECRET_COLUMNS: dict[str, str] = {
    "password": "a password hash: a credential, never exported",
    "token_hash": "the hash of a secret token or link: a credential, never exported",
}

# Glabella models that hold no organization's data (they are shared by all organizations).
NOT_ORGANIZATION_DATA: dict[str, str] = {
    "audit.chainhead": "the head of the audit hash chain, shared by every organization",
    "accounts.totpdevice": "authenticator app secrets: credentials, never exported",
    "accounts.recoverycode": "hashes of one-time recovery codes: credentials, never exported",
    "accounts.loginthrottle": "failed sign-in counters per e-mail and address (not any one "
    "organization's)",
}


@dataclass(frozen=True)
class Table:
    model: type[models.Model]
    label: str  # "app.model", lower case
    scope: Callable[[models.Model], models.QuerySet[Any]]

    @property
    def path(self) -> str:
        return f"{FOLDER}{self.label}.csv"


def _is_glabella(model: type[models.Model]) -> bool:
    return model.__module__.startswith("glabella.")


def _org_fk(model: type[models.Model]) -> bool:
    from glabella.accounts.models import Organization

    try:
        field = model._meta.get_field("organization")
    except FieldDoesNotExist:
        return False
    return bool(field.many_to_one or field.one_to_one) and field.related_model is Organization


def tables() -> list[Table]:
    """Every table of an organization's export, in a stable order (app order, then model)."""
    from glabella.accounts.models import Organization, User

    found = [
        Table(
            Organization, "accounts.organization", lambda org: _base(Organization).filter(pk=org.pk)
        ),
        Table(
            User,
            "accounts.user",
            lambda org: _base(User).filter(memberships__organization=org).distinct(),
        ),
    ]
    for model in apps.get_models():
        if not _is_glabella(model) or not _org_fk(model):
            continue
        found.append(
            Table(
                model,
                model._meta.label_lower,
                lambda org, model=model: _base(model).filter(organization=org),
            )
        )
    return found


def unexported_models() -> list[str]:
    """Glabella models neither exported nor named as holding no organization's data: should
    always be empty (a test says so)."""
    done = {t.label for t in tables()} | set(NOT_ORGANIZATION_DATA)
    return sorted(
        m._meta.label_lower
        for m in apps.get_models()
        if _is_glabella(m) and m._meta.label_lower not in done
    )


def _base(model: type[models.Model]) -> models.QuerySet[Any]:
    # The base manager: every row, whatever a default manager might hide.
    return model._base_manager.all()


def columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The columns written for MODEL: every concrete field but the secret ones."""
    return [f for f in model._meta.concrete_fields if f.name not in SECRET_COLUMNS]


def unexported_many_to_many() -> list[str]:
    """Many-to-many fields of exported tables, which the CSV would miss: should always be empty
    (a test says so; none exists today). ``User.groups``/``user_permissions`` are Django's
    plumbing, unused: Glabella's roles are memberships."""
    from glabella.accounts.models import User

    return sorted(
        f"{t.label}.{f.name}"
        for t in tables()
        for f in t.model._meta.many_to_many
        if t.model is not User
    )


def excluded_columns() -> dict[str, dict[str, str]]:
    """{table: {column: why}} for every column deliberately not written as a CSV value."""
    out: dict[str, dict[str, str]] = {}
    for table in tables():
        for f in table.model._meta.concrete_fields:
            if f.name in SECRET_COLUMNS:
                out.setdefault(table.label, {})[f.attname] = SECRET_COLUMNS[f.name]
            elif isinstance(f, models.BinaryField):
                out.setdefault(table.label, {})[f.attname] = (
                    f"raw bytes: written as files {FOLDER}{table.label}/<id>.{f.attname}.bin; "
                    "the cell holds the file's path"
                )
    return out


def cell(value: Any) -> str | None:
    """The text of one value; None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | int | str | uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | float):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    raise TypeError(f"no CSV form for {type(value).__name__}")


def csv_line(cells: list[str | None]) -> str:
    return ",".join("" if c is None else '"' + c.replace('"', '""') + '"' for c in cells) + "\r\n"


def _rows(table: Table, organization: Any, chunk_size: int) -> Iterator[tuple[Any, ...]]:
    fields = columns(table.model)
    yield from (
        table.scope(organization)
        .order_by("pk")
        .values_list(*[f.attname for f in fields])
        .iterator(chunk_size=chunk_size)
    )


# cell() by the exact type of the value, for the loop over every value of a table (a subclass,
# or a type not here, goes through cell() itself): the same text, without its isinstance chain.
_TEXT: dict[type, Callable[[Any], str]] = {
    str: str,
    int: str,
    Decimal: str,
    uuid.UUID: str,
    bool: lambda value: "true" if value else "false",
    datetime: datetime.isoformat,
    date: date.isoformat,
    time: time.isoformat,
}


def write_table(
    table: Table,
    organization: Any,
    root: Path,
    *,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = 1000,
    every: int = 500,
) -> list[Written]:
    """Write TABLE's rows of ORGANIZATION; returns the CSV file and any binary files.

    Each row is :func:`csv_line` of :func:`cell` of each value (written inline: this loop runs
    once per value of the table), EVERY rows at a time."""
    fields = columns(table.model)
    binary = [i for i, f in enumerate(fields) if isinstance(f, models.BinaryField)]
    pk_index = next(i for i, f in enumerate(fields) if f.primary_key)
    header = [f.attname for f in fields]
    extra: list[Written] = []
    path = root / table.path
    count = 0
    text_of = _TEXT.get
    with private_file(path) as raw:
        out = HashingWriter(raw)
        out.write(csv_line(header).encode("utf-8"))
        lines: list[str] = []
        for row in _rows(table, organization, chunk_size):
            values: list[Any] | tuple[Any, ...] = row
            if binary:
                # Raw bytes go to a file of their own; the cell holds its path.
                values = list(row)
                for i in binary:
                    if row[i] is not None:
                        name = f"{FOLDER}{table.label}/{row[pk_index]}.{fields[i].attname}.bin"
                        extra.append(write_bytes(root, name, bytes(row[i])))
                        values[i] = name
            line = []
            for value in values:
                if value is None:
                    line.append("")
                else:
                    to_text = text_of(type(value))
                    text = to_text(value) if to_text is not None else (cell(value) or "")
                    line.append('"' + text.replace('"', '""') + '"')
            lines.append(",".join(line))
            count += 1
            if len(lines) >= every:
                out.write(("\r\n".join(lines) + "\r\n").encode("utf-8"))
                if progress is not None:
                    progress(len(lines))
                lines.clear()
        if lines:
            out.write(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    if progress is not None and lines:
        progress(len(lines))
    return [Written(table.path, out.bytes, out.sha256, count), *extra]


def count_rows(organization: Any) -> int:
    return sum(t.scope(organization).count() for t in tables())
