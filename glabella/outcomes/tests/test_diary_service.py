"""The headache diary service: recording a day (future refused, later replaces earlier, kept and
audited), who may record, and the figures from a diary (per 28 days, per cycle, overuse).

The helpers at the top (signed sessions written directly, synthetic diaries) are shared by the
other outcome-measure tests.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from glabella.accounts.actor import Actor
from glabella.audit.models import AuditEvent
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.outcomes import diary
from glabella.outcomes.models import DiaryEntry, Via

TODAY = date(2025, 11, 20)


# --- shared helpers ---------------------------------------------------------------------------


def session(
    world,
    on: date,
    *,
    indication: str = "chronic-migraine",
    product_id: str = "botox",
    status: str = Status.SIGNED,
    points: list[tuple[str, str]] = (),
    patient=None,
) -> TreatmentSession:
    """A session written directly (the charting services are tested elsewhere): a draft with
    its points (area, units), then put in STATUS."""
    s = TreatmentSession.objects.create(
        organization=world.org,
        patient=patient or world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        prescriber=world.users["prescriber"],
        indication=indication,
        product_id=product_id,
        treated_on=on,
        created_by=world.users["injector"],
    )
    for n, (area, units) in enumerate(points, start=1):
        InjectionPoint.objects.create(
            organization=world.org,
            session=s,
            number=n,
            diagram="face",
            x=Decimal(50),
            y=Decimal(50),
            area=area,
            muscle=area,
            side="mid",
            units=Decimal(units),
        )
    if status != Status.DRAFT:
        s.status = status
        s.save()
    return s


def fill(world, start: date, days: int, per_28: int, *, migraine=0, medication=0, patient=None):
    """DAYS diary days from START: in every block of 28 days the first PER_28 are headache days
    (the first MIGRAINE of them with migraine features, the first MEDICATION with a triptan)."""
    rows = []
    for i in range(days):
        k = i % 28
        rows.append(
            DiaryEntry(
                organization=world.org,
                patient=patient or world.patient,
                day=start + timedelta(days=i),
                headache=k < per_28,
                migraine=k < min(migraine, per_28),
                acute_medication=["triptan"] if k < medication else [],
                via=Via.PORTAL,
            )
        )
    DiaryEntry.objects.bulk_create(rows)


def portal_actor(world) -> Actor:
    """What the patient's own pages pass: the organization, no user, no role."""
    return Actor(world.org, None, None, None, via="portal")


# --- recording --------------------------------------------------------------------------------


def test_a_diary_day_is_recorded_and_audited(world):
    entry = diary.record_day(
        world.actor("injector"),
        world.patient,
        TODAY - timedelta(days=1),
        headache=True,
        migraine=True,
        severity=2,
        hours=Decimal("3.5"),
        acute_medication=["triptan", "simple_analgesic"],
        via=Via.PAPER,
        today=TODAY,
    )
    entry.refresh_from_db()
    assert entry.headache and entry.migraine and entry.severity == 2
    assert entry.hours == Decimal("3.5")
    assert entry.acute_medication == ["simple_analgesic", "triptan"]
    assert entry.via == Via.PAPER and entry.recorded_by == world.users["injector"]
    event = AuditEvent.objects.get(object_type="outcomes.diaryentry", object_id=str(entry.pk))
    assert event.action == "create" and event.detail["event"] == "diary.record"


def test_a_future_diary_day_is_refused(world):
    with pytest.raises(diary.DiaryRefused) as caught:
        diary.record_day(
            world.actor("injector"),
            world.patient,
            TODAY + timedelta(days=1),
            headache=True,
            today=TODAY,
        )
    assert caught.value.field == "day"
    assert "future" in str(caught.value) and "21/11/2025" in str(caught.value)
    assert not DiaryEntry.objects.exists()


def test_today_defaults_to_the_clinic_date_so_tomorrow_is_refused(world):
    tomorrow = diary.local_today(world.actor(), world.patient) + timedelta(days=1)
    with pytest.raises(diary.DiaryRefused):
        diary.record_day(world.actor("injector"), world.patient, tomorrow, headache=False)


