"""Backup and restore of a whole Glabella installation: the database and the clinic's files.

A backup is one gzip-compressed tar file::

    database/glabella.sqlite3   SQLite: a copy made with SQLite's online backup API
    database/glabella.pgdump    PostgreSQL: ``pg_dump --format=custom``
    files/photos/...            the local photo storage (GLABELLA_PHOTO_ROOT)
    files/media/...             uploaded files under MEDIA_ROOT (scanned paper consents)
    manifest.json               what the archive holds (below)
    manifest.json.sha256        the manifest's own SHA-256

The manifest records the engine, the database's name, when the backup was made, the Glabella
version, the last applied migration of every app, every table's row count and content digest,
and the SHA-256 and size of every member. Every byte of the archive is covered by a check: the
gzip CRC over the whole tar stream, the tar headers' own checksums, each member's SHA-256 in the
manifest, and the manifest's SHA-256 in the last member.

A table's digest is a SHA-256 over its column names and then its rows, ordered by primary key,
each value written in one canonical text form whatever the engine or driver returned (booleans
as 1/0, times in UTC with microseconds, decimals without trailing zeros, JSON with sorted keys,
bytes in hex). It is computed in a streaming way (server-side cursors on PostgreSQL), from the
very snapshot that is archived, so a backup taken while the clinic works is still consistent
with its own manifest; after a restore the same digests are recomputed from the restored
database and must be equal.

Nothing here goes through the services: a backup copies the database as it is, a restore puts
a copy back as it was. Both leave one system audit event in the installation's own database
(never in a database named with ``--database-url``).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import IO, Any

import dj_database_url
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.utils import ConnectionHandler, load_backend

import glabella

FORMAT = "glabella-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"
DATABASE_DIR = "database"
FILES_DIR = "files"
AREAS = ("photos", "media")
NAME_PREFIX = "glabella-backup-"
NAME_SUFFIX = ".tar.gz"
NAME_STAMP = "%Y%m%dT%H%M%SZ"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
CHUNK = 1024 * 1024
FETCH = 2000
MAX_MANIFEST_BYTES = 256 * 1024 * 1024

# Rows that `glabella migrate` itself writes into a new database: a database holding only
# these is empty as far as a restore is concerned.
BOOKKEEPING_TABLES = frozenset(
    {
        "django_migrations",
        "django_content_type",
        "auth_permission",
        "audit_chainhead",
        # SQLite's patient search index (patients/0005): derived from patients_patient; FTS5
        # writes a few rows of its own even when empty.
        "patients_patient_fts",
        "patients_patient_fts_config",
        "patients_patient_fts_data",
        "patients_patient_fts_docsize",
        "patients_patient_fts_idx",
    }
)
# The tables named first when a restore says what a database holds.
HEADLINE_MODELS = (
    ("accounts", "Organization"),
    ("accounts", "User"),
    ("patients", "Patient"),
    ("charting", "TreatmentSession"),
    ("inventory", "Lot"),
    ("photos", "Photo"),
    ("audit", "AuditEvent"),
)
_TEXT_KINDS = frozenset(
    {"CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField"}
)
_BOOL_KINDS = frozenset({"BooleanField", "NullBooleanField"})

Progress = Callable[[str, int, int], None]


def no_progress(label: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""


class BackupError(Exception):
    """Something the operator has to act on; the message says what and how."""


class RestoreMismatch(BackupError):
    """The restored data differs from what the backup recorded."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


# --- the database ------------------------------------------------------------------------


@dataclass
class Database:
    """A database to back up or to restore into: a Django DATABASES entry."""

    settings: dict[str, Any]
    configured: bool = True  # the installation's own database (not one named by URL)

    @property
    def engine(self) -> str:
        name = str(self.settings.get("ENGINE", ""))
        if name.endswith("sqlite3"):
            return SQLITE
        if name.endswith(("postgresql", "postgis")):
            return POSTGRESQL
        raise BackupError(
            f"Backups support SQLite and PostgreSQL; this database uses {name or 'no engine'}."
        )

    @property
    def name(self) -> str:
        return str(self.settings.get("NAME") or "")

    @property
    def label(self) -> str:
        if self.engine == SQLITE:
            return f"the SQLite database {self.name}"
        host = self.settings.get("HOST") or "the local socket"
        port = self.settings.get("PORT") or 5432
        return f"the PostgreSQL database {self.name!r} on {host}:{port}"

    def wrapper(self, **overrides: Any) -> BaseDatabaseWrapper:
        """A Django connection of its own to this database (never the shared one)."""
        config = {**copy.deepcopy(self.settings), **overrides}
        backend = load_backend(config["ENGINE"])
        alias = f"glabella-backup-{uuid.uuid4().hex[:8]}"
        wrapper = backend.DatabaseWrapper(config, alias)
        # Django's introspection looks its connection up by alias (in this thread only).
        connections[alias] = wrapper
        return wrapper


def configured_database() -> Database:
    """The database this installation uses (``DATABASES['default']``)."""
    return Database(copy.deepcopy(connections["default"].settings_dict), configured=True)


def database_from_url(url: str) -> Database:
    """A database named by URL (``sqlite:////path`` or ``postgres://user@host/name``).

    The password may be left out of the URL: PostgreSQL then reads it from PGPASSWORD or
    ~/.pgpass, as psql does, and nothing secret sits on a command line.
    """
    try:
        parsed: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    except (ValueError, KeyError) as exc:
        raise BackupError(
            f"Cannot read the database URL ({exc}): use sqlite:////absolute/path.sqlite3 "
            "or postgres://user@host:5432/name."
        ) from None
    base = connections["default"].settings_dict
    if parsed.get("ENGINE") == base.get("ENGINE"):
        parsed["OPTIONS"] = {**copy.deepcopy(base.get("OPTIONS", {})), **parsed.get("OPTIONS", {})}
    configured = ConnectionHandler().configure_settings({"default": parsed})["default"]
    database = Database(configured, configured=False)
    database.engine  # noqa: B018  (refuses an engine we cannot back up, now)
    if not database.name:
        raise BackupError(f"The database URL {url!r} names no database.")
    return database


