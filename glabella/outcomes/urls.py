"""Outcome pages, gathered from one module per area (measures, durations, adverse events)."""

from glabella.outcomes import adverse_urls, duration_urls, measure_urls

app_name = "outcomes"
urlpatterns = [
    *measure_urls.urlpatterns,
    *duration_urls.urlpatterns,
    *adverse_urls.urlpatterns,
]
