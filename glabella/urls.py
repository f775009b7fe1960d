from django.urls import include, path

from glabella.web import views as web_views

urlpatterns = [
    path("healthz", web_views.healthz, name="healthz"),
    path("accounts/", include("glabella.accounts.urls")),
    path("patients/", include("glabella.patients.urls")),
    path("audit/", include("glabella.audit.urls")),
    path("consent/", include("glabella.consent.urls")),
    path("charting/", include("glabella.charting.urls")),
    path("inventory/", include("glabella.inventory.urls")),
    path("scheduling/", include("glabella.scheduling.urls")),
    path("outcomes/", include("glabella.outcomes.urls")),
    path("photos/", include("glabella.photos.urls")),
    path("my/", include("glabella.portal.urls")),
    path("api/v1/", include("glabella.interop.api.urls")),
    path("fhir/r4/", include("glabella.interop.fhir.urls")),
    path("interop/", include("glabella.interop.urls")),
    path("", include("glabella.web.urls")),
]
