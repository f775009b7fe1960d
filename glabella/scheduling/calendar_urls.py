"""calendar pages (see urls.py): day and week views, booking, one appointment, the drag's
move endpoint and the clinic's scheduling settings."""

from django.urls import URLPattern, path

from glabella.scheduling import calendar_views as views

urlpatterns: list[URLPattern] = [
    path("day/", views.day_view, name="day"),
    path("week/", views.week_view, name="week"),
    path("book/", views.book, name="book"),
    path("appointment/<int:pk>/", views.appointment, name="appointment"),
    path("appointment/<int:pk>/edit/", views.appointment_edit, name="appointment_edit"),
    path("appointment/<int:pk>/status/", views.appointment_status, name="appointment_status"),
    path("appointment/<int:pk>/move/", views.move, name="move"),
    path("clinic-settings/", views.clinic_settings, name="clinic_settings"),
]
