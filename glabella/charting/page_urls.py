"""The charting pages: start a session, chart a draft, sign it; amend or void a signed one."""

from django.urls import URLPattern, path

from glabella.charting import views

urlpatterns: list[URLPattern] = [
    path("patient/<int:pk>/new/", views.start, name="start"),
    path("<int:pk>/", views.session_page, name="session"),
    path("<int:pk>/points/", views.point_add, name="point_add"),
    path("<int:pk>/points/<int:number>/", views.point_update, name="point_update"),
    path("<int:pk>/points/<int:number>/mirror/", views.point_mirror, name="point_mirror"),
    path("<int:pk>/points/<int:number>/remove/", views.point_remove, name="point_remove"),
    path("<int:pk>/points/<int:number>/restore/", views.point_restore, name="point_restore"),
    path("<int:pk>/vial/", views.vial, name="vial"),
    path("<int:pk>/details/", views.details, name="details"),
    path("<int:pk>/override/", views.override, name="override"),
    path("<int:pk>/sign/", views.sign, name="sign"),
    path("<int:pk>/amend/", views.amend, name="amend"),
    path("<int:pk>/void/", views.void, name="void"),
]
