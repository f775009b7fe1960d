"""Appointments, rooms, opening hours, re-treatment recalls, reminders and calendar feeds.

Times are stored in UTC (aware datetimes) and shown in the clinic's time zone. A practitioner
or a room is never double-booked: the services refuse with a message, and the database refuses
too (an exclusion constraint on PostgreSQL, triggers on SQLite; migration 0002), so two
front-desk tablets booking the same slot at once cannot both win.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from glabella.common_models import OrgManager


class AppointmentType(models.TextChoices):
    CONSULTATION = "consultation", "Consultation"
    TREATMENT = "treatment", "Treatment"
    REVIEW = "review", "Two-week review"
    MIGRAINE_CYCLE = "migraine_cycle", "Migraine cycle"
    OTHER = "other", "Other"


DEFAULT_MINUTES: dict[str, int] = {
    AppointmentType.CONSULTATION: 30,
    AppointmentType.TREATMENT: 30,
    AppointmentType.REVIEW: 15,
    AppointmentType.MIGRAINE_CYCLE: 45,
    AppointmentType.OTHER: 30,
}
"""Default length of each appointment type, in minutes (editable when booking)."""


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    ARRIVED = "arrived", "Arrived"
    DONE = "done", "Done"
    NO_SHOW = "no_show", "Did not attend"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED, AppointmentStatus.DONE)
"""Statuses that hold the practitioner's and the room's time (cancelled and no-show free it)."""

STATUS_MOVES: dict[str, frozenset[str]] = {
    AppointmentStatus.BOOKED: frozenset(
        {AppointmentStatus.ARRIVED, AppointmentStatus.NO_SHOW, AppointmentStatus.CANCELLED}
    ),
    AppointmentStatus.ARRIVED: frozenset(
        {AppointmentStatus.DONE, AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED}
    ),
    AppointmentStatus.NO_SHOW: frozenset({AppointmentStatus.BOOKED}),
    AppointmentStatus.DONE: frozenset({AppointmentStatus.ARRIVED}),
    AppointmentStatus.CANCELLED: frozenset(),
}
"""Which status may follow which. Going back one step (arrived -> booked, done -> arrived,
no-show -> booked) is the undo for a mis-tap; a cancellation is final (book again)."""


class Room(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)

    objects = OrgManager()

    class Meta:
        ordering = ["clinic", "name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="room_unique_name_per_clinic")
        ]

    def __str__(self) -> str:
        return self.name


class OpeningHours(models.Model):
    """One opening interval of a clinic on a weekday (0 = Monday). Several rows make a split
    day (a lunch break). A weekday with no row is closed."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.CASCADE, related_name="opening_hours"
    )
    weekday = models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)])
    opens = models.TimeField()
    closes = models.TimeField()

    objects = OrgManager()

    class Meta:
        ordering = ["clinic", "weekday", "opens"]
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=models.F("opens")), name="hours_order"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="hours_weekday"),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.opens:%H:%M}-{self.closes:%H:%M}"


DEFAULT_OPENING_HOURS: list[tuple[int, time, time]] = [
    *((day, time(9, 0), time(18, 0)) for day in range(5)),
    (5, time(9, 0), time(13, 0)),
]
"""A new clinic opens Monday to Friday 09:00-18:00 and Saturday 09:00-13:00 until the owner
changes it."""


