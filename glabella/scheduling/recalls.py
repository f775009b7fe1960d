"""Re-treatment recalls: who is due again, for what, from when; and the worklist that reads them.

Keeping the recalls
===================
A recall row says when a patient is due again for one indication (kind ``retreatment``) or for
the two-week review after a first cosmetic treatment (kind ``review``). There is exactly one
*current* row per patient, indication and kind (a partial unique constraint); older rows stay,
closed, as the history of what was done.

:func:`refresh` recomputes one patient's current rows. The charting and patient services call
it, inside their own transaction, whenever a session is signed, amended or voided and whenever
an outside treatment is added, resolved or entered in error. :func:`rebuild_all` does the same
for a whole organization, in chunks of patients, with a handful of queries per chunk (the
``glabella recalls-rebuild`` command and the benchmark generator use it). Both go through the
same planning and reconciling code, so they agree row for row.

- **What counts.** Signed and amended sessions here (not drafts, not voided ones) and the
  patient's active outside treatments (``HistoryItem`` of kind outside treatment with a date and
  a product, neither resolved nor entered in error). The last of them for an indication is the
  basis (latest date; on the same day a session here before an outside record, then the later
  signature).
- **The due date** is ``glabella.clinical.schedule.next_due`` for that last treatment, with
  the cosmetic recall days of the clinic of the last treatment (``SchedulingSettings`` via
  ``booking.settings_for``; for an outside treatment, the clinic of the patient's latest session
  here, else their home clinic, else the core's default). The age group at that treatment picks
  the minimum interval. ``earliest_on`` ("not before") is the last treatment plus the core's
  minimum interval (``schedule.min_interval_days``); the due date is never earlier than it.
  Where neither the clinic, the patient nor the reference gives an interval (the indication
  ``other``; a product used off-label) no recall is kept: the clinic books by hand.
- **Personalised.** ``durations(patient, indication, product_id)`` may return the patient's own
  measured duration of effect (a ``DurationOutcome``); the core then uses it instead of the
  usual interval, still never before the minimum, and the row is marked ``personalised``. The
  default, :func:`personal`, is the patient's own median from the returns of effect recorded
  in ``glabella.outcomes.durations`` (2 or more of them for that indication and product
  family). The batch paths load it per chunk: one query for which of the chunk's patients have
  any such record, and a few more only when some do. ``durations=None`` leaves it out.
- **A new treatment** closes the current row as *treated* and opens a new one from it.
- **A correction** (an amendment, a void, an outside record entered in error) recomputes the
  current row in place. A recompute that keeps the same basis (same treatment, date and
  product) keeps the row's state (contacted, booked, declined, not due). One that changes the
  basis puts the row back to "to contact" with the reason, except a *booked* row whose
  appointment still stands, which stays booked. When no treatment is left the row is closed as
  *not due* with the reason.
- **Two-week reviews** come from ``review_due_on`` of a signed session (set by charting for a
  first cosmetic treatment). The review row closes as *treated* when a touch-up of that session
  (``follow_up_of``) is signed, or when the patient is treated again for the indication.

These automatic changes are not audit events of their own: the signature, amendment, void or
history change that caused them is audited. The front desk's actions on a recall
(:func:`set_state`) are audited.

The worklist
============
:func:`worklist` returns one page of current recalls of an organization for a tab (overdue, due
this week (today and the next 6 days), upcoming (the 5 weeks after that, so 6 weeks ahead in
all)) and the count of each tab, filtered by clinic, practitioner (of the last treatment),
indication and state (by default the ones someone still has to act on: to contact and
contacted). Overdue rows come most recently due first (those who have just lapsed are the most
likely to come back); the other tabs soonest first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Organization
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting.models import Status, TreatmentSession
from glabella.clinical import catalogue, indications, schedule
from glabella.clinical.indications import AgeGroup
from glabella.clinical.safety import PastTreatment
from glabella.clinical.schedule import DurationOutcome
from glabella.clinical.settings import (
    COSMETIC_RECALL_MAX_DAYS,
    ClinicalSettings,
    cosmetic_min_interval_days,
)
from glabella.patients.models import Channel, HistoryItem, HistoryKind, Patient
from glabella.scheduling.models import (
    OPEN_RECALL_STATES,
    Appointment,
    AppointmentStatus,
    Recall,
    RecallKind,
    RecallState,
    SchedulingSettings,
)

Durations = Callable[[Patient, str, str], DurationOutcome | None]
"""``durations(patient, indication, product_id)``: the patient's own measured duration of effect
for that indication and product, or None. Supplied by the outcomes work (issue 7)."""


def personal(patient: Patient, indication: str, product_id: str) -> DurationOutcome | None:
    """The default ``durations``: PATIENT's own median duration of effect for INDICATION and
    PRODUCT_ID's family, from the returns recorded in ``glabella.outcomes.durations`` (None
    under 2 of them). Refreshes load it for a whole chunk at once (see ``_refresh_chunk``)."""
    from glabella.outcomes.durations import personal_duration_for

    return personal_duration_for(patient, indication, product_id)


Progress = Callable[[int, int], None]

SIGNED = (Status.SIGNED, Status.AMENDED)
CHUNK = 2000
"""Patients per chunk in :func:`rebuild_all` (a few queries and one transaction per chunk)."""

WEEK_DAYS = 7
UPCOMING_DAYS = 42
PER_PAGE = 50
TABS = ("overdue", "week", "upcoming")
TAB_LABELS = {"overdue": "Overdue", "week": "Due this week", "upcoming": "Upcoming"}


def _fmt(day: date) -> str:
    return f"{day:%d/%m/%Y}"


# --- what the patient was treated with --------------------------------------------------------


class Treated(NamedTuple):
    """One treatment that counts for recalls: a signed session here, or an outside record.
    (A named tuple: a whole-organization rebuild makes millions of them.)"""

    on: date
    product_id: str
    indication: str
    session_id: int | None = None  # None: an outside treatment
    clinic_id: int | None = None
    practitioner_id: int | None = None
    tiebreak: tuple[Any, ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        """Order of treatments: date, then a session here after an outside record, then the
        later signature (or record)."""
        return (self.on, self.session_id is not None, *self.tiebreak)


@dataclass(frozen=True)
class ReviewFacts:
    session_id: int
    indication: str
    product_id: str
    treated_on: date
    review_due_on: date
    clinic_id: int
    practitioner_id: int


@dataclass
class PatientFacts:
    """Everything the planner needs about one patient, loaded in bulk."""

    patient_id: int
    organization_id: int
    date_of_birth: date
    home_clinic_id: int | None
    treated: list[Treated] = field(default_factory=list)
    reviews: list[ReviewFacts] = field(default_factory=list)
    follow_ups: dict[int, date] = field(default_factory=dict)  # reviewed session -> touch-up day


@dataclass(frozen=True)
class Wanted:
    """The current recall a patient should have for one indication and kind."""

    indication: str
    kind: str
    product_id: str
    source_session_id: int | None
    basis_on: date
    due_on: date
    earliest_on: date | None
    personalised: bool
    clinic_id: int | None
    practitioner_id: int | None


@dataclass(frozen=True)
class Closure:
    """No current recall is wanted: close the current one (if any) with this state and reason."""

    state: str
    reason: str


# --- intervals from the core ------------------------------------------------------------------

_REF = date(2000, 1, 3)


def _family(product_id: str) -> str | None:
    try:
        return catalogue.product(product_id).generic
    except catalogue.UnknownProduct:
        return None


@lru_cache(maxsize=4096)
def _interval(
    indication: str,
    product_id: str,
    cosmetic_days: int,
    population: AgeGroup,
    median_days: int | None,
) -> tuple[int | None, int | None]:
    """(days to the due date, minimum days) for one last treatment, asked of the core.

    ``schedule.next_due`` is the last treatment's date plus an interval that depends only on
    the indication, the product, the clinic's cosmetic recall days, the age group and the
    patient's own duration; asking it once for a reference date gives that interval for every
    treatment with the same facts (this is what makes a whole-organization rebuild fast).
    """
    settings = ClinicalSettings(cosmetic_recall_days=cosmetic_days)
    outcome = DurationOutcome(median_days) if median_days is not None else None
    history = [PastTreatment(_REF, product_id, indication, Decimal(1))]
    due = schedule.next_due(history, indication, outcome, settings, population=population)
    family = _family(product_id)
    minimum = (
        schedule.min_interval_days(indication, family, population) if family is not None else None
    )
    return ((due - _REF).days if due is not None else None), minimum


@lru_cache(maxsize=256)
def _cosmetic_days(raw: int | None) -> int:
    """A clinic's cosmetic recall days, kept within what the core accepts (90-123)."""
    default = ClinicalSettings().cosmetic_recall_days
    if raw is None:
        return default
    return max(cosmetic_min_interval_days(), min(COSMETIC_RECALL_MAX_DAYS, int(raw)))


