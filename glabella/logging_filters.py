"""No patient data in the application's logs.

Every log line goes through :class:`NoPatientData` (settings.LOGGING puts it on the one
handler). It

* cuts query strings out of anything that looks like a path: the search pages put a patient's
  name in ``?q=``, and ``runserver``/proxy access lines carry the whole request line;
* hides the secret part of patient links (``/my/<token>/``) and calendar feeds
  (``/scheduling/feed/<token>.ics``): a token in a log is a key to someone's data;
* never writes SQL from ``django.db.backends`` (at DEBUG level Django logs each query *with its
  parameters filled in*: names, dates of birth, notes) — only how long it took;
* blanks the values PostgreSQL puts into constraint errors (``Key (email)=(ada@…)``,
  ``Failing row contains (…)``) in messages and tracebacks;
* stamps each line with the request id (the ``X-Request-ID`` every response carries and the
  audit rows keep), so a line can be traced to a request without any patient detail.

Request bodies are never logged: nothing in Glabella logs them, and Django's "mail the admins"
handler (which would put POST data in an e-mail) is not configured.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

# The id of the request being handled in this thread/task (set by
# glabella.web.security.SecurityHeadersMiddleware), for lines that are not about a request.
current_request_id: ContextVar[str] = ContextVar("glabella_request_id", default="-")

_REPLACEMENTS: list[tuple[re.Pattern[str], str]] = [
    # A path followed by a query string: keep the path, drop the query.
    (re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]*"), r"\1?[query hidden]"),
    # Patient links: /my/<token>/... (but not the staff pages under /my/staff/).
    (re.compile(r"(/my/)(?!staff/)[^/\s?\"'<>]+"), r"\1[link]"),
    # Calendar feed links: /scheduling/feed/<token>.ics
    (re.compile(r"(/feed/)[^/\s?\"'<>]+?(\.ics)"), r"\1[link]\2"),
    # PostgreSQL constraint details carry the row's values.
    (re.compile(r"(Key \([^)]*\))=\((?:[^()]|\([^()]*\))*\)"), r"\1=(…)"),
    (re.compile(r"(Failing row contains )\((?:[^()]|\([^()]*\))*\)"), r"\1(…)"),
]


def redact(text: str) -> str:
    """TEXT with query strings, link tokens and constraint values taken out."""
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


class NoPatientData(logging.Filter):
    """Rewrites each record in place (see the module docstring); never drops a line."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or current_request_id.get()
        if record.name.startswith("django.db.backends"):
            duration = getattr(record, "duration", None)
            record.msg = (
                f"({duration:.3f}s) SQL statement not logged (it may hold patient data)"
                if isinstance(duration, float)
                else "SQL statement not logged (it may hold patient data)"
            )
            record.args = ()
            record.sql = record.params = "[hidden]"
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must not stop the line being written
            message = str(record.msg)
        record.msg = redact(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
