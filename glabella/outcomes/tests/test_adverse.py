"""Side effects (adverse events): recorded against a signed session and its lots, followed up,
flagged for reporting when serious, and summarised with what a regulator's form asks."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from glabella.audit.models import AuditEvent
from glabella.charting import services as charting
from glabella.charting.tests.conftest import ready_to_sign
from glabella.consent import services as consent_services
from glabella.consent.tests.helpers import PDF, upload
from glabella.inventory import services as stock
from glabella.inventory.tests.helpers import receive_botox_cosmetic
from glabella.outcomes import adverse
from glabella.outcomes.models import AdverseEvent
from glabella.patients import services as patient_services

GLABELLAR = {
    "botox_cosmetic": "glabellar-lines-botox-cosmetic",
    "dysport": "glabellar-lines-dysport",
}


def today() -> date:
    return timezone.localdate()


def consent(world, patient=None):
    """A paper cosmetic consent, signed well before any test treatment."""
    consent_services.ensure_default_templates(world.org)
    consent_services.take_consent(
        world.actor("injector"),
        patient or world.patient,
        "cosmetic",
        method="paper",
        scan=upload("consent.pdf", PDF),
        signed_on=today() - timedelta(days=200),
        read_confirmed=True,
    )


def signed(world, *, days_ago=10, product="botox_cosmetic", patient=None, lot="C1234AB"):
    """A signed glabellar session DAYS_AGO with the lot typed on it (no stock kept)."""
    session = charting.start_session(
        world.actor("injector"),
        patient or world.patient,
        indication="glabellar-lines",
        product_id=product,
        treated_on=today() - timedelta(days=days_ago),
        prescriber=world.users["prescriber"],
        start_from=f"protocol:{GLABELLAR[product]}",
    )
    session = ready_to_sign(world, session, lot_number=lot)
    return charting.sign(world.actor("injector"), session, session.version)


@pytest.fixture
def treated(world):
    """Ada, consented, with a signed Botox Cosmetic glabellar session (5 x 4 U) 10 days ago."""
    consent(world)
    world.session = signed(world)
    return world


def ptosis(world, session=None, **overrides):
    data = {
        "kind": "eyelid_ptosis",
        "onset_on": today() - timedelta(days=3),
        "severity": "moderate",
        "serious": False,
        **overrides,
    }
    return adverse.record(world.actor("injector"), session or world.session, **data)


def refused(world, field, **overrides):
    before = AdverseEvent.objects.count()
    with pytest.raises(adverse.AdverseRefused) as exc:
        ptosis(world, **overrides)
    assert AdverseEvent.objects.count() == before
    assert field in exc.value.errors, exc.value.errors
    return exc.value.errors[field]


def audits(event, action=None):
    qs = AuditEvent.objects.filter(object_type="outcomes.adverseevent", object_id=str(event.pk))
    if action:
        qs = qs.filter(action=action)
    return list(qs.order_by("seq"))


# --- recording -------------------------------------------------------------------------------


def test_a_side_effect_is_recorded_against_the_session_with_its_typed_lot_and_audited(treated):
    world = treated
    event = ptosis(world, description="Left eyelid lower than the right", action_taken="Eye drops")
    event.refresh_from_db()
    assert event.organization == world.org and event.patient == world.patient
    assert event.session == world.session and event.recorded_by == world.users["injector"]
    assert event.lots == [
        {
            "product_id": "botox_cosmetic",
            "lot_number": "C1234AB",
            "expiry": world.session.lot_expiry.isoformat(),
            "source": "typed",
        }
    ]
    (created,) = audits(event, "create")
    assert created.detail["kind"] == "eyelid_ptosis"
    assert created.detail["onset_on"] == event.onset_on.isoformat()
    assert created.detail["lots"][0]["lot_number"] == "C1234AB"
    assert created.detail["action_taken"] == "Eye drops"


def test_the_lots_of_a_stock_tracked_session_are_the_lots_its_vials_came_from(world):
    consent(world)
    injector = world.actor("injector")
    first = receive_botox_cosmetic(world, lot="STK001", count=1)
    second = receive_botox_cosmetic(world, lot="STK002", count=1)
    vial1 = stock.reconstitute(injector, first.vials[0], "1.25")
    vial2 = stock.reconstitute(injector, second.vials[0], "1.25")
    session = charting.start_session(
        injector,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from=f"protocol:{GLABELLAR['botox_cosmetic']}",
    )
    assert charting.tracks_stock(session)
    charting.select_vial(injector, session, session.version, vial1)
    session.refresh_from_db()
    # Point 5 came from the second lot's vial.
    charting.update_point(injector, session, session.version, 5, vial=vial2)
    session.refresh_from_db()
    session = charting.sign(injector, session, session.version)
    event = adverse.record(
        injector,
        session,
        kind="bruising",
        onset_on=session.treated_on,
        severity="mild",
        serious=False,
    )
    assert [(lot["lot_number"], lot["source"]) for lot in event.lots] == [
        ("STK001", "stock"),
        ("STK002", "stock"),
    ]
    assert event.lots[0]["vials"] == [vial1.pk] and event.lots[1]["vials"] == [vial2.pk]
    assert all(lot["product_id"] == "botox_cosmetic" for lot in event.lots)
    # The session's lot fields show only the vial in use; the snapshot has both lots.
    assert session.lot_number == "STK001"


def test_a_draft_session_is_refused_in_words(world):
    consent(world)
    draft = charting.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from=f"protocol:{GLABELLAR['botox_cosmetic']}",
    )
    with pytest.raises(adverse.AdverseRefused, match="not been signed yet") as exc:
        ptosis(world, draft, onset_on=today())
    assert exc.value.field == "session"
    assert not AdverseEvent.objects.exists()


def test_a_voided_session_is_refused_in_words(treated):
    world = treated
    voided = charting.void(world.actor("injector"), world.session, "Wrong patient")
    with pytest.raises(adverse.AdverseRefused, match="voided"):
        ptosis(world, voided)
    assert not AdverseEvent.objects.exists()


def test_an_onset_before_the_treatment_is_refused(treated):
    message = refused(treated, "onset_on", onset_on=treated.session.treated_on - timedelta(days=1))
    assert "before the treatment" in message
    assert f"{treated.session.treated_on:%d/%m/%Y}" in message


def test_an_onset_in_the_future_is_refused(treated):
    # Tomorrow at the clinic (London), which from 23:00 UTC in summer is two UTC days ahead.
    tomorrow = adverse.clinic_today(treated.session) + timedelta(days=1)
    message = refused(treated, "onset_on", onset_on=tomorrow)
    assert "in the future" in message


def test_an_onset_on_the_day_of_the_treatment_is_accepted(treated):
    event = ptosis(treated, onset_on=treated.session.treated_on)
    assert event.onset_on == treated.session.treated_on


def test_a_missing_or_unreadable_onset_is_refused(treated):
    assert "Enter the date it started" in refused(treated, "onset_on", onset_on=None)
    assert "DD/MM/YYYY" in refused(treated, "onset_on", onset_on="yesterday")


def test_other_needs_what_happened(treated):
    assert "say what happened" in refused(treated, "other_text", kind="other", other_text=" ")
    event = ptosis(treated, kind="other", other_text="Tingling of the forehead")
    assert event.other_text == "Tingling of the forehead"


def test_other_text_is_not_kept_for_a_listed_kind(treated):
    assert ptosis(treated, other_text="ignored").other_text == ""


def test_an_unknown_kind_severity_or_outcome_is_refused(treated):
    assert "Choose what happened" in refused(treated, "kind", kind="sneezing")
    assert "how severe" in refused(treated, "severity", severity="awful")
    assert "outcome" in refused(treated, "outcome", outcome="cured")


def test_a_serious_event_needs_at_least_one_criterion(treated):
    message = refused(treated, "serious_criteria", serious=True, serious_criteria=[])
    assert "at least one reason" in message


def test_a_criterion_means_the_event_is_serious(treated):
    message = refused(treated, "serious", serious=False, serious_criteria=["hospitalisation"])
    assert "tick “serious”" in message


def test_an_unknown_criterion_is_refused(treated):
    refused(treated, "serious_criteria", serious=True, serious_criteria=["bad_luck"])


def test_a_fatal_outcome_needs_resulted_in_death(treated):
    message = refused(
        treated,
        "serious_criteria",
        serious=True,
        serious_criteria=["hospitalisation"],
        outcome="fatal",
    )
    assert "resulted in death" in message


def test_an_outcome_date_before_the_onset_is_refused(treated):
    onset = today() - timedelta(days=3)
    message = refused(
        treated, "outcome_on", onset_on=onset, outcome="recovered", outcome_on=onset - timedelta(1)
    )
    assert "before the side effect started" in message


def test_every_broken_rule_is_reported_at_once(treated):
    with pytest.raises(adverse.AdverseRefused) as exc:
        ptosis(treated, kind="other", onset_on=today() + timedelta(days=2), severity="")
    assert set(exc.value.errors) == {"other_text", "onset_on", "severity"}


def test_a_serious_event_is_recorded_with_its_criteria_in_order(treated):
    event = ptosis(
        treated,
        kind="dysphagia",
        serious=True,
        serious_criteria=["medically_important", "hospitalisation", "hospitalisation"],
    )
    assert event.serious and event.serious_criteria == ["hospitalisation", "medically_important"]


def test_a_double_submit_lands_on_the_existing_event(treated):
    first = ptosis(treated)
    again = ptosis(treated)
    assert again.pk == first.pk
    assert AdverseEvent.objects.count() == 1 and len(audits(first, "create")) == 1
    # A different kind on the same day is a second event.
    assert ptosis(treated, kind="bruising").pk != first.pk


def test_a_resubmission_after_a_while_is_a_new_event(treated):
    first = ptosis(treated)
    AdverseEvent.objects.filter(pk=first.pk).update(
        recorded_at=timezone.now() - timedelta(seconds=adverse.DOUBLE_SUBMIT_SECONDS + 5)
    )
    assert ptosis(treated).pk != first.pk


@pytest.mark.parametrize("role", ["front_desk", "auditor"])
def test_only_clinical_roles_record_side_effects(treated, role):
    with pytest.raises(PermissionDenied):
        adverse.record(
            treated.actor(role),
            treated.session,
            kind="bruising",
            onset_on=today(),
            severity="mild",
            serious=False,
        )
    assert not AdverseEvent.objects.exists()


def test_another_organization_cannot_record_or_change_an_event(treated):
    outsider = treated.outsider_actor()
    with pytest.raises(PermissionError):
        adverse.record(
            outsider,
            treated.session,
            kind="bruising",
            onset_on=today(),
            severity="mild",
            serious=False,
        )
    event = ptosis(treated)
    with pytest.raises(PermissionError):
        adverse.update(outsider, event, event.version, outcome="recovered")
    with pytest.raises(PermissionError):
        adverse.mark_reported(outsider, event, reported_on=today(), reference="X")
    with pytest.raises(PermissionError):
        adverse.mark_in_error(outsider, event, "no")
    event.refresh_from_db()
    assert event.version == 1 and AdverseEvent.objects.count() == 1


# --- follow-up -------------------------------------------------------------------------------


def test_a_follow_up_changes_the_outcome_with_before_and_after_in_the_audit(treated):
    event = ptosis(treated)
    updated = adverse.update(
        treated.actor("prescriber"),
        event,
        event.version,
        outcome="recovered",
        outcome_on=today(),
        action_taken="Apraclonidine drops",
        severity="moderate",
    )
    assert updated.version == 2 and updated.outcome == "recovered"
    (change,) = audits(event, "update")
    assert change.detail["fields"] == ["outcome", "outcome_on", "action_taken"]
    assert change.detail["before"] == {"outcome": "unknown", "outcome_on": None, "action_taken": ""}
    assert change.detail["after"]["outcome_on"] == today().isoformat()


def test_a_follow_up_can_make_an_event_serious_and_it_joins_the_list_to_report(treated):
    event = ptosis(treated)
    assert adverse.to_report(treated.org) == []
    adverse.update(
        treated.actor(),
        event,
        event.version,
        serious=True,
        serious_criteria=["disability"],
        severity="severe",
    )
    assert adverse.to_report(treated.org) == [event]


def test_a_follow_up_keeps_the_rules(treated):
    event = ptosis(treated)
    with pytest.raises(adverse.AdverseRefused) as exc:
        adverse.update(treated.actor(), event, event.version, serious=True)
    assert "serious_criteria" in exc.value.errors
    with pytest.raises(adverse.AdverseRefused) as exc:
        adverse.update(
            treated.actor(), event, event.version, outcome_on=event.onset_on - timedelta(1)
        )
    assert "outcome_on" in exc.value.errors
    event.refresh_from_db()
    assert event.version == 1 and not event.serious and len(audits(event, "update")) == 0


def test_a_stale_follow_up_is_refused_as_changed_by_someone_else(treated):
    event = ptosis(treated)
    adverse.update(treated.actor("prescriber"), event, 1, outcome="recovering")
    with pytest.raises(adverse.StaleEvent, match="Someone else changed"):
        adverse.update(treated.actor("injector"), event, 1, outcome="recovered")
    event.refresh_from_db()
    assert event.outcome == "recovering" and event.version == 2


def test_a_follow_up_with_nothing_changed_writes_nothing(treated):
    event = ptosis(treated)
    same = adverse.update(treated.actor(), event, 1, severity="moderate")
    assert same.version == 1 and audits(event, "update") == []


def test_a_follow_up_cannot_change_the_kind_or_onset(treated):
    event = ptosis(treated)
    with pytest.raises(TypeError):
        adverse.update(treated.actor(), event, 1, kind="bruising")


# --- entered in error ------------------------------------------------------------------------


def test_an_event_entered_in_error_stays_struck_with_its_reason_and_cannot_be_changed(treated):
    event = ptosis(treated, serious=True, serious_criteria=["hospitalisation"])
    with pytest.raises(adverse.AdverseRefused, match="Say why"):
        adverse.mark_in_error(treated.actor(), event, "  ")
    wrong = adverse.mark_in_error(treated.actor(), event, "Wrong patient")
    assert wrong.entered_in_error and wrong.error_reason == "Wrong patient"
    assert AdverseEvent.objects.filter(pk=event.pk).exists()
    assert adverse.to_report(treated.org) == []
    with pytest.raises(adverse.AdverseRefused, match="entered in error"):
        adverse.update(treated.actor(), wrong, wrong.version, outcome="recovered")
    with pytest.raises(adverse.AdverseRefused, match="entered in error"):
        adverse.mark_reported(treated.actor(), wrong, reported_on=today(), reference="Y")
    (change,) = audits(event, "update")
    assert change.detail == {
        "patient": treated.patient.pk,
        "change": "entered_in_error",
        "reason": "Wrong patient",
        "version": 2,
    }


# --- reporting -------------------------------------------------------------------------------


def test_the_list_to_report_holds_serious_events_not_in_error_not_yet_reported(treated):
    world = treated
    mild = ptosis(world, kind="bruising")
    serious = ptosis(world, kind="dysphagia", serious=True, serious_criteria=["hospitalisation"])
    reported = ptosis(world, kind="breathing", serious=True, serious_criteria=["life_threatening"])
    wrong = ptosis(world, kind="diplopia", serious=True, serious_criteria=["disability"])
    adverse.mark_reported(world.actor(), reported, reported_on=today(), reference="YC-1")
    adverse.mark_in_error(world.actor(), wrong, "Duplicate")
    assert adverse.to_report(world.org) == [serious]
    assert adverse.to_report(world.outsider_org) == []
    assert mild not in adverse.to_report(world.org)


def test_marking_reported_needs_a_date_and_a_reference(treated):
    event = ptosis(treated, serious=True, serious_criteria=["hospitalisation"])
    with pytest.raises(adverse.AdverseRefused) as exc:
        adverse.mark_reported(treated.actor(), event, reported_on=None, reference="")
    assert set(exc.value.errors) == {"reported_on", "reference"}
    with pytest.raises(adverse.AdverseRefused, match="in the future"):
        adverse.mark_reported(
            treated.actor(),
            event,
            reported_on=adverse.clinic_today(event.session) + timedelta(1),
            reference="YC-9",
        )
    with pytest.raises(adverse.AdverseRefused, match="before the side effect started"):
        adverse.mark_reported(
            treated.actor(), event, reported_on=event.onset_on - timedelta(1), reference="YC-9"
        )
    event.refresh_from_db()
    assert event.reported_on is None and event.version == 1
    done = adverse.mark_reported(treated.actor(), event, reported_on=today(), reference="YC-9")
    assert done.reported_on == today() and done.report_reference == "YC-9" and done.version == 2
    (change,) = audits(event, "update")
    assert change.detail["after"] == {
        "reported_on": today().isoformat(),
        "report_reference": "YC-9",
    }


# --- the summary for the regulator -----------------------------------------------------------


def _birthday_between(world):
    """A patient whose birthday falls between the treatment (10 days ago) and the onset."""
    day = today() - timedelta(days=3)
    try:
        born = day.replace(year=day.year - 40)
    except ValueError:  # 29 February
        born = day.replace(year=day.year - 40, day=28)
    return patient_services.create_patient(
        world.actor("injector"),
        {
            "given_name": "Mary Jane",
            "family_name": "Watson",
            "date_of_birth": born,
            "sex": "female",
            "weight_kg": "61.5",
        },
    )


def test_the_summary_has_what_the_regulator_form_asks(world):
    patient = _birthday_between(world)
    consent(world, patient)
    earlier_dysport = signed(world, days_ago=60, product="dysport", patient=patient, lot="D77")
    too_old = signed(world, days_ago=130, patient=patient, lot="OLD1")
    voided = signed(world, days_ago=5, patient=patient, lot="V1")
    charting.void(world.actor("injector"), voided, "Charted on the wrong patient")
    suspect = signed(world, days_ago=10, patient=patient, lot="C1234AB")
    prescriber = world.actor("prescriber")
    for item in (
        {"kind": "outside_treatment", "code": "toxin", "product_id": "xeomin", "units": "24",
         "treated_on": today() - timedelta(days=40), "area": "Crow's feet",
         "indication": "lateral-canthal-lines"},
        {"kind": "outside_treatment", "code": "toxin", "product_id": "botox_cosmetic",
         "units": "20", "treated_on": today() - timedelta(days=200), "area": "Glabella"},
        {"kind": "allergy", "code": "albumin"},
        {"kind": "condition", "code": "other", "detail": "Hypothyroidism"},
        {"kind": "medication", "code": "anticoagulant", "detail": "Apixaban 5 mg"},
    ):  # fmt: skip
        patient_services.add_history_item(prescriber, patient, item)
    event = adverse.record(
        world.actor("injector"),
        suspect,
        kind="dysphagia",
        onset_on=today() - timedelta(days=1),
        severity="severe",
        serious=True,
        serious_criteria=["hospitalisation"],
        outcome="recovering",
        description="Could not swallow solids",
        action_taken="Admitted for observation",
    )
    s = adverse.report_summary(event)
    # Reporter
    assert s.reporter.organization == "Alpha Aesthetics" and s.reporter.clinic == "Alpha Central"
    assert s.reporter.practitioner_email == "injector@alpha.test"
    assert s.reporter.prescriber == str(world.users["prescriber"])
    # Patient: initials, age at onset (the birthday came after the treatment), sex, weight
    assert s.patient.initials == "MJW"
    assert s.patient.age_at_onset == 40
    assert patient.age_on(suspect.treated_on) == 39
    assert s.patient.sex == "Female" and s.patient.weight_kg == Decimal("61.5")
    # Suspect product, in its own units
    assert (s.product.brand, s.product.generic) == ("Botox Cosmetic", "onabotulinumtoxinA")
    assert [lot.lot_number for lot in s.product.lots] == ["C1234AB"]
    assert (
        s.product.total_units == Decimal(20)
        and s.product.total_text == "20 units of Botox Cosmetic"
    )
    assert s.product.route == "Intramuscular"
    assert s.product.given_on == suspect.treated_on
    assert s.product.indication == "Glabellar lines (frown lines)"
    assert sum(units for _, units in s.product.areas) == Decimal(20)
    # Reaction
    assert s.reaction.kind == "Dysphagia (difficulty swallowing)"
    assert (
        s.reaction.days_to_onset == 9 and s.reaction.time_to_onset == "9 days after the injection"
    )
    assert s.reaction.criteria == ["Required or prolonged hospitalisation"]
    assert s.reaction.outcome == "Recovering / resolving"
    assert s.reaction.action_taken == "Admitted for observation"
    # History and concomitant medicines
    assert "Allergy to human albumin" in s.history
    assert any("Hypothyroidism" in h for h in s.history)
    assert s.medicines == ["Anticoagulant or antiplatelet: Apixaban 5 mg"]
    # Other toxin in the previous 3 months: the Dysport here, the Xeomin elsewhere; each in its
    # own product's units, never converted; not the suspect, not the voided, not the old ones.
    assert [(t.on, t.brand, t.units, t.where) for t in s.prior] == [
        (today() - timedelta(days=40), "Xeomin", Decimal(24), "elsewhere"),
        (earlier_dysport.treated_on, "Dysport", Decimal(50), "here"),
    ]
    assert s.prior[1].units_text == "50 units of Dysport"
    assert too_old.treated_on not in [t.on for t in s.prior]


def test_the_summary_of_a_same_day_event(treated):
    event = ptosis(treated, onset_on=treated.session.treated_on)
    s = adverse.report_summary(event)
    assert s.reaction.time_to_onset == "the same day as the injection"
    assert s.patient.initials == "AL" and s.prior == [] and not s.serious
