"""Forms of the duration-of-effect pages: when the effect returned, a report entered in error,
and the clinic's cohort filters."""

from __future__ import annotations

from typing import Any

from django import forms

from glabella.accounts.models import Clinic, Organization
from glabella.outcomes.durations import cohort_indications
from glabella.outcomes.models import Rater
from glabella.scheduling.forms import org_clinics


class ReturnForm(forms.Form):
    returned_on = forms.DateField(
        label="Effect returned on",
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The day movement or symptoms came back.",
        error_messages={
            "required": "Enter the day the effect returned.",
            "invalid": "Enter the date as DD/MM/YYYY.",
        },
    )
    rater = forms.ChoiceField(
        label="Reported by",
        choices=Rater.choices,
        initial=Rater.CLINICIAN,
        error_messages={
            "required": "Say who reported it.",
            "invalid_choice": "Choose the clinician or the patient.",
        },
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=300,
        error_messages={"max_length": "Keep the note under 300 characters."},
    )

    def __init__(self, *args: Any, session_id: int, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", f"s{session_id}")
        super().__init__(*args, **kwargs)


class InErrorForm(forms.Form):
    reason = forms.CharField(
        label="Why is this report wrong?",
        max_length=300,
        error_messages={
            "required": "Say why this report was entered in error.",
            "max_length": "Keep the reason under 300 characters.",
        },
    )

    def __init__(self, *args: Any, return_id: int, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", f"r{return_id}")
        super().__init__(*args, **kwargs)


class CohortForm(forms.Form):
    indication = forms.ChoiceField(
        label="Indication",
        choices=[],
        error_messages={
            "required": "Choose an indication.",
            "invalid_choice": "Choose one of the listed indications.",
        },
    )
    clinic = forms.ModelChoiceField(
        label="Clinic",
        queryset=Clinic.objects.none(),
        required=False,
        empty_label="All clinics",
        error_messages={"invalid_choice": "Choose one of your organization's clinics."},
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = cohort_indications(organization)
        self.fields["indication"].choices = choices  # type: ignore[attr-defined]
        self.fields["clinic"].queryset = org_clinics(organization)  # type: ignore[attr-defined]
