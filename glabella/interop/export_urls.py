"""The owner's full export pages (mounted at /interop/export/, namespace "interop")."""

from django.urls import path

from glabella.interop.export import views

urlpatterns = [
    path("", views.home, name="export"),
    path("<int:pk>/", views.job, name="export_job"),
    path("<int:pk>/download", views.download, name="export_download"),
    path("<int:pk>/delete", views.delete, name="export_delete"),
]
