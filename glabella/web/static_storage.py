"""The static files' storage: Django's ``StaticFilesStorage``, with each file's URL kept once
worked out.

Every page names five or so static files (web/base.html's style sheets and scripts), and
``{% static %}`` asks the storage for each URL on every page. For one storage the URL of a
name never changes: Django makes a new storage when STATIC_URL, STATIC_ROOT or STORAGES
change, and the kept URLs go with the old one. At most _MOST names are kept.
"""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.storage import StaticFilesStorage

_MOST = 1000


class StaticStorage(StaticFilesStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str | None, str] = {}

    def url(self, name: str | None) -> str:
        url = self._urls.get(name)
        if url is None:
            url = super().url(name)
            if len(self._urls) < _MOST:
                self._urls[name] = url
        return url
