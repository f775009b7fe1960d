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

from glabella.accounts.roles import can
from glabella.patients.templatetags.breakglass_tags import unreviewed_break_glass

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


# (URL configuration, prefix, name, arguments) -> the escaped URL, for arguments that are not
# all ids but are all text or numbers (a consent category, say): what ``reverse`` wrote for
# exactly those arguments. At most _WRITTEN_MAX, emptied when full: the arguments may come
# from what someone typed.
_WRITTEN: dict[tuple[object, ...], str] = {}
_WRITTEN_MAX = 2048


def _reversed(conf: object, prefix: str, name: str, args: tuple[Any, ...]) -> str:
    if not all(type(a) is str or type(a) is int for a in args):
        return conditional_escape(reverse(name, args=args))
    key = (conf, prefix, name, args)
    url = _WRITTEN.get(key)
    if url is None:
        url = conditional_escape(reverse(name, args=args))
        if len(_WRITTEN) >= _WRITTEN_MAX:
            _WRITTEN.clear()
        _WRITTEN[key] = url
    return url


@register.simple_tag
def fixed_url(name: str, *args: Any) -> SafeString:
    """What ``{% url name args %}`` writes (escaped as it escapes it)."""
    conf, prefix = get_urlconf() or settings.ROOT_URLCONF, get_script_prefix()
    key = (conf, prefix, name, len(args))
    if key in _PARTS:
        parts = _PARTS[key]
    else:
        parts = _PARTS[key] = _split(name, len(args))
    if parts is None or not all(type(a) is int and a >= 0 for a in args):
        return SafeString(_reversed(conf, prefix, name, args))
    return SafeString(_join(parts, args))  # the parts are escaped; digits need no escaping


# --- the menu -------------------------------------------------------------------------------
#
# The menu of every page (web/base.html), written here: about forty template tags a page
# before. What it shows depends on the member's role and on which page is open, so each
# (role, page) menu is written once per process; only the count of break-glass accesses not
# yet reviewed (for the roles that read the log) is asked on every page, as before.
# test_main_nav compares it with the template it replaced, for every role and page.

_MENUS: dict[tuple[object, ...], tuple[str, str]] = {}


def _link(name: str, label: str, current: bool, extra: str = "") -> str:
    here = 'aria-current="page"' if current else ""
    return f'<a href="{fixed_url(name)}" {here}>{label}{extra}</a>'


def _menu(role: str | None, app: str, page: str) -> tuple[str, str]:
    """The menu for ROLE on the page APP:PAGE, as the text before and after the break-glass
    count (the count's place is empty for roles without the log)."""

    def link(permission: str | None, name: str, label: str, current: bool) -> str:
        """The link, or nothing for a role without PERMISSION (None: every role)."""
        shown = permission is None or can(role, permission)
        return _link(name, label, current) if shown else ""

    calendar = "\n      ".join(
        [
            link("appointment.view", "scheduling:day", "Calendar", page in _CALENDAR_PAGES),
            link("appointment.view", "scheduling:recalls", "Recalls", page in _RECALL_PAGES),
            link("appointment.view", "scheduling:messages", "Messages", page in _MESSAGE_PAGES),
        ]
    )
    lines = [
        link(None, "patients:list", "Patients", app == "patients"),
        calendar if can(role, "appointment.view") else "",
        link("stock.view", "inventory:overview", "Stock", app == "inventory"),
        link("outcome.view", "outcomes:cohort", "Outcomes", app == "outcomes" and page == "cohort"),
        link("consent.view", "consent:templates", "Consent forms", app == "consent"),
        link("data.import", "interop:import", "Import", app == "interop" and "import" in page),
        link("data.export", "interop:export", "Export", app == "interop" and "export" in page),
        link("audit.view", "audit:log", "Audit log", app == "audit"),
    ]
    team = link("organization.manage", "accounts:team", "Team", page in ("team", "team_member"))
    before = '<nav aria-label="Main">\n      ' + "\n      ".join(lines) + "\n      "
    close = ""
    if can(role, "audit.view"):
        here = 'aria-current="page"' if page == "break_glass_log" else ""
        before += f'<a href="{fixed_url("patients:break_glass_log")}" {here}>Break-glass'
        close = "</a>"
    return before, f"{close}\n      {team}\n    </nav>"


_CALENDAR_PAGES = ("day", "week", "book", "appointment")
_RECALL_PAGES = ("recalls", "cycles")
_MESSAGE_PAGES = ("messages", "message_templates")


@register.simple_tag(takes_context=True)
def main_nav(context: Any) -> SafeString:
    """The menu of web/base.html for the signed-in member and the page open."""
    request = context["request"]
    membership = context.get("membership")
    role = membership.role if membership is not None else None
    match = getattr(request, "resolver_match", None)
    app = (match.app_name or "") if match is not None else ""
    page = (match.url_name or "") if match is not None else ""
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), role, app, page)
    menu = _MENUS.get(key)
    if menu is None:
        menu = _MENUS[key] = _menu(role, app, page)
    before, after = menu
    count = ""
    unreviewed = unreviewed_break_glass(context)  # 0, unasked, for roles without the log
    if unreviewed:
        count = (
            f' <span class="count" id="nav-break-glass-count">{unreviewed}'
            '<span class="sr-only"> not reviewed</span></span>'
        )
    return SafeString(before + count + after)
