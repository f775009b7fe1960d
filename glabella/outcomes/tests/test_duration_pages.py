"""The patient's duration-of-effect page, its two forms, and the walk of every duration URL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from glabella.accounts.roles import can
from glabella.audit.models import AuditEvent
from glabella.outcomes import duration_urls, durations
from glabella.outcomes.models import EffectReturn
from glabella.outcomes.tests.test_durations import quick_session
from glabella.scheduling.models import Recall

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()
ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]

# name -> (permission, methods)
URLS: dict[str, tuple[str, frozenset[str]]] = {
    "durations": ("outcome.view", frozenset({"get"})),
    "duration_return": ("outcome.record", frozenset({"post"})),
    "duration_return_error": ("outcome.record", frozenset({"post"})),
    "cohort": ("outcome.view", frozenset({"get"})),
}


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def _objects(world, patient, actor):
    """A patient's treatment with a recorded return, of one organization."""
    clinic = world.clinic if patient.organization_id == world.org.pk else None
    if clinic is None:
        from glabella.accounts.models import Clinic

        clinic = Clinic.objects.get(organization=patient.organization)
    session = quick_session(world, ago(130), patient=patient, clinic=clinic)
    later = quick_session(world, ago(20), patient=patient, clinic=clinic)
    report = durations.record_return(actor, session, ago(30))
    return {"patient": patient, "session": session, "later": later, "report": report}


@pytest.fixture
def both(world):
    from glabella.accounts.actor import Actor

    world.ours = _objects(world, world.patient, world.actor("injector"))
    theirs = Actor(world.outsider_org, world.outsider, None, "owner")
    world.theirs = _objects(world, world.outsider_patient, theirs)
    return world


def _address(name: str, objs) -> str:
    pk = objs["patient"].pk
    if name == "durations":
        return reverse("outcomes:durations", args=[pk])
    if name == "duration_return":
        return reverse("outcomes:duration_return", args=[pk, objs["later"].pk])
    if name == "duration_return_error":
        return reverse("outcomes:duration_return_error", args=[pk, objs["report"].pk])
    return reverse(f"outcomes:{name}")


def _snapshot():
    return (
        list(EffectReturn.objects.values_list("pk", "returned_on", "entered_in_error")),
        list(Recall.objects.values_list("pk", "due_on", "is_current")),
    )


def test_the_walk_covers_every_duration_url():
    assert sorted(p.name for p in duration_urls.urlpatterns) == sorted(URLS)
    for p in duration_urls.urlpatterns:
        assert p.callback.required_permission == URLS[p.name][0], p.name


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_by_its_permission(both, role):
    client = both.client(role)
    for name, (permission, methods) in URLS.items():
        response = client.get(_address(name, both.ours))
        if "get" not in methods:
            allowed = {405} if can(role, permission) else {403, 405}
            assert response.status_code in allowed, (name, role, response.status_code)
            continue
        expected = 200 if can(role, permission) else 403
        assert response.status_code == expected, (name, role, response.status_code)
    before = _snapshot()
    response = client.post(
        _address("duration_return", both.ours), {f"s{both.ours['later'].pk}-returned_on": ""}
    )
    assert response.status_code == (422 if can(role, "outcome.record") else 403)
    assert _snapshot() == before


def test_signed_out_people_are_sent_to_sign_in(both):
    client = Client()
    for name in ("durations", "cohort"):
        response = client.get(_address(name, both.ours))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    before = _snapshot()
    response = client.post(_address("duration_return", both.ours), {})
    assert response.status_code == 302
    assert _snapshot() == before


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_another_organizations_patient_is_404_and_nothing_changes(both, role):
    client = both.client(role)
    foreign = both.ours if role == "outsider" else both.theirs
    acting = "owner" if role == "outsider" else role
    before = _snapshot()
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    for name in ("durations", "duration_return", "duration_return_error"):
        permission, methods = URLS[name]
        method = "get" if "get" in methods else "post"
        data = {
            f"s{foreign['later'].pk}-returned_on": ago(1).isoformat(),
            f"s{foreign['later'].pk}-rater": "clinician",
            f"r{foreign['report'].pk}-reason": "Entered for the wrong patient.",
        }
        response = getattr(client, method)(_address(name, foreign), data)
        expected = 404 if can(acting, permission) else 403
        assert response.status_code == expected, (name, role, response.status_code)
    assert _snapshot() == before
    assert not AuditEvent.objects.filter(seq__gt=last).exists()


def test_a_session_of_another_patient_of_the_same_clinic_is_404(both):
    world = both
    from glabella.patients import services as patient_services

    other = patient_services.create_patient(
        world.actor("injector"),
        {"given_name": "Cy", "family_name": "Same", "date_of_birth": date(1991, 2, 2)},
    )
    url = reverse("outcomes:duration_return", args=[other.pk, world.ours["later"].pk])
    before = _snapshot()
    response = world.client("injector").post(
        url, {f"s{world.ours['later'].pk}-returned_on": ago(1).isoformat()}
    )
    assert response.status_code == 404
    assert _snapshot() == before


