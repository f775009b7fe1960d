"""Two-step sign-in: TOTP (replay, window), recovery codes, the gate for half-signed-in
sessions, setup, regeneration, reset by an owner, audit."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from glabella.accounts import mfa
from glabella.accounts.models import RecoveryCode, TotpDevice
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD, TOTP_SECRET, totp_code


def _code_at(step: int, secret: str = TOTP_SECRET) -> str:
    return pyotp.TOTP(secret, interval=mfa.STEP_SECONDS).at(step * mfa.STEP_SECONDS)


def _password_step(email: str) -> tuple[Client, str]:
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]
    return client, response["Location"]


# --- TOTP ------------------------------------------------------------------------------------


def test_totp_accepts_the_current_step_and_one_either_side_only(world):
    device = TotpDevice.objects.get(user=world.users["injector"])
    now = time.time()
    step = int(now // mfa.STEP_SECONDS)
    assert not mfa.verify_totp(device, _code_at(step - 2), at=now)
    assert not mfa.verify_totp(device, _code_at(step + 2), at=now)
    assert mfa.verify_totp(device, _code_at(step - 1), at=now)
    assert mfa.verify_totp(device, _code_at(step + 1), at=now)
    assert not mfa.verify_totp(device, "12345", at=now)
    assert not mfa.verify_totp(device, "abcdef", at=now)


def test_a_totp_code_cannot_be_used_twice_nor_an_older_one_after_it(world):
    device = TotpDevice.objects.get(user=world.users["injector"])
    now = time.time()
    step = int(now // mfa.STEP_SECONDS)
    assert mfa.verify_totp(device, _code_at(step), at=now)
    fresh = TotpDevice.objects.get(pk=device.pk)  # as another request would see it
    assert not mfa.verify_totp(fresh, _code_at(step), at=now)  # replay
    assert not mfa.verify_totp(fresh, _code_at(step - 1), at=now)  # older
    assert mfa.verify_totp(fresh, _code_at(step + 1), at=now)


def test_the_same_code_posted_twice_on_the_page_passes_once(world):
    code = totp_code(world.users["injector"])
    first, step_url = _password_step("injector@alpha.test")
    second, _ = _password_step("injector@alpha.test")
    assert first.post(step_url, {"code": code})["Location"] == "/"
    response = second.post(step_url, {"code": code})
    assert response.status_code == 422
    assert "That code is not right" in response.content.decode()


# --- recovery codes --------------------------------------------------------------------------


def test_recovery_codes_work_once_each_and_are_stored_hashed(world):
    user = world.users["prescriber"]
    codes = mfa.new_recovery_codes(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert not stored & set(codes)
    assert mfa.verify_second_factor(user, codes[0].upper()) == "recovery"  # case, dash ignored
    assert mfa.verify_second_factor(user, codes[0]) is None
    assert mfa.verify_second_factor(world.users["injector"], codes[1]) is None  # not theirs
    assert mfa.recovery_codes_left(user) == 9


def test_signing_in_with_a_recovery_code_says_how_many_are_left_and_is_audited(world):
    user = world.users["owner"]
    codes = mfa.new_recovery_codes(user)
    client, step_url = _password_step("owner@alpha.test")
    response = client.post(step_url, {"code": codes[3]}, follow=True)
    assert response.status_code == 200
    assert "you have 9 recovery codes left" in response.content.decode()
    event = AuditEvent.objects.filter(action="login", actor=user).latest("seq")
    assert event.detail == {"two_step": "recovery code used", "left": 9}
    assert codes[3] not in str(event.detail)


# --- the gate --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "prescriber", "injector"])
def test_password_alone_reaches_nothing_but_the_two_step_page(world, role):
    client, step_url = _password_step(f"{role}@alpha.test")
    assert urlsplit(step_url).path == reverse("accounts:mfa_verify")
    pages = [
        reverse("web:dashboard"),
        reverse("patients:list"),
        reverse("patients:detail", args=[world.patient.pk]),
        reverse("accounts:settings"),
        reverse("accounts:password_change"),
        reverse("accounts:mfa_recovery_codes"),
        reverse("audit:log"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert urlsplit(response["Location"]).path == reverse("accounts:mfa_verify"), url
        assert parse_qs(urlsplit(response["Location"]).query)["next"] == [url]
    # A write is refused too, and nothing is created.
    before = world.patient.__class__.objects.count()
    response = client.post(
        reverse("patients:new"),
        {"given_name": "Eve", "family_name": "Sneaky", "date_of_birth": "1990-01-01"},
    )
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == reverse("accounts:mfa_verify")
    assert world.patient.__class__.objects.count() == before
    response = client.post(reverse("accounts:settings"), {"name": "x", "expires": "30"})
    assert urlsplit(response["Location"]).path == reverse("accounts:mfa_verify")
    # htmx: 401 and the whole page goes to the step.
    response = client.get(reverse("patients:list"), {"q": "ada"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith(reverse("accounts:mfa_verify"))
    # The step page itself shows no menu of the app.
    page = client.get(step_url).content.decode()
    assert "Two-step sign-in" in page and 'aria-label="Main"' not in page
    # The health check and sign-out still work.
    assert client.get("/healthz").status_code in (200, 503)
    assert client.post(reverse("accounts:logout")).status_code == 302


def test_after_the_code_the_session_reaches_where_it_was_going(world):
    client, _ = _password_step("prescriber@alpha.test")
    target = reverse("patients:detail", args=[world.patient.pk])
    response = client.get(target)
    step = response["Location"]
    response = client.post(step, {"code": totp_code(world.users["prescriber"])})
    assert response.status_code == 302 and response["Location"] == target
    assert client.get(target).status_code == 200


def test_the_step_refuses_an_outside_next(world):
    client, _ = _password_step("injector@alpha.test")
    url = reverse("accounts:mfa_verify") + "?next=https://evil.example/"
    response = client.post(url, {"code": totp_code(world.users["injector"])})
    assert response["Location"] == "/"


def test_roles_without_the_requirement_sign_in_with_the_password_alone(world):
    client, landing = _password_step("front_desk@alpha.test")
    assert landing == reverse("web:dashboard")
    assert client.get(reverse("patients:list")).status_code == 200


def test_a_member_who_set_up_an_app_must_use_it_whatever_the_role(world):
    TotpDevice.objects.create(
        user=world.users["auditor"], secret=TOTP_SECRET, confirmed_at="2024-01-01T00:00Z"
    )
    _client, landing = _password_step("auditor@alpha.test")
    assert urlsplit(landing).path == reverse("accounts:mfa_verify")


def test_switched_off_for_the_demo_only_the_roles_rule_goes(world, settings):
    settings.GLABELLA_MFA_REQUIRED = False
    TotpDevice.objects.filter(user=world.users["prescriber"]).delete()
    _client, landing = _password_step("prescriber@alpha.test")
    assert landing == reverse("web:dashboard")
    # A device set up is still used.
    _client, landing = _password_step("injector@alpha.test")
    assert urlsplit(landing).path == reverse("accounts:mfa_verify")


def test_api_tokens_and_the_portal_are_not_sent_to_the_step(world):
    client, _ = _password_step("owner@alpha.test")
    response = client.get("/api/v1/patients", HTTP_AUTHORIZATION="Bearer glb_nonsense")
    assert response.status_code == 401  # the API's own answer, not a redirect to the step
    response = client.get("/fhir/r4/metadata")
    assert response.status_code != 302
    response = client.get("/my/nothing-here/")
    assert response.status_code == 404
    # A patient's own page (a secret link) opens, without the staff menu half-way in.
    from glabella.portal import services as portal

    made = portal.show_link(world.actor("front_desk"), world.patient)
    response = client.get(portal.link_path(made.token))
    assert response.status_code == 200
    assert 'aria-label="Main"' not in response.content.decode()
    # A bearer header does not open the pages: they read the session, which has not passed.
    response = client.get(reverse("patients:list"), HTTP_AUTHORIZATION="Bearer glb_nonsense")
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == reverse("accounts:mfa_verify")


def test_a_wrong_code_is_refused_in_plain_words_and_audited(world):
    client, step_url = _password_step("injector@alpha.test")
    response = client.post(step_url, {"code": "000000"})
    assert response.status_code == 422
    assert "That code is not right" in response.content.decode()
    event = AuditEvent.objects.filter(action="login_failed").latest("seq")
    assert event.detail == {"two_step": "wrong code"}
    assert event.actor == world.users["injector"]
    assert "000000" not in str(event.payload())


# --- setup -----------------------------------------------------------------------------------


def _secret_on(page: str) -> str:
    start = page.index('id="totp-secret">') + len('id="totp-secret">')
    return page[start : page.index("<", start)].replace(" ", "")


def test_setting_up_the_app_shows_a_qr_code_and_the_secret_then_ten_codes_once(world):
    TotpDevice.objects.filter(user=world.users["prescriber"]).delete()
    client, landing = _password_step("prescriber@alpha.test")
    assert urlsplit(landing).path == reverse("accounts:mfa_setup")
    # Nothing else until it is done.
    assert urlsplit(client.get(reverse("patients:list"))["Location"]).path == reverse(
        "accounts:mfa_setup"
    )
    response = client.get(landing)
    page = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert "<svg" in page and "<script" not in page.split("<main", 1)[1]
    assert " style=" not in page
    secret = _secret_on(page)
    assert len(secret) == 32
    # Reloading keeps the same secret (the app may have scanned it already).
    assert _secret_on(client.get(landing).content.decode()) == secret
    response = client.post(landing, {"code": "123456"})
    assert response.status_code == 422 and "That code is not right" in response.content.decode()
    code = pyotp.TOTP(secret).now()
    response = client.post(landing, {"code": code})
    assert response.status_code == 200
    page = response.content.decode()
    assert "shown only this once" in page
    assert page.count("<li><code>") == 10
    assert mfa.has_device(world.users["prescriber"])
    assert mfa.recovery_codes_left(world.users["prescriber"]) == 10
    assert client.get(reverse("patients:list")).status_code == 200
    event = AuditEvent.objects.filter(action="setup").latest("seq")
    assert event.detail == {"two_step": "app set up"} and event.organization == world.org
    # Already set up: the setup page does not offer a second one.
    assert client.get(landing)["Location"] == reverse("accounts:settings")


def test_a_front_desk_member_can_choose_to_set_it_up_from_settings(world):
    client = world.client("front_desk")
    page = client.get(reverse("accounts:settings")).content.decode()
    assert "Two-step sign-in is <strong>off</strong>" in page
    response = client.get(reverse("accounts:mfa_setup"))
    secret = _secret_on(response.content.decode())
    client.post(reverse("accounts:mfa_setup"), {"code": pyotp.TOTP(secret).now()})
    page = client.get(reverse("accounts:settings")).content.decode()
    assert "Two-step sign-in is <strong>on</strong>" in page
    assert "<strong>10</strong> unused recovery codes" in page


# --- new recovery codes, reset ---------------------------------------------------------------


def test_new_recovery_codes_need_the_password_again(world, settings):
    user = world.users["injector"]
    old = mfa.new_recovery_codes(user)
    client = world.client("injector")
    page = client.get(reverse("accounts:mfa_recovery_codes")).content.decode()
    assert 'id="codes-left">10<' in page
    # The password was typed just now (world.client marks it): new codes at once.
    response = client.post(reverse("accounts:mfa_recovery_codes"))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert response.content.decode().count("<li><code>") == 10
    assert mfa.verify_second_factor(user, old[0]) is None  # the old ones are gone
    assert AuditEvent.objects.filter(action="update", detail__two_step="new recovery codes")
    # Long after the password was typed: confirm it first.
    session = client.session
    session[mfa.SESSION_AUTH_AT] = int(time.time()) - settings.GLABELLA_REAUTH_SECONDS - 5
    session.save()
    response = client.post(reverse("accounts:mfa_recovery_codes"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:reauth") + "?next=")


def test_an_owner_resets_a_members_two_step_and_it_is_audited(world):
    injector = world.users["injector"]
    mfa.new_recovery_codes(injector)
    assert mfa.reset(world.actor("owner"), injector) is True
    assert not mfa.has_device(injector) and mfa.recovery_codes_left(injector) == 0
    event = AuditEvent.objects.filter(action="update", detail__two_step="reset").latest("seq")
    assert event.actor == world.users["owner"] and event.object_id == str(injector.pk)
    # Next sign-in sets up a new app.
    _client, landing = _password_step("injector@alpha.test")
    assert urlsplit(landing).path == reverse("accounts:mfa_setup")


def test_only_an_owner_of_the_same_organization_may_reset(world):
    with pytest.raises(PermissionDenied):
        mfa.reset(world.actor("prescriber"), world.users["injector"])
    with pytest.raises(PermissionDenied):
        mfa.reset(world.outsider_actor(), world.users["injector"])
    assert mfa.has_device(world.users["injector"])
