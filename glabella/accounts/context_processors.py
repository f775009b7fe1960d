from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from glabella.accounts.models import Membership
from glabella.accounts.roles import PERMISSIONS, can


class _Perms:
    """Template helper: ``{% if perms_for.patient__view_clinical %}``."""

    def __init__(self, role: str | None) -> None:
        self.role = role

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
