"""Clinical photographs.

A photo row points at a re-encoded JPEG (and its thumbnail) in the private photo storage
(``glabella.photos.storage``): never a public URL; the files are served only by
``photos:file`` after the same checks as the pages. A photo is never edited or deleted: it is
marked *entered in error* with a reason (hidden from everyday use; the file stays with the
record), and its marketing use is switched on or off, each change audited.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from glabella.common_models import OrgManager


class ImmutablePhoto(ValueError):
    """Someone tried to change or delete what may only be marked."""


class Area(models.TextChoices):
    GLABELLAR = "glabellar", "Glabellar (frown lines)"
    FOREHEAD = "forehead", "Forehead"
    CROWS_FEET_LEFT = "crows-feet-left", "Crow's feet, left"
    CROWS_FEET_RIGHT = "crows-feet-right", "Crow's feet, right"
    FULL_FACE = "full-face", "Full face"
    NECK = "neck", "Neck (platysma)"
    AXILLAE = "axillae", "Underarms (axillae)"
    OTHER = "other", "Other"


class View(models.TextChoices):
    FRONT = "front", "Front"
    OBLIQUE_LEFT = "oblique-left", "Oblique, left"
    OBLIQUE_RIGHT = "oblique-right", "Oblique, right"
    SIDE_LEFT = "side-left", "Side, left"
    SIDE_RIGHT = "side-right", "Side, right"


class Expression(models.TextChoices):
    REST = "rest", "At rest"
    FROWN = "frown", "Frown"
    RAISE = "raise", "Eyebrows raised"
    SMILE = "smile", "Smile"
    SQUINT = "squint", "Squint"


class Source(models.TextChoices):
    CAMERA = "camera", "Taken with the tablet's camera"
    UPLOAD = "upload", "Uploaded file"


class Photo(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="photos")
    session = models.ForeignKey(
        "charting.TreatmentSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    area = models.CharField(max_length=30, choices=Area.choices)
    view = models.CharField(max_length=20, choices=View.choices)
    expression = models.CharField(max_length=20, choices=Expression.choices)
    taken_on = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD)
    # The stored, re-encoded JPEG and its thumbnail: names in the photo storage (random).
    storage_name = models.CharField(max_length=200)
    thumb_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=40, default="image/jpeg")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="of the stored file")
    source_sha256 = models.CharField(max_length=64, help_text="of the file as it was uploaded")
    source_format = models.CharField(max_length=10, help_text="JPEG, PNG or WEBP")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Marketing use: only ever switched on under a valid photo-marketing consent.
    marketing_use = models.BooleanField(default=False)
    marketing_consent = models.ForeignKey(
        "consent.Consent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    marketing_changed_at = models.DateTimeField(null=True, blank=True)
    marketing_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Never deleted: entered in error, with the reason.
    entered_in_error = models.BooleanField(default=False)
    error_reason = models.TextField(blank=True)
    error_at = models.DateTimeField(null=True, blank=True)
    error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = OrgManager()

    _MUTABLE = frozenset(
        {
            "marketing_use",
            "marketing_consent",
            "marketing_changed_at",
            "marketing_changed_by",
            "entered_in_error",
            "error_reason",
            "error_at",
            "error_by",
        }
    )

    class Meta:
        ordering = ["-taken_on", "-created_at"]
        indexes = [
            models.Index(fields=["organization", "patient", "-taken_on"], name="photo_patient"),
            models.Index(fields=["patient", "area", "view", "-taken_on"], name="photo_guide"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(marketing_use=False) | Q(marketing_consent__isnull=False),
                name="photo_marketing_needs_consent",
            ),
            models.CheckConstraint(
                condition=Q(entered_in_error=False) | ~Q(error_reason=""),
                name="photo_error_needs_reason",
            ),
            models.CheckConstraint(
                condition=Q(entered_in_error=False) | Q(marketing_use=False),
                name="photo_error_not_marketed",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_area_display()}, {self.get_view_display().lower()}, "
            f"{self.get_expression_display().lower()}, {self.taken_on:%d/%m/%Y}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self._MUTABLE:
                raise ImmutablePhoto(
                    "A photograph is never edited: mark it entered in error and take it again."
                )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutablePhoto("A photograph is never deleted: mark it entered in error instead.")

    @property
    def group_key(self) -> tuple[str, str, str]:
        return (self.area, self.view, self.expression)

    @property
    def same_view_label(self) -> str:
        return (
            f"{self.get_area_display()} · {self.get_view_display()} · "
            f"{self.get_expression_display()}"
        )
