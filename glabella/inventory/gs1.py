"""Reading the GS1 code on a toxin carton: GTIN, lot, expiry (and serial, when there is one).

Cartons carry a GS1 DataMatrix (or GS1-128) holding an *element string*: application
identifiers (AI) followed by their data. The ones that matter here:

    (01) GTIN, 14 digits with a check digit      (17) expiry date, YYMMDD
    (10) batch / lot number, up to 20 characters  (21) serial number (EU FMD packs)

What a scanner sends varies, and every form below is read by the same function:

- ``]d2010950…17271231 10ABC123\\x1d21XYZ``: a symbology identifier first (``]d2`` DataMatrix,
  ``]C1`` GS1-128, ``]Q3`` QR, ``]e0`` DataBar), then the element string; variable-length fields
  (lot, serial) end with FNC1, sent as the group separator ``\\x1d`` (or ``␝`` by some scanners);
- ``(01)09501234567891(17)271231(10)ABC123``: the human-readable line printed under the code,
  typed by hand;
- ``https://id.gs1.org/01/09501234567891/10/ABC123?17=271231``: a GS1 Digital Link QR code.

Parsing is done by `biip` (maintained, verifies the GTIN check digit and the date). An expiry
day of ``00`` means the last day of that month (GS1 General Specifications 3.4.7), which biip
applies. Lot numbers are stored in upper case, the way the charting page stores typed ones.

Anything that cannot be read raises ``ValidationError({"barcode": ...})`` whose message says
what was wrong and to type the lot and expiry instead; the caller writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import biip
from biip.gs1_messages import GS1Message
from django.core.exceptions import ValidationError

__all__ = ["CartonCode", "normalize_lot", "parse"]

# FNC1 arrives as the ASCII group separator; a few scanners send its visible symbol instead.
SEPARATORS = ("\x1d", "\u241d")
_CONFIG = biip.ParseConfig(separator_chars=SEPARATORS)
_AI_NAMES = {"01": "product code", "10": "lot number", "17": "expiry date", "21": "serial number"}


@dataclass(frozen=True, slots=True)
class CartonCode:
    """What a carton's code says. ``gtin`` is always the 14-digit form."""

    gtin: str
    lot_number: str
    expiry: date
    serial: str = ""


def normalize_lot(value: object) -> str:
    """A lot number as stored: surrounding spaces removed, upper case."""
    return str(value or "").strip().upper()


def _unreadable(why: str) -> ValidationError:
    return ValidationError(
        {"barcode": f"This barcode could not be read: {why}; type the lot and expiry instead."}
    )


def parse(barcode: str) -> CartonCode:
    """Read a scanned or typed GS1 element string. Raises ``ValidationError`` when it can't."""
    raw = str(barcode or "").strip()
    # A scanner in keyboard mode may send FNC1 first; it means nothing there.
    raw = raw.lstrip("".join(SEPARATORS))
    if not raw:
        raise _unreadable("it is empty")
    try:
        if raw.startswith("("):
            message = GS1Message.parse_hri(raw, config=_CONFIG)
            elements = message.element_strings
        else:
            result = biip.parse(raw, config=_CONFIG)
            if result.gs1_message is not None:
                elements = result.gs1_message.element_strings
            elif result.gs1_digital_link_uri is not None:
                elements = result.gs1_digital_link_uri.element_strings
            elif result.gtin is not None:
                raise _unreadable(
                    f"it holds only the product code (GTIN {result.gtin.as_gtin_14()}), not the "
                    "lot and expiry. Scan the square 2D code on the carton"
                )
            else:
                reason = (
                    result.gs1_message_error
                    or result.gs1_digital_link_uri_error
                    or result.gtin_error
                    or "it is not a GS1 code"
                )
                raise _unreadable(_plain(reason))
    except (biip.BiipException, ValueError) as exc:
        raise _unreadable(_plain(str(exc))) from None

    gtin_element = elements.get(ai="01")
    if gtin_element is None:
        raise _unreadable("it has no product code (GTIN, AI 01)")
    if gtin_element.gtin is None:
        raise _unreadable(_plain(gtin_element.gtin_error or "the product code is not valid"))
    lot_element = elements.get(ai="10")
    if lot_element is None or not lot_element.value.strip():
        raise _unreadable("it has no lot number (AI 10)")
    expiry_element = elements.get(ai="17")
    if expiry_element is None or expiry_element.date is None:
        raise _unreadable("it has no expiry date (AI 17)")
    serial_element = elements.get(ai="21")
    return CartonCode(
        gtin=gtin_element.gtin.as_gtin_14(),
        lot_number=normalize_lot(lot_element.value),
        expiry=expiry_element.date,
        serial=serial_element.value if serial_element is not None else "",
    )


def _plain(reason: str) -> str:
    """biip's message, without a trailing full stop (ours follows it)."""
    reason = reason.strip().rstrip(".")
    lower = reason.lower()
    if "check digit" in lower:
        return f"the product code's check digit is wrong ({reason})"
    if lower.startswith("failed to get gs1 application identifier"):
        return f"it is not a GS1 code ({reason})"
    bad_field = re.match(r"Failed to match '(.*)' with GS1 AI \((\d+)\)", reason)
    if bad_field:
        data, ai = bad_field.groups()
        name = _AI_NAMES.get(ai, "a field")
        return f"the {name} (AI {ai}) in “{data}” is not in the right format"
    return reason
