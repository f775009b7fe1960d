"""The reminder log (failed and uncertain first, filters, Resend) and the owner's message wording
pages (placeholders checked, preview, back to the standard wording)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import count

import pytest
from django.urls import reverse

from glabella.accounts.roles import Role
from glabella.audit.models import AuditEvent
from glabella.scheduling import messages, reminders
from glabella.scheduling.models import MessageTemplate, Reminder, ReminderStatus
from glabella.scheduling.tests.conftest import LONDON
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

LOG = reverse("scheduling:messages")
WORDING = reverse("scheduling:message_templates")
_keys = count(1)


def _row(world, status: str, *, kind="reminder", channel="email", due=None, patient=None, **kw):
    due = due or datetime(2026, 3, 10, 9, 0, tzinfo=LONDON)
    patient = patient or world.patient
    return Reminder.objects.create(
        organization_id=patient.organization_id,
        clinic=world.clinic if patient.organization_id == world.org.pk else None,
        patient=patient,
        kind=kind,
        channel=channel,
        key=f"test:{next(_keys)}",
        due_at=due,
        next_attempt_at=due,
        status=status,
        **kw,
    )


def _log_order(html: str) -> list[str]:
    return re.findall(r'<tr class="msg-([a-z]+)">', html)


def test_the_log_lists_failed_and_uncertain_first_with_their_reasons(world):
    _row(world, "sent", due=datetime(2026, 3, 12, 9, 0, tzinfo=LONDON), to_address="ada@x.org")
    _row(world, "failed", last_error="The mail server refused the address ada@x.org.")
    _row(world, "uncertain", last_error=reminders.UNCERTAIN_TEXT)
    _row(world, "skipped", skip_reason="Patient has not agreed to reminders.")
    _row(world, "pending", due=datetime(2026, 3, 20, 9, 0, tzinfo=LONDON))
    _row(world, "failed", patient=world.outsider_patient, last_error="theirs")

    page = world.client(Role.FRONT_DESK).get(LOG)
    assert page.status_code == 200
    html = page.content.decode()
    assert _log_order(html) == ["uncertain", "failed", "pending", "sent", "skipped"]
    assert "1 failed" in html and "1 may not have gone out" in html
    assert "The mail server refused the address ada@x.org." in html
    assert "it may have gone out — check before resending" in html
    assert "Patient has not agreed to reminders." in html
    assert "10/03/2026 09:00" in html and "Ada Lovelace" in html
    assert "theirs" not in html  # another organization's messages never show
    assert html.count(">Resend</button>") == 2
    # Viewing the log is audited like any list of patients.
    assert AuditEvent.objects.filter(
        action="view", object_type="patients.patient", object_label__startswith="message log"
    ).exists()


def test_the_log_warns_when_text_messages_only_go_to_the_console(world, settings):
    settings.GLABELLA_SMS_PROVIDER = "console"
    client = world.client(Role.FRONT_DESK)
    assert "Text messages are not really sent" in client.get(LOG).content.decode()
    settings.GLABELLA_SMS_PROVIDER = "http"
    assert "Text messages are not really sent" not in client.get(LOG).content.decode()


def test_an_auditor_reads_the_log_but_cannot_resend(world):
    failed = _row(world, "failed", last_error="refused")
    auditor = world.client(Role.AUDITOR)
    html = auditor.get(LOG).content.decode()
    assert "refused" in html and ">Resend</button>" not in html
    assert auditor.post(reverse("scheduling:message_resend", args=[failed.pk])).status_code == 403
    assert Reminder.objects.count() == 1


def test_filters_by_status_kind_channel_and_date(world):
    _row(world, "sent", kind="recall", channel="sms", due=datetime(2026, 3, 1, 9, tzinfo=LONDON))
    _row(
        world, "sent", kind="reminder", channel="email", due=datetime(2026, 3, 5, 9, tzinfo=LONDON)
    )
    _row(world, "failed", kind="confirmation", due=datetime(2026, 3, 9, 23, 30, tzinfo=LONDON))
    client = world.client(Role.FRONT_DESK)

    def shown(**query):
        return _log_order(client.get(LOG, query).content.decode())

    assert shown(status="failed") == ["failed"]
    assert shown(kind="recall") == ["sent"] and shown(channel="sms") == ["sent"]
    assert shown(kind="reminder", channel="sms") == []
    assert shown(day_from="2026-03-05") == ["failed", "sent"]
    assert shown(day_from="2026-03-09", day_to="2026-03-09") == ["failed"]  # London's 9 March
    assert shown(clinic=str(world.clinic.pk)) == ["failed", "sent", "sent"]
    bad = client.get(LOG, {"day_from": "2026-03-09", "day_to": "2026-03-01"}).content.decode()
    assert "The end date is before the start date." in bad


def test_resend_makes_a_new_message_once_and_is_audited(world):
    failed = _row(world, "failed", last_error="refused", appointment=None)
    client = world.client(Role.FRONT_DESK)
    url = reverse("scheduling:message_resend", args=[failed.pk])
    page = client.post(url, {"next": f"{LOG}?status=failed"})
    assert page.status_code == 302 and page["Location"] == f"{LOG}?status=failed"
    fresh = Reminder.objects.get(key=f"resend:{failed.pk}")
    assert fresh.status == ReminderStatus.PENDING and fresh.attempts == 0
    assert (fresh.patient_id, fresh.kind, fresh.channel) == (
        failed.patient_id,
        failed.kind,
        failed.channel,
    )
    event = AuditEvent.objects.get(object_type="scheduling.reminder", object_id=str(fresh.pk))
    assert event.action == "create" and event.actor_id == world.users[Role.FRONT_DESK].pk
    assert event.detail == {"resend_of": failed.pk, "previous_status": "failed"}
    html = client.get(LOG).content.decode()
    assert "Sent again as a new message." in html and ">Resend</button>" not in html

    again = client.post(url, follow=True).content.decode()
    assert "This message has already been sent again." in again
    assert Reminder.objects.filter(key__startswith="resend:").count() == 1


def test_only_failed_or_uncertain_messages_can_be_resent(world):
    sent = _row(world, "sent")
    page = world.client(Role.FRONT_DESK).post(
        reverse("scheduling:message_resend", args=[sent.pk]), follow=True
    )
    assert "Only a failed message or one that may not have gone out" in page.content.decode()
    assert Reminder.objects.count() == 1


def test_another_organizations_message_is_not_found(world):
    theirs = _row(world, "failed", patient=world.outsider_patient)
    client = world.client(Role.OWNER)
    assert client.post(reverse("scheduling:message_resend", args=[theirs.pk])).status_code == 404
    assert Reminder.objects.count() == 1


def test_a_resent_uncertain_message_goes_out_through_the_worker(world):
    from django.core import mail

    from glabella.scheduling.tests.reminder_helpers import agree

    agree(world.patient)
    uncertain = _row(world, "uncertain", kind="recall", last_error=reminders.UNCERTAIN_TEXT)
    world.client(Role.FRONT_DESK).post(reverse("scheduling:message_resend", args=[uncertain.pk]))
    fresh = Reminder.objects.get(key=f"resend:{uncertain.pk}")
    result = reminders.send_due(now=fresh.next_attempt_at + timedelta(seconds=1))
    assert result.sent == 1 and len(mail.outbox) == 1
    uncertain.refresh_from_db()
    assert uncertain.status == ReminderStatus.UNCERTAIN  # the old row keeps its history


# --- the clinic's wording ---------------------------------------------------------------------


def _edit(kind="reminder", channel="email"):
    return reverse("scheduling:message_template", args=[kind, channel])


def test_only_the_owner_edits_the_wording(world):
    assert world.client(Role.OWNER).get(WORDING).status_code == 200
    for role in (Role.FRONT_DESK, Role.INJECTOR, Role.AUDITOR):
        assert world.client(role).get(WORDING).status_code == 403
        assert world.client(role).post(_edit(), {"body": "x"}).status_code == 403
    assert world.client(Role.OWNER).get(_edit("nonsense", "email")).status_code == 404
    theirs = world.outsider_org.clinics.get()
    assert world.client(Role.OWNER).get(WORDING, {"clinic": theirs.pk}).status_code == 404


def test_the_wording_page_shows_the_standard_text_and_a_preview(world):
    page = world.client(Role.OWNER).get(_edit()).content.decode()
    assert "{patient_first_name}" in page and "the patient&#x27;s given name" in page
    assert "Reminder: your appointment at Alpha Central on" in page  # preview subject
    assert "Dear Sam," in page  # made-up patient


def test_unknown_placeholders_and_stray_brackets_are_refused_with_a_clear_message(world):
    client = world.client(Role.OWNER)
    page = client.post(
        _edit(),
        {
            "subject": "Hi {patient.given_name}",
            "body": "See you {date} at {time}, {product} {units}",
            "action": "save",
        },
    )
    html = page.content.decode()
    assert page.status_code == 200 and "Nothing was saved" in html
    assert "{patient.given_name} is not a placeholder this message can use." in html
    assert "{product}, {units} are not placeholders this message can use." in html
    assert "You can use: {patient_first_name}, {patient_name}, {clinic_name}" in html
    stray = client.post(_edit(), {"subject": "x", "body": "See you {date", "action": "save"})
    assert "Curly brackets { } are only for placeholders" in stray.content.decode()
    recall = client.post(_edit("recall", "sms"), {"body": "Due {date}", "action": "save"})
    assert "{date} is not a placeholder this message can use." in recall.content.decode()
    assert not MessageTemplate.objects.exists()


def test_a_text_message_must_stay_short_and_has_no_subject(world):
    client = world.client(Role.OWNER)
    long = client.post(_edit("reminder", "sms"), {"body": "{clinic_name} " + "x" * 300})
    assert "Text messages must stay short" in long.content.decode()
    assert not MessageTemplate.objects.exists()


def test_preview_then_save_then_back_to_standard(world):
    client = world.client(Role.OWNER)
    form = {"subject": "Soon: {weekday}", "body": "Hello {patient_first_name}, {date} {time}."}
    preview = client.post(_edit(), {**form, "action": "preview"}).content.decode()
    assert 'data-preview="subject">Soon: Monday</span>' in preview
    assert re.search(r"Hello Sam, \d\d/\d\d/\d{4} 10:30\.", preview)
    assert "/scheduling/opt-out/" in preview
    assert not MessageTemplate.objects.exists()  # a preview saves nothing

    saved = client.post(_edit(), {**form, "action": "save"})
    assert saved.status_code == 302
    template = MessageTemplate.objects.get()
    assert (template.subject, template.body) == (form["subject"], form["body"])
    assert template.updated_by == world.users[Role.OWNER]
    event = AuditEvent.objects.get(object_type="scheduling.messagetemplate")
    assert event.action == "create" and event.detail["after"] == {
        "subject": form["subject"],
        "body": form["body"],
    }
    listing = client.get(WORDING).content.decode()
    assert "Your wording" in listing and "Hello {patient_first_name}" in listing
    words = messages.wording(world.clinic, "reminder", "email")
    assert words.custom and words.body == form["body"]

    client.post(_edit(), {"action": "reset"})
    assert not MessageTemplate.objects.exists()
    assert AuditEvent.objects.filter(
        object_type="scheduling.messagetemplate", object_label__contains="standard wording"
    ).exists()


@pytest.mark.browser
def test_the_log_and_the_wording_pages_fit_a_tablet(live_world, live_server, page):
    from glabella.conftest import PASSWORD

    world = live_world
    _row(world, "failed", last_error="The mail server refused the address a-very-long@x.org.")
    _row(world, "uncertain", last_error=reminders.UNCERTAIN_TEXT)
    _row(world, "sent", to_address="someone.with.a.long.address@example.org")
    login(page, live_server.url, "owner@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}{LOG}")
    assert_fits_and_touchable(page)
    shot(page, "messages-log")
    page.get_by_role("button", name="Resend").first.click()
    page.get_by_text("will be sent again at").wait_for()
    page.goto(f"{live_server.url}{_edit()}")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("heading", name="Preview").wait_for()
    assert_fits_and_touchable(page)
    shot(page, "messages-wording")
