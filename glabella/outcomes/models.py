"""Outcomes: whether the treatment works, and what happened after it.

- :class:`Assessment`: one scored scale (wrinkle grade per area, HDSS, HIT-6, MIDAS, headache
  days) at a time point, by a clinician or by the patient;
- :class:`DiaryEntry`: one day of a headache diary. A second entry for the same day replaces
  the first, which is kept (``replaced_at``/``replaced_by``): nothing is overwritten;
- :class:`EffectReturn`: when movement or symptoms came back after a treatment (the patient's
  own duration of effect is computed from these);
- :class:`ContinuationDecision`: the prescriber's continue-or-stop decision for chronic
  migraine, with the figures it was made on;
- :class:`AdverseEvent`: a side effect recorded against a session and its lots.

Scores and rules come from :mod:`glabella.clinical` (``scales``, ``diary``, ``duration``);
these tables keep what was recorded and who recorded it. Rows are never deleted: a mistake is
marked entered-in-error with a reason and stays visible.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from glabella.common_models import OrgManager


class TimePoint(models.TextChoices):
    BASELINE = "baseline", "Baseline (before treatment)"
    TWO_WEEKS = "two_weeks", "Two weeks after"
    DAY_30 = "day_30", "Day 30"
    BEFORE_NEXT = "before_next", "Before the next cycle"
    OTHER = "other", "Other"


class Rater(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    PATIENT = "patient", "Patient"


class Contraction(models.TextChoices):
    REST = "rest", "At rest"
    MAXIMUM = "maximum", "At maximum contraction"


class Via(models.TextChoices):
    STAFF = "staff", "Entered by staff"
    PAPER = "paper", "Copied from a paper diary"
    PORTAL = "portal", "Entered by the patient (own pages)"


class Assessment(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="assessments"
    )
    session = models.ForeignKey(
        "charting.TreatmentSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assessments",
        help_text="the treatment this measures (blank for a baseline before any)",
    )
    indication = models.CharField(max_length=40, blank=True)
    scale_id = models.CharField("scale", max_length=40)
    area = models.CharField(max_length=60, blank=True)
    contraction = models.CharField(max_length=10, choices=Contraction.choices, blank=True)
    time_point = models.CharField("time point", max_length=20, choices=TimePoint.choices)
    assessed_on = models.DateField("date")
    answers = models.JSONField(default=dict)
    value = models.DecimalField(max_digits=8, decimal_places=2)
    band = models.CharField(max_length=100, blank=True)
    grade = models.CharField(max_length=10, blank=True)
    source = models.TextField(blank=True)
    rater = models.CharField(max_length=10, choices=Rater.choices, default=Rater.CLINICIAN)
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.STAFF)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    entered_in_error = models.BooleanField(default=False)
    error_reason = models.CharField(max_length=300, blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-assessed_on", "-recorded_at"]
        indexes = [
            models.Index(
                fields=["organization", "patient", "scale_id", "assessed_on"],
                name="assessment_patient_scale",
            )
        ]

    def __str__(self) -> str:
        return f"{self.scale_id} {self.value} on {self.assessed_on}"


class DiaryEntry(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="diary_entries"
    )
    day = models.DateField()
    headache = models.BooleanField()
    migraine = models.BooleanField("migraine features", default=False)
    severity = models.PositiveSmallIntegerField(null=True, blank=True)  # 0-3
    hours = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    acute_medication = models.JSONField(default=list, blank=True)  # kinds, clinical.diary
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.STAFF)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    replaced_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = OrgManager()

    class Meta:
        ordering = ["day", "recorded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "day"],
                condition=Q(replaced_at__isnull=True),
                name="diary_one_current_entry_per_day",
            ),
            models.CheckConstraint(
                condition=Q(severity__isnull=True) | Q(severity__lte=3),
                name="diary_severity_0_3",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "patient", "day"], name="diary_patient_day")
        ]

    def __str__(self) -> str:
        return f"diary {self.day} {'headache' if self.headache else 'no headache'}"


class EffectReturn(models.Model):
    """When the effect of one treatment wore off: movement or symptoms came back."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="effect_returns"
    )
    session = models.ForeignKey(
        "charting.TreatmentSession", on_delete=models.PROTECT, related_name="effect_returns"
    )
    returned_on = models.DateField("effect returned on")
    rater = models.CharField(
        "reported by", max_length=10, choices=Rater.choices, default=Rater.CLINICIAN
    )
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.STAFF)
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    entered_in_error = models.BooleanField(default=False)
    error_reason = models.CharField(max_length=300, blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-returned_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(entered_in_error=False),
                name="effect_return_one_per_session",
            )
        ]

    def __str__(self) -> str:
        return f"effect returned {self.returned_on}"


