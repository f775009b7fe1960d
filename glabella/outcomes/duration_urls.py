"""Duration-of-effect pages (see duration_views.py): a patient's durations and the cohort."""

from django.urls import URLPattern, path

from glabella.outcomes import duration_views as views

urlpatterns: list[URLPattern] = [
    path("patients/<int:pk>/durations/", views.patient_durations, name="durations"),
    path(
        "patients/<int:pk>/durations/<int:session_pk>/return/",
        views.return_record,
        name="duration_return",
    ),
    path(
        "patients/<int:pk>/durations/returns/<int:return_pk>/error/",
        views.return_in_error,
        name="duration_return_error",
    ),
    path("cohort/", views.cohort, name="cohort"),
]
