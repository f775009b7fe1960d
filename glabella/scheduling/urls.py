"""Scheduling pages, gathered from one module per area (calendar, recalls, messages, feeds)."""

from glabella.scheduling import calendar_urls, feed_urls, message_urls, recall_urls

app_name = "scheduling"
urlpatterns = [
    *calendar_urls.urlpatterns,
    *recall_urls.urlpatterns,
    *message_urls.urlpatterns,
    *feed_urls.urlpatterns,
]
