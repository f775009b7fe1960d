"""Stock: lots, vials and the stock ledger (``StockMove``), plus thresholds and prices.

The ledger is the truth: what is on hand is computed from ``StockMove`` rows (see the module
docstring of :mod:`glabella.inventory.services` for the sign convention and the reconciliation
identity). Ledger rows are append-only, in three layers: the services only ever insert, the
model and its queryset refuse update and delete (:class:`LedgerAppendOnly`), and the database
refuses them too (triggers, migration 0002). A mistaken move is reversed by a new move that
points at it (``reverses``).

A ``Vial`` row is the identity of one physical vial: where it is and what state it is in. Its
state changes (sealed → reconstituted → finished / discarded) are written by the services in the
same transaction as the move that explains them; its content (units left) is never stored, it
is the vial size plus the sum of the moves that name the vial.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from glabella.common_models import OrgManager, OrgQuerySet


class LedgerAppendOnly(Exception):
    """Raised when anything tries to change or delete a stock move."""


class VialState(models.TextChoices):
    SEALED = "sealed", "Sealed"
    RECONSTITUTED = "reconstituted", "Reconstituted (open)"
    FINISHED = "finished", "Finished"
    DISCARDED = "discarded", "Discarded"


CLOSED_STATES = frozenset({VialState.FINISHED, VialState.DISCARDED})


class ClosedHow(models.TextChoices):
    """How a vial came to be closed (finished or discarded)."""

    EMPTIED = "emptied", "Emptied by draws"
    WASTED = "wasted", "Rest wasted"
    FINISHED = "finished", "Marked finished"
    DESTROYED = "destroyed", "Destroyed (witnessed)"
    ADJUSTED = "adjusted", "Written off by an adjustment"


class MoveKind(models.TextChoices):
    RECEIVE = "receive", "Received"
    TRANSFER_OUT = "transfer_out", "Transferred out"
    TRANSFER_IN = "transfer_in", "Transferred in"
    RECONSTITUTE = "reconstitute", "Reconstituted"
    ADMINISTER = "administer", "Administered"
    WASTE = "waste", "Wasted"
    DESTROY = "destroy", "Destroyed"
    ADJUST = "adjust", "Adjusted"


class PriceBasis(models.TextChoices):
    PER_UNIT = "per_unit", "Per unit"
    PER_AREA = "per_area", "Per area treated"


class GtinProduct(models.Model):
    """A GTIN (the product code on a carton) mapped to a catalogue product, chosen once."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    gtin = models.CharField("GTIN", max_length=14)
    product_id = models.CharField("product", max_length=30)
    vial_units = models.PositiveIntegerField("vial size (units)", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = OrgManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "gtin"], name="gtin_unique_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.gtin} → {self.product_id}"


