"""FHIR search: query parameters -> filters per source, a stable page, a searchset Bundle.

Strict by default (FHIR's ``Prefer: handling=strict``): an unknown parameter, an unsupported
modifier or prefix, or a malformed value is a :class:`SearchError` (400, OperationOutcome),
never silently ignored. With ``Prefer: handling=lenient`` unknown parameters are ignored
(malformed values of known ones are still refused) and reported in the Bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import Q

from glabella.interop.fhir.kinds import DIGITS, DateParam, Kind, Source, parse_ref

DEFAULT_COUNT = 50
MAX_COUNT = 200
# Parameters about the result, not the filter: accepted (and those with no effect ignored).
RESULT_PARAMS = frozenset({"_count", "_offset", "_format"})
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
UNSUPPORTED_PREFIXES = ("sa", "eb", "ap")
DATE_RE = re.compile(
    r"^(?P<y>[0-9]{4})(-(?P<m>[0-9]{2})(-(?P<d>[0-9]{2})"
    r"(T(?P<t>[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
)


class SearchError(ValueError):
    """A parameter the server refuses: ``param`` names it; the message says what to do."""

    def __init__(self, param: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass
class Search:
    kind: Kind
    where: list[Q]  # one filter per source of the kind
    count: int = DEFAULT_COUNT
    offset: int = 0
    kept: list[tuple[str, str]] = field(default_factory=list)  # for the self/next links
    ignored: list[str] = field(default_factory=list)


# --- dates -----------------------------------------------------------------------------------


def _months_later(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    return date(day.year + y, m + 1, 1)


FIRST_YEAR, LAST_YEAR = 1900, 2199


def parse_date(value: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The search value's range [lo, hi): 2024 is the whole year, 2024-03 the month, a date the
    day (in TZ, the clinic's), a dateTime the second."""
    m = DATE_RE.match(value)
    if not m:
        raise ValueError("use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz")
    y = int(m["y"])
    if not FIRST_YEAR <= y <= LAST_YEAR:
        # Also keeps the arithmetic below clear of the calendar's ends (no overflow).
        raise ValueError(f"dates are searched between the years {FIRST_YEAR} and {LAST_YEAR}")
    try:
        if m["t"]:
            text = value.replace("Z", "+00:00")
            lo = datetime.fromisoformat(text)
            if lo.tzinfo is None:
                lo = lo.replace(tzinfo=tz)
            return lo, lo + timedelta(seconds=1)
        if m["d"]:
            start = date(y, int(m["m"]), int(m["d"]))
            end = start + timedelta(days=1)
        elif m["m"]:
            start = date(y, int(m["m"]), 1)
            end = _months_later(start, 1)
        else:
            start, end = date(y, 1, 1), date(y + 1, 1, 1)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value} is not a real date ({exc})") from None
    return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)


def date_filter(name: str, raw: str, field_name: str, kind: str, tz: ZoneInfo) -> Q:
    prefix, value = "eq", raw
    if raw[:2] in UNSUPPORTED_PREFIXES:
        raise SearchError(
            name, f"{name}: the prefix {raw[:2]!r} is not supported (use eq, ne, gt, lt, ge, le)"
        )
    if raw[:2] in PREFIXES:
        prefix, value = raw[:2], raw[2:]
    try:
        lo, hi = parse_date(value, tz)
    except ValueError as exc:
        raise SearchError(name, f"{name}={raw}: {exc}") from None
    if kind == "datetime":
        low, high = lo, hi
    else:
        low, high = lo.astimezone(tz).date(), hi.astimezone(tz).date()
        if high == low:
            high = low + timedelta(days=1)
    f = field_name
    if kind == "month":
        month_low = low.replace(day=1)
        month_high = high.replace(day=1)
        q = {
            "eq": Q(**{f"{f}__gte": low, f"{f}__lt": month_high}),
            "ge": Q(**{f"{f}__gte": month_low}),
            "gt": Q(**{f"{f}__gte": month_high}),
            "le": Q(**{f"{f}__lt": high}),
            "lt": Q(**{f"{f}__lt": low}),
        }
        q["ne"] = ~q["eq"]
        return q[prefix]
    q = {
        "eq": Q(**{f"{f}__gte": low, f"{f}__lt": high}),
        "ge": Q(**{f"{f}__gte": low}),
        "gt": Q(**{f"{f}__gte": high}),
        "le": Q(**{f"{f}__lt": high}),
        "lt": Q(**{f"{f}__lt": low}),
    }
    q["ne"] = ~q["eq"]
    return q[prefix]


# --- one parameter -> one filter per source --------------------------------------------------

NOTHING = Q(pk__in=[])


def _any_of(values: list[str], one: Any) -> Q:
    q = Q()
    first = True
    for v in values:
        part = one(v)
        q = part if first else (q | part)
        first = False
    return q


