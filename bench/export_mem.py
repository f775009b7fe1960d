"""One export in its own process, for its peak memory: ``python bench/export_mem.py ORG MODE``.

MODE ``fhir``: Glabella's bulk export of every Patient of organization ORG as FHIR NDJSON
(``interop.export.ndjson.write_types``, the code behind ``$export`` and ``glabella export``);
MODE ``json``: the same rows straight from SQL through ``json.dumps``, one line each (the
floor). Prints one JSON line: rows, seconds, the process's peak resident memory
(``ru_maxrss``: Python and Django included) and how much of it the export added (the peak
less the resident memory just before the export began).
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

from bench.bench_export import _sql_patients  # noqa: E402
from glabella.accounts.models import Organization  # noqa: E402
from glabella.interop.export import ndjson  # noqa: E402


def main() -> None:
    org = Organization.objects.get(name=sys.argv[1])
    mode = sys.argv[2]
    before_kb = _rss_now_kb()
    started = time.perf_counter()
    if mode == "fhir":
        with tempfile.TemporaryDirectory() as tmp:
            ((_, entry),) = ndjson.write_types(org, Path(tmp), ["Patient"], keep_empty=True)
            rows = entry.records or 0
    else:
        rows = _sql_patients(org)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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


def _rss_now_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()
