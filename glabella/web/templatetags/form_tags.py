"""``{% field_row form.field %}``: a form field's label, widget, help and errors, as
``web/_field.html`` writes them (written in Python: glabella/web/plain_html.py)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from glabella.web.plain_html import field_html

register = template.Library()


@register.simple_tag
def field_row(field: Any) -> SafeString:
    return field_html(field)
