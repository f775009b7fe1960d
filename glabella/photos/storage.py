"""Where the photographs are kept: a private storage, chosen by settings.

``GLABELLA_PHOTO_STORAGE``:

- ``"local"`` (the default): files under ``GLABELLA_PHOTO_ROOT`` on this server's disk, outside
  any web root, with no base URL: nothing can link to a file; only ``photos:file`` serves it.
- ``"s3"``: an S3-compatible object store (AWS S3, MinIO, Ceph, Backblaze, Scaleway...) through
  django-storages (``pip install 'glabella[s3]'``), configured by ``GLABELLA_S3_BUCKET``,
  ``GLABELLA_S3_ENDPOINT_URL``, ``GLABELLA_S3_ACCESS_KEY``, ``GLABELLA_S3_SECRET_KEY``,
  ``GLABELLA_S3_REGION``. Objects are written private (no ACL), never with a public URL, and
  read back through the application.
- anything else containing a dot: the dotted path of a Django ``Storage`` class, built with no
  arguments (for a storage this module does not know, and for tests).

Every setting is read with ``getattr`` and a default, so this works before the S3 settings
exist. The storage is built on each call (cheap), so a changed setting takes effect at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string

LOCAL = "local"
S3 = "s3"


def s3_options() -> dict[str, Any]:
    """The django-storages S3Storage options from the GLABELLA_S3_* settings."""
    bucket = getattr(settings, "GLABELLA_S3_BUCKET", "") or ""
    if not bucket:
        raise ImproperlyConfigured(
            "GLABELLA_PHOTO_STORAGE is 's3' but GLABELLA_S3_BUCKET is not set: "
            "name the bucket the photographs go in (see docs/photos.md)."
        )
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "default_acl": None,  # private: the bucket's own policy, never public-read
        "querystring_auth": True,  # if a URL is ever made, it is signed and expires
        "querystring_expire": 60,
        "file_overwrite": False,
        "location": getattr(settings, "GLABELLA_S3_PREFIX", "photos") or "",
        "object_parameters": {"CacheControl": "private, no-store"},
    }
    for option, setting in (
        ("endpoint_url", "GLABELLA_S3_ENDPOINT_URL"),
        ("access_key", "GLABELLA_S3_ACCESS_KEY"),
        ("secret_key", "GLABELLA_S3_SECRET_KEY"),
        ("region_name", "GLABELLA_S3_REGION"),
    ):
        value = getattr(settings, setting, "") or ""
        if value:
            options[option] = value
    return options


def _s3() -> Storage:
    try:
        from storages.backends.s3 import S3Storage  # type: ignore[import-not-found]
    except ImportError:
        raise ImproperlyConfigured(
            "GLABELLA_PHOTO_STORAGE is 's3' but django-storages is not installed: "
            "install Glabella with its S3 extra (pip install 'glabella[s3]')."
        ) from None
    storage: Storage = S3Storage(**s3_options())
    return storage


class PrivateFileSystemStorage(FileSystemStorage):
    """Files on this server's disk that have no URL: a photo is only ever served by the view
    (Django's FileSystemStorage would otherwise fall back to MEDIA_URL)."""

    def url(self, name: str | None) -> str:
        raise NotImplementedError("A photo has no public URL: it is served by photos:file only.")


def _local() -> Storage:
    root = getattr(settings, "GLABELLA_PHOTO_ROOT", None)
    if not root:
        raise ImproperlyConfigured("GLABELLA_PHOTO_ROOT is not set.")
    return PrivateFileSystemStorage(location=str(root))


def photo_storage() -> Storage:
    """The storage the photographs are kept in, as the settings say now."""
    kind = str(getattr(settings, "GLABELLA_PHOTO_STORAGE", LOCAL) or LOCAL).strip()
    if kind == LOCAL:
        return _local()
    if kind == S3:
        return _s3()
    if "." in kind:
        try:
            cls = import_string(kind)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"GLABELLA_PHOTO_STORAGE names {kind!r}, which cannot be imported: {exc}"
            ) from None
        storage = cls()
        if not isinstance(storage, Storage):
            raise ImproperlyConfigured(f"GLABELLA_PHOTO_STORAGE {kind!r} is not a Django Storage.")
        return storage
    raise ImproperlyConfigured(
        f"GLABELLA_PHOTO_STORAGE is {kind!r}: use 'local', 's3' or the dotted path of a "
        "Django storage class."
    )
