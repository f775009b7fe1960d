"""Display helpers for the charting pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

SEVERITY_WORDS = {"block": "Blocked", "warn": "Warning", "info": "Note"}
SIDE_WORDS = {"L": "Left", "R": "Right", "mid": "Midline"}
DEPTH_WORDS = {"IM": "Intramuscular", "ID": "Intradermal", "SC": "Subcutaneous"}


@register.filter
def severity_word(severity: str) -> str:
    return SEVERITY_WORDS.get(severity, severity)


@register.filter
def side_word(side: str) -> str:
    return SIDE_WORDS.get(side, side)


@register.filter
def depth_word(depth: str) -> str:
    return DEPTH_WORDS.get(depth, depth)


@register.filter
def area_label(area: str) -> str:
    """An area id in words: lateral-canthus -> Lateral canthus."""
    text = str(area or "").replace("-", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    try:
        return mapping.get(key, ())
    except AttributeError:
        return ()


@register.filter
def current(form: Any, name: str) -> str:
    """The value the form shows for NAME (what was sent, else the initial value)."""
    return str(form.current(name))
