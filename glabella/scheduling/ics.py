"""iCalendar (RFC 5545) text for appointments: the practitioner's feed and the .ics attached to
a patient's booking confirmation. Written by hand (a few properties, CRLF line ends, lines
folded at 75 octets, text escaped) so no dependency is needed; tests parse it back with a
real iCalendar parser (the ``icalendar`` package, a development dependency only).

- Every time is written in UTC (``...Z``), so each calendar shows it in its own zone and a
  clinic's summer-time change can never shift an appointment.
- A line longer than 75 octets is folded, never inside a multi-byte UTF-8 character.
- TEXT values are escaped (backslash, semicolon, comma, line breaks); other control
  characters, which RFC 5545 forbids in TEXT, are dropped.
- ``appointment_uid(pk)`` gives the same UID for an appointment every time, so a calendar
  updates the event (SEQUENCE = the appointment's version) instead of adding a copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

PRODID = "-//Glabella//Glabella appointments//EN"
STATUSES = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})
METHODS = frozenset({"PUBLISH", "REQUEST", "CANCEL"})
LINE_OCTETS = 75

# RFC 5545 3.3.11: TEXT may hold any character except the controls (HTAB is allowed).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A host name good enough for the right-hand side of a UID.
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class Event:
    uid: str
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str = ""
    description: str = ""
    status: str = "CONFIRMED"  # CONFIRMED, TENTATIVE or CANCELLED
    sequence: int = 0
    stamp: datetime | None = None
    url: str = ""


def escape(text: str) -> str:
    """Escape TEXT for an iCalendar TEXT value (RFC 5545 3.3.11)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROLS.sub("", text)
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character (RFC 5545 3.1).

    The continuation lines start with one space, which counts towards their 75 octets."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > LINE_OCTETS:
            out.append("".join(current))
            current = [" "]
            size = 1
        current.append(char)
        size += width
    out.append("".join(current))
    return "\r\n".join(out)


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("iCalendar times need an aware datetime (a naive one has no zone).")
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def uid_host() -> str:
    """The right-hand side of our UIDs: the first real host name in ALLOWED_HOSTS (so two
    Glabella installations never clash in one calendar), or ``glabella``."""
    for host in getattr(settings, "ALLOWED_HOSTS", []):
        if _HOST.match(host) and not host.replace(".", "").isdigit():
            return host.lower()
    return "glabella"


def appointment_uid(pk: int) -> str:
    """The UID of appointment PK: the same in the feed and in the confirmation's .ics."""
    return f"appointment-{pk}@{uid_host()}"


def calendar(
    events: Iterable[Event],
    *,
    name: str = "",
    method: str = "PUBLISH",
    refresh_minutes: int | None = None,
) -> str:
    """A VCALENDAR with EVENTS; times in UTC so every calendar shows them in its own zone.

    REFRESH_MINUTES (for a subscribed feed) asks calendar apps to poll that often."""
    if method not in METHODS:
        raise ValueError(f"Unknown iCalendar method {method!r}.")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    lines.append(f"METHOD:{method}")
    if name:
        lines.append(f"X-WR-CALNAME:{escape(name)}")
    if refresh_minutes:
        lines.append(f"REFRESH-INTERVAL;VALUE=DURATION:PT{int(refresh_minutes)}M")
        lines.append(f"X-PUBLISHED-TTL:PT{int(refresh_minutes)}M")
    now = datetime.now(UTC)
    for event in events:
        if event.status not in STATUSES:
            raise ValueError(f"Unknown event status {event.status!r}.")
        if event.ends_at <= event.starts_at:
            raise ValueError("An event must end after it starts.")
        lines += [
            "BEGIN:VEVENT",
            f"UID:{_CONTROLS.sub('', event.uid)}",
            f"DTSTAMP:{_utc(event.stamp or now)}",
            f"DTSTART:{_utc(event.starts_at)}",
            f"DTEND:{_utc(event.ends_at)}",
            f"SUMMARY:{escape(event.summary)}",
            f"STATUS:{event.status}",
            f"SEQUENCE:{max(0, int(event.sequence))}",
        ]
        if event.location:
            lines.append(f"LOCATION:{escape(event.location)}")
        if event.description:
            lines.append(f"DESCRIPTION:{escape(event.description)}")
        if event.url:
            lines.append(f"URL:{_CONTROLS.sub('', event.url)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
