"""How long the treatment lasts for this patient: when the effect returned, and what follows.

Recording
=========
:func:`record_return` keeps when movement or symptoms came back after one treatment (an
:class:`~glabella.outcomes.models.EffectReturn`), from the clinic (``outcome.record``) or from
the patient's own pages (``via=Via.PORTAL``: the portal authenticated the patient's link, so
no role is checked, only the organization). There is one current report per treatment: a
later, different report replaces the earlier one, which is kept, marked entered in error
("replaced by a later report"); the same report twice changes nothing. A report entered by
mistake is marked so with a reason by :func:`mark_in_error`. Nothing is deleted, every write
is audited, and the patient's recalls are recomputed in the same transaction.

A touch-up (a session with ``follow_up_of``) completes the treatment it reviews: its units
count with that treatment's, it is not an episode of its own, and a return reported against
it is recorded against the treatment it completed.

Reading
=======
- :func:`episodes_for` turns a patient's signed (or amended, never voided or draft) sessions
  of one indication and product family into :class:`glabella.clinical.duration.Episode` values:
  units are the live points' total, the return is the current report, the next treatment is
  the next such session. Botox and Botox Cosmetic are one family (the same toxin), as the
  clinical core expects.
- :func:`personal_duration_for` is the patient's own median (``None`` under 2 recorded
  returns), the ``durations`` callable of :mod:`glabella.scheduling.recalls`;
  :func:`preload` answers the same question for a whole chunk of patients in a few queries
  (the recalls' batch paths use it).
- :func:`fading` flags a response that fades cycle after cycle at a steady or rising dose
  (Glabella's own heuristic, unconfirmed: see the core).
- :func:`overview` is everything the patient's durations page shows; :func:`cohort` the
  clinic's Kaplan-Meier curves per product for one indication.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.charting.models import Status, TreatmentSession, live_units
from glabella.clinical import catalogue, indications, schedule
from glabella.clinical.duration import (
    FADING_MIN_EPISODES,
    Episode,
    KaplanMeier,
    fading_response,
    kaplan_meier,
    personal_duration,
)
from glabella.clinical.safety import PastTreatment
from glabella.clinical.schedule import DurationOutcome
from glabella.clinical.settings import ClinicalSettings
from glabella.outcomes.diary import require_unless_patient
from glabella.outcomes.models import EffectReturn, Rater, Via
from glabella.patients.models import Patient
from glabella.prepared import Prepared

if TYPE_CHECKING:
    from glabella.accounts.actor import Actor
    from glabella.accounts.models import Clinic, Organization
    from glabella.scheduling.models import Recall

SIGNED = (Status.SIGNED, Status.AMENDED)
MIN_EVENTS = 2
"""Recorded returns needed before the patient's own median replaces the usual interval."""
REPLACED = "replaced by a later report"


class ReturnRefused(ValueError):
    """A report of the effect returning that cannot be kept, in words a nurse understands.

    ``field`` names the form field the message belongs beside (``returned_on``, ``reason``,
    ``session``)."""

    def __init__(self, message: str, field: str = "returned_on") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _fmt(day: date) -> str:
    return f"{day:%d/%m/%Y}"


def family(product_id: str) -> str:
    """The product family (the toxin) of a product id; an unknown id is its own family."""
    try:
        return catalogue.product(product_id).generic
    except catalogue.UnknownProduct:
        return product_id


def brand(product_id: str) -> str:
    try:
        return catalogue.product(product_id).brand
    except catalogue.UnknownProduct:
        return product_id or "an unknown product"


indication_name = indications.display_name


def clinic_today(clinic: Clinic | None) -> date:
    """Today where the clinic is (its own time zone)."""
    from glabella.scheduling import booking

    return timezone.localtime(timezone.now(), booking.clinic_zone(clinic)).date()


# --- loading treatments in bulk ---------------------------------------------------------------


