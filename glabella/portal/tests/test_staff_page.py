"""The staff page that gives a patient their link: every role, every URL, another organization."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from glabella.accounts.roles import can
from glabella.audit.models import AuditEvent
from glabella.mail_testing import smtp_server
from glabella.portal import urls
from glabella.portal.models import PatientLink
from glabella.portal.tests.conftest import qr_link

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]
PUBLIC = "public (secret link in the URL)"

URLS: dict[str, str] = {
    "manage": "portal.manage",
    "revoke": "portal.manage",
    "home": PUBLIC,
    "diary": PUBLIC,
    "questionnaires": PUBLIC,
    "questionnaire": PUBLIC,
    "wearing_off": PUBLIC,
    "elsewhere": PUBLIC,
}


def test_the_walk_covers_every_portal_url():
    patterns = urls.urlpatterns
    assert all(isinstance(p, URLPattern) for p in patterns)
    assert sorted(p.name for p in patterns) == sorted(URLS), "add the new URL to URLS here"
    for p in patterns:
        declared = getattr(p.callback, "required_permission", PUBLIC)
        assert declared == URLS[p.name], p.name


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_and_uses_the_link_page_by_its_permission(world, role):
    allowed = can(role, "portal.manage")
    client = world.client(role)
    page = client.get(reverse("portal:manage", args=[world.patient.pk]))
    assert page.status_code == (200 if allowed else 403)
    shown = client.post(reverse("portal:manage", args=[world.patient.pk]), {"how": "qr"})
    assert shown.status_code == (200 if allowed else 403)
    assert PatientLink.objects.count() == (1 if allowed else 0)
    if allowed:
        assert "<svg" in shown.content.decode() and "scan" in shown.content.decode()
        assert shown["Cache-Control"] == "no-store"
    link = qr_link(world)
    revoked = client.post(reverse("portal:revoke", args=[world.patient.pk, link.link.pk]))
    assert revoked.status_code == (302 if allowed else 403)
    link.link.refresh_from_db()
    assert (link.link.revoked_at is not None) == allowed


def test_another_organizations_patient_and_links_are_404_and_nothing_changes(world):
    theirs = qr_link(world)  # a link of Alpha's patient
    outsider = world.client("outsider")
    ours = world.client("owner")
    before = AuditEvent.objects.count()
    assert outsider.get(reverse("portal:manage", args=[world.patient.pk])).status_code == 404
    assert (
        outsider.post(reverse("portal:manage", args=[world.patient.pk]), {"how": "qr"}).status_code
        == 404
    )
    assert (
        outsider.post(reverse("portal:revoke", args=[world.patient.pk, theirs.link.pk])).status_code
        == 404
    )
    # Their own patient's URL with our link's id: still 404.
    assert (
        outsider.post(
            reverse("portal:revoke", args=[world.outsider_patient.pk, theirs.link.pk])
        ).status_code
        == 404
    )
    # And the other way round: our staff on their patient.
    assert ours.get(reverse("portal:manage", args=[world.outsider_patient.pk])).status_code == 404
    theirs.link.refresh_from_db()
    assert theirs.link.revoked_at is None
    assert PatientLink.objects.count() == 1
    assert AuditEvent.objects.count() == before


def test_the_page_lists_links_with_how_they_were_sent_expiry_and_last_use(world):
    used = qr_link(world)
    Client().get(reverse("portal:home", args=[used.token]))
    revoked = qr_link(world)
    client = world.client("front_desk")
    client.post(reverse("portal:revoke", args=[world.patient.pk, revoked.link.pk]))
    text = client.get(reverse("portal:manage", args=[world.patient.pk])).content.decode()
    assert text.count("QR code shown in the clinic") == 2
    assert "Works until" in text and "Last used" in text
    assert "Revoked" in text and "not yet" in text
    assert used.token not in text and revoked.token not in text


def test_sending_by_email_from_the_page_says_where_it_went(world, settings):
    with smtp_server(settings, "clinic@alpha.test") as (inbox, _port):
        response = world.client("front_desk").post(
            reverse("portal:manage", args=[world.patient.pk]), {"how": "email"}, follow=True
        )
    assert response.status_code == 200
    assert "Link sent to Ada Lovelace by e-mail (ada@example.org)" in response.content.decode()
    assert len(inbox.to("ada@example.org")) == 1


def test_sending_to_a_patient_without_an_address_is_refused_in_words(world):
    world.patient.email = ""
    world.patient.save(update_fields=["email"])
    response = world.client("front_desk").post(
        reverse("portal:manage", args=[world.patient.pk]), {"how": "email"}
    )
    assert response.status_code == 422
    assert "Ada Lovelace has no e-mail address" in response.content.decode()
    assert not PatientLink.objects.exists()


def test_an_unknown_way_of_sending_is_refused(world):
    response = world.client("front_desk").post(
        reverse("portal:manage", args=[world.patient.pk]), {"how": "pigeon"}
    )
    assert response.status_code == 422
    assert "Choose how to give the link" in response.content.decode()
    assert not PatientLink.objects.exists()
