"""What every API router shares: one convention for bodies, dates, numbers, paging, lookups
and errors. A router uses these and nothing of its own for the same job.

- **Bodies** are :class:`StrictIn`: an unknown field is refused (a misspelt field would be
  lost), no type is guessed (``"5"`` is not 5, ``1`` is not ``true``), text is printable.
- **Dates** are :data:`Day` (the text ``YYYY-MM-DD``), **times** :data:`Moment` (ISO 8601; no
  zone: the clinic's wall-clock time); both between 1900 and 2199.
- **Units** are :data:`Units`: a JSON number, never text, more than zero, at most two
  decimals, at most :data:`MAX_UNITS`; millilitres, hours and diagram coordinates follow the
  same rule (:data:`Millilitres`, :data:`Hours`, :data:`Coordinate`). They become ``Decimal``
  through their text, never float arithmetic. **Answers** give every such figure as an exact
  decimal string (:func:`units_text`: ``"20.00"``), so that no client reads 0.1 + 0.2.
- **Lists** take :class:`Paging` (``?limit=&offset=``) and answer :class:`Page` (``{count,
  limit, offset, items}``) made by :func:`page`.
- **Lookups** go through :func:`get_or_404` on a queryset already scoped to the caller's
  organization: another organization's record is simply not found, never forbidden.
- **Errors** are :class:`ErrorOut`: a sentence a person can act on, the field it concerns
  (when there is one), and every field problem (``core.py`` maps every exception to it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.utils import timezone
from ninja import Path, Schema
from pydantic import BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema, field_validator

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic
from glabella.clinical import indications
from glabella.patients.models import Patient

NOT_FOUND = "Not found. There is no such record in your organization."

# --- ids ----------------------------------------------------------------------------------------

# Database ids: anything else (0, negative, beyond a 64-bit integer) is refused by the schema,
# never sent to the database.
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A record's id in the path."""
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A record's id in a body or a query."""


# --- text ---------------------------------------------------------------------------------------


def _printable(value: Any) -> Any:
    """Refuse text no person types and no database stores (NUL, lone surrogates)."""
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("Remove the invisible control character (NUL) from this text.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("This text has a broken character; type it again.") from None
    return value


class StrictIn(Schema):
    """Request bodies: unknown fields refused, no type guessed (``"5"`` is not 5), text
    printable."""

    model_config = ConfigDict(extra="forbid", strict=True)
    _text = field_validator("*", mode="before")(_printable)


Text = Annotated[str, Field(max_length=300)]
LongText = Annotated[str, Field(max_length=5000)]


# --- dates and times ----------------------------------------------------------------------------

FIRST_YEAR, LAST_YEAR = 1900, 2199
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _in_range(day: date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"Use a date between {FIRST_YEAR} and {LAST_YEAR}.")


def _iso_day(value: Any) -> date:
    if not isinstance(value, str) or not _DAY.fullmatch(value.strip()):
        raise ValueError("Enter the date as YYYY-MM-DD.")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()} is not a date on the calendar.") from None
    _in_range(day)
    return day


def _iso_moment(value: Any) -> datetime:
    if not isinstance(value, str) or not _DAY.match(value.strip()) or "T" not in value.upper():
        raise ValueError("Enter the date and time as YYYY-MM-DDTHH:MM (ISO 8601).")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()} is not a date and time (ISO 8601).") from None
    _in_range(moment.date())
    return moment


Day = Annotated[
    date,
    Strict(False),
    BeforeValidator(_iso_day),
    WithJsonSchema({"type": "string", "format": "date", "description": "YYYY-MM-DD"}),
]
"""A calendar day: the text YYYY-MM-DD only (between 1900 and 2199)."""

