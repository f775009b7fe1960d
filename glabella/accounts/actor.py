"""Who is acting, for whom, from where: what every service needs to scope and audit a write."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from glabella.accounts.roles import can

if TYPE_CHECKING:
    from django.http import HttpRequest

    from glabella.accounts.models import Clinic, Organization, User


@dataclass(frozen=True)
class Actor:
    organization: Organization
    user: User | None
    clinic: Clinic | None
    role: str | None
    ip: str = ""
    request_id: str = ""
    via: str = "web"

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        membership = getattr(request, "membership", None)
        if membership is None:
            raise PermissionDenied("You have no active role at any clinic.")
        return cls(
            organization=membership.organization,
            user=membership.user,
            clinic=membership.clinic,
            role=membership.role,
            ip=client_ip(request),
            request_id=getattr(request, "request_id", ""),
        )

    @classmethod
    def system(cls, organization: Organization, via: str = "command") -> Actor:
        """An actor for commands and jobs: the organization's own system, every right."""
        return cls(organization=organization, user=None, clinic=None, role="owner", via=via)

    def can(self, permission: str) -> bool:
        return can(self.role, permission)

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise PermissionDenied("Your role does not allow this.")

    def today(self) -> date:
        """Today where the actor works: the calendar day at their clinic (its time zone), else
        the server's. Treatment dates, "not in the future" and "resolved on" are clinic days:
        in British Summer Time the clinic's day starts an hour before UTC's."""
        zone = self.clinic.timezone if self.clinic is not None else ""
        if zone:
            try:
                return timezone.localdate(timezone=zoneinfo.ZoneInfo(zone))
            except zoneinfo.ZoneInfoNotFoundError:
                pass
        return timezone.localdate()

    @property
    def label(self) -> str:
        return self.user.email if self.user else f"system ({self.via})"


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))