class SchedulingSettings(models.Model):
    """A clinic's scheduling choices: recall interval, quiet hours, reminder times."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.OneToOneField(
        "accounts.Clinic", on_delete=models.CASCADE, related_name="scheduling"
    )
    cosmetic_recall_days = models.PositiveSmallIntegerField(
        "cosmetic recall after (days)",
        default=120,
        validators=[MinValueValidator(90), MaxValueValidator(123)],
        help_text="3 to 4 months: at least the 90-day minimum interval, at most 123 days.",
    )
    quiet_start = models.TimeField("no messages from", default=time(20, 0))
    quiet_end = models.TimeField("no messages before", default=time(8, 0))
    reminder_hours = models.JSONField(
        "reminders before the appointment (hours)",
        default=list,
        blank=True,
        help_text="For example 48 and 2. Leave empty for no reminders.",
    )
    recall_invite_days = models.PositiveSmallIntegerField(
        "send recall invitations this many days before the due date",
        default=7,
        validators=[MaxValueValidator(60)],
    )
    send_confirmations = models.BooleanField("confirm each booking", default=True)

    objects = OrgManager()

    def __str__(self) -> str:
        return f"scheduling settings of {self.clinic}"


DEFAULT_REMINDER_HOURS = [48, 2]


class Appointment(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="appointments"
    )
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments"
    )
    room = models.ForeignKey(
        Room, on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    kind = models.CharField("type", max_length=20, choices=AppointmentType.choices)
    indication = models.CharField(max_length=40, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    status_reason = models.CharField(max_length=300, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    recall = models.ForeignKey(
        "scheduling.Recall",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appointments",
    )
    series = models.UUIDField(null=True, blank=True, db_index=True)  # cycles booked together
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgManager()

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [
            models.Index(fields=["organization", "clinic", "starts_at"]),
            models.Index(fields=["practitioner", "starts_at"]),
            models.Index(fields=["patient", "starts_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def holds_time(self) -> bool:
        return self.status in ACTIVE_STATUSES


class RecallKind(models.TextChoices):
    RETREATMENT = "retreatment", "Re-treatment"
    REVIEW = "review", "Two-week review"


class RecallState(models.TextChoices):
    OPEN = "open", "To contact"
    CONTACTED = "contacted", "Contacted"
    BOOKED = "booked", "Booked"
    DECLINED = "declined", "Declined"
    NOT_DUE = "not_due", "Not due"
    TREATED = "treated", "Treated"


OPEN_RECALL_STATES = (RecallState.OPEN, RecallState.CONTACTED)
"""States the worklist shows by default: someone still has to act."""


class Recall(models.Model):
    """When a patient is due again for one indication (or for a two-week review).

    One *current* row per patient, indication and kind (a partial unique constraint); when the
    patient is treated again the row is closed as treated and a new current one starts from
    the new treatment. The due date comes from ``glabella.clinical.schedule.next_due``.
    """

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="recalls"
    )
    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    indication = models.CharField(max_length=40)
    kind = models.CharField(max_length=12, choices=RecallKind.choices)
    product_id = models.CharField(max_length=30, blank=True)
    source_session = models.ForeignKey(
        "charting.TreatmentSession",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    basis_on = models.DateField("last treated")
    due_on = models.DateField("due")
    earliest_on = models.DateField("not before", null=True, blank=True)
    personalised = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=RecallState.choices, default=RecallState.OPEN)
    state_reason = models.CharField(max_length=300, blank=True)
    state_at = models.DateTimeField(null=True, blank=True)
    state_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgManager()

    class Meta:
        ordering = ["due_on", "pk"]
        indexes = [
            models.Index(fields=["organization", "is_current", "state", "due_on"]),
            models.Index(fields=["patient", "indication"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "indication", "kind"],
                condition=Q(is_current=True),
                name="recall_one_current",
            )
        ]

    def __str__(self) -> str:
        return f"{self.indication} due {self.due_on}"


class MessageKind(models.TextChoices):
    CONFIRMATION = "confirmation", "Booking confirmation"
    REMINDER = "reminder", "Appointment reminder"
    RECALL = "recall", "Recall invitation"


class MessageChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"


class ReminderStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Not sent"
    CANCELLED = "cancelled", "Cancelled"
    UNCERTAIN = "uncertain", "May not have gone out"


class Reminder(models.Model):
    """One message to one patient. ``key`` makes it unique (appointment, kind, time, channel),
    so planning twice never makes two; a worker takes a message by moving it from pending to
    sending in one conditional UPDATE, so two workers never both send it."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="reminders"
    )
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="reminders"
    )
    recall = models.ForeignKey(
        Recall, on_delete=models.PROTECT, null=True, blank=True, related_name="reminders"
    )
    kind = models.CharField(max_length=12, choices=MessageKind.choices)
    channel = models.CharField(max_length=5, choices=MessageChannel.choices)
    key = models.CharField(max_length=120, unique=True)
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    to_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    provider_ref = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgManager()

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["organization", "status", "sent_at"]),
        ]

    def __str__(self) -> str:
        return self.key


class MessageTemplate(models.Model):
    """A clinic's own wording for one kind of message on one channel (defaults in code)."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    clinic = models.ForeignKey(
        "accounts.Clinic", on_delete=models.CASCADE, related_name="message_templates"
    )
    kind = models.CharField(max_length=12, choices=MessageKind.choices)
    channel = models.CharField(max_length=5, choices=MessageChannel.choices)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )

    objects = OrgManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "kind", "channel"], name="template_one_per_kind_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.channel} for {self.clinic}"


class CalendarFeed(models.Model):
    """A practitioner's secret ICS feed. Only a hash of the token is kept; revoking ends it."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="calendar_feeds"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = OrgManager()

    def __str__(self) -> str:
        return f"calendar feed of {self.user}"