# --- the page ----------------------------------------------------------------------------------


@pytest.fixture
def history(world):
    """Frown lines: 4 treatments 120 days apart, the last 40 days ago; two returns recorded;
    the third treated again without a report."""
    sessions = [quick_session(world, ago(d)) for d in (400, 280, 160, 40)]
    durations.record_return(world.actor("injector"), sessions[0], ago(300))
    durations.record_return(world.actor("injector"), sessions[1], ago(176))
    world.sessions = sessions
    return world


def test_the_page_lists_each_treatment_and_the_personal_recall(history):
    world = history
    response = world.client("injector").get(reverse("outcomes:durations", args=[world.patient.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Glabellar lines (frown lines): Botox Cosmetic" in page
    assert "100 days" in page and "104 days" in page
    assert "still working" in page and "not recorded" in page
    # 40c, 100, 104, 120c: the median is 104 days, 40 + 104 -> due in 64 days.
    due = world.sessions[-1].treated_on + timedelta(days=104)
    assert "Their own median: <b>104 days</b>, from 2 recorded returns over 4 treatments" in page
    assert f"due on <b>{due:%d/%m/%Y}</b>" in page
    usual = world.sessions[-1].treated_on + timedelta(days=120)
    assert f"instead of {usual:%d/%m/%Y} (the usual 120 days)" in page
    assert "Record when the effect returned" in page
    assert AuditEvent.objects.filter(
        object_type="patients.patient", detail__part="durations of effect"
    ).exists()


def test_a_role_that_may_only_look_sees_no_forms(history):
    page = history.client("auditor").get(reverse("outcomes:durations", args=[history.patient.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "104 days" in text
    assert "Record when the effect returned" not in text
    assert 'action="/outcomes/' not in text


def test_recording_through_the_page_moves_the_recall_and_says_so(history):
    world = history
    third = world.sessions[2]
    client = world.client("injector")
    response = client.post(
        reverse("outcomes:duration_return", args=[world.patient.pk, third.pk]),
        {f"s{third.pk}-returned_on": ago(80).isoformat(), f"s{third.pk}-rater": "patient"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    due = world.sessions[-1].treated_on + timedelta(days=100)
    assert "lasted 80 days" in page and f"Recall due {due:%d/%m/%Y}" in page
    row = EffectReturn.objects.get(session=third)
    assert row.rater == "patient" and row.recorded_by == world.users["injector"]


def test_a_future_day_is_refused_beside_the_field_and_nothing_is_written(history):
    world = history
    last = world.sessions[-1]
    before = _snapshot()
    response = world.client("injector").post(
        reverse("outcomes:duration_return", args=[world.patient.pk, last.pk]),
        {
            f"s{last.pk}-returned_on": (TODAY + timedelta(days=3)).isoformat(),
            f"s{last.pk}-rater": "clinician",
        },
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "is in the future" in page and 'role="alert"' in page
    assert _snapshot() == before


def test_a_report_marked_in_error_stays_struck_through_with_its_reason(history):
    world = history
    report = EffectReturn.objects.get(session=world.sessions[1])
    client = world.client("injector")
    url = reverse("outcomes:duration_return_error", args=[world.patient.pk, report.pk])
    response = client.post(url, {f"r{report.pk}-reason": ""})
    assert response.status_code == 422
    assert "Say why this report was entered in error." in response.content.decode()
    response = client.post(
        url, {f"r{report.pk}-reason": "The patient meant her eyes."}, follow=True
    )
    page = response.content.decode()
    assert "marked entered in error" in page
    assert f'<span class="struck">{report.returned_on:%d/%m/%Y}</span>' in page
    assert "The patient meant her eyes." in page
    assert "No personal estimate yet" in page
    report.refresh_from_db()
    assert report.entered_in_error


def test_the_fading_banner_shows_with_its_rule(world):
    sessions = [quick_session(world, ago(d), "20") for d in (430, 300, 170, 40)]
    for session, days in zip(sessions, (120, 100, 80), strict=False):
        durations.record_return(
            world.actor("injector"), session, session.treated_on + timedelta(days=days)
        )
    page = world.client("prescriber").get(reverse("outcomes:durations", args=[world.patient.pk]))
    text = page.content.decode()
    assert "data-fading" in text and "Response fading" in text
    assert "120, 100, 80 days" in text and "unconfirmed" in text


def test_a_patient_without_treatments_gets_a_clear_empty_page(world):
    page = world.client("injector").get(reverse("outcomes:durations", args=[world.patient.pk]))
    assert page.status_code == 200
    assert "No signed treatments yet" in page.content.decode()
