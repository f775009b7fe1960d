from django.urls import include, path, re_path

from glabella.interop.fhir import views

app_name = "fhir"
urlpatterns = [
    path("", include("glabella.interop.fhir.bulk_urls")),
    path("metadata", views.metadata, name="metadata"),
    re_path(r"^(?P<resource_type>[A-Za-z]{1,64})/?$", views.search_type, name="search"),
    re_path(
        r"^(?P<resource_type>[A-Za-z]{1,64})/(?P<resource_id>[^/]{1,200})$",
        views.read,
        name="read",
    ),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="unknown"),
]
