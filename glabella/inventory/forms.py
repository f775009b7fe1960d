"""Stock forms. They only shape input for the page: the services validate and decide.

Counts, sizes, units and money are taken as text and handed to the services as typed, so the
message for "1.5 vials" or "abc" is the service's own plain-words one, beside the field.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest

from glabella.accounts.models import Clinic, Membership, Organization, User
from glabella.clinical import catalogue
from glabella.inventory.models import PriceBasis

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
COUNT_INPUT = forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "size": 4})
DECIMAL_INPUT = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "size": 6})

WASTE_REASONS = (
    "Rest of the vial at the end of the session",
    "Past its use-by time",
    "Dropped or contaminated",
)
DESTROY_REASONS = (
    "Lot expired",
    "Damaged vial",
    "Cold chain broken",
    "Lot recalled by the manufacturer",
)
ADJUST_REASONS = ("Stock count: vial missing", "Stock count: vial found", "Recording error")


def product_choices(blank: str = "Choose the product") -> list[tuple[str, str]]:
    return [("", blank)] + [(p.id, p.brand) for p in catalogue.products()]


def size_choices() -> list[tuple[str, str]]:
    sizes = sorted({size for p in catalogue.products() for size in p.vial_units})
    return [("", "Choose the vial size")] + [(str(s), f"{s} U") for s in sizes]


def product_sizes() -> dict[str, str]:
    """product id -> "50 100": lets the page's script show only the sizes a product comes in."""
    return {p.id: " ".join(str(s) for s in p.vial_units) for p in catalogue.products()}


def clinics_of(organization: Organization) -> Any:
    return Clinic.objects.filter(organization=organization).order_by("name")


class ClinicChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


# --- receiving -----------------------------------------------------------------------------


class ScanForm(forms.Form):
    """What the scanner types: the carton's GS1 code, then Enter."""

    barcode = forms.CharField(
        label="Scan the carton's code",
        max_length=300,
        strip=False,
        help_text="Point the scanner at the square code on the carton; it types the code and "
        "presses Enter. You can also type the line printed under it, e.g. "
        "(01)…(17)…(10)….",
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "autocapitalize": "off",
                "spellcheck": "false",
                "enterkeyhint": "go",
                "data-scanner": "",
            }
        ),
        error_messages={"required": "Scan the carton's code (or type it)."},
    )


