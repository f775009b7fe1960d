"""The outcomes API: a patient's assessments and headache diary."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from glabella.audit.models import Action, AuditEvent
from glabella.charting import services as charting_services
from glabella.interop.tests.helpers import api_client
from glabella.outcomes import diary
from glabella.outcomes.models import Assessment, DiaryEntry
from glabella.patients import services as patient_services

API = "/api/v1"
pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()


def send(client, url, body):
    return client.post(f"{API}{url}", data=json.dumps(body), content_type="application/json")


def hit6(world, given, **overrides):
    body = {
        "scale_id": "hit-6",
        "answers": given,
        "time_point": "baseline",
        "assessed_on": (TODAY - timedelta(days=1)).isoformat(),
    }
    body.update(overrides)
    return body


def url(world, what, patient=None):
    return f"/patients/{(patient or world.patient).pk}/{what}"


# --- assessments --------------------------------------------------------------------------------


def test_a_prescriber_records_a_hit6_scored_by_the_service_and_audited(world):
    client = api_client(world, "prescriber")
    response = send(client, url(world, "assessments"), hit6(world, [13, 11, 10, 8, 6, 13]))
    assert response.status_code == 201, response.content
    body = response.json()
    assert Decimal(body["value"]) == Decimal(61)
    assert body["band"]  # the band of 61 (severe impact), named by the scale
    assert body["source"]
    assert body["answers"] == [13, 11, 10, 8, 6, 13]
    assert body["recorded_by"] == "prescriber@alpha.test"
    assert body["indication"] == "chronic-migraine"
    assert AuditEvent.objects.filter(
        organization=world.org,
        action=Action.CREATE,
        object_type="outcomes.assessment",
        object_id=str(body["id"]),
    ).exists()


@pytest.mark.parametrize(
    "answers",
    [
        [13, 11, None, 8, 6, 13],
        {"q1": 13, "q2": 11, "q4": 8, "q5": 6, "q6": 13},
        [13, 11],
    ],
)
def test_a_missing_answer_is_refused_naming_the_question(world, answers):
    response = send(api_client(world, "injector"), url(world, "assessments"), hit6(world, answers))
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"] == "answers.q3"
    assert body["message"].startswith("Question 3 is not answered")
    assert not Assessment.objects.exists()


def test_wrinkle_grades_need_the_area_and_the_contraction(world):
    client = api_client(world, "injector")
    body = {
        "scale_id": "facial-wrinkle-scale",
        "answers": 2,
        "time_point": "two_weeks",
        "assessed_on": TODAY.isoformat(),
        "area": "glabella",
    }
    refused = send(client, url(world, "assessments"), body)
    assert refused.status_code == 422
    assert refused.json()["field"] == "contraction"
    body["contraction"] = "maximum"
    recorded = send(client, url(world, "assessments"), body)
    assert recorded.status_code == 201, recorded.content
    assert recorded.json()["indication"] == "glabellar-lines"
    too_high = send(client, url(world, "assessments"), {**body, "answers": 7})
    assert too_high.status_code == 422
    assert too_high.json()["field"] == "answers"
    assert "grade from 0 to 3" in too_high.json()["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"assessed_on": (TODAY + timedelta(days=3)).isoformat()}, "assessed_on"),
        ({"assessed_on": "yesterday"}, "assessed_on"),
        ({"answers": ["13", "11", "10", "8", "6", "13"]}, "answers"),
        ({"answers": [13, 11, 10, 8, 6, 12]}, "answers.q6"),
        ({"scale_id": "happiness"}, "scale_id"),
        ({"time_point": "soon"}, "time_point"),
        ({"mood": "good"}, "mood"),
        ({"session_id": "4"}, "session_id"),
    ],
)
def test_bad_assessment_input_is_refused_naming_the_field(world, overrides, field):
    body = hit6(world, [13, 11, 10, 8, 6, 13], **overrides)
    response = send(api_client(world, "injector"), url(world, "assessments"), body)
    assert response.status_code == 422, response.content
    assert (response.json()["field"] or "").startswith(field), response.json()
    assert not Assessment.objects.exists()


def test_assessments_are_listed_newest_first_with_paging_and_the_view_is_audited(world):
    client = api_client(world, "prescriber")
    for days_ago in (30, 10, 20):
        send(
            client,
            url(world, "assessments"),
            hit6(world, [6] * 6, assessed_on=(TODAY - timedelta(days=days_ago)).isoformat()),
        )
    send(client, url(world, "assessments"), {**hit6(world, [2, 1, 0, 0, 3]), "scale_id": "midas"})
    auditor = api_client(world, "auditor")
    listed = auditor.get(f"{API}{url(world, 'assessments')}?scale=hit-6").json()
    assert listed["count"] == 3
    assert [a["assessed_on"] for a in listed["items"]] == [
        (TODAY - timedelta(days=d)).isoformat() for d in (10, 20, 30)
    ]
    page = auditor.get(f"{API}{url(world, 'assessments')}?limit=2&offset=2").json()
    assert (page["count"], len(page["items"])) == (4, 2)
    assert AuditEvent.objects.filter(
        organization=world.org,
        action=Action.VIEW,
        object_type="patients.patient",
        object_id=str(world.patient.pk),
        actor_label="auditor@alpha.test",
    ).exists()


def test_front_desk_cannot_see_outcomes_and_an_auditor_cannot_record(world):
    assert (
        api_client(world, "front_desk").get(f"{API}{url(world, 'assessments')}").status_code == 403
    )
    assert api_client(world, "front_desk").get(f"{API}{url(world, 'diary')}").status_code == 403
    body = hit6(world, [6] * 6)
    assert send(api_client(world, "auditor"), url(world, "assessments"), body).status_code == 403
    day = {"days": [{"day": TODAY.isoformat(), "headache": False}]}
    assert send(api_client(world, "auditor"), url(world, "diary"), day).status_code == 403
    assert not Assessment.objects.exists() and not DiaryEntry.objects.exists()


# --- the diary ----------------------------------------------------------------------------------


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


def test_several_diary_days_are_recorded_and_read_back(world):
    client = api_client(world, "injector")
    body = {
        "days": [
            {"day": days_ago(3), "headache": False},
            {
                "day": days_ago(2),
                "headache": True,
                "migraine": True,
                "severity": 3,
                "hours": 6.5,
                "acute_medication": ["triptan"],
            },
            {"day": days_ago(1), "headache": True, "severity": 1, "hours": 2},
        ]
    }
    response = send(client, url(world, "diary"), body)
    assert response.status_code == 200, response.content
    assert response.json()["saved"] == 3
    assert [e["via"] for e in response.json()["entries"]] == ["paper"] * 3

    listed = client.get(f"{API}{url(world, 'diary')}?from={days_ago(2)}&to={days_ago(1)}").json()
    assert listed["count"] == 2
    first = listed["items"][0]
    assert first["day"] == days_ago(2)
    assert (first["migraine"], first["severity"], first["hours"]) == (True, 3, "6.5")
    assert first["acute_medication"] == ["triptan"]

    again = send(client, url(world, "diary"), body)  # sent twice: nothing changes
    assert again.json()["saved"] == 0
    assert DiaryEntry.objects.filter(patient=world.patient).count() == 3


def test_a_day_sent_again_with_other_answers_replaces_it_and_keeps_the_old_one(world):
    client = api_client(world, "injector")
    send(client, url(world, "diary"), {"days": [{"day": days_ago(1), "headache": False}]})
    changed = send(
        client,
        url(world, "diary"),
        {"days": [{"day": days_ago(1), "headache": True, "severity": 2}], "via": "staff"},
    )
    assert changed.json()["saved"] == 1
    current = diary.current_entries(world.patient)
    assert [(e.headache, e.severity) for e in current] == [(True, 2)]
    assert len(diary.replaced_entries(world.patient)) == 1
    listed = client.get(f"{API}{url(world, 'diary')}").json()
    assert listed["count"] == 1 and listed["items"][0]["severity"] == 2


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"headache": False, "severity": 2}, "days[2].severity", "for a headache day"),
        ({"headache": False, "migraine": True}, "days[2].migraine", "also a headache day"),
        (
            {"headache": True, "acute_medication": ["aspirin"]},
            "days[2].acute_medication[0]",
            "Choose one of",
        ),
        ({"headache": True, "severity": 4}, "days[2].severity", ""),
        ({"headache": True, "hours": 25}, "days[2].hours", ""),
        ({"headache": True, "hours": "2"}, "days[2].hours", ""),
        ({"headache": "yes"}, "days[2].headache", ""),
        ({"headache": True, "mood": 3}, "days[2].mood", ""),
    ],
)
def test_one_bad_day_refuses_them_all(world, bad, field, words):
    body = {
        "days": [
            {"day": days_ago(3), "headache": False},
            {"day": days_ago(2), "headache": True, "severity": 1},
            {"day": days_ago(1), **bad},
        ]
    }
    response = send(api_client(world, "injector"), url(world, "diary"), body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field, response.json()
    assert words in response.json()["message"]
    assert not DiaryEntry.objects.exists()


def test_a_future_day_and_a_day_sent_twice_are_refused(world):
    client = api_client(world, "injector")
    future = {
        "days": [{"day": days_ago(0), "headache": False}, {"day": days_ago(-2), "headache": False}]
    }
    response = send(client, url(world, "diary"), future)
    assert response.status_code == 422
    assert response.json()["field"] == "days[1].day"
    assert "in the future" in response.json()["message"]
    twice = {
        "days": [{"day": days_ago(1), "headache": False}, {"day": days_ago(1), "headache": True}]
    }
    response = send(client, url(world, "diary"), twice)
    assert response.status_code == 422
    assert response.json()["field"] == "days[1].day"
    assert send(client, url(world, "diary"), {"days": []}).status_code == 422
    assert not DiaryEntry.objects.exists()


# --- other organizations ------------------------------------------------------------------------


def test_another_organizations_patient_is_not_found(world):
    outsider = api_client(world, "outsider")
    assert outsider.get(f"{API}{url(world, 'assessments')}").status_code == 404
    assert outsider.get(f"{API}{url(world, 'diary')}").status_code == 404
    assert send(outsider, url(world, "assessments"), hit6(world, [6] * 6)).status_code == 404
    day = {"days": [{"day": days_ago(1), "headache": False}]}
    assert send(outsider, url(world, "diary"), day).status_code == 404
    assert not Assessment.objects.exists() and not DiaryEntry.objects.exists()
    # ... and their own patient is theirs
    own = send(outsider, url(world, "diary", world.outsider_patient), day)
    assert own.status_code == 200, own.content


def test_a_session_of_another_patient_is_not_found(world):
    session = charting_services.start_session(
        world.actor("injector"),
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
    )
    other = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Grace", "family_name": "Hopper", "date_of_birth": date(1906, 12, 9)},
    )
    body = hit6(world, [6] * 6, session_id=session.pk)
    response = send(api_client(world, "injector"), url(world, "assessments", other), body)
    assert response.status_code == 404
    linked = send(api_client(world, "injector"), url(world, "assessments"), body)
    assert linked.status_code == 201, linked.content
    assert linked.json()["session_id"] == session.pk
