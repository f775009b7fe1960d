"""Form widgets written in Python: the input, textarea and select widgets exactly as Django's
widget templates write them, and a form field's block as web/_field.html writes it, in a
fraction of the time.

Django's template engine costs tens of microseconds per tag, and a form field's widget is a
template of its own (two with its attributes). The busiest pages (the chart, the signed record,
the patient) write theirs through :data:`PLAIN_WIDGETS`; every other widget template is
rendered by Django as before. ``charting/tests/test_page_cost.py`` compares each writer with
the template it replaces, for plain, odd, safe and lazy values, bound and unbound.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from django.forms.boundfield import BoundField
from django.forms.renderers import DjangoTemplates
from django.template import Context
from django.template.base import render_value_in_context
from django.template.defaultfilters import stringformat
from django.template.loader import render_to_string
from django.utils.safestring import SafeData, SafeString, mark_safe

_CONTEXT = Context(autoescape=True)


def out(value: Any) -> str:
    """What ``{{ value }}`` writes in a template: localized, as text, escaped."""
    if type(value) is str:  # the common case, in short: a plain string is only escaped
        return html.escape(value)
    return str(render_value_in_context(value, _CONTEXT))


def attr_value(value: Any) -> str:
    """What ``{{ value|stringformat:'s' }}`` writes (the widget templates' attribute values)."""
    if type(value) is str:
        return html.escape(value)
    text = stringformat(value, "s")
    return out(mark_safe(text) if isinstance(value, SafeData) else text)  # noqa: S308


def attrs_html(attrs: Mapping[str, Any]) -> str:
    """django/forms/widgets/attrs.html."""
    return "".join(
        f" {out(name)}" if value is True else f' {out(name)}="{attr_value(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def input_html(widget: Mapping[str, Any]) -> str:
    """django/forms/widgets/input.html (text, number, date, email, hidden)."""
    value = widget["value"]
    shown = "" if value is None else f' value="{attr_value(value)}"'
    return (
        f'<input type="{out(widget["type"])}" name="{out(widget["name"])}"{shown}'
        f"{attrs_html(widget['attrs'])}>"
    )


def textarea_html(widget: Mapping[str, Any]) -> str:
    """django/forms/widgets/textarea.html."""
    value = widget["value"]
    return (
        f'<textarea name="{out(widget["name"])}"{attrs_html(widget["attrs"])}>\n'
        f"{out(value) if value else ''}</textarea>"
    )


_OPTION_TEMPLATE = "django/forms/widgets/select_option.html"


def select_html(widget: Mapping[str, Any]) -> str | None:
    """django/forms/widgets/select.html with select_option.html (None: another option kind)."""
    parts = [f'<select name="{out(widget["name"])}"{attrs_html(widget["attrs"])}>']
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{out(group_name)}">')
        for option in options:
            if option["template_name"] != _OPTION_TEMPLATE:
                return None
            parts.append(
                f'\n  <option value="{attr_value(option["value"])}"'
                f"{attrs_html(option['attrs'])}>{out(option['label'])}</option>\n"
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


_WIDGETS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    **{
        f"django/forms/widgets/{kind}.html": input_html
        for kind in ("text", "number", "date", "email", "hidden")
    },
    "django/forms/widgets/textarea.html": textarea_html,
    "django/forms/widgets/select.html": select_html,
}


class PlainWidgets(DjangoTemplates):
    """Django's form renderer, with the input, textarea and select widgets written in Python
    (exactly as their templates write them); every other template as before. A form opts in
    with ``form.renderer = PLAIN_WIDGETS``."""

    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        write = _WIDGETS.get(template_name)
        written = write(context["widget"]) if write is not None else None
        if written is None:
            return str(super().render(template_name, context, request))
        return written.strip()


PLAIN_WIDGETS = PlainWidgets()


def plain(form: Any) -> Any:
    """FORM, its widgets written by :data:`PLAIN_WIDGETS`."""
    form.renderer = PLAIN_WIDGETS
    return form


def field_html(field: Any) -> SafeString:
    """What ``{% include "web/_field.html" with field=FIELD %}`` writes: the label, the widget,
    the help and the errors of a form field, in the page's markup. Anything but a bound field
    (a template variable that did not resolve) goes through the template itself."""
    if not isinstance(field, BoundField):
        return SafeString(render_to_string("web/_field.html", {"field": field}))
    errors = field.errors
    required = ' <span class="req" aria-hidden="true">*</span>' if field.field.required else ""
    help_text = field.help_text
    helped = (
        f'<p class="help" id="{out(field.auto_id)}_help">{out(help_text)}</p>' if help_text else ""
    )
    shown = "".join(f'<p class="error" role="alert">{out(e)}</p>' for e in errors)
    return SafeString(
        f'<div class="field{" has-error" if errors else ""}">\n'
        f'  <label for="{out(field.id_for_label)}">{out(field.label)}{required}</label>\n'
        f"  {out(field)}\n"
        f"  {helped}\n"
        f"  {shown}\n"
        "</div>\n"
    )
