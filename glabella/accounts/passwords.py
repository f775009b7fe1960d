"""Password rules from current guidance (NIST SP 800-63B, section 3.1.1.2).

Long passphrases are welcome: at least 12 characters (Django's MinimumLengthValidator, in
settings), at most 128 (``MaximumLengthValidator``: bounds the cost of hashing), spaces and any
Unicode allowed, no rules about mixing character kinds, no forced periodic change. Refused:
passwords on the list of common and breached passwords (Django's CommonPasswordValidator) and
passwords that are mostly words from their context (``ContextWordsValidator``): the user's
e-mail and name, "glabella", the organization's and the clinics' names.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

SERVICE_WORDS = ("glabella",)
MIN_WORD = 4  # shorter words ("the", "spa") are part of too many good passphrases
MIN_LEFT = 4  # letters that must remain once the context words and digits are taken out


def _fold(text: str) -> str:
    """Lower case, accents and punctuation removed: "Zoë's-Clinic" -> "zoesclinic"."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


def _words(text: str) -> list[str]:
    return [w for w in (_fold(p) for p in re.split(r"[\s@._+\-']+", text or "")) if w]


class MaximumLengthValidator:
    """At most MAX_LENGTH characters (128): long enough for any passphrase, short enough that
    hashing it stays cheap."""

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                f"Your password is too long: use at most {self.max_length} characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"It can be a long phrase, up to {self.max_length} characters, spaces included."


class ContextWordsValidator:
    """Refuse a password that is mostly the user's e-mail or name, "glabella", or the name of
    their organization or clinic: what an attacker tries first."""

    def context_words(self, user: Any) -> set[str]:
        words: set[str] = set(SERVICE_WORDS)
        if user is None:
            return words
        email = getattr(user, "email", "") or ""
        local = email.split("@")[0]
        texts = [email, getattr(user, "first_name", ""), getattr(user, "last_name", "")]
        if getattr(user, "pk", None):
            from glabella.accounts.models import Membership

            for m in Membership.objects.filter(user=user).select_related("organization", "clinic"):
                texts += [m.organization.name, m.clinic.name]
        whole = [_fold(t) for t in texts if t] + [_fold(local)]
        for text in texts:
            words.update(_words(text))
        words.update(whole)
        return {w for w in words if len(w) >= MIN_WORD}

    def validate(self, password: str, user: Any = None) -> None:
        folded = _fold(password)
        left = folded
        # Longest first, so "alphaaesthetics" goes before "alpha".
        for word in sorted(self.context_words(user), key=len, reverse=True):
            left = left.replace(word, "")
        if left == folded:
            return  # no context word in it
        # "glabella2024!" leaves "2024": digits and punctuation around a name add little.
        left = re.sub(r"\d", "", left)
        if len(left) < MIN_LEFT:
            raise ValidationError(
                "Your password is too close to your name, your e-mail, your clinic's name or "
                "“Glabella”. Choose words that have nothing to do with you or the clinic.",
                code="password_context",
            )

    def get_help_text(self) -> str:
        return "It must not be made of your name, your e-mail, your clinic's name or “Glabella”."
