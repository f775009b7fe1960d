"""glabella token create|list|revoke: personal API tokens from the command line.

    glabella token create --email EMAIL --name NAME [--clinic ID] [--expires-days N]
    glabella token list --email EMAIL
    glabella token revoke --email EMAIL --prefix PREFIX

``create`` prints the secret once (only its hash is stored). The token acts as the user in one
membership: ``--clinic`` chooses it when the user works at several clinics.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import ApiToken, Membership, User
from glabella.accounts.tokens import create_token, hash_token, revoke_token


def _user(email: str) -> User:
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise CommandError(f"There is no account with the e-mail {email}.")
    if not user.is_active:
        raise CommandError(f"The account {user.email} is switched off: its tokens cannot work.")
    return user


def _state(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return f"revoked {timezone.localtime(token.revoked_at):%Y-%m-%d %H:%M}"
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return "expired"
    if not token.membership.is_active:
        return "inactive (role switched off)"
    return "active"


def _when(value: Any) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else "never"


class Command(BaseCommand):
    help = "Create, list or revoke a person's personal API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = sub.add_parser("create", help="make a token; prints it once")
        create.add_argument("--email", required=True, help="whose token it is")
        create.add_argument("--name", required=True, help="what it is for")
        create.add_argument("--clinic", type=int, help="the clinic id of the membership it acts in")
        create.add_argument(
            "--expires-days", type=int, help="it stops working after N days (default: never)"
        )
        listing = sub.add_parser("list", help="a person's tokens (never the secrets)")
        listing.add_argument("--email", required=True)
        revoke = sub.add_parser("revoke", help="stop a token from working, now")
        revoke.add_argument("--email", required=True)
        revoke.add_argument("--prefix", required=True, help="the first characters (glb_xxxx)")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        user = _user(options["email"])
        memberships = list(
            Membership.objects.filter(user=user, is_active=True).select_related(
                "clinic", "organization"
            )
        )
        if options["clinic"] is not None:
            memberships = [m for m in memberships if m.clinic_id == options["clinic"]]
            if not memberships:
                raise CommandError(
                    f"{user.email} has no active role at clinic {options['clinic']}. "
                    "Nothing was created."
                )
        if not memberships:
            raise CommandError(f"{user.email} has no active role at any clinic.")
        if len(memberships) > 1:
            where = "; ".join(
                f"--clinic {m.clinic_id} ({m.clinic.name}, {m.get_role_display()})"
                for m in memberships
            )
            raise CommandError(
                f"{user.email} works at several clinics: choose one with {where}. "
                "Nothing was created."
            )
        m = memberships[0]
        days = options["expires_days"]
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--expires-days must be from 1 to 3650. Nothing was created.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        me = Actor(m.organization, user, m.clinic, m.role, via="command")
        try:
            new = create_token(me, name=options["name"], membership=m, expires_at=expires_at)
        except (ValueError, PermissionError, PermissionDenied) as exc:
            raise CommandError(f"{exc} Nothing was created.") from None
        until = f"until {_when(expires_at)}" if expires_at else "with no expiry"
        self.stdout.write(
            f"Token “{new.token.name}” for {user.email}, acting as {m.get_role_display()} at "
            f"{m.clinic.name} ({m.organization.name}), {until}:"
        )
        self.stdout.write(new.secret)
        self.stdout.write(
            "Copy it now: it will not be shown again (only its hash is stored). "
            "Send it as 'Authorization: Bearer <token>'."
        )

    def _list(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None:
            raise CommandError(f"There is no account with the e-mail {options['email']}.")
        tokens = ApiToken.objects.filter(user=user).select_related("membership__clinic")
        if not tokens:
            self.stdout.write(f"{user.email} has no API tokens.")
            return
        for t in tokens:
            self.stdout.write(
                f"{t.prefix}…  {t.name}  ({t.membership.get_role_display()} at "
                f"{t.membership.clinic.name})  created {_when(t.created_at)}  "
                f"last used {_when(t.last_used_at)}  expires {_when(t.expires_at)}  {_state(t)}"
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None:
            raise CommandError(f"There is no account with the e-mail {options['email']}.")
        prefix = options["prefix"].strip().rstrip("…").rstrip(".")
        if len(prefix) < 6:
            raise CommandError("Give the token's first characters as listed (glb_xxxx).")
        found = [
            t
            for t in ApiToken.objects.filter(user=user).select_related("organization")
            if t.prefix.startswith(prefix) or prefix.startswith(t.prefix)
        ]
        active = [t for t in found if t.revoked_at is None]
        if not found:
            raise CommandError(f"{user.email} has no token starting with {prefix}.")
        if not active:
            self.stdout.write(f"That token of {user.email} was already revoked.")
            return
        if len(active) > 1:
            # Two tokens may share their first characters: the whole token tells them apart.
            active = [t for t in active if t.token_hash == hash_token(prefix)] or active
        if len(active) > 1:
            raise CommandError(
                f"{len(active)} active tokens of {user.email} start with {prefix}: give the "
                "whole token, or revoke them on the settings page. Nothing was revoked."
            )
        token = active[0]
        revoke_token(Actor.system(token.organization, via="command"), token)
        self.stdout.write(f"Revoked {token} of {user.email}: it no longer works.")
