from django.urls import path

from glabella.accounts import mfa_views, team_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("clinic/<int:clinic_id>/", views.switch_clinic, name="switch_clinic"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_token_view, name="revoke_token"),
    path("two-step/", mfa_views.mfa_verify, name="mfa_verify"),
    path("two-step/setup/", mfa_views.mfa_setup, name="mfa_setup"),
    path("two-step/recovery-codes/", mfa_views.mfa_recovery_codes, name="mfa_recovery_codes"),
    path("password/", mfa_views.password_change, name="password_change"),
    path("still-here/", views.still_here, name="still_here"),
    path("confirm/", team_views.reauth, name="reauth"),
    path("team/", team_views.team, name="team"),
    path("team/<int:membership_id>/", team_views.team_member, name="team_member"),
]
