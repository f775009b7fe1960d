"""Assessments through the service: worked examples of HIT-6 and MIDAS (item sums, bands,
grades), missing answers refused with the question named, wrinkle grades per area, monthly
headache days, who may record, entered-in-error, and which questionnaires are due."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from glabella.audit.models import AuditEvent
from glabella.outcomes import assessments
from glabella.outcomes.models import Assessment, Rater, TimePoint, Via
from glabella.outcomes.tests.test_diary_service import portal_actor, session

TODAY = date(2025, 11, 20)


def _record(world, scale_id, answers, role="injector", **kw):
    kw.setdefault("time_point", TimePoint.BASELINE)
    kw.setdefault("assessed_on", TODAY)
    kw.setdefault("today", TODAY)
    return assessments.record(world.actor(role), world.patient, scale_id, answers, **kw)


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        # Worked examples: the six answers' points add up; the bands are <=49, 50-55, 56-59, >=60.
        ([6, 6, 6, 6, 6, 6], 36, "little or no impact"),
        ([8, 8, 8, 8, 8, 8], 48, "little or no impact"),
        ([10, 10, 10, 10, 6, 8], 54, "some impact"),
        ([10, 10, 10, 10, 8, 8], 56, "substantial impact"),
        ([13, 11, 10, 10, 8, 8], 60, "severe impact"),
        ([13, 13, 13, 13, 13, 13], 78, "severe impact"),
    ],
)
def test_hit6_is_the_sum_of_its_six_answers_with_its_band(world, answers, total, band):
    row = _record(world, "hit-6", answers)
    row.refresh_from_db()
    assert row.value == Decimal(total) and row.band == band
    assert row.indication == "chronic-migraine"
    assert row.answers == {"answers": answers}
    assert "S21" in row.source


def test_hit6_answers_by_question_key_as_a_form_sends_them(world):
    row = _record(
        world, "hit-6", {f"q{n}": str(v) for n, v in enumerate([6, 8, 10, 11, 13, 13], 1)}
    )
    assert row.value == 61 and row.band == "severe impact"


@pytest.mark.parametrize(
    ("answers", "total", "grade", "band"),
    [
        ([0, 0, 2, 1, 2], 5, "I", "little or no disability"),
        ([3, 2, 1, 0, 0], 6, "II", "mild"),
        ([4, 2, 2, 1, 1], 10, "II", "mild"),
        ([5, 5, 5, 4, 1], 20, "III", "moderate"),
        ([10, 5, 3, 2, 1], 21, "IV", "severe"),
    ],
)
def test_midas_is_the_sum_of_days_with_its_grade(world, answers, total, grade, band):
    row = _record(world, "midas", answers)
    assert (row.value, row.grade, row.band) == (Decimal(total), grade, band)
    assert "S23" in row.source


def test_a_hit6_with_a_missing_answer_is_refused_naming_the_question(world):
    with pytest.raises(assessments.AssessmentRefused) as caught:
        _record(world, "hit-6", {"q1": 6, "q2": 8, "q3": "", "q4": 10, "q5": 10, "q6": 13})
    assert str(caught.value) == (
        "Question 3 is not answered: HIT-6 can only be scored when all six questions are answered."
    )
    assert caught.value.field == "q3"
    assert (
        not Assessment.objects.exists()
        and not AuditEvent.objects.filter(object_type="outcomes.assessment").exists()
    )


def test_a_short_midas_is_refused_naming_the_first_missing_question(world):
    with pytest.raises(assessments.AssessmentRefused) as caught:
        _record(world, "midas", [1, 2, 3])
    assert "Question 4 is not answered" in str(caught.value)
    assert "all five questions" in str(caught.value)


@pytest.mark.parametrize(
    ("scale_id", "answers", "field", "words"),
    [
        ("midas", [93, 0, 0, 0, 0], "q1", "not possible in 3 months"),
        ("midas", [1, "two", 0, 0, 0], "q2", "whole number of days"),
        ("hit-6", [6, 7, 6, 6, 6, 6], "q2", "choose one of the answers"),
        ("hdss", 5, "grade", "from 1 to 4"),
        ("headache-days", {"headache_days": 31, "period_days": 30}, "headache_days", "between 0"),
        (
            "headache-days",
            {"headache_days": 10, "migraine_days": 12},
            "migraine_days",
            "headache days too",
        ),
        ("no-such-scale", 1, "scale_id", "listed scales"),
    ],
)
def test_impossible_answers_are_refused_in_words(world, scale_id, answers, field, words):
    with pytest.raises(assessments.AssessmentRefused) as caught:
        _record(world, scale_id, answers)
    assert caught.value.field == field and words in str(caught.value).lower()
    assert not Assessment.objects.exists()


def test_a_wrinkle_grade_needs_an_area_and_rest_or_maximum(world):
    with pytest.raises(assessments.AssessmentRefused) as no_area:
        _record(world, "facial-wrinkle-scale", 2, contraction="rest")
    assert no_area.value.field == "area"
    with pytest.raises(assessments.AssessmentRefused) as no_contraction:
        _record(world, "facial-wrinkle-scale", 2, area="glabella")
    assert no_contraction.value.field == "contraction"
    row = _record(world, "facial-wrinkle-scale", 2, area="glabella", contraction="maximum")
    assert (row.value, row.band, row.indication) == (2, "moderate", "glabellar-lines")


def test_the_four_point_variant_allows_grade_4_and_the_three_point_does_not(world):
    row = _record(world, "merz-aesthetics-scale", 4, area="forehead", contraction="rest")
    assert row.band == "very severe"
    with pytest.raises(assessments.AssessmentRefused):
        _record(world, "facial-wrinkle-scale", 4, area="forehead", contraction="rest")


def test_monthly_headache_days_are_kept_per_28_days_with_migraine_days(world):
    row = _record(
        world, "headache-days", {"headache_days": "14", "migraine_days": "9", "period_days": "30"}
    )
    assert row.value == Decimal("13.07")  # 14 x 28 / 30
    assert row.band.startswith("episodic")
    assert row.answers["answers"] == {"headache_days": 14, "period_days": 30, "migraine_days": 9}


def test_a_future_assessment_is_refused(world):
    with pytest.raises(assessments.AssessmentRefused) as caught:
        _record(world, "hdss", 3, assessed_on=TODAY + timedelta(days=1))
    assert caught.value.field == "assessed_on" and "future" in str(caught.value)


def test_an_assessment_is_audited_with_its_score(world):
    row = _record(world, "hdss", 3, time_point=TimePoint.TWO_WEEKS)
    event = AuditEvent.objects.get(object_type="outcomes.assessment", object_id=str(row.pk))
    assert event.action == "create"
    assert event.detail["scale"] == "hdss" and event.detail["value"] == "3.00"


def test_an_assessment_against_a_session_takes_its_indication(world):
    s = session(world, TODAY - timedelta(days=14), indication="axillary-hyperhidrosis")
    row = _record(world, "hdss", 1, session=s, time_point=TimePoint.TWO_WEEKS)
    assert row.session == s and row.indication == "axillary-hyperhidrosis"


def test_the_patients_own_pages_record_as_the_patient(world):
    row = assessments.record(
        portal_actor(world),
        world.patient,
        "hit-6",
        [6, 6, 6, 6, 6, 6],
        time_point=TimePoint.BEFORE_NEXT,
        assessed_on=TODAY,
        rater=Rater.CLINICIAN,
        via=Via.PORTAL,
        today=TODAY,
    )
    assert row.rater == Rater.PATIENT and row.via == Via.PORTAL and row.recorded_by is None


@pytest.mark.parametrize("role", ["front_desk", "auditor"])
def test_roles_without_outcome_record_cannot_record(world, role):
    with pytest.raises(PermissionDenied):
        _record(world, "hdss", 2, role=role)


def test_another_organizations_patient_is_refused(world):
    with pytest.raises(PermissionError):
        assessments.record(
            world.actor("injector"),
            world.outsider_patient,
            "hdss",
            2,
            time_point=TimePoint.BASELINE,
            assessed_on=TODAY,
            today=TODAY,
        )
    assert not Assessment.objects.exists()


def test_an_assessment_entered_in_error_is_kept_with_its_reason(world):
    row = _record(world, "hdss", 2)
    with pytest.raises(assessments.AssessmentRefused):
        assessments.mark_in_error(world.actor("injector"), row, "  ")
    marked = assessments.mark_in_error(world.actor("injector"), row, "Wrong patient's form")
    assert marked.entered_in_error and marked.error_reason == "Wrong patient's form"
    assert Assessment.objects.filter(pk=row.pk).exists()
    event = AuditEvent.objects.filter(object_id=str(row.pk), action="update").get()
    assert event.detail == {"event": "assessment.error", "reason": "Wrong patient's form"}
    with pytest.raises(assessments.AssessmentRefused):
        assessments.mark_in_error(world.actor("injector"), row, "again")
    with pytest.raises(PermissionDenied):
        assessments.mark_in_error(world.actor("front_desk"), row, "no")


# --- due questionnaires -----------------------------------------------------------------------


def test_a_migraine_patient_is_due_hit6_and_midas_until_answered(world):
    today = date.today()
    s = session(world, today - timedelta(days=70))
    due = assessments.due_questionnaires(world.patient, today)
    assert [(d.scale_id, d.time_point, d.session_id) for d in due] == [
        ("hit-6", TimePoint.BEFORE_NEXT, s.pk),
        ("midas", TimePoint.BEFORE_NEXT, s.pk),
    ]
    _record(world, "hit-6", [6] * 6, assessed_on=today - timedelta(days=3), today=today)
    assert [d.scale_id for d in assessments.due_questionnaires(world.patient, today)] == ["midas"]
    # answered 4 weeks ago: due again
    later = today + timedelta(days=25)
    assert [d.scale_id for d in assessments.due_questionnaires(world.patient, later)] == [
        "hit-6",
        "midas",
    ]


def test_a_patient_with_nothing_to_measure_has_nothing_due(world):
    session(world, date.today() - timedelta(days=20), indication="glabellar-lines")
    assert assessments.due_questionnaires(world.patient, date.today()) == []


def test_hdss_is_due_two_weeks_after_a_sweating_treatment_and_before_the_next(world):
    today = date.today()
    s = session(world, today - timedelta(days=15), indication="axillary-hyperhidrosis")
    due = assessments.due_questionnaires(world.patient, today)
    assert [(d.scale_id, d.time_point, d.session_id) for d in due] == [
        ("hdss", TimePoint.TWO_WEEKS, s.pk)
    ]
    _record(world, "hdss", 1, assessed_on=today, today=today, time_point=TimePoint.TWO_WEEKS)
    assert assessments.due_questionnaires(world.patient, today) == []
    later = today + timedelta(days=100)
    assert [d.time_point for d in assessments.due_questionnaires(world.patient, later)] == [
        TimePoint.BEFORE_NEXT
    ]


def test_questionnaires_list_the_items_a_patient_answers(world):
    hit6 = assessments.QUESTIONNAIRES["hit-6"]
    assert len(hit6.items) == 6 and [v for v, _ in hit6.items[0].choices] == [6, 8, 10, 11, 13]
    midas = assessments.QUESTIONNAIRES["midas"]
    assert len(midas.items) == 5 and all(i.choices is None for i in midas.items)
    assert "3 months" in midas.items[0].text
    assert len(assessments.QUESTIONNAIRES["hdss"].items[0].choices) == 4