def test_a_second_entry_for_a_day_replaces_the_first_and_keeps_it(world):
    actor = world.actor("injector")
    day = TODAY - timedelta(days=3)
    first = diary.record_day(actor, world.patient, day, headache=False, today=TODAY)
    second = diary.record_day(
        actor, world.patient, day, headache=True, severity=3, via=Via.PAPER, today=TODAY
    )
    first.refresh_from_db()
    assert first.replaced_at is not None and first.replaced_by == second
    assert second.replaced_at is None
    assert DiaryEntry.objects.filter(patient=world.patient, day=day).count() == 2
    assert [e.pk for e in diary.current_entries(world.patient)] == [second.pk]
    assert [e.pk for e in diary.replaced_entries(world.patient)] == [first.pk]
    event = AuditEvent.objects.get(object_id=str(second.pk), object_type="outcomes.diaryentry")
    assert event.action == "update" and event.detail["event"] == "diary.replace"
    assert event.detail["before"]["headache"] is False
    assert event.detail["after"]["headache"] is True and event.detail["after"]["severity"] == 3


def test_sending_the_same_day_twice_changes_nothing(world):
    actor = world.actor("injector")
    day = TODAY - timedelta(days=2)
    kwargs = {"headache": True, "severity": 1, "hours": Decimal(2), "today": TODAY}
    first = diary.record_day(actor, world.patient, day, acute_medication=["triptan"], **kwargs)
    events = AuditEvent.objects.count()
    again = diary.record_day(actor, world.patient, day, acute_medication=("triptan",), **kwargs)
    assert again.pk == first.pk
    assert DiaryEntry.objects.count() == 1 and AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"headache": False, "migraine": True}, "migraine", "also a headache day"),
        ({"headache": False, "severity": 2}, "severity", "for a headache day"),
        ({"headache": False, "hours": Decimal(3)}, "hours", "for a headache day"),
        ({"headache": True, "severity": 4}, "severity", "3 (severe)"),
        ({"headache": True, "hours": Decimal(25)}, "hours", "between 0 and 24"),
        ({"headache": True, "hours": "a lot"}, "hours", "as a number"),
        ({"headache": True, "acute_medication": ["aspirin"]}, "acute_medication", "aspirin"),
    ],
)
def test_a_diary_day_that_does_not_add_up_is_refused_in_words(world, kwargs, field, words):
    with pytest.raises(diary.DiaryRefused) as caught:
        diary.record_day(world.actor("injector"), world.patient, TODAY, today=TODAY, **kwargs)
    assert caught.value.field == field and words in str(caught.value)
    assert not DiaryEntry.objects.exists()


@pytest.mark.parametrize("role", ["front_desk", "auditor"])
def test_roles_without_outcome_record_cannot_copy_a_diary(world, role):
    with pytest.raises(PermissionDenied):
        diary.record_day(world.actor(role), world.patient, TODAY, headache=True, today=TODAY)
    assert not DiaryEntry.objects.exists()


def test_the_patients_own_pages_record_without_a_role(world):
    entry = diary.record_day(
        portal_actor(world), world.patient, TODAY, headache=True, via=Via.PORTAL, today=TODAY
    )
    assert entry.via == Via.PORTAL and entry.recorded_by is None
    # ...but not without saying so: a role-less actor is refused for staff entries.
    with pytest.raises(PermissionDenied):
        diary.record_day(portal_actor(world), world.patient, TODAY, headache=False, today=TODAY)


def test_another_organizations_patient_is_refused(world):
    for actor, via in ((world.actor("injector"), Via.STAFF), (portal_actor(world), Via.PORTAL)):
        with pytest.raises(PermissionError):
            diary.record_day(
                actor, world.outsider_patient, TODAY, headache=True, via=via, today=TODAY
            )
    assert not DiaryEntry.objects.exists()


# --- figures ----------------------------------------------------------------------------------


