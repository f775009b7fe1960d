"""Measure pages (see measure_views.py), mounted under /outcomes/ (namespace "outcomes")."""

from django.urls import URLPattern, path

from glabella.outcomes import measure_views as views

urlpatterns: list[URLPattern] = [
    path("patients/<int:pk>/", views.patient_outcomes, name="patient"),
    path("patients/<int:pk>/assess/", views.assess, name="assess"),
    path("patients/<int:pk>/diary/", views.diary, name="diary"),
    path("patients/<int:pk>/decide/", views.decide, name="decide"),
    path("assessments/<int:pk>/error/", views.assessment_error, name="assessment_error"),
]
