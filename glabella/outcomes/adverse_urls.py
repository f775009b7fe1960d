"""Side effect pages (see adverse_views.py), mounted under /outcomes/ (namespace "outcomes")."""

from django.urls import URLPattern, path

from glabella.outcomes import adverse_views as views

urlpatterns: list[URLPattern] = [
    path("patients/<int:pk>/adverse/", views.event_list, name="adverse_list"),
    path("sessions/<int:session_pk>/adverse/new/", views.event_new, name="adverse_new"),
    path("adverse/reporting/", views.reporting, name="adverse_reporting"),
    path("adverse/<int:pk>/", views.event_detail, name="adverse_detail"),
    path("adverse/<int:pk>/follow-up/", views.event_update, name="adverse_update"),
    path("adverse/<int:pk>/report/", views.event_report, name="adverse_report"),
    path("adverse/<int:pk>/reported/", views.event_reported, name="adverse_reported"),
    path("adverse/<int:pk>/error/", views.event_in_error, name="adverse_error"),
]
