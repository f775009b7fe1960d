from django.urls import path

from glabella.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("clinic/<int:clinic_id>/", views.switch_clinic, name="switch_clinic"),
]
