"""glabella audit-verify: check the audit hash chain and name the first broken link."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.audit.services import verify_chain
from glabella.web.progress import ProgressBar


class Command(BaseCommand):
    help = "Check that the audit trail is complete and unaltered (exit 1 if not)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--quiet", action="store_true", help="print nothing when the chain is intact"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bar = ProgressBar("Checking audit events", stream=sys.stderr)
        report = verify_chain(progress=bar.update)
        bar.finish()
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{report.broken_seq}: {report.reason}. "
                f"{report.checked} events before it are intact.",
                returncode=1,
            )
        if not options["quiet"]:
            self.stdout.write(f"Audit chain intact: {report.checked} events checked.")
