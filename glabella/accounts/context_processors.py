from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from glabella.accounts.models import Membership
from glabella.accounts.roles import PERMISSIONS, can

# role -> {"patient__view_clinical": True, ...}: what ``may`` answers, worked out once a role.
_TABLES: dict[str | None, dict[str, bool]] = {}


def _table(role: str | None) -> dict[str, bool]:
    table = _TABLES.get(role)
    if table is None:
        table = _TABLES[role] = {p.replace(".", "__"): can(role, p) for p in PERMISSIONS}
    return table


class _Perms:
    """Template helper: ``{% if may.patient__view_clinical %}``. The template finds the answer
    by key, its first try (an unknown permission is no key and no attribute: nothing)."""

    __slots__ = ("_answers", "role")

    def __init__(self, role: str | None) -> None:
        self.role = role
        self._answers = _table(role)

    def __getitem__(self, name: str) -> bool:
        return self._answers[name]

    def __getattr__(self, name: str) -> bool:
        permission = name.replace("__", ".")
        if permission not in PERMISSIONS:
            raise AttributeError(name)
        return can(self.role, permission)


def membership(request: HttpRequest) -> dict[str, Any]:
    m = getattr(request, "membership", None)
    # The signed-in member's other clinics, read with the membership by MembershipMiddleware.
    # Named for the menu alone: a page about another member (the team page) shows *their*
    # other clinics under a name of its own.
    other: list[Membership] = getattr(request, "other_memberships", []) if m is not None else []
    return {
        "membership": m,
        "may": _Perms(m.role if m else None),
        "my_other_memberships": other,
        "idle_seconds": settings.GLABELLA_IDLE_SECONDS,
    }