def _for_source(name: str, raw: str, source: Source, tz: ZoneInfo) -> Q | None:
    """The filter of NAME=RAW on SOURCE; None when SOURCE has no such parameter."""
    values = raw.split(",") if name != "date" and not name.endswith("date") else [raw]
    if any(v == "" for v in values):
        raise SearchError(name, f"{name}: give a value (an empty value matches nothing)")
    if name == "_id":
        qs = [source.parse_id(v) for v in values]
        found = [q for q in qs if q is not None]
        return _any_of(found, lambda q: q) if found else NOTHING
    if name in ("patient", "subject"):
        if not source.patient_field:
            return None

        def one(v: str) -> Q:
            try:
                return Q(**{source.patient_field: parse_ref(v, "Patient")})
            except ValueError as exc:
                raise SearchError(name, f"{name}={v}: {exc}") from None

        return _any_of(values, one)
    if name == "date":
        if not source.date_field:
            return None
        return date_filter(name, raw, source.date_field, source.date_kind, tz)
    handler = source.params.get(name)
    if handler is None:
        return None
    if isinstance(handler, DateParam):
        return date_filter(name, raw, handler.field, handler.kind, tz)
    try:
        return _any_of(values, handler)
    except ValueError as exc:
        raise SearchError(name, f"{name}={raw}: {exc}") from None


def _knows(name: str, source: Source) -> bool:
    return (
        name == "_id"
        or (name in ("patient", "subject") and source.patient_field is not None)
        or (name == "date" and source.date_field is not None)
        or name in source.params
    )


def _whole(name: str, raw: str, low: int, high: int) -> int:
    if not DIGITS.match(raw) and raw != "0":
        raise SearchError(name, f"{name}: give a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise SearchError(name, f"{name}: give a whole number from {low} to {high}")
    return value


def parse(kind: Kind, params: list[tuple[str, str]], tz: ZoneInfo, *, lenient: bool) -> Search:
    search = Search(kind=kind, where=[Q() for _ in kind.sources])
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if name == "_count":
            search.count = _whole(key, raw, 0, MAX_COUNT) if raw != "0" else 0
            search.kept.append((key, raw))
            continue
        if name == "_offset":
            search.offset = _whole(key, raw, 0, 10**9) if raw != "0" else 0
            continue
        if name == "_format":
            if raw not in JSON_FORMATS:
                raise SearchError(key, "_format: this server speaks JSON only (_format=json)")
            continue
        if modifier:
            if lenient:
                search.ignored.append(key)
                continue
            raise SearchError(
                key, f"{key}: modifiers (:{modifier}) are not supported", "not-supported"
            )
        if not any(_knows(name, source) for source in kind.sources):
            if lenient:
                search.ignored.append(key)
                continue
            supported = ", ".join(kind.search_params)
            raise SearchError(
                key,
                f"{kind.type} has no search parameter {key!r}. Supported: {supported}. "
                "(Send 'Prefer: handling=lenient' to have unknown parameters ignored.)",
                "not-supported",
            )
        for n, source in enumerate(kind.sources):
            # A parameter only another source of the kind knows excludes this source's rows.
            q = _for_source(name, raw, source, tz)
            search.where[n] &= NOTHING if q is None else q
        search.kept.append((key, raw))
    return search


# --- running it ------------------------------------------------------------------------------


def run(search: Search, organization: Any) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page of resources) in a stable order: source by source, by primary key."""
    kind = search.kind
    parts = [
        (source, kind.rows(source, organization, where=search.where[n]))
        for n, source in enumerate(kind.sources)
    ]
    counts = [qs.count() for _, qs in parts]
    total = sum(counts)
    page: list[dict[str, Any]] = []
    skip, want = search.offset, search.count
    for (source, qs), n in zip(parts, counts, strict=True):
        if want <= 0:
            break
        if skip >= n:
            skip -= n
            continue
        for row in qs[skip : skip + want]:
            page.append(kind.validate(source.build(row)))
        want -= min(n - skip, want)
        skip = 0
    return total, page


def links(base: str, search: Search, total: int) -> list[dict[str, str]]:
    def url(offset: int) -> str:
        query = [*search.kept]
        if not any(k == "_count" for k, _ in query):
            query.append(("_count", str(search.count)))
        if offset:
            query.append(("_offset", str(offset)))
        return f"{base}?{urlencode(query)}"

    out = [{"relation": "self", "url": url(search.offset)}]
    if search.count and search.offset + search.count < total:
        out.append({"relation": "next", "url": url(search.offset + search.count)})
    if search.offset > 0:
        out.append({"relation": "previous", "url": url(max(0, search.offset - search.count))})
    return out
