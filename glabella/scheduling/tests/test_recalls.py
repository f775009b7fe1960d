"""Recalls kept from real signed sessions and outside treatments: due dates, corrections, states."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from glabella.accounts.actor import Actor
from glabella.accounts.services import add_clinic, add_member
from glabella.audit.models import AuditEvent
from glabella.charting import services as charting
from glabella.charting.models import Status
from glabella.clinical import schedule
from glabella.clinical.schedule import DurationOutcome
from glabella.clinical.settings import ClinicalSettings
from glabella.conftest import PASSWORD
from glabella.patients import services as patient_services
from glabella.scheduling import booking, recalls
from glabella.scheduling.models import (
    AppointmentStatus,
    Recall,
    RecallKind,
    RecallState,
    SchedulingSettings,
)
from glabella.scheduling.tests.conftest import next_monday_at
from glabella.scheduling.tests.recall_helpers import consent_from, outside, signed

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def current(world, indication: str, kind: str = RecallKind.RETREATMENT) -> Recall:
    return Recall.objects.get(
        patient=world.patient, indication=indication, kind=kind, is_current=True
    )


def closed(world, indication: str, kind: str = RecallKind.RETREATMENT) -> list[Recall]:
    return list(
        Recall.objects.filter(
            patient=world.patient, indication=indication, kind=kind, is_current=False
        ).order_by("pk")
    )


def core_due(world, indication: str, cosmetic_days: int = 120) -> date | None:
    """What the clinical core itself says from the charting's own treatment history."""
    return schedule.next_due(
        charting.treatment_history(world.patient),
        indication,
        settings=ClinicalSettings(cosmetic_recall_days=cosmetic_days),
        population="adult",
    )


@pytest.fixture
def consents(world):
    consent_from(world, 200)
    return world


# --- migraine ----------------------------------------------------------------------------------


def test_a_signed_preempt_session_is_due_again_after_84_days_and_never_before(consents):
    world = consents
    session = signed(world, "chronic-migraine", "botox", days_ago=10)
    recall = current(world, "chronic-migraine")
    assert recall.kind == RecallKind.RETREATMENT
    assert recall.basis_on == ago(10)
    assert recall.due_on == ago(10) + timedelta(days=84)
    assert recall.earliest_on == ago(10) + timedelta(days=84)
    assert recall.due_on == core_due(world, "chronic-migraine")
    assert recall.product_id == "botox"
    assert recall.source_session_id == session.pk
    assert recall.clinic_id == world.clinic.pk
    assert recall.practitioner_id == world.users["injector"].pk
    assert recall.state == RecallState.OPEN and not recall.personalised
    # No two-week review for a medical indication.
    assert not Recall.objects.filter(kind=RecallKind.REVIEW).exists()


def test_a_new_treatment_closes_the_recall_as_treated_and_opens_the_next(consents):
    world = consents
    signed(world, "chronic-migraine", "botox", days_ago=120)
    first = current(world, "chronic-migraine")
    recalls.set_state(world.actor("front_desk"), first, "contacted", "left a voicemail")
    later = signed(world, "chronic-migraine", "botox", days_ago=30)
    [old] = closed(world, "chronic-migraine")
    assert old.pk == first.pk
    assert old.state == RecallState.TREATED
    assert old.state_reason == f"Treated again on {ago(30):%d/%m/%Y}."
    new = current(world, "chronic-migraine")
    assert new.source_session_id == later.pk
    assert new.due_on == ago(30) + timedelta(days=84) == core_due(world, "chronic-migraine")
    assert new.state == RecallState.OPEN


# --- cosmetic, configurable per clinic ---------------------------------------------------------


