"""feed pages (see urls.py): the signed-in person's feed links and the secret .ics address."""

from django.urls import URLPattern, path

from glabella.scheduling import feed_views

urlpatterns: list[URLPattern] = [
    path("feeds/", feed_views.feed_list, name="feeds"),
    path("feeds/new/", feed_views.feed_create, name="feed_create"),
    path("feeds/<int:pk>/revoke/", feed_views.feed_revoke, name="feed_revoke"),
    path("feed/<str:token>.ics", feed_views.feed, name="feed"),
]
