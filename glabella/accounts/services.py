"""Writers for organizations, clinics and memberships."""

from __future__ import annotations

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
) -> Membership:
    """Give a person a role at a clinic, creating their account if they have none."""
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
                email, password, first_name=first_name, last_name=last_name
            )
        elif user.memberships.exclude(organization=actor.organization).exists():
            raise ValidationError({"email": "That person works for another organization."})
        membership = Membership.objects.create(
            user=user, clinic=clinic, organization=actor.organization, role=role
        )
        record(actor, Action.CREATE, membership, label=str(membership), detail={"role": role})
    return membership