class Lot(models.Model):
    """A manufacturer's lot of one product. All its vials have the same size (``vial_units``)."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    product_id = models.CharField("product", max_length=30)
    gtin = models.CharField("GTIN", max_length=14, blank=True)
    lot_number = models.CharField("lot number", max_length=40)
    expiry = models.DateField("expiry date")
    vial_units = models.PositiveIntegerField("vial size (units)")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgManager()

    class Meta:
        ordering = ["expiry", "lot_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "product_id", "lot_number"], name="lot_unique_per_org"
            )
        ]
        indexes = [
            # recall: "which lot is C1234AB?" (lot number without the product)
            models.Index(fields=["organization", "lot_number"], name="lot_number"),
            # alerts: lots expiring soon
            models.Index(fields=["organization", "expiry"], name="lot_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.lot_number} (exp. {self.expiry:%d/%m/%Y})"


class Vial(models.Model):
    """One physical vial. Units left = ``units`` + the sum of the moves that name it."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="vials")
    units = models.PositiveIntegerField("vial size (units)")
    state = models.CharField(max_length=14, choices=VialState.choices, default=VialState.SEALED)
    opened_at = models.DateTimeField("reconstituted at", null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    diluent_ml = models.DecimalField(
        "diluent (mL)", max_digits=6, decimal_places=2, null=True, blank=True
    )
    concentration = models.DecimalField(
        "units per 0.1 mL", max_digits=14, decimal_places=6, null=True, blank=True
    )
    use_by = models.DateTimeField("use by", null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_how = models.CharField(max_length=10, choices=ClosedHow.choices, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    objects = OrgManager()

    class Meta:
        ordering = ["pk"]
        indexes = [
            # usable vials / open vials / alerts at a clinic
            models.Index(fields=["organization", "clinic", "state"], name="vial_clinic_state"),
            # sealed vials of a lot at a clinic (transfer, destroy, adjust)
            models.Index(fields=["lot", "clinic", "state"], name="vial_lot_clinic_state"),
        ]

    def __str__(self) -> str:
        return f"vial #{self.pk} {self.units} U, lot {self.lot.lot_number}"

    @property
    def product_id(self) -> str:
        return self.lot.product_id


class StockMoveQuerySet(OrgQuerySet["StockMove"]):
    def update(self, **kwargs: Any) -> int:
        raise LedgerAppendOnly(
            "Stock moves are never changed: reverse a mistaken move with a new one."
        )

    def delete(self) -> Any:
        raise LedgerAppendOnly(
            "Stock moves are never deleted: reverse a mistaken move with a new one."
        )


class StockMove(models.Model):
    """One line of the stock ledger. ``units`` and ``vials`` are signed changes of the
    clinic's stock of the lot (+ in, - out); see :mod:`glabella.inventory.services`."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=14, choices=MoveKind.choices)
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="moves")
    vial = models.ForeignKey(
        Vial, null=True, blank=True, on_delete=models.PROTECT, related_name="moves"
    )
    units = models.DecimalField(max_digits=12, decimal_places=2)
    vials = models.IntegerField(default=0)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)
    session = models.ForeignKey(
        "charting.TreatmentSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stock_moves",
    )
    point_number = models.PositiveIntegerField(null=True, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    other_clinic = models.ForeignKey(
        "accounts.Clinic",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="for a transfer: where the vials went to, or came from",
    )
    note = models.TextField(blank=True)

    objects = models.Manager.from_queryset(StockMoveQuerySet)()

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="destroy") | Q(witness__isnull=False),
                name="move_destroy_needs_witness",
            ),
            models.CheckConstraint(
                condition=~Q(kind="administer") | Q(session__isnull=False, vial__isnull=False),
                name="move_administer_needs_session_and_vial",
            ),
        ]
        indexes = [
            # reconciliation and on-hand: sums per clinic and lot up to a time
            models.Index(fields=["organization", "clinic", "lot", "at"], name="move_clinic_lot_at"),
            # recall trace: lot -> administer moves -> sessions (session_id in the index
            # so the join to the session needs no visit to the move row first)
            models.Index(fields=["lot", "kind", "session"], name="move_lot_kind_session"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.units} U ({self.vials} vials) lot {self.lot_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerAppendOnly(
                "Stock moves are never changed: reverse a mistaken move with a new one."
            )
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise LedgerAppendOnly(
            "Stock moves are never deleted: reverse a mistaken move with a new one."
        )


class Threshold(models.Model):
    """Warn when a clinic has fewer than ``min_vials`` sealed, in-date vials of a product."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    product_id = models.CharField("product", max_length=30)
    min_vials = models.PositiveIntegerField("minimum sealed vials")

    objects = OrgManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "product_id"], name="threshold_unique_per_clinic"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: at least {self.min_vials} vials"


class Price(models.Model):
    """What a clinic charges for a product: per unit, or per area treated."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    product_id = models.CharField("product", max_length=30)
    basis = models.CharField(max_length=10, choices=PriceBasis.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)

    objects = OrgManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "product_id"], name="price_unique_per_clinic"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.amount} {self.currency} {self.get_basis_display()}"