def test_cosmetic_recall_uses_the_clinic_setting_and_the_first_treatment_gets_a_review(consents):
    world = consents
    session = signed(world, days_ago=20)
    recall = current(world, "glabellar-lines")
    assert recall.due_on == ago(20) + timedelta(days=120) == core_due(world, "glabellar-lines")
    assert recall.earliest_on == ago(20) + timedelta(days=90)
    review = current(world, "glabellar-lines", RecallKind.REVIEW)
    assert review.due_on == session.review_due_on == ago(20) + timedelta(days=14)
    assert review.source_session_id == session.pk and review.earliest_on is None

    settings = booking.settings_for(world.clinic)
    for days in (90, 105, 123):
        settings.cosmetic_recall_days = days
        settings.save()
        recalls.refresh(world.patient)
        recall = current(world, "glabellar-lines")
        assert recall.due_on == ago(20) + timedelta(days=days)
        assert recall.due_on == core_due(world, "glabellar-lines", days)
    # Only one current row all along; a recompute on the same basis keeps the row.
    assert Recall.objects.filter(indication="glabellar-lines", kind="retreatment").count() == 1


def test_each_clinic_recalls_with_its_own_cosmetic_interval(consents):
    world = consents
    owner = world.actor("owner")
    north = add_clinic(owner, name="Alpha North", timezone="Europe/London")
    add_member(owner, email="injector@alpha.test", clinic=north, role="injector", password=PASSWORD)
    SchedulingSettings.objects.create(organization=world.org, clinic=north, cosmetic_recall_days=95)
    north_actor = Actor(world.org, world.users["injector"], north, "injector")
    bob = patient_services.create_patient(
        north_actor,
        {"given_name": "Bea", "family_name": "North", "date_of_birth": date(1990, 2, 3)},
    )
    consent_from(world, 200, patient=bob)
    session = charting.start_session(
        north_actor,
        bob,
        indication="lateral-canthal-lines",
        product_id="botox_cosmetic",
        treated_on=ago(5),
        prescriber=world.users["prescriber"],
        start_from="protocol:lateral-canthal-lines",
    )
    session = charting.update_details(
        north_actor,
        session,
        session.version,
        {"lot_number": "C1234AB", "lot_expiry": TODAY + timedelta(days=200)},
    )
    charting.sign(north_actor, session, session.version)
    signed(world, days_ago=5)  # Ada at Alpha Central: the default 120 days
    bea = Recall.objects.get(patient=bob, kind="retreatment", is_current=True)
    ada = current(world, "glabellar-lines")
    assert (bea.clinic_id, bea.due_on) == (north.pk, ago(5) + timedelta(days=95))
    assert (ada.clinic_id, ada.due_on) == (world.clinic.pk, ago(5) + timedelta(days=120))


# --- follow-up: the two-week review ------------------------------------------------------------


def test_a_signed_touch_up_closes_the_review(consents):
    world = consents
    first = signed(world, days_ago=16)
    review = current(world, "glabellar-lines", RecallKind.REVIEW)
    assert review.due_on == ago(2)
    touch_up = signed(world, days_ago=1, follow_up_of=first)
    assert touch_up.review_due_on is None
    [done] = closed(world, "glabellar-lines", RecallKind.REVIEW)
    assert done.pk == review.pk
    assert done.state == RecallState.TREATED
    assert done.state_reason == f"Touch-up signed for {ago(1):%d/%m/%Y}."
    assert not Recall.objects.filter(kind=RecallKind.REVIEW, is_current=True).exists()
    # The touch-up is the last treatment: the re-treatment recall counts from it.
    assert current(world, "glabellar-lines").due_on == ago(1) + timedelta(days=120)


def test_voiding_the_touch_up_brings_the_review_back_and_voiding_the_session_closes_it(consents):
    world = consents
    first = signed(world, days_ago=16)
    touch_up = signed(world, days_ago=1, follow_up_of=first)
    charting.void(world.actor("injector"), touch_up, "charted on the wrong patient")
    review = current(world, "glabellar-lines", RecallKind.REVIEW)
    assert review.due_on == ago(2) and review.source_session_id == first.pk
    charting.void(world.actor("injector"), first, "charted on the wrong patient")
    assert not Recall.objects.filter(is_current=True).exists()
    last_review = closed(world, "glabellar-lines", RecallKind.REVIEW)[-1]
    assert last_review.state == RecallState.NOT_DUE
    assert f"the session of {ago(16):%d/%m/%Y} was voided" in last_review.state_reason


