"""Side effect pages: who may open what, recording through the form, the follow-up, the
printable summary, the list to report; and the form in a real Chromium on a tablet."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from glabella.audit.models import AuditEvent
from glabella.charting import services as charting
from glabella.conftest import PASSWORD
from glabella.outcomes import adverse
from glabella.outcomes.models import AdverseEvent
from glabella.outcomes.tests.test_adverse import GLABELLAR, consent, ptosis, signed, today
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]
VIEWERS = {"owner", "prescriber", "injector", "auditor"}
RECORDERS = {"owner", "prescriber", "injector"}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=", re.IGNORECASE)


@pytest.fixture
def treated(world):
    consent(world)
    world.session = signed(world)
    return world


def _url(name, *args):
    return reverse(f"outcomes:{name}", args=args)


def _new_data(**overrides):
    return {
        "kind": "eyelid_ptosis",
        "onset_on": (today() - timedelta(days=2)).isoformat(),
        "severity": "moderate",
        "outcome": "unknown",
        **overrides,
    }


# --- who may open what -----------------------------------------------------------------------


def _walk(world, event):
    """(method, url, permission) for every side effect URL, on WORLD's own objects."""
    return [
        ("get", _url("adverse_list", world.patient.pk), "view"),
        ("get", _url("adverse_new", world.session.pk), "record"),
        ("post", _url("adverse_new", world.session.pk), "record"),
        ("get", _url("adverse_detail", event.pk), "view"),
        ("post", _url("adverse_update", event.pk), "record"),
        ("get", _url("adverse_report", event.pk), "view"),
        ("post", _url("adverse_reported", event.pk), "record"),
        ("post", _url("adverse_error", event.pk), "record"),
        ("get", _url("adverse_reporting"), "view"),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_the_side_effect_pages_its_permissions_allow(treated, role):
    event = ptosis(treated, serious=True, serious_criteria=["hospitalisation"])
    client = treated.client(role)
    for method, url, need in _walk(treated, event):
        allowed = role in (RECORDERS if need == "record" else VIEWERS)
        # An empty POST is refused by the form: nothing is written either way.
        response = getattr(client, method)(url, {})
        expected = (200 if method == "get" else 422) if allowed else 403
        assert response.status_code == expected, (role, method, url, response.status_code)
    event.refresh_from_db()
    assert AdverseEvent.objects.count() == 1 and event.version == 1
    assert not event.entered_in_error and event.reported_on is None


def test_signed_out_visitors_are_sent_to_sign_in(treated):
    event = ptosis(treated)
    from django.test import Client

    for method, url, _ in _walk(treated, event):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_another_organization_gets_404_and_writes_nothing(treated):
    event = ptosis(treated, serious=True, serious_criteria=["hospitalisation"])
    client = treated.client("outsider")  # the owner of the other organization
    full = {
        **_new_data(),
        "version": 1,
        "reported_on": today().isoformat(),
        "reference": "X",
        "reason": "mine now",
        "outcome": "recovered",
    }
    audit_before = AuditEvent.objects.filter(organization=treated.org).count()
    for method, url, _ in _walk(treated, event):
        if url == _url("adverse_reporting"):
            continue
        response = getattr(client, method)(url, full if method == "post" else {})
        assert response.status_code == 404, (method, url)
    # Their own list to report does not show ours.
    page = client.get(_url("adverse_reporting"))
    assert page.status_code == 200 and "Lovelace" not in page.text
    event.refresh_from_db()
    assert event.version == 1 and event.outcome == "unknown" and not event.entered_in_error
    assert AdverseEvent.objects.count() == 1
    assert AuditEvent.objects.filter(organization=treated.org).count() == audit_before


# --- recording through the form --------------------------------------------------------------


def test_the_form_shows_the_lots_and_records_a_serious_event(treated):
    client = treated.client("injector")
    page = client.get(_url("adverse_new", treated.session.pk))
    assert page.status_code == 200
    assert "Lots it will be recorded against" in page.text and "C1234AB" in page.text
    assert 'name="serious_criteria"' in page.text and 'type="radio"' in page.text
    assert not INLINE_SCRIPT.search(page.text)
    response = client.post(
        _url("adverse_new", treated.session.pk),
        _new_data(
            kind="breathing",
            severity="severe",
            serious="on",
            serious_criteria=["life_threatening", "hospitalisation"],
            description="Short of breath two days after",
        ),
    )
    event = AdverseEvent.objects.get()
    assert response.status_code == 302 and response["Location"] == _url("adverse_detail", event.pk)
    assert event.serious and event.serious_criteria == ["life_threatening", "hospitalisation"]
    assert event.lots[0]["lot_number"] == "C1234AB"
    detail = client.get(response["Location"]).text
    assert "it is on the list to report" in detail and "Serious: to report" in detail
    assert "Life-threatening; Required or prolonged hospitalisation" in detail


def test_a_refused_form_says_why_and_keeps_what_was_typed(treated):
    client = treated.client("injector")
    response = client.post(
        _url("adverse_new", treated.session.pk),
        _new_data(
            kind="other",
            other_text="",
            onset_on=(today() + timedelta(days=3)).isoformat(),
            description="Tingling above the brow",
            serious_criteria=["hospitalisation"],
        ),
    )
    assert response.status_code == 422
    text = response.text
    assert "say what happened" in text
    assert "The date it started is in the future" in text
    assert "tick “serious” as well" in text
    assert "Tingling above the brow" in text
    assert re.search(r'value="other"[^>]*checked', text)
    assert re.search(r'value="hospitalisation"[^>]*checked', text)
    assert not AdverseEvent.objects.exists()


def test_a_draft_session_shows_why_and_no_form(treated):
    draft = charting.start_session(
        treated.actor("injector"),
        treated.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from=f"protocol:{GLABELLAR['botox_cosmetic']}",
    )
    client = treated.client("injector")
    page = client.get(_url("adverse_new", draft.pk))
    assert page.status_code == 200 and "not been signed yet" in page.text
    assert "Record side effect</button>" not in page.text
    response = client.post(_url("adverse_new", draft.pk), _new_data(onset_on=today().isoformat()))
    assert response.status_code == 409 and "not been signed yet" in response.text
    assert not AdverseEvent.objects.exists()


def test_a_double_submitted_form_records_one_event(treated):
    client = treated.client("injector")
    first = client.post(_url("adverse_new", treated.session.pk), _new_data())
    second = client.post(_url("adverse_new", treated.session.pk), _new_data())
    assert first["Location"] == second["Location"] and AdverseEvent.objects.count() == 1


# --- the patient's list ----------------------------------------------------------------------


def test_the_list_is_newest_first_with_errors_struck_and_a_clear_empty_state(treated):
    client = treated.client("auditor")
    empty = client.get(_url("adverse_list", treated.patient.pk)).text
    assert "No side effects recorded for Ada Lovelace" in empty
    assert "Record a side effect" not in empty  # the auditor only reads
    older = ptosis(treated, kind="bruising", onset_on=today() - timedelta(days=8))
    newer = ptosis(treated, kind="headache", onset_on=today() - timedelta(days=1))
    adverse.mark_in_error(treated.actor(), older, "Recorded on the wrong patient")
    page = client.get(_url("adverse_list", treated.patient.pk)).text
    assert page.index("Headache") < page.index("Bruising")
    assert (
        '<s class="struck">' in page and "Entered in error: Recorded on the wrong patient" in page
    )
    recorder = treated.client("injector").get(_url("adverse_list", treated.patient.pk)).text
    assert _url("adverse_new", treated.session.pk) in recorder
    assert newer.get_kind_display() in recorder


# --- one event: follow-up, error, history ----------------------------------------------------


def test_a_follow_up_through_the_page_and_its_history(treated):
    event = ptosis(treated)
    client = treated.client("prescriber")
    response = client.post(
        _url("adverse_update", event.pk),
        {
            "version": 1,
            "severity": "moderate",
            "outcome": "recovered",
            "outcome_on": today().isoformat(),
            "action_taken": "Apraclonidine drops",
            "description": "",
        },
    )
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.outcome == "recovered" and event.version == 2
    page = client.get(_url("adverse_detail", event.pk)).text
    assert "Follow-up saved." in page
    assert (
        "recorded" in page and "follow-up: changed the outcome, outcome date, action taken" in page
    )


def test_a_stale_follow_up_page_says_someone_else_changed_it(treated):
    event = ptosis(treated)
    adverse.update(treated.actor("prescriber"), event, 1, outcome="recovering")
    response = treated.client("injector").post(
        _url("adverse_update", event.pk),
        {"version": 1, "severity": "mild", "outcome": "recovered"},
    )
    assert response.status_code == 409
    assert "Someone else changed this side effect record" in response.text
    event.refresh_from_db()
    assert event.outcome == "recovering" and event.severity == "moderate"


def test_marking_in_error_through_the_page_needs_a_reason(treated):
    event = ptosis(treated)
    client = treated.client("injector")
    refused = client.post(_url("adverse_error", event.pk), {"reason": ""})
    assert refused.status_code == 422 and "Say why this record is wrong." in refused.text
    done = client.post(_url("adverse_error", event.pk), {"reason": "Duplicate entry"})
    assert done.status_code == 302 and done["Location"] == _url("adverse_list", treated.patient.pk)
    page = client.get(_url("adverse_detail", event.pk)).text
    assert "Entered in error: Duplicate entry" in page and "Save follow-up" not in page


# --- the printable summary -------------------------------------------------------------------


def test_the_summary_is_headed_for_reporting_when_serious_and_shows_the_report_once_marked(
    treated,
):
    event = ptosis(treated, kind="dysphagia", serious=True, serious_criteria=["hospitalisation"])
    client = treated.client("auditor")
    page = client.get(_url("adverse_report", event.pk)).text
    assert "Serious adverse event — for reporting" in page
    assert "Not reported yet." in page
    assert "20 units of Botox Cosmetic" in page and "onabotulinumtoxinA" in page
    assert "C1234AB" in page and "Age at onset" in page and ">AL<" in page
    assert "data-print" in page and "consent/print.js" in page
    assert not INLINE_SCRIPT.search(page)
    assert AuditEvent.objects.filter(
        object_type="outcomes.adverseevent", object_id=str(event.pk), action="export"
    ).exists()
    adverse.mark_reported(treated.actor(), event, reported_on=today(), reference="YC-2024-77")
    page = client.get(_url("adverse_report", event.pk)).text
    assert f"Reported on {today():%d/%m/%Y} ref YC-2024-77" in page


def test_the_summary_of_a_non_serious_event_is_not_headed_for_reporting(treated):
    event = ptosis(treated, kind="bruising")
    page = treated.client("injector").get(_url("adverse_report", event.pk)).text
    assert "Adverse event — summary" in page and "for reporting" not in page


# --- the list to report ----------------------------------------------------------------------


def test_the_reporting_page_lists_serious_events_and_marks_them_reported(treated):
    mild = ptosis(treated, kind="bruising")
    serious = ptosis(treated, kind="dysphagia", serious=True, serious_criteria=["hospitalisation"])
    client = treated.client("injector")
    page = client.get(_url("adverse_reporting")).text
    assert f'id="event-{serious.pk}"' in page and f'id="event-{mild.pk}"' not in page
    back = _url("adverse_reporting")
    refused = client.post(
        _url("adverse_reported", serious.pk),
        {"reported_on": today().isoformat(), "reference": "", "next": back},
    )
    assert refused.status_code == 422 and "Enter the reference the regulator gave" in refused.text
    done = client.post(
        _url("adverse_reported", serious.pk),
        {"reported_on": today().isoformat(), "reference": "YC-1", "next": back},
    )
    assert done.status_code == 302 and done["Location"] == back
    page = client.get(back).text
    assert "No serious side effect is waiting to be reported." in page
    assert "marked reported (ref YC-1)" in page


def test_the_reporting_page_only_reads_for_the_auditor(treated):
    ptosis(treated, kind="dysphagia", serious=True, serious_criteria=["hospitalisation"])
    page = treated.client("auditor").get(_url("adverse_reporting")).text
    assert "Dysphagia" in page and "Mark reported</button>" not in page


# --- in a real Chromium ----------------------------------------------------------------------


@pytest.mark.browser
def test_recording_a_serious_side_effect_on_a_tablet_and_printing_its_summary(
    live_server, live_world, page
):
    world = live_world
    consent(world)
    world.session = signed(world)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}{_url('adverse_new', world.session.pk)}")
    expect(page.get_by_role("heading", name="Record a side effect: Ada Lovelace")).to_be_visible()
    criterion = page.get_by_label("Required or prolonged hospitalisation")
    expect(criterion).to_be_hidden()
    assert_fits_and_touchable(page)
    page.get_by_label("Dysphagia (difficulty swallowing)").check()
    page.get_by_label("Severe", exact=True).check()
    page.get_by_label("Serious", exact=True).check()
    expect(criterion).to_be_visible()
    criterion.check()
    shot(page, "adverse-new")
    page.get_by_role("button", name="Record side effect").click()
    expect(page.get_by_text("it is on the list to report")).to_be_visible()
    page.get_by_role("link", name="Summary for reporting").click()
    expect(
        page.get_by_role("heading", name="Serious adverse event — for reporting")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "adverse-report")
    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
