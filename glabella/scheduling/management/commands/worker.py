"""glabella worker: the sending loop (and any other periodic job). No broker needed.

Every ``GLABELLA_WORKER_INTERVAL`` seconds (``--interval``): mark messages left "being sent"
longer than the lease as "may not have gone out", plan reminders, send what is due. Once an
hour (and on the first pass) it also tidies up: expired sign-in sessions, sign-in failure
counters idle for a week, export files past ``GLABELLA_EXPORT_KEEP_HOURS``. SIGTERM or
SIGINT (Ctrl-C) stops it cleanly after the message being sent; a second signal stops it at once.
Several workers may run at once, on one machine or several: each message is still sent once.
Run it under systemd (docs/reminders.md).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from django.utils import timezone

from glabella.scheduling import reminders


def add_common_arguments(parser: Any) -> None:
    parser.add_argument(
        "--lease",
        type=float,
        default=None,
        help="seconds after which a message left 'being sent' (the worker died) is marked "
        "'may not have gone out' (default GLABELLA_REMINDER_LEASE_SECONDS)",
    )
    parser.add_argument(
        "--worker-id", default="", help="name of this worker in the log (default host:pid)"
    )


def fresh_connection() -> None:
    """Drop a database connection that broke or aged (the database restarted) before a pass.
    Never inside a transaction (only tests call the loop inside one)."""
    if not connection.in_atomic_block:
        close_old_connections()


HOUSEKEEPING_EVERY = 3600.0  # seconds


def housekeeping() -> str:
    """Remove what is past its time, across every organization: expired sign-in sessions (a
    database session store keeps them otherwise), sign-in failure counters with no failure for
    a week and no lock, and finished exports' files past their keep time."""
    from importlib import import_module

    from glabella.accounts import lockout
    from glabella.interop.export import jobs

    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    counters = lockout.purge()
    exports = jobs.purge_expired()
    return (
        f"Housekeeping: expired sessions cleared, {counters} old sign-in counter(s) and "
        f"{exports} expired export(s) removed."
    )


def lease_from(options: dict[str, Any]) -> timedelta | None:
    return timedelta(seconds=options["lease"]) if options.get("lease") else None


class Command(BaseCommand):
    help = (
        "Run the reminder worker: plan and send confirmations, reminders and recall "
        "invitations every GLABELLA_WORKER_INTERVAL seconds until stopped (SIGTERM or Ctrl-C)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between passes (default GLABELLA_WORKER_INTERVAL, 60)",
        )
        parser.add_argument(
            "--passes", type=int, default=0, help="stop after this many passes (default: never)"
        )
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        interval = options["interval"]
        if interval is None:
            interval = float(settings.GLABELLA_WORKER_INTERVAL)
        self.loop(
            interval=max(0.1, interval),
            passes=options["passes"],
            worker_id=options["worker_id"] or reminders.default_worker_id(),
            lease_for=lease_from(options),
        )

    def loop(
        self, *, interval: float, passes: int, worker_id: str, lease_for: timedelta | None
    ) -> None:
        stop = threading.Event()
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: Any) -> None:
            self.stdout.write(
                f"Worker {worker_id}: {signal.Signals(signum).name} received; "
                "stopping after the current message."
            )
            stop.set()
            for sig, handler in previous.items():  # a second signal stops at once
                signal.signal(sig, handler)

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
        self.stdout.write(f"Worker {worker_id} started: a pass every {interval:g} s.")
        done = 0
        try:
            while not stop.is_set():
                self.one_pass(worker_id, lease_for, stop.is_set)
                done += 1
                if passes and done >= passes:
                    break
                stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"Worker {worker_id} stopped after {done} pass(es).")

    def tidy(self) -> None:
        """Housekeeping once every HOUSEKEEPING_EVERY seconds (a failure is logged, and tried
        again on the next pass)."""
        now = time.monotonic()
        last = getattr(self, "_tidied_at", None)
        if last is not None and now - last < HOUSEKEEPING_EVERY:
            return
        try:
            said = housekeeping()
        except Exception as exc:  # the database went away: say so, try again next pass
            self.stderr.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} housekeeping failed: {exc!r}")
            fresh_connection()
            return
        self._tidied_at = now
        if said and getattr(self, "verbosity", 1) > 0:
            self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {said}")

    def one_pass(
        self, worker_id: str, lease_for: timedelta | None, should_stop: Callable[[], bool]
    ) -> None:
        fresh_connection()
        try:
            result = reminders.run_pass(
                worker_id=worker_id, lease_for=lease_for, should_stop=should_stop
            )
        except Exception as exc:  # the database went away, a bug: log it, try again next pass
            self.stderr.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} pass failed: {exc!r}")
            fresh_connection()
            return
        self.tidy()
        s, p = result.sent, result.planned
        busy = p.planned or p.skipped or p.cancelled or s.sent or s.failed or s.skipped
        if busy or s.retrying or s.uncertain or result.swept or getattr(self, "verbosity", 1) > 1:
            self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {result.summary()}")
        sys.stdout.flush()
