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
    other: list[Membership] = []
    if m is not None:
        other = list(
            Membership.objects.filter(user=m.user, is_active=True)
            .exclude(pk=m.pk)
            .select_related("clinic")
        )
    return {
        "membership": m,
        "may": _Perms(m.role if m else None),
        "other_memberships": other,
        "idle_seconds": settings.GLABELLA_IDLE_SECONDS,
    }
