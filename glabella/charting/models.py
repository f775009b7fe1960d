"""Treatment sessions and their injection points.

A session is a draft while it is charted, then signed (locked). A signed session changes
only by amendment (a reason, who, when, before and after) or is voided with a reason; it is
never edited in place or deleted. The guards are in three layers: the services refuse,
the models refuse to save or delete a locked row, and the querysets refuse bulk update and
delete of locked rows. (Unlike the audit table and the stock ledger, there is no database
trigger here yet: amendments legitimately write to signed rows through the model.)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from glabella.common_models import OrgManager, OrgQuerySet


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    SIGNED = "signed", "Signed"
    AMENDED = "amended", "Signed, amended"
    VOIDED = "voided", "Voided (entered in error)"


LOCKED = frozenset({Status.SIGNED, Status.AMENDED, Status.VOIDED})


def live_units() -> models.Sum:
    """A session's total units, added up by the database over its live (not removed) points:
    an aggregate for ``TreatmentSession`` querysets (None for a session with no points)."""
    return models.Sum("points__units", filter=models.Q(points__removed=False))


def live_point_count() -> models.Count:
    """How many live (not removed) points a session has: an aggregate as ``live_units``."""
    return models.Count("points", filter=models.Q(points__removed=False))


class Depth(models.TextChoices):
    IM = "IM", "Intramuscular"
    ID = "ID", "Intradermal"
    SC = "SC", "Subcutaneous"


class SessionLocked(Exception):
    """Raised when anything tries to change a signed session outside an amendment."""


class SessionQuerySet(OrgQuerySet["TreatmentSession"]):
    def update(self, **kwargs: Any) -> int:
        if self.filter(status__in=LOCKED).exists():
            raise SessionLocked("A signed session cannot be changed except by amendment.")
        return super().update(**kwargs)

    def delete(self) -> Any:
        raise SessionLocked("Treatment sessions are never deleted; void one with a reason.")


class PointQuerySet(OrgQuerySet["InjectionPoint"]):
    def update(self, **kwargs: Any) -> int:
        if self.filter(session__status__in=LOCKED).exists():
            raise SessionLocked(
                "The points of a signed session cannot be changed except by amendment."
            )
        return super().update(**kwargs)

    def delete(self) -> Any:
        raise SessionLocked("Injection points are never deleted: remove them from a draft.")


class TreatmentSession(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="sessions"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="prescriber of record",
    )
    indication = models.CharField(max_length=40)
    product_id = models.CharField("product", max_length=30)
    treated_on = models.DateField("date")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    protocol_id = models.CharField(max_length=60, blank=True)
    pre_notes = models.TextField("pre-treatment notes", blank=True)
    flags = models.JSONField(default=list, blank=True)  # screening flags carried over
    # The vial in use: chosen from the clinic's open vials (``vial``; new points draw from it,
    # and its lot fills the lot fields), or, where the clinic keeps no stock in Glabella,
    # the lot number and expiry typed or scanned on the session.
    vial = models.ForeignKey(
        "inventory.Vial",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the open vial new points are drawn from",
    )
    lot_number = models.CharField(max_length=40, blank=True)
    lot_expiry = models.DateField(null=True, blank=True)
    vial_units = models.PositiveIntegerField(null=True, blank=True)
    diluent_ml = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    follow_up_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_ups",
        help_text="the session this touch-up reviews",
    )
    review_due_on = models.DateField(null=True, blank=True)
    consent = models.ForeignKey(
        "consent.Consent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    findings_at_signing = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    # A past treatment imported from another system (``glabella.charting.imported``): the run
    # that brought it, its id in the file, and where it came from in words. Blank for a session
    # charted here.
    import_run = models.ForeignKey(
        "interop.ImportRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    import_ref = models.CharField("reference in the imported file", max_length=100, blank=True)
    import_source = models.TextField("imported from", blank=True)

    objects = models.Manager.from_queryset(SessionQuerySet)()

    class Meta:
        ordering = ["-treated_on", "-created_at"]
        indexes = [
            models.Index(fields=["organization", "patient", "-treated_on"], name="session_patient"),
            models.Index(fields=["organization", "import_ref"], name="session_import_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.treated_on:%d/%m/%Y} {self.product_id} {self.indication} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk and not getattr(self, "_allow_locked_write", False):
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored in LOCKED:
                raise SessionLocked(
                    "This session is signed: change it by amendment, with a reason."
                )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise SessionLocked("Treatment sessions are never deleted; void one with a reason.")

    @property
    def is_locked(self) -> bool:
        return self.status in LOCKED

    @property
    def is_imported(self) -> bool:
        return self.import_run_id is not None


class InjectionPoint(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="points")
    number = models.PositiveIntegerField()
    diagram = models.CharField(max_length=30)
    x = models.DecimalField(max_digits=6, decimal_places=2)
    y = models.DecimalField(max_digits=6, decimal_places=2)
    area = models.CharField(max_length=60)
    muscle = models.CharField(max_length=60)
    side = models.CharField(max_length=3)
    units = models.DecimalField(max_digits=8, decimal_places=2)
    depth = models.CharField(max_length=2, choices=Depth.choices, default=Depth.IM)
    removed = models.BooleanField(default=False)  # removed from a draft; kept for undo
    # The vial this point's units were drawn from (its ``administer`` move in the stock ledger
    # says the same). Kept when the point is removed or its session voided and the draw
    # reversed: it is where the dose came from.
    vial = models.ForeignKey(
        "inventory.Vial", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = models.Manager.from_queryset(PointQuerySet)()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["session", "number"], name="point_unique_number"),
            models.CheckConstraint(condition=models.Q(units__gt=0), name="point_units_positive"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.muscle} {self.side} {self.units} U"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_locked()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise SessionLocked("Injection points are never deleted: remove them from a draft.")

    def _refuse_if_locked(self) -> None:
        if getattr(self, "_allow_locked_write", False):
            return
        status = (
            TreatmentSession.objects.filter(pk=self.session_id)
            .values_list("status", flat=True)
            .first()
        )
        if status in LOCKED:
            raise SessionLocked("This session is signed: change it by amendment, with a reason.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "diagram": self.diagram,
            "x": str(self.x),
            "y": str(self.y),
            "area": self.area,
            "muscle": self.muscle,
            "side": self.side,
            "units": str(self.units),
            "depth": self.depth,
            "vial": self.vial_id,
        }


class Override(models.Model):
    """A prescriber's decision to go ahead despite a finding, with the reason."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="overrides"
    )
    rule = models.CharField(max_length=40)
    message = models.TextField()
    source = models.TextField(blank=True)
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    objects = OrgManager()

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"override {self.rule}"


class Amendment(models.Model):
    """One correction of a signed session: what it was, what it became, why, by whom."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, related_name="amendments"
    )
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, default="amend")  # amend | void
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField()
    after = models.JSONField()

    objects = OrgManager()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["session", "number"], name="amendment_unique_number")
        ]

    def __str__(self) -> str:
        return f"amendment {self.number}"
