from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from glabella.accounts.models import Membership


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="E-mail",
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
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