def _age(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


# --- planning: what the current recalls should be ---------------------------------------------


def plan(
    facts: PatientFacts,
    cosmetic_days: dict[int, int],
    durations: Durations | None = None,
    patient: Patient | None = None,
) -> dict[tuple[str, str], Wanted | Closure]:
    """The wanted current recall (or the reason for none) per (indication, kind)."""
    out: dict[tuple[str, str], Wanted | Closure] = {}
    by_indication: dict[str, list[Treated]] = defaultdict(list)
    for t in facts.treated:
        by_indication[t.indication].append(t)
    here = [t for t in facts.treated if t.session_id is not None]
    latest_here = max(here, key=lambda t: t.key) if here else None
    for indication, treated in by_indication.items():
        if not indications.exists(indication):
            continue
        last = max(treated, key=lambda t: t.key)
        clinic_id = last.clinic_id
        if last.session_id is None:
            clinic_id = latest_here.clinic_id if latest_here else facts.home_clinic_id
        days = _cosmetic_days(cosmetic_days.get(clinic_id) if clinic_id else None)
        population = indications.population_for_age(_age(facts.date_of_birth, last.on))
        outcome = None
        if durations is not None and patient is not None:
            outcome = durations(patient, indication, last.product_id)
        delta, minimum = _interval(
            indication,
            last.product_id,
            days,
            population,
            outcome.median_days if outcome is not None else None,
        )
        key = (indication, RecallKind.RETREATMENT.value)
        if delta is None:
            brand = _brand(last.product_id)
            out[key] = Closure(
                RecallState.NOT_DUE,
                f"No recall interval is known for {brand} for {_indication_name(indication)}: "
                "book the next treatment by hand.",
            )
            continue
        earliest = last.on + timedelta(days=minimum) if minimum is not None else None
        due = last.on + timedelta(days=delta)
        if earliest is not None and due < earliest:  # the core never does this; belt and braces
            due = earliest
        out[key] = Wanted(
            indication=indication,
            kind=RecallKind.RETREATMENT,
            product_id=last.product_id,
            source_session_id=last.session_id,
            basis_on=last.on,
            due_on=due,
            earliest_on=earliest,
            personalised=outcome is not None,
            clinic_id=clinic_id,
            practitioner_id=last.practitioner_id,
        )
    # Two-week reviews: the latest reviewable session per indication.
    reviews: dict[str, ReviewFacts] = {}
    for r in facts.reviews:
        if r.indication not in reviews or (r.treated_on, r.session_id) > (
            reviews[r.indication].treated_on,
            reviews[r.indication].session_id,
        ):
            reviews[r.indication] = r
    for indication, r in reviews.items():
        key = (indication, RecallKind.REVIEW.value)
        touch_up = facts.follow_ups.get(r.session_id)
        later = [
            t
            for t in by_indication.get(indication, [])
            if t.session_id not in (None, r.session_id) and t.on >= r.treated_on
        ]
        if touch_up is not None:
            out[key] = Closure(RecallState.TREATED, f"Touch-up signed for {_fmt(touch_up)}.")
        elif later:
            again = max(later, key=lambda t: t.key)
            out[key] = Closure(RecallState.TREATED, f"Treated again on {_fmt(again.on)}.")
        else:
            out[key] = Wanted(
                indication=indication,
                kind=RecallKind.REVIEW,
                product_id=r.product_id,
                source_session_id=r.session_id,
                basis_on=r.treated_on,
                due_on=r.review_due_on,
                earliest_on=None,
                personalised=False,
                clinic_id=r.clinic_id,
                practitioner_id=r.practitioner_id,
            )
    return out


def _brand(product_id: str) -> str:
    try:
        return catalogue.product(product_id).brand
    except catalogue.UnknownProduct:
        return product_id or "this product"


def _indication_name(indication: str) -> str:
    return indications.display_name(indication).lower()


# --- reconciling: from the current rows to the wanted ones ------------------------------------


class NewRecall(NamedTuple):
    organization_id: int
    patient_id: int
    want: Wanted


@dataclass
class Changes:
    """What a refresh writes: new current rows (as ``NewRecall``) and changed existing rows."""

    create: list[NewRecall] = field(default_factory=list)
    update: list[Recall] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.create) + len(self.update)


