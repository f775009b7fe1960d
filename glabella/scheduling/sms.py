"""Sending a text message: a small provider interface and two implementations.

A provider is anything with ``send(to, body, idempotency_key) -> str`` (the provider's own id of
the message). When it cannot send it raises ``SmsError`` with a reason in plain words and
whether trying again is safe: ``retry_safe=True`` means the message certainly did not go out, or
the provider promises to deliver a repeated idempotency key only once. A failure that might have
delivered the message without that promise must say ``retry_safe=False``: the reminder is then
marked "may not have gone out" for a person to check, and never resent by itself.

- ``ConsoleSmsProvider`` (development, the default): nothing leaves the machine; each message is
  printed, kept in memory (``outbox``) and, when ``GLABELLA_SMS_CONSOLE_FILE`` is set, appended to
  that file as one JSON line.
- ``HttpSmsProvider``: POSTs ``{"to", "from", "body"}`` as JSON to ``GLABELLA_SMS_URL`` with
  ``Authorization: Bearer <GLABELLA_SMS_TOKEN>`` and an ``Idempotency-Key`` header, and reads the
  message id from the answer (``{"id": ...}``). Only the standard library (urllib).

``GLABELLA_SMS_PROVIDER`` picks one: ``console``, ``http``, or the dotted path of a class of
your own (built with no arguments; read your settings in ``__init__``).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string


class SmsError(Exception):
    """The message was not sent. ``reason`` is for a person; ``retry_safe`` says whether sending
    it again cannot deliver it twice."""

    def __init__(self, reason: str, *, retry_safe: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_safe = retry_safe


@runtime_checkable
class SmsProvider(Protocol):
    def send(self, to: str, body: str, idempotency_key: str) -> str:
        """Send BODY to the number TO; return the provider's id of the message."""
        ...


def normalise_number(raw: str) -> str:
    """A phone number as providers want it: ``+`` and digits for international numbers
    (``00`` becomes ``+``), digits only otherwise. Empty when there are no digits at all."""
    text = (raw or "").strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return ""
    if text.startswith("+"):
        return f"+{digits}"
    if digits.startswith("00"):
        return f"+{digits[2:]}"
    return digits


# --- development ---------------------------------------------------------------------------


@dataclass
class ConsoleSmsProvider:
    """Prints each message instead of sending it (development and demos)."""

    file: str = ""
    outbox: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        with self._lock:
            for sent in self.outbox:
                if sent["idempotency_key"] == idempotency_key:
                    return sent["id"]
            message = {
                "id": f"console-{uuid.uuid4().hex[:12]}",
                "to": to,
                "body": body,
                "idempotency_key": idempotency_key,
                "at": datetime.now(UTC).isoformat(),
            }
            self.outbox.append(message)
            print(f"[SMS to {to}] {body}", file=sys.stderr)
            path = self.file or getattr(settings, "GLABELLA_SMS_CONSOLE_FILE", "")
            if path:
                with Path(path).open("a", encoding="utf-8") as out:
                    out.write(json.dumps(message) + "\n")
        return message["id"]


# --- a real gateway over HTTP --------------------------------------------------------------


class HttpSmsProvider:
    """A JSON-over-HTTPS gateway that honours the ``Idempotency-Key`` header."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        sender: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = url if url is not None else settings.GLABELLA_SMS_URL
        self.token = token if token is not None else settings.GLABELLA_SMS_TOKEN
        self.sender = sender if sender is not None else settings.GLABELLA_SMS_SENDER
        self.timeout = timeout if timeout is not None else settings.GLABELLA_SMS_TIMEOUT
        if not self.url:
            raise SmsError(
                "No SMS gateway address is configured (GLABELLA_SMS_URL).", retry_safe=True
            )
        if not self.url.startswith(("https://", "http://")):
            raise SmsError(
                "The SMS gateway address must start with https:// (GLABELLA_SMS_URL).",
                retry_safe=True,
            )

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        payload = json.dumps({"to": to, "from": self.sender, "body": body}).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
            self.url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {self.token}",
                "Idempotency-Key": idempotency_key,
                "User-Agent": "Glabella reminders",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                raw = answer.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            raise SmsError(
                f"The SMS gateway refused the message (HTTP {exc.code}{detail}).",
                retry_safe=True,
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise SmsError(
                    f"The SMS gateway did not answer within {self.timeout:g} seconds.",
                    retry_safe=True,  # the same Idempotency-Key is sent again
                ) from None
            raise SmsError(
                f"Could not reach the SMS gateway ({exc.reason}).", retry_safe=True
            ) from None
        except TimeoutError:
            raise SmsError(
                f"The SMS gateway did not answer within {self.timeout:g} seconds.",
                retry_safe=True,
            ) from None
        except OSError as exc:
            raise SmsError(
                f"The connection to the SMS gateway broke ({exc}).", retry_safe=True
            ) from None
        try:
            answer_json = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer_json = {}
        ident = answer_json.get("id") if isinstance(answer_json, dict) else None
        return str(ident or f"accepted:{idempotency_key}")[:200]


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(2000).decode("utf-8", "replace")
        data = json.loads(raw)
        text = data.get("error") or data.get("message") if isinstance(data, dict) else None
    except (OSError, ValueError):
        text = None
    return f": {str(text)[:200]}" if text else ""


# --- choosing one --------------------------------------------------------------------------

_console: ConsoleSmsProvider | None = None
_console_lock = threading.Lock()


def console() -> ConsoleSmsProvider:
    """The process's one console provider (so its outbox can be inspected)."""
    global _console
    with _console_lock:
        if _console is None:
            _console = ConsoleSmsProvider()
        return _console


def provider() -> SmsProvider:
    """The provider named by ``GLABELLA_SMS_PROVIDER``."""
    name = (getattr(settings, "GLABELLA_SMS_PROVIDER", "") or "console").strip()
    if name == "console":
        return console()
    if name == "http":
        return HttpSmsProvider()
    try:
        cls = import_string(name)
    except ImportError as exc:
        raise SmsError(
            f"The SMS provider {name!r} (GLABELLA_SMS_PROVIDER) cannot be loaded: {exc}",
            retry_safe=True,
        ) from None
    made = cls()
    if not isinstance(made, SmsProvider):
        raise SmsError(f"{name} has no send(to, body, idempotency_key) method.", retry_safe=True)
    return made
