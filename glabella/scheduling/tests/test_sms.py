"""The SMS provider interface: the HTTP provider against a real local HTTP server (which can
answer, fail or hang, and honours idempotency keys), the console provider, and the choice
between them."""

from __future__ import annotations

import json
import time

import pytest

from glabella.mail_testing import free_port
from glabella.scheduling import sms
from glabella.scheduling.tests import reminder_helpers

gateway = reminder_helpers.gateway  # fixture


def test_the_http_provider_posts_json_with_a_bearer_token_and_an_idempotency_key(gateway):
    provider = sms.provider()
    assert isinstance(provider, sms.HttpSmsProvider)
    ident = provider.send("+447700900123", "Alpha Central: see you Monday", "key-1")
    assert ident == "msg-1"
    assert gateway.delivered == [
        {"to": "+447700900123", "from": "AlphaClinic", "body": "Alpha Central: see you Monday"}
    ]
    headers = gateway.headers[0]
    assert headers["Authorization"] == "Bearer sekrit"
    assert headers["Idempotency-Key"] == "key-1"
    assert headers["Content-Type"] == "application/json"


def test_the_same_idempotency_key_is_delivered_once(gateway):
    provider = sms.HttpSmsProvider()
    first = provider.send("+447700900123", "hello", "key-2")
    again = provider.send("+447700900123", "hello", "key-2")
    assert first == again == "msg-1"
    assert gateway.requests["key-2"] == 2 and gateway.deliveries["key-2"] == 1


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("503", "The SMS gateway refused the message (HTTP 503: simulated 503)."),
        ("400", "The SMS gateway refused the message (HTTP 400: simulated 400)."),
    ],
)
def test_an_error_answer_is_an_sms_error_safe_to_retry(gateway, answer, words):
    gateway.script = [answer]
    with pytest.raises(sms.SmsError) as failure:
        sms.HttpSmsProvider().send("+447700900123", "hello", "key-3")
    assert failure.value.reason == words and failure.value.retry_safe
    assert gateway.deliveries["key-3"] == 0


def test_a_wrong_token_is_refused_in_words(gateway):
    with pytest.raises(sms.SmsError) as failure:
        sms.HttpSmsProvider(token="wrong").send("+447700900123", "hello", "key-4")
    assert failure.value.reason == "The SMS gateway refused the message (HTTP 401: bad token)."


def test_a_hanging_gateway_times_out_quickly_and_retrying_the_key_is_safe(gateway):
    gateway.script = ["hang"]
    gateway.hang_seconds = 5
    provider = sms.HttpSmsProvider(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(sms.SmsError) as failure:
        provider.send("+447700900123", "hello", "key-5")
    # Well under the hang (5 s), with room for a slow, loaded machine beyond the 0.3 s.
    assert time.monotonic() - started < 3.5
    assert failure.value.reason == "The SMS gateway did not answer within 0.3 seconds."
    assert failure.value.retry_safe
    # It had in fact delivered; the retry with the same key gets the same message back.
    assert provider.send("+447700900123", "hello", "key-5") == "msg-1"
    assert gateway.deliveries["key-5"] == 1 and gateway.requests["key-5"] == 2


def test_an_unreachable_gateway_is_said_in_words():
    provider = sms.HttpSmsProvider(url=f"http://127.0.0.1:{free_port()}/send", token="t")
    with pytest.raises(sms.SmsError) as failure:
        provider.send("+447700900123", "hello", "key-6")
    assert failure.value.reason.startswith("Could not reach the SMS gateway (")
    assert failure.value.retry_safe


def test_the_http_provider_needs_an_address(settings):
    settings.GLABELLA_SMS_URL = ""
    with pytest.raises(sms.SmsError, match="No SMS gateway address is configured"):
        sms.HttpSmsProvider()
    with pytest.raises(sms.SmsError, match="must start with https://"):
        sms.HttpSmsProvider(url="file:///etc/passwd")


def test_the_console_provider_keeps_what_it_would_send(settings, tmp_path, capsys):
    out = tmp_path / "sms.jsonl"
    settings.GLABELLA_SMS_PROVIDER = "console"
    provider = sms.ConsoleSmsProvider(file=str(out))
    ident = provider.send("07700900123", "Alpha Central: see you", "key-7")
    assert provider.send("07700900123", "Alpha Central: see you", "key-7") == ident
    assert [m["body"] for m in provider.outbox] == ["Alpha Central: see you"]
    assert "[SMS to 07700900123] Alpha Central: see you" in capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(m["to"], m["idempotency_key"], m["id"]) for m in lines] == [
        ("07700900123", "key-7", ident)
    ]
    assert sms.provider() is sms.provider() is sms.console()


class Pigeon:
    """A provider of one's own, named by its dotted path."""

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        return f"pigeon-{idempotency_key}"


class NotAProvider:
    pass


def test_a_provider_of_ones_own_by_dotted_path(settings):
    settings.GLABELLA_SMS_PROVIDER = f"{__name__}.Pigeon"
    assert sms.provider().send("1", "b", "k") == "pigeon-k"
    settings.GLABELLA_SMS_PROVIDER = f"{__name__}.NotAProvider"
    with pytest.raises(sms.SmsError, match="has no send"):
        sms.provider()
    settings.GLABELLA_SMS_PROVIDER = "nowhere.Carrier"
    with pytest.raises(sms.SmsError, match="cannot be loaded"):
        sms.provider()


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+44 7700 900123", "+447700900123"),
        ("0044 (0)7700-900123", "+4407700900123"),
        ("07700 900123", "07700900123"),
        (" - ", ""),
    ],
)
def test_numbers_are_normalised(raw, number):
    assert sms.normalise_number(raw) == number
