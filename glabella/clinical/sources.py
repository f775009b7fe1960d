"""The sources every clinical figure cites, by id (``"S1"`` ... ``"S105"``).

Carried from section 7 of the clinical reference (``reference/sources.json``). A figure anywhere in
the clinical core cites one or more of these ids; :func:`get` resolves an id to its citation so a
clinician can see where a number comes from.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from functools import cache

from glabella.clinical import _reference

__all__ = ["Source", "UnknownSource", "all", "exists", "get"]


@dataclass(frozen=True, slots=True)
class Source:
    """One cited source.

    ``url`` is the complete web address written in the citation (with ``https://``), or ``None``
    when the citation gives none (journal references, bare domains, elided paths).
    """

    id: str
    citation: str
    url: str | None


class UnknownSource(KeyError):
    """A source id that is not in the reference's source list."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Unknown source"


@cache
def _by_id() -> dict[str, Source]:
    data = _reference.load("sources")
    result: dict[str, Source] = {}
    for row in data["sources"]:
        source = Source(id=str(row["id"]), citation=str(row["citation"]), url=row["url"])
        if source.id in result:
            raise ValueError(f"Duplicate source id {source.id} in reference/sources.json")
        result[source.id] = source
    return result


def get(source_id: str) -> Source:
    """Return the source with this id (e.g. ``"S1"``); unknown ids raise :class:`UnknownSource`."""
    try:
        return _by_id()[source_id]
    except KeyError:
        raise UnknownSource(
            f"Unknown source id {source_id!r}: not in the clinical reference's source list "
            "(reference/sources.json)"
        ) from None


def exists(source_id: str) -> bool:
    """Whether ``source_id`` names a source in the reference."""
    return source_id in _by_id()


def all() -> builtins.list[Source]:
    """Every source, in reference order (S1, S2, ...)."""
    return builtins.list(_by_id().values())
