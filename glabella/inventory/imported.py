"""Writing imported lots: the lot facts only (product, lot number, expiry, vial size, GTIN).

An imported lot brings no stock: vials are received (``services.receive``) when they arrive.
A lot already on record with the same facts is returned unchanged; with other facts the
import is refused (a lot has one expiry and one vial size). Past expiry dates are accepted:
an imported lot can be historical (it is what past treatments were given from).
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from glabella.accounts.actor import Actor
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.clinical import catalogue
from glabella.inventory.gs1 import normalize_lot
from glabella.inventory.models import Lot
from glabella.inventory.services import MAX_LOT_LENGTH


def import_lot(
    actor: Actor,
    *,
    product_id: str,
    lot_number: str,
    expiry: date,
    vial_units: int,
    gtin: str = "",
    source: str = "",
) -> tuple[Lot, bool]:
    """The lot, created if new (with an audit row). Returns ``(lot, created)``."""
    actor.require("data.import")
    errors: dict[str, str] = {}
    try:
        product = catalogue.product(product_id)
    except KeyError:
        raise ValidationError({"product": "Choose the product."}) from None
    lot_number = normalize_lot(lot_number)
    if not lot_number or len(lot_number) > MAX_LOT_LENGTH:
        errors["lot_number"] = "Enter the lot number printed on the carton."
    if vial_units not in product.vial_units:
        errors["vial_units"] = (
            f"{product.brand} comes in vials of "
            + ", ".join(f"{u} U" for u in product.vial_units)
            + f", not {vial_units} U."
        )
    gtin = (gtin or "").strip()
    if gtin and (not gtin.isdigit() or len(gtin) > 14):
        errors["gtin"] = "A GTIN is up to 14 digits."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        lot, created = Lot.objects.get_or_create(
            organization=actor.organization,
            product_id=product.id,
            lot_number=lot_number,
            defaults={"gtin": gtin, "expiry": expiry, "vial_units": vial_units},
        )
        if not created:
            if lot.expiry != expiry or lot.vial_units != vial_units:
                raise ValidationError(
                    {
                        "lot_number": f"Lot {lot_number} of {product.brand} is on record with "
                        f"expiry {lot.expiry:%Y-%m-%d} and {lot.vial_units} U vials, not "
                        f"{expiry:%Y-%m-%d} and {vial_units} U."
                    }
                )
            return lot, False
        record(
            actor,
            Action.CREATE,
            lot,
            label=f"lot {lot_number} of {product.brand} (imported)",
            detail={
                "product": product.id,
                "expiry": expiry.isoformat(),
                "vial_units": vial_units,
                "imported": source,
            },
        )
    return lot, True
