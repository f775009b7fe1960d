"""The links that open a patient's own pages.

A link carries a random secret (32 bytes, 43 URL-safe characters) in its address. Only the
SHA-256 of the secret is stored: the database, a backup or an export cannot be used to open
anyone's pages. Every request checks the secret against the hash, the expiry and the
revocation (see ``services.link_for_token``). Links are never deleted: a revoked or expired link
stays listed on the staff page with who created, sent and revoked it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from glabella.common_models import OrgManager


class SentBy(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "Text message (SMS)"
    QR = "qr", "QR code shown in the clinic"


class PatientLink(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="portal_links"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    sent_by = models.CharField("sent by", max_length=10, choices=SentBy.choices)
    sent_to = models.CharField("sent to", max_length=254, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["organization", "patient", "-created_at"], name="portal_link_patient"
            )
        ]

    def __str__(self) -> str:
        return f"patient link {self.pk} ({self.sent_by})"
