"""The hand-written iCalendar text is valid RFC 5545: a real parser (icalendar) reads back
exactly what we wrote, and the raw bytes follow the line rules (CRLF, 75 octets, UTF-8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from glabella.scheduling import ics

LONDON = ZoneInfo("Europe/London")


def _event(**overrides) -> ics.Event:
    values = {
        "uid": "appointment-1@glabella",
        "starts_at": datetime(2026, 6, 1, 10, 0, tzinfo=LONDON),
        "ends_at": datetime(2026, 6, 1, 10, 30, tzinfo=LONDON),
        "summary": "Treatment \u2013 A. L.",
    }
    return ics.Event(**(values | overrides))


def _parse(text: str) -> list[icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["VERSION"] == "2.0"
    assert str(calendar["PRODID"]) == ics.PRODID
    return calendar.walk("VEVENT")


def assert_rfc5545_lines(text: str) -> None:
    """Every line ends with CRLF, holds at most 75 octets and is valid UTF-8 on its own
    (folding never splits a character); continuation lines start with one space."""
    data = text.encode("utf-8")
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    for raw in data.split(b"\r\n")[:-1]:
        assert len(raw) <= 75, raw
        raw.decode("utf-8")  # raises if a fold split a multi-byte character
        assert raw, "no empty lines inside a calendar"


def test_a_long_non_ascii_summary_is_folded_at_75_octets_and_reads_back_whole():
    summary = "Consultation \u2013 Zoë Ångström-Øye, 東京 clinic visit, crème brûlée " * 4
    text = ics.calendar([_event(summary=summary, location="Marylebone, Room 1")])
    assert_rfc5545_lines(text)
    assert max(len(line.encode()) for line in text.split("\r\n")) == 75  # it really folded
    (event,) = _parse(text)
    assert str(event["SUMMARY"]) == summary
    assert str(event["LOCATION"]) == "Marylebone, Room 1"


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_folding_never_splits_a_character_of_any_utf8_width(width):
    char = {1: "a", 2: "é", 3: "€", 4: "😀"}[width]
    for length in range(60, 140):
        text = ics.calendar([_event(summary=char * length)])
        assert_rfc5545_lines(text)
        (event,) = _parse(text)
        assert str(event["SUMMARY"]) == char * length


def test_commas_semicolons_backslashes_and_newlines_are_escaped_and_read_back():
    summary = "Review; left side, 2 U \\ check"
    description = "Line one\nLine two\r\nLine three\rLine four, with; marks"
    text = ics.calendar(
        [_event(summary=summary, description=description, location="A; B, C")],
        name="Dr Shah, Leeds; London",
    )
    assert_rfc5545_lines(text)
    assert "SUMMARY:Review\\; left side\\, 2 U \\\\ check\r\n" in text
    calendar = icalendar.Calendar.from_ical(text)
    # An X- property's value is TEXT by default (RFC 5545 3.8.8.2), escaped like any other;
    # the parser hands X- properties back raw.
    assert str(calendar["X-WR-CALNAME"]) == "Dr Shah\\, Leeds\\; London"
    (event,) = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == ("Line one\nLine two\nLine three\nLine four, with; marks")
    assert str(event["LOCATION"]) == "A; B, C"


def test_control_characters_are_dropped_from_text():
    text = ics.calendar([_event(summary="Bad\x00 \x07name\x1b\tend")])
    assert "\x00" not in text and "\x07" not in text and "\x1b" not in text
    (event,) = _parse(text)
    assert str(event["SUMMARY"]) == "Bad name\tend"


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        # Spring forward in 2026: Sunday 29 March, 01:00 UTC.
        (datetime(2026, 3, 28, 10, 0, tzinfo=LONDON), datetime(2026, 3, 28, 10, 0, tzinfo=UTC)),
        (datetime(2026, 3, 29, 10, 0, tzinfo=LONDON), datetime(2026, 3, 29, 9, 0, tzinfo=UTC)),
        (datetime(2026, 3, 30, 10, 0, tzinfo=LONDON), datetime(2026, 3, 30, 9, 0, tzinfo=UTC)),
        # Fall back: Sunday 25 October, 01:00 UTC.
        (datetime(2026, 10, 24, 9, 0, tzinfo=LONDON), datetime(2026, 10, 24, 8, 0, tzinfo=UTC)),
        (datetime(2026, 10, 26, 9, 0, tzinfo=LONDON), datetime(2026, 10, 26, 9, 0, tzinfo=UTC)),
    ],
)
def test_times_are_written_in_utc_across_the_london_clock_change(local, utc):
    text = ics.calendar([_event(starts_at=local, ends_at=local + timedelta(minutes=30))])
    assert f"DTSTART:{utc:%Y%m%dT%H%M%S}Z\r\n" in text
    (event,) = _parse(text)
    assert event.decoded("DTSTART") == utc == local
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=30)
    assert event.decoded("DTSTAMP").tzinfo is not None


def test_status_sequence_uid_and_calendar_properties():
    stamp = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    text = ics.calendar(
        [
            _event(status="CANCELLED", sequence=3, stamp=stamp, url="https://x.test/a/1/"),
            _event(uid="appointment-2@glabella", sequence=1),
        ],
        name="Feed",
        refresh_minutes=60,
    )
    assert_rfc5545_lines(text)
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["METHOD"] == "PUBLISH"
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT60M" in text
    first, second = calendar.walk("VEVENT")
    assert first["UID"] == "appointment-1@glabella" and second["UID"] == "appointment-2@glabella"
    assert first["STATUS"] == "CANCELLED" and second["STATUS"] == "CONFIRMED"
    assert first.decoded("SEQUENCE") == 3 and second.decoded("SEQUENCE") == 1
    assert first.decoded("DTSTAMP") == stamp
    assert str(first["URL"]) == "https://x.test/a/1/"
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert text.endswith("END:VCALENDAR\r\n")


def test_an_empty_calendar_is_still_a_valid_calendar():
    text = ics.calendar([], name="Nothing yet")
    assert_rfc5545_lines(text)
    assert _parse(text) == []


def test_bad_events_are_refused_rather_than_written():
    with pytest.raises(ValueError, match="status"):
        ics.calendar([_event(status="MAYBE")])
    with pytest.raises(ValueError, match="aware"):
        ics.calendar([_event(starts_at=datetime(2026, 6, 1, 10), ends_at=datetime(2026, 6, 1, 11))])
    with pytest.raises(ValueError, match="end after"):
        ics.calendar([_event(ends_at=datetime(2026, 6, 1, 9, 0, tzinfo=LONDON))])
    with pytest.raises(ValueError, match="method"):
        ics.calendar([], method="DELETE")


def test_uid_names_the_installation_host_when_there_is_one(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    assert ics.appointment_uid(42) == "appointment-42@glabella"
    settings.ALLOWED_HOSTS = ["*", ".example.org", "Clinic.Example.org", "other.example.org"]
    assert ics.appointment_uid(42) == "appointment-42@clinic.example.org"
