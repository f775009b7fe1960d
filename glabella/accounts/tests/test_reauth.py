"""Re-authentication for sensitive actions (accounts/reauth.py, accounts:reauth)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from django.urls import reverse
from django.utils import timezone

from glabella.accounts import mfa
from glabella.accounts.models import LoginThrottle, TotpDevice
from glabella.audit.models import Action, AuditEvent
from glabella.conftest import PASSWORD
from glabella.interop.models import ExportJob

REAUTH = reverse("accounts:reauth")
EXPORT = reverse("interop:export")


def stale(client):
    """Make the client's last password entry older than GLABELLA_REAUTH_SECONDS."""
    session = client.session
    session[mfa.SESSION_AUTH_AT] = int(time.time()) - 3600
    session.save()
    return client


def fresh(client) -> bool:
    return mfa.recently_authenticated(client.session)


def next_of(response) -> str:
    parts = urlsplit(response["Location"] if "Location" in response else response["HX-Redirect"])
    assert parts.path == REAUTH
    return parse_qs(parts.query)["next"][0]


def without_device(user):
    TotpDevice.objects.filter(user=user).delete()
    return user


def with_device(user) -> pyotp.TOTP:
    TotpDevice.objects.filter(user=user).delete()
    secret = pyotp.random_base32()
    TotpDevice.objects.create(user=user, secret=secret, confirmed_at=timezone.now())
    return pyotp.TOTP(secret)


def test_a_fresh_sign_in_needs_no_confirmation(world):
    client = world.client("owner")  # signed in just now
    response = client.post(EXPORT, HTTP_REFERER=f"http://testserver{EXPORT}")
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path != REAUTH
    assert ExportJob.objects.count() == 1


def test_a_post_after_the_window_goes_to_confirm_and_back_to_the_form_page(world):
    client = stale(world.client("owner"))
    response = client.post(EXPORT, HTTP_REFERER=f"http://testserver{EXPORT}?x=1")
    assert response.status_code == 302
    assert next_of(response) == f"{EXPORT}?x=1"  # the page the form was on
    assert ExportJob.objects.count() == 0  # nothing done, nothing replayed
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Confirm it&#x27;s you, then press Prepare an export again." in page.content.decode()


def test_a_post_without_referer_comes_back_to_the_url_itself(world):
    client = stale(world.client("owner"))
    response = client.post(EXPORT)
    assert next_of(response) == EXPORT


def test_a_get_goes_to_confirm_with_the_page_as_next(world):
    job = ExportJob.objects.create(
        organization=world.org,
        kind="full",
        requested_by=world.users["owner"],
        created_at=timezone.now(),
    )
    client = stale(world.client("owner"))
    url = reverse("interop:export_download", args=[job.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert next_of(response) == url


def test_htmx_gets_401_with_hx_redirect(world):
    client = stale(world.client("owner"))
    response = client.post(EXPORT, HTTP_HX_REQUEST="true")
    assert response.status_code == 401
    assert next_of(response) == EXPORT
    assert ExportJob.objects.count() == 0


def test_the_right_password_confirms_and_returns_to_next_audited(world):
    owner = without_device(world.users["owner"])
    client = stale(world.client("owner"))
    response = client.post(REAUTH, {"password": PASSWORD, "next": EXPORT})
    assert response.status_code == 302
    assert response["Location"] == EXPORT
    assert fresh(client)
    event = AuditEvent.objects.filter(actor=owner, action=Action.LOGIN).first()
    assert event is not None and event.detail == {"step": "confirm", "with": "password"}
    # And now the export starts.
    client.post(EXPORT)
    assert ExportJob.objects.count() == 1


def test_a_wrong_password_is_refused_counted_and_audited(world):
    owner = without_device(world.users["owner"])
    client = stale(world.client("owner"))
    response = client.post(REAUTH, {"password": "not-the-password", "next": EXPORT})
    assert response.status_code == 422
    assert "That password is not right" in response.content.decode()
    assert not fresh(client)
    assert AuditEvent.objects.filter(
        actor=owner, action=Action.LOGIN_FAILED, detail__step="confirm"
    ).exists()
    assert LoginThrottle.objects.get(key=f"user:{owner.email}").failures == 1
    assert "not-the-password" not in str(list(AuditEvent.objects.values("detail")))


def test_repeated_wrong_passwords_lock_the_account_and_sign_out(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 3
    without_device(world.users["owner"])
    client = stale(world.client("owner"))
    for _ in range(2):
        assert client.post(REAUTH, {"password": "wrong-wrong-wrong"}).status_code == 422
    response = client.post(REAUTH, {"password": "wrong-wrong-wrong"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert "_auth_user_id" not in client.session  # signed out
    # Locked: the right password on the sign-in page is refused too (H1's lockout).
    assert LoginThrottle.objects.get(key="user:owner@alpha.test").locked_until > timezone.now()


def test_with_an_app_the_code_is_needed_too(world):
    totp = with_device(world.users["owner"])
    client = stale(world.client("owner"))
    page = client.get(REAUTH, {"next": EXPORT})
    assert "Code from your authenticator app" in page.content.decode()
    assert client.post(REAUTH, {"password": PASSWORD, "next": EXPORT}).status_code == 422
    assert client.post(REAUTH, {"password": PASSWORD, "code": "000000"}).status_code == 422
    assert not fresh(client)
    # The right password and the app's code.
    response = client.post(REAUTH, {"password": PASSWORD, "code": totp.now(), "next": EXPORT})
    assert response.status_code == 302 and response["Location"] == EXPORT
    assert fresh(client)


def test_a_recovery_code_works_once_and_says_how_many_are_left(world):
    owner = world.users["owner"]
    with_device(owner)
    codes = mfa.new_recovery_codes(owner)
    client = stale(world.client("owner"))
    response = client.post(REAUTH, {"password": PASSWORD, "code": codes[0]}, follow=True)
    assert "You used a recovery code: 9 left" in response.content.decode()
    stale(client)
    assert client.post(REAUTH, {"password": PASSWORD, "code": codes[0]}).status_code == 422


def test_the_right_code_with_a_wrong_password_is_refused(world):
    totp = with_device(world.users["owner"])
    client = stale(world.client("owner"))
    response = client.post(REAUTH, {"password": "wrong-password!", "code": totp.now()})
    assert response.status_code == 422
    assert not fresh(client)


@pytest.mark.parametrize(
    "evil", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", ""]
)
def test_next_is_only_ever_a_page_of_this_site(world, evil):
    without_device(world.users["front_desk"])
    client = stale(world.client("front_desk"))
    response = client.post(REAUTH, {"password": PASSWORD, "next": evil})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_page_is_for_signed_in_people_only(client):
    response = client.get(REAUTH)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_import_confirmation_asks_again(world):
    from glabella.interop.models import ImportRun

    client = stale(world.client("owner"))
    run = ImportRun.objects.create(
        organization=world.org,
        kind="patients",
        run_by=world.users["owner"],
        dry_run=True,
        state="done",
        created_at=timezone.now(),
    )
    url = reverse("interop:import_confirm", args=[run.pk])
    response = client.post(url, HTTP_REFERER=f"http://testserver/interop/import/{run.pk}/")
    assert response.status_code == 302
    assert next_of(response) == f"/interop/import/{run.pk}/"
    assert ImportRun.objects.count() == 1  # no real run made
