from django.urls import path

from glabella.patients import breakglass_views, views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_new, name="new"),
    path("<int:pk>/", views.patient_detail, name="detail"),
    path("<int:pk>/edit/", views.patient_edit, name="edit"),
    path("<int:pk>/screening/", views.patient_screening, name="screening"),
    path("<int:pk>/notes/", views.notes_edit, name="notes"),
    path("<int:pk>/history/add/", views.history_add, name="history_add"),
    path("<int:pk>/history/<int:item_pk>/close/", views.history_close, name="history_close"),
    path("<int:pk>/break-glass/", breakglass_views.break_glass, name="break_glass"),
    path("<int:pk>/emergency/", breakglass_views.emergency_summary, name="emergency_summary"),
    path("break-glass/", breakglass_views.break_glass_log, name="break_glass_log"),
    path(
        "break-glass/<int:access_pk>/review/",
        breakglass_views.break_glass_review,
        name="break_glass_review",
    ),
]
