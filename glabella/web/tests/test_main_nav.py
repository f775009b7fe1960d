"""The menu of every page (``{% main_nav %}``, glabella/web/templatetags/nav_tags.py) is the
menu the template wrote: for every role, on every page of the app (and on none), with and
without break-glass accesses to review, under two script prefixes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.urls import clear_script_prefix, get_resolver, set_script_prefix

from glabella.accounts.context_processors import _Perms
from glabella.accounts.roles import Role
from glabella.patients import breakglass
from glabella.web.templatetags import nav_tags

# web/base.html's menu before it was written in Python, as it was in the template.
OLD_MENU = Template(
    "{% load nav_tags breakglass_tags %}"
    + (Path(__file__).parent / "old_menu.html").read_text(encoding="utf-8")
)
NEW_MENU = Template("{% load nav_tags %}{% main_nav %}")


def _pages() -> list[tuple[str, str] | None]:
    """Every (app, page) the URL configuration names, and no page at all."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, app: str) -> None:
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, getattr(pattern, "app_name", None) or app)
            elif pattern.name:
                found.add((app, pattern.name))

    walk(get_resolver().url_patterns, "")
    assert len(found) > 50
    return [None, *sorted(found)]


@pytest.mark.parametrize("unreviewed", [0, 3])
@pytest.mark.parametrize("prefix", ["/", "/clinic/"])
def test_the_menu_is_the_menu_the_template_wrote(monkeypatch, unreviewed, prefix):
    monkeypatch.setattr(breakglass, "unreviewed_count", lambda organization: unreviewed)
    nav_tags._MENUS.clear()
    set_script_prefix(prefix)
    try:
        for role in [*Role.values, None]:
            membership = None if role is None else SimpleNamespace(role=role, organization=None)
            for page in _pages():
                match = (
                    None if page is None else SimpleNamespace(app_name=page[0], url_name=page[1])
                )
                context = {
                    "request": SimpleNamespace(resolver_match=match),
                    "membership": membership,
                    "may": _Perms(role),
                }
                ours = NEW_MENU.render(Context(context))
                assert ours == OLD_MENU.render(Context(context)), (role, page)
                if role in (Role.OWNER, Role.AUDITOR) and unreviewed:
                    assert 'id="nav-break-glass-count">3<' in ours
    finally:
        clear_script_prefix()
        nav_tags._MENUS.clear()
