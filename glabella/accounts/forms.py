from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm

from glabella.accounts.models import Membership

# Passwords longer than this are refused before hashing (new ones are capped at 128 by the
# validators; this bounds the work an anonymous request can cause).
LOGIN_PASSWORD_MAX = 1024


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="E-mail",
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=LOGIN_PASSWORD_MAX,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    error_messages = {
        "invalid_login": (
            "That e-mail and password do not match an account. Check both and try again."
        ),
        "inactive": "This account has been switched off. Ask your clinic's owner.",
    }


EXPIRY_CHOICES = [
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
    ("never", "Never (revoke it when no longer needed)"),
]


class TokenForm(forms.Form):
    """A new personal API token: its name, the clinic role it acts in, when it expires."""

    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What it is for, so you can tell your tokens apart (e.g. “Reception tablet”).",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    membership = forms.ChoiceField(
        label="Acts as", help_text="A token can do only what this role at this clinic can."
    )
    expires = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="90")

    def __init__(
        self, *args: object, memberships: list[Membership], current: int | None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.memberships = {str(m.pk): m for m in memberships}
        self.fields["membership"].choices = [
            (str(m.pk), f"{m.get_role_display()} at {m.clinic.name}") for m in memberships
        ]
        if current is not None:
            self.fields["membership"].initial = str(current)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name, so you can tell it apart later.")
        return name

    def chosen(self) -> Membership:
        return self.memberships[self.cleaned_data["membership"]]


class CodeForm(forms.Form):
    """The second step: a code from the authenticator app, or a recovery code."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text=(
            "The 6-digit code your authenticator app shows now, or one of your recovery codes."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "autocapitalize": "off",
                "spellcheck": "false",
            }
        ),
        error_messages={"required": "Type the code from your authenticator app."},
    )


class SetupCodeForm(forms.Form):
    code = forms.CharField(
        label="First code from the app",
        max_length=16,
        help_text="After adding Glabella to the app, type the 6-digit code it shows.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        error_messages={"required": "Type the 6-digit code your app shows."},
    )


def password_rules_in_words() -> list[str]:
    return list(password_validation.password_validators_help_texts())


class ChangePasswordForm(PasswordChangeForm):
    """Current password, then the new one twice. The rules are shown in words."""

    error_messages = {
        **PasswordChangeForm.error_messages,
        "password_incorrect": "That is not your current password. Type it again.",
        "password_mismatch": "The two new passwords are not the same. Type them again.",
    }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["old_password"].label = "Your current password"
        self.fields["new_password1"].label = "New password"
        self.fields["new_password1"].help_text = (
            "At least 12 characters. A few unrelated words make a good one, e.g. "
            "“lantern violet harbour pickle”."
        )
        self.fields["new_password2"].label = "New password again"
        self.fields["new_password2"].help_text = ""
