"""The recall follows the patient's own recorded durations of effect, by default, everywhere.

Real signed sessions (through charting) and real reports of the effect returning (through
``outcomes.durations.record_return``): the recall moves as soon as a report is saved.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from glabella.accounts.actor import Actor
from glabella.clinical.duration import personal_duration
from glabella.outcomes import durations
from glabella.outcomes.models import Rater, Via
from glabella.patients import services as patient_services
from glabella.scheduling import booking, recalls
from glabella.scheduling.models import Recall, SchedulingSettings
from glabella.scheduling.tests.recall_helpers import consent_from, signed

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def recall_of(world, patient=None, indication: str = "glabellar-lines") -> Recall:
    return Recall.objects.get(
        patient=patient or world.patient,
        indication=indication,
        kind="retreatment",
        is_current=True,
    )


def back_after(world, session, days: int, **kw):
    return durations.record_return(
        world.actor("injector"), session, session.treated_on + timedelta(days=days), **kw
    )


@pytest.fixture
def history(world):
    """Ada's frown lines, Botox Cosmetic, four times 120 days apart, the last 40 days ago."""
    consent_from(world, 500)
    consent_from(world, 250)
    sessions = [signed(world, days_ago=days) for days in (400, 280, 160, 40)]
    world.sessions = sessions
    return world


def test_the_recall_follows_the_patients_recorded_durations(history):
    world = history
    s1, s2, s3, last = world.sessions
    usual = last.treated_on + timedelta(days=120)
    assert recall_of(world).due_on == usual and not recall_of(world).personalised

    back_after(world, s1, 100)  # one return: not enough for an estimate
    assert recall_of(world).due_on == usual and not recall_of(world).personalised

    back_after(world, s2, 104)
    # 40 days (still working), 100 (returned), 104 (returned), 120 (treated again, censored):
    # S(100) = 2/3, S(104) = 1/3 -> the median is 104 days.
    recall = recall_of(world)
    assert recall.personalised
    assert recall.due_on == last.treated_on + timedelta(days=104)
    core = personal_duration(
        durations.episodes_for(world.patient, "glabellar-lines", "botox_cosmetic"), TODAY
    )
    assert core is not None and core.median_days == 104

    back_after(world, s3, 80)  # a shorter one: 80, 100, 104 -> median 100
    assert recall_of(world).due_on == last.treated_on + timedelta(days=100)

    back_after(world, s3, 118)  # corrected to a longer one: 100, 104, 118 -> median 104
    assert recall_of(world).due_on == last.treated_on + timedelta(days=104)
    assert recall_of(world).personalised

    # A report entered in error leaves too few: back to the usual interval.
    wrong = durations.episodes_for(world.patient, "glabellar-lines", "botox")
    assert [e.recorded_days for e in wrong] == [100, 104, 118, None]
    from glabella.outcomes.models import EffectReturn

    for row in EffectReturn.objects.filter(entered_in_error=False).exclude(session=s1):
        durations.mark_in_error(world.actor("injector"), row, "Another patient's answer.")
    assert recall_of(world).due_on == usual and not recall_of(world).personalised


def test_a_short_duration_never_brings_the_recall_before_the_minimum_interval(world):
    consent_from(world, 320)
    s1, s2, last = (signed(world, days_ago=days) for days in (300, 180, 40))
    back_after(world, s1, 60)
    back_after(world, s2, 62)
    # 40 (still working), 60 and 62 (returned): S(60) = 1/2, a median of 60 days; the
    # minimum interval for Botox Cosmetic on frown lines is 90 days, and it holds.
    assert (
        durations.personal_duration_for(
            world.patient, "glabellar-lines", "botox_cosmetic"
        ).median_days
        == 60
    )
    recall = recall_of(world)
    assert recall.personalised
    assert recall.earliest_on == last.treated_on + timedelta(days=90)
    assert recall.due_on == recall.earliest_on


def test_a_report_from_the_patients_own_pages_moves_the_recall_at_once(history):
    world = history
    s1, s2, _s3, last = world.sessions
    back_after(world, s1, 100)
    portal = Actor(world.org, None, None, None, via="portal")
    durations.record_return(
        portal, s2, s2.treated_on + timedelta(days=110), rater=Rater.PATIENT, via=Via.PORTAL
    )
    recall = recall_of(world)
    assert recall.personalised and recall.due_on == last.treated_on + timedelta(days=110)


def test_the_whole_organization_rebuild_and_a_clinic_change_keep_the_personal_dates(history):
    world = history
    s1, s2, _s3, last = world.sessions
    back_after(world, s1, 100)
    back_after(world, s2, 104)
    personal_due = last.treated_on + timedelta(days=104)
    Recall.objects.filter(pk=recall_of(world).pk).update(due_on=ago(1), personalised=False)
    recalls.rebuild_all(world.org)
    assert recall_of(world).due_on == personal_due and recall_of(world).personalised

    # Another patient, treated here, without any recorded return: the clinic's interval.
    bea = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Bea", "family_name": "Other", "date_of_birth": date(1990, 5, 5)},
    )
    consent_from(world, 100, patient=bea)
    signed(world, days_ago=30, patient=bea)
    booking.settings_for(world.clinic)
    SchedulingSettings.objects.filter(clinic=world.clinic).update(cosmetic_recall_days=100)
    recalls.clinic_interval_changed(world.clinic)
    assert recall_of(world, bea).due_on == ago(30) + timedelta(days=100)
    assert recall_of(world).due_on == personal_due and recall_of(world).personalised

    # Explicitly without personal durations, the clinic's interval applies to Ada too.
    recalls.refresh(world.patient, durations=None)
    assert recall_of(world).due_on == last.treated_on + timedelta(days=100)
    assert not recall_of(world).personalised


def test_the_rebuild_asks_for_durations_per_chunk_not_per_patient(history):
    world = history
    s1, s2, *_ = world.sessions
    back_after(world, s1, 100)
    back_after(world, s2, 104)

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            recalls.rebuild_all(world.org)
        return len(seen)

    before = queries()
    for n in range(4):
        other = patient_services.create_patient(
            world.actor("injector"),
            {"given_name": f"P{n}", "family_name": "Chunk", "date_of_birth": date(1980, 1, 1)},
        )
        consent_from(world, 100, patient=other)
        first = signed(world, days_ago=99, patient=other)
        if n % 2:
            back_after(world, first, 95)
    assert queries() == before