def test_a_review_left_undone_closes_when_the_patient_is_treated_again(consents):
    world = consents
    signed(world, days_ago=130)
    signed(world, days_ago=2)
    [review] = closed(world, "glabellar-lines", RecallKind.REVIEW)
    assert review.state == RecallState.TREATED
    assert review.state_reason == f"Treated again on {ago(2):%d/%m/%Y}."


# --- outside treatments ------------------------------------------------------------------------


def test_an_outside_treatment_makes_a_recall_and_entered_in_error_closes_it(consents):
    world = consents
    item = outside(world, "chronic-migraine", "botox", 14, units="155")
    recall = current(world, "chronic-migraine")
    assert recall.source_session_id is None and recall.practitioner_id is None
    assert recall.basis_on == ago(14)
    assert recall.due_on == ago(14) + timedelta(days=84) == core_due(world, "chronic-migraine")
    assert recall.clinic_id == world.patient.home_clinic_id
    patient_services.close_history_item(
        world.actor("injector"), item, reason="it was Dysport, not Botox", entered_in_error=True
    )
    assert not Recall.objects.filter(is_current=True).exists()
    [gone] = closed(world, "chronic-migraine")
    assert gone.state == RecallState.NOT_DUE
    assert gone.state_reason == (
        "No treatment left to recall from: the outside treatment of "
        f"{ago(14):%d/%m/%Y} is no longer on record."
    )


def test_the_latest_of_sessions_here_and_outside_treatments_counts(consents):
    world = consents
    session = signed(world, days_ago=60)
    outside(world, "glabellar-lines", "dysport", 20, units="50")
    recall = current(world, "glabellar-lines")
    assert (recall.basis_on, recall.product_id, recall.source_session_id) == (
        ago(20),
        "dysport",
        None,
    )
    # The cosmetic days of the clinic of the patient's latest session here.
    assert recall.clinic_id == session.clinic_id
    assert recall.due_on == ago(20) + timedelta(days=120) == core_due(world, "glabellar-lines")
    [treated] = closed(world, "glabellar-lines")
    assert treated.state == RecallState.TREATED
    # An older outside treatment changes nothing.
    before = current(world, "glabellar-lines")
    outside(world, "glabellar-lines", "botox_cosmetic", 100)
    after = current(world, "glabellar-lines")
    assert (after.pk, after.due_on) == (before.pk, before.due_on)


def test_other_history_and_the_catch_all_indication_make_no_recall(consents):
    world = consents
    patient_services.add_history_item(
        world.actor("injector"), world.patient, {"kind": "allergy", "code": "albumin"}
    )
    outside(world, "other", "botox", 10)
    assert not Recall.objects.exists()


def test_an_off_label_product_without_an_interval_gets_no_recall(consents):
    world = consents
    outside(world, "chronic-migraine", "dysport", 10, units="300")
    assert schedule.next_due(charting.treatment_history(world.patient), "chronic-migraine") is None
    assert not Recall.objects.filter(is_current=True).exists()


# --- amendments and voids ----------------------------------------------------------------------


def test_an_amended_session_still_counts_and_its_recall_keeps_its_state(consents):
    world = consents
    session = signed(world, "chronic-migraine", "botox", days_ago=40)
    recall = current(world, "chronic-migraine")
    recalls.set_state(world.actor("front_desk"), recall, "contacted", "will call back")
    amended = charting.amend(
        world.actor("injector"), session, "typo in point 1", point_units={1: Decimal("4")}
    )
    session.refresh_from_db()
    assert session.status == Status.AMENDED and amended.number == 1
    again = current(world, "chronic-migraine")
    assert again.pk == recall.pk
    assert again.state == RecallState.CONTACTED and again.state_reason == "will call back"
    assert again.due_on == ago(40) + timedelta(days=84)


