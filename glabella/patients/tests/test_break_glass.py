"""Break-glass: the front desk opens a patient's emergency summary, with a reason, for a time."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from glabella.accounts import mfa
from glabella.accounts.actor import Actor
from glabella.accounts.roles import Role
from glabella.accounts.services import add_member
from glabella.audit.models import Action, AuditEvent
from glabella.charting import services as charting
from glabella.conftest import PASSWORD
from glabella.consent import services as consent_services
from glabella.patients import breakglass, services
from glabella.patients.models import BreakGlass
from glabella.testing import signature_png

REASON = "Patient collapsed in the waiting room; paramedics ask what was injected"
CLINICAL = ["owner", "prescriber", "injector", "auditor"]


def urls(world):
    pk = world.patient.pk
    return (
        reverse("patients:break_glass", args=[pk]),
        reverse("patients:emergency_summary", args=[pk]),
    )


def stale(client):
    session = client.session
    session[mfa.SESSION_AUTH_AT] = int(time.time()) - 3600
    session.save()
    return client


@pytest.fixture
def treated(world):
    """Ada: allergic to albumin, on an anticoagulant, one signed glabellar session (5 x 4 U)."""
    actor = world.actor("injector")
    consent_services.ensure_default_templates(world.org)
    consent_services.take_consent(
        actor,
        world.patient,
        "cosmetic",
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )
    session = charting.start_session(
        actor,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    expiry = date.today() + timedelta(days=200)
    session = charting.update_details(
        actor, session, session.version, {"lot_number": "C1234AB", "lot_expiry": expiry}
    )
    charting.sign(actor, session, session.version)
    # Recorded after the treatment (an allergy to albumin would have blocked it).
    services.add_history_item(actor, world.patient, {"kind": "allergy", "code": "albumin"})
    services.add_history_item(actor, world.patient, {"kind": "medication", "code": "anticoagulant"})
    world.lot_expiry = expiry
    return world


def break_glass(world, client=None):
    client = client or world.client("front_desk")
    start, summary = urls(world)
    response = client.post(start, {"reason": REASON})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == summary
    return client


def test_only_the_front_desk_sees_the_button(world):
    detail = reverse("patients:detail", args=[world.patient.pk])
    start, _ = urls(world)
    assert start in world.client("front_desk").get(detail).content.decode()
    for role in CLINICAL:
        assert start not in world.client(role).get(detail).content.decode()


@pytest.mark.parametrize("role", CLINICAL)
def test_other_roles_cannot_break_glass(world, role):
    start, summary = urls(world)
    client = world.client(role)
    assert client.get(start).status_code == 403
    assert client.post(start, {"reason": REASON}).status_code == 403
    assert not BreakGlass.objects.exists()
    # Roles that see clinical data anyway are sent to the patient's page.
    response = client.get(summary)
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:detail", args=[world.patient.pk])


@pytest.mark.parametrize("reason", ["", "help", "1234567890123", "!!!!!!!!!!!!!!"])
def test_a_reason_in_words_is_required(world, reason):
    start, _ = urls(world)
    response = world.client("front_desk").post(start, {"reason": reason})
    assert response.status_code == 422
    assert not BreakGlass.objects.exists()
    if reason:
        assert "Say in a few words why" in response.content.decode()


def test_breaking_glass_asks_for_the_password_first(world):
    start, _ = urls(world)
    client = stale(world.client("front_desk"))
    response = client.post(start, {"reason": REASON}, HTTP_REFERER=f"http://testserver{start}")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:reauth"))
    assert not BreakGlass.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "then press Break glass again" in page


def test_the_summary_shows_what_a_paramedic_needs_and_every_view_is_audited(treated):
    world = treated
    client = break_glass(world)
    access = BreakGlass.objects.get()
    assert access.user == world.users["front_desk"] and access.reason == REASON
    assert access.organization == world.org and access.clinic == world.clinic
    minutes = (access.expires_at - access.started_at).total_seconds() / 60
    assert minutes == 30
    created = AuditEvent.objects.get(object_type="patients.breakglass", action=Action.CREATE)
    assert created.detail["reason"] == REASON and created.actor == world.users["front_desk"]

    _, summary = urls(world)
    response = client.get(summary)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    page = response.content.decode()
    assert REASON in page
    assert "Albumin" in page or "albumin" in page
    assert "Anticoagulant" in page or "anticoagulant" in page
    assert "Botox Cosmetic" in page
    assert "C1234AB" in page and world.lot_expiry.strftime("%d/%m/%Y") in page
    assert "20 U" in page  # 5 x 4 U in total
    assert str(world.users["injector"]) in page
    assert re.search(r"\d+ minutes? left", page)
    client.get(summary)
    views = AuditEvent.objects.filter(
        action=Action.VIEW,
        object_type="patients.patient",
        object_id=str(world.patient.pk),
        actor=world.users["front_desk"],
        detail__break_glass=access.pk,
    )
    assert views.count() == 2


def test_after_expiry_it_is_a_403_in_words(treated):
    world = treated
    client = break_glass(world)
    access = BreakGlass.objects.get()
    access.expires_at = timezone.now() - timedelta(minutes=1)
    access.save()
    views_before = AuditEvent.objects.filter(action=Action.VIEW).count()
    _, summary = urls(world)
    response = client.get(summary)
    assert response.status_code == 403
    page = response.content.decode()
    at = breakglass.clinic_time(access.expires_at, access).strftime("%H:%M")
    assert f"Emergency access to Ada Lovelace's record ended at {at}." in page
    assert "Break glass again if you still need it." in page
    assert "C1234AB" not in page
    assert AuditEvent.objects.filter(action=Action.VIEW).count() == views_before


def test_end_now(treated):
    world = treated
    client = break_glass(world)
    _, summary = urls(world)
    response = client.post(summary, {"do": "end"})
    assert response.status_code == 302
    access = BreakGlass.objects.get()
    assert access.ended_at is not None
    assert client.get(summary).status_code == 403
    assert AuditEvent.objects.filter(
        object_type="patients.breakglass", action=Action.UPDATE, detail__change="ended"
    ).exists()


def test_without_breaking_glass_the_front_desk_gets_403(treated):
    _, summary = urls(treated)
    response = treated.client("front_desk").get(summary)
    assert response.status_code == 403
    assert "C1234AB" not in response.content.decode()


def test_ones_access_is_not_anothers(treated):
    world = treated
    break_glass(world)
    other = add_member(
        world.actor("owner"),
        email="desk2@alpha.test",
        clinic=world.clinic,
        role=Role.FRONT_DESK,
        password=PASSWORD,
    )
    client = world.client("front_desk")
    client.force_login(other.user)
    session = client.session
    mfa.mark_verified(session)
    session.save()
    _, summary = urls(world)
    assert client.get(summary).status_code == 403


def test_the_service_checks_role_and_organization(world):
    with pytest.raises(PermissionDenied):
        breakglass.start(world.actor("injector"), world.patient, REASON)
    desk = world.actor("front_desk")
    with pytest.raises(PermissionDenied):
        breakglass.start(desk, world.outsider_patient, REASON)
    with pytest.raises(ValidationError):
        breakglass.start(desk, world.patient, "  short  ")
    assert not BreakGlass.objects.exists()


def test_the_log_review_and_the_owners_notice(treated):
    world = treated
    break_glass(world)
    client = world.client("front_desk")
    client.get(urls(world)[1])
    access = BreakGlass.objects.get()
    log = reverse("patients:break_glass_log")
    owner = world.client("owner")

    dashboard = owner.get(reverse("web:dashboard")).content.decode()
    assert 'id="break-glass-notice"' in dashboard
    assert 'id="nav-break-glass-count">1<' in dashboard

    page = owner.get(log).content.decode()
    assert REASON in page and "LOVELACE, Ada" in page and "front_desk@alpha.test" in page
    assert "looked at 1 time" in page
    assert "1 not reviewed yet" in page
    assert reverse("patients:break_glass_review", args=[access.pk]) in page

    auditor_page = world.client("auditor").get(log).content.decode()
    assert REASON in auditor_page
    assert reverse("patients:break_glass_review", args=[access.pk]) not in auditor_page
    for role in ("prescriber", "injector", "front_desk"):
        assert world.client(role).get(log).status_code == 403

    review = reverse("patients:break_glass_review", args=[access.pk])
    for role in ("auditor", "front_desk", "prescriber"):
        assert world.client(role).post(review, {"note": "ok"}).status_code == 403
    owner.post(review, {"note": ""})
    access.refresh_from_db()
    assert access.reviewed_at is None

    response = owner.post(review, {"note": "Real emergency, ambulance called."}, follow=True)
    assert "reviewed" in response.content.decode()
    access.refresh_from_db()
    assert access.reviewed_by == world.users["owner"]
    assert access.review_note == "Real emergency, ambulance called."
    assert AuditEvent.objects.filter(
        object_type="patients.breakglass", detail__change="reviewed"
    ).exists()
    response = owner.post(review, {"note": "again"}, follow=True)
    assert "Already reviewed" in response.content.decode()

    dashboard = owner.get(reverse("web:dashboard")).content.decode()
    assert 'id="break-glass-notice"' not in dashboard
    assert "nav-break-glass-count" not in dashboard


def test_the_log_shows_only_this_organizations_accesses(world):
    clinic = world.outsider_org.clinics.get()
    desk = add_member(
        Actor(world.outsider_org, world.outsider, clinic, Role.OWNER),
        email="desk@beta.test",
        clinic=clinic,
        role=Role.FRONT_DESK,
        password=PASSWORD,
    )
    breakglass.start(
        Actor(world.outsider_org, desk.user, clinic, Role.FRONT_DESK),
        world.outsider_patient,
        "their reason, not ours",
    )
    page = world.client("owner").get(reverse("patients:break_glass_log")).content.decode()
    assert "their reason, not ours" not in page
    assert "Nobody has broken the glass" in page
    assert breakglass.unreviewed_count(world.org) == 0
