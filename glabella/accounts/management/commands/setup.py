"""glabella setup: the first organization, clinic and owner of a new installation."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from glabella.accounts.services import setup_organization


class Command(BaseCommand):
    help = "Create an organization, its first clinic and its owner (once per organization)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, help="organization name")
        parser.add_argument("--clinic", required=True, help="first clinic's name")
        parser.add_argument("--timezone", required=True, help="e.g. Europe/London")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--address", default="", help="the clinic's address")
        parser.add_argument(
            "--password-file", help="read the owner's password from this file (else prompted)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["password_file"]:
            try:
                password = Path(options["password_file"]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CommandError(f"Cannot read the password file: {exc.strerror}.") from None
        else:
            password = getpass.getpass("Owner's password: ")
            if password != getpass.getpass("Again: "):
                raise CommandError("The two passwords differ. Nothing was created.")
        try:
            org, clinic, user = setup_organization(
                org_name=options["org"],
                clinic_name=options["clinic"],
                timezone=options["timezone"],
                owner_email=options["owner_email"],
                password=password,
                clinic_address=options["address"],
            )
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"Nothing was created. {problems}") from None
        self.stdout.write(
            f"Created {org.name} with clinic {clinic.name} ({clinic.timezone}); "
            f"owner {user.email} can now sign in."
        )
