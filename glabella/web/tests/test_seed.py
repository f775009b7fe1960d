"""glabella seed: synthetic data at a tiny size, on the test database (SQLite or PostgreSQL)."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership, Organization
from glabella.charting.models import InjectionPoint, Status, TreatmentSession
from glabella.clinical import protocols
from glabella.inventory.models import Lot, StockMove, Vial
from glabella.patients import services as patient_services
from glabella.patients.models import Patient
from glabella.scheduling import recalls
from glabella.scheduling.models import Appointment, Recall
from glabella.testing_processes import migrated_sqlite
from glabella.web import seed

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[3]


def _seed(*args):
    out = io.StringIO()
    call_command("seed", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_seed_makes_a_whole_organization_at_the_asked_size():
    said = _seed("--patients", "60", "--years", "2", "--org", "Tiny", "--seed", "3")
    org = Organization.objects.get(name="Tiny")
    assert seed.is_synthetic(org)
    assert Patient.objects.filter(organization=org).count() == 60
    sessions = TreatmentSession.objects.filter(organization=org)
    assert sessions.count() == 300  # five per patient on average
    # Over the two years asked for, none in the future.
    days = [s.treated_on for s in sessions]
    today = max(days)
    assert (today - min(days)).days <= 2 * 365
    assert sessions.filter(status=Status.SIGNED).count() > 250
    # Each session's points are its protocol's layout.
    for s in sessions[:20]:
        assert s.points.count() == len(protocols.get(s.protocol_id).sites)
    assert InjectionPoint.objects.filter(organization=org).count() > 300
    if connection.vendor == "postgresql":
        # Settled after the load: vacuumed, so the pages are all-visible (ANALYZE alone
        # leaves relallvisible at 0 after a bulk insert) and the trigram lists merged.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'patients_patient'"
            )
            pages, visible = cursor.fetchone()
        assert pages > 0 and visible == pages, (pages, visible)
    # Stock: lots of every product, sealed vials received into the ledger; sessions name a lot.
    assert Lot.objects.filter(organization=org).values("product_id").distinct().count() == 3
    received = StockMove.objects.filter(organization=org, kind="receive").aggregate(n=Sum("vials"))
    assert Vial.objects.filter(organization=org, state="sealed").count() == received["n"] > 0
    assert set(sessions.values_list("lot_number", flat=True)) <= set(
        Lot.objects.filter(organization=org).values_list("lot_number", flat=True)
    )
    # Recalls came from the real rebuild, some acted on; the booked ones have appointments.
    current = Recall.objects.filter(organization=org, is_current=True)
    assert current.count() > 0
    booked = current.filter(state="booked")
    assert Appointment.objects.filter(organization=org).count() == booked.count()
    assert set(
        Appointment.objects.filter(organization=org).values_list("recall_id", flat=True)
    ) == set(booked.values_list("pk", flat=True))
    # The real code agrees with the rows the generator made: rebuilding changes nothing.
    assert recalls.rebuild_all(org) == 0
    # Staff of every role; nobody can sign in.
    roles = set(Membership.objects.filter(organization=org).values_list("role", flat=True))
    assert {"owner", "prescriber", "injector", "front_desk", "auditor"} <= roles
    assert not any(
        m.user.has_usable_password() for m in Membership.objects.filter(organization=org)
    )
    # Search finds a seeded patient by phone, as at the desk.
    p = Patient.objects.filter(organization=org).exclude(phone_digits="").first()
    owner = Membership.objects.get(organization=org, role="owner")
    actor = Actor(org, owner.user, owner.clinic, owner.role)
    assert p in list(patient_services.search_patients(actor, p.phone_digits[-7:]))
    assert "Seeded Tiny: 60 patients, 300 sessions" in said


def test_seed_is_idempotent_by_name_and_refuses_another_size():
    _seed("--patients", "10", "--years", "1", "--org", "Again", "--no-points")
    before = (Patient.objects.count(), TreatmentSession.objects.count(), Recall.objects.count())
    said = _seed("--patients", "10", "--years", "1", "--org", "Again", "--no-points")
    assert "already seeded" in said
    assert (
        Patient.objects.count(),
        TreatmentSession.objects.count(),
        Recall.objects.count(),
    ) == before
    assert InjectionPoint.objects.count() == 0
    with pytest.raises(CommandError, match="already seeded with 10 patients"):
        _seed("--patients", "11", "--org", "Again")


def test_an_interrupted_seed_is_never_taken_for_a_finished_one(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C after the patients and sessions were written

    monkeypatch.setattr(recalls, "rebuild_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _seed("--patients", "10", "--years", "1", "--org", "Halfway", "--no-points")
    assert not Organization.objects.filter(name="Halfway").exists()
    partial = Organization.objects.get(name="Halfway (unfinished)")
    assert Patient.objects.filter(organization=partial).count() == 10  # same size: still refused
    monkeypatch.undo()
    with pytest.raises(CommandError, match="interrupted"):
        _seed("--patients", "10", "--years", "1", "--org", "Halfway", "--no-points")
    _seed("--patients", "10", "--years", "1", "--org", "Whole", "--no-points")
    assert Organization.objects.filter(name="Whole").exists()
    assert not Organization.objects.filter(name="Whole (unfinished)").exists()


def test_seed_refuses_a_database_with_a_real_organization_unless_forced(world):
    with pytest.raises(CommandError, match="real organizations"):
        _seed("--patients", "5", "--org", "Synthetic")
    assert not Organization.objects.filter(name="Synthetic").exists()
    with pytest.raises(CommandError, match="real organization"):
        _seed("--patients", "5", "--org", world.org.name, "--force")
    _seed("--patients", "5", "--years", "1", "--org", "Synthetic", "--force")
    assert Patient.objects.filter(organization__name="Synthetic").count() == 5
    # The real organization is untouched.
    assert Patient.objects.filter(organization=world.org).count() == 1


def test_seed_rejects_bad_sizes_in_plain_words():
    with pytest.raises(CommandError, match="--patients must be"):
        _seed("--patients", "0")
    with pytest.raises(CommandError, match="--years must be"):
        _seed("--patients", "5", "--years", "0")


def test_the_console_command_seeds_with_a_progress_bar_on_a_terminal(tmp_path):
    """`glabella seed` as a person runs it; a pseudo-terminal makes the progress bar draw."""
    import pty

    env = {
        **os.environ,
        "GLABELLA_VAR_DIR": str(tmp_path),
        # Migrated: a copy of the run's freshly migrated template.
        "DATABASE_URL": migrated_sqlite(tmp_path / "seed.sqlite3"),
    }
    glabella = str(Path(sys.executable).with_name("glabella"))
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [glabella, "seed", "--patients", "40", "--years", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=child,
    )
    os.close(child)
    drawn = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 0, drawn.decode(errors="replace")
    assert "Seeded Seed 40 patients: 40 patients, 200 sessions" in out.decode()
    assert "patients [" in drawn.decode() and "40/40" in drawn.decode()
