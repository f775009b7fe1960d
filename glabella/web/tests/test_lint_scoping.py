"""The unscoped-query lint (scripts/lint_scoping.py) on planted code: it catches what it should,
passes what is scoped, and fails the run (exit 1) with file:line messages."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "lint_scoping.py"


def _load():
    spec = importlib.util.spec_from_file_location("lint_scoping", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["lint_scoping"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lint = _load()


@pytest.fixture(scope="module")
def models():
    return lint.load_models()


def flags(source: str, models) -> list[str]:
    return lint.check_source("planted.py", source, models)


BAD = {
    "get by a bare id": "Patient.objects.get(pk=pk)",
    "filter by an id from the request": "TreatmentSession.objects.filter(patient_id=pid)",
    "all": "Lot.objects.all()",
    "chained, no scope anywhere": "Photo.objects.select_related('patient').filter(pk=pk).first()",
    "default manager": "Appointment._default_manager.filter(pk=pk)",
    "inside get_object_or_404": "get_object_or_404(Consent.objects, pk=pk)",
    "a dotted model": "models.Patient.objects.filter(family_name='X')",
    "an unrelated keyword": "Patient.objects.filter(family_name__icontains=q)",
    "an annotation on another line": "x = 1  # scoped: no\n\nPatient.objects.get(pk=pk)",
    "break-glass by id": "BreakGlass.objects.get(pk=access_pk)",
}

GOOD = {
    "for_org": "Patient.objects.for_org(org).get(pk=pk)",
    "for_org later in the chain": "Patient.objects.select_related('x').for_org(org).get(pk=pk)",
    "organization=": "Patient.objects.filter(organization=org, pk=pk)",
    "organization_id=": "Lot.objects.get(organization_id=actor.organization.pk, pk=pk)",
    "through a relation": "InjectionPoint.objects.filter(session__organization=org)",
    "patient__organization": "HistoryItem.objects.filter(patient__organization_id=org_id)",
    "inside Q": "Patient.objects.filter(Q(organization=org) | Q(pk=1))",
    "a related record in hand": "TreatmentSession.objects.filter(patient=patient)",
    "a clinic in hand": "Appointment.objects.filter(clinic=clinic)",
    "related records __in": "Vial.objects.filter(lot__in=lots)",
    "re-read to lock": "Patient.objects.select_for_update().get(pk=patient.pk)",
    "an id read off a record": "Vial.objects.get(pk=session.vial_id)",
    "pks of records in hand": "Vial.objects.filter(pk__in=[v.pk for v in vials]).update(x=1)",
    "enclosing call scopes": "get_object_or_404(Patient.objects, organization=org, pk=pk)",
    "create is a write": "Patient.objects.create(given_name='A')",
    "none": "Patient.objects.none()",
    "annotated on the line": "Patient.objects.get(pk=pk)  # scoped: the worker's own id",
    "annotated just above": "# scoped: system job over every organization\nLot.objects.all()",
    "a model without organization": "User.objects.get(pk=pk)",
    "the organization's structure": "Clinic.objects.get(pk=pk)",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_unscoped_query_is_flagged(name, models):
    found = flags(BAD[name], models)
    assert len(found) == 1, (name, found)
    assert found[0].startswith("planted.py:") and "is not scoped to an organization" in found[0]


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_scoped_or_explained_query_passes(name, models):
    assert flags(GOOD[name], models) == [], name


def test_the_message_names_the_file_line_model_and_method(models):
    source = "def view(request, pk):\n    x = 1\n    return Patient.objects.get(pk=pk)\n"
    assert flags(source, models) == [
        "planted.py:3: Patient.objects.get(...) is not scoped to an organization"
    ]


def test_the_models_are_those_with_an_organization(models):
    assert {"Patient", "TreatmentSession", "Lot", "Vial", "Photo", "BreakGlass"} <= models.scoped
    assert "InjectionPoint" not in models.scoped or "session" in models.relations["InjectionPoint"]
    assert not {"User", "Clinic", "Membership", "Organization"} & models.scoped


def _run(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_script_fails_on_planted_code_and_skips_tests_and_migrations(tmp_path):
    app = tmp_path / "app"
    (app / "tests").mkdir(parents=True)
    (app / "migrations").mkdir()
    (app / "views.py").write_text("def v(pk):\n    return Patient.objects.get(pk=pk)\n")
    (app / "ok.py").write_text(
        "def v(org, pk):\n    return Patient.objects.for_org(org).get(pk=pk)\n"
    )
    (app / "tests" / "test_x.py").write_text("Patient.objects.get(pk=1)\n")
    (app / "migrations" / "0001_x.py").write_text("Patient.objects.all()\n")
    result = _run(app)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "views.py:2: Patient.objects.get(...) is not scoped to an organization"
    )
    assert "not scoped" in result.stderr


def test_the_code_base_passes():
    result = _run("glabella")
    assert result.returncode == 0, result.stdout + result.stderr
