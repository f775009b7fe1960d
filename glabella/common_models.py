"""Shared model plumbing: organization-scoped managers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

if TYPE_CHECKING:
    from glabella.accounts.models import Organization

M = TypeVar("M", bound=models.Model)


class OrgQuerySet(models.QuerySet[M]):
    def for_org(self, organization: Organization | Any) -> OrgQuerySet[M]:
        """Rows of ORGANIZATION only. Every read of patient data goes through this."""
        if organization is None:
            return self.none()
        return self.filter(organization=organization)


OrgManager = models.Manager.from_queryset(OrgQuerySet)
