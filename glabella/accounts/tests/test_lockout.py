"""Lockout with back-off: per account and per address, 429 in plain words, reset on success,
atomic counting, unlock by an owner, wrong second-step codes count too."""

from __future__ import annotations

import threading
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from glabella.accounts import lockout
from glabella.accounts.models import LoginThrottle
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD, totp_code


def _try(client: Client, email: str, password: str, ip: str = "10.0.0.1"):
    return client.post(
        reverse("accounts:login"), {"username": email, "password": password}, REMOTE_ADDR=ip
    )


def test_five_failures_lock_the_account_even_against_the_right_password(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 5
    settings.GLABELLA_LOGIN_LOCK_SECONDS = 120
    client = Client()
    for _ in range(4):
        response = _try(client, "front_desk@alpha.test", "wrong-password-here")
        assert response.status_code == 200
        assert "do not match an account" in response.content.decode()
    response = _try(client, "front_desk@alpha.test", "wrong-password-here")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed attempts. Try again in 2 minutes" in page
    assert "ask your clinic&#x27;s owner to unlock your account" in page
    assert response["Retry-After"] == "120"
    # The right password is refused while locked, from any address.
    response = _try(Client(), "FRONT_DESK@alpha.test", PASSWORD, ip="10.9.9.9")
    assert response.status_code == 429
    assert "_auth_user_id" not in response.client.session
    # Audited: the lock and the refusal, never the password.
    events = AuditEvent.objects.filter(action="login_failed", detail__has_key="lockout")
    assert {e.detail["lockout"] for e in events} == {"locked", "refused while locked"}
    assert all(PASSWORD not in str(e.payload()) for e in AuditEvent.objects.all())


def test_an_unknown_email_is_locked_the_same_way(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 3
    answers = [_try(Client(), "nobody@alpha.test", "wrong-password-here") for _ in range(3)]
    known = [_try(Client(), "auditor@alpha.test", "wrong-password-here") for _ in range(3)]
    assert [r.status_code for r in answers] == [r.status_code for r in known] == [200, 200, 429]
    assert "Too many failed attempts." in answers[-1].content.decode()
    assert LoginThrottle.objects.filter(key="user:nobody@alpha.test").exists()


def test_the_lock_doubles_each_time_up_to_the_ceiling(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 2
    settings.GLABELLA_LOGIN_LOCK_SECONDS = 60
    settings.GLABELLA_LOGIN_LOCK_MAX_SECONDS = 300
    seen = []
    for _ in range(5):
        lockout.register_failure("auditor@alpha.test", None)
        lock = lockout.register_failure("auditor@alpha.test", None)
        assert lock is not None
        seen.append(lock.seconds_left)
        # Time passes: the lock ends (the back-off level stays).
        LoginThrottle.objects.filter(key="user:auditor@alpha.test").update(
            locked_until=timezone.now() - timedelta(seconds=1)
        )
    assert seen == [60, 120, 240, 300, 300]


def test_a_success_resets_the_accounts_count_but_not_the_addresss(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 3
    client = Client()
    for _ in range(2):
        _try(client, "front_desk@alpha.test", "wrong-password-here")
    assert _try(client, "front_desk@alpha.test", PASSWORD).status_code == 302
    row = LoginThrottle.objects.get(key="user:front_desk@alpha.test")
    assert (row.failures, row.lockouts) == (0, 0)
    assert LoginThrottle.objects.get(key="ip:10.0.0.1").failures == 2
    # Two more failures do not lock: the count started again.
    for _ in range(2):
        assert _try(Client(), "front_desk@alpha.test", "wrong-password-here").status_code == 200


def test_old_failures_stop_counting(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 3
    settings.GLABELLA_LOGIN_LOCK_MAX_SECONDS = 600
    lockout.register_failure("auditor@alpha.test", None)
    lockout.register_failure("auditor@alpha.test", None)
    LoginThrottle.objects.filter(key="user:auditor@alpha.test").update(
        last_failure_at=timezone.now() - timedelta(seconds=601)
    )
    assert lockout.register_failure("auditor@alpha.test", None) is None
    assert LoginThrottle.objects.get(key="user:auditor@alpha.test").failures == 1


def test_one_address_trying_many_accounts_is_locked_at_four_times_the_threshold(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 2
    answers = [
        _try(Client(), f"guess{i}@alpha.test", "wrong-password-here", ip="192.0.2.7")
        for i in range(8)
    ]
    assert [r.status_code for r in answers] == [200] * 7 + [429]
    page = answers[-1].content.decode()
    assert "from this device or network" in page
    # Even a real account with its right password, from that address.
    assert _try(Client(), "front_desk@alpha.test", PASSWORD, ip="192.0.2.7").status_code == 429
    # Another address is not affected.
    assert _try(Client(), "front_desk@alpha.test", PASSWORD, ip="192.0.2.8").status_code == 302


def test_an_owner_unlocks_an_account(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 2
    for _ in range(2):
        _try(Client(), "front_desk@alpha.test", "wrong-password-here", ip=f"10.0.0.{_}")
    assert lockout.is_locked("front_desk@alpha.test")
    assert lockout.locked_until("front_desk@alpha.test") is not None
    assert lockout.clear("Front_Desk@alpha.test") is True
    assert not lockout.is_locked("front_desk@alpha.test")
    assert lockout.locked_until("front_desk@alpha.test") is None
    assert lockout.clear("front_desk@alpha.test") is False
    assert _try(Client(), "front_desk@alpha.test", PASSWORD, ip="10.0.0.9").status_code == 302


def test_wrong_second_step_codes_count_and_end_the_half_signed_in_session(world, settings):
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 3
    client = Client()
    response = _try(client, "injector@alpha.test", PASSWORD)
    step = response["Location"]
    for _ in range(2):
        assert client.post(step, {"code": "000000"}, REMOTE_ADDR="10.0.0.1").status_code == 422
    response = client.post(step, {"code": "000000"}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The password step refuses now, even with the right password and a fresh code.
    response = _try(Client(), "injector@alpha.test", PASSWORD, ip="10.0.0.2")
    assert response.status_code == 429


def test_the_password_alone_does_not_reset_the_count_of_a_two_step_account(world, settings):
    """Otherwise the password, once known, would allow endless code guessing."""
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 3
    client = Client()
    step = _try(client, "injector@alpha.test", PASSWORD)["Location"]
    client.post(step, {"code": "000000"})
    client.post(step, {"code": "111111"})
    client = Client()
    step = _try(client, "injector@alpha.test", PASSWORD)["Location"]
    assert client.post(step, {"code": "222222"}).status_code == 429
    # A right code after the lock ends resets it.
    LoginThrottle.objects.update(locked_until=None)
    client = Client()
    step = _try(client, "injector@alpha.test", PASSWORD)["Location"]
    assert client.post(step, {"code": totp_code(world.users["injector"])}).status_code == 302
    assert LoginThrottle.objects.get(key="user:injector@alpha.test").failures == 0


def test_two_processes_counting_at_once_lose_no_failure(live_world, settings):
    """Threads with their own database connections, all counting the same key at once."""
    settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = 1000
    workers, each = 8, 10
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            barrier.wait()
            for _ in range(each):
                lockout.register_failure("race@alpha.test", "198.51.100.1")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert LoginThrottle.objects.get(key="user:race@alpha.test").failures == workers * each
    assert LoginThrottle.objects.get(key="ip:198.51.100.1").failures == workers * each
