from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "glabella.consent"
    label = "consent"
    verbose_name = "Consent"
