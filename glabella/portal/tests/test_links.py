"""Links to the patient's own pages: made, sent, shown, used, expired, revoked, rate-limited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import segno
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from glabella.audit.models import AuditEvent
from glabella.mail_testing import smtp_server
from glabella.portal import services
from glabella.portal.models import PatientLink, SentBy
from glabella.portal.tests.conftest import qr_link
from glabella.scheduling import sms

LINK = re.compile(r"https?://[^\s]+/my/([A-Za-z0-9_-]{40,64})/")


def _home(token: str, client: Client | None = None, **extra):
    return (client or Client()).get(reverse("portal:home", args=[token]), **extra)


# --- the link itself -------------------------------------------------------------------------


def test_a_new_link_opens_the_patients_pages_and_only_its_hash_is_stored(world):
    new = qr_link(world)
    link = PatientLink.objects.get(pk=new.link.pk)
    assert len(new.token) >= 43  # 32 random bytes
    assert link.token_hash == services.hash_token(new.token)
    assert new.token not in link.token_hash
    assert not PatientLink.objects.filter(token_hash=new.token).exists()
    assert link.expires_at - link.created_at == timedelta(days=14)
    assert link.created_by == world.users["front_desk"]
    response = _home(new.token)
    assert response.status_code == 200
    assert "Hello Ada" in response.content.decode()


def test_the_link_lasts_the_configured_number_of_days(world, settings):
    settings.GLABELLA_PORTAL_LINK_DAYS = 3
    link = qr_link(world).link
    assert link.expires_at - link.created_at == timedelta(days=3)


def _polite(response) -> str:
    text = response.content.decode()
    assert "This link does not work" in text
    for private in ("Ada", "Lovelace", "Alpha", "units", "Botox"):
        assert private not in text, private
    return text


def test_unknown_expired_and_revoked_links_get_the_same_polite_page_with_no_data(world):
    expired = qr_link(world)
    PatientLink.objects.filter(pk=expired.link.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked = qr_link(world)
    services.revoke_link(world.actor("front_desk"), revoked.link)
    unknown = "A" * 43
    pages = []
    for token in (unknown, expired.token, revoked.token, "short"):
        response = _home(token)
        assert response.status_code == 404
        pages.append(_polite(response))
    # Same page whatever the reason (the CSRF-free page has no per-request content).
    assert len(set(pages)) == 1


def test_an_expired_link_refuses_the_diary_too_and_writes_nothing(world):
    from glabella.outcomes.models import DiaryEntry

    new = qr_link(world)
    PatientLink.objects.filter(pk=new.link.pk).update(expires_at=timezone.now())
    response = Client().post(
        reverse("portal:diary", args=[new.token]),
        {"day": timezone.localdate().isoformat(), "headache": "yes"},
    )
    assert response.status_code == 404
    assert not DiaryEntry.objects.exists()


def test_a_link_stops_working_when_the_patient_is_not_in_its_organization(world):
    new = qr_link(world)
    PatientLink.objects.filter(pk=new.link.pk).update(organization=world.outsider_org)
    assert _home(new.token).status_code == 404


def test_revoking_is_audited_once_and_the_link_is_kept(world):
    new = qr_link(world)
    actor = world.actor("front_desk")
    before = AuditEvent.objects.count()
    services.revoke_link(actor, new.link)
    services.revoke_link(actor, new.link)  # again: nothing changes
    link = PatientLink.objects.get(pk=new.link.pk)
    assert link.revoked_at is not None and link.revoked_by == world.users["front_desk"]
    events = AuditEvent.objects.filter(object_type="portal.patientlink", object_id=str(link.pk))
    assert AuditEvent.objects.count() == before + 1
    assert events.filter(action="update").get().detail["revoked"] is True


def test_creating_a_link_is_audited_without_the_secret(world):
    new = qr_link(world)
    event = AuditEvent.objects.get(
        object_type="portal.patientlink", object_id=str(new.link.pk), action="create"
    )
    assert event.detail["sent_by"] == "qr"
    assert new.token not in str(event.detail) and new.token not in event.object_label


def test_services_refuse_other_organizations_and_roles_without_the_permission(world):
    with pytest.raises(PermissionError):
        services.show_link(world.actor("front_desk"), world.outsider_patient)
    with pytest.raises(PermissionDenied):
        services.show_link(world.actor("auditor"), world.patient)
    new = qr_link(world)
    with pytest.raises(PermissionError):
        services.revoke_link(world.outsider_actor(), new.link)
    with pytest.raises(PermissionDenied):
        services.revoke_link(world.actor("auditor"), new.link)
    assert PatientLink.objects.get(pk=new.link.pk).revoked_at is None


def test_using_a_link_notes_when_it_was_last_used_and_audits_the_opening(world):
    new = qr_link(world)
    assert new.link.last_used_at is None
    _home(new.token, REMOTE_ADDR="203.0.113.9")
    _home(new.token)
    link = PatientLink.objects.get(pk=new.link.pk)
    assert link.last_used_at is not None
    opened = AuditEvent.objects.filter(
        object_type="patients.patient", object_id=str(world.patient.pk), detail__link=link.pk
    )
    assert opened.count() == 1  # not once per page: at most every five minutes
    event = opened.get()
    assert event.actor is None and event.actor_label == f"system (patient link {link.pk})"
    assert event.ip == "203.0.113.9"


def test_link_pages_send_no_referrer_are_not_cached_and_not_indexed(world):
    new = qr_link(world)
    for response in (_home(new.token), _home("B" * 43)):
        assert response["Referrer-Policy"] == "no-referrer"
        assert response["Cache-Control"] == "no-store"
        assert "noindex" in response["X-Robots-Tag"]


def test_refusals_under_a_link_are_not_written_to_the_log(world, caplog):
    new = qr_link(world)
    with caplog.at_level("WARNING", logger="django.request"):
        assert _home("C" * 43).status_code == 404
        assert Client().post(reverse("portal:home", args=[new.token])).status_code == 405
        assert Client().get(f"/my/{new.token}/no-such-page/").status_code == 404
    assert new.token not in caplog.text and "C" * 43 not in caplog.text


# --- rate limit ------------------------------------------------------------------------------


def test_too_many_requests_on_one_link_get_a_polite_429(world, settings):
    settings.GLABELLA_PORTAL_RATE_PER_MINUTE = 3
    new = qr_link(world)
    for n in range(3):
        assert _home(new.token, REMOTE_ADDR=f"198.51.100.{n}").status_code == 200
    response = _home(new.token, REMOTE_ADDR="198.51.100.77")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    text = response.content.decode()
    assert "Please wait a minute" in text and "Ada" not in text


def test_guessing_links_from_one_address_is_rate_limited(world, settings):
    settings.GLABELLA_PORTAL_RATE_PER_MINUTE = 3
    new = qr_link(world)
    for n in range(3):
        assert _home(f"{n}" * 43, REMOTE_ADDR="192.0.2.5").status_code == 404
    # Even the right link is refused from that address for the rest of the minute.
    assert _home(new.token, REMOTE_ADDR="192.0.2.5").status_code == 429
    assert _home(new.token, REMOTE_ADDR="192.0.2.6").status_code == 200


# --- sending ---------------------------------------------------------------------------------


def test_sending_by_email_delivers_a_working_link_over_smtp(world, settings):
    with smtp_server(settings, "clinic@alpha.test") as (inbox, _port):
        new = services.send_link(world.actor("front_desk"), world.patient, SentBy.EMAIL)
    [message] = inbox.to("ada@example.org")
    body = message.get_content()
    token = LINK.search(body).group(1)
    assert token == new.token
    assert "Alpha Central" in message["Subject"]
    assert "Hello Ada" in body and "Keep it to yourself" in body
    link = PatientLink.objects.get(pk=new.link.pk)
    assert (link.sent_by, link.sent_to) == ("email", "ada@example.org")
    response = _home(token)
    assert response.status_code == 200 and "Hello Ada" in response.content.decode()


def test_an_email_the_server_refuses_leaves_no_link(world, settings):
    with smtp_server(settings, "clinic@alpha.test") as (inbox, _port):
        inbox.refuse.add("ada@example.org")
        with pytest.raises(services.LinkRefused, match="could not be sent"):
            services.send_link(world.actor("front_desk"), world.patient, SentBy.EMAIL)
    assert not PatientLink.objects.exists()


def test_a_patient_without_an_email_address_is_refused_in_words(world):
    world.patient.email = ""
    world.patient.save(update_fields=["email"])
    with pytest.raises(services.LinkRefused, match="has no e-mail address"):
        services.send_link(world.actor("front_desk"), world.patient, SentBy.EMAIL)
    assert not PatientLink.objects.exists()


def test_sending_by_sms_goes_through_the_provider_with_a_working_link(world, settings):
    settings.GLABELLA_SMS_PROVIDER = "console"
    outbox = sms.console().outbox
    outbox.clear()
    new = services.send_link(world.actor("injector"), world.patient, SentBy.SMS)
    [message] = outbox
    assert message["to"] == "07700900123"
    token = LINK.search(message["body"]).group(1)
    assert token == new.token
    assert len(message["body"]) < 320
    assert PatientLink.objects.get(pk=new.link.pk).sent_to == "07700900123"
    assert _home(token).status_code == 200
    outbox.clear()


class RefusingGateway:
    def send(self, to: str, body: str, idempotency_key: str) -> str:
        raise sms.SmsError("The gateway said the number is not a mobile.", retry_safe=True)


def test_an_sms_the_gateway_refuses_leaves_no_link_and_says_why(world, settings):
    settings.GLABELLA_SMS_PROVIDER = f"{__name__}.RefusingGateway"
    with pytest.raises(services.LinkRefused, match="not a mobile"):
        services.send_link(world.actor("front_desk"), world.patient, SentBy.SMS)
    assert not PatientLink.objects.exists()


def test_a_patient_without_a_phone_number_is_refused_for_sms(world):
    world.patient.phone = ""
    world.patient.save(update_fields=["phone"])
    with pytest.raises(services.LinkRefused, match="has no phone number"):
        services.send_link(world.actor("front_desk"), world.patient, SentBy.SMS)
    assert not PatientLink.objects.exists()


# --- the QR code ------------------------------------------------------------------------------


def _svg_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules drawn by segno's SVG path (rows of horizontal runs)."""
    d = re.search(r'class="portal-qr-line"[^>]* d="([^"]+)"', svg) or re.search(
        r'd="(M[^"]+)"[^>]*class="portal-qr-line"', svg
    )
    assert d, svg[:300]
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for op, a, b in re.findall(r"([MmHhVv])(-?[\d.]+)(?:[ ,](-?[\d.]+))?", d.group(1)):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        elif op == "h":
            for i in range(int(float(a))):
                dark.add((int(x) + i, int(y)))
            x += float(a)
    return dark


def test_the_qr_code_encodes_the_link(world):
    url = "http://testserver" + qr_link(world).path
    svg = services.qr_svg(url)
    assert "<script" not in svg and "http" not in svg.split("<title>")[0].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    expected = segno.make(url, error="m", micro=False)
    want = {
        (x + 4, y + 4)
        for y, row in enumerate(expected.matrix)
        for x, value in enumerate(row)
        if value
    }
    assert _svg_modules(svg) == want


def test_patient_pages_need_no_csrf_cookie_but_the_staff_page_does(world):
    from glabella.outcomes.models import DiaryEntry

    new = qr_link(world)
    patient = Client(enforce_csrf_checks=True)
    response = patient.post(
        reverse("portal:diary", args=[new.token]),
        {"day": services.today_for(world.patient).isoformat(), "headache": "no"},
        HTTP_ORIGIN="null",  # what browsers send under Referrer-Policy: no-referrer
    )
    assert response.status_code == 302
    assert DiaryEntry.objects.count() == 1
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(world.users["front_desk"])
    refused = staff.post(reverse("portal:manage", args=[world.patient.pk]), {"how": "qr"})
    assert refused.status_code == 403
    assert PatientLink.objects.count() == 1
