"""``|date`` (glabella/web/templatetags/dates.py, a template builtin) writes what Django's own
filter writes, for every kind of value and format, in every time zone."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.template import Context, Engine, Template, engines
from django.utils import timezone
from django.utils.safestring import SafeString

from glabella.web.templatetags import dates

FORMATS = ["d/m/Y", "d/m/Y H:i", "H:i", "l d/m/Y", "F Y", "D d/m/Y H:i", "j F Y", "Y", None]
ZONES = ["UTC", "Europe/London", "Pacific/Kiritimati", "America/St_Johns", "Pacific/Pago_Pago"]


def _values() -> list[object]:
    moments = [
        datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC),  # Europe/London's clocks go forward
        datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
        datetime(7, 1, 2, 3, 4, tzinfo=UTC),
    ]
    return [
        *moments,
        *(m.replace(tzinfo=None) for m in moments),  # naive: written as they are
        *(m.astimezone(ZoneInfo("Asia/Kolkata")) for m in moments[:3]),
        date(2026, 3, 4),
        date(999, 12, 31),
        date(5, 1, 9),
        time(9, 5),
        None,
        "",
        "2026-03-04",
        SafeString("04/03/2026"),
        0,
        timedelta(days=1),
    ]


def _template(fmt: str | None) -> str:
    arg = "" if fmt is None else f':"{fmt}"'
    return "{{ v|date" + arg + " }}"


def test_the_builtin_is_the_date_filter_of_every_template():
    filters = {}
    for library in engines["django"].engine.template_builtins:
        filters.update(library.filters)
    assert filters["date"] is dates.date


def test_it_writes_what_djangos_date_filter_writes():
    plain = Engine(builtins=[])  # Django's filters only
    checked = 0
    for zone, value, fmt in itertools.product(ZONES, _values(), FORMATS):
        source = _template(fmt)
        with timezone.override(ZoneInfo(zone)):
            try:
                expected = plain.from_string(source).render(Context({"v": value}))
            except Exception as exc:  # a time letter for a date: the same error both ways
                expected = type(exc).__name__
            try:
                ours = Template(source).render(Context({"v": value}))
            except Exception as exc:
                ours = type(exc).__name__
        assert ours == expected, (zone, value, fmt)
        checked += 1
    assert checked == len(ZONES) * len(_values()) * len(FORMATS)


def test_the_fast_formats_are_written_without_djangos_formatter(monkeypatch):
    """The three formats of the pages do not reach Django's filter (else nothing is gained);
    any other does."""
    calls = []
    monkeypatch.setattr(dates, "django_date", lambda v, a: calls.append(a) or "django")
    moment = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert dates.date(moment, "d/m/Y") == "04/03/2026"
    assert dates.date(moment, "d/m/Y H:i") == "04/03/2026 05:06"
    assert dates.date(moment, "H:i") == "05:06"
    assert dates.date(date(2026, 3, 4), "d/m/Y") == "04/03/2026"
    assert calls == []
    assert dates.date(date(2026, 3, 4), "d/m/Y H:i") == "django"
    assert dates.date(moment, "F Y") == "django" and dates.date(None, "d/m/Y") == "django"
    assert calls == ["d/m/Y H:i", "F Y", "d/m/Y"]
