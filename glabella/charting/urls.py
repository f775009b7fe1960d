"""Charting URLs: the charting pages (page_urls) and the printable record and comparison
(record_urls). Names: charting:start, charting:session, charting:record, charting:compare."""

from glabella.charting.page_urls import urlpatterns as page_urlpatterns
from glabella.charting.record_urls import urlpatterns as record_urlpatterns

app_name = "charting"
urlpatterns = [*page_urlpatterns, *record_urlpatterns]
