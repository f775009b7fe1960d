"""Password rules (NIST SP 800-63B) and the password change page."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from glabella.accounts.models import LoginThrottle, User
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD


def _errors(password: str, user: User | None = None) -> list[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return exc.messages
    return []


@pytest.mark.parametrize(
    "password",
    [
        "lantern violet harbour pickle",  # spaces
        "zwölf Äpfel auf dem Tisch",  # Unicode
        "пароль из четырёх слов",  # Cyrillic
        "all lower case no digits at all",  # no composition rules
        "x" * 3 + " seven plus words make a long phrase" * 3,  # long (up to 128)
        "alphabet soup for dinner",  # contains "alpha", but is not about it
    ],
)
def test_long_passphrases_with_spaces_and_any_script_are_welcome(world, password):
    assert _errors(password, world.users["owner"]) == []


def test_short_too_long_and_common_passwords_are_refused(world):
    user = world.users["owner"]
    assert any("at least 12 characters" in m for m in _errors("short pass", user))
    assert any("at most 128 characters" in m for m in _errors("a" * 60 + " b" * 40, user))
    assert any("too common" in m for m in _errors("qwerty123456", user))
    assert any("too common" in m for m in _errors("1qaz2wsx3edc", user))


@pytest.mark.parametrize(
    "password",
    [
        "glabella2024!!",  # the service's name
        "Glabella Glabella",
        "alpha aesthetics 1",  # the organization's name
        "AlphaCentral2025",  # the clinic's name
        "owner@alpha.test!",  # the e-mail
        "alpha-owner-alpha-2024",
    ],
)
def test_passwords_made_of_context_words_are_refused(world, password):
    messages = _errors(password, world.users["owner"])
    assert any("too close to your name, your e-mail, your clinic" in m for m in messages), (
        password,
        messages,
    )


def test_the_users_own_name_counts_as_context(world):
    user = world.users["prescriber"]
    user.first_name, user.last_name = "Penelope", "Marchbanks"
    user.save()
    assert _errors("Penelope Marchbanks 1985", user)
    assert _errors("Penelope Marchbanks 1985", world.users["injector"]) == []


def test_the_rules_are_in_the_settings():
    from django.conf import settings

    names = [v["NAME"] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert "glabella.accounts.passwords.ContextWordsValidator" in names
    assert "glabella.accounts.passwords.MaximumLengthValidator" in names
    assert "django.contrib.auth.password_validation.CommonPasswordValidator" in names


# --- the page --------------------------------------------------------------------------------


def test_changing_the_password_keeps_this_session_and_ends_the_others(world):
    client = world.client("front_desk")
    other = world.client("front_desk")  # another device, signed in too
    page = client.get(reverse("accounts:password_change")).content.decode()
    assert "at least 12 characters" in page and "commonly used password" in page
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "lantern violet harbour pickle",
            "new_password2": "lantern violet harbour pickle",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("accounts:settings")
    assert client.get(reverse("patients:list")).status_code == 200
    assert other.get(reverse("patients:list")).status_code == 302
    user = User.objects.get(pk=world.users["front_desk"].pk)
    assert user.check_password("lantern violet harbour pickle")
    event = AuditEvent.objects.filter(action="update", actor=user).latest("seq")
    assert event.detail == {"password": "changed"}
    assert "lantern" not in str(event.payload())


def test_a_wrong_current_password_or_a_weak_new_one_is_explained(world):
    client = world.client("front_desk")
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": "not-my-password",
            "new_password1": "glabella2024!!",
            "new_password2": "glabella2024!!",
        },
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "That is not your current password" in page
    assert LoginThrottle.objects.get(key="user:front_desk@alpha.test").failures == 1
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "glabella2024!!",
            "new_password2": "glabella2024!!",
        },
    )
    assert response.status_code == 422
    assert "too close to your name" in response.content.decode()
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "lantern violet harbour pickle",
            "new_password2": "lantern violet harbour pickles",
        },
    )
    assert "The two new passwords are not the same" in response.content.decode()


def test_signed_out_the_page_sends_to_sign_in(db):
    response = Client().get(reverse("accounts:password_change"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
