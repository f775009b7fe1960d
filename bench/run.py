"""make bench: time Glabella's code paths against a baseline on the same data, in the same run.

Each benchmark pairs what Glabella does (through its services and ORM) with the hand-written
SQL that returns the same answer, checks that the answers agree, and reports the ratio of the
medians. Results: bench/results.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = ROOT / "var" / "bench"
VAR.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'bench.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glabella.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench import generate  # noqa: E402
from bench.bench_export import EXPORT_CASES  # noqa: E402
from bench.cases import CASES  # noqa: E402

POINTS = int(os.environ.get("BENCH_POINTS", "1000000"))
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "1000000"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "5000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
EARLIER = "## Notes and earlier runs"


@dataclass
class Result:
    name: str
    target: str
    ours_ms: float
    baseline_ms: float

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.baseline_ms if self.baseline_ms else float("inf")


def median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm caches once
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> int:
    call_command("migrate", verbosity=0)
    org = generate.generate(POINTS)
    generate.generate_recalls(PATIENTS, SESSIONS)
    results = []
    for case in [*CASES, *EXPORT_CASES]:
        ctx = case.setup(org)
        ours_ms, ours = median_ms(lambda: case.ours(ctx), REPEAT)  # noqa: B023
        base_ms, base = median_ms(lambda: case.baseline(ctx), REPEAT)  # noqa: B023
        if case.normalise(ours) != case.normalise(base):
            print(f"{case.name}: Glabella and the baseline disagree; fix before timing")
            return 1
        results.append(Result(case.name, case.target, ours_ms, base_ms))
        print(
            f"{case.name:45} ours {ours_ms:9.2f} ms  baseline {base_ms:9.2f} ms  "
            f"ratio {results[-1].ratio:5.2f}  (target {case.target})"
        )
    write(results)
    return 0


def write(results: list[Result]) -> None:
    from glabella.charting.models import InjectionPoint, TreatmentSession
    from glabella.patients.models import Patient
    from glabella.scheduling.models import Recall

    points = InjectionPoint.objects.count()
    org = generate.Organization.objects.get(name=generate.RECALL_ORG)
    patients = Patient.objects.filter(organization=org).count()
    sessions = TreatmentSession.objects.filter(organization=org).count()
    current = Recall.objects.filter(organization=org, is_current=True).count()
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {connection.vendor} "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}), "
        f"{points:,} injection points; recall worklist: {patients:,} patients, "
        f"{sessions:,} sessions, {current:,} current recalls; median of {REPEAT} runs after one "
        "warm-up.",
        "",
        "Ratio = Glabella's time / the baseline's time on the same data in the same run "
        "(1.0 = as fast as the hand-written SQL).",
        "",
        "| benchmark | Glabella (ms) | baseline (ms) | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.ours_ms:.2f} | {r.baseline_ms:.2f} | {r.ratio:.2f} | {r.target} |"
        )
    # Earlier runs kept by hand below the marker (e.g. another size) stay as they are.
    path = ROOT / "bench" / "results.md"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if EARLIER in old:
        lines += ["", old[old.index(EARLIER) :].rstrip()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("written bench/results.md")


if __name__ == "__main__":
    raise SystemExit(main())
