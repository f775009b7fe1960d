"""Lockout with back-off after repeated failed sign-ins.

Failures are counted under two keys:

- ``user:<lowercased e-mail>`` — whether or not such an account exists, so the answer never
  tells which e-mail addresses have accounts;
- ``ip:<client address>`` — with a higher threshold (``IP_FACTOR`` times the account's), so
  one address trying many e-mails is slowed down too.

After ``GLABELLA_LOGIN_FAILURES_BEFORE_LOCK`` failures a key is locked for
``GLABELLA_LOGIN_LOCK_SECONDS``; each further lockout doubles that, up to
``GLABELLA_LOGIN_LOCK_MAX_SECONDS``. A successful sign-in resets the account's count (not the
address's: one good account must not wipe out an attacker's count). Failures older than the
longest lock no longer count, and the back-off level is forgotten after a day without failures.

Counting is atomic across processes: the failure is added by one UPDATE ... SET failures =
failures + 1 (which also takes the row's lock), so two processes counting at once never lose
one. Wrong second-step codes and wrong passwords on re-authentication count the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.utils import timezone

from glabella.accounts.models import LoginThrottle

if TYPE_CHECKING:
    from django.http import HttpRequest

IP_FACTOR = 4
FORGET_BACKOFF_AFTER = timedelta(days=1)


def account_key(email: str) -> str:
    return f"user:{(email or '').strip().lower()[:300]}"


def address_key(ip: str) -> str:
    return f"ip:{(ip or '').strip()[:300]}"


def _threshold(key: str) -> int:
    base = max(1, int(settings.GLABELLA_LOGIN_FAILURES_BEFORE_LOCK))
    return base * IP_FACTOR if key.startswith("ip:") else base


def _lock_seconds(lockouts_before: int) -> int:
    base = max(1, int(settings.GLABELLA_LOGIN_LOCK_SECONDS))
    ceiling = max(base, int(settings.GLABELLA_LOGIN_LOCK_MAX_SECONDS))
    # 2**n grows fast: stop doubling once past the ceiling.
    return min(ceiling, base * 2 ** min(lockouts_before, 30))


@dataclass(frozen=True)
class Lock:
    """A lock in force: which key, and how many seconds are left."""

    key: str
    seconds_left: int

    @property
    def is_account(self) -> bool:
        return self.key.startswith("user:")

    def message(self) -> str:
        """What the person at the sign-in page is told, in plain words."""
        minutes = max(1, math.ceil(self.seconds_left / 60))
        wait = "1 minute" if minutes == 1 else f"{minutes} minutes"
        if self.is_account:
            return (
                f"Too many failed attempts. Try again in {wait}, "
                "or ask your clinic's owner to unlock your account."
            )
        return f"Too many failed sign-in attempts from this device or network. Try again in {wait}."


def _keys(email: str | None, ip: str | None) -> list[str]:
    keys = []
    if email:
        keys.append(account_key(email))
    if ip:
        keys.append(address_key(ip))
    return keys


def check(email: str | None, ip: str | None) -> Lock | None:
    """The lock in force for this e-mail or this address (the longer one), or None."""
    now = timezone.now()
    rows = LoginThrottle.objects.filter(key__in=_keys(email, ip), locked_until__gt=now)
    locks = [Lock(r.key, math.ceil((r.locked_until - now).total_seconds())) for r in rows]  # type: ignore[operator]
    if not locks:
        return None
    return max(locks, key=lambda lock: lock.seconds_left)


def _count_failure(key: str) -> Lock | None:
    now = timezone.now()
    window = timedelta(seconds=max(1, int(settings.GLABELLA_LOGIN_LOCK_MAX_SECONDS)))
    with transaction.atomic():
        # One statement: every SET reads the row as it was, and the row stays locked (the
        # write lock on SQLite) until the end of this transaction.
        bumped = LoginThrottle.objects.filter(key=key).update(
            failures=Case(
                When(last_failure_at__lt=now - window, then=Value(1)),
                default=F("failures") + 1,
                output_field=PositiveIntegerField(),
            ),
            lockouts=Case(
                When(last_failure_at__lt=now - FORGET_BACKOFF_AFTER, then=Value(0)),
                default=F("lockouts"),
                output_field=PositiveIntegerField(),
            ),
            last_failure_at=now,
        )
        if not bumped:
            try:
                with transaction.atomic():
                    LoginThrottle.objects.create(key=key, failures=1, last_failure_at=now)
            except IntegrityError:
                # Another process created it a moment ago: count on its row.
                LoginThrottle.objects.filter(key=key).update(
                    failures=F("failures") + 1, last_failure_at=now
                )
        row = LoginThrottle.objects.get(key=key)
        if row.failures < _threshold(key):
            return None
        seconds = _lock_seconds(row.lockouts)
        row.failures = 0
        row.lockouts = row.lockouts + 1
        row.locked_until = now + timedelta(seconds=seconds)
        row.save(update_fields=["failures", "lockouts", "locked_until"])
        return Lock(key, seconds)


def register_failure(email: str | None, ip: str | None) -> Lock | None:
    """Count one failed attempt for this e-mail and this address. Returns the lock that it
    started, if any (the account's when both did)."""
    started = [lock for key in _keys(email, ip) if (lock := _count_failure(key))]
    if not started:
        return None
    return max(started, key=lambda lock: (lock.is_account, lock.seconds_left))


def register_success(email: str) -> None:
    """A successful sign-in: the account's failures and back-off start again from zero."""
    LoginThrottle.objects.filter(key=account_key(email)).update(failures=0, lockouts=0)


def clear(email: str) -> bool:
    """Unlock an account now (the owner's "Unlock sign-in" on the team page): the lock, the
    failures and the back-off level are gone. True when it was locked."""
    now = timezone.now()
    was_locked = LoginThrottle.objects.filter(key=account_key(email), locked_until__gt=now).exists()
    LoginThrottle.objects.filter(key=account_key(email)).delete()
    return was_locked


def is_locked(email: str) -> bool:
    """True while the account is locked (for the team page)."""
    return LoginThrottle.objects.filter(
        key=account_key(email), locked_until__gt=timezone.now()
    ).exists()


def locked_until(email: str) -> datetime | None:
    """When the account's lock ends (a datetime), or None when it is not locked."""
    row = LoginThrottle.objects.filter(
        key=account_key(email), locked_until__gt=timezone.now()
    ).first()
    return row.locked_until if row else None


def purge(older_than: timedelta = timedelta(days=7)) -> int:
    """Forget keys with no failure and no lock for a while (rows for e-mails that were only
    ever mistyped). Returns how many were removed."""
    cutoff = timezone.now() - older_than
    deleted, _ = (
        LoginThrottle.objects.filter(last_failure_at__lt=cutoff)
        .exclude(locked_until__gt=timezone.now())
        .delete()
    )
    return deleted


def audit(request: HttpRequest | None, email: str, lock: Lock, *, refused: bool) -> None:
    """Audit a lock starting (REFUSED false) or an attempt refused while locked: a
    LOGIN_FAILED event with the lock in its detail (never the password)."""
    from glabella.accounts.actor import client_ip
    from glabella.accounts.models import Membership, User
    from glabella.audit.models import Action
    from glabella.audit.services import append

    user = User.objects.filter(email__iexact=email).first() if email else None
    m = (
        Membership.objects.filter(user=user, is_active=True).select_related("organization").first()
        if user
        else None
    )
    append(
        organization=m.organization if m else None,
        user=None,
        actor_label=email or "(no e-mail given)",
        action=Action.LOGIN_FAILED,
        object_type="accounts.user",
        object_id=str(user.pk) if user else "",
        ip=client_ip(request) if request is not None else "",
        request_id=getattr(request, "request_id", "") if request is not None else "",
        detail={
            "lockout": "refused while locked" if refused else "locked",
            "by": "account" if lock.is_account else "address",
            "seconds_left": lock.seconds_left,
        },
    )
