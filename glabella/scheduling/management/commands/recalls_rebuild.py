"""glabella recalls-rebuild: recompute every patient's current recalls from their treatments.

The recalls are kept up to date as sessions are signed, amended and voided and as outside
treatments are recorded; run this after changing a clinic's cosmetic recall interval, after an
import, or to check (a second run changes nothing).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.accounts.models import Organization
from glabella.scheduling import recalls
from glabella.web.progress import ProgressBar


class Command(BaseCommand):
    help = "Recompute the re-treatment and review recalls of every patient (or one organization)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--organization", type=int, help="only this organization (its id)")

    def handle(self, *args: Any, **options: Any) -> None:
        organizations = Organization.objects.order_by("name", "pk")
        if options["organization"] is not None:
            organizations = organizations.filter(pk=options["organization"])
            if not organizations.exists():
                raise CommandError(f"No organization with id {options['organization']}.")
        for org in organizations:
            bar = ProgressBar(f"Recalls of {org.name}", stream=sys.stderr)
            changed = recalls.rebuild_all(org, progress=bar.update)
            bar.finish()
            noun = "recall" if changed == 1 else "recalls"
            self.stdout.write(f"{org.name}: {changed} {noun} changed")
