"""Forms of the patient's own pages (plain words: a patient fills them in on a phone)."""

from __future__ import annotations

from typing import Any

from django import forms

from glabella.clinical.diary import MEDICATION_KINDS

DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]

MEDICATION_WORDS: dict[str, str] = {
    "simple_analgesic": "Simple painkiller (paracetamol, aspirin, ibuprofen…)",
    "triptan": "Triptan (sumatriptan, rizatriptan…)",
    "ergot": "Ergotamine",
    "opioid": "Opioid painkiller (codeine, tramadol…)",
    "combination": "Combination painkiller (two or more medicines in one tablet)",
}
SEVERITY_CHOICES = [("1", "Mild"), ("2", "Moderate"), ("3", "Severe")]


class DiaryForm(forms.Form):
    day = forms.DateField(
        label="Day",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": "Choose the day.",
            "invalid": "Write the day as DD/MM/YYYY.",
        },
    )
    headache = forms.ChoiceField(
        label="Did you have a headache that day?",
        choices=[("yes", "Yes"), ("no", "No")],
        widget=forms.RadioSelect,
        error_messages={"required": "Say whether you had a headache that day."},
    )
    migraine = forms.BooleanField(
        label="It was a migraine (throbbing, worse when moving, feeling sick, or light or "
        "noise hurting)",
        required=False,
    )
    severity = forms.TypedChoiceField(
        label="How bad was it at its worst?",
        choices=SEVERITY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose mild, moderate or severe."},
    )
    hours = forms.DecimalField(
        label="For how many hours?",
        required=False,
        min_value=0,
        max_value=24,
        decimal_places=1,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.5"}),
        error_messages={
            "invalid": "Write the hours as a number, for example 4 or 2.5.",
            "min_value": "Hours are between 0 and 24.",
            "max_value": "Hours are between 0 and 24.",
            "max_decimal_places": "Hours to one decimal place at most, for example 2.5.",
        },
    )
    acute_medication = forms.MultipleChoiceField(
        label="Medicine you took for the headache that day",
        choices=[(k, MEDICATION_WORDS.get(k, k)) for k in MEDICATION_KINDS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose medicines from the list."},
    )

    def values(self) -> dict[str, Any]:
        """What to record (headache-only details dropped on a day without headache)."""
        data = self.cleaned_data
        headache = data["headache"] == "yes"
        return {
            "headache": headache,
            "migraine": bool(data.get("migraine")) and headache,
            "severity": data.get("severity") if headache else None,
            "hours": data.get("hours") if headache else None,
            "acute_medication": list(data.get("acute_medication") or []),
        }


class WearingOffForm(forms.Form):
    returned_on = forms.DateField(
        label="Since when?",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": "Choose the day it started wearing off.",
            "invalid": "Write the day as DD/MM/YYYY.",
        },
    )
