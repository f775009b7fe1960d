"""The printable record (PDF) and the comparison with the previous session."""

from django.urls import URLPattern, path

from glabella.charting import record_views

urlpatterns: list[URLPattern] = [
    path("<int:pk>/record.pdf", record_views.record_pdf, name="record"),
    path("<int:pk>/compare/", record_views.compare, name="compare"),
]
