"""Standing personas for every test: an owner, a prescriber, an injector, a front-desk
user and an auditor of one organization, and an outsider from another."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import settings as hypothesis_settings

from glabella.accounts import mfa
from glabella.accounts.actor import Actor
from glabella.accounts.models import Clinic, Membership, Organization, TotpDevice, User
from glabella.accounts.roles import Role
from glabella.accounts.services import add_member, setup_organization
from glabella.patients import services as patient_services
from glabella.patients.models import Patient

# One Chromium for the whole run, shared by every page test (fixtures `browser`, `page`).
from glabella.web.tests.browser import browser, page  # noqa: F401

# Playwright's sync API runs an event loop in the test thread; the tests' own ORM calls
# are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Property tests check answers, not speed: no per-example deadline (Hypothesis's 200 ms fails
# an example that a garbage collection or a busy machine slowed, and calls it flaky). Each
# test's own @settings (max_examples) builds on this profile.
hypothesis_settings.register_profile("glabella", deadline=None)
hypothesis_settings.load_profile("glabella")

PASSWORD = "correct-horse-battery-42"  # noqa: S105  (test accounts only)
# The personas who must use two-step sign-in (owner, prescriber, injector, the outsider) have an
# authenticator app with this secret; `totp_code(user)` gives the next code it would show.
TOTP_SECRET = "GLABELLATESTSECRETGLABELLATEST23"  # noqa: S105  (test accounts only)


@dataclass
class World:
    org: Organization
    clinic: Clinic
    users: dict[str, User]
    outsider_org: Organization
    outsider: User
    patient: Patient
    outsider_patient: Patient

    def actor(self, role: str = Role.INJECTOR) -> Actor:
        m = Membership.objects.get(user=self.users[role], clinic=self.clinic)
        return Actor(self.org, m.user, self.clinic, m.role)

    def outsider_actor(self) -> Actor:
        m = Membership.objects.get(user=self.outsider)
        return Actor(self.outsider_org, m.user, m.clinic, m.role)

    def client(self, role: str) -> Client:
        client = Client()
        user = self.outsider if role == "outsider" else self.users[role]
        client.force_login(user)
        # As if the user had passed the second step of signing in (accounts/mfa.py).
        session = client.session
        mfa.mark_verified(session)
        session.save()
        return client


def _make_world() -> World:
    org, clinic, owner = setup_organization(
        org_name="Alpha Aesthetics",
        clinic_name="Alpha Central",
        timezone="Europe/London",
        owner_email="owner@alpha.test",
        password=PASSWORD,
    )
    owner_actor = Actor(org, owner, clinic, Role.OWNER)
    users = {Role.OWNER.value: owner}
    for role in (Role.PRESCRIBER, Role.INJECTOR, Role.FRONT_DESK, Role.AUDITOR):
        m = add_member(
            owner_actor, email=f"{role}@alpha.test", clinic=clinic, role=role, password=PASSWORD
        )
        users[role.value] = m.user
    other_org, other_clinic, outsider = setup_organization(
        org_name="Beta Botox Bar",
        clinic_name="Beta One",
        timezone="America/New_York",
        owner_email="owner@beta.test",
        password=PASSWORD,
    )
    patient = patient_services.create_patient(
        Actor(org, users["injector"], clinic, Role.INJECTOR),
        {
            "given_name": "Ada",
            "family_name": "Lovelace",
            "date_of_birth": date(1985, 12, 10),
            "phone": "07700 900123",
            "email": "ada@example.org",
            "sex": "female",
        },
    )
    outsider_patient = patient_services.create_patient(
        Actor(other_org, outsider, other_clinic, Role.OWNER),
        {"given_name": "Bob", "family_name": "Outside", "date_of_birth": date(1970, 1, 1)},
    )
    for user in (*(users[r] for r in ("owner", "prescriber", "injector")), outsider):
        TotpDevice.objects.create(user=user, secret=TOTP_SECRET, confirmed_at=timezone.now())
    return World(org, clinic, users, other_org, outsider, patient, outsider_patient)


def totp_code(user: User) -> str:
    """A code USER's authenticator app accepts now and that was not used before: the current
    step's, or the next one's when that was used already (never the previous step's, which
    would expire if the 30 s boundary passed before the server checks it); waits when both
    were used."""
    import time

    import pyotp

    device = TotpDevice.objects.get(user=user)
    while True:
        now_step = int(time.time() // mfa.STEP_SECONDS)
        step = max(now_step, device.last_used_step + 1)
        if step <= now_step + mfa.VALID_WINDOW:
            return pyotp.TOTP(device.secret, interval=mfa.STEP_SECONDS).at(step * mfa.STEP_SECONDS)
        time.sleep(1)
        device.refresh_from_db()


@pytest.fixture
def world(db: None) -> World:
    return _make_world()


@pytest.fixture
def live_world(transactional_db: None) -> World:
    return _make_world()


#: A test that starts this close to midnight waits for the new day before it reads the date.
MIDNIGHT_MARGIN = timedelta(seconds=90)


def steady_today() -> date:
    """Today's date, for a test that compares it with the dates the app works out from the clock.

    Within MIDNIGHT_MARGIN of midnight it first sleeps into the new day, so a test shorter than the
    margin reads the same day as the services it calls and the server it drives.
    """
    now = datetime.now()
    left = datetime.combine(now.date() + timedelta(days=1), datetime.min.time()) - now
    if left < MIDNIGHT_MARGIN:
        time.sleep(left.total_seconds() + 1)
    return date.today()


@pytest.fixture(autouse=True)
def _today_when_the_test_runs(request: pytest.FixtureRequest) -> None:
    """A module marked ``today_from_the_clock`` gets its ``TODAY`` again as each test starts.

    The module is imported once, when the run starts; a run that crosses midnight would otherwise
    compare yesterday's dates with the app's today.
    """
    if request.node.get_closest_marker("today_from_the_clock") is not None:
        request.module.TODAY = steady_today()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: object, tmp_path: object) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")  # type: ignore[attr-defined,operator]
    settings.GLABELLA_PHOTO_ROOT = tmp_path / "photos"  # type: ignore[attr-defined,operator]
    settings.GLABELLA_EXPORT_ROOT = tmp_path / "exports"  # type: ignore[attr-defined,operator]


@pytest.fixture(scope="session", autouse=True)
def _fast_postgres_flush() -> Iterator[None]:
    """After each test that commits (``transactional_db``, live servers), Django empties every
    table with one ``TRUNCATE`` of all of them: on PostgreSQL about a second each time, as
    every table and index gets a new file. ``DELETE FROM`` each table empties them just as
    well in a few milliseconds. The append-only triggers (audit events, stock moves) refuse
    DELETE, so they are switched off for the flush and on again in the same transaction;
    the foreign keys are all deferrable, checked once every table is empty.
    Falls back to Django's TRUNCATE when asked to reset sequences or cascade, or when some
    foreign key cannot be deferred."""
    from django.conf import settings

    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        yield
        return
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations,
        style: Any,
        tables: Any,
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if not tables or reset_sequences or allow_cascade:
            return original(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        names = list(tables)
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
                "WHERE k.contype = 'f' AND NOT k.condeferrable AND pg_table_is_visible(c.oid) "
                "AND c.relname = ANY(%s)",
                [names],
            )
            if cursor.fetchone()[0]:
                return original(self, style, tables)
            cursor.execute(
                "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND pg_table_is_visible(c.oid) AND c.relname = ANY(%s)",
                [names],
            )
            triggered = sorted(row[0] for row in cursor.fetchall())
        quote = self.quote_name
        return [
            "SET CONSTRAINTS ALL DEFERRED;",
            *(f"ALTER TABLE {quote(t)} DISABLE TRIGGER USER;" for t in triggered),
            *(f"DELETE FROM {quote(t)};" for t in names),  # noqa: S608 (Django's table names)
            # Check the foreign keys now (every table is empty): a table with checks pending
            # cannot be altered.
            "SET CONSTRAINTS ALL IMMEDIATE;",
            *(f"ALTER TABLE {quote(t)} ENABLE TRIGGER USER;" for t in triggered),
        ]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


@pytest.fixture(autouse=True)
def _fast_argon2(settings: object) -> None:
    settings.PASSWORD_HASHERS = [  # type: ignore[attr-defined]
        "glabella.testing.FastArgon2PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]
