"""gunicorn settings for Glabella (docs/deploy.md).

    gunicorn -c contrib/gunicorn.conf.py glabella.wsgi:application

Every app process is stateless: sessions are in the database, the cache in Redis or the
database (GLABELLA_CACHE_URL), photos on S3 or shared storage, so any number of these may
run, on any number of machines, behind the reverse proxy (contrib/nginx/glabella.conf).

Environment (all optional): GLABELLA_BIND (default 127.0.0.1:8000), GLABELLA_WORKERS (default
2 x cores + 1), GLABELLA_THREADS (default 4), GLABELLA_TIMEOUT (seconds, default 60),
GLABELLA_TRUSTED_PROXIES (the proxy's addresses, default 127.0.0.1: only requests from there may
say, in X-Forwarded-Proto, that the browser used https; the app reads the client's address from
X-Forwarded-For under the same rule).
"""

from __future__ import annotations

import multiprocessing
import os

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GLABELLA_BIND", "127.0.0.1:8000")
# Threads serve the waits on the database; processes the Python work.
workers = _int("GLABELLA_WORKERS", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GLABELLA_THREADS", 4)
worker_class = "gthread"
# A request taking longer than this is killed (the big exports run in background jobs).
timeout = _int("GLABELLA_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (a slow leak never grows without bound); jitter staggers them.
max_requests = 2000
max_requests_jitter = 200
# Load the app in each worker, not the master, so a database connection is never shared.
preload_app = False
# Only the proxy may speak for the client's scheme.
forwarded_allow_ips = os.environ.get("GLABELLA_TRUSTED_PROXIES", "127.0.0.1")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# The request body is never logged; limit header sizes like the proxy does.
limit_request_line = 8190
limit_request_fields = 100

# --- logs: no patient data ---------------------------------------------------------------------
# The access log names the path WITHOUT its query string (search pages put names in ?q=), and
# the path itself goes through the same redaction as the app's own log lines (secret links to
# the patient's pages and calendar feeds are cut). No Referer, no user agent.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GLABELLA_LOG_LEVEL", "warning").lower()
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


class RedactingLogger(Logger):
    """gunicorn's logger, with the logged path passed through glabella.logging_filters."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        try:
            from glabella.logging_filters import redact
        except ImportError:  # run outside Glabella's environment: keep only the first segment

            def redact(text: str) -> str:
                return "/" + text.strip("/").split("/", 1)[0]

        atoms["U"] = redact(str(atoms.get("U", "")))
        for key in ("r", "q", "f", "a"):  # never used above; never logged by accident either
            atoms[key] = "-"
        return atoms


logger_class = RedactingLogger
