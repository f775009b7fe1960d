"""Personal API tokens: created, shown once, stored only as a hash, checked on every request.

A token is ``glb_`` followed by 43 URL-safe characters (32 random bytes). The database holds
its SHA-256 and the first 8 characters, so neither a backup nor an export can be used to call
the API. A token acts as its user in the membership it was made in: the same organization,
clinic and role, never more. Revoking it, expiring it, or making the user or the membership
inactive stops it at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import ApiToken, Membership
from glabella.audit import services as audit

PREFIX = "glb_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    actor: Actor, *, name: str, membership: Membership, expires_at: datetime | None = None
) -> NewToken:
    """A new token for MEMBERSHIP's user, named NAME. Only that user (or the system) may."""
    actor.require("api.token")
    name = name.strip()
    if not name:
        raise ValueError("Give the token a name, so you can tell it apart later.")
    if len(name) > 100:
        raise ValueError("The name is too long (at most 100 characters).")
    if actor.user is not None and actor.user.pk != membership.user_id:
        raise PermissionError("You can only create tokens for yourself.")
    if membership.organization_id != actor.organization.pk or not membership.is_active:
        raise PermissionError("That membership is not active in this organization.")
    secret = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=membership.organization,
            user=membership.user,
            membership=membership,
            name=name,
            prefix=secret[: len(PREFIX) + 4],
            token_hash=hash_token(secret),
            created_at=timezone.now(),
            expires_at=expires_at,
        )
        audit.record(actor, "create", token, label=str(token), detail={"name": name})
    return NewToken(token=token, secret=secret)


def revoke_token(actor: Actor, token: ApiToken) -> None:
    """Revoke TOKEN (its owner, or an owner of the organization). Revoking twice is a no-op."""
    if token.organization_id != actor.organization.pk:
        raise PermissionError("No such token.")
    mine = actor.user is not None and actor.user.pk == token.user_id
    if not mine and not actor.can("organization.manage"):
        raise PermissionError("You can only revoke your own tokens.")
    if token.revoked_at is not None:
        return
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.revoked_by = actor.user
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(actor, "update", token, label=str(token), detail={"revoked": True})


# Why a bearer token was refused, in words (the 401 answer says which; the caller holds the
# secret, so naming the reason reveals nothing they could not know).
SIGN_IN = (
    "Sign in with a personal API token: send the header "
    "'Authorization: Bearer <token>'. Tokens are made on your settings page."
)
UNKNOWN = "That API token is not known. Check you copied all of it, or make a new one."
REVOKED = "That API token was revoked. Make a new one on your settings page."
EXPIRED = "That API token has expired. Make a new one on your settings page."
INACTIVE = "That API token's account or clinic role has been switched off. Ask your clinic's owner."


@dataclass(frozen=True)
class TokenCheck:
    """The result of checking a bearer token: the actor, or the reason it was refused."""

    actor: Actor | None
    problem: str = ""


def check_token(raw: str, *, ip: str = "", request_id: str = "", via: str = "api") -> TokenCheck:
    """The actor a bearer token stands for, or why there is none (unknown, revoked, expired,
    or its user or membership inactive). Notes when it was last used (at most once a minute)."""
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return TokenCheck(None, UNKNOWN)
    token = (
        ApiToken.objects.select_related(
            "membership", "membership__clinic", "membership__organization", "user"
        )
        .filter(token_hash=hash_token(raw))
        .first()
    )
    if token is None:
        return TokenCheck(None, UNKNOWN)
    if token.revoked_at is not None:
        return TokenCheck(None, REVOKED)
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return TokenCheck(None, EXPIRED)
    m = token.membership
    if not m.is_active or not token.user.is_active:
        return TokenCheck(None, INACTIVE)
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    actor = Actor(
        organization=m.organization,
        user=token.user,
        clinic=m.clinic,
        role=m.role,
        ip=ip,
        request_id=request_id,
        via=via,
    )
    return TokenCheck(actor)


def actor_for_token(
    raw: str, *, ip: str = "", request_id: str = "", via: str = "api"
) -> Actor | None:
    """The actor a bearer token stands for, or None (unknown, revoked, expired or inactive)."""
    return check_token(raw, ip=ip, request_id=request_id, via=via).actor


def check_request(request: object, via: str = "api") -> TokenCheck:
    """Check the ``Authorization: Bearer <token>`` header of REQUEST."""
    meta = getattr(request, "META", {})
    header = str(meta.get("HTTP_AUTHORIZATION", ""))
    scheme, _, raw = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return TokenCheck(None, SIGN_IN)
    return check_token(
        raw.strip(),
        ip=str(meta.get("REMOTE_ADDR", "")),
        request_id=str(getattr(request, "request_id", "")),
        via=via,
    )


def actor_for_request(request: object, via: str = "api") -> Actor | None:
    """The actor of an ``Authorization: Bearer <token>`` header, or None."""
    return check_request(request, via=via).actor
