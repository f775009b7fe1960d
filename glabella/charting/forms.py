"""Charting forms: starting a session, the vial details, overrides, amending and voiding.

Forms only shape what the page sends; every rule is checked again by the services. Units
are read as text and parsed by ``services.parse_point_units`` so the messages are the same
everywhere (0, -1, NaN, "abc", 501 ...).
"""

from __future__ import annotations

from typing import Any

from django import forms

from glabella.accounts.models import Membership, Organization, User
from glabella.charting import services
from glabella.charting.models import Depth, InjectionPoint, TreatmentSession
from glabella.clinical import catalogue, indications, protocols

# Quick-unit buttons per product: a layout choice for the charting page, not a dose.
_COSMETIC_STEPS = ("2", "2.5", "4", "5", "10")
QUICK_UNITS: dict[str, tuple[str, ...]] = {
    "botox_cosmetic": _COSMETIC_STEPS,
    "xeomin": _COSMETIC_STEPS,
    "jeuveau": _COSMETIC_STEPS,
    "letybo": _COSMETIC_STEPS,
    "botox": ("2.5", "5", "10", "25", "50"),
    "dysport": ("5", "10", "20", "50"),
    "daxxify": ("4", "8", "16"),
    "myobloc": ("250", "500", "1000"),
}
DEFAULT_UNITS: dict[str, str] = {
    "botox_cosmetic": "4",
    "xeomin": "4",
    "jeuveau": "4",
    "letybo": "4",
    "botox": "5",
    "dysport": "10",
    "daxxify": "8",
    "myobloc": "500",
}


def quick_units(product_id: str) -> tuple[str, ...]:
    return QUICK_UNITS.get(product_id, _COSMETIC_STEPS)


def matching_protocols(product_id: str, indication: str) -> list[protocols.Protocol]:
    """Protocol templates for exactly this product and indication (never another product's)."""
    if not product_id or not indication:
        return []
    return [
        p
        for p in protocols.all()
        if p.sites and product_id in p.product_ids and indication in p.indications
    ]


def starter_protocols() -> list[protocols.Protocol]:
    """Every protocol with sites: the one-tap starts on the start page."""
    return [p for p in protocols.all() if p.sites]


def laid_out(protocol: protocols.Protocol) -> str:
    """What starting from PROTOCOL puts on the chart, in words."""
    n = sum(s.count for s in protocol.sites if s.units > 0)
    if n == 0:
        return "No fixed doses: the muscles and units are chosen for the patient"
    return f"{n} point{'s' if n != 1 else ''}, {_plain(protocol.total_units)} U laid out"


def prescribers(organization: Organization) -> Any:
    ids = Membership.objects.filter(
        organization=organization, role="prescriber", is_active=True
    ).values_list("user_id", flat=True)
    return User.objects.filter(pk__in=ids).order_by("first_name", "last_name", "email")


class _DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class StartForm(forms.Form):
    indication = forms.ChoiceField(label="Indication")
    product_id = forms.ChoiceField(label="Product")
    treated_on = forms.DateField(label="Date of treatment", widget=_DateInput())
    prescriber = forms.ModelChoiceField(
        label="Prescriber of record",
        queryset=User.objects.none(),
        required=False,
        empty_label="Choose later (needed before signing)",
    )
    start_from = forms.ChoiceField(label="Start from", widget=forms.RadioSelect)
    follow_up_of = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        organization: Organization,
        last: TreatmentSession | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.last = last
        self.fields["indication"].choices = [("", "Choose the indication")] + [
            (i.id, i.name) for i in indications.indications()
        ]
        self.fields["product_id"].choices = [("", "Choose the product")] + [
            (p.id, p.brand) for p in catalogue.products()
        ]
        self.fields["prescriber"].queryset = prescribers(organization)
        self.fields["prescriber"].label_from_instance = lambda u: str(u)
        # Every start is accepted here; clean() checks the protocol fits.
        choices = [("blank", "Blank chart")]
        if last is not None:
            choices.append(("repeat", "Repeat last treatment"))
        choices += [(f"protocol:{p.id}", p.name) for p in starter_protocols()]
        self.fields["start_from"].choices = choices

    def current(self, name: str) -> str:
        """The value of NAME as the page shows it (bound data first, then initial)."""
        if self.is_bound:
            return str(self.data.get(name) or "")
        return str(self.initial.get(name) or "")

    def start_choices(self) -> list[tuple[str, str, str]]:
        """(value, label, detail) of the starts that fit the chosen product and indication."""
        product_id, indication = self.current("product_id"), self.current("indication")
        out = [("blank", "Blank chart", "Chart every point yourself.")]
        for p in matching_protocols(product_id, indication):
            out.append((f"protocol:{p.id}", p.name, laid_out(p)))
        if self.last is not None:
            brand = catalogue.product(self.last.product_id).brand
            out.append(
                (
                    "repeat",
                    "Repeat last treatment",
                    f"{self.last.treated_on:%d/%m/%Y}: {brand}, "
                    f"{_plain(services.totals(self.last).total)} U",
                )
            )
        return out

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start = data.get("start_from") or ""
        product_id, indication = data.get("product_id"), data.get("indication")
        if start.startswith("protocol:") and product_id and indication:
            protocol = protocols.get(start.split(":", 1)[1])
            if product_id not in protocol.product_ids:
                names = ", ".join(catalogue.product(p).brand for p in protocol.product_ids)
                self.add_error(
                    "start_from",
                    f"This protocol is for {names}; this session uses "
                    f"{catalogue.product(product_id).brand}. Units are not interchangeable.",
                )
            elif indication not in protocol.indications:
                self.add_error(
                    "start_from",
                    "This protocol is for "
                    + ", ".join(indications.get(i).name.lower() for i in protocol.indications)
                    + ", not the indication chosen.",
                )
        return data


