"""Forms only shape input for the pages; the services check and decide."""

from __future__ import annotations

from typing import Any

from django import forms

from glabella.charting.models import Status as SessionStatus
from glabella.charting.models import TreatmentSession
from glabella.patients.models import Patient
from glabella.photos.models import Area, Expression, Source, View

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class SessionChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.treated_on:%d/%m/%Y} · {obj.indication.replace('-', ' ')} · {obj.product_id}"


class TakePhotoForm(forms.Form):
    area = forms.ChoiceField(
        choices=[("", "Choose…"), *Area.choices],
        required=False,
        label="Area",
    )
    view = forms.ChoiceField(
        choices=View.choices, required=False, label="View", widget=forms.RadioSelect
    )
    expression = forms.ChoiceField(
        choices=Expression.choices, required=False, label="Expression", widget=forms.RadioSelect
    )
    session = SessionChoiceField(
        queryset=TreatmentSession.objects.none(),
        required=False,
        empty_label="Not linked to a session",
        label="Treatment session (optional)",
        error_messages={"invalid_choice": "Choose one of this patient's treatment sessions."},
    )
    taken_on = forms.DateField(
        required=False,
        label="Date taken",
        widget=DATE_INPUT,
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        error_messages={"invalid": "Enter the date as DD/MM/YYYY."},
    )
    photo = forms.FileField(
        required=False,
        label="Or choose a photo",
        help_text="JPEG, PNG or WebP. Location and camera details are removed when it is saved.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/*", "capture": "environment"}
        ),
        error_messages={"empty": "The file is empty. Take the photo again or choose another."},
    )
    source = forms.ChoiceField(
        choices=Source.choices, required=False, widget=forms.HiddenInput, initial=Source.UPLOAD
    )

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["session"].queryset = (  # type: ignore[attr-defined]
            TreatmentSession.objects.for_org(patient.organization_id)
            .filter(patient=patient)
            .exclude(status=SessionStatus.VOIDED)
            .order_by("-treated_on", "-created_at")
        )


class ErrorForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Why is this photo entered in error?",
        help_text="For example: wrong patient, wrong area, blurred. The photo is kept with the "
        "record but hidden from the gallery.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
