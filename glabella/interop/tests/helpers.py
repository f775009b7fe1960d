"""Test helpers shared by the interop tests: a client that carries a personal API token."""

from __future__ import annotations

from django.test import Client

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.accounts.tokens import create_token


def token_for(world, role: str) -> str:
    """A fresh API token for ROLE of WORLD (or of the outsider, role "outsider")."""
    if role == "outsider":
        m = Membership.objects.get(user=world.outsider)
    else:
        m = Membership.objects.get(user=world.users[role], clinic=world.clinic)
    me = Actor(m.organization, m.user, m.clinic, m.role)
    return create_token(me, name=f"test {role}", membership=m).secret


def api_client(world, role: str) -> Client:
    """A Django test client sending ``Authorization: Bearer <token>`` for ROLE."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_for(world, role)}")