def _plain(value: Any) -> str:
    from glabella.web.templatetags.glabella_tags import units

    return units(value)


class DetailsForm(forms.Form):
    """The vial and the session's details. Only the fields the page sent are changed."""

    lot_number = forms.CharField(label="Lot number", max_length=40, required=False)
    lot_expiry = forms.DateField(label="Expiry", required=False, widget=_DateInput())
    vial_units = forms.IntegerField(label="Vial size", required=False, widget=forms.Select())
    diluent_ml = forms.DecimalField(
        label="Diluent (mL)",
        required=False,
        max_digits=5,
        decimal_places=2,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )
    prescriber = forms.ModelChoiceField(
        label="Prescriber of record",
        queryset=User.objects.none(),
        required=False,
        empty_label="Not chosen yet",
    )
    pre_notes = forms.CharField(
        label="Pre-treatment notes", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, session: TreatmentSession, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "lot_number": session.lot_number,
                "lot_expiry": session.lot_expiry,
                "vial_units": session.vial_units,
                "diluent_ml": session.diluent_ml,
                "prescriber": session.prescriber_id,
                "pre_notes": session.pre_notes,
            },
        )
        super().__init__(*args, **kwargs)
        product = catalogue.product(session.product_id)
        self.fields["vial_units"].widget.choices = [("", "Not recorded")] + [
            (v, f"{v} U") for v in product.vial_units
        ]
        self.fields["prescriber"].queryset = prescribers(session.organization)
        self.fields["lot_number"].widget.attrs.update(
            {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        )

    def changes(self) -> dict[str, Any]:
        """Cleaned values of the fields present in the request."""
        return {k: v for k, v in self.cleaned_data.items() if k in self.data}


class OverrideForm(forms.Form):
    rule = forms.CharField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Clinical reason for going ahead",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the clinical reason for going ahead (a sentence)."},
    )


class VoidForm(forms.Form):
    reason = forms.CharField(
        label="Why was this session entered in error?",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why this session was entered in error."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: on the signed record it stands beside the amendment form, whose reason
        # is "id_reason" too (two fields with one id: the void form's label named the other).
        kwargs.setdefault("auto_id", "id_void_%s")
        super().__init__(*args, **kwargs)


class UnitsInput(forms.TextInput):
    """A point's units, typed: a text input with the decimal keypad on a tablet."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"inputmode": "decimal", "class": "units-input", **(attrs or {})})


def lots_typed(session: TreatmentSession, points: list[InjectionPoint]) -> bool:
    """Whether an amendment types the lot: not when the points were drawn from vials (the lots
    are the vials')."""
    return session.vial_id is None and not any(p.vial_id for p in points)


class AmendForm(forms.Form):
    """Reason, the units of every point, and the lot. Only what differs is amended."""

    reason = forms.CharField(
        label="Reason for the correction",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the record is being corrected."},
    )
    lot_number = forms.CharField(label="Lot number", max_length=40)
    lot_expiry = forms.DateField(label="Expiry", widget=_DateInput())

    def __init__(
        self,
        *args: Any,
        session: TreatmentSession,
        points: list[InjectionPoint] | None = None,
        **kwargs: Any,
    ) -> None:
        # POINTS: the session's live points, when the page has read them already.
        self.points = services.live_points(session) if points is None else points
        self.product_id = session.product_id
        self.lots_typed = lots_typed(session, self.points)
        initial = {"lot_number": session.lot_number, "lot_expiry": session.lot_expiry}
        initial.update({f"units_{p.number}": _plain(p.units) for p in self.points})
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        if not self.lots_typed:
            del self.fields["lot_number"]
            del self.fields["lot_expiry"]
        for p in self.points:
            # The widget as a class: each field makes its own (an instance would be deep-copied
            # for every point: a third of the form's cost on a 31-point record).
            self.fields[f"units_{p.number}"] = forms.CharField(
                label=f"Point {p.number} units", widget=UnitsInput
            )

    def point_fields(self) -> list[tuple[Any, forms.BoundField]]:
        return [(p, self[f"units_{p.number}"]) for p in self.points]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for p in self.points:
            name = f"units_{p.number}"
            if name in data:
                try:
                    data[name] = services.parse_point_units(data[name], self.product_id)
                except forms.ValidationError as exc:
                    self.add_error(name, exc.message_dict.get("units", exc.messages))
        return data

    def point_units(self) -> dict[int, Any]:
        return {
            p.number: self.cleaned_data[f"units_{p.number}"]
            for p in self.points
            if f"units_{p.number}" in self.cleaned_data
        }

    def details(self) -> dict[str, Any]:
        if not self.lots_typed:
            return {}
        return {
            "lot_number": self.cleaned_data.get("lot_number") or "",
            "lot_expiry": self.cleaned_data.get("lot_expiry"),
        }


DEPTHS = [(d.value, d.label) for d in Depth]
