"""glabella stock-digest: e-mail each clinic's owners what needs attention in its stock.

Lots expiring within 30 days (or expired), products below their minimum and open vials near
or past their use-by time (``inventory.services.alerts``), as the plain text of
``inventory.services.digest_text``. A clinic with nothing to report gets no e-mail. Run it daily
from cron (docs/operators.md, "Daily jobs").
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from glabella.accounts.models import Clinic, Membership
from glabella.accounts.roles import Role
from glabella.inventory import services
from glabella.web.progress import ProgressBar


def owners_of(clinic: Clinic) -> list[str]:
    """E-mail addresses of the clinic's owners; the organization's owners when the clinic has
    none of its own (so no clinic's digest goes nowhere)."""
    owners = Membership.objects.filter(
        organization_id=clinic.organization_id,
        role=Role.OWNER,
        is_active=True,
        user__is_active=True,
    ).select_related("user")
    here = [m.user.email for m in owners if m.clinic_id == clinic.pk]
    chosen = here or [m.user.email for m in owners]
    return sorted({e for e in chosen if e})


class Command(BaseCommand):
    help = (
        "E-mail each clinic's owners the daily stock digest (expiring lots, stock below its "
        "minimum, open vials near their use-by time). Clinics with nothing to report are skipped."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clinic", type=int, help="only this clinic (its id)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print what would be sent, and to whom, without sending anything",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        clinics = Clinic.objects.select_related("organization").order_by(
            "organization__name", "name"
        )
        if options["clinic"] is not None:
            clinics = clinics.filter(pk=options["clinic"])
            if not clinics.exists():
                raise CommandError(f"No clinic with id {options['clinic']}.")
        dry_run = options["dry_run"]
        now = timezone.now()
        todo = list(clinics)
        bar = ProgressBar("Stock digest", stream=sys.stderr)
        connection = None if dry_run else get_connection()
        sent = skipped = failed = 0
        for done, clinic in enumerate(todo, start=1):
            bar.update(done, len(todo))
            org = clinic.organization
            items = services.alerts(org, clinic, now)
            where = f"{org.name} / {clinic.name} (clinic {clinic.pk})"
            if not items:
                self.stdout.write(f"{where}: nothing to report, no e-mail.")
                skipped += 1
                continue
            to = owners_of(clinic)
            if not to:
                self.stderr.write(f"{where}: {len(items)} item(s) but no owner to send them to.")
                failed += 1
                continue
            text = services.digest_text(org, clinic, now)
            day = services.local_date(clinic, now)
            subject = f"Stock at {clinic.name}, {day:%d/%m/%Y}: {len(items)} item(s) need attention"
            if dry_run:
                self.stdout.write(f"{where}: would send “{subject}” to {', '.join(to)}:")
                self.stdout.write(text)
                sent += 1
                continue
            message = EmailMessage(
                subject, text, settings.DEFAULT_FROM_EMAIL, to, connection=connection
            )
            try:
                message.send()
            except OSError as exc:  # smtplib errors are OSErrors too
                self.stderr.write(f"{where}: could not send to {', '.join(to)}: {exc}")
                failed += 1
                continue
            sent += 1
            self.stdout.write(f"{where}: sent {len(items)} item(s) to {', '.join(to)}.")
        bar.finish()
        how = "would be sent (dry run: nothing was sent)" if dry_run else "sent"
        summary = (
            f"Stock digest: {sent} e-mail(s) {how}, {skipped} clinic(s) with nothing to report"
            + (f", {failed} failed" if failed else "")
            + "."
        )
        if failed:
            raise CommandError(summary, returncode=1)
        self.stdout.write(summary)