class Decision(models.TextChoices):
    CONTINUE = "continue", "Continue treatment"
    STOP = "stop", "Stop treatment"


class ContinuationDecision(models.Model):
    """The prescriber's continue-or-stop decision, with the figures shown when it was made."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="continuation_decisions"
    )
    indication = models.CharField(max_length=40, default="chronic-migraine")
    after_cycles = models.PositiveSmallIntegerField()
    decided_on = models.DateField()
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.TextField(blank=True)
    figures = models.JSONField(default=dict)  # the continuation figures and their sources
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-decided_on", "-recorded_at"]

    def __str__(self) -> str:
        return f"{self.decision} after {self.after_cycles} cycles"


class AdverseKind(models.TextChoices):
    EYELID_PTOSIS = "eyelid_ptosis", "Eyelid ptosis (drooping eyelid)"
    BROW_PTOSIS = "brow_ptosis", "Brow ptosis (drooping eyebrow)"
    DIPLOPIA = "diplopia", "Diplopia (double vision)"
    DYSPHAGIA = "dysphagia", "Dysphagia (difficulty swallowing)"
    DYSPHONIA = "dysphonia", "Dysphonia (voice change)"
    BREATHING = "breathing", "Breathing difficulty"
    DISTANT_SPREAD = "distant_spread", "Distant spread of toxin effect"
    BRUISING = "bruising", "Bruising"
    HEADACHE = "headache", "Headache"
    ASYMMETRY = "asymmetry", "Asymmetry"
    HYPERSENSITIVITY = "hypersensitivity", "Hypersensitivity (allergic reaction)"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


class SeriousCriterion(models.TextChoices):
    """The seriousness criteria of ICH E2A, as regulators' report forms ask them."""

    DEATH = "death", "Resulted in death"
    LIFE_THREATENING = "life_threatening", "Life-threatening"
    HOSPITALISATION = "hospitalisation", "Required or prolonged hospitalisation"
    DISABILITY = "disability", "Persistent or significant disability or incapacity"
    CONGENITAL = "congenital", "Congenital anomaly or birth defect"
    MEDICALLY_IMPORTANT = "medically_important", "Other medically important event"


class AdverseOutcome(models.TextChoices):
    RECOVERING = "recovering", "Recovering / resolving"
    RECOVERED = "recovered", "Recovered / resolved"
    SEQUELAE = "sequelae", "Recovered with lasting effects (sequelae)"
    NOT_RECOVERED = "not_recovered", "Not recovered / not resolved"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"


class AdverseEvent(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="adverse_events"
    )
    session = models.ForeignKey(
        "charting.TreatmentSession", on_delete=models.PROTECT, related_name="adverse_events"
    )
    kind = models.CharField(max_length=30, choices=AdverseKind.choices)
    other_text = models.CharField("what happened (other)", max_length=200, blank=True)
    description = models.TextField(blank=True)
    onset_on = models.DateField("onset")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    serious = models.BooleanField(default=False)
    serious_criteria = models.JSONField(default=list, blank=True)
    outcome = models.CharField(
        max_length=20, choices=AdverseOutcome.choices, default=AdverseOutcome.UNKNOWN
    )
    outcome_on = models.DateField("outcome date", null=True, blank=True)
    action_taken = models.TextField(blank=True)
    lots = models.JSONField(default=list)  # [{product_id, lot_number, expiry}] at recording
    reported_on = models.DateField("reported to the regulator on", null=True, blank=True)
    report_reference = models.CharField(max_length=100, blank=True)
    version = models.PositiveIntegerField(default=1)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    entered_in_error = models.BooleanField(default=False)
    error_reason = models.CharField(max_length=300, blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["-onset_on", "-recorded_at"]
        indexes = [
            models.Index(fields=["organization", "serious", "reported_on"], name="adverse_serious")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.onset_on}"
