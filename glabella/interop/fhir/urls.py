from django.urls import include, path

from glabella.interop.fhir import views

app_name = "fhir"
urlpatterns = [
    path("", include("glabella.interop.fhir.bulk_urls")),
    path("metadata", views.metadata, name="metadata"),
]
