"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): the stock digest and the reminders
are sent over SMTP and read back, never through a fake mail backend."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """An aiosmtpd handler keeping every message it accepts.

    ``refuse``: addresses answered ``550`` at RCPT. ``slow``: addresses whose DATA is accepted
    (recorded) and then answered only after ``slow_seconds``. ``gate``: the first DATA waits until
    this many DATA commands are in progress at once (or 15 s), to prove two workers overlap.
    """

    refuse: set[str] = field(default_factory=set)
    slow: set[str] = field(default_factory=set)
    slow_seconds: float = 30.0
    delay: float = 0.0
    gate: int = 0
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    slow_started: threading.Event = field(default_factory=threading.Event)
    _in_data: int = 0
    _gate_open: Any = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            self.refused.append(address)
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.content, policy=policy.default),
            )
        )
        if self.gate:
            if self._gate_open is None:
                self._gate_open = asyncio.Event()
            self._in_data += 1
            if self._in_data >= self.gate:
                self._gate_open.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gate_open.wait(), 15)
        if self.delay:
            await asyncio.sleep(self.delay)
        if any(r.lower() in self.slow for r in envelope.rcpt_tos):
            self.slow_started.set()
            await asyncio.sleep(self.slow_seconds)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for _, rcpt, m in self.messages if address in rcpt]

    def count_by_recipient(self) -> Counter[str]:
        return Counter(r for _, rcpt, _m in self.messages for r in rcpt)


@contextlib.contextmanager
def smtp_server(settings: Any, from_email: str) -> Iterator[tuple[Inbox, int]]:
    """Start an SMTP server on a free port and point Django's e-mail settings at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = from_email
    try:
        yield inbox, port
    finally:
        controller.stop()
