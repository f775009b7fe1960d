"""Writers for organizations, clinics and memberships."""

from __future__ import annotations

import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, Organization, User, validate_timezone
from glabella.accounts.roles import Role
from glabella.audit.models import Action
from glabella.audit.services import record


def setup_organization(
    *,
    org_name: str,
    clinic_name: str,
    timezone: str,
    owner_email: str,
    password: str,
    clinic_address: str = "",
) -> tuple[Organization, Clinic, User]:
    """First start: an organization, its first clinic and its owner. Refuses a second run."""
    org_name = org_name.strip()
    clinic_name = clinic_name.strip()
    owner_email = owner_email.strip().lower()
    errors: dict[str, str] = {}
    if not org_name:
        errors["org"] = "The organization needs a name."
    elif Organization.objects.filter(name__iexact=org_name).exists():
        errors["org"] = (
            f"An organization called {org_name!r} already exists; setup has already run."
        )
    if not clinic_name:
        errors["clinic"] = "The clinic needs a name."
    try:
        validate_timezone(timezone)
    except ValidationError as exc:
        errors["timezone"] = exc.messages[0]
    try:
        validate_email(owner_email)
    except ValidationError:
        errors["owner_email"] = f"{owner_email!r} is not a valid e-mail address."
    existing = User.objects.filter(email__iexact=owner_email).first()
    if existing is not None and existing.memberships.exists():
        errors["owner_email"] = f"{owner_email} already works for an organization."
    if existing is None:
        try:
            validate_password(password, User(email=owner_email))
        except ValidationError as exc:
            errors["password"] = " ".join(exc.messages)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        org = Organization.objects.create(name=org_name)
        clinic = Clinic.objects.create(
            organization=org, name=clinic_name, timezone=timezone, address=clinic_address
        )
        user = existing or User.objects.create_user(owner_email, password)
        Membership.objects.create(user=user, clinic=clinic, organization=org, role=Role.OWNER)
        # Every clinic starts with a (clearly marked) default consent form per category.
        from glabella.consent.services import ensure_default_templates

        ensure_default_templates(org, created_by=user)
        record(
            Actor.system(org, via="setup"),
            Action.SETUP,
            org,
            label=org.name,
            detail={"clinic": clinic.name, "owner": owner_email},
        )
    return org, clinic, user


def add_clinic(actor: Actor, *, name: str, timezone: str, address: str = "") -> Clinic:
    actor.require("organization.manage")
    validate_timezone(timezone)
    with transaction.atomic():
        clinic = Clinic.objects.create(
            organization=actor.organization, name=name.strip(), timezone=timezone, address=address
        )
        record(actor, Action.CREATE, clinic, label=clinic.name)
    return clinic


def add_member(
    actor: Actor,
    *,
    email: str,
    clinic: Clinic,
    role: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    temporary: bool = False,
) -> Membership:
    """Give a person a role at a clinic, creating their account if they have none. TEMPORARY:
    the password is one handed over (the team page's); a new account must change it at its
    first sign-in."""
    actor.require("organization.manage")
    if clinic.organization_id != actor.organization.pk:
        raise ValidationError({"clinic": "That clinic is not part of your organization."})
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    email = email.strip().lower()
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            validate_password(
                password, User(email=email, first_name=first_name, last_name=last_name)
            )
            user = User.objects.create_user(
                email,
                password,
                first_name=first_name,
                last_name=last_name,
                must_change_password=temporary,
            )
        elif user.memberships.exclude(organization=actor.organization).exists():
            raise ValidationError({"email": "That person works for another organization."})
        elif user.memberships.filter(clinic=clinic).exists():
            raise ValidationError(
                {"email": f"{email} already works at {clinic.name}; change their role instead."}
            )
        membership = Membership.objects.create(
            user=user, clinic=clinic, organization=actor.organization, role=role
        )
        record(actor, Action.CREATE, membership, label=str(membership), detail={"role": role})
    return membership


# --- the owner's team page: roles, switching members off and on -------------------------------

LAST_OWNER_MESSAGE = "You are the last owner; make someone else owner first."


def _role_words(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def _lock_owners(organization: Organization) -> None:
    """Serialise changes to who is owner in ORGANIZATION (two owners demoting each other at the
    same moment must not leave nobody): lock the organization's row until the transaction ends."""
    Organization.objects.select_for_update().filter(pk=organization.pk).first()


def _other_active_owner(membership: Membership) -> bool:
    return (
        Membership.objects.filter(
            organization=membership.organization_id, role=Role.OWNER, is_active=True
        )
        .exclude(pk=membership.pk)
        .exists()
    )


def _member_in_org(actor: Actor, membership: Membership) -> Membership:
    """MEMBERSHIP re-read (locked) in ACTOR's organization: another organization's is refused."""
    found = (
        Membership.objects.select_for_update()
        .filter(organization=actor.organization, pk=membership.pk)
        .select_related("user", "clinic")
        .first()
    )
    if found is None:
        raise ValidationError("That person does not work for your organization.")
    return found


def change_role(actor: Actor, membership: Membership, role: str) -> Membership:
    """Give MEMBERSHIP another role. It takes effect on the member's next page (the middleware
    reads the membership on every request). The last active owner cannot stop being owner."""
    actor.require("organization.manage")
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with transaction.atomic():
        _lock_owners(actor.organization)
        m = _member_in_org(actor, membership)
        before = m.role
        if before == role:
            return m
        if before == Role.OWNER and m.is_active and not _other_active_owner(m):
            raise ValidationError({"role": LAST_OWNER_MESSAGE})
        m.role = role
        m.save(update_fields=["role"])
        record(
            actor,
            Action.UPDATE,
            m,
            label=(
                f"Role of {m.user.email} at {m.clinic.name} changed from "
                f"{_role_words(before)} to {_role_words(role)}"
            ),
            detail={
                "change": "role",
                "member": m.user.email,
                "clinic": m.clinic.name,
                "before": before,
                "after": role,
            },
        )
    membership.role = m.role
    return m


def set_member_active(actor: Actor, membership: Membership, active: bool) -> Membership:
    """Switch a member off (they can no longer sign in to that clinic; their API tokens for it
    stop working) or back on. The last active owner cannot be switched off."""
    actor.require("organization.manage")
    with transaction.atomic():
        _lock_owners(actor.organization)
        m = _member_in_org(actor, membership)
        if m.is_active == active:
            return m
        if not active and m.role == Role.OWNER and not _other_active_owner(m):
            raise ValidationError(LAST_OWNER_MESSAGE)
        m.is_active = active
        m.save(update_fields=["is_active"])
        what = "switched back on" if active else "switched off"
        record(
            actor,
            Action.UPDATE,
            m,
            label=f"{m.user.email} ({_role_words(m.role)} at {m.clinic.name}) {what}",
            detail={
                "change": "active",
                "member": m.user.email,
                "clinic": m.clinic.name,
                "before": not active,
                "after": active,
            },
        )
    membership.is_active = m.is_active
    return m


def temporary_password() -> str:
    """A password to hand over in person: four groups of five letters and digits that are easy
    to read aloud (about 100 bits). The member changes it from "Your settings"."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))
