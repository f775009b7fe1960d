"""glabella import KIND FILE: import patients, history, past treatments or lots from CSV.

    glabella import patients patients.csv --dry-run
    glabella import treatments visits.csv --day-first --map "Client No=patient_ref"
    glabella import export /path/to/export-dir        (a whole Glabella export: DIR/csv/*.csv)

Every problem is listed by file, row and column; without --dry-run the import writes all of
it or nothing. See docs/import.md for the columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, Organization
from glabella.interop.imports import mapping as mapping_mod
from glabella.interop.imports.formats import KINDS
from glabella.interop.imports.importer import Options, Report, export_files, run_import
from glabella.web.progress import ProgressBar

MAX_LISTED = 500


class Command(BaseCommand):
    help = "Import patients, history, treatments or lots from a CSV file, or a Glabella export."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("kind", choices=[*KINDS, "export"])
        parser.add_argument("path", help="the CSV file (for export: the export's directory)")
        parser.add_argument(
            "--dry-run", action="store_true", help="check everything, write nothing"
        )
        parser.add_argument(
            "--day-first",
            action="store_true",
            help="dates are written day first (DD/MM/YYYY); without it only YYYY-MM-DD is read",
        )
        parser.add_argument(
            "--encoding", help="the file's encoding if not UTF-8 (e.g. cp1252, latin-1)"
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help='a column of the file and the Glabella column it is, e.g. "Client First '
            'Name=given_name" (repeatable; FIELD "ignore" leaves the column out)',
        )
        parser.add_argument("--mapping", help="a JSON file of {file column: Glabella column}")
        parser.add_argument("--org", help="the organization (name or id; needed if several)")
        parser.add_argument(
            "--email", help="the owner importing (default: the organization's first owner)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            explicit = {}
            if options.get("mapping"):
                explicit |= mapping_mod.load_mapping_file(options["mapping"])
            explicit |= mapping_mod.parse_map_options(options["map"])
        except mapping_mod.MappingError as exc:
            raise CommandError(str(exc)) from None
        actor = self._actor(options.get("org"), options.get("email"))
        kind, path = options["kind"], Path(options["path"])
        if kind == "export":
            if not path.is_dir():
                raise CommandError(f"{path} is not a directory (an export is a directory).")
            files = export_files(str(path))
            if not files:
                raise CommandError(
                    f"{path} has no csv/patients.csv, history.csv, lots.csv or treatments.csv."
                )
        else:
            if not path.is_file():
                raise CommandError(f"There is no file {path}.")
            files = {kind: (path.name, path.read_bytes())}
        opts = Options(
            dry_run=options["dry_run"],
            day_first=options["day_first"],
            encoding=options.get("encoding"),
            mapping=explicit,
        )
        bar = ProgressBar("Importing", self.stderr._out)  # type: ignore[attr-defined]
        report = run_import(actor, kind, files, opts, progress=bar.update)
        bar.finish()
        self._print(report)
        if not report.ok:
            raise CommandError(
                f"{len(report.problems)} problem(s): nothing was imported. Correct the file and "
                "run the import again."
            )

    def _actor(self, org: str | None, email: str | None) -> Actor:
        orgs = Organization.objects.all()
        if org:
            orgs = orgs.filter(pk=int(org)) if org.isdigit() else orgs.filter(name=org)
        found = list(orgs[:2])
        if not found:
            raise CommandError(f"No organization {org!r}." if org else "There is no organization.")
        if len(found) > 1:
            raise CommandError("There are several organizations: say which with --org.")
        organization = found[0]
        members = Membership.objects.filter(
            organization=organization, role="owner", is_active=True
        ).select_related("user", "clinic")
        if email:
            members = members.filter(user__email=email.lower())
        m = members.order_by("pk").first()
        if m is None:
            raise CommandError(
                f"{email} is not an owner of {organization}."
                if email
                else f"{organization} has no owner to import as."
            )
        return Actor(organization, m.user, m.clinic, m.role, via="command")

    def _print(self, report: Report) -> None:
        out = self.stdout
        for fname, mapped in report.mapping.items():
            pairs = [f"{h} → {f}" for f, h in mapped.items() if h != f]
            if pairs:
                out.write(f"{fname}: columns read as " + ", ".join(pairs))
        for p in report.problems[:MAX_LISTED]:
            out.write(f"PROBLEM  {p}")
        if len(report.problems) > MAX_LISTED:
            out.write(f"... and {len(report.problems) - MAX_LISTED} more problems.")
        for w in report.warnings[:MAX_LISTED]:
            out.write(f"note     {w}")
        if len(report.warnings) > MAX_LISTED:
            out.write(f"... and {len(report.warnings) - MAX_LISTED} more notes.")
        prefix = "Dry run, nothing written: " if report.dry_run else ""
        if report.ok:
            out.write(f"{prefix}{report.rows} rows checked: {report.summary()}.")
