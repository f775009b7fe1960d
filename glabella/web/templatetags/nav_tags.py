"""``{% fixed_url 'name' arg… %}``: ``{% url 'name' arg… %}``, with the URL's fixed parts worked
out once.

Every page's menu names about twenty URLs, and a patient's page twenty more, each with the
patient's id; reversing each on every request is a good share of what a page costs. What
``reverse`` writes for a name can change only with the URL configuration or the prefix the
site is served under, which are part of the key.

Integer arguments (ids) are written into the pattern's text as ``reverse`` would write them:
the name is reversed once with stand-in ids, and the result is kept only if reversing with
other ids, small and large, gives the same text around them. Any other argument (a string, None),
keyword arguments, or a pattern whose text does not check out goes through ``reverse`` every
time, so the tag always writes what ``{% url %}`` would.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

register = template.Library()

# (URL configuration, prefix, name, number of arguments) -> the text around the arguments,
# or None when the name's URL cannot be written that way.
_PARTS: dict[tuple[object, str, str, int], tuple[str, ...] | None] = {}

_FIRST = (918_273_645_501, 918_273_645_617, 918_273_645_733)
# Checked with small and large ids: a converter that pads or reformats numbers fails a check.
_CHECKS = ((0, 1, 2), (7, 42, 9), (627_384_951_209, 627_384_951_323, 627_384_951_447))


def _split(name: str, count: int) -> tuple[str, ...] | None:
    """The text of NAME's URL around its COUNT integer arguments (escaped), or None."""
    if count > len(_FIRST):
        return None
    first = _FIRST[:count]
    try:
        url = reverse(name, args=first)
    except NoReverseMatch:
        return None  # not a pattern of ids: reversed every time
    parts: list[str] = []
    rest = url
    for value in first:
        before, found, rest = rest.partition(str(value))
        if not found:
            return None
        parts.append(before)
    parts.append(rest)
    for check in _CHECKS:
        try:
            if _join(parts, check[:count]) != reverse(name, args=check[:count]):
                return None
        except NoReverseMatch:
            return None
    return tuple(conditional_escape(p) for p in parts)


def _join(parts: list[str] | tuple[str, ...], args: tuple[int, ...]) -> str:
    out = [parts[0]]
    for value, after in zip(args, parts[1:], strict=True):
        out.append(str(value))
        out.append(after)
    return "".join(out)


@register.simple_tag
def fixed_url(name: str, *args: Any) -> SafeString:
    """What ``{% url name args %}`` writes (escaped as it escapes it)."""
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), name, len(args))
    if key in _PARTS:
        parts = _PARTS[key]
    else:
        parts = _PARTS[key] = _split(name, len(args))
    if parts is None or not all(type(a) is int and a >= 0 for a in args):
        return SafeString(conditional_escape(reverse(name, args=args)))
    return SafeString(_join(parts, args))  # the parts are escaped; digits need no escaping
