"""Side effect forms. They only shape the input: ``glabella.outcomes.adverse`` validates and
decides, and its refusals (``AdverseRefused.errors``) are put beside the fields here."""

from __future__ import annotations

from typing import Any

from django import forms

from glabella.outcomes.adverse import AdverseRefused
from glabella.outcomes.models import AdverseKind, AdverseOutcome, SeriousCriterion, Severity

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"]


def _date(label: str, *, required: bool, help_text: str = "") -> forms.DateField:
    return forms.DateField(
        label=label,
        required=required,
        input_formats=DATE_FORMATS,
        widget=DATE_INPUT,
        help_text=help_text,
        error_messages={
            "required": f"Enter the {label.lower()}.",
            "invalid": f"Write the {label.lower()} as DD/MM/YYYY.",
        },
    )


def _severity() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="How severe",
        choices=Severity.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose how severe it is: mild, moderate or severe.",
            "invalid_choice": "Choose how severe it is: mild, moderate or severe.",
        },
    )


def _serious() -> forms.BooleanField:
    return forms.BooleanField(
        label="Serious",
        required=False,
        help_text="Serious means at least one of the reasons below (ICH E2A).",
    )


def _criteria() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label="Why it is serious",
        required=False,
        choices=SeriousCriterion.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose the reasons it is serious from the list."},
    )


def _outcome() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Outcome",
        choices=AdverseOutcome.choices,
        initial=AdverseOutcome.UNKNOWN,
        error_messages={
            "required": "Choose the outcome (choose “unknown” if it is not known yet).",
            "invalid_choice": "Choose the outcome from the list.",
        },
    )


class ServiceErrors:
    """Mixin: put an :class:`AdverseRefused` beside the fields it names."""

    def apply(self, exc: AdverseRefused) -> None:
        for name, message in exc.errors.items():
            self.add_error(name if name in self.fields else None, message)  # type: ignore[attr-defined]


class AdverseForm(ServiceErrors, forms.Form):
    kind = forms.ChoiceField(
        label="What happened",
        choices=AdverseKind.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose what happened.",
            "invalid_choice": "Choose what happened.",
        },
    )
    other_text = forms.CharField(
        label="What happened (other)",
        required=False,
        max_length=200,
        help_text="Only when you chose “other”.",
        error_messages={"max_length": "Say what happened in 200 characters or fewer."},
    )
    onset_on = _date("Date it started", required=True)
    severity = _severity()
    serious = _serious()
    serious_criteria = _criteria()
    outcome = _outcome()
    outcome_on = _date(
        "Outcome date",
        required=False,
        help_text="When it resolved, or the date of the outcome you chose.",
    )
    description = forms.CharField(
        label="Description",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the patient noticed and what you saw.",
    )
    action_taken = forms.CharField(
        label="Action taken",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For example: apraclonidine eye drops; referred to the eye clinic.",
    )


class FollowUpForm(ServiceErrors, forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    severity = _severity()
    serious = _serious()
    serious_criteria = _criteria()
    outcome = _outcome()
    outcome_on = _date("Outcome date", required=False)
    action_taken = forms.CharField(
        label="Action taken", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def changes(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("version", None)
        return data


class ReportedForm(ServiceErrors, forms.Form):
    reported_on = _date("Date reported", required=True)
    reference = forms.CharField(
        label="Reference",
        max_length=100,
        help_text="The reference the regulator gave (Yellow Card, MedWatch, ...).",
        error_messages={
            "required": "Enter the reference the regulator gave the report.",
            "max_length": "The reference is too long: 100 characters at most.",
        },
    )


class InErrorForm(ServiceErrors, forms.Form):
    reason = forms.CharField(
        label="Why this record is wrong",
        max_length=300,
        error_messages={
            "required": "Say why this record is wrong.",
            "max_length": "Keep the reason to 300 characters or fewer.",
        },
    )
