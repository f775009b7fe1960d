"""``|date`` for the three formats the pages write dozens of times a page ("d/m/Y",
"d/m/Y H:i", "H:i"), written directly; every other format and every other kind of value goes
to Django's own ``date`` filter.

A template builtin (settings.TEMPLATES "builtins"), so it stands in for Django's filter of the
same name in every template without a ``{% load %}``. Django's filter looks the format up,
builds a formatter and walks the format letter by letter: a good share of a date's cost on a
page that shows twenty. These formats are numbers only (no month names), so the language
does not change them. The value comes already in the current time zone, as for Django's
filter (``expects_localtime``). test_dates compares the two for dates, naive and aware
datetimes across time zones, and every other kind of value.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime as DateTime
from typing import Any

from django import template
from django.template.defaultfilters import date as django_date

register = template.Library()


def _dmy(value: Date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


@register.filter(expects_localtime=True, is_safe=False)
def date(value: Any, arg: str | None = None) -> str:
    """What Django's ``|date:arg`` writes."""
    kind = type(value)
    if kind is DateTime:
        if arg == "d/m/Y":
            return _dmy(value)
        if arg == "d/m/Y H:i":
            return f"{_dmy(value)} {value.hour:02d}:{value.minute:02d}"
        if arg == "H:i":
            return f"{value.hour:02d}:{value.minute:02d}"
    elif kind is Date and arg == "d/m/Y":
        return _dmy(value)
    return str(django_date(value, arg))
