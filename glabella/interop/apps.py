from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "glabella.interop"
    label = "interop"
    verbose_name = "Interoperability: REST API, FHIR R4, import, export, backup"
