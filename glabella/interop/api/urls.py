from django.urls import path

from glabella.interop.api.core import api

urlpatterns = [path("", api.urls)]
