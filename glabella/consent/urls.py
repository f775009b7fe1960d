from django.urls import path

from glabella.consent import views

app_name = "consent"
urlpatterns = [
    path("patient/<int:pk>/", views.patient_consents, name="patient"),
    path("patient/<int:pk>/take/<slug:category>/", views.take, name="take"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("<int:pk>/signature.png", views.signature_png, name="signature"),
    path("<int:pk>/scan", views.scan, name="scan"),
    path("templates/", views.template_list, name="templates"),
    path("templates/<slug:category>/new/", views.template_new, name="template_new"),
]
