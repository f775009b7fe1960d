"""The console commands, run as a person would run them: a real process, a real database."""

import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from glabella.accounts.models import Membership, Organization, User
from glabella.charting import services as charting
from glabella.charting.models import TreatmentSession
from glabella.inventory import services as inventory
from glabella.patients.models import HistoryItem, Patient
from glabella.testing_processes import migrated_sqlite
from glabella.web import demo

ROOT = Path(__file__).resolve().parents[3]
GLABELLA = Path(sys.executable).with_name("glabella")


def _run(args, env):
    return subprocess.run(
        [str(GLABELLA), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    # A migrated database (a copy of the run's freshly migrated template, as `glabella
    # migrate` would leave it).
    env = {
        **os.environ,
        "GLABELLA_VAR_DIR": str(var),
        "DATABASE_URL": migrated_sqlite(var / "g.sqlite3"),
    }
    return env, var


def test_setup_then_audit_verify_through_the_console_command(fresh_env):
    env, var = fresh_env
    (var / "pw").write_text("a-very-good-passphrase\n")
    args = [
        "setup",
        "--org",
        "Gamma",
        "--clinic",
        "Gamma One",
        "--timezone",
        "Europe/Dublin",
        "--owner-email",
        "boss@gamma.test",
        "--password-file",
        str(var / "pw"),
    ]
    first = _run(args, env)
    assert first.returncode == 0, first.stderr
    assert "owner boss@gamma.test can now sign in" in first.stdout
    again = _run(args, env)
    assert again.returncode != 0
    assert "already exists; setup has already run" in again.stderr
    verify = _run(["audit-verify"], env)  # hyphenated subcommand -> audit_verify
    assert verify.returncode == 0, verify.stderr
    assert "Audit chain intact" in verify.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--timezone": "Mars/Olympus"}, "is not a time zone name"),
        ({"--owner-email": "not-an-address"}, "is not a valid e-mail address"),
        ({"--org": "  "}, "needs a name"),
    ],
)
def test_setup_refuses_bad_input_and_writes_nothing(db, tmp_path, change, message):
    pw = tmp_path / "pw"
    pw.write_text("a-very-good-passphrase")
    options = {
        "--org": "Delta",
        "--clinic": "Delta One",
        "--timezone": "Europe/Paris",
        "--owner-email": "a@delta.test",
        "--password-file": str(pw),
    } | change
    args = [x for pair in options.items() for x in pair]
    with pytest.raises(CommandError, match=message):
        call_command("setup", *args)
    assert not Organization.objects.exists() and not User.objects.exists()


def test_setup_refuses_a_weak_password(db, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("password")
    with pytest.raises(CommandError, match=r"too short|too common"):
        call_command(
            "setup",
            "--org",
            "E",
            "--clinic",
            "E1",
            "--timezone",
            "UTC",
            "--owner-email",
            "e@e.test",
            "--password-file",
            str(pw),
        )
    assert not User.objects.exists()


def test_demo_data_has_two_clinics_every_role_and_sixty_screened_patients(db):
    call_command("demo", "--if-empty", stdout=io.StringIO())
    org = Organization.objects.get(name=demo.DEMO_ORG)
    assert org.clinics.count() == 2
    roles = set(Membership.objects.filter(organization=org).values_list("role", flat=True))
    assert roles == {"owner", "prescriber", "injector", "front_desk", "auditor"}
    assert Patient.objects.for_org(org).count() == 60
    assert Patient.objects.for_org(org).filter(screened_at__isnull=False).count() >= 50
    kinds = set(HistoryItem.objects.for_org(org).values_list("code", flat=True))
    assert {"anticoagulant", "cow-milk-protein", "myasthenia-gravis", "toxin"} <= kinds
    # Children for paediatric dosing: one deliberately without a weight.
    children = [p for p in Patient.objects.for_org(org) if p.age_on(p.created_at.date()) < 18]
    assert len(children) == 3 and sum(p.weight_kg is None for p in children) == 1
    for email, *_ in demo.DEMO_USERS:
        assert User.objects.get(email=email).check_password(demo.DEMO_PASSWORD)
    # Treatments: PREEMPT every 12 weeks in Leeds, cosmetic in London, a linked touch-up with
    # its override, and today's draft; every signed one has a valid consent.
    sessions = TreatmentSession.objects.for_org(org)
    preempt = sessions.filter(indication="chronic-migraine", status="signed")
    assert preempt.count() == 12
    assert {charting.totals(s).total for s in preempt} == {Decimal(155)}
    touch_up = sessions.get(follow_up_of__isnull=False)
    assert touch_up.status == "signed" and touch_up.overrides.get().rule == "min-interval"
    assert sessions.filter(status="draft").count() == 1
    assert not sessions.filter(status="signed", consent__isnull=True).exists()
    # Stock: a fridge in each clinic, a vial mixed this morning, a lot expiring within 30 days.
    london = org.clinics.get(name="Marylebone")
    assert inventory.usable_vials(org, london, "botox_cosmetic")
    assert any("C8640AA" in alert.message for alert in inventory.alerts(org, london))
    assert {s.lot.lot_number for s in inventory.on_hand(org)} == {
        "C8812AB",
        "C8640AA",
        "D51208",
        "M9034C",
    }


def test_demo_if_empty_leaves_a_real_database_alone(world):
    call_command("demo", "--if-empty", stdout=io.StringIO())
    assert not Organization.objects.filter(name=demo.DEMO_ORG).exists()


def test_protocols_and_dilution_commands_print_and_fail_with_one_line(fresh_env):
    env, _ = fresh_env
    listing = _run(["protocols"], env)
    assert listing.returncode == 0 and "chronic-migraine-preempt" in listing.stdout
    preempt = _run(["protocols", "chronic-migraine-preempt"], env)
    assert "155 U at 31 sites" in preempt.stdout
    mixed = _run(["dilution", "botox", "100", "2"], env)
    assert mixed.returncode == 0 and "5 U per 0.1 mL" in mixed.stdout
    for bad in (
        ["dilution", "botox", "100", "-2"],
        ["dilution", "wonderbotox", "100", "2"],
        ["protocols", "no-such-protocol"],
        ["dilution", "botox"],
    ):
        result = _run(bad, env)
        assert result.returncode == 2, bad
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stdout == ""


def test_dose_check_command_blocks_a_420_unit_cumulative_dose(fresh_env, tmp_path):
    env, _ = fresh_env
    plan = tmp_path / "plan.json"
    plan.write_text(
        '{"plan": {"product_id": "botox", "indication": "chronic-migraine", "date": "2026-11-20",'
        ' "points": [{"area": "temple", "muscle": "temporalis", "side": "L", "units": "200"}]},'
        ' "patient": {"date_of_birth": "1980-01-01", "weight_kg": null, "flags": []},'
        ' "history": [{"date": "2026-10-01", "product_id": "botox_cosmetic",'
        ' "indication": "glabellar-lines", "units": "220", "outside": true}]}'
    )
    result = _run(["dose-check", str(plan), "--json"], env)
    assert result.returncode == 1, result.stderr
    assert '"cumulative-3-month"' in result.stdout and "420 U" in result.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _run(["dose-check", str(bad)], env)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