COMPUTED = ("due_on", "earliest_on", "personalised", "clinic_id", "practitioner_id")
BASIS = ("basis_on", "product_id", "source_session_id")
UPDATE_FIELDS = [
    "due_on",
    "earliest_on",
    "personalised",
    "clinic",
    "practitioner",
    "basis_on",
    "product_id",
    "source_session",
    "state",
    "state_reason",
    "state_at",
    "state_by",
    "is_current",
    "updated_at",
]


def _source_exists(recall: Recall, facts: PatientFacts) -> bool:
    if recall.kind == RecallKind.REVIEW:
        return any(r.session_id == recall.source_session_id for r in facts.reviews)
    for t in facts.treated:
        if t.indication != recall.indication:
            continue
        if recall.source_session_id is not None:
            if t.session_id == recall.source_session_id:
                return True
        elif t.session_id is None and t.on == recall.basis_on and t.product_id == recall.product_id:
            return True
    return False


def _what_went(recall: Recall) -> str:
    if recall.source_session_id is not None:
        return f"the session of {_fmt(recall.basis_on)} was voided"
    return f"the outside treatment of {_fmt(recall.basis_on)} is no longer on record"


def reconcile(
    facts: PatientFacts,
    organization_id: int,
    current: Iterable[Recall],
    wanted: dict[tuple[str, str], Wanted | Closure],
    booked_still: set[int],
    now: datetime,
) -> Changes:
    """The creates and updates that turn CURRENT into WANTED (see the module docstring).

    ``booked_still``: ids of current recalls with an appointment that still stands.
    """
    changes = Changes()
    mine = {(r.indication, r.kind): r for r in current}
    for key in sorted(set(mine) | set(wanted)):
        row = mine.get(key)
        want = wanted.get(key)
        if isinstance(want, Wanted):
            if row is None:
                changes.create.append(_new(want, facts, organization_id, now))
                continue
            same_basis = (row.basis_on, row.product_id, row.source_session_id) == (
                want.basis_on,
                want.product_id,
                want.source_session_id,
            )
            if same_basis:
                if any(getattr(row, f) != getattr(want, f) for f in COMPUTED):
                    for f in COMPUTED:
                        setattr(row, f, getattr(want, f))
                    row.updated_at = now
                    changes.update.append(row)
                continue
            same_source = (
                row.source_session_id is not None
                and row.source_session_id == want.source_session_id
            )
            if not same_source and _source_exists(row, facts):
                # A later treatment: this recall was answered.
                _close(row, RecallState.TREATED, f"Treated again on {_fmt(want.basis_on)}.", now)
                changes.update.append(row)
                changes.create.append(_new(want, facts, organization_id, now))
                continue
            # A correction: recompute in place.
            why = "the treatment was corrected" if same_source else _what_went(row)
            for f in (*COMPUTED, *BASIS):
                setattr(row, f, getattr(want, f))
            if not (row.state == RecallState.BOOKED and row.pk in booked_still):
                if row.state != RecallState.OPEN:
                    row.state = RecallState.OPEN
                row.state_reason = (
                    f"Due date recomputed ({why}): now from the treatment of {_fmt(want.basis_on)}."
                )[:300]
                row.state_at = now
                row.state_by = None
            row.updated_at = now
            changes.update.append(row)
        elif row is not None:
            if isinstance(want, Closure):
                state, reason = want.state, want.reason
            else:
                state = RecallState.NOT_DUE
                reason = f"No treatment left to recall from: {_what_went(row)}."
            _close(row, state, reason, now)
            changes.update.append(row)
    return changes