def _close(wrapper: BaseDatabaseWrapper) -> None:
    # Django keeps in-memory SQLite connections open on close(); ours must really go.
    raw = wrapper.connection
    with contextlib.suppress(Exception):
        wrapper.close()
    if raw is not None:
        with contextlib.suppress(Exception):
            raw.close()
    wrapper.connection = None
    with contextlib.suppress(AttributeError):
        del connections[wrapper.alias]


@contextlib.contextmanager
def _connected(database: Database, **overrides: Any) -> Iterator[BaseDatabaseWrapper]:
    wrapper = database.wrapper(**overrides)
    try:
        wrapper.ensure_connection()
    except DatabaseError as exc:
        _close(wrapper)
        hint = ""
        if database.engine == POSTGRESQL and "does not exist" in str(exc):
            hint = (
                f" Create it first (createdb -O {database.settings.get('USER') or 'USER'} "
                f"{database.name}), empty."
            )
        raise BackupError(f"Cannot connect to {database.label}: {exc}".strip() + hint) from None
    try:
        yield wrapper
    finally:
        _close(wrapper)


def _sqlite_file(path: Path) -> Database:
    """A read-only view of a SQLite file (a snapshot or a staged copy)."""
    return Database(
        {
            **ConnectionHandler().configure_settings(
                {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}
            )["default"],
            "NAME": f"{path.resolve().as_uri()}?mode=ro",
        },
        configured=False,
    )


# --- table digests -----------------------------------------------------------------------


@dataclass(frozen=True)
class TableDigest:
    rows: int
    sha256: str


def _model_kinds() -> dict[str, dict[str, str]]:
    """For every table Django knows: column -> the model field's internal type."""
    kinds: dict[str, dict[str, str]] = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy:
            continue
        columns = kinds.setdefault(model._meta.db_table, {})
        for f in model._meta.local_concrete_fields:
            columns.setdefault(f.column, f.get_internal_type())
    return kinds


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _datetime(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # stored in UTC (USE_TZ)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def canonical(value: Any, kind: str = "") -> str | None:
    """VALUE as one text whatever engine or driver returned it (None stays None)."""
    if value is None:
        return None
    if isinstance(value, memoryview | bytearray | bytes):
        return "x:" + bytes(value).hex()
    if kind in _BOOL_KINDS or isinstance(value, bool):
        return "1" if value in (True, 1, "1", "t", "true") else "0"
    if kind == "DateTimeField" or isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="microseconds")
    if kind == "JSONField":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if kind == "UUIDField":
        return uuid.UUID(str(value)).hex
    if kind == "DurationField" and isinstance(value, timedelta):
        return str(value // timedelta(microseconds=1))
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        return _decimal(Decimal(repr(value))) if kind == "DecimalField" else repr(value)
    if isinstance(value, int):
        return str(value)
    if kind == "DecimalField" and isinstance(value, str):
        try:
            return _decimal(Decimal(value))
        except InvalidOperation:
            return value
    return str(value)


def _table_digest(
    wrapper: BaseDatabaseWrapper,
    table: str,
    kinds: dict[str, str],
    on_rows: Callable[[int], None],
) -> TableDigest:
    quote = wrapper.ops.quote_name
    with wrapper.cursor() as cursor:
        description = wrapper.introspection.get_table_description(cursor, table)
        primary_key = wrapper.introspection.get_primary_key_columns(cursor, table) or []
    column_kinds: dict[str, str] = {}
    for info in description:
        kind = kinds.get(info.name, "")
        if not kind:
            with contextlib.suppress(KeyError):
                kind = str(wrapper.introspection.get_field_type(info.type_code, info))
        column_kinds[info.name] = kind
    columns = sorted(column_kinds)
    postgres = wrapper.vendor == "postgresql"

    def order(column: str) -> str:
        # Text keys in byte order: the server's collation must not change the digest.
        collate = ' COLLATE "C"' if postgres and column_kinds.get(column) in _TEXT_KINDS else ""
        return quote(column) + collate

    order_by = ", ".join(order(c) for c in (primary_key or columns))
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} ORDER BY {order_by}"  # noqa: S608
    column_list = [column_kinds[c] for c in columns]
    digest = hashlib.sha256()
    digest.update(json.dumps(columns).encode() + b"\n")
    rows = 0
    cursor = wrapper.chunked_cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(FETCH):
            for row in batch:
                values = [canonical(v, k) for v, k in zip(row, column_list, strict=True)]
                line = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
                digest.update(line.encode() + b"\n")
            rows += len(batch)
            on_rows(len(batch))
    finally:
        cursor.close()
    return TableDigest(rows, digest.hexdigest())


@dataclass
class Inspection:
    tables: dict[str, TableDigest]
    migrations: dict[str, str]


def _count(wrapper: BaseDatabaseWrapper, table: str) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {wrapper.ops.quote_name(table)}")  # noqa: S608
        return int(cursor.fetchone()[0])


def table_counts(wrapper: BaseDatabaseWrapper) -> dict[str, int]:
    with wrapper.cursor() as cursor:
        names = sorted(wrapper.introspection.table_names(cursor))
    return {name: _count(wrapper, name) for name in names}


def inspect_database(
    wrapper: BaseDatabaseWrapper, progress: Progress = no_progress, label: str = ""
) -> Inspection:
    """Row counts and digests of every table, and the last migration of every app."""
    label = label or "Checking the tables"
    counts = table_counts(wrapper)
    total = sum(counts.values())
    kinds = _model_kinds()
    done = 0
    progress(label, 0, total)

    def on_rows(n: int) -> None:
        nonlocal done
        done += n
        progress(label, done, total)

    tables = {t: _table_digest(wrapper, t, kinds.get(t, {}), on_rows) for t in counts}
    migrations: dict[str, str] = {}
    if "django_migrations" in counts:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
            for app, name in cursor.fetchall():
                migrations[app] = name
    return Inspection(tables, migrations)


