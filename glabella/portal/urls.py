"""The patient's own pages (mounted at /my/): the staff page first, then the secret-link pages."""

from django.urls import URLPattern, path

from glabella.portal import views

app_name = "portal"
urlpatterns: list[URLPattern] = [
    path("staff/patients/<int:pk>/", views.manage, name="manage"),
    path("staff/patients/<int:pk>/links/<int:link_pk>/revoke/", views.revoke, name="revoke"),
    path("<str:token>/", views.home, name="home"),
    path("<str:token>/diary/", views.diary, name="diary"),
    path("<str:token>/questionnaires/", views.questionnaires, name="questionnaires"),
    path(
        "<str:token>/questionnaires/<slug:scale_id>/",
        views.questionnaire,
        name="questionnaire",
    ),
    path(
        "<str:token>/treatments/<int:session_pk>/wearing-off/",
        views.wearing_off,
        name="wearing_off",
    ),
    path("<str:token>/<path:rest>", views.elsewhere, name="elsewhere"),
]
