"""``{% fixed_url %}`` writes what ``{% url %}`` writes, under any prefix and URL configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, clear_script_prefix, include, path, set_script_prefix

BASE = Path(__file__).resolve().parents[1] / "templates" / "web" / "base.html"
MENU = Path(__file__).resolve().parents[1] / "templatetags" / "nav_tags.py"


def _names() -> list[str]:
    names = re.findall(r"\{% fixed_url '([^']+)' %\}", BASE.read_text())
    # The menu, written in Python ({% main_nav %}): every "app:name" it names.
    names += re.findall(r'"([a-z_]+:[a-z_]+)"', MENU.read_text())
    assert len(names) >= 15  # the whole menu, the idle timer's three URLs, sign out
    return sorted(set(names))


def _both(name: str) -> tuple[str, str]:
    fixed = Template("{% load nav_tags %}{% fixed_url '" + name + "' %}").render(Context())
    plain = Template("{% url '" + name + "' %}").render(Context())
    return fixed, plain


@pytest.mark.parametrize("prefix", ["/", "/clinic/", "/a&b/"])
def test_every_fixed_url_of_the_menu_is_the_reversed_url(prefix):
    set_script_prefix(prefix)
    try:
        for name in _names():
            fixed, plain = _both(name)
            assert fixed == plain, name
            assert fixed.startswith(prefix.replace("&", "&amp;")), fixed
    finally:
        clear_script_prefix()


# A URL configuration with every one of Glabella's URLs one level down, for the test below.
urlpatterns = [path("moved/", include("glabella.urls"))]


def test_another_url_configuration_is_not_served_from_the_first(settings):
    fixed, _ = _both("web:dashboard")
    assert not fixed.startswith("/moved/")
    settings.ROOT_URLCONF = __name__  # the same names, other URLs: the key tells them apart
    moved, plain = _both("web:dashboard")
    assert moved == plain == "/moved" + fixed


# --- with arguments (ids) -----------------------------------------------------------------

TEMPLATES = Path(__file__).resolve().parents[2]


def _uses_with_arguments() -> set[tuple[str, int]]:
    """(name, number of arguments) of every ``{% fixed_url %}`` with arguments in the app."""
    found = set()
    for template in TEMPLATES.glob("*/templates/**/*.html"):
        for name, args in re.findall(
            r"\{% fixed_url '([^']+)'((?: [\w.]+)+?)(?: as \w+)? %\}", template.read_text()
        ):
            found.add((name, len(args.split())))
    return found


def _render(tag: str, *args) -> str:
    names = " ".join(f"a{i}" for i in range(len(args)))
    context = Context({f"a{i}": a for i, a in enumerate(args)})
    return Template("{% load nav_tags %}{% " + tag + " " + names + " %}").render(context)


@pytest.mark.parametrize("prefix", ["/", "/a&b/"])
def test_every_fixed_url_with_ids_is_the_reversed_url(prefix):
    uses = _uses_with_arguments()
    assert ("patients:edit", 1) in uses and ("charting:amend", 1) in uses  # the pages' links
    set_script_prefix(prefix)
    try:
        for name, count in sorted(uses):
            for ids in [(0, 5, 9), (7, 12, 3), (123456789, 4, 88), (2**40, 1, 2)]:
                quoted = f"'{name}'"
                fixed = _render(f"fixed_url {quoted}", *ids[:count])
                plain = _render(f"url {quoted}", *ids[:count])
                assert fixed == plain, (name, ids[:count])
    finally:
        clear_script_prefix()


def test_a_pattern_that_writes_ids_its_own_way_is_reversed_every_time(settings):
    settings.ROOT_URLCONF = "glabella.web.tests.padded_urls"
    assert _render("fixed_url 'year'", 7) == _render("url 'year'", 7) == "/year/0007/"
    assert _render("fixed_url 'year'", 12345) == "/year/12345/"


def test_arguments_that_are_not_ids_are_reversed_as_url_reverses_them(settings):
    settings.ROOT_URLCONF = "glabella.web.tests.padded_urls"
    assert _render("fixed_url 'word'", "a b&c") == _render("url 'word'", "a b&c")
    assert _render("fixed_url 'word'", 31) == "/word/31/"
    with pytest.raises(NoReverseMatch):
        _render("fixed_url 'patients:detail'", "not-an-id")  # as {% url %} would raise


def test_text_arguments_are_written_as_reversed_each_time_and_kept_within_bounds(settings):
    """A URL with text arguments is kept once reversed, per configuration, prefix and exact
    arguments; the store is emptied when full, and anything but text and numbers is reversed
    every time."""
    from glabella.web.templatetags import nav_tags

    settings.ROOT_URLCONF = "glabella.web.tests.padded_urls"
    nav_tags._WRITTEN.clear()
    first = _render("fixed_url 'word'", "a b&c")
    assert first == _render("url 'word'", "a b&c") == _render("fixed_url 'word'", "a b&c")
    assert _render("fixed_url 'word'", "other") == _render("url 'word'", "other") != first
    assert len(nav_tags._WRITTEN) == 2
    set_script_prefix("/x&y/")
    try:
        assert _render("fixed_url 'word'", "a b&c") == _render("url 'word'", "a b&c")
        assert _render("fixed_url 'word'", "a b&c").startswith("/x&amp;y/")
    finally:
        clear_script_prefix()
    for i in range(nav_tags._WRITTEN_MAX + 5):
        nav_tags.fixed_url("word", f"w{i}")
    assert 0 < len(nav_tags._WRITTEN) <= nav_tags._WRITTEN_MAX
    assert _render("fixed_url 'word'", 1.5) == _render("url 'word'", 1.5)  # not kept
    assert all(type(k[3][0]) is str for k in nav_tags._WRITTEN)
