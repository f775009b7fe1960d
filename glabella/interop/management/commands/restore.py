"""glabella restore FILE: put a backup back, then prove the result equals the backup.

    glabella restore /var/backups/glabella/glabella-backup-20250101T023000Z.tar.gz
    glabella restore FILE --force                  # replace a database that is not empty
    glabella restore FILE --database-url sqlite:////tmp/drill.sqlite3 --files-root /tmp/drill

Stop the web server and the worker first. docs/backup.md has the whole procedure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.interop import backup
from glabella.interop.management.commands.backup import Bars, database_option, files_text


class Command(BaseCommand):
    help = (
        "Restore a backup made by `glabella backup` (database and files), then check every "
        "table's row count and digest against the backup. See docs/backup.md."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="the archive to restore")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace a database that is not empty (everything in it is lost)",
        )
        parser.add_argument(
            "--database-url",
            metavar="URL",
            help="restore into this database instead of the configured one (a restore drill); "
            "needs --files-root or --no-files",
        )
        files = parser.add_mutually_exclusive_group()
        files.add_argument(
            "--files-root",
            metavar="DIR",
            type=Path,
            help="put the files in DIR/photos and DIR/media instead of the configured places",
        )
        files.add_argument(
            "--no-files",
            action="store_true",
            help="restore the database only (the files are still checked)",
        )
        parser.add_argument(
            "--pg-bin",
            metavar="DIR",
            type=Path,
            help="the folder holding pg_restore (default: the PATH)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bars = Bars(sys.stderr)
        try:
            self.restore(options, bars)
        except backup.RestoreMismatch as exc:
            bars.finish()
            raise CommandError(
                "\n".join([f"RESTORE CHECK FAILED. {exc}", *(f"  {p}" for p in exc.problems)]),
                returncode=1,
            ) from None
        except backup.BackupError as exc:
            bars.finish()
            raise CommandError(str(exc), returncode=1) from None
        except OSError as exc:
            bars.finish()
            raise CommandError(
                f"The restore stopped: {exc}. Check the space and permissions where the "
                "database and the files go, then run it again (with --force if the database "
                "was already replaced).",
                returncode=1,
            ) from None
        finally:
            bars.finish()

    def restore(self, options: dict[str, Any], bars: Bars) -> None:
        if options["database_url"] and not (options["files_root"] or options["no_files"]):
            raise backup.BackupError(
                "With --database-url, say where the files go: --files-root DIR (a restore "
                "drill) or --no-files. Otherwise they would replace this installation's own."
            )
        database = database_option(options["database_url"])
        areas = [] if options["no_files"] else backup.file_areas(options["files_root"])
        self.stdout.write(f"Restoring {options['file']} into {database.label} ...")
        result = backup.restore_backup(
            options["file"],
            database=database,
            areas=areas,
            force=options["force"],
            pg_bin=options["pg_bin"],
            progress=bars,
        )
        bars.finish()
        manifest = result.archive.manifest
        self.stdout.write(
            f"Restored the backup made {manifest['created_at']} on {manifest.get('host', '?')} "
            f"(Glabella {manifest.get('app_version', '?')})."
        )
        self.stdout.write(
            f"  database: {result.tables} tables, {result.rows} rows; every table's row count "
            "and digest equal the backup's."
        )
        for name, count in sorted(result.files.items()):
            self.stdout.write(f"  {name}: {files_text(count)}, as in the backup.")
        for path in result.kept_aside:
            self.stdout.write(
                f"  The files that were there before are kept in {path}; delete that folder "
                "once you are satisfied."
            )
        for note in result.notes:
            self.stdout.write(self.style.WARNING(f"  NOTE: {note}"))
