"""The full export of an organization: everything the clinic entered, in open formats.

Layout of the export directory (``docs/export.md`` says it for people)::

    manifest.json            organization, when, by whom, app version, and for every file:
                             path, records (where it applies), bytes, sha256
    SHA256SUMS               the same checksums, for ``sha256sum -c SHA256SUMS``
    fhir/<Type>.ndjson       every FHIR R4 resource Glabella serves, one per line
    csv/patients.csv ...     the import formats (``glabella import export DIR`` re-imports them)
    tables/<app>.<model>.csv every organization-scoped table, all columns but credentials
    photos/<patient>/...     the photographs, byte for byte as stored
    records/<patient>/...    the signed treatment records, as the printable PDF
    consents/<patient>/...   each consent's signed text, drawn signature (PNG) and scan

The manifest is written last: a directory without one is an export that did not finish.
:func:`verify` re-checks a directory against its manifest.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from django.db import connection
from django.utils import timezone

import glabella
from glabella.charting import record as charting_record
from glabella.charting.models import TreatmentSession
from glabella.consent.models import Consent
from glabella.interop.export import ndjson, tables
from glabella.interop.export.files import (
    HashingWriter,
    Written,
    copy_stream,
    hash_file,
    private_dir,
    private_file,
    write_bytes,
)
from glabella.interop.imports import formats
from glabella.inventory.models import Lot
from glabella.patients.models import HistoryItem, Patient
from glabella.photos.models import Photo
from glabella.photos.storage import photo_storage

log = logging.getLogger(__name__)

FORMAT = "glabella-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
T = TypeVar("T")


class ExportRefused(Exception):
    """The export cannot start (the message says why, in words)."""


class Cancelled(Exception):
    """The export was stopped from outside (its job was deleted)."""


@dataclass
class Tracker:
    """Counts what has been written against a total; tells a callback, which may stop it."""

    total: int = 0
    done: int = 0
    callback: Callable[[int, int], None] | None = None

    def add(self, n: int = 1) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(min(self.done, self.total), self.total)


@dataclass
class Result:
    manifest: dict[str, Any]
    problems: list[dict[str, str]] = field(default_factory=list)


def planned_items(organization: Any) -> int:
    """Roughly how many things a full export writes (for a progress bar)."""
    org_sessions = TreatmentSession.objects.for_org(organization)
    return (
        ndjson.count(organization, ndjson.served_types(), None)
        + tables.count_rows(organization)
        + Patient.objects.for_org(organization).count()
        + HistoryItem.objects.for_org(organization).filter(entered_in_error=False).count()
        + Lot.objects.for_org(organization).count()
        + org_sessions.count()
        + Photo.objects.for_org(organization).count()
        + org_sessions.filter(signed_at__isnull=False).count()
        + Consent.objects.for_org(organization).count()
    )


def refuse_unless_empty(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise ExportRefused(f"{directory} is a file, not a directory: choose a new directory.")
    if directory.is_dir() and any(directory.iterdir()):
        raise ExportRefused(
            f"{directory} already exists and is not empty: choose a new or empty directory "
            "(an export never writes over or mixes with other files)."
        )


def write_export(
    organization: Any,
    directory: Path,
    *,
    by: str,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Write the full export of ORGANIZATION into DIRECTORY (new or empty) and return its
    manifest. BY names who asked (an e-mail, or "command"). PROGRESS(done, total) is called as
    it goes and may raise (e.g. :class:`Cancelled`) to stop it; a stopped or failed export
    leaves no manifest.json, and the caller removes the directory."""
    refuse_unless_empty(directory)
    private_dir(directory)
    tracker = Tracker(total=planned_items(organization), callback=progress)
    created_at = timezone.now()
    files: list[dict[str, Any]] = []
    problems: list[dict[str, str]] = []

    def add(part: str, entry: Written, **extra: Any) -> None:
        files.append({"part": part, **extra, **entry.as_dict()})

    # 1. FHIR: every type, a file even when empty (the reader sees it was asked for).
    for resource_type, entry in ndjson.write_types(
        organization,
        directory,
        ndjson.served_types(),
        folder="fhir/",
        progress=tracker.add,
        keep_empty=True,
    ):
        add("fhir", entry, type=resource_type)

    # 2. The import formats.
    for kind, rows in _csv_sources(organization, tracker, created_at):
        add("csv", _write_csv(directory, kind, rows), kind=kind)

    # 3. Every organization-scoped table, all columns.
    for table in tables.tables():
        for entry in tables.write_table(table, organization, directory, progress=tracker.add):
            add("tables", entry, table=table.label)

    # 4. Photographs, byte for byte.
    for entry, problem in _photos(organization, directory, tracker):
        if entry is not None:
            add("photos", entry)
        if problem is not None:
            problems.append(problem)

    # 5. Signed treatment records, as printed.
    for entry in _records(organization, directory, by, tracker):
        add("records", entry)

    # 6. Consents: the signed text, the drawn signature, the scan.
    for entry, problem in _consents(organization, directory, tracker):
        if entry is not None:
            add("consents", entry)
        if problem is not None:
            problems.append(problem)

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app": "Glabella",
        "app_version": glabella.__version__,
        "organization": {"id": organization.pk, "name": organization.name},
        "created_at": created_at.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "created_by": by,
        "database": connection.vendor,
        "fhir": {"release": "R4B (R4-compatible)", "types": list(ndjson.served_types())},
        "parts": _parts(files),
        "excluded_columns": tables.excluded_columns(),
        "problems": problems,
        "files": files,
    }
    _write_sums(directory, files)
    # Written last, whole, by a rename: a manifest means the export is complete.
    partial = directory / (MANIFEST + ".partial")
    with private_file(partial) as out:
        out.write((json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    os.replace(partial, directory / MANIFEST)
    return Result(manifest, problems)


def _parts(files: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Files, bytes and (for parts made of records: FHIR, CSV, tables) records per part."""
    parts: dict[str, dict[str, Any]] = {}
    for f in files:
        p = parts.setdefault(f["part"], {"files": 0, "records": None, "bytes": 0})
        p["files"] += 1
        p["bytes"] += f["bytes"]
        if f.get("records") is not None:
            p["records"] = (p["records"] or 0) + f["records"]
    return parts


def _write_sums(directory: Path, files: list[dict[str, Any]]) -> None:
    lines = "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
    with private_file(directory / SUMS) as out:
        out.write(lines.encode("utf-8"))


# --- the import formats ----------------------------------------------------------------------


def _ticking(items: Iterable[T], tracker: Tracker, every: int = 200) -> Iterator[T]:
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending >= every:
            tracker.add(pending)
            pending = 0
    if pending:
        tracker.add(pending)


def _treatment_rows(
    organization: Any, tracker: Tracker, cutoff: datetime | None
) -> Iterator[dict[str, Any]]:
    sessions = (
        _before(TreatmentSession.objects.for_org(organization), "created_at", cutoff)
        .select_related("practitioner", "prescriber", "clinic")
        .prefetch_related("points")
        .order_by("treated_on", "pk")
        .iterator(chunk_size=200)
    )
    for session in _ticking(sessions, tracker):
        yield from formats.treatment_rows(session)


def _before(queryset: Any, field: str, cutoff: datetime | None) -> Any:
    return queryset if cutoff is None else queryset.filter(**{f"{field}__lte": cutoff})


def _csv_sources(
    organization: Any, tracker: Tracker, cutoff: datetime | None
) -> list[tuple[str, Iterable[dict[str, Any]]]]:
    """The import-format files, holding what existed when the export started (CUTOFF): the
    files are written one after the other, and a patient registered and treated in between
    would otherwise be in treatments.csv but not in patients.csv, and the re-import (all or
    nothing) would refuse the lot. Later rows are in tables/ and fhir/ and the next export."""
    patients = (
        _before(Patient.objects.for_org(organization), "created_at", cutoff)
        .order_by("pk")
        .iterator(chunk_size=500)
    )
    history = (
        _before(HistoryItem.objects.for_org(organization), "recorded_at", cutoff)
        .filter(entered_in_error=False)  # kept in tables/; re-importing would revive them
        .order_by("pk")
        .iterator(chunk_size=500)
    )
    lots = (
        _before(Lot.objects.for_org(organization), "created_at", cutoff)
        .order_by("pk")
        .iterator(chunk_size=500)
    )
    return [
        ("patients", (formats.patient_row(p) for p in _ticking(patients, tracker))),
        ("history", (formats.history_row(h) for h in _ticking(history, tracker))),
        ("lots", (formats.lot_row(lot) for lot in _ticking(lots, tracker))),
        ("treatments", _treatment_rows(organization, tracker, cutoff)),
    ]


def _write_csv(directory: Path, kind: str, rows: Iterable[dict[str, Any]]) -> Written:
    relative = f"csv/{formats.EXPORT_FILES[kind]}"
    path = directory / relative
    with private_file(path) as raw:
        hashing = HashingWriter(raw)
        text = io.TextIOWrapper(
            io.BufferedWriter(hashing), encoding="utf-8", newline="", write_through=False
        )
        count = formats.write_csv(kind, rows, text)
        text.flush()
        text.detach()
    return Written(relative, hashing.bytes, hashing.sha256, count)


# --- files -----------------------------------------------------------------------------------


def _photos(
    organization: Any, directory: Path, tracker: Tracker
) -> Iterator[tuple[Written | None, dict[str, str] | None]]:
    storage = photo_storage()
    photos = Photo.objects.for_org(organization).order_by("pk").iterator(chunk_size=200)
    for photo in photos:
        name = posixpath.basename(photo.storage_name) or f"{photo.pk}.jpg"
        relative = f"photos/{photo.patient_id}/{photo.pk}-{name}"
        try:
            with storage.open(photo.storage_name, "rb") as source:
                entry = copy_stream(directory, relative, source)
        except (FileNotFoundError, OSError) as exc:
            log.warning("Photo %s missing from storage: %s", photo.pk, exc)
            yield (
                None,
                {
                    "path": relative,
                    "message": f"Photo {photo.pk} is missing from the photo storage "
                    f"({photo.storage_name}): {exc.__class__.__name__}.",
                },
            )
        else:
            problem = None
            if photo.sha256 and entry.sha256 != photo.sha256:
                problem = {
                    "path": relative,
                    "message": f"Photo {photo.pk} in storage differs from the checksum "
                    "recorded when it was taken: exported as it is now.",
                }
            yield entry, problem
        tracker.add()


def _records(organization: Any, directory: Path, by: str, tracker: Tracker) -> Iterator[Written]:
    sessions = (
        TreatmentSession.objects.for_org(organization)
        .filter(signed_at__isnull=False)
        .select_related(
            "patient", "clinic", "organization", "practitioner", "prescriber", "signed_by"
        )
        .order_by("pk")
        .iterator(chunk_size=50)
    )
    printed_by = f"{by} (full export)"
    for session in sessions:
        pdf = charting_record.render_pdf(session, printed_by=printed_by)
        relative = (
            f"records/{session.patient_id}/treatment-{session.pk}-{session.treated_on:%Y-%m-%d}.pdf"
        )
        yield write_bytes(directory, relative, pdf)
        tracker.add()


def _consents(
    organization: Any, directory: Path, tracker: Tracker
) -> Iterator[tuple[Written | None, dict[str, str] | None]]:
    consents = Consent.objects.for_org(organization).order_by("pk").iterator(chunk_size=200)
    for consent in consents:
        base = f"consents/{consent.patient_id}/consent-{consent.pk}"
        yield write_bytes(directory, f"{base}.txt", consent.rendered_text.encode("utf-8")), None
        if consent.signature:
            yield write_bytes(directory, f"{base}-signature.png", bytes(consent.signature)), None
        if consent.scan:
            suffix = PurePosixPath(consent.scan.name).suffix.lower() or ".bin"
            relative = f"{base}-scan{suffix}"
            try:
                with consent.scan.open("rb") as source:
                    yield copy_stream(directory, relative, source), None
            except (FileNotFoundError, OSError) as exc:
                yield (
                    None,
                    {
                        "path": relative,
                        "message": f"The scanned form of consent {consent.pk} is missing from "
                        f"storage ({consent.scan.name}): {exc.__class__.__name__}.",
                    },
                )
        tracker.add()


# --- verify ----------------------------------------------------------------------------------


def _safe(relative: str) -> bool:
    p = PurePosixPath(relative)
    return bool(relative) and not p.is_absolute() and ".." not in p.parts and "\\" not in relative


def verify(directory: Path, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Problems found re-checking DIRECTORY against its manifest (an empty list: intact).

    Every file the manifest names must be there with the same size and SHA-256, and every file
    there must be in the manifest (besides the manifest and SHA256SUMS themselves).
    """
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing: this is not a finished Glabella export."]
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{MANIFEST} cannot be read: {exc}"]
    if manifest.get("format") != FORMAT:
        return [
            f"{MANIFEST} is not a Glabella export manifest (format {manifest.get('format')!r})."
        ]
    problems: list[str] = []
    listed: set[str] = set()
    entries = manifest.get("files") or []
    for done, entry in enumerate(entries, start=1):
        relative = str(entry.get("path", ""))
        if not _safe(relative):
            problems.append(f"{relative!r}: not a path inside the export.")
            continue
        listed.add(relative)
        path = directory / relative
        if not path.is_file():
            problems.append(f"{relative}: missing.")
            continue
        size, digest = hash_file(path)
        if size != entry.get("bytes"):
            problems.append(f"{relative}: {size} bytes, the manifest says {entry.get('bytes')}.")
        if digest != entry.get("sha256"):
            problems.append(f"{relative}: its SHA-256 differs from the manifest (altered).")
        if progress is not None:
            progress(done, len(entries))
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            relative = path.relative_to(directory).as_posix()
            if relative not in listed and relative not in (MANIFEST, SUMS):
                problems.append(f"{relative}: not in the manifest.")
    return problems


def remove_partial(directory: Path, created: bool) -> None:
    """Remove what a failed export wrote (the directory too if the export created it)."""
    if created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir() if directory.is_dir() else ():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