def _new(want: Wanted, facts: PatientFacts, organization_id: int, now: datetime) -> NewRecall:
    return NewRecall(organization_id, facts.patient_id, want)


INSERT_COLUMNS = (
    "organization_id",
    "patient_id",
    "clinic_id",
    "practitioner_id",
    "indication",
    "kind",
    "product_id",
    "source_session_id",
    "basis_on",
    "due_on",
    "earliest_on",
    "personalised",
    "state",
    "state_reason",
    "is_current",
    "created_at",
    "updated_at",
)


def _insert(rows: Sequence[NewRecall], now: datetime) -> None:
    """Insert new current recalls in batches of plain rows (no model instance per row: a
    whole-organization rebuild inserts millions)."""
    ops = connection.ops
    day = ops.adapt_datefield_value
    stamp = ops.adapt_datetimefield_value(now)
    table = ops.quote_name(Recall._meta.db_table)
    columns = ", ".join(ops.quote_name(c) for c in INSERT_COLUMNS)
    marks = ", ".join(["%s"] * len(INSERT_COLUMNS))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 (model names)
    values = [
        (
            r.organization_id,
            r.patient_id,
            r.want.clinic_id,
            r.want.practitioner_id,
            r.want.indication,
            str(r.want.kind),
            r.want.product_id,
            r.want.source_session_id,
            day(r.want.basis_on),
            day(r.want.due_on),
            day(r.want.earliest_on),
            r.want.personalised,
            RecallState.OPEN.value,
            "",
            True,
            stamp,
            stamp,
        )
        for r in rows
    ]
    with connection.cursor() as cursor:
        for start in range(0, len(values), 5000):
            cursor.executemany(sql, values[start : start + 5000])


def _close(row: Recall, state: str, reason: str, now: datetime) -> None:
    row.is_current = False
    row.state = state
    row.state_reason = reason[:300]
    row.state_at = now
    row.state_by = None
    row.updated_at = now


