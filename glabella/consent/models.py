"""Versioned consent templates and the consents patients sign on them.

Neither is ever edited or deleted. A template changes by a new version; a consent
changes only by being withdrawn, which is recorded with a reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from glabella.common_models import OrgManager
from glabella.consent.categories import CATEGORY_CHOICES, label


class ImmutableRecord(ValueError):
    """Someone tried to change or delete what may only ever be added to."""


class Method(models.TextChoices):
    DRAWN = "drawn", "Signed on screen"
    PAPER = "paper", "Paper form, scanned"


class Status(models.TextChoices):
    VALID = "valid", "Valid"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"
    NOT_YET = "not_yet", "Not yet valid"


class ConsentTemplate(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    category = models.CharField(max_length=30, choices=CATEGORY_CHOICES)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text; a blank line starts a new paragraph.")
    valid_months = models.PositiveSmallIntegerField(default=12)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_current = models.BooleanField(default=True)

    objects = OrgManager()

    _MUTABLE = frozenset({"is_current"})

    class Meta:
        ordering = ["category", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "category", "version"],
                name="consent_template_unique_version",
            ),
            models.UniqueConstraint(
                fields=["organization", "category"],
                condition=Q(is_current=True),
                name="consent_template_one_current",
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1), name="consent_template_version_positive"
            ),
            models.CheckConstraint(
                condition=Q(valid_months__gte=1), name="consent_template_months_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category_label} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self._MUTABLE:
                raise ImmutableRecord("A consent template version is never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableRecord("A consent template version is never deleted.")

    @property
    def category_label(self) -> str:
        return label(self.category)


def scan_path(instance: Consent, filename: str) -> str:
    # The service chooses the name (random, extension from the content); keep it under
    # the organization so a backup or a move can be done per organization.
    return f"consent/{instance.organization_id}/{filename}"


class Consent(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="consents"
    )
    clinic = models.ForeignKey(
        "accounts.Clinic", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template = models.ForeignKey(ConsentTemplate, on_delete=models.PROTECT, related_name="consents")
    category = models.CharField(max_length=30, choices=CATEGORY_CHOICES)
    template_version = models.PositiveIntegerField()
    rendered_text = models.TextField()
    text_hash = models.CharField(max_length=64)
    method = models.CharField(max_length=10, choices=Method.choices)
    # A drawn signature is small (tens of kB): kept in the row, with the text it signs.
    signature = models.BinaryField(null=True, blank=True)
    # A scanned paper form can be large: a file under MEDIA_ROOT, served only by a view.
    scan = models.FileField(upload_to=scan_path, max_length=200, blank=True)
    scan_content_type = models.CharField(max_length=40, blank=True)
    signed_on = models.DateField()
    valid_until = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    # One-time token of the form it was submitted from: a second submit returns the first.
    form_token = models.CharField(max_length=64, blank=True, editable=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = OrgManager()

    _MUTABLE = frozenset({"withdrawn_at", "withdrawn_reason", "withdrawn_by"})

    class Meta:
        ordering = ["-signed_on", "-recorded_at"]
        indexes = [
            models.Index(fields=["patient", "category", "-signed_on"], name="consent_patient_cat"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "form_token"],
                condition=~Q(form_token=""),
                name="consent_unique_form_token",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__gte=models.F("signed_on")),
                name="consent_valid_after_signed",
            ),
            models.CheckConstraint(
                condition=Q(method__in=["drawn", "paper"]), name="consent_method_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category_label} consent of {self.signed_on:%d/%m/%Y}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self._MUTABLE:
                raise ImmutableRecord("A signed consent is never edited; withdraw it instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableRecord("A signed consent is never deleted; withdraw it instead.")

    @property
    def category_label(self) -> str:
        return label(self.category)

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def status_on(self, day: date) -> Status:
        if self.withdrawn_at is not None:
            return Status.WITHDRAWN
        if day < self.signed_on:
            return Status.NOT_YET
        if day > self.valid_until:
            return Status.EXPIRED
        return Status.VALID

    def is_valid_on(self, day: date) -> bool:
        return self.status_on(day) == Status.VALID
