from django.urls import path

from glabella.web import views

app_name = "web"
urlpatterns = [path("", views.dashboard, name="dashboard")]