class ConfirmScanForm(forms.Form):
    """After a scan: only what the code did not say (product, vial size) and the count."""

    barcode = forms.CharField(widget=forms.HiddenInput, strip=False)
    token = forms.CharField(widget=forms.HiddenInput)
    product_id = forms.ChoiceField(label="Which product is this?", required=False)
    vial_units = forms.ChoiceField(label="Vial size", required=False)
    vial_count = forms.CharField(
        label="How many vials?",
        max_length=20,
        widget=COUNT_INPUT,
        error_messages={"required": "Enter the number of vials."},
    )

    def __init__(self, *args: Any, needs_product: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product_id"].choices = product_choices()
        self.fields["vial_units"].choices = size_choices()
        self.fields["vial_units"].widget.attrs.update(
            {
                "data-sizes-for": self["product_id"].auto_id,
                "data-sizes": json.dumps(product_sizes()),
            }
        )
        # The first thing to answer has the focus: the product when the code is new here.
        first = "product_id" if needs_product else "vial_count"
        self.fields[first].widget.attrs["autofocus"] = True


class TypedReceiptForm(forms.Form):
    """Receiving without a scanner: what is printed on the carton."""

    token = forms.CharField(widget=forms.HiddenInput)
    product_id = forms.ChoiceField(label="Product", required=False)
    gtin = forms.CharField(
        label="Product code (GTIN)",
        required=False,
        max_length=20,
        help_text="Optional: the 14 digits after (01) on the carton.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    lot_number = forms.CharField(
        label="Lot number",
        required=False,
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    expiry = forms.CharField(label="Expiry date", required=False, widget=DATE_INPUT)
    vial_units = forms.ChoiceField(label="Vial size", required=False)
    vial_count = forms.CharField(label="How many vials?", required=False, widget=COUNT_INPUT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product_id"].choices = product_choices()
        self.fields["vial_units"].choices = size_choices()
        self.fields["vial_units"].widget.attrs.update(
            {
                "data-sizes-for": self["product_id"].auto_id,
                "data-sizes": json.dumps(product_sizes()),
            }
        )


# --- vials ---------------------------------------------------------------------------------


class ReconstituteForm(forms.Form):
    diluent_ml = forms.CharField(
        label="Diluent (mL of saline)",
        max_length=12,
        widget=DECIMAL_INPUT,
        error_messages={"required": "Enter the diluent volume in mL, e.g. 2.5."},
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class WasteForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the waste",
        max_length=300,
        widget=forms.TextInput(attrs={"list": "waste-reasons", "autocomplete": "off"}),
        error_messages={"required": "Say why, in a few words."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_waste_%s")
        super().__init__(*args, **kwargs)


class WitnessForm(forms.Form):
    """Destruction is witnessed: another active member of the organization, who confirms with
    their own password on this device (checked like a sign-in, failures audited)."""

    reason = forms.CharField(
        label="Reason for destroying",
        max_length=300,
        widget=forms.TextInput(attrs={"list": "destroy-reasons", "autocomplete": "off"}),
        error_messages={"required": "Say why, in a few words."},
    )
    witness = forms.ModelChoiceField(
        label="Witness",
        queryset=User.objects.none(),
        required=False,
        empty_label="Choose the colleague who saw it",
    )
    witness_password = forms.CharField(
        label="Witness's password",
        required=False,
        strip=False,
        help_text="The witness types their own password to confirm.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )

    def __init__(
        self,
        *args: Any,
        organization: Organization,
        user: User | None,
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        members = Membership.objects.filter(organization=organization, is_active=True)
        if user is not None:
            members = members.exclude(user=user)
        self.fields["witness"].queryset = (
            User.objects.filter(pk__in=members.values("user"), is_active=True)
            .distinct()
            .order_by("first_name", "last_name", "email")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        witness = data.get("witness")
        if witness is None:
            if "witness" not in self.errors:
                self.add_error(
                    "witness", "Destruction needs a witness: choose the colleague who saw it."
                )
            return data
        password = data.get("witness_password") or ""
        if not password:
            self.add_error("witness_password", f"{witness} types their password to confirm.")
        elif authenticate(self.request, email=witness.email, password=password) is None:
            self.add_error(
                "witness_password",
                f"That is not {witness}'s password. The witness types their own password.",
            )
        return data


class DestroyLotForm(WitnessForm):
    vials = forms.CharField(label="Sealed vials to destroy", max_length=20, widget=COUNT_INPUT)
    clinic = forms.IntegerField(widget=forms.HiddenInput)


class TransferForm(forms.Form):
    from_clinic = forms.IntegerField(widget=forms.HiddenInput)
    to_clinic = forms.IntegerField(label="Send to", widget=forms.Select)
    vial_count = forms.CharField(
        label="Sealed vials",
        max_length=20,
        widget=COUNT_INPUT,
        error_messages={"required": "Enter the number of vials."},
    )

    def __init__(self, *args: Any, destinations: list[Clinic] | None = None, **kwargs: Any):
        kwargs.setdefault("auto_id", "id_transfer_%s")
        super().__init__(*args, **kwargs)
        self.fields["to_clinic"].widget.choices = [("", "Choose the clinic")] + [
            (c.pk, c.name) for c in destinations or []
        ]
        self.fields["to_clinic"].error_messages["required"] = "Choose the clinic."
        self.fields["to_clinic"].error_messages["invalid"] = "Choose the clinic."


class AdjustForm(forms.Form):
    """Sealed vials found (+) or missing (-); or, with a vial, units of an opened vial."""

    clinic = forms.IntegerField(widget=forms.HiddenInput)
    vial = forms.IntegerField(widget=forms.HiddenInput, required=False)
    vials = forms.CharField(
        label="Sealed vials (+ found, - missing)",
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "text", "autocomplete": "off", "size": 4}),
    )
    units = forms.CharField(
        label="Units (+ or -)",
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "text", "autocomplete": "off", "size": 6}),
    )
    reason = forms.CharField(
        label="Reason for the correction",
        required=False,
        max_length=300,
        widget=forms.TextInput(attrs={"list": "adjust-reasons", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_adjust_%s")
        super().__init__(*args, **kwargs)


# --- reports -------------------------------------------------------------------------------


class ReconciliationForm(forms.Form):
    clinic = forms.CharField(required=False, widget=forms.Select)
    lot = forms.CharField(required=False, widget=forms.Select, label="Lot")
    start = forms.DateField(label="From", widget=DATE_INPUT, required=False)
    end = forms.DateField(label="To (included)", widget=DATE_INPUT, required=False)

    def __init__(self, *args: Any, clinics: Any = (), lots: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].widget.choices = [("all", "All clinics")] + [
            (str(c.pk), c.name) for c in clinics
        ]
        self.fields["lot"].widget.choices = [("", "All lots")] + [
            (str(lot.pk), f"{lot.lot_number} · {catalogue.product(lot.product_id).brand}")
            for lot in lots
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if isinstance(start, date) and isinstance(end, date) and end < start:
            self.add_error("end", "The end of the period is before its start.")
        return data


class RecallForm(forms.Form):
    lot = forms.CharField(
        label="Lot number",
        max_length=60,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "autocapitalize": "characters"}
        ),
        error_messages={"required": "Enter the lot number to trace."},
    )


# --- settings ------------------------------------------------------------------------------


class ThresholdForm(forms.Form):
    min_vials = forms.CharField(
        label="Minimum sealed vials",
        max_length=10,
        required=False,
        widget=COUNT_INPUT,
    )


class PriceForm(forms.Form):
    amount = forms.CharField(label="Price", max_length=20, required=False, widget=DECIMAL_INPUT)
    currency = forms.CharField(
        label="Currency",
        max_length=12,
        required=False,
        widget=forms.TextInput(
            attrs={"size": 3, "autocapitalize": "characters", "placeholder": "GBP"}
        ),
    )
    basis = forms.ChoiceField(label="Charged", choices=PriceBasis.choices, required=False)