def test_voiding_the_last_session_recomputes_from_the_one_before(consents):
    world = consents
    older = signed(world, days_ago=150)
    newer = signed(world, days_ago=10)
    recall = current(world, "glabellar-lines")
    recalls.set_state(world.actor("front_desk"), recall, "declined", "happy for now")
    charting.void(world.actor("injector"), newer, "entered on the wrong day")
    again = current(world, "glabellar-lines")
    assert again.pk == recall.pk  # recomputed in place, not a new row
    assert (again.basis_on, again.source_session_id) == (ago(150), older.pk)
    assert again.due_on == ago(150) + timedelta(days=120) == core_due(world, "glabellar-lines")
    # The basis changed: back to "to contact", saying why.
    assert again.state == RecallState.OPEN
    assert again.state_reason == (
        f"Due date recomputed (the session of {ago(10):%d/%m/%Y} was voided): now from the "
        f"treatment of {ago(150):%d/%m/%Y}."
    )
    charting.void(world.actor("injector"), older, "entered on the wrong patient")
    assert not Recall.objects.filter(indication="glabellar-lines", is_current=True).exists()


def test_a_booked_recall_stays_booked_through_a_recompute_while_its_appointment_stands(consents):
    world = consents
    signed(world, days_ago=150)
    newer = signed(world, days_ago=10)
    recall = current(world, "glabellar-lines")
    appointment = booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=next_monday_at(10),
        kind="treatment",
        recall=recall,
    )
    assert current(world, "glabellar-lines").state == RecallState.BOOKED
    charting.void(world.actor("injector"), newer, "entered on the wrong day")
    again = current(world, "glabellar-lines")
    assert again.state == RecallState.BOOKED and again.basis_on == ago(150)
    booking.set_status(
        world.actor("front_desk"), appointment, AppointmentStatus.CANCELLED, reason="ill"
    )
    assert current(world, "glabellar-lines").state == RecallState.OPEN


def test_a_booked_recall_survives_a_refresh_on_the_same_basis(consents):
    world = consents
    signed(world, "chronic-migraine", "botox", days_ago=70)
    recall = current(world, "chronic-migraine")
    booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=next_monday_at(11, weeks=3),
        kind="migraine_cycle",
        recall=recall,
    )
    changes = recalls.refresh(world.patient)
    assert len(changes) == 0
    assert current(world, "chronic-migraine").state == RecallState.BOOKED


# --- personalised ------------------------------------------------------------------------------


def test_a_patients_own_duration_moves_the_due_date_but_never_before_the_minimum(consents):
    world = consents
    signed(world, days_ago=10)
    signed(world, "chronic-migraine", "botox", days_ago=10)
    asked: list[tuple[int, str, str]] = []

    def durations(patient, indication, product_id):
        asked.append((patient.pk, indication, product_id))
        # Recorded durations of effect: long for frown lines, very short for migraine.
        return DurationOutcome({"glabellar-lines": 150, "chronic-migraine": 30}[indication])

    recalls.refresh(world.patient, durations=durations)
    assert (world.patient.pk, "glabellar-lines", "botox_cosmetic") in asked
    assert (world.patient.pk, "chronic-migraine", "botox") in asked
    frown = current(world, "glabellar-lines")
    assert frown.personalised and frown.due_on == ago(10) + timedelta(days=150)
    migraine = current(world, "chronic-migraine")
    assert migraine.personalised
    assert migraine.due_on == ago(10) + timedelta(days=84) == migraine.earliest_on

    def none_recorded(patient, indication, product_id):
        return None

    recalls.refresh(world.patient, durations=none_recorded)
    frown = current(world, "glabellar-lines")
    assert not frown.personalised and frown.due_on == ago(10) + timedelta(days=120)

    # The whole-organization rebuild takes the same provider.
    recalls.rebuild_all(world.org, durations=durations)
    assert current(world, "glabellar-lines").due_on == ago(10) + timedelta(days=150)


# --- front-desk actions ------------------------------------------------------------------------


