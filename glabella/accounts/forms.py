from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm


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
