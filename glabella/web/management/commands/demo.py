"""glabella demo: load the demo organization (with --if-empty, only into an empty database)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.accounts.models import Organization
from glabella.web import demo


class Command(BaseCommand):
    help = "Load demo data: two clinics, a user for every role, about 60 patients."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing if the database already has an organization",
        )
        parser.add_argument("--patients", type=int, default=60)

    def handle(self, *args: Any, **options: Any) -> None:
        if Organization.objects.filter(name=demo.DEMO_ORG).exists():
            self.stdout.write("Demo data is already loaded.")
        elif options["if_empty"] and Organization.objects.exists():
            self.stdout.write("The database already has data; demo data not loaded.")
            return
        else:
            if not 1 <= options["patients"] <= 5000:
                raise CommandError("--patients must be between 1 and 5000.")
            self.stdout.write(f"Loading demo data ({options['patients']} patients)…")
            demo.load(patients=options["patients"])
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
        for login in demo.demo_logins():
            self.stdout.write(f"  {login.email:32} {login.role:22} {login.clinic}")