def test_state_actions_are_checked_and_audited(consents):
    world = consents
    signed(world, days_ago=100)
    recall = current(world, "glabellar-lines")
    desk = world.actor("front_desk")
    recalls.set_state(desk, recall, "contacted")
    event = AuditEvent.objects.filter(object_type="scheduling.recall").latest("seq")
    assert event.detail == {
        "patient": world.patient.pk,
        "from": "open",
        "to": "contacted",
        "reason": "",
    }
    assert event.actor_id == world.users["front_desk"].pk
    with pytest.raises(ValidationError) as err:
        recalls.set_state(desk, recall, "declined", " ")
    assert "reason" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        recalls.set_state(desk, recall, "not_due", "")
    assert err.value.message_dict["reason"] == [recalls.REASON_PROMPTS["not_due"]]
    row = recalls.set_state(desk, recall, "not_due", "pregnant")
    assert (row.state, row.state_reason, row.state_by_id) == (
        RecallState.NOT_DUE,
        "pregnant",
        world.users["front_desk"].pk,
    )
    with pytest.raises(ValidationError) as err:
        recalls.set_state(desk, recall, "contacted")
    assert err.value.message_dict["action"] == [
        "A recall that is not due cannot be marked contacted."
    ]
    row = recalls.set_state(desk, recall, "reopen")
    assert row.state == RecallState.OPEN
    with pytest.raises(ValidationError):
        recalls.set_state(desk, recall, "reopen")
    with pytest.raises(ValidationError):
        recalls.set_state(desk, recall, "explode")
    with pytest.raises(PermissionDenied):
        recalls.set_state(world.actor("auditor"), recall, "contacted")
    with pytest.raises(PermissionError):
        recalls.set_state(world.outsider_actor(), recall, "contacted")
    assert AuditEvent.objects.filter(object_type="scheduling.recall").count() == 3


def test_a_closed_recall_cannot_be_acted_on_and_a_booked_one_reopens_only_after_cancelling(
    consents,
):
    world = consents
    signed(world, days_ago=100)
    old = current(world, "glabellar-lines")
    signed(world, days_ago=1)
    with pytest.raises(ValidationError) as err:
        recalls.set_state(world.actor("front_desk"), old, "contacted")
    assert "closed" in err.value.message_dict["action"][0]
    recall = current(world, "glabellar-lines")
    appointment = booking.book(
        world.actor("front_desk"),
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        starts_at=next_monday_at(9, weeks=2),
        kind="treatment",
        recall=recall,
    )
    with pytest.raises(ValidationError) as err:
        recalls.set_state(world.actor("front_desk"), recall, "reopen")
    assert "Cancel the appointment" in err.value.message_dict["action"][0]
    booking.set_status(world.actor("front_desk"), appointment, AppointmentStatus.NO_SHOW)
    assert current(world, "glabellar-lines").state == RecallState.OPEN


# --- whole-organization rebuild ----------------------------------------------------------------


def _snapshot(org) -> list[tuple]:
    return sorted(
        Recall.objects.filter(organization=org, is_current=True).values_list(
            "patient_id",
            "indication",
            "kind",
            "product_id",
            "source_session_id",
            "basis_on",
            "due_on",
            "earliest_on",
            "clinic_id",
            "practitioner_id",
            "personalised",
        )
    )


