"""The opt-out link at the end of every message: a GET only asks (link scanners open links), a
POST stops reminders, cancels what is waiting and is audited as the patient; a bad or altered
link gets a polite page and no data."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.patients.models import Patient
from glabella.scheduling import messages, reminders
from glabella.scheduling.models import Reminder, ReminderStatus
from glabella.scheduling.tests.conftest import LONDON, next_monday_at
from glabella.scheduling.tests.reminder_helpers import agree, book
from glabella.web.tests.browser import assert_fits_and_touchable, shot


def _url(patient: Patient) -> str:
    return reverse("scheduling:opt_out", args=[messages.opt_out_token(patient)])


def _planned(world) -> Reminder:
    agree(world.patient)
    appt = book(world, next_monday_at(10, weeks=2))
    wednesday = appt.starts_at.astimezone(LONDON).date() - timedelta(days=5)
    when = datetime.combine(wednesday, time(11, 0), tzinfo=LONDON)
    type(appt).objects.filter(pk=appt.pk).update(updated_at=when)
    reminders.plan(now=when + timedelta(minutes=1))
    return Reminder.objects.get()


def test_opening_the_link_only_asks(world):
    row = _planned(world)
    page = Client().get(_url(world.patient))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Do you want to stop appointment reminders" in text and "Alpha Aesthetics" in text
    assert '<form method="post" class="actions">' in text
    assert "Lovelace" not in text and "ada@example.org" not in text  # no personal data shown
    assert page["X-Robots-Tag"] == "noindex" and page["Cache-Control"] == "no-store"
    world.patient.refresh_from_db()
    assert world.patient.reminder_consent and world.patient.reminder_opt_out_at is None
    row.refresh_from_db()
    assert row.status == ReminderStatus.PENDING


def test_confirming_stops_reminders_cancels_waiting_ones_and_is_audited_as_the_patient(world):
    row = _planned(world)
    # A browser posts the page's form; no session, no CSRF cookie needed (the token is the key).
    page = Client(enforce_csrf_checks=True).post(_url(world.patient))
    assert page.status_code == 200
    assert "Reminders stopped" in page.content.decode()
    world.patient.refresh_from_db()
    assert not world.patient.reminder_consent and world.patient.reminder_consent_at is None
    assert world.patient.reminder_opt_out_at is not None
    row.refresh_from_db()
    day = world.patient.reminder_opt_out_at.astimezone(LONDON)
    assert row.status == ReminderStatus.CANCELLED
    assert row.skip_reason == f"Patient opted out on {day:%d/%m/%Y}."
    event = AuditEvent.objects.get(object_type="patients.patient", object_label__contains="opted")
    assert event.actor_id is None and event.actor_label == "system (opt-out link)"
    assert event.organization_id == world.org.pk and event.action == "update"
    assert event.detail == {
        "changes": {"reminder_consent": [True, False]},
        "cancelled_reminders": 1,
    }
    # Later messages are skipped with the reason; the link again says it is done.
    assert reminders.send_due(now=row.due_at).sent == 0
    again = Client().post(_url(world.patient))
    assert "You asked Alpha Aesthetics not to send you reminders on" in again.content.decode()
    assert AuditEvent.objects.filter(object_label__contains="opted").count() == 1
    get_again = Client().get(_url(world.patient))
    assert "You have already asked" in get_again.content.decode()


def test_a_mail_clients_one_click_opt_out_works(world):
    _planned(world)
    page = Client(enforce_csrf_checks=True).post(
        _url(world.patient), {"List-Unsubscribe": "One-Click"}
    )
    assert page.status_code == 200
    world.patient.refresh_from_db()
    assert not world.patient.reminder_consent


@pytest.mark.parametrize(
    "token",
    ["nonsense", "1.AAAAAAAAAAAAAAAA", "1.", "", "zzzzzzzzzzzzzz.AAAAAAAAAAAAAAAA"],
)
def test_a_bad_or_altered_link_gets_a_polite_page_and_no_data(world, token):
    _planned(world)
    url = f"/scheduling/opt-out/{token}/" if token else "/scheduling/opt-out/x/"
    for method in ("get", "post"):
        page = getattr(Client(), method)(url)
        assert page.status_code == 404
        text = page.content.decode()
        assert "This link is not recognised" in text
        assert "Alpha" not in text and "Lovelace" not in text
    world.patient.refresh_from_db()
    assert world.patient.reminder_consent


def test_a_token_for_one_patient_cannot_be_changed_into_anothers(world):
    good = messages.opt_out_token(world.patient)
    value, signature = good.split(".")
    other = messages.opt_out_token(world.outsider_patient).split(".")[0]
    assert messages.patient_pk_from_token(good) == world.patient.pk
    assert messages.patient_pk_from_token(f"{other}.{signature}") is None
    altered = signature[:-1] + ("x" if signature[-1] != "x" else "y")
    assert messages.patient_pk_from_token(f"{value}.{altered}") is None


def test_a_link_signed_with_a_retired_key_still_works(world, settings):
    token = messages.opt_out_token(world.patient)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-installation-0123456789"
    assert messages.patient_pk_from_token(token) == world.patient.pk
    settings.SECRET_KEY_FALLBACKS = []
    assert messages.patient_pk_from_token(token) is None


@pytest.mark.browser
def test_the_opt_out_pages_fit_a_tablet(live_world, live_server, page):
    agree(live_world.patient)
    page.goto(f"{live_server.url}{_url(live_world.patient)}")
    assert_fits_and_touchable(page)
    shot(page, "opt-out-ask")
    page.get_by_role("button", name="Yes, stop sending me reminders").click()
    page.get_by_role("heading", name="Reminders stopped").wait_for()
    assert_fits_and_touchable(page)
    shot(page, "opt-out-done")
    live_world.patient.refresh_from_db()
    assert not live_world.patient.reminder_consent
