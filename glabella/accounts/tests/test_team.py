"""The owner's team page: add, change role, switch off/on, reset two-step, unlock."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from glabella.accounts import mfa, services
from glabella.accounts.models import LoginThrottle, Membership, RecoveryCode, TotpDevice, User
from glabella.accounts.roles import Role
from glabella.audit.models import Action, AuditEvent
from glabella.conftest import PASSWORD

TEAM = reverse("accounts:team")
ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]


def member_url(m: Membership) -> str:
    return reverse("accounts:team_member", args=[m.pk])


def membership(world, role: str) -> Membership:
    return Membership.objects.get(user=world.users[role], clinic=world.clinic)


def stale(client):
    session = client.session
    session[mfa.SESSION_AUTH_AT] = int(time.time()) - 3600
    session.save()
    return client


@pytest.mark.parametrize("role", ["prescriber", "injector", "front_desk", "auditor", "outsider"])
def test_only_owners_see_the_team(world, role):
    client = world.client(role)
    if role == "outsider":
        # The other organization's owner: their own team page, never ours.
        page = client.get(TEAM).content.decode()
        assert "owner@beta.test" in page and "alpha.test" not in page
        assert client.get(member_url(membership(world, "injector"))).status_code == 404
        assert (
            client.post(member_url(membership(world, "injector")), {"do": "deactivate"}).status_code
            == 404
        )
        assert membership(world, "injector").is_active
    else:
        assert client.get(TEAM).status_code == 403
        assert client.get(member_url(membership(world, "injector"))).status_code == 403
        response = client.post(
            member_url(membership(world, "owner")), {"do": "role", "role": "auditor"}
        )
        assert response.status_code == 403
        assert membership(world, "owner").role == Role.OWNER


def test_the_team_page_lists_everyone_with_role_two_step_and_lock(world):
    TotpDevice.objects.filter(user=world.users["injector"]).delete()
    TotpDevice.objects.create(
        user=world.users["injector"], secret=mfa.new_secret(), confirmed_at=timezone.now()
    )
    TotpDevice.objects.filter(user=world.users["auditor"]).delete()
    LoginThrottle.objects.create(
        key="user:front_desk@alpha.test", locked_until=timezone.now() + timedelta(minutes=5)
    )
    page = world.client("owner").get(TEAM).content.decode()
    for role in ROLES:
        assert f"{role}@alpha.test" in page
    assert "Alpha Central" in page
    assert page.count("Locked out of sign-in") == 1
    assert "Set up" in page and "Not set up" in page


def test_change_role_takes_effect_on_the_members_next_request(world):
    injector = world.client("injector")
    assert injector.get(reverse("patients:detail", args=[world.patient.pk])).status_code == 200
    assert (
        "Medical history"
        in injector.get(reverse("patients:detail", args=[world.patient.pk])).content.decode()
    )
    owner = world.client("owner")
    m = membership(world, "injector")
    response = owner.post(member_url(m), {"do": "role", "role": "front_desk"}, follow=True)
    assert "is now Front desk at Alpha Central (was Injector)" in response.content.decode()
    m.refresh_from_db()
    assert m.role == Role.FRONT_DESK
    # The same (already signed-in) session: the next page is the front desk's.
    page = injector.get(reverse("patients:detail", args=[world.patient.pk])).content.decode()
    assert "Medical history" not in page
    assert injector.get(reverse("charting:start", args=[world.patient.pk])).status_code == 403
    event = AuditEvent.objects.filter(
        object_type="accounts.membership", object_id=str(m.pk)
    ).first()
    assert event.action == Action.UPDATE
    assert event.detail["before"] == "injector" and event.detail["after"] == "front_desk"
    assert "changed from Injector to Front desk" in event.object_label


def test_every_change_asks_for_the_password_first(world):
    owner = stale(world.client("owner"))
    m = membership(world, "injector")
    url = member_url(m)
    for do in ("role", "deactivate", "reset_two_step", "unlock"):
        response = owner.post(
            url, {"do": do, "role": "auditor"}, HTTP_REFERER=f"http://testserver{url}"
        )
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:reauth") + "?next=")
    response = owner.post(
        TEAM, {"email": "new@alpha.test", "clinic": world.clinic.pk, "role": "auditor"}
    )
    assert response["Location"].startswith(reverse("accounts:reauth"))
    m.refresh_from_db()
    assert m.role == Role.INJECTOR and m.is_active
    assert not User.objects.filter(email="new@alpha.test").exists()
    # htmx: 401 + HX-Redirect
    response = owner.post(url, {"do": "deactivate"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 401 and "HX-Redirect" in response


def test_the_last_owner_cannot_stop_being_owner(world):
    owner = world.client("owner")
    mine = membership(world, "owner")
    response = owner.post(member_url(mine), {"do": "role", "role": "prescriber"})
    assert response.status_code == 422
    assert "You are the last owner; make someone else owner first." in response.content.decode()
    response = owner.post(member_url(mine), {"do": "deactivate"})
    assert response.status_code == 422
    assert "You are the last owner" in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == Role.OWNER and mine.is_active
    # With a second owner, the first may step down (and is sent away from the owners' page).
    other = membership(world, "prescriber")
    owner.post(member_url(other), {"do": "role", "role": "owner"})
    response = owner.post(member_url(mine), {"do": "role", "role": "prescriber"})
    assert response.status_code == 302 and response["Location"] == reverse("web:dashboard")
    mine.refresh_from_db()
    assert mine.role == Role.PRESCRIBER
    assert owner.get(TEAM).status_code == 403


def test_an_inactive_owner_does_not_count_as_the_other_owner(world):
    actor = world.actor("owner")
    second = membership(world, "prescriber")
    services.change_role(actor, second, Role.OWNER)
    services.set_member_active(actor, second, False)
    with pytest.raises(ValidationError, match="last owner"):
        services.change_role(actor, membership(world, "owner"), Role.AUDITOR)


def test_deactivate_and_reactivate(world):
    owner = world.client("owner")
    desk = world.client("front_desk")
    m = membership(world, "front_desk")
    response = owner.post(member_url(m), {"do": "deactivate"}, follow=True)
    assert "is switched off at Alpha Central" in response.content.decode()
    assert desk.get(reverse("patients:list")).status_code == 403
    event = AuditEvent.objects.filter(
        object_type="accounts.membership", object_id=str(m.pk)
    ).first()
    assert event.detail == {
        "change": "active",
        "member": "front_desk@alpha.test",
        "clinic": "Alpha Central",
        "before": True,
        "after": False,
    }
    owner.post(member_url(m), {"do": "reactivate"})
    assert desk.get(reverse("patients:list")).status_code == 200


def test_add_a_new_member_with_a_temporary_password(world, client):
    owner = world.client("owner")
    response = owner.post(
        TEAM,
        {
            "email": "Grace@Alpha.test",
            "first_name": "Grace",
            "last_name": "Hopper",
            "clinic": world.clinic.pk,
            "role": "injector",
        },
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    m = Membership.objects.get(user__email="grace@alpha.test")
    assert m.role == Role.INJECTOR and m.organization == world.org
    password = response.context["added"]["password"]
    assert password in page and len(password) >= 20
    assert m.user.check_password(password)
    assert AuditEvent.objects.filter(
        action=Action.CREATE, object_type="accounts.membership", object_id=str(m.pk)
    ).exists()
    assert password not in str(list(AuditEvent.objects.values("detail", "object_label")))


def test_a_new_member_must_choose_their_own_password_before_anything_else(world, client):
    owner = world.client("owner")
    response = owner.post(
        TEAM,
        {
            "email": "ada.b@alpha.test",
            "first_name": "Ada",
            "last_name": "Byron",
            "clinic": world.clinic.pk,
            "role": "front_desk",  # no second step: straight to the password
        },
    )
    temporary = response.context["added"]["password"]
    user = User.objects.get(email="ada.b@alpha.test")
    assert user.must_change_password
    assert (
        client.post(
            reverse("accounts:login"), {"username": user.email, "password": temporary}
        ).status_code
        == 302
    )
    change = reverse("accounts:password_change")
    patients = reverse("patients:list")
    # Every page leads to the password change, keeping where they were going ...
    response = client.get(patients)
    assert response.status_code == 302
    assert response["Location"].startswith(change) and "next=" in response["Location"]
    # ... an htmx request sends the whole page there ...
    response = client.get(patients, HTTP_HX_REQUEST="true")
    assert response.status_code == 401 and response["HX-Redirect"] == change
    # ... and a POST is refused the same way (nothing written).
    assert client.post(reverse("patients:new"), {"given_name": "X"}).status_code == 302
    page = client.get(change).content.decode()
    assert "temporary password you were given" in page
    mine = "a walk by the river at dawn"
    response = client.post(
        change, {"old_password": temporary, "new_password1": mine, "new_password2": mine}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.must_change_password and user.check_password(mine)
    assert client.get(patients).status_code == 200
    assert "temporary password" not in client.get(change).content.decode()


def test_an_existing_account_added_to_a_clinic_keeps_its_password(world):
    owner = world.actor("owner")
    other = services.add_clinic(owner, name="Alpha North", timezone="Europe/London")
    services.add_member(
        owner,
        email=world.users["injector"].email,
        clinic=other,
        role="injector",
        password="",
        temporary=True,
    )
    world.users["injector"].refresh_from_db()
    assert not world.users["injector"].must_change_password


def test_adding_refuses_someone_of_another_organization_and_a_double(world):
    owner = world.client("owner")
    response = owner.post(
        TEAM, {"email": "owner@beta.test", "clinic": world.clinic.pk, "role": "auditor"}
    )
    assert response.status_code == 422
    assert "works for another organization" in response.content.decode()
    response = owner.post(
        TEAM, {"email": "injector@alpha.test", "clinic": world.clinic.pk, "role": "auditor"}
    )
    assert response.status_code == 422
    assert "already works at Alpha Central" in response.content.decode()
    # Another organization's clinic is not a choice.
    other_clinic = world.outsider_org.clinics.get()
    response = owner.post(
        TEAM, {"email": "x@alpha.test", "clinic": other_clinic.pk, "role": "auditor"}
    )
    assert response.status_code == 422
    assert not User.objects.filter(email="x@alpha.test").exists()


def test_reset_two_step_and_unlock(world):
    injector = world.users["injector"]
    TotpDevice.objects.filter(user=injector).delete()
    TotpDevice.objects.create(user=injector, secret=mfa.new_secret(), confirmed_at=timezone.now())
    mfa.new_recovery_codes(injector)
    LoginThrottle.objects.create(
        key="user:injector@alpha.test",
        failures=0,
        lockouts=1,
        locked_until=timezone.now() + timedelta(minutes=10),
    )
    owner = world.client("owner")
    m = membership(world, "injector")
    page = owner.get(member_url(m)).content.decode()
    assert "Locked after too many wrong passwords" in page
    assert "Reset two-step sign-in" in page
    response = owner.post(member_url(m), {"do": "reset_two_step"}, follow=True)
    assert "Two-step sign-in of injector@alpha.test reset" in response.content.decode()
    assert not TotpDevice.objects.filter(user=injector).exists()
    assert not RecoveryCode.objects.filter(user=injector).exists()
    response = owner.post(member_url(m), {"do": "unlock"}, follow=True)
    assert "can sign in again now" in response.content.decode()
    assert not LoginThrottle.objects.filter(
        key="user:injector@alpha.test", locked_until__gt=timezone.now()
    ).exists()
    assert AuditEvent.objects.filter(detail__change="unlock").exists()
    # And the injector can sign in with the password.
    from django.test import Client

    assert (
        Client()
        .post(reverse("accounts:login"), {"username": "injector@alpha.test", "password": PASSWORD})
        .status_code
        == 302
    )


def test_services_refuse_non_owners_and_other_organizations(world):
    m = membership(world, "injector")
    with pytest.raises(PermissionDenied):
        services.change_role(world.actor("prescriber"), m, Role.OWNER)
    with pytest.raises(ValidationError):
        services.change_role(world.outsider_actor(), m, Role.OWNER)
    with pytest.raises(ValidationError):
        services.set_member_active(world.outsider_actor(), m, False)
    m.refresh_from_db()
    assert m.role == Role.INJECTOR and m.is_active


def test_an_unknown_action_changes_nothing(world):
    owner = world.client("owner")
    m = membership(world, "injector")
    response = owner.post(member_url(m), {"do": "delete"})
    assert response.status_code == 302
    m.refresh_from_db()
    assert m.is_active and m.role == Role.INJECTOR


@pytest.mark.browser
def test_owner_changes_a_role_in_the_browser(live_server, live_world, page):
    from playwright.sync_api import expect

    from glabella.patients.tests.test_break_glass_browser import confirm_if_asked
    from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

    login(page, live_server.url, "owner@alpha.test", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", name="Your team")).to_be_visible()
    assert_fits_and_touchable(page)
    shot(page, "team")
    page.get_by_role("link", name="Manage injector@alpha.test at Alpha Central").click()
    expect(page.locator("#member-role")).to_have_text("Injector")
    assert_fits_and_touchable(page)
    page.locator("#id_role").select_option("prescriber")
    with page.expect_navigation():
        page.get_by_role("button", name="Change role").click()
    if confirm_if_asked(page, "owner@alpha.test"):
        expect(page.get_by_text("then press Change role again")).to_be_visible()
        page.locator("#id_role").select_option("prescriber")
        with page.expect_navigation():
            page.get_by_role("button", name="Change role").click()
    expect(page.get_by_text("is now Prescriber at Alpha Central (was Injector)")).to_be_visible()
    expect(page.locator("#member-role")).to_have_text("Prescriber")
    m = Membership.objects.get(user=live_world.users["injector"], clinic=live_world.clinic)
    assert m.role == Role.PRESCRIBER
