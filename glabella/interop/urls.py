"""The interoperability pages: import (upload) and export (download), for the owner."""

from django.urls import include, path

app_name = "interop"
urlpatterns = [
    path("import/", include("glabella.interop.import_urls")),
    path("export/", include("glabella.interop.export_urls")),
]
