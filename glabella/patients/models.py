"""Patients, their medical history and screening."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from django.conf import settings
from django.db import models

from glabella.common_models import OrgManager


def name_key(given: str, family: str) -> str:
    """Normalised 'family given' for duplicate checks and search: accents, case, spaces."""
    text = f"{family} {given}"
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", text).strip().casefold()


def digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Not recorded"


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "Text message (SMS)"
    PHONE = "phone", "Phone call"
    NONE = "none", "No reminders"


class Patient(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="patients"
    )
    home_clinic = models.ForeignKey(
        "accounts.Clinic", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    given_name = models.CharField("given name", max_length=100)
    family_name = models.CharField("family name", max_length=100)
    name_key = models.CharField(max_length=210, editable=False)
    date_of_birth = models.DateField("date of birth")
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    weight_kg = models.DecimalField(
        "weight (kg)", max_digits=5, decimal_places=1, null=True, blank=True
    )
    weight_recorded_on = models.DateField(null=True, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    phone_digits = models.CharField(max_length=40, blank=True, editable=False)
    email = models.EmailField("e-mail", blank=True)
    address = models.TextField(blank=True)
    preferred_channel = models.CharField(
        "reminders by", max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    reminder_consent = models.BooleanField("agrees to reminders", default=False)
    reminder_consent_at = models.DateTimeField(null=True, blank=True)
    # Set when the patient used the opt-out link in a message (the worklist shows it).
    reminder_opt_out_at = models.DateTimeField(null=True, blank=True)
    clinical_notes = models.TextField(blank=True)
    # The patient's id in the file it was imported from (a vendor's id, or the Glabella id in
    # an export); blank for a patient registered here. Unique within the organization.
    import_ref = models.CharField("reference in the imported file", max_length=100, blank=True)
    screened_at = models.DateTimeField(null=True, blank=True)
    screened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgManager()

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name_key", "date_of_birth"],
                name="patient_unique_name_dob_per_org",
            ),
            models.UniqueConstraint(
                fields=["organization", "import_ref"],
                condition=~models.Q(import_ref=""),
                name="patient_unique_import_ref_per_org",
            ),
        ]
        indexes = [
            # The order of search results (services.search_patients), then every column a
            # search word is tested against: a search with no word long enough for the
            # substring index walks this in order, reading nothing else, and stops at the
            # limit (at worst the organization's entries, never its rows one by one). The
            # substring indexes (trigram GIN on PostgreSQL, FTS5 on SQLite) are made by
            # migration 0005_search_index, not declared here.
            models.Index(
                fields=[
                    "organization",
                    "family_name",
                    "given_name",
                    "id",
                    "name_key",
                    "phone_digits",
                    "date_of_birth",
                    "email",
                ],
                name="patient_org_family_given",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name}"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: date) -> int:
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


class HistoryKind(models.TextChoices):
    CONDITION = "condition", "Condition"
    ALLERGY = "allergy", "Allergy"
    MEDICATION = "medication", "Medication"
    PREGNANCY = "pregnancy", "Pregnancy"
    BREASTFEEDING = "breastfeeding", "Breastfeeding"
    INFECTION = "infection", "Infection at a site"
    OUTSIDE_TREATMENT = "outside_treatment", "Toxin treatment elsewhere"


class HistoryItem(models.Model):
    """One fact of medical history. Never deleted: resolved, or marked entered in error."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="history")
    kind = models.CharField(max_length=20, choices=HistoryKind.choices)
    code = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True)
    # outside toxin treatment
    treated_on = models.DateField(null=True, blank=True)
    product_id = models.CharField(max_length=30, blank=True)
    units = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    area = models.CharField(max_length=100, blank=True)
    indication = models.CharField(max_length=40, blank=True)
    # life cycle
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_on = models.DateField(null=True, blank=True)
    entered_in_error = models.BooleanField(default=False)
    error_reason = models.CharField(max_length=300, blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["kind", "-recorded_at"]
        indexes = [models.Index(fields=["patient", "kind", "code"], name="history_patient_code")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.code}"

    @property
    def label(self) -> str:
        from glabella.patients.screening import BY_KEY

        entry = BY_KEY.get((self.kind, self.code))
        return entry.label if entry else f"{self.get_kind_display()}: {self.code}"

    @property
    def product_name(self) -> str:
        from glabella.clinical import catalogue

        try:
            return catalogue.product(self.product_id).brand
        except KeyError:
            return self.product_id

    @property
    def is_active(self) -> bool:
        return self.resolved_on is None and not self.entered_in_error


class BreakGlass(models.Model):
    """Emergency access to one patient's clinical summary by someone whose role cannot see it.

    Opened with a written reason, it lasts until ``expires_at`` (or until ended early), every
    view during it is audited, and owners see every one until they have reviewed it.
    """

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey(
        "accounts.Clinic", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="break_glass")
    reason = models.TextField()
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["organization", "reviewed_at"])]

    def __str__(self) -> str:
        return f"Break-glass by {self.user} for patient {self.patient_id}"