def _apply(changes: Changes, now: datetime) -> None:
    # Close first: the partial unique constraint allows one current row per key.
    closing = [r for r in changes.update if not r.is_current]
    staying = [r for r in changes.update if r.is_current]
    if closing:
        Recall.objects.bulk_update(closing, UPDATE_FIELDS, batch_size=500)
    if staying:
        Recall.objects.bulk_update(staying, UPDATE_FIELDS, batch_size=500)
    if changes.create:
        _insert(changes.create, now)


# --- loading facts in bulk ---------------------------------------------------------------------


def _load_facts(
    organization_id: int, patients: Sequence[tuple[int, date, int | None]]
) -> dict[int, PatientFacts]:
    facts = {pk: PatientFacts(pk, organization_id, dob, home) for pk, dob, home in patients}
    ids = list(facts)
    sessions = TreatmentSession.objects.filter(
        organization_id=organization_id, patient_id__in=ids, status__in=SIGNED
    ).values_list(
        "id",
        "patient_id",
        "indication",
        "product_id",
        "treated_on",
        "clinic_id",
        "practitioner_id",
        "signed_at",
        "review_due_on",
        "follow_up_of_id",
    )
    for sid, pid, ind, prod, on, clinic, practitioner, signed_at, review, follow in sessions:
        f = facts[pid]
        f.treated.append(
            Treated(
                on=on,
                product_id=prod,
                indication=ind,
                session_id=sid,
                clinic_id=clinic,
                practitioner_id=practitioner,
                tiebreak=(signed_at or datetime.min.replace(tzinfo=UTC), sid),
            )
        )
        if review is not None:
            f.reviews.append(ReviewFacts(sid, ind, prod, on, review, clinic, practitioner))
        if follow is not None:
            seen = f.follow_ups.get(follow)
            f.follow_ups[follow] = on if seen is None else min(seen, on)
    outside = HistoryItem.objects.filter(
        organization_id=organization_id,
        patient_id__in=ids,
        kind=HistoryKind.OUTSIDE_TREATMENT,
        resolved_on__isnull=True,
        entered_in_error=False,
        treated_on__isnull=False,
        units__isnull=False,
    ).exclude(product_id="")
    for hid, pid, on, prod, ind, recorded_at in outside.values_list(
        "id", "patient_id", "treated_on", "product_id", "indication", "recorded_at"
    ):
        facts[pid].treated.append(
            Treated(
                on=on,
                product_id=prod,
                indication=ind or "other",
                tiebreak=(recorded_at, hid),
            )
        )
    return facts


def _cosmetic_days_for(organization_id: int, clinic_ids: Iterable[int | None]) -> dict[int, int]:
    from glabella.scheduling import booking

    wanted = {c for c in clinic_ids if c is not None}
    found = dict(
        # scoped: ids from this organization's scoped rows above
        SchedulingSettings.objects.filter(clinic_id__in=wanted).values_list(
            "clinic_id", "cosmetic_recall_days"
        )
    )
    for clinic in Clinic.objects.filter(pk__in=wanted - set(found)):
        found[clinic.pk] = booking.settings_for(clinic).cosmetic_recall_days
    return found


def _booked_still(recall_ids: Iterable[int]) -> set[int]:
    ids = list(recall_ids)
    if not ids:
        return set()
    return set(
        # scoped: ids from this organization's scoped rows above
        Appointment.objects.filter(
            recall_id__in=ids,
            status__in=(AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED),
        ).values_list("recall_id", flat=True)
    )


def _refresh_chunk(
    organization_id: int,
    patients: Sequence[tuple[int, date, int | None]],
    durations: Durations | None,
    patient_objects: dict[int, Patient] | None = None,
    now: datetime | None = None,
) -> Changes:
    now = now or timezone.now()
    facts = _load_facts(organization_id, patients)
    clinic_ids: set[int | None] = {f.home_clinic_id for f in facts.values()}
    for f in facts.values():
        clinic_ids.update(t.clinic_id for t in f.treated)
    days = _cosmetic_days_for(organization_id, clinic_ids)
    current: dict[int, list[Recall]] = defaultdict(list)
    for r in Recall.objects.filter(
        organization_id=organization_id, patient_id__in=list(facts), is_current=True
    ):
        current[r.patient_id].append(r)
    booked = _booked_still(
        r.pk for rows in current.values() for r in rows if r.state == RecallState.BOOKED
    )
    total = Changes()
    only: frozenset[int] | None = None  # the patients the durations are asked about (None: all)
    if durations is personal:
        # The default, for the whole chunk at once: the patients without any recorded return
        # of effect (nearly all of them, in a big rebuild) cost one query in all.
        from glabella.outcomes import durations as outcome_durations

        preloaded = outcome_durations.preload(organization_id, list(facts))
        durations, only = preloaded, preloaded.patient_ids
        needed = [pid for pid in only if pid not in (patient_objects or {})]
        if needed:
            patient_objects = {
                **(patient_objects or {}),
                # scoped: ids from this organization's scoped rows above
                **{p.pk: p for p in Patient.objects.filter(pk__in=needed)},
            }
    for pid, f in facts.items():
        asked = durations if only is None or pid in only else None
        patient = patient_objects.get(pid) if patient_objects else None
        if asked is not None and patient is None:
            # scoped: ids from this organization's scoped rows above
            patient = Patient.objects.get(pk=pid)
        wanted = plan(f, days, asked, patient)
        changes = reconcile(f, organization_id, current.get(pid, []), wanted, booked, now)
        total.create += changes.create
        total.update += changes.update
    _apply(total, now)
    return total


