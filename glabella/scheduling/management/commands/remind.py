"""glabella remind --once: one pass of the reminder worker, then a one-line summary.

For cron, or to see what the worker would do now. Without ``--once`` it runs the worker loop
(the same as ``glabella worker``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from glabella.scheduling import reminders
from glabella.scheduling.management.commands.worker import Command as Worker
from glabella.scheduling.management.commands.worker import add_common_arguments, lease_from


class Command(BaseCommand):
    help = (
        "Plan and send reminders. --once: one pass (sweep, plan, send) and a one-line summary "
        "(planned, sent, failed, skipped); without it, run the worker loop."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        worker_id = options["worker_id"] or reminders.default_worker_id()
        if not options["once"]:
            worker = Worker(stdout=self.stdout, stderr=self.stderr)
            worker.loop(
                interval=float(settings.GLABELLA_WORKER_INTERVAL),
                passes=0,
                worker_id=worker_id,
                lease_for=lease_from(options),
            )
            return
        result = reminders.run_pass(worker_id=worker_id, lease_for=lease_from(options))
        self.stdout.write(result.summary())
