"""Reading one cell of an imported file: dates, numbers, yes/no and the coded values.

Each function takes the cell's text and returns the value, or raises :class:`BadValue` with a
sentence a nurse can act on. Nothing is guessed: a date that could be read two ways, a number
with a thousands separator, a product that is not in the catalogue are refused, with what to
write instead.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from glabella.charting.models import Depth, Status
from glabella.clinical import catalogue, indications
from glabella.patients.models import Channel, Sex


class BadValue(ValueError):
    """A cell that cannot be read; the message says why and what to write."""


def norm(value: str) -> str:
    """Casefolded, with runs of anything but letters and digits made one space."""
    return re.sub(r"[^0-9a-z]+", " ", value.casefold()).strip()


_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$")


def parse_date(text: str, *, day_first: bool = False) -> date:
    """``YYYY-MM-DD`` always; ``DD/MM/YYYY`` (also with ``.`` or ``-``) only with DAY_FIRST.

    A time after the date (``2024-03-01 10:30``) is ignored. ``03/04/2024`` without DAY_FIRST
    is refused: it is 3 April in Europe and March 4 in the United States.
    """
    text = text.strip()
    m = _ISO.match(text)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m = _DMY.match(text)
        if not m:
            raise BadValue(f"“{text}” is not a date. Write dates as YYYY-MM-DD (e.g. 1984-03-27).")
        if not day_first:
            raise BadValue(
                f"“{text}” could be read two ways (day/month or month/day). Write dates as "
                "YYYY-MM-DD, or, if the whole file writes the day first, import it with "
                "“dates day first” (--day-first)."
            )
        d, mo, y = (int(g) for g in m.groups())
    try:
        return date(y, mo, d)
    except ValueError:
        raise BadValue(f"“{text}” is not a real date (check the day and the month).") from None


_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d{1,2}$")


def parse_decimal(text: str, what: str = "number") -> Decimal:
    """A finite Decimal. A dot is the decimal mark; ``2,5`` is accepted as 2.5 (one comma,
    one or two digits after it); ``1,000`` is refused (a thousands separator or a decimal?)."""
    raw = text.strip().replace("\u00a0", "").replace(" ", "")
    if _COMMA_DECIMAL.match(raw):
        raw = raw.replace(",", ".")
    elif "," in raw:
        raise BadValue(
            f"“{text.strip()}” is not a {what}: write it with a dot for decimals and no "
            "thousands separator (e.g. 1000 or 2.5)."
        )
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BadValue(f"“{text.strip()}” is not a {what}.") from None
    if not value.is_finite():
        raise BadValue(f"“{text.strip()}” is not a {what}.")
    return value


_YES = {"yes", "y", "true", "t", "1", "x", "ja", "oui", "si"}
_NO = {"no", "n", "false", "f", "0", "nein", "non"}


def parse_bool(text: str) -> bool:
    t = norm(text)
    if t in _YES:
        return True
    if t in _NO or t == "":
        return False
    raise BadValue(f"“{text.strip()}” is not yes or no. Write yes or no.")


_SEX = {
    "female": Sex.FEMALE,
    "f": Sex.FEMALE,
    "woman": Sex.FEMALE,
    "male": Sex.MALE,
    "m": Sex.MALE,
    "man": Sex.MALE,
    "other": Sex.OTHER,
    "o": Sex.OTHER,
    "diverse": Sex.OTHER,
    "unknown": Sex.UNKNOWN,
    "u": Sex.UNKNOWN,
    "not recorded": Sex.UNKNOWN,
    "not known": Sex.UNKNOWN,
    "": Sex.UNKNOWN,
}


def parse_sex(text: str) -> str:
    try:
        return _SEX[norm(text)]
    except KeyError:
        raise BadValue(
            f"“{text.strip()}” is not a sex Glabella records. Write female, male, other or "
            "unknown (or leave it empty)."
        ) from None


_CHANNEL = {
    "email": Channel.EMAIL,
    "e mail": Channel.EMAIL,
    "mail": Channel.EMAIL,
    "sms": Channel.SMS,
    "text": Channel.SMS,
    "text message": Channel.SMS,
    "phone": Channel.PHONE,
    "phone call": Channel.PHONE,
    "call": Channel.PHONE,
    "telephone": Channel.PHONE,
    "none": Channel.NONE,
    "no reminders": Channel.NONE,
    "": Channel.EMAIL,
}


def parse_channel(text: str) -> str:
    try:
        return _CHANNEL[norm(text)]
    except KeyError:
        raise BadValue(
            f"“{text.strip()}” is not a way to send reminders. Write email, sms, phone or none."
        ) from None


def _products() -> dict[str, str]:
    known: dict[str, str] = {}
    for p in catalogue.products():
        known[norm(p.id)] = p.id
        known[norm(p.brand)] = p.id
    return known


def valid_products() -> str:
    return ", ".join(f"{p.id} ({p.brand})" for p in catalogue.products())


def parse_product(text: str) -> str:
    """A catalogue product id, from its id or its brand name (``Botox Cosmetic``). Nothing is
    mapped between products: another brand of the same toxin is a different product."""
    pid = _products().get(norm(text))
    if pid is None:
        raise BadValue(
            f"“{text.strip()}” is not a product Glabella knows. Use one of: {valid_products()}."
        )
    return pid


def _indications() -> dict[str, str]:
    known: dict[str, str] = {}
    for iid in indications.INDICATION_IDS:
        known[norm(iid)] = iid
        known[norm(indications.display_name(iid))] = iid
    return known


def parse_indication(text: str) -> str:
    """An indication id (``glabellar-lines``) or its name; empty is ``other``."""
    if not text.strip():
        return "other"
    iid = _indications().get(norm(text))
    if iid is None:
        raise BadValue(
            f"“{text.strip()}” is not an indication Glabella knows. Use one of: "
            + ", ".join(indications.INDICATION_IDS)
            + "."
        )
    return iid


_SIDE = {
    "l": "L",
    "left": "L",
    "r": "R",
    "right": "R",
    "mid": "mid",
    "midline": "mid",
    "middle": "mid",
    "centre": "mid",
    "center": "mid",
    "central": "mid",
    "m": "mid",
    "": "",
}


def parse_side(text: str) -> str:
    """L, R or mid; empty when the source did not say."""
    try:
        return _SIDE[norm(text)]
    except KeyError:
        raise BadValue(
            f"“{text.strip()}” is not a side. Write L, R or mid (one point per side: a row "
            "for each), or leave it empty if the source did not record it."
        ) from None


_DEPTH = {
    "im": Depth.IM,
    "intramuscular": Depth.IM,
    "id": Depth.ID,
    "intradermal": Depth.ID,
    "sc": Depth.SC,
    "subcutaneous": Depth.SC,
    "": "",
}


def parse_depth(text: str) -> str:
    try:
        return _DEPTH[norm(text)]
    except KeyError:
        raise BadValue(
            f"“{text.strip()}” is not a depth. Write IM (intramuscular), ID (intradermal) or "
            "SC (subcutaneous)."
        ) from None


_STATUS = {
    "": Status.SIGNED,
    "signed": Status.SIGNED,
    "completed": Status.SIGNED,
    "complete": Status.SIGNED,
    "done": Status.SIGNED,
    "finalised": Status.SIGNED,
    "finalized": Status.SIGNED,
    "amended": Status.AMENDED,
    "signed amended": Status.AMENDED,
    "voided": Status.VOIDED,
    "void": Status.VOIDED,
    "entered in error": Status.VOIDED,
    "draft": Status.DRAFT,
}


def parse_status(text: str) -> str:
    try:
        return _STATUS[norm(text)]
    except KeyError:
        raise BadValue(
            f"“{text.strip()}” is not a treatment status Glabella imports. Write signed "
            "(a treatment that was given), amended, voided (entered in error) or draft."
        ) from None
