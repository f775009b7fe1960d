"""Clinical photographs (mounted at /photos/). Every page and file needs photo.view; taking a
photo, entering one in error and marketing use need photo.take."""

from django.urls import URLPattern, path

from glabella.photos import views

app_name = "photos"
urlpatterns: list[URLPattern] = [
    path("patients/<int:pk>/", views.patient_photos, name="patient"),
    path("patients/<int:pk>/take/", views.take, name="take"),
    path("patients/<int:pk>/compare/", views.compare, name="compare"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/file", views.photo_file, name="file"),
    path("<int:pk>/error/", views.enter_in_error, name="error"),
    path("<int:pk>/marketing/", views.marketing, name="marketing"),
]