Moment = Annotated[
    datetime,
    Strict(False),
    BeforeValidator(_iso_moment),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A date and time: ISO 8601 text only; without a zone, the clinic's wall-clock time."""


# --- exact numbers: units, millilitres, hours, coordinates ---------------------------------------

# The one ceiling of units anywhere in the API: no single injection point (nor a vial's
# waste) can hold more than the largest vial of any product (Myobloc, 10,000 U). It is the
# clinical core's own sanity guard (reference/limits.json "absurd_units_per_point", with its
# sources), so every product's doses pass; whether a figure is plausible for *this* product is
# the services' check (charting's per-point maximum, patients.services.check_plausible_units).
MAX_UNITS = indications.limits().units_guard.max_units

_CENT = Decimal("0.01")


def _exact_number(
    value: Any,
    *,
    what: str,
    places: int,
    low: Decimal,
    high: Decimal,
    above_low: bool,
    example: str,
    too_high: str,
) -> Decimal:
    """A JSON number (never text, never a boolean) as an exact Decimal, through its text."""
    if isinstance(value, str):
        raise ValueError(f"{what} must be a number, for example {example} — not text.")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{what} must be a number, for example {example}.")
    exact = Decimal(str(value))  # 2.5 -> Decimal("2.5"), never 2.4999...
    if exact.is_nan():
        raise ValueError(f"{what} must be an ordinary number, for example {example}.")
    if exact > high:  # Infinity too (JSON 1e400)
        raise ValueError(too_high)
    if exact < low or (above_low and exact == low):
        raise ValueError(
            f"{what} must be more than zero." if above_low else f"{what} must be {low} or more."
        )
    step = Decimal(1).scaleb(-places)
    if exact != exact.quantize(step):
        decimals = "one decimal place" if places == 1 else f"{places} decimal places"
        raise ValueError(f"{what} can have at most {decimals}.")
    return exact.quantize(step)  # 84 -> 84.00: as the database keeps it


def exact_number(
    what: str,
    *,
    high: Decimal | int,
    low: Decimal | int = 0,
    above_low: bool = False,
    places: int = 2,
    example: str = "2.5",
    too_high: str = "",
    description: str = "",
) -> Any:
    """The type of a JSON number field refused in words (WHAT names it in the message)."""
    high, low = Decimal(high), Decimal(low)
    check = {
        "what": what,
        "places": places,
        "low": low,
        "high": high,
        "above_low": above_low,
        "example": example,
        "too_high": too_high or f"{what} can be at most {high}.",
    }
    schema: dict[str, Any] = {
        "type": "number",
        "maximum": int(high) if high == int(high) else float(high),
    }
    schema["exclusiveMinimum" if above_low else "minimum"] = int(low)
    schema["description"] = description or f"A JSON number (not text), at most {places} decimals."
    return Annotated[
        Decimal,
        Strict(False),
        BeforeValidator(lambda value: _exact_number(value, **check)),
        WithJsonSchema(schema),
    ]


Units = exact_number(
    "Units",
    high=MAX_UNITS,
    above_low=True,
    too_high=f"That is not a plausible dose: more than the largest vial of any product holds "
    f"({MAX_UNITS} U). Check the figure.",
    description=f"Units of the product: a JSON number (not text) above 0 and at most "
    f"{MAX_UNITS}, with at most two decimals, e.g. 2.5. Answers give units as exact decimal "
    'strings ("2.50").',
)
Millilitres = exact_number(
    "The volume",
    high=100,
    description="Millilitres (0 for a ready-to-use product): a JSON number, at most two decimals.",
)
Hours = exact_number("Hours", high=24, places=1, example="6.5")
Coordinate = exact_number(
    "A position",
    high=100,
    example="38",
    description="Percent of the diagram's width (x) or height (y): a JSON number from 0 to 100.",
)


def units_text(value: Decimal | float | int | None) -> str | None:
    """Units (or any exact figure) for an answer: a decimal string with two places
    ("20.00"); a database sum that came back as a float is read through its text."""
    if value is None:
        return None
    return format(Decimal(str(value)).quantize(_CENT), "f")


# --- paging -------------------------------------------------------------------------------------

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000

T = TypeVar("T")


class Page(Schema, Generic[T]):
    """One page of a list: ``count`` is the total, whatever the page."""

    count: int
    limit: int
    offset: int
    items: list[T]


class Paging(Schema):
    """``?limit=&offset=`` of every list (the filters of a list extend it)."""

    _text = field_validator("*", mode="before")(_printable)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page (1-200).")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip.")


