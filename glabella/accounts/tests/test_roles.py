"""The role matrix, row by row: what each role may do is decided in one place."""

import pytest

from glabella.accounts.roles import PERMISSIONS, WRITE_PERMISSIONS, Role, can, permissions_for

EXPECTED = {
    Role.OWNER: {
        "patient.view_contact",
        "patient.view_clinical",
        "patient.create",
        "patient.edit_contact",
        "patient.edit_clinical",
        "appointment.view",
        "appointment.edit",
        "audit.view",
        "organization.manage",
    },
    Role.PRESCRIBER: {
        "patient.view_contact",
        "patient.view_clinical",
        "patient.create",
        "patient.edit_contact",
        "patient.edit_clinical",
        "appointment.view",
        "appointment.edit",
    },
    Role.INJECTOR: {
        "patient.view_contact",
        "patient.view_clinical",
        "patient.create",
        "patient.edit_contact",
        "patient.edit_clinical",
        "appointment.view",
        "appointment.edit",
    },
    Role.FRONT_DESK: {
        "patient.view_contact",
        "patient.create",
        "patient.edit_contact",
        "appointment.view",
        "appointment.edit",
    },
    Role.AUDITOR: {
        "patient.view_contact",
        "patient.view_clinical",
        "appointment.view",
        "audit.view",
    },
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_its_permissions(role):
    assert set(permissions_for(role)) == EXPECTED[role]


def test_every_permission_is_in_the_expected_table():
    listed = set().union(*EXPECTED.values())
    assert listed == set(PERMISSIONS), "a new permission needs a row in EXPECTED"


def test_auditor_reads_but_never_writes():
    assert not [p for p in WRITE_PERMISSIONS if can(Role.AUDITOR, p)]
    assert can(Role.AUDITOR, "patient.view_clinical")


def test_front_desk_sees_contact_and_appointments_but_no_clinical_notes():
    assert can(Role.FRONT_DESK, "patient.view_contact")
    assert can(Role.FRONT_DESK, "appointment.view")
    assert not can(Role.FRONT_DESK, "patient.view_clinical")
    assert not can(Role.FRONT_DESK, "patient.edit_clinical")


def test_no_role_and_unknown_permission():
    assert not can(None, "patient.view_contact")
    with pytest.raises(KeyError, match="Unknown permission"):
        can(Role.OWNER, "patient.delete")
