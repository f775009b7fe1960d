"""glabella export: write everything an organization entered into a directory, check one, or
clean up old export files.

    glabella export --org "Alpha Aesthetics" /backups/alpha-2025-06-01
    glabella export --verify /backups/alpha-2025-06-01
    glabella export --purge

The directory must be new or empty. Layout and formats: docs/export.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.accounts.actor import Actor
from glabella.accounts.models import Organization
from glabella.audit import services as audit
from glabella.interop.export import full, jobs
from glabella.web.progress import ProgressBar


def find_organization(value: str) -> Organization:
    """The organization whose id or exact name is VALUE."""
    if value.isdigit():
        org = Organization.objects.filter(pk=int(value)).first()
        if org is not None:
            return org
    matches = list(Organization.objects.filter(name=value)[:2])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CommandError(f"More than one organization is named {value!r}: give its id.")
    names = ", ".join(f"{o.pk} ({o.name})" for o in Organization.objects.order_by("pk")[:20])
    raise CommandError(f"No organization with id or name {value!r}. There are: {names or 'none'}.")


class Command(BaseCommand):
    help = (
        "Export everything an organization entered (FHIR NDJSON, import CSVs, every table, "
        "photos, signed records, consents, a manifest with checksums) into a new or empty "
        "DIR; or check an export with --verify DIR; or remove expired export files with --purge."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("directory", nargs="?", help="the export directory")
        parser.add_argument("--org", help="the organization: its id or exact name")
        parser.add_argument(
            "--verify",
            action="store_true",
            help="check DIR against its manifest (sizes and SHA-256 of every file)",
        )
        parser.add_argument(
            "--purge",
            action="store_true",
            help="remove export files older than GLABELLA_EXPORT_KEEP_HOURS and mark exports "
            "left unfinished by a dead process as failed (run it daily)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["directory"]
        if options["purge"]:
            reaped = jobs.reap()
            purged = jobs.purge_expired()
            self.stdout.write(
                f"Removed the files of {purged} expired export(s); "
                f"marked {reaped} unfinished export(s) as failed."
            )
            return
        if not directory:
            raise CommandError("Name the export directory (DIR).")
        if options["verify"]:
            self._verify(Path(directory))
            return
        if not options["org"]:
            raise CommandError("Say which organization to export: --org ID_OR_NAME.")
        self._export(find_organization(options["org"]), Path(directory))

    def _verify(self, directory: Path) -> None:
        bar = ProgressBar("Checking files", stream=sys.stderr)
        problems = full.verify(directory, progress=bar.update)
        bar.finish()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{directory}: {len(problems)} problem(s): the export is incomplete or altered.",
                returncode=1,
            )
        self.stdout.write(f"{directory}: every file matches the manifest.")

    def _export(self, organization: Organization, directory: Path) -> None:
        try:
            full.refuse_unless_empty(directory)
        except full.ExportRefused as exc:
            raise CommandError(str(exc)) from None
        created = not directory.exists()
        actor = Actor.system(organization, via="command")
        bar = ProgressBar(f"Exporting {organization.name}", stream=sys.stderr)
        try:
            result = full.write_export(organization, directory, by=actor.label, progress=bar.update)
        except BaseException:
            bar.finish()
            full.remove_partial(directory, created)
            raise
        bar.finish()
        manifest = result.manifest
        audit.record(
            actor,
            "export",
            organization,
            label="Full export written by the command",
            detail={
                "directory": str(directory.resolve()),
                "files": len(manifest["files"]),
                "parts": manifest["parts"],
                "problems": len(result.problems),
            },
        )
        for part, p in manifest["parts"].items():
            records = "" if p["records"] is None else f" {p['records']:>8} records"
            self.stdout.write(f"  {part:<9} {p['files']:>6} files{records}")
        for problem in result.problems:
            self.stderr.write(f"Problem: {problem['message']}")
        self.stdout.write(
            f"Exported {organization.name} to {directory}: {len(manifest['files'])} files. "
            f"Check it with: glabella export --verify {directory}"
        )
        if result.problems:
            raise CommandError(
                f"{len(result.problems)} file(s) could not be exported (listed above and in "
                "manifest.json): everything else was.",
                returncode=2,
            )
