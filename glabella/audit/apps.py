from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "glabella.audit"
    label = "audit"
    verbose_name = "Audit trail"
