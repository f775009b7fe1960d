"""Running an interop job (an export, a confirmed import) in a thread of the web process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connections

log = logging.getLogger(__name__)


def start(
    name: str, work: Callable[[], object], *, done: Callable[[], None] | None = None
) -> threading.Thread:
    """Run WORK in a daemon thread called NAME. WORK records its own failures; anything that
    still escapes is logged. DONE runs at the end whatever happened, then the thread closes its
    own database connections (they are per thread)."""

    def body() -> None:
        try:
            work()
        except Exception:  # the last resort: the job records its own failures
            log.exception("Background job %s crashed", name)
        finally:
            if done is not None:
                done()
            connections.close_all()

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread
