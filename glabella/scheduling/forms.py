"""Calendar forms. They only shape input for the pages: the booking service validates and
decides, and its refusals (keyed starts_at, minutes, practitioner, room, kind, indication...)
are put beside the fields here by ``apply_service_errors``."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import BaseTemporalField

from glabella.accounts.models import Clinic, Organization, User
from glabella.clinical import indications
from glabella.patients.models import Patient
from glabella.scheduling import booking
from glabella.scheduling.models import (
    DEFAULT_MINUTES,
    AppointmentStatus,
    AppointmentType,
    Room,
)
from glabella.web.forms_util import apply_errors

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME_INPUT = forms.TimeInput(attrs={"type": "time", "step": 300}, format="%H:%M")
MINUTES_INPUT = forms.TextInput(
    attrs={"inputmode": "numeric", "autocomplete": "off", "size": 4, "data-minutes": ""}
)
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"]
TIME_FORMATS = ["%H:%M", "%H.%M", "%H:%M:%S"]

DATE_ERRORS = {
    "required": "Choose the date.",
    "invalid": "Write the date as DD/MM/YYYY.",
}
TIME_ERRORS = {
    "required": "Choose the time.",
    "invalid": "Write the time as HH:MM, for example 09:30.",
}

# Where a service's field lands on the page: the start is the date and time pair.
SERVICE_FIELDS = {"starts_at": "time", "status": None, "recall": None}


def apply_service_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        renamed: dict[str, list[str]] = {}
        for field, messages in exc.message_dict.items():
            target = SERVICE_FIELDS.get(field, field)
            key = target if target in form.fields else "__all__"
            renamed.setdefault(key, []).extend(messages)
        for field, messages in renamed.items():
            for message in messages:
                form.add_error(None if field == "__all__" else field, message)
    else:
        apply_errors(form, exc)


class NameChoiceField(forms.ModelChoiceField):
    """Shows a person by name (not e-mail first) and a room or clinic by its name."""

    def label_from_instance(self, obj: Any) -> str:
        if isinstance(obj, User):
            return booking.display_name(obj)
        if isinstance(obj, Room) and getattr(self, "show_clinic", False):
            return f"{obj.name} ({obj.clinic.name})"
        return str(obj.name) if hasattr(obj, "name") else str(obj)


class KindSelect(forms.Select):
    """Each type carries its default length, so the page's script can fill in the minutes."""

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if value in DEFAULT_MINUTES:
            option["attrs"]["data-minutes"] = DEFAULT_MINUTES[value]
        return option


def kind_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Type",
        choices=[("", "Choose the type"), *AppointmentType.choices],
        widget=KindSelect,
        error_messages={
            "required": "Choose the type of appointment.",
            "invalid_choice": "Choose the type of appointment.",
        },
    )


def indication_choices() -> list[tuple[str, str]]:
    return [("", "Not said")] + [(i.id, i.name) for i in indications.indications()]


def org_practitioners(organization: Organization, *, active_users_only: bool = True) -> Any:
    """Everyone bookable at any clinic of the organization (the service checks the clinic).
    ``active_users_only=False`` keeps deactivated accounts (to filter by who treated)."""
    people = User.objects.filter(
        memberships__organization=organization,
        memberships__is_active=True,
        memberships__role__in=booking.PRACTITIONER_ROLES,
    )
    if active_users_only:
        people = people.filter(is_active=True)
    return people.distinct().order_by("last_name", "first_name", "email")


def org_clinics(organization: Organization) -> Any:
    return Clinic.objects.filter(organization=organization).order_by("name")


def org_rooms(organization: Organization) -> Any:
    return (
        Room.objects.for_org(organization)
        .filter(is_active=True)
        .select_related("clinic")
        .order_by("clinic__name", "name")
    )


def _practitioner_field(organization: Organization) -> NameChoiceField:
    return NameChoiceField(
        queryset=org_practitioners(organization),
        label="Practitioner",
        empty_label="Choose the practitioner",
        error_messages={
            "required": "Choose who will see the patient.",
            "invalid_choice": "Choose a practitioner from the list.",
        },
    )


def _room_field(organization: Organization, extra: Room | None = None) -> NameChoiceField:
    rooms = org_rooms(organization)
    if extra is not None:
        rooms = (rooms | Room.objects.filter(pk=extra.pk)).distinct()
    field = NameChoiceField(
        queryset=rooms,
        label="Room",
        required=False,
        empty_label="No particular room",
        error_messages={"invalid_choice": "Choose a room from the list."},
    )
    field.show_clinic = org_clinics(organization).count() > 1  # type: ignore[attr-defined]
    return field


class WhenFields(forms.Form):
    """Date, time and length: the part of booking and editing that is the same."""

    date = forms.DateField(
        label="Date", widget=DATE_INPUT, input_formats=DATE_FORMATS, error_messages=DATE_ERRORS
    )
    time = forms.TimeField(
        label="Time", widget=TIME_INPUT, input_formats=TIME_FORMATS, error_messages=TIME_ERRORS
    )
    minutes = forms.CharField(
        label="Length (minutes)",
        required=False,
        max_length=5,
        widget=MINUTES_INPUT,
        help_text="Filled in from the type; change it if this visit needs more or less time.",
    )

    def starts_at(self) -> datetime:
        """The clinic's wall-clock start (naive: the service puts it in the clinic's zone)."""
        return datetime.combine(self.cleaned_data["date"], self.cleaned_data["time"])


class BookForm(WhenFields):
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.none(),
        widget=forms.HiddenInput,
        error_messages={
            "required": "Choose the patient: search by name, date of birth or phone above.",
            "invalid_choice": "Choose the patient: search by name, date of birth or phone above.",
        },
    )
    clinic = NameChoiceField(
        queryset=Clinic.objects.none(),
        label="Clinic",
        empty_label=None,
        error_messages={"invalid_choice": "Choose a clinic from the list."},
    )
    kind = kind_field()
    indication = forms.ChoiceField(
        label="Indication",
        required=False,
        choices=(),
        error_messages={"invalid_choice": "Choose an indication from the list."},
    )
    notes = forms.CharField(
        label="Notes for the team",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    recall = forms.IntegerField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    field_order = [
        "patient",
        "clinic",
        "practitioner",
        "kind",
        "date",
        "time",
        "minutes",
        "room",
        "indication",
        "notes",
        "recall",
        "next",
    ]

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = Patient.objects.for_org(organization)  # type: ignore[attr-defined]
        self.fields["clinic"].queryset = org_clinics(organization)  # type: ignore[attr-defined]
        self.fields["practitioner"] = _practitioner_field(organization)
        self.fields["room"] = _room_field(organization)
        self.fields["indication"].choices = indication_choices()  # type: ignore[attr-defined]
        self.order_fields(self.field_order)


class EditForm(WhenFields):
    """Move or change a booked appointment (the path that needs no script)."""

    kind = kind_field()
    notes = forms.CharField(
        label="Notes for the team",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    field_order = ["date", "time", "minutes", "practitioner", "room", "kind", "notes", "version"]

    def __init__(
        self,
        *args: Any,
        organization: Organization,
        current_room: Room | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["practitioner"] = _practitioner_field(organization)
        self.fields["room"] = _room_field(organization, extra=current_room)
        self.fields["minutes"].help_text = "The appointment keeps its length unless you change it."
        self.order_fields(self.field_order)


STATUS_BUTTONS: dict[tuple[str, str], str] = {
    (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED): "Arrived",
    (AppointmentStatus.BOOKED, AppointmentStatus.NO_SHOW): "Did not attend",
    (AppointmentStatus.ARRIVED, AppointmentStatus.DONE): "Done",
    (AppointmentStatus.ARRIVED, AppointmentStatus.BOOKED): "Undo: not arrived yet",
    (AppointmentStatus.DONE, AppointmentStatus.ARRIVED): "Undo: not done yet",
    (AppointmentStatus.NO_SHOW, AppointmentStatus.BOOKED): "Undo: the patient did come",
}
"""The label of each status button (cancelling has its own small form with a reason)."""

UNDO_MOVES = {
    (AppointmentStatus.ARRIVED, AppointmentStatus.BOOKED),
    (AppointmentStatus.DONE, AppointmentStatus.ARRIVED),
    (AppointmentStatus.NO_SHOW, AppointmentStatus.BOOKED),
}


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=AppointmentStatus.choices)
    reason = forms.CharField(required=False, max_length=300)
    version = forms.IntegerField(required=False)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Why is it cancelled?",
        max_length=300,
        required=False,
        help_text="For example: patient unwell, clinic closed, booked in error.",
    )


class WallClockDateTimeField(forms.DateTimeField):
    """A date and time as the calendar sends it: the clinic's wall clock, without a zone (the
    service puts it in the clinic's zone). Django's own field would put it in the server's
    zone (UTC), and in British Summer Time a drag to 14:15 would book 15:15."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        # The input formats, read as they are: no zone attached.
        return BaseTemporalField.to_python(self, value)  # type: ignore[no-any-return]


class MoveForm(forms.Form):
    """What the calendar's drag sends: the new start (clinic time) and column."""

    version = forms.IntegerField()
    starts_at = WallClockDateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    practitioner = forms.IntegerField(required=False)


# --- clinic settings ------------------------------------------------------------------------


class SettingsForm(forms.Form):
    cosmetic_recall_days = forms.CharField(
        label="Call cosmetic patients back after (days)",
        max_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 4}),
        help_text="90 to 123 days (3 to 4 months). Never sooner than 90 days.",
    )
    quiet_start = forms.TimeField(
        label="No messages from",
        widget=TIME_INPUT,
        input_formats=TIME_FORMATS,
        error_messages={
            "required": "Give the time quiet hours start, as HH:MM.",
            "invalid": "Give the time quiet hours start, as HH:MM.",
        },
    )
    quiet_end = forms.TimeField(
        label="until",
        widget=TIME_INPUT,
        input_formats=TIME_FORMATS,
        error_messages={
            "required": "Give the time quiet hours end, as HH:MM.",
            "invalid": "Give the time quiet hours end, as HH:MM.",
        },
    )
    reminder_hours = forms.CharField(
        label="Remind patients (hours before the appointment)",
        required=False,
        max_length=40,
        help_text="Whole hours separated by commas, for example 48, 2. Empty: no reminders.",
    )
    recall_invite_days = forms.CharField(
        label="Send recall invitations (days before the due date)",
        max_length=3,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 3}),
        help_text="0 to 60 days.",
    )
    send_confirmations = forms.BooleanField(
        label="Confirm each booking to the patient", required=False
    )


class HoursForm(forms.Form):
    """One line per weekday: "09:00-13:00, 14:00-18:00", or empty when closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for day, name in enumerate(booking.WEEKDAYS):
            self.fields[f"day_{day}"] = forms.CharField(
                label=name,
                required=False,
                max_length=100,
                widget=forms.TextInput(attrs={"placeholder": "Closed", "autocomplete": "off"}),
            )

    def week(self) -> dict[int, list[tuple[time, time]]]:
        """The parsed hours; errors go beside each day (call after is_valid)."""
        week: dict[int, list[tuple[time, time]]] = {}
        for day, name in enumerate(booking.WEEKDAYS):
            try:
                week[day] = booking.parse_intervals(self.cleaned_data.get(f"day_{day}", ""), name)
            except ValidationError as exc:
                self.add_error(f"day_{day}", exc.messages[0])
        return week


class RoomForm(forms.Form):
    name = forms.CharField(
        label="Room name",
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