# --- the public entry points -----------------------------------------------------------------


def refresh(patient: Patient, *, durations: Durations | None = personal) -> Changes:
    """Recompute PATIENT's current recalls (see the module docstring). Returns what changed.

    ``durations``: ``durations(patient, indication, product_id) -> DurationOutcome | None``,
    the patient's own measured duration of effect; the due date then follows it, never before
    the minimum interval. Default :func:`personal` (the recorded returns of effect); None
    leaves it out.
    Runs in the caller's transaction (or its own), locking the patient row so two changes of
    one patient at once do not both open a recall.
    """
    with transaction.atomic():
        locked = (
            Patient.objects.select_for_update()
            .filter(pk=patient.pk)
            .values_list("pk", "date_of_birth", "home_clinic_id")
            .get()
        )
        return _refresh_chunk(
            patient.organization_id, [locked], durations, patient_objects={patient.pk: patient}
        )


def clinic_interval_changed(clinic: Clinic) -> int:
    """Hook for the clinic settings: the cosmetic recall interval of CLINIC changed. Recompute
    the patients whose current recalls were counted with it (their last treatment was there,
    or, for an outside treatment, it is their home clinic). Returns the rows changed."""
    patient_ids = set(
        Recall.objects.filter(organization_id=clinic.organization_id, is_current=True)
        .filter(Q(clinic=clinic) | Q(patient__home_clinic=clinic))
        .values_list("patient_id", flat=True)
    )
    changed = 0
    ordered = sorted(patient_ids)
    for start in range(0, len(ordered), CHUNK):
        rows = list(
            # scoped: ids from this organization's scoped rows above
            Patient.objects.filter(pk__in=ordered[start : start + CHUNK])
            .order_by("pk")
            .values_list("pk", "date_of_birth", "home_clinic_id")
        )
        with transaction.atomic():
            changes = _refresh_chunk(clinic.organization_id, rows, personal)
        changed += len(changes)
    return changed


def refresh_many(organization_id: int, patient_ids: Sequence[int], chunk: int = CHUNK) -> int:
    """Refresh the recalls of PATIENT_IDS (of ORGANIZATION_ID), CHUNK patients at a time with
    the set-based step ``rebuild_all`` uses, inside the caller's transaction (an import calls
    this before it commits). The patient rows are locked while their recalls change. Returns
    the rows changed."""
    ordered = sorted(set(patient_ids))
    changed = 0
    for start in range(0, len(ordered), chunk):
        rows = list(
            Patient.objects.filter(
                organization_id=organization_id, pk__in=ordered[start : start + chunk]
            )
            .order_by("pk")
            .select_for_update()
            .values_list("pk", "date_of_birth", "home_clinic_id")
        )
        changed += len(_refresh_chunk(organization_id, rows, personal))
    return changed


def history_changed(item: HistoryItem) -> None:
    """Hook for the patient services: an outside treatment was added, resolved or entered in
    error. Other kinds of history do not move a recall."""
    if item.kind == HistoryKind.OUTSIDE_TREATMENT:
        refresh(item.patient)


def rebuild_all(
    organization: Organization,
    progress: Progress | None = None,
    *,
    durations: Durations | None = personal,
    chunk: int = CHUNK,
) -> int:
    """Refresh every patient of ORGANIZATION, CHUNK patients at a time (streamed by primary key,
    one transaction per chunk, a few set-based queries each). Returns the rows changed."""
    total = Patient.objects.filter(organization=organization).count()
    done = 0
    changed = 0
    after = 0
    if progress:
        progress(0, total)
    while True:
        rows = list(
            Patient.objects.filter(organization=organization, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "date_of_birth", "home_clinic_id")[:chunk]
        )
        if not rows:
            break
        objects = None
        if durations is not None and durations is not personal:
            # scoped: ids from this organization's scoped rows above
            objects = {p.pk: p for p in Patient.objects.filter(pk__in=[r[0] for r in rows])}
        with transaction.atomic():
            changed += len(_refresh_chunk(organization.pk, rows, durations, objects))
        after = rows[-1][0]
        done += len(rows)
        if progress:
            progress(done, total)
    return changed


