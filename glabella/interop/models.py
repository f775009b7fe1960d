"""Jobs of the interoperability app: exports (FHIR bulk and full) and imports.

An export job's files live under ``GLABELLA_EXPORT_ROOT/<org id>/<job id>/``; the row says
what was asked, by whom, how far it got and what it produced (file, count, checksum). An
import run keeps what was imported, from which file (its SHA-256), and every problem found,
so a dry run and the real run can be compared and audited.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from glabella.common_models import OrgManager


class ExportKind(models.TextChoices):
    FHIR_BULK = "fhir", "FHIR bulk export ($export)"
    FULL = "full", "Full export (everything the clinic entered)"


class JobState(models.TextChoices):
    QUEUED = "queued", "Waiting to start"
    RUNNING = "running", "Running"
    DONE = "done", "Finished"
    FAILED = "failed", "Failed"
    DELETED = "deleted", "Deleted"


class ExportJob(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=ExportKind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    request_url = models.CharField(max_length=500, blank=True)
    types = models.JSONField(default=list, blank=True)  # FHIR resource types asked for; [] = all
    since = models.DateTimeField(null=True, blank=True)  # FHIR _since
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    transaction_time = models.DateTimeField(null=True, blank=True)
    done_items = models.PositiveIntegerField(default=0)
    total_items = models.PositiveIntegerField(default=0)
    output = models.JSONField(default=list, blank=True)  # [{type, file, count, bytes, sha256}]
    error = models.TextField(blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="interop_export_org")]

    def __str__(self) -> str:
        return f"{self.kind} export {self.pk} ({self.state})"


class ImportKind(models.TextChoices):
    PATIENTS = "patients", "Patients"
    HISTORY = "history", "Medical history"
    TREATMENTS = "treatments", "Past treatments"
    LOTS = "lots", "Lots"
    EXPORT = "export", "A Glabella export (all of the above)"


class ImportRun(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=ImportKind.choices)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    mapping = models.JSONField(default=dict, blank=True)  # column -> field, as used
    dry_run = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    done_rows = models.PositiveIntegerField(default=0)
    created = models.JSONField(default=dict, blank=True)  # {"patients": 12, ...}
    problems = models.JSONField(default=list, blank=True)  # [{row, column, message}]
    run_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="interop_import_org")]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk} ({self.state})"