@dataclass(frozen=True)
class Treatment:
    """One treatment as the duration of effect counts it (a signed session and its touch-ups)."""

    session_id: int
    patient_id: int
    clinic_id: int
    indication: str
    product_id: str
    treated_on: date
    units: Decimal
    next_treated_on: date | None = None
    returned_on: date | None = None
    effect_return_id: int | None = None

    @property
    def family(self) -> str:
        return family(self.product_id)

    @property
    def days(self) -> int | None:
        """Days the effect lasted, when its return was recorded."""
        if self.returned_on is None:
            return None
        return (self.returned_on - self.treated_on).days

    def episode(self) -> Episode:
        return Episode(
            treated_on=self.treated_on,
            units=self.units,
            product_id=self.product_id,
            indication=self.indication,
            returned_on=self.returned_on,
            next_treated_on=self.next_treated_on,
        )


SeriesKey = tuple[int, str, str]  # (patient id, indication, product family)


def _sessions(organization_id: int) -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(organization_id=organization_id, status__in=SIGNED)


def _returns(organization_id: int) -> QuerySet[EffectReturn]:
    return EffectReturn.objects.filter(
        organization_id=organization_id, entered_in_error=False, session__status__in=SIGNED
    )


def _session_rows(sessions: QuerySet[TreatmentSession]) -> QuerySet[TreatmentSession, Any]:
    """Each session's (id, patient, clinic, indication, product, date, follow-up of, signed
    at, units over its live points)."""
    return sessions.values_list(
        "id",
        "patient_id",
        "clinic_id",
        "indication",
        "product_id",
        "treated_on",
        "follow_up_of_id",
        "signed_at",
    ).annotate(total=live_units())


def _return_rows(returns: QuerySet[EffectReturn]) -> QuerySet[EffectReturn, Any]:
    return returns.values_list("session_id", "id", "returned_on")


_PATIENT_SESSIONS = Prepared(
    lambda org, patient: _session_rows(_sessions(org).filter(patient_id=patient))
)
_PATIENT_RETURNS = Prepared(
    lambda org, patient: _return_rows(_returns(org).filter(patient_id=patient))
)


