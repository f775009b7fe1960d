"""Forms only shape input for the page; the services validate and decide."""

from __future__ import annotations

from typing import Any

from django import forms

from glabella.accounts.models import Clinic
from glabella.clinical import catalogue
from glabella.patients import screening
from glabella.patients.models import Channel, HistoryKind, Sex

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class PatientForm(forms.Form):
    given_name = forms.CharField(max_length=100, label="Given name")
    family_name = forms.CharField(max_length=100, label="Family name")
    date_of_birth = forms.DateField(label="Date of birth", widget=DATE_INPUT)
    sex = forms.ChoiceField(choices=Sex.choices, initial=Sex.UNKNOWN)
    weight_kg = forms.DecimalField(
        label="Weight (kg)",
        required=False,
        max_digits=5,
        decimal_places=1,
        help_text="Needed for children: their doses are limited per kilogram.",
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )
    phone = forms.CharField(
        max_length=40, required=False, widget=forms.TextInput(attrs={"type": "tel"})
    )
    email = forms.EmailField(
        required=False, label="E-mail", error_messages={"invalid": "Enter a valid e-mail address."}
    )
    address = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    home_clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), required=False)
    preferred_channel = forms.ChoiceField(choices=Channel.choices, label="Reminders by")
    reminder_consent = forms.BooleanField(
        required=False, label="The patient agrees to reminders and recall invitations"
    )

    def __init__(self, *args: Any, organization: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["home_clinic"].queryset = Clinic.objects.filter(organization=organization)


class NotesForm(forms.Form):
    clinical_notes = forms.CharField(
        required=False, label="Clinical notes", widget=forms.Textarea(attrs={"rows": 4})
    )


class ScreeningForm(forms.Form):
    """One yes/no per screening question, each with an optional detail."""

    def __init__(
        self, *args: Any, current: frozenset[tuple[str, str]] = frozenset(), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.questions = []
        for q in screening.SCREENING_QUESTIONS:
            key = f"{q.kind}:{q.code}"
            answer = forms.TypedChoiceField(
                label=q.question,
                choices=[("yes", "Yes"), ("no", "No")],
                widget=forms.RadioSelect,
                coerce=lambda v: v == "yes",
                required=True,
                error_messages={"required": "Answer yes or no."},
                initial=("yes" if (q.kind, q.code) in current else None),
            )
            detail = forms.CharField(
                label="Details",
                required=False,
                max_length=500,
                widget=forms.TextInput(attrs={"placeholder": "Details (which drug, which site…)"}),
            )
            self.fields[f"a_{q.kind}_{q.code}"] = answer
            self.fields[f"d_{q.kind}_{q.code}"] = detail
            self.questions.append((key, self[f"a_{q.kind}_{q.code}"], self[f"d_{q.kind}_{q.code}"]))

    def answers(self) -> tuple[dict[str, bool], dict[str, str]]:
        answers: dict[str, bool] = {}
        details: dict[str, str] = {}
        for q in screening.SCREENING_QUESTIONS:
            key = f"{q.kind}:{q.code}"
            answers[key] = bool(self.cleaned_data[f"a_{q.kind}_{q.code}"])
            details[key] = self.cleaned_data.get(f"d_{q.kind}_{q.code}", "")
        return answers, details

    def field_for(self, key: str) -> str:
        kind, code = key.split(":", 1)
        return f"a_{kind}_{code}"


def _product_choices() -> list[tuple[str, str]]:
    return [("", "—")] + [(p.id, f"{p.brand} ({p.generic})") for p in catalogue.products()]


class HistoryItemForm(forms.Form):
    kind = forms.ChoiceField(choices=HistoryKind.choices, widget=forms.HiddenInput)
    code = forms.ChoiceField(choices=[], label="What")
    detail = forms.CharField(required=False, max_length=500, label="Details")
    treated_on = forms.DateField(required=False, label="Date treated", widget=DATE_INPUT)
    product_id = forms.ChoiceField(required=False, choices=_product_choices, label="Product")
    units = forms.CharField(
        required=False,
        label="Units",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    area = forms.CharField(required=False, max_length=100, label="Area treated")

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["kind"].initial = kind
        self.fields["code"].choices = screening.code_choices(kind)
        if kind == HistoryKind.OUTSIDE_TREATMENT:
            self.fields["code"].widget = forms.HiddenInput()
            self.fields["code"].initial = "toxin"
        else:
            for name in ("treated_on", "product_id", "units", "area"):
                del self.fields[name]


class CloseItemForm(forms.Form):
    how = forms.ChoiceField(
        choices=[("resolved", "No longer applies"), ("error", "Entered in error")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(required=False, max_length=300)
