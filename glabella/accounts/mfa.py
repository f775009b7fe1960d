"""Two-step sign-in: an authenticator app (TOTP, RFC 6238) with one-time recovery codes.

Who must use it: every member whose role is owner, prescriber or injector (they can change
clinical records, stock or the organization), unless GLABELLA_MFA_REQUIRED is off (the laptop
demo only; ``check --deploy`` warns about it). Others may set it up and then must use it too.

The session remembers two moments:

- ``SESSION_MFA_AT``: when the second step was passed in this session (absent: not passed);
- ``SESSION_AUTH_AT``: when the password (and code) was last typed, for actions that ask for
  it again (``recently_authenticated``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING

import pyotp
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from glabella.accounts.models import Membership, RecoveryCode, TotpDevice
from glabella.accounts.roles import Role
from glabella.audit.models import Action
from glabella.audit.services import append, record

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase
    from django.http import HttpRequest

    from glabella.accounts.actor import Actor
    from glabella.accounts.models import User

ROLES_REQUIRING_MFA = frozenset({Role.OWNER, Role.PRESCRIBER, Role.INJECTOR})
SESSION_MFA_AT = "glabella_mfa_at"
SESSION_AUTH_AT = "glabella_auth_at"
ISSUER = "Glabella"
STEP_SECONDS = 30
VALID_WINDOW = 1  # one step either side: a phone clock a little off still works
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


# --- who needs it ----------------------------------------------------------------------------


def mfa_required(user: User) -> bool:
    """True when USER must pass the second step: a role that requires it, or a device set up."""
    return has_device(user) or role_requires_mfa(user)


def role_requires_mfa(user: User) -> bool:
    """True when one of USER's active roles requires the second step (and it is switched on)."""
    if not getattr(settings, "GLABELLA_MFA_REQUIRED", True):
        return False
    return Membership.objects.filter(
        user=user, is_active=True, role__in=ROLES_REQUIRING_MFA
    ).exists()


def has_device(user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


# --- the session -----------------------------------------------------------------------------


def mark_verified(session: SessionBase) -> None:
    """The second step was passed now (also counts as a fresh sign-in for re-authentication)."""
    now = int(time.time())
    session[SESSION_MFA_AT] = now
    session[SESSION_AUTH_AT] = now


def is_verified(session: SessionBase) -> bool:
    return SESSION_MFA_AT in session


def mark_reauthenticated(session: SessionBase) -> None:
    session[SESSION_AUTH_AT] = int(time.time())


def recently_authenticated(session: SessionBase, seconds: int | None = None) -> bool:
    """True when the password was typed in this session within SECONDS (default:
    GLABELLA_REAUTH_SECONDS)."""
    window = seconds if seconds is not None else settings.GLABELLA_REAUTH_SECONDS
    at = session.get(SESSION_AUTH_AT)
    return isinstance(at, int) and time.time() - at <= window


# --- authenticator app (TOTP) ----------------------------------------------------------------


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=ISSUER
    )


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in str(code) if not ch.isspace() and ch != "-").lower()


def _matching_step(secret: str, code: str, at: float) -> int | None:
    """The step (of the window around AT) whose code is CODE, or None."""
    digits = _normalise_code(code)
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    now_step = int(at // STEP_SECONDS)
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), digits):
            return step
    return None


def verify_totp(device: TotpDevice, code: str, *, at: float | None = None) -> bool:
    """True when CODE is the app's code now (± one step) and later than the last one accepted.

    The step is recorded with a conditional update, so two requests racing with the same code
    cannot both pass.
    """
    step = _matching_step(device.secret, code, time.time() if at is None else at)
    if step is None:
        return False
    updated = TotpDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(
        last_used_step=step
    )
    if updated:
        device.last_used_step = step
    return bool(updated)


def pending_device(user: User) -> TotpDevice:
    """The device being set up: the unconfirmed one already there (so reloading the setup page
    keeps the QR code the user may have scanned), else a new one with a fresh secret. Raises
    ValueError when a confirmed device exists."""
    device = TotpDevice.objects.filter(user=user).first()
    if device is None:
        device, _ = TotpDevice.objects.get_or_create(user=user, defaults={"secret": new_secret()})
    if device.confirmed_at is not None:
        raise ValueError("An authenticator app is already set up. Remove it first to replace it.")
    return device


def start_setup(user: User) -> TotpDevice:
    """A new, unconfirmed device with a fresh secret (replacing an unconfirmed one)."""
    TotpDevice.objects.filter(user=user, confirmed_at__isnull=True).delete()
    device, created = TotpDevice.objects.get_or_create(user=user, defaults={"secret": new_secret()})
    if not created and device.confirmed_at is not None:
        raise ValueError("An authenticator app is already set up. Remove it first to replace it.")
    return device


