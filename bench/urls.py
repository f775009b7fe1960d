"""Glabella's URLs plus ``/bench/ok``: the smallest view the same server and middleware can
serve (signed in, it answers "ok"), the baseline for the pages' requests per second."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from glabella.urls import urlpatterns as glabella_urlpatterns


@login_required
def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/ok", ok, name="bench_ok"), *glabella_urlpatterns]
