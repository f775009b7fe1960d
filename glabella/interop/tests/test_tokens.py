"""Personal API tokens: stored only as a hash, shown once, revocable, limited to their
membership's organization and role; the `glabella token` command and the settings page."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from glabella.accounts.models import ApiToken, Membership
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD
from glabella.interop.tests.helpers import token_for
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

PRODUCTS = "/api/v1/products"


def bearer(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _create(email: str, *args: str) -> tuple[str, str]:
    out = StringIO()
    call_command("token", "create", "--email", email, *args, stdout=out)
    text = out.getvalue()
    secret = re.search(r"^(glb_[A-Za-z0-9_-]{43})$", text, re.M)
    assert secret, text
    return secret.group(1), text


def assert_401(response, words: str) -> None:
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert words in body["message"]
    assert set(body) >= {"message", "field", "errors"}


# --- storage and the command ---------------------------------------------------------------


def test_token_create_prints_the_secret_once_and_stores_only_its_hash(world):
    secret, text = _create("INJECTOR@alpha.test", "--name", "Tablet 3")
    assert "will not be shown again" in text
    assert "Injector at Alpha Central" in text
    token = ApiToken.objects.get(name="Tablet 3")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:8]
    assert token.user == world.users["injector"] and token.expires_at is None
    # The secret is nowhere in the database: not in the token row, not in the audit log.
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert secret not in repr(row)
    events = list(AuditEvent.objects.filter(object_type="accounts.apitoken").values())
    assert events and secret not in repr(events)
    assert bearer(secret).get(PRODUCTS).status_code == 200


def test_token_create_with_expiry_and_clinic_and_its_refusals(world):
    _create(
        "owner@alpha.test",
        "--name",
        "Export job",
        "--expires-days",
        "30",
        "--clinic",
        str(world.clinic.pk),
    )
    token = ApiToken.objects.get(name="Export job")
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    with pytest.raises(CommandError, match="no account"):
        _create("nobody@alpha.test", "--name", "x")
    with pytest.raises(CommandError, match="no active role at clinic"):
        _create("owner@alpha.test", "--name", "x", "--clinic", "999999")
    with pytest.raises(CommandError, match="Give the token a name"):
        _create("owner@alpha.test", "--name", "   ")
    with pytest.raises(CommandError, match="1 to 3650"):
        _create("owner@alpha.test", "--name", "x", "--expires-days", "0")
    assert ApiToken.objects.count() == 1


def test_token_list_and_revoke_from_the_command_line(world):
    secret, _ = _create("front_desk@alpha.test", "--name", "Kiosk")
    out = StringIO()
    call_command("token", "list", "--email", "front_desk@alpha.test", stdout=out)
    assert "Kiosk" in out.getvalue() and secret[:8] in out.getvalue()
    assert secret not in out.getvalue() and "active" in out.getvalue()
    out = StringIO()
    call_command(
        "token", "revoke", "--email", "front_desk@alpha.test", "--prefix", secret[:8], stdout=out
    )
    assert "no longer works" in out.getvalue()
    assert_401(bearer(secret).get(PRODUCTS), "revoked")
    out = StringIO()
    call_command("token", "list", "--email", "front_desk@alpha.test", stdout=out)
    assert "revoked" in out.getvalue()
    with pytest.raises(CommandError, match="no token starting"):
        call_command(
            "token", "revoke", "--email", "front_desk@alpha.test", "--prefix", "glb_zzzzzz"
        )


# --- what stops a token ----------------------------------------------------------------------


def test_no_token_or_an_unknown_or_malformed_one_is_a_401_in_words(world):
    assert_401(Client().get(PRODUCTS), "Authorization: Bearer")
    assert_401(Client(HTTP_AUTHORIZATION="Basic b3duZXI6cHc=").get(PRODUCTS), "Bearer")
    assert_401(bearer("glb_" + "x" * 43).get(PRODUCTS), "not known")
    assert_401(bearer("not-even-a-token").get(PRODUCTS), "not known")
    assert_401(bearer("glb_" + "x" * 500).get(PRODUCTS), "not known")


def test_revoked_expired_and_inactive_tokens_are_refused(world):
    revoked, expired, inactive_user, inactive_role = (
        token_for(world, r) for r in ("owner", "prescriber", "injector", "auditor")
    )
    for secret in (revoked, expired, inactive_user, inactive_role):
        assert bearer(secret).get(PRODUCTS).status_code == 200
    ApiToken.objects.filter(prefix=revoked[:8]).update(revoked_at=timezone.now())
    ApiToken.objects.filter(prefix=expired[:8]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    world.users["injector"].is_active = False
    world.users["injector"].save()
    Membership.objects.filter(user=world.users["auditor"]).update(is_active=False)
    assert_401(bearer(revoked).get(PRODUCTS), "revoked")
    assert_401(bearer(expired).get(PRODUCTS), "expired")
    assert_401(bearer(inactive_user).get(f"/api/v1/patients/{world.patient.pk}"), "switched off")
    assert_401(bearer(inactive_role).get(PRODUCTS), "switched off")


def test_a_token_acts_with_its_memberships_role(world):
    desk = bearer(token_for(world, "front_desk"))
    url = f"/api/v1/patients/{world.patient.pk}"
    contact = desk.get(url)
    assert contact.status_code == 200
    assert contact.json()["phone"] == "07700 900123"
    assert contact.json()["clinical_notes"] is None and contact.json()["flags"] is None
    refused = desk.get(url + "/history")
    assert refused.status_code == 403
    assert "does not allow" in refused.json()["message"]
    injector = bearer(token_for(world, "injector"))
    assert injector.get(url + "/history").status_code == 200
    assert injector.get(url).json()["flags"] == []


def test_an_outsiders_token_finds_nothing_of_ours(world):
    outsider = bearer(token_for(world, "outsider"))
    for url in (
        f"/api/v1/patients/{world.patient.pk}",
        f"/api/v1/patients/{world.patient.pk}/history",
        f"/api/v1/patients/{world.patient.pk}/sessions",
    ):
        r = outsider.get(url)
        assert r.status_code == 404, url
        assert "no such record" in r.json()["message"]
    listed = outsider.get("/api/v1/patients?name=lovelace").json()
    assert listed["count"] == 0
    # ...while their own patient is found.
    assert outsider.get(f"/api/v1/patients/{world.outsider_patient.pk}").status_code == 200


def test_last_use_is_noted(world):
    secret = token_for(world, "owner")
    assert ApiToken.objects.get(prefix=secret[:8]).last_used_at is None
    bearer(secret).get(PRODUCTS)
    assert ApiToken.objects.get(prefix=secret[:8]).last_used_at is not None


# --- the settings page -----------------------------------------------------------------------


def test_settings_page_makes_a_token_shows_it_once_and_revokes_it(world):
    client = world.client("injector")
    page = client.get("/accounts/settings/")
    assert page.status_code == 200
    assert b"Injector" in page.content and b"Alpha Central" in page.content
    assert b"You have no API tokens" in page.content
    membership = Membership.objects.get(user=world.users["injector"])
    made = client.post(
        "/accounts/settings/",
        {"name": "Chairside tablet", "membership": membership.pk, "expires": "90"},
    )
    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    secret = re.search(rb'value="(glb_[A-Za-z0-9_-]{43})"', made.content).group(1).decode()
    assert b"will not be shown again" in made.content
    token = ApiToken.objects.get(name="Chairside tablet")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.expires_at is not None
    assert bearer(secret).get(PRODUCTS).status_code == 200
    again = client.get("/accounts/settings/")
    assert secret.encode() not in again.content  # shown once
    assert token.prefix.encode() in again.content and b"Chairside tablet" in again.content
    assert client.get(f"/accounts/settings/tokens/{token.pk}/revoke/").status_code == 405
    revoked = client.post(f"/accounts/settings/tokens/{token.pk}/revoke/", follow=True)
    assert b"revoked" in revoked.content
    assert_401(bearer(secret).get(PRODUCTS), "revoked")


def test_settings_page_refuses_a_token_without_a_name(world):
    client = world.client("injector")
    membership = Membership.objects.get(user=world.users["injector"])
    r = client.post("/accounts/settings/", {"name": " ", "membership": membership.pk})
    assert r.status_code == 422
    assert not ApiToken.objects.exists()
    r = client.post(
        "/accounts/settings/", {"name": "x", "membership": "999999", "expires": "never"}
    )
    assert r.status_code == 422 and not ApiToken.objects.exists()


def test_only_an_owner_revokes_someone_elses_token(world):
    theirs = token_for(world, "injector")
    token = ApiToken.objects.get(prefix=theirs[:8])
    # A colleague cannot (the token is not even there for them) ...
    assert (
        world.client("prescriber").post(f"/accounts/settings/tokens/{token.pk}/revoke/").status_code
        == 404
    )
    # ... nor can another organization's owner ...
    assert (
        world.client("outsider").post(f"/accounts/settings/tokens/{token.pk}/revoke/").status_code
        == 404
    )
    assert bearer(theirs).get(PRODUCTS).status_code == 200
    # ... the owner sees it on their page and revokes it.
    owner = world.client("owner")
    page = owner.get("/accounts/settings/")
    assert b"injector@alpha.test" in page.content and token.prefix.encode() in page.content
    assert (
        b"injector@alpha.test" not in world.client("prescriber").get("/accounts/settings/").content
    )
    owner.post(f"/accounts/settings/tokens/{token.pk}/revoke/")
    assert_401(bearer(theirs).get(PRODUCTS), "revoked")
    token.refresh_from_db()
    assert token.revoked_by == world.users["owner"]


def test_settings_page_needs_a_sign_in(world):
    r = Client().get("/accounts/settings/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


@pytest.mark.browser
def test_settings_page_on_a_tablet(live_world, live_server, page):
    world = live_world
    token_for(world, "injector")  # one to list, and one of someone else for the owner
    login(page, live_server.url, "owner@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/accounts/settings/")
    page.get_by_label("Name").fill("Export laptop")
    page.get_by_label("Expires").select_option("30")
    page.get_by_role("button", name="Make token").click()
    secret = page.get_by_label("Token (select it all and copy)")
    assert re.fullmatch(r"glb_[A-Za-z0-9_-]{43}", secret.input_value())
    assert page.get_by_text("it will not be shown again").is_visible()
    assert page.get_by_text("injector@alpha.test", exact=True).is_visible()
    assert_fits_and_touchable(page)
    shot(page, "api-token-settings")
    page.get_by_role("button", name="Revoke token Export laptop").click()
    assert page.get_by_text("revoked: it no longer works").is_visible()
    assert page.get_by_label("Token (select it all and copy)").count() == 0
    assert_fits_and_touchable(page)
