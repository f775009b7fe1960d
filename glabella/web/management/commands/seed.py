"""glabella seed: synthetic clinic data in bulk, for benchmarks and trying things at scale.

    glabella seed --patients 100000 --years 3 [--org NAME] [--seed S] [--no-points] [--force]

Makes one organization (default name "Seed <patients> patients") with three clinics, staff of
every role (who cannot sign in), lots and sealed vials, the patients, about five sessions per
patient over the years given (with their injection points), the recall rows (built by
``recalls.rebuild_all``) and appointments for the recalls marked booked. A progress bar shows
on a terminal. Run it again with the same name and size and nothing changes. It refuses a
database that holds a real organization (one with a member whose address is not at
seed.invalid) unless --force. The generator: glabella/web/seed.py.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from glabella.web import seed


class Command(BaseCommand):
    help = "Generate a synthetic organization: patients, sessions over years, recalls, stock."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--patients", type=int, required=True, help="how many patients")
        parser.add_argument("--years", type=float, default=3.0, help="years of sessions (3)")
        parser.add_argument("--org", default="", help='name (default "Seed N patients")')
        parser.add_argument("--seed", type=int, default=11, help="random seed (11)")
        parser.add_argument(
            "--sessions-per-patient", type=float, default=5.0, help="on average (5)"
        )
        parser.add_argument(
            "--no-points", action="store_true", help="sessions without injection points"
        )
        parser.add_argument(
            "--force", action="store_true", help="write even where real organizations are"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        patients = options["patients"]
        if not 1 <= patients <= 50_000_000:
            raise CommandError("--patients must be between 1 and 50,000,000.")
        if not 0 < options["years"] <= 50:
            raise CommandError("--years must be above 0 and at most 50.")
        if not 0 <= options["sessions_per_patient"] <= 100:
            raise CommandError("--sessions-per-patient must be between 0 and 100.")
        spec = seed.Spec(
            name=options["org"].strip() or f"Seed {patients} patients",
            patients=patients,
            years=options["years"],
            sessions_per_patient=options["sessions_per_patient"],
            points=not options["no_points"],
            seed=options["seed"],
        )
        try:
            made = seed.generate(spec, force=options["force"])
        except seed.SeedRefused as exc:
            raise CommandError(str(exc)) from None
        if not made.created:
            self.stdout.write(
                f"{spec.name} is already seeded ({made.patients:,} patients); nothing changed."
            )
            return
        self.stdout.write(
            f"Seeded {spec.name}: {made.patients:,} patients, {made.sessions:,} sessions, "
            f"{made.points:,} injection points, {made.recalls:,} recall rows, "
            f"{made.appointments:,} appointments in {made.seconds:.1f} s."
        )
