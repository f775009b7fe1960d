"""Access to the shipped clinical reference data (``glabella/clinical/reference/*.json``).

The JSON files are carried over from ``/work/shared/reference/clinical.json``; every figure in
them keeps its source ids and its status. This module only reads them: it never edits a figure.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

__all__ = ["Status", "load", "status"]

Status = Literal["confirmed", "secondary", "unconfirmed"]
"""How well a figure is supported.

- ``confirmed``: read in the primary source (a label / prescribing information).
- ``secondary``: from a secondary source or derived from primary figures by arithmetic.
- ``unconfirmed``: not verified in a primary source; shipped, but marked so.
"""

_STATUS_MAP: dict[str, Status] = {
    "confirmed": "confirmed",
    "secondary_or_derived": "secondary",
    "unconfirmed": "unconfirmed",
}


def status(raw: str) -> Status:
    """Map a status string from the reference to a :data:`Status`.

    ``"confirmed"`` -> ``"confirmed"``, ``"secondary_or_derived"`` -> ``"secondary"``,
    ``"unconfirmed"`` -> ``"unconfirmed"``. Anything else raises ``ValueError``: an unknown
    status must never be silently treated as confirmed.
    """
    try:
        return _STATUS_MAP[raw]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown reference status {raw!r}: expected one of "
            "'confirmed', 'secondary_or_derived', 'unconfirmed'"
        ) from None


@cache
def _load_text(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"Invalid reference name {name!r}")
    path = resources.files("glabella.clinical").joinpath("reference", f"{name}.json")
    return path.read_text(encoding="utf-8")


def load(name: str) -> Any:
    """Return the parsed content of ``reference/<name>.json``.

    Numbers that are not integers are parsed as :class:`decimal.Decimal`, never float.
    The file is read once (cached); each call returns a fresh parsed copy so that callers
    cannot mutate shared state.
    """
    return json.loads(_load_text(name), parse_float=Decimal)