def test_rebuild_all_gives_the_same_rows_as_the_hooks_in_chunks_and_changes_nothing_twice(
    consents,
):
    world = consents
    signed(world, "chronic-migraine", "botox", days_ago=50)
    signed(world, days_ago=16)
    outside(world, "lateral-canthal-lines", "botox_cosmetic", 30)
    second = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Cy", "family_name": "Second", "date_of_birth": date(1979, 5, 6)},
    )
    consent_from(world, 200, patient=second)
    signed(world, "chronic-migraine", "botox", days_ago=3, patient=second)
    signed(world, "glabellar-lines", "dysport", days_ago=95, patient=second)
    outside(
        world,
        "chronic-migraine",
        "botox",
        7,
        units="155",
        patient=world.outsider_patient,
        actor=world.outsider_actor(),
    )
    theirs = Recall.objects.get(patient=world.outsider_patient)

    by_hooks = _snapshot(world.org)
    assert len(by_hooks) == 7  # Ada: 3 re-treatments and a review; Cy: 2 and a review
    assert recalls.rebuild_all(world.org) == 0  # already up to date
    Recall.objects.filter(organization=world.org).delete()
    seen: list[tuple[int, int]] = []
    changed = recalls.rebuild_all(world.org, progress=lambda d, t: seen.append((d, t)), chunk=1)
    assert changed == 7
    assert _snapshot(world.org) == by_hooks
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    # Scoped: the other organization's recall is untouched.
    assert list(Recall.objects.filter(patient=world.outsider_patient)) == [theirs]
    assert Recall.objects.get(pk=theirs.pk).updated_at == theirs.updated_at


def test_the_rebuild_command_rebuilds_every_organization(consents):
    world = consents
    signed(world, "chronic-migraine", "botox", days_ago=5)
    Recall.objects.all().delete()
    out = io.StringIO()
    call_command("recalls_rebuild", stdout=out)
    text = out.getvalue()
    assert "Alpha Aesthetics: 1 recall changed" in text
    assert "Beta Botox Bar: 0 recalls changed" in text
    assert text.index("Alpha Aesthetics") < text.index("Beta Botox Bar")
    assert current(world, "chronic-migraine").due_on == ago(5) + timedelta(days=84)
    out = io.StringIO()
    call_command("recalls_rebuild", "--organization", str(world.org.pk), stdout=out)
    assert out.getvalue().strip() == "Alpha Aesthetics: 0 recalls changed"


# --- the reminder reasons shown on the worklist ------------------------------------------------


def test_why_reminders_cannot_go_to_a_patient(world):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    p = world.patient
    p.reminder_consent = False
    assert recalls.why_no_reminder(p) == "No reminder consent"
    p.reminder_consent = True
    p.preferred_channel = "email"
    assert recalls.why_no_reminder(p) == ""
    p.preferred_channel = "phone"
    assert recalls.why_no_reminder(p) == "Prefers a phone call"
    p.preferred_channel = "none"
    assert recalls.why_no_reminder(p) == "Asked for no reminders"
    p.preferred_channel = "email"
    p.email = ""
    assert recalls.why_no_reminder(p) == "No e-mail address"
    p.preferred_channel = "sms"
    assert recalls.why_no_reminder(p) == ""
    p.phone = ""
    assert recalls.why_no_reminder(p) == "No e-mail or phone"
    p.reminder_opt_out_at = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    assert recalls.why_no_reminder(p, ZoneInfo("Europe/London")) == "Opted out on 04/03/2026"
    assert recalls.why_no_reminder(p, ZoneInfo("Asia/Tokyo")) == "Opted out on 05/03/2026"


def test_changing_the_clinics_cosmetic_interval_moves_open_recalls_at_once(consents):
    """The owner's new interval applies to patients already on the list, not only to new ones."""
    from datetime import time

    world = consents
    signed(world, days_ago=20)
    migraine = signed(world, "chronic-migraine", "botox", days_ago=30)
    assert migraine.pk
    migraine_due = current(world, "chronic-migraine").due_on
    assert current(world, "glabellar-lines").due_on == ago(20) + timedelta(days=120)
    changed = booking.update_settings(
        world.actor("owner"),
        world.clinic,
        {
            "cosmetic_recall_days": "100",
            "recall_invite_days": "7",
            "reminder_hours": "48, 2",
            "quiet_start": time(20, 0),
            "quiet_end": time(8, 0),
            "send_confirmations": True,
        },
    )
    assert changed == ["cosmetic_recall_days"]
    assert current(world, "glabellar-lines").due_on == ago(20) + timedelta(days=100)
    assert current(world, "chronic-migraine").due_on == migraine_due  # not cosmetic: unchanged
