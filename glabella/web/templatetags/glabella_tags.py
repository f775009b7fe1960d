"""Display helpers: figures are stored exactly (Decimal) and rounded only when shown."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def units(value: object) -> str:
    """12.50 -> '12.5', 20.00 -> '20', None -> ''. Never rounds a stored dose."""
    if value is None or value == "":
        return ""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = format(d.normalize(), "f")
    return text