@transaction.atomic
def confirm_setup(device: TotpDevice, code: str) -> list[str] | None:
    """Confirm DEVICE with a first code from the app: returns fresh recovery codes (shown once),
    or None when the code is wrong."""
    if not verify_totp(device, code):
        return None
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at"])
    return new_recovery_codes(device.user)


# --- recovery codes --------------------------------------------------------------------------


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalise_code(code).encode()).hexdigest()


def new_recovery_codes(user: User) -> list[str]:
    """Replace USER's recovery codes with RECOVERY_CODE_COUNT new ones, returned once in clear
    ("abcde-fghjk": 10 characters from a 31-letter alphabet, about 50 bits each)."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(user=user, code_hash=_hash_code(c)) for c in codes
        )
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """True (and the code is spent) when CODE is one of USER's unused recovery codes."""
    if len(_normalise_code(code)) != 10:
        return False
    updated = RecoveryCode.objects.filter(
        user=user, code_hash=_hash_code(code), used_at__isnull=True
    ).update(used_at=timezone.now())
    return bool(updated)


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def verify_second_factor(user: User, code: str) -> str | None:
    """Check CODE as an app code, then as a recovery code: "totp", "recovery" or None."""
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    if device is not None and verify_totp(device, code):
        return "totp"
    if use_recovery_code(user, code):
        return "recovery"
    return None


def secret_for_typing(secret: str) -> str:
    """The secret in groups of four, for typing into an app that cannot scan."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(uri: str) -> str:
    """The QR code of URI as an inline <svg> element (no script, no style attribute)."""
    import segno

    return str(
        segno.make(uri, error="m").svg_inline(scale=5, border=2, omitsize=True, light="#fff")
    )


# --- audited services ------------------------------------------------------------------------
#
# Two-step events are audited with the existing actions and a "two_step" detail:
#   set up            -> Action.SETUP        {"two_step": "app set up"}
#   code refused      -> Action.LOGIN_FAILED {"two_step": "wrong code"}
#   recovery code     -> Action.LOGIN        {"two_step": "recovery code used", "left": n}
#   codes regenerated -> Action.UPDATE       {"two_step": "new recovery codes"}
#   reset by an owner -> Action.UPDATE       {"two_step": "reset"}


def _org_of(user: User) -> object:
    m = Membership.objects.filter(user=user, is_active=True).select_related("organization").first()
    return m.organization if m else None


def audit_user_event(
    request: HttpRequest | None, user: User, action: str, detail: dict[str, object]
) -> None:
    """An event about USER done by USER (signing in: there may be no Actor yet)."""
    from glabella.accounts.actor import client_ip

    append(
        organization=_org_of(user),  # type: ignore[arg-type]
        user=user,
        actor_label=user.email,
        action=action,
        object_type="accounts.user",
        object_id=str(user.pk),
        object_label=user.email,
        ip=client_ip(request) if request is not None else "",
        request_id=getattr(request, "request_id", "") if request is not None else "",
        detail=detail,
    )


@transaction.atomic
def finish_setup(request: HttpRequest | None, device: TotpDevice, code: str) -> list[str] | None:
    """Confirm DEVICE with a first code (audited): the recovery codes, or None."""
    codes = confirm_setup(device, code)
    if codes is not None:
        audit_user_event(request, device.user, Action.SETUP, {"two_step": "app set up"})
    return codes


def regenerate_recovery_codes(request: HttpRequest | None, user: User) -> list[str]:
    """New recovery codes for USER (the old ones stop working), audited."""
    with transaction.atomic():
        codes = new_recovery_codes(user)
        audit_user_event(request, user, Action.UPDATE, {"two_step": "new recovery codes"})
    return codes


def reset(actor: Actor, user: User) -> bool:
    """Remove USER's authenticator app and recovery codes (a lost phone): the next sign-in
    sets up a new app when the role requires one. Only an owner of an organization USER works
    for (or USER themself). Audited. True when there was something to remove."""
    is_self = actor.user is not None and actor.user.pk == user.pk
    if not is_self:
        actor.require("organization.manage")
        if not Membership.objects.filter(user=user, organization=actor.organization).exists():
            raise PermissionDenied("That person does not work for your organization.")
    with transaction.atomic():
        removed, _ = TotpDevice.objects.filter(user=user).delete()
        codes, _ = RecoveryCode.objects.filter(user=user).delete()
        record(
            actor,
            Action.UPDATE,
            user,
            label=user.email,
            detail={"two_step": "reset", "had_app": bool(removed), "recovery_codes": codes},
        )
    return bool(removed or codes)
