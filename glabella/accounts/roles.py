"""What each role may do: the one place it is written down.

Every view, API endpoint and command asks ``can(role, permission)``; nothing else
decides. The matrix is tested row by row (accounts/tests/test_roles.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    PRESCRIBER = "prescriber", "Prescriber"
    INJECTOR = "injector", "Injector"
    FRONT_DESK = "front_desk", "Front desk"
    AUDITOR = "auditor", "Auditor (read-only)"


@dataclass(frozen=True)
class Permission:
    description: str
    roles: frozenset[str]
    writes: bool


_ALL = frozenset(Role.values)
_STAFF = frozenset({Role.OWNER, Role.PRESCRIBER, Role.INJECTOR, Role.FRONT_DESK})
_CLINICAL = frozenset({Role.OWNER, Role.PRESCRIBER, Role.INJECTOR})

PERMISSIONS: dict[str, Permission] = {
    "patient.view_contact": Permission(
        "See a patient's name, date of birth and contact details",
        _ALL,
        writes=False,
    ),
    "patient.view_clinical": Permission(
        "See medical history, screening answers, safety flags and clinical notes",
        _CLINICAL | {Role.AUDITOR},
        writes=False,
    ),
    "patient.create": Permission(
        "Register a new patient",
        _STAFF,
        writes=True,
    ),
    "patient.edit_contact": Permission(
        "Change a patient's demographics, contact details and reminder consent",
        _STAFF,
        writes=True,
    ),
    "patient.edit_clinical": Permission(
        "Record medical history and screening answers",
        _CLINICAL,
        writes=True,
    ),
    "consent.view": Permission(
        "See a patient's consents and the consent templates",
        _CLINICAL | {Role.AUDITOR},
        writes=False,
    ),
    "consent.record": Permission(
        "Take a patient's consent (drawn signature or scanned paper) or record its withdrawal",
        _CLINICAL,
        writes=True,
    ),
    "consent.manage_templates": Permission(
        "Write new versions of the consent templates",
        frozenset({Role.OWNER, Role.PRESCRIBER}),
        writes=True,
    ),
    "session.view": Permission(
        "See treatment sessions, their points, findings and records",
        _CLINICAL | {Role.AUDITOR},
        writes=False,
    ),
    "session.chart": Permission(
        "Chart a draft treatment session",
        frozenset({Role.PRESCRIBER, Role.INJECTOR}),
        writes=True,
    ),
    "session.sign": Permission(
        "Sign (lock) a treatment session, amend it or void it with a reason",
        frozenset({Role.PRESCRIBER, Role.INJECTOR}),
        writes=True,
    ),
    "session.override": Permission(
        "Override a dose finding that allows it, with a written reason",
        frozenset({Role.PRESCRIBER}),
        writes=True,
    ),
    "stock.view": Permission(
        "See stock, lots, vials, alerts and the reconciliation",
        _ALL,
        writes=False,
    ),
    "stock.receive": Permission(
        "Receive deliveries and transfer stock between clinics",
        _STAFF,
        writes=True,
    ),
    "stock.use": Permission(
        "Reconstitute vials, record waste and destruction",
        frozenset({Role.PRESCRIBER, Role.INJECTOR}),
        writes=True,
    ),
    "stock.manage": Permission(
        "Adjust stock with a reason, set thresholds and prices",
        frozenset({Role.OWNER}),
        writes=True,
    ),
    "stock.recall": Permission(
        "Trace a lot to every patient who received it (with contact details)",
        frozenset({Role.OWNER, Role.PRESCRIBER, Role.AUDITOR}),
        writes=False,
    ),
    "appointment.view": Permission(
        "See appointments",
        _ALL,
        writes=False,
    ),
    "appointment.edit": Permission(
        "Book, move and cancel appointments",
        _STAFF,
        writes=True,
    ),
    "outcome.view": Permission(
        "See assessments, headache diaries, durations of effect, outcome plots and side effects",
        _CLINICAL | {Role.AUDITOR},
        writes=False,
    ),
    "outcome.record": Permission(
        "Record assessments, diary days from paper, when the effect returned, and side effects",
        _CLINICAL,
        writes=True,
    ),
    "outcome.decide": Permission(
        "Record the decision to continue or stop a treatment (chronic migraine)",
        frozenset({Role.PRESCRIBER}),
        writes=True,
    ),
    "photo.view": Permission(
        "See a patient's clinical photographs",
        _CLINICAL | {Role.AUDITOR},
        writes=False,
    ),
    "photo.take": Permission(
        "Take or upload clinical photographs",
        _CLINICAL,
        writes=True,
    ),
    "portal.manage": Permission(
        "Send a patient the link to their own pages, show its QR code, or revoke it",
        _STAFF,
        writes=True,
    ),
    "api.token": Permission(
        "Create and revoke one's own personal API tokens (a token can do only what the role can)",
        _ALL,
        writes=False,
    ),
    "data.import": Permission(
        "Import patients, medical history, past treatments and lots from CSV files",
        frozenset({Role.OWNER}),
        writes=True,
    ),
    "data.export": Permission(
        "Export all of the organization's data (FHIR bulk export, full export download)",
        frozenset({Role.OWNER}),
        writes=False,
    ),
    "patient.break_glass": Permission(
        "In an emergency, open a patient's clinical summary (allergies, history, what was "
        "injected, lot) that the role cannot otherwise see: with a reason, for a limited time, "
        "audited and shown to owners",
        frozenset({Role.FRONT_DESK}),
        writes=True,
    ),
    "audit.view": Permission(
        "Read the organization's audit log",
        frozenset({Role.OWNER, Role.AUDITOR}),
        writes=False,
    ),
    "organization.manage": Permission(
        "Manage clinics, staff and roles",
        frozenset({Role.OWNER}),
        writes=True,
    ),
}

WRITE_PERMISSIONS = frozenset(name for name, p in PERMISSIONS.items() if p.writes)


def can(role: str | None, permission: str) -> bool:
    """True when ROLE has PERMISSION. An unknown permission is a programming error."""
    if permission not in PERMISSIONS:
        raise KeyError(f"Unknown permission {permission!r}; add it to glabella/accounts/roles.py")
    return role is not None and role in PERMISSIONS[permission].roles


def permissions_for(role: str) -> list[str]:
    return sorted(name for name, p in PERMISSIONS.items() if role in p.roles)
