"""URLs for test_nav_urls: one written by a converter of its own, one of any word."""

from django.http import HttpResponse
from django.urls import path, register_converter


class ZeroPadded:
    """Writes numbers its own way (at least four digits): the tag must not guess its text."""

    regex = "[0-9]{4,}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return f"{value:04d}"


register_converter(ZeroPadded, "padded")


def _view(request, **kwargs):
    return HttpResponse("")


urlpatterns = [
    path("year/<padded:value>/", _view, name="year"),
    path("word/<str:value>/", _view, name="word"),
]