def inspect(database: Database, progress: Progress = no_progress) -> Inspection:
    """Counts and digests of DATABASE now, read in one transaction."""
    with _connected(database) as wrapper, _read_transaction(wrapper):
        return inspect_database(wrapper, progress)


@contextlib.contextmanager
def _read_transaction(wrapper: BaseDatabaseWrapper, snapshot: bool = False) -> Iterator[str]:
    """One read-only transaction on WRAPPER; yields PostgreSQL's exported snapshot id."""
    exported = ""
    with wrapper.cursor() as cursor:
        if wrapper.vendor == "postgresql":
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if snapshot:
                cursor.execute("SELECT pg_export_snapshot()")
                exported = str(cursor.fetchone()[0])
        else:
            cursor.execute("BEGIN")
    try:
        yield exported
    finally:
        with wrapper.cursor() as cursor:
            cursor.execute("ROLLBACK")


def compare_tables(expected: dict[str, Any], actual: dict[str, TableDigest]) -> list[str]:
    """What differs between the manifest's tables and a database's, one line a table."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if got is None:
            problems.append(f"{table}: missing ({want['rows']} rows in the backup)")
        elif want is None:
            problems.append(f"{table}: not in the backup ({got.rows} rows here)")
        elif want["rows"] != got.rows:
            problems.append(f"{table}: {want['rows']} rows in the backup, {got.rows} here")
        elif want["sha256"] != got.sha256:
            problems.append(f"{table}: {got.rows} rows as in the backup, but different content")
    return problems


# --- what is in a database -------------------------------------------------------------


def database_contents(database: Database) -> dict[str, int]:
    """Row counts of every table of DATABASE ({} when it has no tables at all)."""
    is_file = database.engine == SQLITE and not database.name.startswith("file:")
    if is_file and not Path(database.name).exists():
        return {}  # a new file: not even created by looking
    with _connected(database) as wrapper:
        return table_counts(wrapper)


def is_empty(counts: dict[str, int]) -> bool:
    """No rows but those `glabella migrate` writes itself."""
    return all(n == 0 for t, n in counts.items() if t not in BOOKKEEPING_TABLES)


def describe_contents(counts: dict[str, int]) -> str:
    """What a database holds, in words: '2 organizations, 5 patients ... and 40 more rows'."""
    parts = []
    named = set(BOOKKEEPING_TABLES)
    for app_label, model_name in HEADLINE_MODELS:
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue
        table = model._meta.db_table
        named.add(table)
        n = counts.get(table, 0)
        if n:
            noun = model._meta.verbose_name if n == 1 else model._meta.verbose_name_plural
            parts.append(f"{n} {noun}")
    others = {t: n for t, n in counts.items() if t not in named and n}
    if others:
        rows = sum(others.values())
        parts.append(
            f"{rows} {'row' if rows == 1 else 'rows'} in {len(others)} other "
            f"{'table' if len(others) == 1 else 'tables'}"
        )
    if not parts:
        return "no data"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- PostgreSQL client tools -------------------------------------------------------------

_PG_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "application_name": "PGAPPNAME",
}


def pg_environment(config: dict[str, Any]) -> dict[str, str]:
    """The environment for pg_dump / pg_restore: the connection, the password in PGPASSWORD
    (never on a command line, where any user of the machine could read it)."""
    env = dict(os.environ)
    for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if config.get(key):
            env[variable] = str(config[key])
    if config.get("PASSWORD"):
        env["PGPASSWORD"] = str(config["PASSWORD"])
    for option, variable in _PG_OPTIONS.items():
        value = (config.get("OPTIONS") or {}).get(option)
        if value not in (None, ""):
            env[variable] = str(value)
    env["PGDATABASE"] = str(config.get("NAME") or "")
    return env


def _conninfo_dbname(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"


def pg_tool(name: str, pg_bin: Path | None = None) -> str:
    """The path of pg_dump or pg_restore, or a message saying how to get it."""
    found = shutil.which(name, path=str(pg_bin)) if pg_bin else shutil.which(name)
    if found:
        return found
    where = f"in {pg_bin}" if pg_bin else "on the PATH"
    raise BackupError(
        f"{name} was not found {where}. A PostgreSQL backup needs the PostgreSQL client "
        "tools of the server's version or newer (Debian/Ubuntu: apt install "
        "postgresql-client-NN; or pass --pg-bin with the directory that holds them)."
    )


PgVersion = tuple[int, ...]


def parse_tool_version(text: str) -> PgVersion:
    """'pg_dump (PostgreSQL) 15.20 (Debian ...)' -> (15,); '... 9.6.24' -> (9, 6)."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", text) or re.search(
        r"(\d+)(?:\.(\d+))?", text
    )
    if not match:
        raise BackupError(f"Cannot tell the version of the PostgreSQL tool from {text!r}.")
    major = int(match.group(1))
    return (major,) if major >= 10 else (major, int(match.group(2) or 0))


