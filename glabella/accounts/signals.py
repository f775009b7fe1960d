"""Every sign-in, failed sign-in and sign-out goes into the audit chain."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from glabella.accounts.actor import client_ip
from glabella.accounts.models import Membership, User
from glabella.audit.models import Action
from glabella.audit.services import append


def _org_of(user: User | None) -> Any:
    if user is None:
        return None
    m = Membership.objects.filter(user=user, is_active=True).select_related("organization").first()
    return m.organization if m else None


def _request_bits(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {"ip": "", "request_id": ""}
    return {"ip": client_ip(request), "request_id": getattr(request, "request_id", "")}


@receiver(user_logged_in)
def on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    append(
        organization=_org_of(user),
        user=user,
        actor_label=user.email,
        action=Action.LOGIN,
        object_type="accounts.user",
        object_id=str(user.pk),
        **_request_bits(request),
    )


@receiver(user_logged_out)
def on_logout(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return
    append(
        organization=_org_of(user),
        user=user,
        actor_label=user.email,
        action=Action.LOGOUT,
        object_type="accounts.user",
        object_id=str(user.pk),
        **_request_bits(request),
    )


@receiver(user_login_failed)
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    user = User.objects.filter(email__iexact=email).first() if email else None
    append(
        organization=_org_of(user),
        user=None,
        actor_label=email or "(no e-mail given)",
        action=Action.LOGIN_FAILED,
        object_type="accounts.user",
        object_id=str(user.pk) if user else "",
        **_request_bits(request),
    )
