from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from glabella.accounts.models import User
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD, totp_code


def test_passwords_are_stored_as_argon2_with_the_production_settings(world, settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    user = User.objects.create_user("new@alpha.test", "a-long-enough-password")
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("a-long-enough-password")


def test_login_lands_on_the_dashboard_and_is_audited(world):
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"username": "front_desk@alpha.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")
    assert client.get(reverse("web:dashboard")).status_code == 200
    # An injector passes the second step first (test_two_step.py), then lands there too.
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"username": "injector@alpha.test", "password": PASSWORD}
    )
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    response = client.post(response["Location"], {"code": totp_code(world.users["injector"])})
    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")
    assert client.get(reverse("web:dashboard")).status_code == 200
    event = AuditEvent.objects.filter(action="login").latest("seq")
    assert event.actor_label == "injector@alpha.test"
    assert event.organization == world.org
    assert event.request_id and event.ip == "127.0.0.1"


def test_wrong_password_is_refused_in_plain_words_and_audited(world):
    response = Client().post(
        reverse("accounts:login"), {"username": "injector@alpha.test", "password": "nope"}
    )
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    failed = AuditEvent.objects.filter(action="login_failed").latest("seq")
    assert failed.actor_label == "injector@alpha.test"
    assert failed.organization == world.org


def test_logout_ends_the_session(world):
    client = world.client("injector")
    assert client.get(reverse("patients:list")).status_code == 200
    client.post(reverse("accounts:logout"))
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]
    assert AuditEvent.objects.filter(action="logout").exists()


def test_session_expires_after_fifteen_idle_minutes(world, settings):
    client = world.client("injector")
    client.get(reverse("patients:list"))
    # Fifteen idle minutes, plus the minute within which a used session is not rewritten.
    assert settings.GLABELLA_IDLE_SECONDS == 15 * 60
    assert client.session.get_expiry_age() == 16 * 60
    session = Session.objects.get(session_key=client.session.session_key)
    first_expiry = session.expire_date
    # A request within the minute does not write the session (no database write per request) ...
    client.get(reverse("patients:list"))
    assert Session.objects.get(pk=session.pk).expire_date == first_expiry
    # ... once the minute has passed, activity pushes the expiry forward ...
    settings.GLABELLA_SESSION_REFRESH_SECONDS = 0
    client.get(reverse("patients:list"))
    assert Session.objects.get(pk=session.pk).expire_date > first_expiry
    # ... and idle minutes end it.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_the_page_counts_the_idle_minutes_not_the_refresh_margin(world):
    page = world.client("injector").get(reverse("patients:list")).content.decode()
    assert 'data-idle-seconds="900"' in page


def test_expired_session_on_an_htmx_request_redirects_the_whole_page(world):
    response = Client().get(reverse("patients:list"), {"q": "ada"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", ["owner", "prescriber", "injector", "front_desk", "auditor"])
def test_every_role_can_sign_in_and_see_the_dashboard(world, role):
    response = world.client(role).get(reverse("web:dashboard"))
    assert response.status_code == 200
    assert "Alpha Central" in response.content.decode()


def _injector_also_at_alpha_north(world):
    """A second clinic, Alpha North, where the injector works too."""
    from glabella.accounts.services import add_clinic, add_member

    second = add_clinic(world.actor("owner"), name="Alpha North", timezone="Europe/London")
    add_member(
        world.actor("owner"),
        email="injector@alpha.test",
        clinic=second,
        role="injector",
        password=PASSWORD,
    )
    return second


def test_user_with_two_clinics_can_switch(world):
    second = _injector_also_at_alpha_north(world)
    client = world.client("injector")
    response = client.post(reverse("accounts:switch_clinic", args=[second.pk]), follow=True)
    assert "You are now working at Alpha North" in response.content.decode()
    # Not a clinic of theirs: 404.
    other = world.outsider_org.clinics.first()
    assert client.post(reverse("accounts:switch_clinic", args=[other.pk])).status_code == 404


def test_the_menu_offers_the_members_own_other_clinics_from_one_query(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    second = _injector_also_at_alpha_north(world)
    client = world.client("injector")
    client.get(reverse("web:dashboard"))  # the session's first request writes its expiry
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("web:dashboard")).content.decode()
    assert "Switch to Alpha North" in page
    assert "Switch to Alpha Central" not in page  # where they are now
    membership_reads = [q for q in queries if 'FROM "accounts_membership"' in q["sql"]]
    assert len(membership_reads) == 1, [q["sql"] for q in membership_reads]
    # After switching, the other way round: the one chosen in the session is the current one.
    client.post(reverse("accounts:switch_clinic", args=[second.pk]))
    page = client.get(reverse("web:dashboard")).content.decode()
    assert "Switch to Alpha Central" in page
    assert "Switch to Alpha North" not in page


def test_a_page_about_another_member_does_not_put_their_clinics_in_the_menu(world):
    """The team page lists a member's other clinics; the owner's own menu must not offer to
    switch to them (it did, when both were called ``other_memberships``)."""
    from glabella.accounts.models import Membership

    _injector_also_at_alpha_north(world)
    member = Membership.objects.get(user=world.users["injector"], clinic=world.clinic)
    page = world.client("owner").get(reverse("accounts:team_member", args=[member.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Also works at" in html and "Alpha North" in html
    assert "Switch to Alpha North" not in html
