"""The static files' storage keeps each URL once worked out, and writes what Django's own
storage writes; a new STATIC_URL gives new URLs at once."""

from __future__ import annotations

from django.contrib.staticfiles.storage import StaticFilesStorage, staticfiles_storage
from django.template import Context, Template
from django.test import override_settings

from glabella.web import static_storage
from glabella.web.static_storage import StaticStorage

NAMES = ["glabella/glabella.css", "accounts/idle.js", "a b/ç é.css", "x?y#z.js", "deep/../up.js"]


def test_the_urls_are_djangos_and_are_kept():
    ours, django = StaticStorage(), StaticFilesStorage()
    for name in NAMES:
        assert ours.url(name) == django.url(name) == ours.url(name), name
    assert set(ours._urls) == set(NAMES)
    staticfiles_storage.url(NAMES[0])  # the storage {% static %} asks is this one
    assert isinstance(staticfiles_storage._wrapped, StaticStorage)


def test_a_new_static_url_is_written_at_once():
    page = Template("{% load static %}{% static 'glabella/glabella.css' %}")
    assert page.render(Context()) == "/static/glabella/glabella.css"
    with override_settings(STATIC_URL="/assets/"):
        assert page.render(Context()) == "/assets/glabella/glabella.css"
    assert page.render(Context()) == "/static/glabella/glabella.css"


def test_at_most_so_many_urls_are_kept(monkeypatch):
    monkeypatch.setattr(static_storage, "_MOST", 3)
    ours = StaticStorage()
    for i in range(10):
        assert ours.url(f"f{i}.css") == f"/static/f{i}.css"
    assert len(ours._urls) == 3