def test_28_days_with_16_headache_days_is_16_per_28_days(world):
    fill(world, TODAY - timedelta(days=27), 28, 16, migraine=9, medication=6)
    s = diary.summary(world.patient, TODAY).last_28
    assert (s.days_recorded, s.headache_days, s.migraine_days) == (28, 16, 9)
    assert s.headache_days_per_28 == Decimal("16.0")
    assert s.migraine_days_per_28 == Decimal("9.0")
    assert s.acute_medication_days_per_28 == Decimal("6.0")
    assert s.enough_data and "S13" in s.source


def test_a_part_recorded_window_is_normalised_and_said_to_be_thin(world):
    fill(world, TODAY - timedelta(days=13), 14, 7)  # 7 headache days in 14 recorded
    s = diary.summary(world.patient, TODAY).last_28
    assert s.headache_days_per_28 == Decimal("14.0")
    assert not s.enough_data and "Only 14 of 28 days recorded" in s.note


def test_replaced_entries_do_not_count_twice(world):
    actor = world.actor("injector")
    day = TODAY - timedelta(days=1)
    diary.record_day(actor, world.patient, day, headache=True, today=TODAY)
    diary.record_day(actor, world.patient, day, headache=False, today=TODAY)
    summary = diary.summary(world.patient, TODAY)
    assert summary.last_28.days_recorded == 1 and summary.last_28.headache_days == 0
    assert summary.replaced_count == 1


def test_cycles_are_the_signed_migraine_sessions_not_drafts_voided_or_cosmetic(world):
    first = TODAY - timedelta(days=84)
    session(world, first)
    session(world, TODAY - timedelta(days=10), status=Status.DRAFT)
    session(world, TODAY - timedelta(days=20), status=Status.VOIDED)
    session(
        world, TODAY - timedelta(days=30), indication="glabellar-lines", product_id="botox_cosmetic"
    )
    session(world, TODAY - timedelta(days=42), status=Status.AMENDED)
    fill(world, first - timedelta(days=28), 28 + 85, 14)
    summary = diary.summary(world.patient, TODAY)
    assert summary.injections == (first, TODAY - timedelta(days=42))
    labels = [r.label for r in summary.cycle_rows]
    assert labels[0].startswith("Baseline") and len(labels) == 3
    assert summary.report.baseline.headache_days_per_28 == Decimal("14.0")
    assert summary.report.cycles[0].start == first
    assert summary.report.cycles[0].end == TODAY - timedelta(days=43)


def test_no_migraine_session_means_no_cycle_table(world):
    fill(world, TODAY - timedelta(days=27), 28, 3)
    summary = diary.summary(world.patient, TODAY)
    assert summary.report is None and summary.cycle_rows == ()


def test_triptans_on_ten_days_a_month_for_three_months_flag_medication_overuse(world):
    # 90 days, 30-day months: headache on 12 days of each 28-day block, a triptan on 10 of
    # them -> at least 10 triptan days in each 30-day month.
    start = TODAY - timedelta(days=89)
    rows = [
        DiaryEntry(
            organization=world.org,
            patient=world.patient,
            day=start + timedelta(days=i),
            headache=i % 3 == 0,
            acute_medication=["triptan"] if i % 3 == 0 else [],
        )
        for i in range(90)
    ]
    DiaryEntry.objects.bulk_create(rows)
    overuse = diary.summary(world.patient, TODAY).overuse
    assert overuse.overuse and overuse.fired
    assert "ICHD-3" in overuse.source


def test_few_medication_days_are_not_overuse(world):
    fill(world, TODAY - timedelta(days=89), 90, 10, medication=3)
    overuse = diary.summary(world.patient, TODAY).overuse
    assert not overuse.overuse and "No ICHD-3" in overuse.source


def test_a_staff_member_cannot_skip_their_permission_by_claiming_the_patients_pages(world):
    with pytest.raises(PermissionDenied):
        diary.record_day(
            world.actor("front_desk"),
            world.patient,
            TODAY,
            headache=True,
            via=Via.PORTAL,
            today=TODAY,
        )
    assert not DiaryEntry.objects.exists()
