"""The role matrix, row by row: what each role may do is decided in one place."""

import pytest

from glabella.accounts.roles import PERMISSIONS, WRITE_PERMISSIONS, Role, can, permissions_for

CLINICAL_READ = {
    "patient.view_clinical",
    "consent.view",
    "session.view",
    "outcome.view",
    "photo.view",
}
CLINICAL_RECORD = {"outcome.record", "photo.take"}
PATIENT_WRITE = {
    "patient.create",
    "patient.edit_contact",
    "patient.edit_clinical",
    "consent.record",
}
# fmt: off
EXPECTED = {
    # The owner runs the business; charting and signing are for the clinicians.
    Role.OWNER: {
        "patient.view_contact", *CLINICAL_READ, *PATIENT_WRITE, "consent.manage_templates",
        *CLINICAL_RECORD, "portal.manage",
        "appointment.view", "appointment.edit", "audit.view", "organization.manage",
        "stock.view", "stock.receive", "stock.manage", "stock.recall",
        "api.token", "data.import", "data.export",
    },
    Role.PRESCRIBER: {
        "patient.view_contact", *CLINICAL_READ, *PATIENT_WRITE, "consent.manage_templates",
        "session.chart", "session.sign", "session.override",
        *CLINICAL_RECORD, "outcome.decide", "portal.manage",
        "appointment.view", "appointment.edit",
        "stock.view", "stock.receive", "stock.use", "stock.recall", "api.token",
    },
    Role.INJECTOR: {
        "patient.view_contact", *CLINICAL_READ, *PATIENT_WRITE,
        "session.chart", "session.sign", "appointment.view", "appointment.edit",
        *CLINICAL_RECORD, "portal.manage",
        "stock.view", "stock.receive", "stock.use", "api.token",
    },
    Role.FRONT_DESK: {
        "patient.view_contact", "patient.create", "patient.edit_contact",
        "appointment.view", "appointment.edit", "stock.view", "stock.receive",
        "portal.manage", "api.token", "patient.break_glass",
    },
    Role.AUDITOR: {
        "patient.view_contact", *CLINICAL_READ, "appointment.view", "audit.view",
        "stock.view", "stock.recall", "api.token",
    },
}
# fmt: on


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


def test_only_a_prescriber_may_override_a_dose_finding():
    assert [r for r in Role if can(r, "session.override")] == [Role.PRESCRIBER]


def test_no_role_and_unknown_permission():
    assert not can(None, "patient.view_contact")
    with pytest.raises(KeyError, match="Unknown permission"):
        can(Role.OWNER, "patient.delete")


def test_may_in_a_template_answers_every_permission_as_can_does():
    """``may.<permission>`` (the membership context processor) for every role and permission,
    and nothing for a permission that does not exist."""
    from django.template import Context, Template

    from glabella.accounts.context_processors import _Perms

    roles = [None, *Role]
    for role in roles:
        may = _Perms(role)
        for permission in PERMISSIONS:
            name = permission.replace(".", "__")
            text = Template("{% if may." + name + " %}yes{% else %}no{% endif %}").render(
                Context({"may": may})
            )
            assert text == ("yes" if can(role, permission) else "no"), (role, permission)
            assert getattr(may, name) is can(role, permission)
        unknown = Template("[{{ may.patient__fly }}]{% if may.nothing %}x{% endif %}")
        assert unknown.render(Context({"may": may})) == "[]"
