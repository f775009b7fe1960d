"""``{% unreviewed_break_glass as n %}``: break-glass accesses not yet reviewed by an owner, for
the nav and the dashboard of roles that may read the log (owners and auditors); 0 for others."""

from __future__ import annotations

from typing import Any

from django import template

from glabella.accounts.roles import can

register = template.Library()


@register.simple_tag(takes_context=True)
def unreviewed_break_glass(context: dict[str, Any]) -> int:
    membership = context.get("membership")
    if membership is None or not can(membership.role, "audit.view"):
        return 0
    from glabella.patients.breakglass import unreviewed_count

    return unreviewed_count(membership.organization)
