"""glabella backup FILE: one archive of the database and the clinic's files, with a manifest.

    glabella backup /var/backups/glabella/                 # glabella-backup-<UTC time>.tar.gz
    glabella backup /var/backups/glabella/ --keep 14       # ... and remove those over 14 days
    glabella backup --verify /var/backups/glabella/glabella-backup-20250101T023000Z.tar.gz

docs/backup.md says what is in a backup, how to run it nightly and how to restore it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.interop import backup
from glabella.web.progress import ProgressBar


class Bars:
    """One progress bar a phase (stderr, only on a terminal)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.label = ""
        self.bar: ProgressBar | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self.label:
            self.finish()
            self.label = label
            self.bar = ProgressBar(label, stream=self.stream)
        assert self.bar is not None
        self.bar.update(done, total)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.finish()
        self.bar = None
        self.label = ""


def size_text(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def files_text(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def database_option(url: str | None) -> backup.Database:
    return backup.database_from_url(url) if url else backup.configured_database()


class Command(BaseCommand):
    help = (
        "Back up the database and the clinic's files into one archive (or check one with "
        "--verify). See docs/backup.md."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "file",
            help="the archive to write (a folder: glabella-backup-<UTC time>.tar.gz in it); "
            "with --verify, the archive to check",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="check an archive (every checksum; for SQLite every table's digest) and "
            "change nothing",
        )
        parser.add_argument(
            "--keep",
            type=int,
            metavar="DAYS",
            help="when FILE is a folder: afterwards delete the backups in it older than DAYS "
            "days (only files named glabella-backup-*.tar.gz)",
        )
        parser.add_argument(
            "--database-url",
            metavar="URL",
            help="back up this database instead of the configured one",
        )
        parser.add_argument(
            "--files-root",
            metavar="DIR",
            type=Path,
            help="take the files from DIR/photos and DIR/media instead of the configured places",
        )
        parser.add_argument(
            "--pg-bin",
            metavar="DIR",
            type=Path,
            help="the folder holding pg_dump / pg_restore (default: the PATH)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bars = Bars(sys.stderr)
        try:
            if options["verify"]:
                self.verify(Path(options["file"]), options, bars)
            else:
                self.backup(Path(options["file"]), options, bars)
        except backup.RestoreMismatch as exc:
            bars.finish()
            raise CommandError(
                "\n".join([str(exc), *(f"  {p}" for p in exc.problems)]), returncode=1
            ) from None
        except backup.BackupError as exc:
            bars.finish()
            raise CommandError(str(exc), returncode=1) from None
        finally:
            bars.finish()

    def backup(self, target: Path, options: dict[str, Any], bars: Bars) -> None:
        keep = options["keep"]
        if keep is not None:
            if keep < 1:
                raise backup.BackupError("--keep must be at least 1 day.")
            if not target.is_dir():
                raise backup.BackupError(
                    "--keep needs FILE to be a folder (the backups in it are what is kept)."
                )
        database = database_option(options["database_url"])
        areas = backup.file_areas(options["files_root"])
        now = datetime.now(UTC)
        self.stdout.write(f"Backing up {database.label} ...")
        result = backup.create_backup(
            target,
            database=database,
            areas=areas,
            pg_bin=options["pg_bin"],
            progress=bars,
            now=now,
        )
        bars.finish()
        manifest = result.manifest
        self.stdout.write(f"Backup written: {result.path} ({size_text(result.bytes)})")
        self.stdout.write(
            f"  database: {len(manifest['tables'])} tables, {result.rows} rows "
            "(count and digest of each in the manifest)"
        )
        for name, summary in sorted(manifest["files"].items()):
            if summary.get("copied"):
                self.stdout.write(
                    f"  {name}: {files_text(summary['files'])} ({size_text(summary['bytes'])}) "
                    f"from {summary['root']}"
                )
        for note in result.notes:
            self.stdout.write(self.style.WARNING(f"  NOTE: {note}"))
        if keep is not None:
            removed = backup.prune(target, keep, now=now, keep=result.path)
            for path in removed:
                self.stdout.write(f"  removed {path.name} (older than {keep} days)")

    def verify(self, path: Path, options: dict[str, Any], bars: Bars) -> None:
        result = backup.verify_backup(path, pg_bin=options["pg_bin"], progress=bars)
        bars.finish()
        manifest = result.archive.manifest
        self.stdout.write(
            f"{path}: a backup of {manifest['engine']} database {manifest['database']['name']} "
            f"made {manifest['created_at']} on {manifest.get('host', '?')} by Glabella "
            f"{manifest.get('app_version', '?')}."
        )
        for check in result.checks:
            self.stdout.write(f"  OK: {check}")
        for note in manifest.get("notes", []):
            self.stdout.write(self.style.WARNING(f"  NOTE: {note}"))
        self.stdout.write("The archive is intact.")