# --- front-desk actions ------------------------------------------------------------------------

ACTIONS: dict[str, tuple[str, frozenset[str], bool]] = {
    # action: (new state, from states, reason required)
    "contacted": (
        RecallState.CONTACTED,
        frozenset({RecallState.OPEN, RecallState.CONTACTED}),
        False,
    ),
    "declined": (
        RecallState.DECLINED,
        frozenset({RecallState.OPEN, RecallState.CONTACTED}),
        True,
    ),
    "not_due": (
        RecallState.NOT_DUE,
        frozenset({RecallState.OPEN, RecallState.CONTACTED}),
        True,
    ),
    "reopen": (
        RecallState.OPEN,
        frozenset(
            {RecallState.CONTACTED, RecallState.DECLINED, RecallState.NOT_DUE, RecallState.BOOKED}
        ),
        False,
    ),
}
ACTION_LABELS = {
    "contacted": "contacted",
    "declined": "declined",
    "not_due": "not due",
    "reopen": "reopened",
}
REASON_PROMPTS = {
    "declined": "Say why the patient declined (for example: happy without, moved away).",
    "not_due": "Say why the patient is not due (for example: pregnant, stopped treatment).",
}


def set_state(actor: Actor, recall: Recall, action: str, reason: str = "") -> Recall:
    """Mark a recall contacted, declined or not due (with a reason), or reopen it. Audited."""
    actor.require("appointment.edit")
    if recall.organization_id != actor.organization.pk:
        raise PermissionError("That recall belongs to another organization.")
    if action not in ACTIONS:
        raise ValidationError({"action": "Choose what to record: contacted, declined or not due."})
    state, allowed, needs_reason = ACTIONS[action]
    reason = (reason or "").strip()
    if needs_reason and len(reason) < 3:
        raise ValidationError({"reason": REASON_PROMPTS[action]})
    with transaction.atomic():
        row = Recall.objects.select_for_update().get(pk=recall.pk)
        if not row.is_current:
            raise ValidationError(
                {
                    "action": "This recall is closed (the patient has been treated since, or the "
                    "treatment was corrected). The list now shows the current one."
                }
            )
        if row.state not in allowed:
            raise ValidationError(
                {
                    "action": f"A recall that is {row.get_state_display().lower()} cannot be "
                    f"marked {ACTION_LABELS[action]}."
                }
            )
        if action == "reopen" and row.state == RecallState.BOOKED and _booked_still([row.pk]):
            raise ValidationError(
                {
                    "action": "This recall has an appointment booked. Cancel the "
                    "appointment in the calendar and the recall reopens by itself."
                }
            )
        previous = row.state
        row.state = state
        row.state_reason = reason[:300]
        row.state_at = timezone.now()
        row.state_by = actor.user
        row.save(update_fields=["state", "state_reason", "state_at", "state_by", "updated_at"])
        record(
            actor,
            Action.UPDATE,
            row,
            label=f"recall {ACTION_LABELS[action]}: {row.indication}",
            detail={
                "patient": row.patient_id,
                "from": previous,
                "to": state,
                "reason": reason[:300],
            },
        )
    return row


# --- reading: the worklist -------------------------------------------------------------------


def why_no_reminder(patient: Patient, zone: ZoneInfo | None = None) -> str:
    """Why reminders cannot go to PATIENT automatically, in plain words ('' when they can)."""
    if patient.reminder_opt_out_at is not None:
        when = timezone.localtime(patient.reminder_opt_out_at, zone) if zone else None
        day = when.date() if when else patient.reminder_opt_out_at.date()
        return f"Opted out on {_fmt(day)}"
    if not patient.reminder_consent:
        return "No reminder consent"
    channel = patient.preferred_channel
    if channel == Channel.NONE:
        return "Asked for no reminders"
    if channel == Channel.PHONE:
        return "Prefers a phone call"
    if not patient.email and not patient.phone:
        return "No e-mail or phone"
    if channel == Channel.EMAIL and not patient.email:
        return "No e-mail address"
    if channel == Channel.SMS and not patient.phone:
        return "No phone number for SMS"
    return ""


@dataclass(frozen=True)
class Filters:
    clinic_id: int | None = None
    practitioner_id: int | None = None
    indication: str = ""
    state: str = ""  # "" = still to act on (to contact, contacted); "all"; or one state


def tab_range(tab: str, today: date) -> tuple[date | None, date | None]:
    """Inclusive (first, last) due dates of a tab; None is open-ended."""
    if tab == "overdue":
        return None, today - timedelta(days=1)
    if tab == "week":
        return today, today + timedelta(days=WEEK_DAYS - 1)
    if tab == "upcoming":
        return today + timedelta(days=WEEK_DAYS), today + timedelta(days=UPCOMING_DAYS - 1)
    raise ValueError(f"unknown tab {tab!r}")


