from django.apps import AppConfig


class PhotosConfig(AppConfig):
    name = "glabella.photos"
    label = "photos"
    verbose_name = "Clinical photographs"