def parse_server_version(number: int) -> PgVersion:
    """server_version_num 150020 -> (15,); 90624 -> (9, 6)."""
    return (number // 10000,) if number >= 100000 else (number // 10000, number // 100 % 100)


def version_text(version: PgVersion) -> str:
    return ".".join(str(v) for v in version)


def check_dump_version(tool: PgVersion, server: PgVersion) -> None:
    """pg_dump refuses a server newer than itself: say so before it starts, and what to do."""
    if tool < server:
        wanted = version_text(server)
        raise BackupError(
            f"pg_dump {version_text(tool)} is older than the PostgreSQL {wanted} server, and "
            "pg_dump cannot back up a newer server. Install the client tools of version "
            f"{wanted} or newer (Debian/Ubuntu: apt install postgresql-client-{wanted}) and "
            "put them first on the PATH, or pass --pg-bin with their directory."
        )


def check_restore_version(tool: PgVersion, dumped_by: PgVersion) -> None:
    if tool < dumped_by:
        wanted = version_text(dumped_by)
        raise BackupError(
            f"This backup was written by pg_dump {wanted}; pg_restore {version_text(tool)} "
            f"cannot read it. Install the PostgreSQL client tools of version {wanted} or newer "
            "(or pass --pg-bin with their directory)."
        )


def _tool_version(path: str) -> tuple[PgVersion, str]:
    out = subprocess.run(  # noqa: S603  (a path found by shutil.which, no shell)
        [path, "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    text = (out.stdout or out.stderr).strip()
    return parse_tool_version(text), text


def _server_version(wrapper: BaseDatabaseWrapper) -> PgVersion:
    with wrapper.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return parse_server_version(int(cursor.fetchone()[0]))


def _tail(stream: IO[bytes], lines: int = 8) -> str:
    stream.seek(0)
    text = stream.read().decode("utf-8", "replace").strip().splitlines()
    return "\n".join(text[-lines:])


# --- files -------------------------------------------------------------------------------


@dataclass
class FileArea:
    """One tree of private files: 'photos' or 'media', and where it is on this server."""

    name: str
    root: Path | None  # None: not on this server's disk (S3...), so not in the backup
    note: str = ""


def file_areas(files_root: Path | None = None) -> list[FileArea]:
    """Where this installation keeps the clinic's files (or under FILES_ROOT/photos, /media)."""
    if files_root is not None:
        return [FileArea(a, Path(files_root) / a) for a in AREAS]
    from glabella.photos.storage import photo_storage

    kind = str(getattr(settings, "GLABELLA_PHOTO_STORAGE", "local") or "local")
    try:
        photos_storage = photo_storage()
    except ImproperlyConfigured as exc:
        photos = FileArea("photos", None, f"Photos are not in this backup: {exc}")
    else:
        if isinstance(photos_storage, FileSystemStorage):
            photos = FileArea("photos", Path(photos_storage.location))
        else:
            bucket = getattr(settings, "GLABELLA_S3_BUCKET", "") or ""
            where = f"the S3 bucket {bucket!r}" if kind == "s3" and bucket else f"{kind!r}"
            photos = FileArea(
                "photos",
                None,
                f"Photos are kept in {where}, not on this server, and are NOT in this "
                "backup: back up the bucket itself (versioning or replication, see "
                "docs/backup.md).",
            )
    media_storage = storages["default"]
    if isinstance(media_storage, FileSystemStorage):
        media = FileArea("media", Path(media_storage.location))
    else:
        media = FileArea(
            "media",
            None,
            "Uploaded files (scanned consents) are kept in remote storage and are NOT in this "
            "backup: back that storage up itself.",
        )
    return [photos, media]


def _walk(root: Path, skip: list[Path]) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every regular file under ROOT, in a stable order."""
    if not root.is_dir():
        return
    skip_resolved = {s.resolve() for s in skip}
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if (here / d).resolve() not in skip_resolved and not (here / d).is_symlink()
        )
        for name in sorted(filenames):
            path = here / name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(root).as_posix(), path


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise BackupError(f"The archive holds a file with an unsafe name ({name!r}).")
    if "\\" in name or "\x00" in name:
        raise BackupError(f"The archive holds a file with an unsafe name ({name!r}).")
    return path


# --- writing an archive ------------------------------------------------------------------


class _HashingReader:
    def __init__(self, handle: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.digest.update(data)
        self.size += len(data)
        self.on_bytes(len(data))
        return data


def _add_file(
    tar: tarfile.TarFile, name: str, path: Path, on_bytes: Callable[[int], None]
) -> dict[str, Any]:
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        info = tarfile.TarInfo(name)
        info.size = stat.st_size
        info.mtime = int(stat.st_mtime)
        info.mode = 0o600
        reader = _HashingReader(handle, on_bytes)
        try:
            tar.addfile(info, reader)
        except OSError as exc:
            raise BackupError(f"{path} changed while it was being copied ({exc}).") from None
    return {"sha256": reader.digest.hexdigest(), "bytes": reader.size}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o600
    tar.addfile(info, _BytesReader(data))


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        chunk = self.data[self.at : end]
        self.at += len(chunk)
        return chunk


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def default_name(now: datetime) -> str:
    return f"{NAME_PREFIX}{now.astimezone(UTC).strftime(NAME_STAMP)}{NAME_SUFFIX}"


@dataclass
class Snapshot:
    member: str
    path: Path
    inspection: Inspection
    info: dict[str, Any]


def _sqlite_snapshot(database: Database, work: Path, progress: Progress) -> Snapshot:
    out = work / "glabella.sqlite3"
    with _connected(database) as source:
        target = sqlite3.connect(out)
        try:
            # One step: the whole database is read in one read transaction, a consistent
            # copy even while the clinic keeps writing (WAL readers never block writers).
            progress("Copying the database", 0, 1)
            source.connection.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
            check = target.execute("PRAGMA quick_check").fetchone()[0]
            progress("Copying the database", 1, 1)
        finally:
            target.close()
    if check != "ok":
        raise BackupError(
            f"The copy of {database.label} fails SQLite's integrity check ({check}): the "
            "database itself may be damaged. Keep your earlier backups; see docs/backup.md."
        )
    with _connected(_sqlite_file(out)) as reader:
        inspection = inspect_database(reader, progress)
    return Snapshot(
        f"{DATABASE_DIR}/glabella.sqlite3",
        out,
        inspection,
        {"name": database.name, "sqlite_version": sqlite3.sqlite_version},
    )


def _pg_snapshot(
    database: Database, work: Path, pg_bin: Path | None, progress: Progress
) -> Snapshot:
    pg_dump = pg_tool("pg_dump", pg_bin)
    tool_version, tool_text = _tool_version(pg_dump)
    out = work / "glabella.pgdump"
    with _connected(database) as wrapper:
        server = _server_version(wrapper)
        check_dump_version(tool_version, server)
        with _read_transaction(wrapper, snapshot=True) as snapshot, tempfile.TemporaryFile() as err:
            # pg_dump reads the very snapshot our digests are computed from, while we read.
            command = [
                pg_dump,
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot}",
                f"--file={out}",
                f"--dbname={_conninfo_dbname(database.name)}",
            ]
            process = subprocess.Popen(  # noqa: S603  (no shell; password in the environment)
                command,
                env=pg_environment(database.settings),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            try:
                inspection = inspect_database(wrapper, progress)
            except BaseException:
                process.kill()
                process.wait()
                raise
            progress("Waiting for pg_dump", 0, 1)
            code = process.wait()
            if code != 0:
                raise BackupError(
                    f"pg_dump failed (exit status {code}) on {database.label}:\n{_tail(err)}"
                )
    return Snapshot(
        f"{DATABASE_DIR}/glabella.pgdump",
        out,
        inspection,
        {
            "name": database.name,
            "server_version": version_text(server),
            "pg_dump": tool_text,
            "pg_dump_version": version_text(tool_version),
        },
    )


@dataclass
class BackupResult:
    path: Path
    bytes: int
    manifest: dict[str, Any]
    manifest_sha256: str
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t["rows"] for t in self.manifest["tables"].values())


def create_backup(
    destination: Path,
    *,
    database: Database | None = None,
    areas: list[FileArea] | None = None,
    pg_bin: Path | None = None,
    progress: Progress = no_progress,
    now: datetime | None = None,
) -> BackupResult:
    """Write one archive of DATABASE and the files of AREAS to DESTINATION.

    DESTINATION is a file name, or an existing directory to write
    ``glabella-backup-<UTC time>.tar.gz`` into. The archive is written under a temporary name
    in the same directory and renamed when complete: a crash never leaves a half archive
    under the final name, and an earlier archive of that name stays whole until then.
    """
    database = database or configured_database()
    areas = file_areas() if areas is None else areas
    now = now or datetime.now(UTC)
    destination = Path(destination).absolute()
    if destination.is_dir():
        destination = destination / default_name(now)
    parent = destination.parent
    if not parent.is_dir():
        raise BackupError(f"The folder {parent} does not exist: create it first.")
    notes = [a.note for a in areas if a.note]
    try:
        fd, temporary = tempfile.mkstemp(
            dir=parent, prefix=f".{destination.name}.", suffix=".partial"
        )
    except OSError as exc:
        raise BackupError(f"Cannot write in {parent}: {exc.strerror or exc}.") from None
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            tempfile.TemporaryDirectory(dir=parent, prefix=".glabella-backup-work-") as work,
        ):
            if database.engine == SQLITE:
                snapshot = _sqlite_snapshot(database, Path(work), progress)
            else:
                snapshot = _pg_snapshot(database, Path(work), pg_bin, progress)
            # mkstemp made it 0600 already: every patient's record is in it.
            # Files after the snapshot: every file a restored row refers to is in the archive
            # (a file added meanwhile is in it too, harmlessly).
            files = [
                (a, rel, p) for a in areas if a.root for rel, p in _walk(a.root, _others(a, areas))
            ]
            total = snapshot.path.stat().st_size + sum(p.stat().st_size for _, _, p in files)
            written = 0

            def on_bytes(n: int) -> None:
                nonlocal written
                written += n
                progress("Writing the archive", written, total)

            members: dict[str, dict[str, Any]] = {}
            summary: dict[str, dict[str, Any]] = {}
            # mtime=0 and no file name: the gzip header is fixed, so a flipped byte there shows.
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                members[snapshot.member] = _add_file(tar, snapshot.member, snapshot.path, on_bytes)
                for area in areas:
                    summary[area.name] = (
                        {"copied": True, "root": str(area.root), "files": 0, "bytes": 0}
                        if area.root
                        else {"copied": False, "note": area.note}
                    )
                for area, rel, path in files:
                    name = f"{FILES_DIR}/{area.name}/{rel}"
                    members[name] = _add_file(tar, name, path, on_bytes)
                    summary[area.name]["files"] += 1
                    summary[area.name]["bytes"] += members[name]["bytes"]
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created_at": now.astimezone(UTC).isoformat(timespec="seconds"),
                    "app_version": glabella.__version__,
                    "host": socket.gethostname(),
                    "engine": database.engine,
                    "database": {**snapshot.info, "member": snapshot.member},
                    "migrations": snapshot.inspection.migrations,
                    "tables": {
                        t: {"rows": d.rows, "sha256": d.sha256}
                        for t, d in snapshot.inspection.tables.items()
                    },
                    "files": summary,
                    "members": members,
                    "notes": notes,
                }
                data = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False)
                data_bytes = data.encode() + b"\n"
                manifest_sha = hashlib.sha256(data_bytes).hexdigest()
                _add_bytes(tar, MANIFEST, data_bytes)
                _add_bytes(tar, MANIFEST_SUM, f"{manifest_sha}  {MANIFEST}\n".encode())
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, destination)
        _fsync_dir(parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise BackupError(
                f"The backup could not be written ({exc}); nothing was left behind."
            ) from exc
        raise
    if database.configured:
        _audit(
            "glabella backup",
            "export",
            "backup",
            f"backup {destination.name}",
            {
                "file": str(destination),
                "manifest_sha256": manifest_sha,
                "tables": len(manifest["tables"]),
                "files": len(members) - 1,
            },
        )
    return BackupResult(destination, destination.stat().st_size, manifest, manifest_sha, notes)


def _others(area: FileArea, areas: list[FileArea]) -> list[Path]:
    """The other areas' roots (skipped when one tree sits inside another)."""
    return [a.root for a in areas if a is not area and a.root is not None]


def _audit(actor: str, action: str, object_type: str, label: str, detail: dict[str, Any]) -> None:
    """One system event in the installation's audit trail (no organization: it is all of them)."""
    from glabella.audit.services import append

    append(
        organization=None,
        user=None,
        actor_label=actor,
        action=action,
        object_type=object_type,
        object_label=label,
        detail=detail,
        # A restored database may be an older version's, not yet migrated.
        any_schema=True,
    )


def prune(directory: Path, keep_days: int, *, now: datetime, keep: Path) -> list[Path]:
    """Delete this command's archives in DIRECTORY older than KEEP_DAYS (by the time in their
    name), never KEEP (the one just written) and never any other file."""
    cutoff = now - timedelta(days=keep_days)
    removed = []
    for path in sorted(directory.glob(f"{NAME_PREFIX}*{NAME_SUFFIX}")):
        stamp = path.name[len(NAME_PREFIX) : -len(NAME_SUFFIX)]
        try:
            made = datetime.strptime(stamp, NAME_STAMP).replace(tzinfo=UTC)
        except ValueError:
            continue
        if path.resolve() != keep.resolve() and made < cutoff and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


# --- reading an archive ------------------------------------------------------------------


@dataclass
class Archive:
    """An archive read to the end with every check passed."""

    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    database_file: Path | None  # the staged database member (when asked for)

    @property
    def engine(self) -> str:
        return str(self.manifest["engine"])

    def area_files(self, area: str) -> dict[str, dict[str, Any]]:
        prefix = f"{FILES_DIR}/{area}/"
        return {
            n[len(prefix) :]: m for n, m in self.manifest["members"].items() if n.startswith(prefix)
        }


def _damaged(path: Path, reason: str) -> BackupError:
    return BackupError(
        f"{path} is damaged or is not a Glabella backup ({reason}). Nothing was changed. "
        "Use another copy of the backup."
    )


def _copy_hashing(source: IO[bytes], target: IO[bytes] | None, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        digest.update(chunk)
        if target is not None:
            target.write(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def read_archive(
    path: Path,
    *,
    work: Path | None = None,
    stage: dict[str, Path] | None = None,
    progress: Progress = no_progress,
) -> Archive:
    """Read PATH to the end and check every checksum; refuse it (BackupError) on any doubt.

    The database member is written into WORK (when given), and the files of each area into
    STAGE[area] (when given); nothing else on disk is touched.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"There is no backup at {path}.")
    total = path.stat().st_size
    seen: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    manifest_bytes = b""
    manifest_sum = b""
    database_file: Path | None = None
    try:
        with open(path, "rb") as raw:
            header = raw.read(10)
            if header[:4] != b"\x1f\x8b\x08\x00" or header[4:8] != b"\x00\x00\x00\x00":
                raise _damaged(path, "its gzip header is not the one Glabella writes")
            raw.seek(0)
            gz = gzip.GzipFile(fileobj=raw, mode="rb")
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                for member in tar:
                    name = member.name
                    if not member.isreg():
                        raise _damaged(path, f"{name!r} is not a plain file")
                    if name in names:
                        raise _damaged(path, f"{name!r} appears twice")
                    names.add(name)
                    handle = tar.extractfile(member)
                    assert handle is not None
                    if name == MANIFEST:
                        if member.size > MAX_MANIFEST_BYTES:
                            raise _damaged(path, "the manifest is implausibly large")
                        manifest_bytes = handle.read()
                    elif name == MANIFEST_SUM:
                        manifest_sum = handle.read(1024)
                    else:
                        target = _member_target(path, name, work, stage)
                        if target is not None:
                            target.parent.mkdir(parents=True, exist_ok=True)
                            with open(target, "xb") as out:
                                os.fchmod(out.fileno(), 0o600)
                                digest = _copy_hashing(handle, out, member.size)
                            if name.startswith(f"{DATABASE_DIR}/"):
                                database_file = target
                        else:
                            digest = _copy_hashing(handle, None, member.size)
                        seen[name] = {"sha256": digest, "bytes": member.size}
                    progress("Checking the archive", raw.tell(), total)
            # Read to the very end: the gzip CRC and length of the whole stream are checked there.
            while gz.read(CHUNK):
                pass
            if raw.read(1):
                raise _damaged(path, "there are bytes after its end")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _damaged(path, str(exc) or type(exc).__name__) from None
    progress("Checking the archive", total, total)
    if not manifest_bytes or not manifest_sum:
        raise _damaged(path, "it has no manifest: it is incomplete")
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    if manifest_sum.split()[:1] != [manifest_sha.encode()]:
        raise _damaged(path, "the manifest's checksum does not match")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise _damaged(path, f"the manifest is not JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise _damaged(path, "its manifest is not a Glabella backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{path} is a backup of format {manifest.get('format_version')}; this Glabella "
            f"reads format {FORMAT_VERSION}. Use the Glabella version that made it."
        )
    expected = manifest.get("members") or {}
    problems = []
    for name in sorted(set(expected) | set(seen)):
        if name not in seen:
            problems.append(f"{name} is missing")
        elif name not in expected:
            problems.append(f"{name} is not in the manifest")
        elif seen[name] != {"sha256": expected[name]["sha256"], "bytes": expected[name]["bytes"]}:
            problems.append(f"{name} does not match its checksum")
    if problems:
        raise _damaged(path, "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
    return Archive(path, manifest, manifest_sha, database_file)


def _member_target(
    path: Path, name: str, work: Path | None, stage: dict[str, Path] | None
) -> Path | None:
    relative = _safe_relative(name)
    parts = relative.parts
    if parts[0] == DATABASE_DIR and len(parts) == 2:
        return work / parts[1] if work is not None else None
    if parts[0] == FILES_DIR and len(parts) >= 3 and parts[1] in AREAS:
        root = (stage or {}).get(parts[1])
        return root.joinpath(*parts[2:]) if root is not None else None
    raise _damaged(path, f"it holds an unexpected member {name!r}")


# --- checking an archive -----------------------------------------------------------------


@dataclass
class Verification:
    archive: Archive
    checks: list[str]


def verify_backup(
    path: Path, *, pg_bin: Path | None = None, progress: Progress = no_progress
) -> Verification:
    """Check an archive without restoring it: every checksum; for SQLite also the database
    copy's integrity and every table's count and digest; for PostgreSQL that pg_restore can
    read the dump's table of contents."""
    with tempfile.TemporaryDirectory(prefix="glabella-verify-") as work:
        archive = read_archive(path, work=Path(work), progress=progress)
        checks = [f"every checksum matches ({len(archive.manifest['members'])} files)"]
        assert archive.database_file is not None
        if archive.engine == SQLITE:
            checks += _check_sqlite_copy(archive, progress)
        else:
            checks.append(_check_pg_dump(archive, pg_bin))
    return Verification(archive, checks)


def _check_sqlite_copy(archive: Archive, progress: Progress) -> list[str]:
    assert archive.database_file is not None
    connection = sqlite3.connect(f"{archive.database_file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        result = connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()
    if result != "ok":
        raise _damaged(archive.path, f"its database fails SQLite's integrity check: {result}")
    with _connected(_sqlite_file(archive.database_file)) as reader:
        found = inspect_database(reader, progress, "Checking the tables in the archive")
    problems = compare_tables(archive.manifest["tables"], found.tables)
    if problems:
        raise RestoreMismatch(
            f"{archive.path}: the database in the archive differs from its manifest.", problems
        )
    rows = sum(d.rows for d in found.tables.values())
    return [
        "the database copy passes SQLite's integrity check",
        f"{len(found.tables)} tables, {rows} rows: every count and digest matches",
    ]


def _check_pg_dump(archive: Archive, pg_bin: Path | None) -> str:
    assert archive.database_file is not None
    try:
        pg_restore = pg_tool("pg_restore", pg_bin)
    except BackupError:
        return (
            "pg_restore is not installed here, so the dump itself was not opened (the "
            "checksums above still prove it is the one that was written)"
        )
    _check_restore_tool(pg_restore, archive)
    listed = subprocess.run(  # noqa: S603
        [pg_restore, "--list", str(archive.database_file)],
        capture_output=True,
        check=False,
        timeout=600,
    )
    if listed.returncode != 0:
        reason = listed.stderr.decode("utf-8", "replace").strip()
        raise _damaged(archive.path, f"pg_restore cannot read its dump: {reason}")
    entries = [line for line in listed.stdout.decode().splitlines() if not line.startswith(";")]
    return (
        f"pg_restore reads the dump ({len(entries)} entries); to check every table's digest, "
        "restore it into a scratch database (docs/backup.md, 'Restore drill')"
    )


def _check_restore_tool(pg_restore: str, archive: Archive) -> None:
    tool, _ = _tool_version(pg_restore)
    dumped_by = archive.manifest["database"].get("pg_dump_version")
    if dumped_by:
        check_restore_version(tool, tuple(int(p) for p in str(dumped_by).split(".")))


# --- restoring ---------------------------------------------------------------------------


@dataclass
class RestoreResult:
    archive: Archive
    database: Database
    tables: int
    rows: int
    files: dict[str, int]
    kept_aside: list[Path]
    notes: list[str]


def cross_engine_message(backup_engine: str, database: Database) -> str:
    names = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL"}
    return (
        f"This is a backup of a {names.get(backup_engine, backup_engine)} database; it cannot be "
        f"restored into {names[database.engine]} ({database.label}): a backup restores only "
        "into the same engine. To move a clinic across engines, use the full export and "
        "import instead: "
        "`glabella export --org ORG DIR` on the old installation, then "
        "`glabella import export DIR` on the new one (docs/backup.md)."
    )


def restore_backup(
    path: Path,
    *,
    database: Database | None = None,
    areas: list[FileArea] | None = None,
    force: bool = False,
    pg_bin: Path | None = None,
    progress: Progress = no_progress,
) -> RestoreResult:
    """Put the backup at PATH back: the database, then the files; then check the result.

    Before anything is changed: the whole archive is read and every checksum checked; the
    engines must match; the target must be empty unless FORCE (the refusal says what is in
    it); for SQLite the archived copy's digests are checked too. After the restore every
    table's count and digest is recomputed from the restored database and compared with the
    manifest: a difference raises RestoreMismatch naming the tables.

    AREAS are the places the files go (``[]`` restores the database only). Files already
    there are not deleted: the folder is moved aside as ``<name>.before-restore-<time>``.
    """
    database = database or configured_database()
    areas = file_areas() if areas is None else areas
    stamp = datetime.now(UTC).strftime(NAME_STAMP)
    staging: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="glabella-restore-") as work:
        try:
            for area in areas:
                if area.root is not None:
                    staging[area.name] = _staging_dir(area.root, Path(work))
            archive = read_archive(path, work=Path(work), stage=staging, progress=progress)
            assert archive.database_file is not None
            if archive.engine != database.engine:
                raise BackupError(cross_engine_message(archive.engine, database))
            notes = _file_notes(archive, areas)
            contents = database_contents(database)
            if not is_empty(contents) and not force:
                raise BackupError(
                    f"{database.label[0].upper()}{database.label[1:]} is not empty: it holds "
                    f"{describe_contents(contents)}. Restoring would replace all of it. Restore "
                    "into an empty database, or add --force to replace it (take a backup of it "
                    "first: glabella backup FILE)."
                )
            if database.engine == SQLITE:
                _check_sqlite_copy(archive, progress)
            else:
                pg_restore = pg_tool("pg_restore", pg_bin)
                _check_restore_tool(pg_restore, archive)
                extra = sorted(set(contents) - set(archive.manifest["tables"]))
                if extra:
                    raise BackupError(
                        f"{database.label} has tables the backup does not know "
                        f"({', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}): it is "
                        "from a newer Glabella or holds something else. Restore into an empty "
                        "database."
                    )
            # From here on the target changes.
            progress("Restoring the database", 0, 1)
            if database.engine == SQLITE:
                _restore_sqlite(archive.database_file, database)
            else:
                _restore_pg(archive.database_file, database, pg_restore)
            progress("Restoring the database", 1, 1)
            kept_aside = []
            files: dict[str, int] = {}
            for area in areas:
                if area.root is None or area.name not in staging:
                    continue
                if not archive.manifest["files"].get(area.name, {}).get("copied"):
                    continue
                aside = _put_in_place(staging.pop(area.name), area.root, stamp)
                if aside is not None:
                    kept_aside.append(aside)
                files[area.name] = len(archive.area_files(area.name))
        finally:
            for leftover in staging.values():
                shutil.rmtree(leftover, ignore_errors=True)
        found = inspect(database, progress)
        problems = compare_tables(archive.manifest["tables"], found.tables)
        problems += _compare_files(archive, areas)
        if problems:
            raise RestoreMismatch(
                f"The restored data differs from the backup in {len(problems)} "
                f"{'place' if len(problems) == 1 else 'places'}. Do not start Glabella on it; "
                "restore another backup.",
                problems,
            )
    if database.configured:
        _audit(
            "glabella restore",
            "update",
            "database",
            f"restored from the backup of {archive.manifest['created_at']}",
            {
                "archive": str(archive.path),
                "manifest_sha256": archive.manifest_sha256,
                "backup_created_at": archive.manifest["created_at"],
                "app_version": archive.manifest.get("app_version"),
            },
        )
    notes += _migration_notes(archive.manifest.get("migrations") or {})
    return RestoreResult(
        archive,
        database,
        len(found.tables),
        sum(d.rows for d in found.tables.values()),
        files,
        kept_aside,
        notes,
    )


def _staging_dir(root: Path, work: Path) -> Path:
    """A new folder beside ROOT (same disk: the final move is a rename), else in WORK."""
    parent = root.parent
    where = parent if parent.is_dir() else work
    return Path(tempfile.mkdtemp(dir=where, prefix=f".{root.name}.restore-"))


def _file_notes(archive: Archive, areas: list[FileArea]) -> list[str]:
    notes = []
    by_name = {a.name: a for a in areas}
    for name, summary in sorted(archive.manifest.get("files", {}).items()):
        area = by_name.get(name)
        if not summary.get("copied"):
            notes.append(f"The backup holds no {name}: {summary.get('note', '')}".strip())
        elif area is None:
            notes.append(f"The {name} in the backup were not restored (database only).")
        elif area.root is None and summary.get("files"):
            raise BackupError(
                f"The backup holds {summary['files']} {name} files, but this installation "
                f"keeps {name} off this server ({area.note}). Restore them with --files-root DIR "
                "and copy them to that storage yourself."
            )
    return notes


def _restore_sqlite(copy_file: Path, database: Database) -> None:
    source = sqlite3.connect(f"{copy_file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if database.name and not database.name.startswith("file:"):
            Path(database.name).parent.mkdir(parents=True, exist_ok=True)
        with _connected(database) as target:
            # The online backup API, into the target: one write transaction that replaces
            # every page; other connections see the old database or the new one, never a mix.
            source.backup(target.connection)
    finally:
        source.close()


def _restore_pg(dump: Path, database: Database, pg_restore: str) -> None:
    command = [
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={_conninfo_dbname(database.name)}",
        str(dump),
    ]
    with tempfile.TemporaryFile() as err:
        code = subprocess.run(  # noqa: S603  (no shell; the password is in the environment)
            command,
            env=pg_environment(database.settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            check=False,
        ).returncode
        if code != 0:
            raise BackupError(
                f"pg_restore failed (exit status {code}) and, restoring in one transaction, "
                f"changed nothing in {database.label}:\n{_tail(err)}"
            )


def _put_in_place(staged: Path, root: Path, stamp: str) -> Path | None:
    aside = None
    if root.exists():
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        else:
            aside = root.with_name(f"{root.name}.before-restore-{stamp}")
            os.rename(root, aside)
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged), str(root))
    return aside


def _compare_files(archive: Archive, areas: list[FileArea]) -> list[str]:
    problems = []
    for area in areas:
        summary = archive.manifest["files"].get(area.name, {})
        if area.root is None or not summary.get("copied"):
            continue
        expected = {rel: m["bytes"] for rel, m in archive.area_files(area.name).items()}
        found = {rel: p.stat().st_size for rel, p in _walk(area.root, _others(area, areas))}
        for rel in sorted(set(expected) | set(found)):
            if rel not in found:
                problems.append(f"{area.name}/{rel}: missing after the restore")
            elif rel not in expected:
                problems.append(f"{area.name}/{rel}: not in the backup")
            elif found[rel] != expected[rel]:
                problems.append(f"{area.name}/{rel}: a different size from the backup's")
    return problems


def _migration_notes(backed_up: dict[str, str]) -> list[str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    leaves = dict(loader.graph.leaf_nodes())
    newer = sorted(app for app, name in backed_up.items() if (app, name) not in loader.graph.nodes)
    behind = sorted(app for app, leaf in leaves.items() if backed_up.get(app) != leaf)
    notes = []
    if newer:
        notes.append(
            "This backup comes from a newer Glabella (migrations unknown here in: "
            f"{', '.join(newer)}): upgrade Glabella to the version that made it before starting."
        )
    elif behind:
        notes.append(
            "This backup comes from an older Glabella: run `glabella migrate` before starting."
        )
    return notes