def _load(
    organization_id: int,
    *,
    patient_ids: Sequence[int] | None = None,
    indication: str | None = None,
    session_rows: list[tuple[Any, ...]] | None = None,
) -> dict[SeriesKey, list[Treatment]]:
    """The treatments of these patients (or of the whole organization for one indication),
    grouped per patient, indication and family, in treatment order. Two queries: the sessions
    with their units (live points, added up by the database) and the returns. SESSION_ROWS:
    one patient's sessions as ``_session_rows`` reads them, when the caller has them."""
    ids = list(patient_ids) if patient_ids is not None else None
    if ids is not None and len(ids) == 1 and type(ids[0]) is int and indication is None:
        # One patient (their page, their flags): the same queries, compiled once.
        found_returns = _PATIENT_RETURNS(organization_id, ids[0])
        found_sessions = (
            _PATIENT_SESSIONS(organization_id, ids[0]) if session_rows is None else session_rows
        )
    else:
        sessions = _sessions(organization_id)
        returns = _returns(organization_id)
        if ids is not None:
            sessions = sessions.filter(patient_id__in=ids)
            returns = returns.filter(patient_id__in=ids)
        if indication is not None:
            sessions = sessions.filter(indication=indication)
            returns = returns.filter(session__indication=indication)
        found_returns = list(_return_rows(returns))
        found_sessions = list(_session_rows(sessions))
    returned = {sid: (rid, on) for sid, rid, on in found_returns}
    units: dict[int, Decimal] = {}
    rows = []
    for *row, total in found_sessions:
        rows.append(tuple(row))
        if total is not None:
            units[row[0]] = total
    main = {r[0] for r in rows if r[6] is None}
    extra: dict[int, Decimal] = defaultdict(Decimal)
    for sid, _pid, _clinic, _ind, _prod, _on, parent, _signed in rows:
        if parent is not None and parent in main:
            extra[parent] += units.get(sid) or Decimal(0)
    grouped: dict[SeriesKey, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        sid, pid, _clinic, ind, prod, _on, parent, _signed = row
        if parent is not None and parent in main:
            continue  # a touch-up: counted with the treatment it completed
        grouped[(pid, ind, family(prod))].append(row)
    out: dict[SeriesKey, list[Treatment]] = {}
    for key, series in grouped.items():
        series.sort(key=lambda r: (r[5], r[7] or datetime.min.replace(tzinfo=UTC), r[0]))
        treatments: list[Treatment] = []
        for index, (sid, pid, clinic, ind, prod, on, _parent, _signed) in enumerate(series):
            total = (units.get(sid) or Decimal(0)) + extra.get(sid, Decimal(0))
            if total <= 0:
                continue
            following = series[index + 1][5] if index + 1 < len(series) else None
            rid, back = returned.get(sid, (None, None))
            if back is not None and back < on:
                rid, back = None, None  # the treatment date was corrected past the report
            treatments.append(
                Treatment(sid, pid, clinic, ind, prod, on, total, following, back, rid)
            )
        if treatments:
            out[key] = treatments
    return out


def _episodes(treatments: Iterable[Treatment], today: date) -> list[Episode]:
    """Episodes the core can count today (a treatment dated in the future is left out)."""
    return [t.episode() for t in treatments if t.treated_on <= today]


def episodes_for(patient: Patient, indication: str, product_id: str) -> list[Episode]:
    """PATIENT's episodes for INDICATION with PRODUCT_ID's family, in treatment order."""
    found = _load(patient.organization_id, patient_ids=[patient.pk], indication=indication)
    return [t.episode() for t in found.get((patient.pk, indication, family(product_id)), [])]


def personal_duration_for(
    patient: Patient, indication: str, product_id: str, today: date | None = None
) -> DurationOutcome | None:
    """PATIENT's own median duration of effect for INDICATION and PRODUCT_ID's family, or
    None (fewer than 2 recorded returns, or the median not reached). The recalls' default
    ``durations`` callable; :func:`preload` is its batch form."""
    today = today or timezone.localdate()
    found = _load(patient.organization_id, patient_ids=[patient.pk], indication=indication)
    treatments = found.get((patient.pk, indication, family(product_id)), [])
    return _personal(treatments, today)


def _personal(treatments: Sequence[Treatment], today: date) -> DurationOutcome | None:
    if sum(1 for t in treatments if t.returned_on is not None) < MIN_EVENTS:
        return None
    return personal_duration(_episodes(treatments, today), today, min_events=MIN_EVENTS)


@dataclass
class Preloaded:
    """``durations(patient, indication, product_id)`` for a chunk of patients, loaded at once.

    Only the patients with at least one current report of the effect returning
    (``patient_ids``) can have a personal duration; the others cost nothing."""

    patient_ids: frozenset[int]
    series: dict[SeriesKey, list[Treatment]]
    today: date
    _cache: dict[SeriesKey, DurationOutcome | None] = field(default_factory=dict)

    def __call__(
        self, patient: Patient | int, indication: str, product_id: str
    ) -> DurationOutcome | None:
        pid = patient if isinstance(patient, int) else patient.pk
        if pid not in self.patient_ids:
            return None
        key = (pid, indication, family(product_id))
        if key not in self._cache:
            self._cache[key] = _personal(self.series.get(key, []), self.today)
        return self._cache[key]


def preload(
    organization_id: int, patient_ids: Iterable[int], today: date | None = None
) -> Preloaded:
    """The personal durations of a chunk of patients: one query for who has any report of the
    effect returning, and two more only when some do."""
    today = today or timezone.localdate()
    ids = list(patient_ids)
    with_returns = frozenset(
        EffectReturn.objects.filter(
            organization_id=organization_id, patient_id__in=ids, entered_in_error=False
        )
        .values_list("patient_id", flat=True)
        .distinct()
    )
    series = _load(organization_id, patient_ids=sorted(with_returns)) if with_returns else {}
    return Preloaded(with_returns, series, today)


# --- writing ----------------------------------------------------------------------------------


def _check_actor(actor: Actor, organization_id: int, via: str) -> None:
    require_unless_patient(actor, via, "outcome.record")
    if organization_id != actor.organization.pk:
        raise PermissionError("That treatment belongs to another organization.")


def _treatment_of(session: TreatmentSession) -> TreatmentSession:
    """The treatment a report belongs to: a touch-up's report goes to the one it completed."""
    if session.follow_up_of_id is not None:
        parent = TreatmentSession.objects.filter(
            pk=session.follow_up_of_id, organization_id=session.organization_id
        ).first()
        if parent is not None and parent.status in SIGNED:
            return parent
    return session


def _next_treatment_on(session: TreatmentSession) -> date | None:
    fam = family(session.product_id)
    later = (
        TreatmentSession.objects.filter(
            organization_id=session.organization_id,
            patient_id=session.patient_id,
            indication=session.indication,
            status__in=SIGNED,
            follow_up_of__isnull=True,
            treated_on__gte=session.treated_on,
        )
        .exclude(pk=session.pk)
        .order_by("treated_on", "signed_at", "pk")
        .values_list("treated_on", "product_id", "signed_at", "pk")
    )
    for on, prod, signed_at, pk in later:
        if family(prod) != fam:
            continue
        if on == session.treated_on and (signed_at, pk) < (session.signed_at, session.pk):
            continue
        return on
    return None


def record_return(
    actor: Actor,
    session: TreatmentSession,
    returned_on: date,
    *,
    rater: str = Rater.CLINICIAN,
    via: str = Via.STAFF,
    note: str = "",
    today: date | None = None,
) -> EffectReturn:
    """Record that the effect of SESSION's treatment came back on RETURNED_ON (see the module
    docstring). Raises :class:`ReturnRefused` with a plain sentence, PermissionDenied for a
    role that may not record, PermissionError for another organization's session."""
    from glabella.scheduling import recalls

    _check_actor(actor, session.organization_id, via)
    if rater not in Rater.values:
        raise ReturnRefused("Say who reported it: the clinician or the patient.", "rater")
    if via not in Via.values:
        raise ReturnRefused("Say how the report came in.", "via")
    if not isinstance(returned_on, date) or isinstance(returned_on, datetime):
        raise ReturnRefused("Enter the date the effect returned, as DD/MM/YYYY.")
    note = (note or "").strip()
    if len(note) > 300:
        raise ReturnRefused("Keep the note under 300 characters.", "note")
    with transaction.atomic():
        locked = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        if locked.organization_id != actor.organization.pk:
            raise PermissionError("That treatment belongs to another organization.")
        if locked.status == Status.VOIDED:
            raise ReturnRefused(
                "This treatment was entered in error (voided): there is no effect to record.",
                "session",
            )
        if locked.status not in SIGNED:
            raise ReturnRefused(
                "This treatment is still a draft: sign it before recording how long it lasted.",
                "session",
            )
        treatment = _treatment_of(locked)
        today = today or clinic_today(treatment.clinic)
        if returned_on > today:
            raise ReturnRefused(
                f"{_fmt(returned_on)} is in the future: record the day the effect has "
                "already come back."
            )
        if returned_on < treatment.treated_on:
            raise ReturnRefused(
                f"{_fmt(returned_on)} is before the treatment of {_fmt(treatment.treated_on)}: "
                "the effect cannot come back before it was given."
            )
        following = _next_treatment_on(treatment)
        if following is not None and returned_on > following:
            raise ReturnRefused(
                f"{_fmt(returned_on)} is after the next treatment, of {_fmt(following)}: "
                "record it against that treatment instead."
            )
        current = (
            EffectReturn.objects.select_for_update()
            .filter(session=treatment, entered_in_error=False)
            .first()
        )
        if current is not None and (current.returned_on, current.rater, current.note) == (
            returned_on,
            rater,
            note,
        ):
            return current  # the same report again: nothing changes
        replaced: dict[str, Any] = {}
        if current is not None:
            current.entered_in_error = True
            current.error_reason = REPLACED
            current.save(update_fields=["entered_in_error", "error_reason"])
            replaced = {"replaced": current.pk, "was": current.returned_on.isoformat()}
        row = EffectReturn.objects.create(
            organization_id=treatment.organization_id,
            patient_id=treatment.patient_id,
            session=treatment,
            returned_on=returned_on,
            rater=rater,
            via=via,
            note=note,
            recorded_by=actor.user,
        )
        days = (returned_on - treatment.treated_on).days
        record(
            actor,
            Action.UPDATE if current is not None else Action.CREATE,
            row,
            label=f"effect returned after {days} days: treatment of {_fmt(treatment.treated_on)}",
            detail={
                "patient": treatment.patient_id,
                "session": treatment.pk,
                "returned_on": returned_on.isoformat(),
                "days": days,
                "rater": rater,
                "via": via,
                **replaced,
            },
        )
        recalls.refresh(treatment.patient)
    return row


def mark_in_error(actor: Actor, effect_return: EffectReturn, reason: str) -> EffectReturn:
    """Mark a report of the effect returning as entered in error, with REASON. It stays on
    record; the patient's recalls are recomputed without it. Audited."""
    from glabella.scheduling import recalls

    actor.require("outcome.record")
    if effect_return.organization_id != actor.organization.pk:
        raise PermissionError("That record belongs to another organization.")
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ReturnRefused("Say why this report was entered in error.", "reason")
    with transaction.atomic():
        row = EffectReturn.objects.select_for_update().get(pk=effect_return.pk)
        if row.entered_in_error:
            raise ReturnRefused("This report is already marked entered in error.", "reason")
        row.entered_in_error = True
        row.error_reason = reason[:300]
        row.save(update_fields=["entered_in_error", "error_reason"])
        record(
            actor,
            Action.UPDATE,
            row,
            label=f"effect return of {_fmt(row.returned_on)} marked entered in error",
            detail={"patient": row.patient_id, "session": row.session_id, "reason": reason[:300]},
        )
        recalls.refresh(row.patient)
    return row


# --- fading response -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FadingFlag:
    """A response fading cycle after cycle at a steady or rising dose (possible resistance)."""

    indication: str
    indication_name: str
    product_id: str
    product_name: str
    reason: str
    rule: str
    status: str


def _fading(series: dict[SeriesKey, list[Treatment]], today: date) -> list[FadingFlag]:
    flags = []
    for (_pid, ind, _fam), treatments in sorted(series.items()):
        result = fading_response(_episodes(treatments, today))
        if result.flagged:
            last = treatments[-1]
            flags.append(
                FadingFlag(
                    ind,
                    indication_name(ind),
                    last.product_id,
                    brand(last.product_id),
                    result.reason,
                    result.rule,
                    result.status,
                )
            )
    return flags


def fading(
    patient: Patient,
    today: date | None = None,
    *,
    sessions: Sequence[TreatmentSession] | None = None,
) -> list[FadingFlag]:
    """The indications and products where PATIENT's response is fading (possible resistance).

    SESSIONS: every one of the patient's sessions with its ``live_units``, as
    ``charting.services.sessions_for`` reads them for the patient's page, so they are not
    read again."""
    today = today or timezone.localdate()
    rows = None if sessions is None else session_rows_of(patient, sessions)
    if rows is not None and not _enough_to_judge(rows):
        return []  # no series long enough to flag: the returns need not be read
    return _fading(
        _load(patient.organization_id, patient_ids=[patient.pk], session_rows=rows), today
    )


def _enough_to_judge(rows: list[tuple[Any, ...]]) -> bool:
    """Whether any indication and family has FADING_MIN_EPISODES signed sessions, the fewest
    treatments ``fading_response`` judges (it needs that many recorded returns, one a
    treatment). Touch-ups and sessions without units count here, which ``_load`` folds in or
    leaves out: the count is never below the treatments', so no flag is missed."""
    counts = Counter((row[3], family(row[4])) for row in rows)
    return max(counts.values(), default=0) >= FADING_MIN_EPISODES


def session_rows_of(
    patient: Patient, sessions: Sequence[TreatmentSession]
) -> list[tuple[Any, ...]]:
    """``_session_rows``'s rows for PATIENT from SESSIONS (all of theirs, each with the
    ``live_units`` annotation): the signed and amended ones, as ``_sessions`` keeps."""
    return [
        (
            s.pk,
            s.patient_id,
            s.clinic_id,
            s.indication,
            s.product_id,
            s.treated_on,
            s.follow_up_of_id,
            s.signed_at,
            s.live_units,  # type: ignore[attr-defined]
        )
        for s in sessions
        if s.status in SIGNED and s.patient_id == patient.pk
    ]


# --- the patient's durations page ---------------------------------------------------------------


@dataclass
class TreatmentRow:
    session: TreatmentSession
    treatment: Treatment
    current: EffectReturn | None
    earlier: list[EffectReturn]

    @property
    def days(self) -> int | None:
        return self.treatment.days

    @property
    def still_working(self) -> bool:
        return self.current is None and self.treatment.next_treated_on is None

    @property
    def product_name(self) -> str:
        return brand(self.treatment.product_id)

    @property
    def status_text(self) -> str:
        if self.days is not None:
            return f"{self.days} days"
        if self.still_working:
            return "still working"
        return "not recorded"


@dataclass
class SeriesView:
    indication: str
    indication_name: str
    family: str
    products: str
    rows: list[TreatmentRow]
    estimate: DurationOutcome | None
    events: int
    recall: Recall | None
    usual_due: date | None
    personal_due: date | None
    minimum_days: int | None
    usual_days: int | None
    fading: FadingFlag | None

    @property
    def fading_flags(self) -> list[FadingFlag]:
        return [self.fading] if self.fading is not None else []

    @property
    def treatments(self) -> int:
        return len(self.rows)

    @property
    def clamped(self) -> bool:
        """The patient's median is shorter than the minimum interval, which wins."""
        return (
            self.estimate is not None
            and self.minimum_days is not None
            and self.estimate.median_days < self.minimum_days
        )


def _cosmetic_days(clinic_id: int) -> int:
    from glabella.scheduling.models import SchedulingSettings
    from glabella.scheduling.recalls import _cosmetic_days as clamp

    raw = (
        # scoped: clinic_id read off a record already scoped
        SchedulingSettings.objects.filter(clinic_id=clinic_id)
        .values_list("cosmetic_recall_days", flat=True)
        .first()
    )
    return clamp(raw)


def overview(patient: Patient, today: date | None = None) -> list[SeriesView]:
    """Per indication and product family: each treatment and when its effect returned, the
    patient's own estimate, what it does to the recall, and the fading flag."""
    from glabella.scheduling.models import Recall, RecallKind

    today = today or timezone.localdate()
    org = patient.organization_id
    series = _load(org, patient_ids=[patient.pk])
    session_ids = [t.session_id for ts in series.values() for t in ts]
    sessions = TreatmentSession.objects.for_org(org).in_bulk(session_ids)
    reports: dict[int, list[EffectReturn]] = defaultdict(list)
    for r in (
        EffectReturn.objects.for_org(org)
        .filter(patient=patient)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-pk")
    ):
        reports[r.session_id].append(r)
    current_recalls = {
        r.indication: r
        for r in Recall.objects.for_org(org).filter(
            patient=patient, kind=RecallKind.RETREATMENT, is_current=True
        )
    }
    fading_flags = {(f.indication, family(f.product_id)): f for f in _fading(series, today)}
    views = []
    for (_pid, ind, fam), treatments in sorted(series.items(), key=lambda kv: kv[0][1:]):
        rows = []
        for t in reversed(treatments):
            mine = reports.get(t.session_id, [])
            current = next((r for r in mine if not r.entered_in_error), None)
            earlier = [r for r in mine if r.entered_in_error]
            rows.append(TreatmentRow(sessions[t.session_id], t, current, earlier))
        estimate = _personal(treatments, today)
        last = treatments[-1]
        dob = patient.date_of_birth
        age = (
            last.treated_on.year
            - dob.year
            - ((last.treated_on.month, last.treated_on.day) < (dob.month, dob.day))
        )
        population = indications.population_for_age(max(age, 0))
        settings = ClinicalSettings(cosmetic_recall_days=_cosmetic_days(last.clinic_id))
        history = [PastTreatment(last.treated_on, last.product_id, ind, last.units)]
        usual_due = personal_due = None
        if indications.exists(ind):
            usual_due = schedule.next_due(history, ind, None, settings, population=population)
            if estimate is not None:
                personal_due = schedule.next_due(
                    history, ind, estimate, settings, population=population
                )
        minimum = (
            schedule.min_interval_days(ind, fam, population) if indications.exists(ind) else None
        )
        recall = current_recalls.get(ind)
        if recall is not None and family(recall.product_id) != fam:
            recall = None  # the recall follows another product's treatment
        products = " / ".join(dict.fromkeys(brand(t.product_id) for t in treatments))
        views.append(
            SeriesView(
                indication=ind,
                indication_name=indication_name(ind),
                family=fam,
                products=products,
                rows=rows,
                estimate=estimate,
                events=sum(1 for t in treatments if t.returned_on is not None),
                recall=recall,
                usual_due=usual_due,
                personal_due=personal_due,
                minimum_days=minimum,
                usual_days=(usual_due - last.treated_on).days if usual_due else None,
                fading=fading_flags.get((ind, fam)),
            )
        )
    return views


# --- the clinic's cohort -------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortCurve:
    """The Kaplan-Meier duration of effect of one product family for one indication."""

    family: str
    label: str
    product_ids: tuple[str, ...]
    patients: int
    treatments: int
    events: int
    censored: int
    median_days: int | None
    p25_days: int | None
    p75_days: int | None
    points: list[tuple[int, float]]
    curve: KaplanMeier

    @property
    def median_text(self) -> str:
        return f"{self.median_days} days" if self.median_days is not None else "not reached"


def _quantile_day(curve: KaplanMeier, survival: float) -> int | None:
    """The first day the curve falls to SURVIVAL or below (None: not reached)."""
    for step in curve.steps:
        if step.events and step.survival <= survival + 1e-12:
            return step.day
    return None


def cohort(
    organization: Organization,
    *,
    indication: str,
    product_id: str | None = None,
    clinic: Clinic | None = None,
    today: date,
) -> list[CohortCurve]:
    """Kaplan-Meier per product family for INDICATION across the organization's patients
    (optionally one product's family, treatments given at one clinic). A treatment without a
    recorded return is censored: at the next treatment, or today while it still works."""
    if clinic is not None and clinic.organization_id != organization.pk:
        raise PermissionError("That clinic belongs to another organization.")
    series = _load(organization.pk, indication=indication)
    wanted = family(product_id) if product_id else None
    pooled: dict[str, list[Treatment]] = defaultdict(list)
    for (_pid, _ind, fam), treatments in series.items():
        if wanted is not None and fam != wanted:
            continue
        for t in treatments:
            if t.treated_on > today:
                continue
            if clinic is not None and t.clinic_id != clinic.pk:
                continue
            pooled[fam].append(t)
    curves = []
    for fam, treatments in pooled.items():
        curve = kaplan_meier([t.episode() for t in treatments], today)
        product_ids = tuple(sorted({t.product_id for t in treatments}))
        events = curve.events
        points = [(0, 1.0)] + [(s.day, s.survival) for s in curve.steps]
        curves.append(
            CohortCurve(
                family=fam,
                label=" / ".join(brand(p) for p in product_ids),
                product_ids=product_ids,
                patients=len({t.patient_id for t in treatments}),
                treatments=len(treatments),
                events=events,
                censored=len(treatments) - events,
                median_days=curve.median_days,
                p25_days=_quantile_day(curve, 0.75),
                p75_days=_quantile_day(curve, 0.25),
                points=points,
                curve=curve,
            )
        )
    curves.sort(key=lambda c: (-c.treatments, c.label))
    return curves


def cohort_indications(organization: Organization) -> list[tuple[str, str]]:
    """(id, name) of the indications the organization has signed treatments for."""
    found = set(
        TreatmentSession.objects.for_org(organization)
        .filter(status__in=SIGNED)
        .values_list("indication", flat=True)
        .distinct()
    )
    return [(i, indication_name(i)) for i in sorted(found, key=indication_name)]


def view_durations(actor: Actor, patient: Patient) -> None:
    """Audit that ACTOR looked at PATIENT's durations of effect."""
    from glabella.patients import services as patient_services

    actor.require("outcome.view")
    patient_services.view_patient(actor, patient, part="durations of effect")


def view_cohort(actor: Actor, indication: str, clinic: Clinic | None) -> None:
    """Audit that ACTOR looked at the clinic's duration curves (counts only, no patient)."""
    actor.require("outcome.view")
    record(
        actor,
        Action.VIEW,
        object_type="outcomes.cohort",
        label=f"duration of effect, {indication_name(indication)}"[:200],
        detail={"indication": indication, "clinic": clinic.pk if clinic else None},
    )
