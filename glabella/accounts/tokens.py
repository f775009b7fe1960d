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


def actor_for_token(
    raw: str, *, ip: str = "", request_id: str = "", via: str = "api"
) -> Actor | None:
    """The actor a bearer token stands for, or None (unknown, revoked, expired or inactive)."""
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    token = (
        ApiToken.objects.select_related(
            "membership", "membership__clinic", "membership__organization", "user"
        )
        .filter(token_hash=hash_token(raw))
        .first()
    )
    if token is None or token.revoked_at is not None:
        return None
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    m = token.membership
    if not m.is_active or not token.user.is_active:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return Actor(
        organization=m.organization,
        user=token.user,
        clinic=m.clinic,
        role=m.role,
        ip=ip,
        request_id=request_id,
        via=via,
    )


def actor_for_request(request: object, via: str = "api") -> Actor | None:
    """The actor of an ``Authorization: Bearer <token>`` header, or None."""
    meta = getattr(request, "META", {})
    header = str(meta.get("HTTP_AUTHORIZATION", ""))
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    return actor_for_token(
        raw.strip(),
        ip=str(meta.get("REMOTE_ADDR", "")),
        request_id=str(getattr(request, "request_id", "")),
        via=via,
    )