def _states(filters: Filters) -> list[str]:
    """The states a filter shows."""
    if filters.state == "all":
        return [s.value for s in RecallState if s != RecallState.TREATED]
    if filters.state:
        return [filters.state]
    return [str(s) for s in OPEN_RECALL_STATES]


def _filtered(organization: Organization | int, filters: Filters) -> QuerySet[Recall]:
    # ``is_current__in=[True]``, not ``is_current=True``: SQLite gets a bare boolean column
    # from the latter and cannot then use the (organization, is_current, state, due_on) index
    # for equality, which made the worklist scan and sort every overdue row.
    rows = Recall.objects.for_org(organization).filter(is_current__in=[True])
    if filters.state != "all":
        states = _states(filters)
        rows = rows.filter(state=states[0]) if len(states) == 1 else rows.filter(state__in=states)
    if filters.clinic_id is not None:
        rows = rows.filter(clinic_id=filters.clinic_id)
    if filters.practitioner_id is not None:
        rows = rows.filter(practitioner_id=filters.practitioner_id)
    if filters.indication:
        rows = rows.filter(indication=filters.indication)
    return rows


def counts(
    organization: Organization | int, today: date, filters: Filters | None = None
) -> dict[str, int]:
    """How many current recalls fall in each tab (one query)."""
    filters = filters or Filters()
    _, week_end = tab_range("week", today)
    up_start, up_end = tab_range("upcoming", today)
    found = (
        _filtered(organization, filters)
        .filter(due_on__lte=up_end)
        .aggregate(
            overdue=Count("pk", filter=Q(due_on__lt=today)),
            week=Count("pk", filter=Q(due_on__gte=today, due_on__lte=week_end)),
            upcoming=Count("pk", filter=Q(due_on__gte=up_start)),
        )
    )
    return {tab: int(found[tab] or 0) for tab in TABS}


@dataclass
class Page:
    tab: str
    rows: list[Recall]
    counts: dict[str, int]
    number: int
    per_page: int

    @property
    def total(self) -> int:
        return self.counts[self.tab]

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages


def worklist(
    organization: Organization | int,
    *,
    today: date,
    tab: str = "overdue",
    filters: Filters | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the recall worklist and the count of every tab (a handful of small
    queries, each served by the recall index)."""
    if tab not in TABS:
        raise ValueError(f"unknown tab {tab!r}")
    filters = filters or Filters()
    tally = counts(organization, today, filters)
    pages = max(1, -(-tally[tab] // per_page))
    number = min(max(1, page), pages)
    first, last = tab_range(tab, today)
    rows = _filtered(organization, filters)
    if first is not None:
        rows = rows.filter(due_on__gte=first)
    if last is not None:
        rows = rows.filter(due_on__lte=last)
    order = (
        ("-due_on", "patient_id", "indication", "kind")
        if tab == "overdue"
        else ("due_on", "patient_id", "indication", "kind")
    )
    start = (number - 1) * per_page
    # Sorting every row of a tab to show 50 of them is what makes a big worklist slow. Each
    # state alone comes in due-date order straight from the index, so the k-th due date of
    # each state (k = the end of this page) costs k index entries; the latest of them (the
    # earliest, upcoming tabs) bounds the page: every row of the page is on or before it
    # (after it). Only the rows up to that bound are then sorted in full.
    k = start + per_page
    if tally[tab] > k:
        direction = "-due_on" if tab == "overdue" else "due_on"
        bounds = []
        for state in _states(filters):
            found = list(
                rows.filter(state=state)
                .order_by(direction)
                .values_list("due_on", flat=True)[k - 1 : k]
            )
            bounds.extend(found)
        if bounds:
            if tab == "overdue":
                rows = rows.filter(due_on__gte=max(bounds))
            else:
                rows = rows.filter(due_on__lte=min(bounds))
    # Then: sort the narrow recall rows to find the page, and load the page's rows with their
    # patient, clinic and practitioner (sorting the joined rows costs far more).
    ids = list(rows.order_by(*order).values_list("pk", flat=True)[start : start + per_page])
    # scoped: ids from this organization's scoped rows above
    loaded = Recall.objects.filter(pk__in=ids).select_related("patient", "clinic", "practitioner")
    by_pk = {r.pk: r for r in loaded}
    return Page(tab, [by_pk[pk] for pk in ids], tally, number, per_page)


def current_for(
    patient: Patient, indication: str, kind: str = RecallKind.RETREATMENT
) -> Recall | None:
    return Recall.objects.filter(
        organization_id=patient.organization_id,
        patient=patient,
        indication=indication,
        kind=kind,
        is_current=True,
    ).first()