class DayRange(Paging):
    """A list between two calendar days (both included), ``?from=&to=``."""

    date_from: Day | None = Field(None, alias="from", description="First day, YYYY-MM-DD.")
    date_to: Day | None = Field(None, alias="to", description="Last day, YYYY-MM-DD.")

    def check_days(self) -> None:
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ApiError("“to” is before “from”.", field="to", status=422)


def page(
    rows: QuerySet[Any] | Sequence[Any],
    paging: Paging,
    convert: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """The page of ROWS PAGING asks for (a queryset is counted and sliced in the database),
    each item passed through CONVERT."""
    limit, offset = paging.limit, paging.offset
    if isinstance(rows, QuerySet):
        count = rows.count()
        items = list(rows[offset : offset + limit]) if offset < count else []
    else:
        count = len(rows)
        items = list(rows[offset : offset + limit])
    if convert is not None:
        items = [convert(item) for item in items]
    return {"count": count, "limit": limit, "offset": offset, "items": items}


# --- errors -------------------------------------------------------------------------------------


class FieldProblem(Schema):
    field: str | None = None
    message: str


class ErrorOut(Schema):
    message: str
    field: str | None = None
    errors: list[FieldProblem] = []


class ApiError(Exception):
    """Raise from a router: becomes ``ErrorOut`` with STATUS."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.errors = errors or ([{"field": field, "message": message}] if field else [])
        self.extra = extra or {}


# The error answers every operation may give, for the OpenAPI document.
ERRORS: dict[int, type[ErrorOut]] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}


# --- the caller ---------------------------------------------------------------------------------


def actor(request: Any) -> Actor:
    """The authenticated caller (set by the bearer-token auth of ``core.api``)."""
    found = getattr(request, "auth", None)
    if not isinstance(found, Actor):
        raise ApiError("Sign in with an API token.", status=401)
    return found


def require(request: Any, permission: str) -> Actor:
    """The caller, if their role has PERMISSION; otherwise a 403 in words."""
    who = actor(request)
    if not who.can(permission):
        raise ApiError("Your role does not allow this.", status=403)
    return who


def today_at(who: Actor) -> date:
    """Today at the caller's clinic (expiry and diary days are the clinic's calendar days)."""
    zone = who.clinic.timezone if who.clinic is not None else ""
    return timezone.localtime(timezone.now(), ZoneInfo(zone or "UTC")).date()


def user_label(user: Any) -> str | None:
    return user.email if user is not None else None


# --- lookups: within the caller's organization, or a 404 -----------------------------------------

M = TypeVar("M", bound=Model)


def get_or_404(queryset: QuerySet[M], pk: Any, field: str | None = None) -> M:
    """PK in QUERYSET (already scoped to the caller's organization), or a 404 that names
    FIELD when the id came in a body or a query. Whether it exists elsewhere is never said."""
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise ApiError(NOT_FOUND, field=field, status=404)
    return found


def patient_or_404(who: Actor, pk: int, field: str | None = None) -> Patient:
    """The patient with this id in the caller's organization, or a 404."""
    return get_or_404(Patient.objects.for_org(who.organization), pk, field)


def clinic_or_404(who: Actor, pk: int, field: str | None = None) -> Clinic:
    """A clinic of the caller's organization, or a 404."""
    return get_or_404(Clinic.objects.filter(organization=who.organization), pk, field)


def clinic_or_default(who: Actor, clinic_id: int | None, field: str = "clinic_id") -> Clinic:
    """The clinic named (of the caller's organization: else a 404), or the token's own."""
    if clinic_id is None:
        if who.clinic is None:
            raise ValidationError({field: "Choose the clinic."})
        return who.clinic
    return clinic_or_404(who, clinic_id, field)
