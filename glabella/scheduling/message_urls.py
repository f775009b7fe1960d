"""Message pages (see urls.py): the reminder log, the clinic's wording, the public opt-out."""

from django.urls import URLPattern, path

from glabella.scheduling import message_views

urlpatterns: list[URLPattern] = [
    path("messages/", message_views.message_log, name="messages"),
    path("messages/<int:pk>/resend/", message_views.resend, name="message_resend"),
    path("messages/wording/", message_views.template_list, name="message_templates"),
    path(
        "messages/wording/<str:kind>/<str:channel>/",
        message_views.template_edit,
        name="message_template",
    ),
    path("opt-out/<str:token>/", message_views.opt_out, name="opt_out"),
]
