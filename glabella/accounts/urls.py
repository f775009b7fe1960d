from django.urls import path

from glabella.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("clinic/<int:clinic_id>/", views.switch_clinic, name="switch_clinic"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_token_view, name="revoke_token"),
]
