"""Forms only shape input for the pages; the services validate and decide."""

from __future__ import annotations

from django import forms

from glabella.consent.files import SCAN_KINDS
from glabella.consent.models import Method

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
SCAN_ACCEPT = ",".join(kind.content_type for _magic, kind in SCAN_KINDS)


class TakeConsentForm(forms.Form):
    method = forms.ChoiceField(
        choices=Method.choices, required=False, widget=forms.RadioSelect, label="How it is signed"
    )
    signature = forms.CharField(required=False, widget=forms.HiddenInput)
    scan = forms.FileField(
        required=False,
        label="Scan or photo of the signed form",
        help_text="PDF, PNG or JPEG, up to 10 MB.",
        widget=forms.FileInput(attrs={"accept": SCAN_ACCEPT}),
        error_messages={"empty": "The file is empty. Scan the form again."},
    )
    signed_on = forms.DateField(
        required=False,
        label="Date written on the form",
        widget=DATE_INPUT,
        error_messages={"invalid": "Enter the date as DD/MM/YYYY."},
    )
    read_confirmed = forms.BooleanField(
        required=False, label="The patient has read this and had the chance to ask questions"
    )
    form_token = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)
    template_version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Why is the consent withdrawn?",
        help_text="For example what the patient said, and when.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class TemplateForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, label="Title")
    body = forms.CharField(
        required=False,
        label="Text the patient reads",
        help_text="Plain text. A blank line starts a new paragraph; a short first line of a "
        "paragraph is shown as its heading; a line starting with • or - is a bullet. "
        "Placeholders: {patient_name}, {date_of_birth}, {clinic_name}, {date}.",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "true"}),
    )
    valid_months = forms.IntegerField(
        required=False,
        label="A signed consent lasts (months)",
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1, "max": 60}),
        error_messages={"invalid": "Enter a whole number of months, e.g. 12."},
    )
