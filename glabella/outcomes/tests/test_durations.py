"""Recording when the effect returned, the episodes built from it, and the fading flag."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from glabella.accounts.actor import Actor
from glabella.audit.models import AuditEvent
from glabella.charting import services as charting
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.outcomes import durations
from glabella.outcomes.durations import ReturnRefused, record_return
from glabella.outcomes.models import EffectReturn, Rater, Via
from glabella.scheduling.models import Recall
from glabella.scheduling.tests.recall_helpers import consent_from, signed

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def quick_session(
    world,
    treated_on: date,
    units: str = "20",
    *,
    indication: str = "glabellar-lines",
    product_id: str = "botox_cosmetic",
    patient=None,
    clinic=None,
    status: str = Status.SIGNED,
    follow_up_of: TreatmentSession | None = None,
) -> TreatmentSession:
    """A signed session with one point of UNITS, written straight to the tables: synthetic
    history for cohorts and flags (the signing rules have their own tests in charting)."""
    patient = patient or world.patient
    session = TreatmentSession.objects.create(
        organization=patient.organization,
        patient=patient,
        clinic=clinic or world.clinic,
        practitioner=world.users["injector"],
        created_by=world.users["injector"],
        indication=indication,
        product_id=product_id,
        treated_on=treated_on,
        follow_up_of=follow_up_of,
    )
    InjectionPoint.objects.create(
        organization=patient.organization,
        session=session,
        number=1,
        diagram="face-front",
        x=Decimal(50),
        y=Decimal(30),
        area="glabella",
        muscle="procerus",
        side="mid",
        units=Decimal(units),
    )
    if status != Status.DRAFT:
        session.status = status
        session.save()
    return session


def returned(world, session: TreatmentSession, days: int, **kw) -> EffectReturn:
    """The effect of SESSION came back DAYS after it (recorded by the injector)."""
    return record_return(
        world.actor(kw.pop("role", "injector")),
        session,
        session.treated_on + timedelta(days=days),
        **kw,
    )


def recall_of(world, indication: str = "glabellar-lines") -> Recall:
    return Recall.objects.get(
        patient=world.patient, indication=indication, kind="retreatment", is_current=True
    )


@pytest.fixture
def consents(world):
    consent_from(world, 200)
    return world


# --- recording --------------------------------------------------------------------------------


def test_recording_a_return_keeps_it_audits_it_and_says_how_long_it_lasted(world):
    session = quick_session(world, ago(130))
    row = returned(world, session, 100, note="frowning again")
    assert row.returned_on == ago(30)
    assert row.rater == Rater.CLINICIAN and row.via == Via.STAFF
    assert row.recorded_by == world.users["injector"]
    assert row.patient == world.patient and row.organization == world.org
    event = AuditEvent.objects.filter(object_type="outcomes.effectreturn").latest("seq")
    assert event.action == "create"
    assert event.detail["days"] == 100 and event.detail["session"] == session.pk
    assert "100 days" in event.object_label


@pytest.mark.parametrize(
    ("days", "words"),
    [(131, "in the future"), (-1, "before the treatment")],
)
def test_a_return_in_the_future_or_before_the_treatment_is_refused(world, days, words):
    # 130 days before today at the clinic (London, as record_return counts "the future").
    session = quick_session(world, durations.clinic_today(world.clinic) - timedelta(days=130))
    with pytest.raises(ReturnRefused) as refused:
        returned(world, session, days)
    assert words in refused.value.message
    assert refused.value.field == "returned_on"
    assert not EffectReturn.objects.exists()


def test_a_draft_or_voided_session_has_no_effect_to_record(consents):
    world = consents
    draft = quick_session(world, ago(100), status=Status.DRAFT)
    with pytest.raises(ReturnRefused, match="draft"):
        returned(world, draft, 90)
    voided = signed(world, days_ago=100)
    charting.void(world.actor("prescriber"), voided, "Charted for the wrong patient.")
    voided.refresh_from_db()
    with pytest.raises(ReturnRefused, match="voided"):
        returned(world, voided, 90)
    assert not EffectReturn.objects.exists()


def test_a_return_after_the_next_treatment_belongs_to_that_treatment(world):
    first = quick_session(world, ago(250))
    quick_session(world, ago(130))
    with pytest.raises(ReturnRefused, match="after the next treatment"):
        returned(world, first, 125)
    assert returned(world, first, 120).returned_on == ago(130)


def test_another_organizations_session_is_refused_and_nothing_written(world):
    session = quick_session(world, ago(130))
    with pytest.raises(PermissionError):
        record_return(world.outsider_actor(), session, ago(30))
    portal = Actor(world.outsider_org, None, None, None)
    with pytest.raises(PermissionError):
        record_return(portal, session, ago(30), rater=Rater.PATIENT, via=Via.PORTAL)
    assert not EffectReturn.objects.exists()


@pytest.mark.parametrize("role", ["front_desk", "auditor"])
def test_roles_without_outcome_record_may_not_record(world, role):
    session = quick_session(world, ago(130))
    with pytest.raises(PermissionDenied):
        returned(world, session, 100, role=role)
    assert not EffectReturn.objects.exists()


def test_the_patients_own_pages_record_without_a_role_but_only_through_the_portal(world):
    session = quick_session(world, ago(130))
    patient_actor = Actor(world.org, None, None, None, via="portal")
    with pytest.raises(PermissionDenied):
        record_return(patient_actor, session, ago(30))  # not via the portal: a role is needed
    row = record_return(patient_actor, session, ago(30), rater=Rater.PATIENT, via=Via.PORTAL)
    assert row.via == Via.PORTAL and row.rater == Rater.PATIENT and row.recorded_by is None
    assert AuditEvent.objects.filter(object_type="outcomes.effectreturn").count() == 1


def test_a_second_report_replaces_the_first_which_is_kept(world):
    session = quick_session(world, ago(130))
    first = returned(world, session, 100)
    second = returned(world, session, 95, rater=Rater.PATIENT)
    first.refresh_from_db()
    assert first.entered_in_error and first.error_reason == "replaced by a later report"
    assert not second.entered_in_error and second.returned_on == ago(35)
    assert EffectReturn.objects.count() == 2
    event = AuditEvent.objects.filter(object_type="outcomes.effectreturn").latest("seq")
    assert event.action == "update" and event.detail["replaced"] == first.pk


def test_the_same_report_twice_changes_nothing(world):
    session = quick_session(world, ago(130))
    first = returned(world, session, 100)
    events = AuditEvent.objects.count()
    again = returned(world, session, 100)
    assert again.pk == first.pk
    assert EffectReturn.objects.count() == 1
    assert AuditEvent.objects.count() == events


def test_a_report_against_a_touch_up_goes_to_the_treatment_it_completed(world):
    main = quick_session(world, ago(130), "20")
    touch_up = quick_session(world, ago(116), "4", follow_up_of=main)
    row = returned(world, touch_up, 110)  # 110 days after the touch-up: 124 after the treatment
    assert row.session == main
    (episode,) = durations.episodes_for(world.patient, "glabellar-lines", "botox_cosmetic")
    assert episode.units == Decimal("24")
    assert episode.recorded_days == 124


def test_marking_a_report_in_error_keeps_it_needs_a_reason_and_is_audited(world):
    session = quick_session(world, ago(130))
    row = returned(world, session, 100)
    with pytest.raises(ReturnRefused) as refused:
        durations.mark_in_error(world.actor("injector"), row, "  ")
    assert refused.value.field == "reason"
    with pytest.raises(PermissionDenied):
        durations.mark_in_error(world.actor("front_desk"), row, "Wrong patient's answer.")
    with pytest.raises(PermissionError):
        durations.mark_in_error(world.outsider_actor(), row, "Wrong patient's answer.")
    durations.mark_in_error(world.actor("injector"), row, "Wrong patient's answer.")
    row.refresh_from_db()
    assert row.entered_in_error and row.error_reason == "Wrong patient's answer."
    event = AuditEvent.objects.filter(object_type="outcomes.effectreturn").latest("seq")
    assert event.detail["reason"] == "Wrong patient's answer."
    with pytest.raises(ReturnRefused, match="already"):
        durations.mark_in_error(world.actor("injector"), row, "Again, by mistake.")
    assert durations.episodes_for(world.patient, "glabellar-lines", "botox")[0].returned_on is None


# --- episodes ---------------------------------------------------------------------------------


def test_episodes_are_the_signed_treatments_of_one_indication_and_product_family(world):
    a = quick_session(world, ago(400), "20")
    b = quick_session(world, ago(280), "24", product_id="botox")  # the same toxin
    quick_session(world, ago(200), "20", status=Status.DRAFT)
    quick_session(world, ago(160), "50", product_id="dysport")  # another family
    quick_session(world, ago(150), "12", indication="lateral-canthal-lines")
    c = quick_session(world, ago(40), "22")
    returned(world, a, 100)
    returned(world, b, 110)
    found = durations.episodes_for(world.patient, "glabellar-lines", "botox_cosmetic")
    assert [(e.treated_on, e.units, e.returned_on, e.next_treated_on) for e in found] == [
        (a.treated_on, Decimal("20"), ago(300), b.treated_on),
        (b.treated_on, Decimal("24"), ago(170), c.treated_on),
        (c.treated_on, Decimal("22"), None, None),
    ]
    assert [e.product_id for e in found] == ["botox_cosmetic", "botox", "botox_cosmetic"]
    dysport = durations.episodes_for(world.patient, "glabellar-lines", "dysport")
    assert [e.units for e in dysport] == [Decimal("50")]


def test_a_removed_point_does_not_count_in_the_units(consents):
    world = consents
    session = signed(world, days_ago=100)
    live = sum(p.units for p in session.points.all() if not p.removed)
    (episode,) = durations.episodes_for(world.patient, "glabellar-lines", "botox_cosmetic")
    assert episode.units == live == Decimal(20)


# --- personal duration ----------------------------------------------------------------------------


def test_two_recorded_returns_give_a_personal_median_one_does_not(world):
    a = quick_session(world, ago(400))
    b = quick_session(world, ago(280))
    quick_session(world, ago(160))
    returned(world, a, 100)
    assert durations.personal_duration_for(world.patient, "glabellar-lines", "botox") is None
    returned(world, b, 110)
    outcome = durations.personal_duration_for(world.patient, "glabellar-lines", "botox")
    # 100 (event), 110 (event), 160 (still working): S(100) = 2/3, S(110) = 1/3 -> 110.
    assert outcome is not None and outcome.median_days == 110


def test_preloading_a_chunk_asks_once_who_has_returns(world, django_assert_num_queries):
    a = quick_session(world, ago(400))
    b = quick_session(world, ago(280))
    returned(world, a, 100)
    returned(world, b, 104)
    others = [world.outsider_patient.pk + 1000 + i for i in range(50)]
    with django_assert_num_queries(1):
        nobody = durations.preload(world.org.pk, others)
    assert nobody.patient_ids == frozenset()
    # Who has returns, then the sessions with their units and the returns (durations._load).
    with django_assert_num_queries(3):
        chunk = durations.preload(world.org.pk, [world.patient.pk, *others])
    with django_assert_num_queries(0):
        # 100 and 104 days, both returned: S(100) = 1/2, the median.
        assert chunk(world.patient, "glabellar-lines", "botox_cosmetic").median_days == 100
        assert chunk(others[0], "glabellar-lines", "botox_cosmetic") is None


# --- fading -------------------------------------------------------------------------------------


def _history(world, lasted: list[int], units: list[str]) -> None:
    """Treatments every 130 days, the last one 40 days ago, with these durations and doses."""
    start = 40 + 130 * len(lasted)
    for index, (days, dose) in enumerate(zip(lasted, units, strict=True)):
        session = quick_session(world, ago(start - 130 * index), dose)
        returned(world, session, days)
    quick_session(world, ago(40), units[-1])


def test_three_shorter_durations_in_a_row_at_a_steady_dose_flag_a_fading_response(world):
    _history(world, [120, 100, 80], ["20", "20", "22"])
    (flag,) = durations.fading(world.patient)
    assert flag.indication == "glabellar-lines" and flag.product_name == "Botox Cosmetic"
    assert "120, 100, 80 days" in flag.reason
    assert flag.status == "unconfirmed" and "heuristic" in flag.rule


def test_no_fading_flag_when_the_dose_was_lowered(world):
    _history(world, [120, 100, 80], ["20", "20", "14"])
    assert durations.fading(world.patient) == []


def test_no_fading_flag_when_the_durations_hold(world):
    _history(world, [120, 110, 118], ["20", "20", "20"])
    assert durations.fading(world.patient) == []


def test_the_patients_page_sessions_give_the_same_rows_and_flags_as_reading_them_again(world):
    """The patient's page hands the sessions it read (with their live units) to the flags:
    the same rows as the flags' own query, for every kind of session, and the same flags."""
    _history(world, [120, 100, 80], ["20", "20", "22"])
    main = quick_session(world, ago(20), "20", product_id="dysport")
    quick_session(world, ago(10), "6", product_id="dysport", follow_up_of=main)  # a touch-up
    quick_session(world, ago(5), "20", status=Status.DRAFT)
    quick_session(world, ago(4), "20", status=Status.VOIDED)
    quick_session(world, ago(3), "20", status=Status.AMENDED)
    empty = quick_session(world, ago(2), "8", product_id="xeomin", status=Status.DRAFT)
    InjectionPoint.objects.filter(session=empty).update(removed=True)  # no live points: no units
    empty.status = Status.SIGNED
    empty.save()
    quick_session(world, ago(30), "20", patient=world.outsider_patient)

    sessions = [row.session for row in charting.sessions_for(world.patient)]
    given = durations.session_rows_of(world.patient, sessions)
    read = durations._PATIENT_SESSIONS(world.org.pk, world.patient.pk)
    assert sorted(given) == sorted(read)
    assert len(given) == 8 and any(row[-1] is None for row in given)  # the emptied one
    flags = durations.fading(world.patient, sessions=sessions)
    assert flags == durations.fading(world.patient) and len(flags) == 1


def test_with_no_series_long_enough_to_judge_the_flags_read_nothing(
    world, django_assert_num_queries
):
    """Fewer than FADING_MIN_EPISODES treatments in every indication and family: no flag is
    possible, so the page's flags read no returns; from the third treatment on they do."""
    from glabella.clinical.duration import FADING_MIN_EPISODES

    assert FADING_MIN_EPISODES == 3
    for days, lasted in ((400, 150), (260, 100)):
        returned(world, quick_session(world, ago(days), "20"), lasted)
    for days in (300, 200):
        quick_session(world, ago(days), "12", indication="lateral-canthal-lines")
    sessions = [row.session for row in charting.sessions_for(world.patient)]
    with django_assert_num_queries(0):
        assert durations.fading(world.patient, sessions=sessions) == []
    assert durations.fading(world.patient) == []
    returned(world, quick_session(world, ago(150), "20"), 80)  # a third, shorter each time
    sessions = [row.session for row in charting.sessions_for(world.patient)]
    with django_assert_num_queries(1):  # the returns
        (flag,) = durations.fading(world.patient, sessions=sessions)
    assert [flag] == durations.fading(world.patient) and "150, 100, 80 days" in flag.reason
