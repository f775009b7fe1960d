"""One export in its own process, for its peak memory: ``python bench/export_mem.py ORG MODE``.

MODE ``fhir``: Glabella's bulk export of every Patient of organization ORG as FHIR NDJSON
(``interop.export.ndjson.write_types``, the code behind ``$export`` and ``glabella export``);
MODE ``json``: the same rows straight from SQL through ``json.dumps``, one line each (the
floor). Each side first runs once, untimed, on the smallest other organization with
patients (imports, the first validation, compiled queries: a server's warm state). Prints one
JSON line: rows, seconds, the process's peak resident memory
(``VmHWM``: Python and Django included) and how much of it the export added (the peak
less the resident memory just before the export began).

The peak is ``VmHWM`` from /proc, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over from
the parent when ``subprocess`` starts this script (vfork, then exec), so right after
bench/run.py generated a million patients it reported the generator's memory (257 MB)
instead of this process's (95 MB). ``VmHWM`` is this process's own high-water mark.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glabella.settings")

import django  # noqa: E402

django.setup()

from django.db.models import Count  # noqa: E402

from bench.bench_export import _sql_patients  # noqa: E402
from glabella.accounts.models import Organization  # noqa: E402
from glabella.interop.export import ndjson  # noqa: E402


def _export(org: Organization, mode: str) -> int:
    if mode == "fhir":
        with tempfile.TemporaryDirectory() as tmp:
            ((_, entry),) = ndjson.write_types(org, Path(tmp), ["Patient"], keep_empty=True)
            return entry.records or 0
    return _sql_patients(org)


def _warm_up(org: Organization, mode: str) -> None:
    """The same export once on the smallest other organization with patients, untimed: what
    a server process has done before (the FHIR models imported, the first resource of the
    type validated, the query compiled), on both sides alike."""
    other = (
        Organization.objects.exclude(pk=org.pk)
        .annotate(n=Count("patients"))
        .filter(n__gt=0)
        .order_by("n", "pk")
        .first()
    )
    if other is not None:
        _export(other, mode)


def main() -> None:
    org = Organization.objects.get(name=sys.argv[1])
    mode = sys.argv[2]
    _warm_up(org, mode)
    before_kb = _rss_now_kb()
    started = time.perf_counter()
    rows = _export(org, mode)
    seconds = time.perf_counter() - started
    peak_kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "rss_mb": peak_kb / 1024,
                "added_mb": max(0, peak_kb - before_kb) / 1024,
            }
        )
    )


def _status_kb(field: str) -> int | None:
    """A memory figure of this process from /proc/self/status (Linux), in kB."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def _rss_now_kb() -> int:
    return _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()
