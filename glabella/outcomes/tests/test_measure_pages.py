"""The clinician's outcome pages: every URL x every role, another organization's patient is a
404 that writes nothing, and what each page shows and keeps when something is refused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from glabella.accounts.roles import can
from glabella.audit.models import AuditEvent
from glabella.outcomes import assessments, measure_urls
from glabella.outcomes.diary import local_today
from glabella.outcomes.models import Assessment, ContinuationDecision, DiaryEntry, TimePoint
from glabella.outcomes.tests.test_diary_service import fill, session

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]

# name -> (permission for GET, permission for POST, or None when the method is not answered)
URLS = {
    "patient": ("outcome.view", None),
    "assess": ("outcome.record", "outcome.record"),
    "diary": ("outcome.view", "outcome.record"),
    "decide": (None, "outcome.decide"),
    "assessment_error": (None, "outcome.record"),
}


def test_the_walk_covers_every_measure_url():
    assert sorted(p.name for p in measure_urls.urlpatterns) == sorted(URLS)
    for p in measure_urls.urlpatterns:
        get, post = URLS[p.name]
        assert p.callback.required_permission == (get or post)


def _objects(world, patient, actor):
    today = local_today(actor, patient)
    row = assessments.record(
        actor,
        patient,
        "hdss",
        3,
        time_point=TimePoint.BASELINE,
        assessed_on=today,
        today=today,
    )
    return {"patient": patient.pk, "assessment": row.pk}


def _url(name, objs):
    pk = objs["assessment"] if name == "assessment_error" else objs["patient"]
    return reverse(f"outcomes:{name}", args=[pk])


POST_DATA = {
    "assess": {"scale": "hdss", "time_point": "baseline", "assessed_on": "", "rater": "clinician",
               "q1": "2"},
    "diary": {},
    "decide": {"after_cycles": "2", "decision": "continue", "reason": ""},
    "assessment_error": {"reason": "walk"},
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_every_role_gets_what_its_permission_says(world, role):
    objs = _objects(world, world.patient, world.actor("injector"))
    client = world.client(role)
    today = local_today(world.actor(), world.patient)
    for name, (get, post) in URLS.items():
        url = _url(name, objs)
        if get:
            status = client.get(url).status_code
            assert status == (200 if can(role, get) else 403), (name, role, status)
        else:
            assert client.get(url).status_code in (403, 405), name
        if post:
            data = dict(POST_DATA[name])
            if name == "assess":
                data["assessed_on"] = today.isoformat()
            status = client.post(url, data).status_code
            allowed = can(role, post) and (get is None or can(role, get))
            if allowed:
                assert status in (200, 302), (name, role, status)
            else:
                assert status == 403, (name, role, status)


@pytest.mark.parametrize("role", ["owner", "prescriber", "injector", "auditor"])
def test_another_organizations_patient_is_a_404_that_writes_nothing(world, role):
    from glabella.accounts.actor import Actor
    from glabella.accounts.models import Membership

    m = Membership.objects.get(user=world.outsider)
    theirs = _objects(
        world, world.outsider_patient, Actor(world.outsider_org, m.user, m.clinic, m.role)
    )
    client = world.client(role)  # signing in is audited: before counting
    counts = (
        Assessment.objects.count(),
        DiaryEntry.objects.count(),
        ContinuationDecision.objects.count(),
        AuditEvent.objects.count(),
    )
    today = local_today(world.actor(), world.patient)
    for name, (get, post) in URLS.items():
        url = _url(name, theirs)
        if get and can(role, get):
            assert client.get(url).status_code == 404, name
        if post and can(role, post) and (get is None or can(role, get)):
            data = dict(POST_DATA[name])
            if name == "assess":
                data["assessed_on"] = today.isoformat()
            if name == "diary":
                data = {"month": f"{today:%Y-%m}", f"d{today.isoformat()}-headache": "yes"}
            assert client.post(url, data).status_code == 404, name
    assert counts == (
        Assessment.objects.count(),
        DiaryEntry.objects.count(),
        ContinuationDecision.objects.count(),
        AuditEvent.objects.count(),
    )
    assert not Assessment.objects.filter(patient=world.outsider_patient, entered_in_error=True)


# --- the outcomes page ------------------------------------------------------------------------


def test_the_outcomes_page_shows_the_headache_chart_with_this_months_row(world):
    today = local_today(world.actor(), world.patient)
    first = today.replace(day=1)
    fill(world, first, today.day, 5)  # the first 5 days of the month are headache days
    session(world, first - timedelta(days=40))
    body = world.client("auditor").get(reverse("outcomes:patient", args=[world.patient.pk]))
    html = body.content.decode()
    assert "Headache days per month" in html
    month = today.strftime("%B %Y")
    row = re.search(rf'<tr><th scope="row">{month}</th>(.*?)</tr>', html, re.S)
    assert row, month
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[0] == str(min(5, today.day))
    assert "Continue or stop" in html and "Medication overuse" in html
    assert AuditEvent.objects.filter(action="view", detail__part="outcomes").exists()


def test_the_outcomes_page_has_clear_empty_states(world):
    html = world.client("injector").get(reverse("outcomes:patient", args=[world.patient.pk]))
    text = html.content.decode()
    assert "No assessment recorded yet." in text
    assert "No diary days recorded yet." in text
    assert "No wrinkle grades recorded yet." in text
    assert "No signed treatment with injection points yet." in text


def test_assessments_show_value_band_source_and_an_error_stays_visible(world):
    actor = world.actor("injector")
    today = local_today(actor, world.patient)
    row = assessments.record(actor, world.patient, "midas", [10, 5, 3, 2, 1],
                             time_point=TimePoint.BASELINE, assessed_on=today)  # fmt: skip
    client = world.client("injector")
    page = reverse("outcomes:patient", args=[world.patient.pk])
    html = client.get(page).content.decode()
    assert "MIDAS" in html and "(grade IV)" in html and "S23" in html
    refused = client.post(reverse("outcomes:assessment_error", args=[row.pk]), {"reason": ""})
    assert refused.status_code == 422
    assert "Say why this assessment was entered in error." in refused.content.decode()
    done = client.post(reverse("outcomes:assessment_error", args=[row.pk]), {"reason": "Typo"})
    assert done.status_code == 302
    html = client.get(page).content.decode()
    assert "Entered in error: Typo" in html and 'class="assessment in-error"' in html


def test_only_prescribers_see_the_decision_form(world):
    session(world, local_today(world.actor(), world.patient) - timedelta(days=10))
    page = reverse("outcomes:patient", args=[world.patient.pk])
    assert "Record the decision" in world.client("prescriber").get(page).content.decode()
    assert "Record the decision" not in world.client("injector").get(page).content.decode()


def test_a_stop_decision_without_a_reason_is_shown_again_with_the_message(world):
    client = world.client("prescriber")
    url = reverse("outcomes:decide", args=[world.patient.pk])
    refused = client.post(url, {"after_cycles": "2", "decision": "stop", "reason": ""})
    assert refused.status_code == 422
    assert "Write the reason for stopping" in refused.content.decode()
    assert not ContinuationDecision.objects.exists()
    done = client.post(url, {"after_cycles": "2", "decision": "stop", "reason": "No effect"})
    assert done.status_code == 302
    html = client.get(done["Location"]).content.decode()
    assert "Decision recorded: stop treatment after 2 cycles." in html
    assert 'data-decision="stop"' in html


# --- recording an assessment ------------------------------------------------------------------


def _assess(client, patient, data):
    return client.post(reverse("outcomes:assess", args=[patient.pk]), data)


def test_choosing_a_scale_shows_its_questions(world):
    client = world.client("injector")
    url = reverse("outcomes:assess", args=[world.patient.pk])
    assert "Choose the scale" in client.get(url).content.decode()
    hit6 = client.get(url + "?scale=hit-6").content.decode()
    assert hit6.count('type="radio"') == 30 and "QualityMetric" in hit6
    midas = client.get(url + "?scale=midas").content.decode()
    assert "On how many days in the last 3 months did you miss work or school" in midas


def test_a_hit6_with_a_missing_answer_comes_back_with_the_message_and_the_answers(world):
    today = local_today(world.actor(), world.patient)
    data = {"scale": "hit-6", "time_point": "baseline", "assessed_on": today.isoformat(),
            "rater": "patient", "q1": "6", "q2": "8", "q4": "10", "q5": "11",
            "q6": "13"}  # fmt: skip
    response = _assess(world.client("injector"), world.patient, data)
    assert response.status_code == 422
    html = response.content.decode()
    assert (
        "Question 3 is not answered: HIT-6 can only be scored when all six questions are answered."
        in html
    )
    assert re.search(r'value="11"[^>]*checked', html), "the answers given are kept"
    assert not Assessment.objects.exists()
    data["q3"] = "10"
    saved = _assess(world.client("injector"), world.patient, data)
    assert saved.status_code == 302
    row = Assessment.objects.get()
    assert row.value == 58 and row.band == "substantial impact" and row.rater == "patient"


def test_several_wrinkle_areas_are_graded_in_one_go(world):
    today = local_today(world.actor(), world.patient)
    data = {"scale": "facial-wrinkle-scale", "time_point": "baseline",
            "assessed_on": today.isoformat(), "rater": "clinician",
            "glabella__rest": "1", "glabella__maximum": "3", "forehead__maximum": "2",
            "lateral-canthus__rest": ""}  # fmt: skip
    response = _assess(world.client("injector"), world.patient, data)
    assert response.status_code == 302
    got = sorted(Assessment.objects.values_list("area", "contraction", "value"))
    assert [(a, c, int(v)) for a, c, v in got] == [
        ("forehead", "maximum", 2),
        ("glabella", "maximum", 3),
        ("glabella", "rest", 1),
    ]


def test_a_wrinkle_grade_out_of_the_scale_saves_none_of_the_grid(world):
    today = local_today(world.actor(), world.patient)
    data = {"scale": "facial-wrinkle-scale", "time_point": "baseline",
            "assessed_on": today.isoformat(), "rater": "clinician",
            "glabella__rest": "1", "forehead__maximum": "4"}  # fmt: skip
    response = _assess(world.client("injector"), world.patient, data)
    assert response.status_code == 422
    assert not Assessment.objects.exists()


def test_an_empty_wrinkle_grid_is_refused(world):
    today = local_today(world.actor(), world.patient)
    data = {"scale": "merz-aesthetics-scale", "time_point": "baseline",
            "assessed_on": today.isoformat(), "rater": "clinician"}  # fmt: skip
    response = _assess(world.client("injector"), world.patient, data)
    assert response.status_code == 422
    assert "Grade at least one area" in response.content.decode()


def test_monthly_headache_days_from_the_form(world):
    today = local_today(world.actor(), world.patient)
    data = {"scale": "headache-days", "time_point": "baseline", "assessed_on": today.isoformat(),
            "rater": "clinician", "headache_days": "18", "migraine_days": "10",
            "period_days": "28"}  # fmt: skip
    assert _assess(world.client("injector"), world.patient, data).status_code == 302
    row = Assessment.objects.get()
    assert row.value == 18 and row.band.startswith("chronic")


def test_a_future_assessment_date_is_refused_on_the_form(world):
    today = local_today(world.actor(), world.patient)
    data = {"scale": "hdss", "time_point": "baseline", "rater": "clinician", "q1": "2",
            "assessed_on": (today + timedelta(days=2)).isoformat()}  # fmt: skip
    response = _assess(world.client("injector"), world.patient, data)
    assert response.status_code == 422 and "is in the future" in response.content.decode()


# --- the paper diary --------------------------------------------------------------------------


def _diary_url(world):
    return reverse("outcomes:diary", args=[world.patient.pk])


def test_a_paper_diary_month_is_copied_in_one_save(world):
    today = local_today(world.actor(), world.patient)
    month = today.replace(day=1)
    data = {"month": f"{month:%Y-%m}", f"d{month.isoformat()}-headache": "yes",
            f"d{month.isoformat()}-severity": "2", f"d{month.isoformat()}-hours": "4",
            f"d{month.isoformat()}-med": ["triptan", "simple_analgesic"],
            f"d{month.isoformat()}-migraine": "on"}  # fmt: skip
    if today.day > 1:
        data[f"d{(month + timedelta(days=1)).isoformat()}-headache"] = "no"
    response = world.client("injector").post(_diary_url(world), data)
    assert response.status_code == 302
    first = DiaryEntry.objects.get(day=month)
    assert first.headache and first.migraine and first.severity == 2 and first.via == "paper"
    assert first.acute_medication == ["simple_analgesic", "triptan"]
    assert DiaryEntry.objects.count() == min(2, today.day)
    page = world.client("auditor").get(_diary_url(world)).content.decode()
    assert "saved, copied from a paper diary" in page
    assert 'name="d' not in page  # the auditor sees the diary, without the form


def test_a_future_day_is_refused_and_nothing_of_the_month_is_saved(world):
    today = local_today(world.actor(), world.patient)
    tomorrow = today + timedelta(days=1)
    data = {"month": f"{today:%Y-%m}", f"d{today.isoformat()}-headache": "yes",
            f"d{tomorrow.isoformat()}-headache": "yes"}  # fmt: skip
    response = world.client("injector").post(_diary_url(world), data)
    assert response.status_code == 422
    assert "is in the future" in response.content.decode()
    assert not DiaryEntry.objects.exists()


def test_a_day_that_does_not_add_up_comes_back_beside_the_day(world):
    today = local_today(world.actor(), world.patient)
    data = {"month": f"{today:%Y-%m}", f"d{today.isoformat()}-headache": "no",
            f"d{today.isoformat()}-severity": "3"}  # fmt: skip
    response = world.client("injector").post(_diary_url(world), data)
    assert response.status_code == 422
    html = response.content.decode()
    assert "Severity and hours are for a headache day" in html
    assert re.search(rf'data-day="{today.isoformat()}"', html)
    assert not DiaryEntry.objects.exists()


def test_a_changed_day_replaces_the_saved_one_and_shows_in_the_history(world):
    today = local_today(world.actor(), world.patient)
    client = world.client("injector")
    key = f"d{today.isoformat()}-headache"
    client.post(_diary_url(world), {"month": f"{today:%Y-%m}", key: "no"})
    again = client.post(_diary_url(world), {"month": f"{today:%Y-%m}", key: "no"})
    assert again.status_code == 302 and DiaryEntry.objects.count() == 1
    client.post(_diary_url(world), {"month": f"{today:%Y-%m}", key: "yes"})
    assert DiaryEntry.objects.count() == 2
    assert DiaryEntry.objects.filter(replaced_at__isnull=True).get().headache
    html = client.get(_diary_url(world)).content.decode()
    assert "No entry of this month was replaced." not in html
    assert "<td>No headache</td>" in html


def test_a_month_after_this_one_shows_this_month(world):
    today = local_today(world.actor(), world.patient)
    html = world.client("injector").get(_diary_url(world) + "?month=2999-01").content.decode()
    assert today.strftime("%B %Y") in html


# --- on a tablet ------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_outcomes_and_diary_pages_on_a_tablet(live_server, live_world, page):
    from playwright.sync_api import expect

    from glabella.conftest import PASSWORD
    from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

    world = live_world
    actor = world.actor("injector")
    today = local_today(actor, world.patient)
    first = today - timedelta(days=100)
    fill(world, first - timedelta(days=28), 28 + 100, 14, migraine=6, medication=4)
    session(world, first, points=[("forehead", "20"), ("glabella", "25")])
    session(world, first + timedelta(days=84), points=[("forehead", "20"), ("glabella", "30")])
    assessments.record(actor, world.patient, "facial-wrinkle-scale", 2, area="glabella",
                       contraction="maximum", time_point=TimePoint.BASELINE,
                       assessed_on=first)  # fmt: skip
    assessments.record(actor, world.patient, "hit-6", [13, 11, 10, 10, 8, 8],
                       time_point=TimePoint.BASELINE, assessed_on=first)  # fmt: skip

    login(page, live_server.url, "prescriber@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}{reverse('outcomes:patient', args=[world.patient.pk])}")
    expect(page.get_by_role("heading", name="Outcomes: Ada Lovelace")).to_be_visible()
    chart = page.locator("figure.chart", has_text="Headache days per month")
    expect(chart.locator("svg[role=img]")).to_be_visible()
    expect(page.get_by_role("heading", name="After 2 cycles")).to_be_visible()
    expect(page.get_by_role("button", name="Record the decision")).to_be_visible()
    shot(page, "outcomes-patient")
    assert_fits_and_touchable(page)

    page.get_by_role("link", name="Headache diary: copy a paper diary").click()
    day = page.locator(f'li[data-day="{today.isoformat()}"]')
    day.get_by_text("Headache", exact=True).click()
    day.get_by_label("Severity").select_option("2")
    day.get_by_text("Triptan").click()
    assert_fits_and_touchable(page)
    shot(page, "outcomes-diary")
    page.get_by_role("button", name="Save the diary").click()
    expect(page.get_by_text("1 diary day saved for Ada Lovelace.")).to_be_visible()
    saved = DiaryEntry.objects.get(day=today, replaced_at__isnull=True)
    assert saved.headache and saved.severity == 2 and saved.acute_medication == ["triptan"]
    assert saved.via == "paper"
