"""The owner's import pages (mounted at /interop/import/, namespace "interop")."""

from django.urls import path

from glabella.interop.imports import views

urlpatterns = [
    path("", views.home, name="import"),
    path("<int:pk>/", views.run_page, name="import_run"),
    path("<int:pk>/import", views.confirm, name="import_confirm"),
]
