"""Patient search through the trigram index (migration 0005): the same patients, in the same
order, as a plain scan with LIKE, on SQLite (FTS5) and PostgreSQL (pg_trgm); the index kept
right by every way patients are written; and the index really used for a rare substring."""

from __future__ import annotations

import importlib
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.patients import services
from glabella.patients.models import Patient, digits, name_key
from glabella.web import seed

FAMILIES = [
    "O'Brien",
    "D\u2019Arcy",  # a typographic apostrophe
    "Müller-Lüdenscheidt",
    "Ólafsdóttir",
    "Núñez",
    "van der Berg",
    "ÅSTRÖM",
    "Strauß",
    "İnce",
    "Łukasiewicz",
    "Σοφοκλέους",
    "Иванова",
    "王",
    "Kowalski",
    "Kowalska",
    "Nowak-Kowal",
    "smith",
    "Smith",
    'Quote"Name',
    "Star*Near",
]
GIVEN = ["Zoë", "Ana María", "JOSÉ", "Åsa", "Chloé", "Ole", "Li", "Ann-Marie", "Grace", "Ada"]
PHONES = [
    "+44 7700 900{:03d}",
    "(020) 7946 0{:03d}",
    "+48-601-234-{:03d}",
    "07800 00{:03d}",
    "+1 (555) 010-{:04d}",
    "",
]


def _population(world, count: int = 240) -> list[Patient]:
    rng = random.Random(5)
    rows = []
    for i in range(count):
        given, family = rng.choice(GIVEN), rng.choice(FAMILIES)
        phone = PHONES[i % len(PHONES)].format(rng.randrange(1000))
        rows.append(
            Patient(
                organization=world.org,
                given_name=given,
                family_name=family,
                name_key=name_key(given, family),
                date_of_birth=date(1940, 1, 1) + timedelta(days=rng.randrange(25000)),
                phone=phone,
                phone_digits=digits(phone),
                email=f"p{i}@example.org",
            )
        )
    return Patient.objects.bulk_create(rows)


@contextmanager
def _no_indexes() -> Iterator[None]:
    """PostgreSQL: let the planner read the table itself (a scan), not an index."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                    cursor.execute(f"SET LOCAL {setting} = off")
        yield
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                    cursor.execute(f"RESET {setting}")


def _plain_scan(actor: Actor, query: str, limit: int) -> list[int]:
    """The search as it was before the index: every word a LIKE, nothing else."""
    qs: QuerySet[Patient] = Patient.objects.for_org(actor.organization)
    condition = Q()
    for token in query.split():
        dob = services._parse_day(token)
        if dob is not None:
            condition &= Q(date_of_birth=dob)
        elif "@" in token:
            condition &= Q(email__icontains=token.lower())
        elif len(digits(token)) >= 4 and len(digits(token)) == len(token.replace("+", "")):
            condition &= Q(phone_digits__contains=digits(token))
        else:
            condition &= Q(name_key__contains=name_key(token, ""))
    with _no_indexes():
        return list(
            qs.filter(condition)
            .order_by("family_name", "given_name", "pk")
            .values_list("pk", flat=True)[:limit]
        )


def _found(actor: Actor, query: str, limit: int = 1000) -> list[int]:
    return [p.pk for p in services.search_patients(actor, query, limit=limit)]


def _random_queries(patients: list[Patient], n: int) -> list[str]:
    rng = random.Random(11)
    odd = ['"', "'", "*", "^", ":", "(", ")", "-", "+", "AND", "OR", "NOT", "NEAR", "a*", '"x"']
    queries = []
    for _ in range(n):
        p = rng.choice(patients)
        kind = rng.randrange(7)
        if kind == 0:  # part of the family name as typed (accents, case, apostrophes)
            text = p.family_name
            start = rng.randrange(len(text))
            typed = text[start : start + rng.randint(1, 8)]
            queries.append(typed.upper() if rng.random() < 0.3 else typed)
        elif kind == 1 and p.phone_digits:  # digits of the phone, 1 to 9 of them
            start = rng.randrange(len(p.phone_digits))
            queries.append(p.phone_digits[start : start + rng.randint(1, 9)])
        elif kind == 2 and p.phone:  # a stretch of the phone as written: spaces, + and all
            start = rng.randrange(len(p.phone))
            queries.append(p.phone[start : start + rng.randint(2, 10)])
        elif kind == 3:  # two words: given and part of family
            queries.append(f"{p.given_name[:3]} {p.family_name[1:6]}")
        elif kind == 4:  # a word with FTS5 syntax in it
            queries.append(rng.choice(odd) + p.family_name[:3] + rng.choice(odd))
        elif kind == 5:  # the date of birth and a name
            queries.append(f"{p.date_of_birth:%d/%m/%Y} {p.family_name[:4]}")
        else:
            queries.append(rng.choice(odd))
    return queries


def test_search_finds_what_a_plain_like_scan_finds_in_the_same_order(world):
    patients = _population(world)
    actor = world.actor()
    queries = [
        *_random_queries(patients, 300),
        # named cases: accents typed or not, apostrophes, ß, quotes, short tokens, + signs
        "muller",
        "MÜLLER",
        "lüden",
        "o'bri",
        "d\u2019ar",
        "strauss",
        "strauß",
        "olafsd",
        "nunez",
        "astr",
        "σοφο",
        "иван",
        "王",
        "kowal",
        "owal",
        "ko",
        "k",
        "+44",
        "+44 7700",
        "7700",
        "900",
        "0207946",
        "+48-601",
        'quote"n',
        '"',
        "star*",
        "ann-m",
        "ana maría",
        "zzzz",
    ]
    for query in queries:
        assert _found(actor, query) == _plain_scan(actor, query, 1000), query
        assert _found(actor, query, limit=5) == _plain_scan(actor, query, 5), query


def test_names_and_phones_match_as_typed_whatever_the_accents_and_punctuation(world):
    actor = world.actor()
    made = {
        family: services.create_patient(
            actor,
            {
                "given_name": "Test",
                "family_name": family,
                "date_of_birth": date(1970, 1, 1),
                "phone": phone,
            },
        )
        for family, phone in (
            ("Müller-Lüdenscheidt", "+49 (0)30 1234-5678"),
            ("O'Brien", "+353 1 555 0199"),
            ("Strauß", ""),
        )
    }
    assert _found(actor, "mulLER-lud") == [made["Müller-Lüdenscheidt"].pk]
    assert _found(actor, "o'brie") == [made["O'Brien"].pk]
    assert _found(actor, "STRAUSS") == [made["Strauß"].pk]
    assert _found(actor, "+49030") == [made["Müller-Lüdenscheidt"].pk]
    assert _found(actor, "12345678") == [made["Müller-Lüdenscheidt"].pk]
    assert _found(actor, "+3531") == [made["O'Brien"].pk]
    assert _found(actor, "900123") == [world.patient.pk]
    assert _found(actor, "0770090") == [world.patient.pk]
    assert _found(actor, "love 900123") == [world.patient.pk]
    assert _found(actor, "lovx 900123") == []


def _index_is_exact() -> None:
    """SQLite: the FTS index holds exactly what patients_patient holds (FTS5's own check
    against its content table; raises when a row is missing or stale)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO patients_patient_fts(patients_patient_fts, rank) "
                "VALUES ('integrity-check', 1)"
            )


def test_the_index_follows_every_way_patients_are_written(world):
    actor = world.actor()
    owner = world.actor("owner")
    # Through the services: registered, then name and phone changed.
    p = services.create_patient(
        actor,
        {
            "given_name": "Żaneta",
            "family_name": "Wróblewska",
            "date_of_birth": date(1980, 5, 6),
            "phone": "+48 512 345 678",
        },
    )
    assert _found(actor, "wrobl") == [p.pk]
    assert _found(actor, "512345") == [p.pk]
    services.update_patient(
        owner,
        p,
        {
            "given_name": "Żaneta",
            "family_name": "Kamińska",
            "date_of_birth": date(1980, 5, 6),
            "phone": "+48 600 111 222",
        },
    )
    assert _found(actor, "wrobl") == []
    assert _found(actor, "512345") == []
    assert _found(actor, "kamins") == [p.pk]
    assert _found(actor, "600111") == [p.pk]
    services.update_clinical_notes(actor, p, "no change to the name")
    assert _found(actor, "kamins") == [p.pk]
    _index_is_exact()

    # Through bulk_create (the importer, the benchmark generator).
    made = Patient.objects.bulk_create(
        Patient(
            organization=world.org,
            given_name="Bulk",
            family_name=f"Bulkowski-{i}",
            name_key=name_key("Bulk", f"Bulkowski-{i}"),
            date_of_birth=date(1990, 1, 1),
            phone=f"07111 22{i:04d}",
            phone_digits=f"0711122{i:04d}",
        )
        for i in range(30)
    )
    in_order = list(
        Patient.objects.for_org(world.org)
        .filter(family_name__startswith="Bulkowski-")
        .order_by("family_name", "given_name", "pk")
        .values_list("pk", flat=True)
    )
    assert _found(actor, "bulkowski") == in_order and len(in_order) == 30
    assert _found(actor, "1220003") == [made[3].pk]

    # Through raw bulk SQL, as `glabella seed` writes (COPY / executemany).
    rows = [
        {
            "organization_id": world.org.pk,
            "given_name": "Raw",
            "family_name": f"Rawlinson-{i}",
            "name_key": name_key("Raw", f"Rawlinson-{i}"),
            "date_of_birth": date(1991, 2, 3),
            "phone": f"07222 33{i:04d}",
            "phone_digits": f"0722233{i:04d}",
            "created_at": timezone.now(),
            "updated_at": timezone.now(),
        }
        for i in range(5)
    ]
    seed.bulk_insert(Patient, rows, len(rows), "", seed._QUIET)
    raw = list(
        Patient.objects.for_org(world.org)
        .filter(family_name__startswith="Rawlinson-")
        .order_by("family_name")
        .values_list("pk", flat=True)
    )
    assert _found(actor, "rawlinson") == raw and len(raw) == 5
    assert _found(actor, "22330003") == [raw[3]]

    # Raw UPDATE and DELETE of the searched columns.
    Patient.objects.filter(pk=raw[0]).update(phone_digits="0799999999", name_key="zed raw")
    assert _found(actor, "9999999") == [raw[0]]
    assert raw[0] not in _found(actor, "rawlinson")
    Patient.objects.filter(pk=raw[1]).delete()  # never done to a real record; the index copes
    assert _found(actor, "rawlinson") == raw[2:]
    _index_is_exact()


def test_the_substring_indexes_exist_after_all_migrations(db):
    """SQLite: the FTS table and its three triggers. A later migration that rebuilds
    patients_patient on SQLite drops the triggers; this fails until that migration makes them
    again (see migrations/0005_search_index.py). PostgreSQL: the two trigram indexes."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE 'patients_patient_fts%' "
                "AND type IN ('table', 'trigger')"
            )
            names = {row[0] for row in cursor.fetchall()}
            assert {services.FTS_TABLE, *services.FTS_TRIGGERS} <= names
            assert services._has_fts_index("default")
        else:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'patients_patient' "
                "AND indexdef LIKE '%%gin_trgm_ops%%'"
            )
            assert {r[0] for r in cursor.fetchall()} == {
                "patient_phone_digits_trgm",
                "patient_name_key_trgm",
            }
            assert not services._has_fts_index("default")


def test_the_name_key_and_phone_digits_have_no_index_of_their_own(db):
    """Migration 0006 dropped the single-column btrees on name_key and phone_digits (and
    PostgreSQL's _like copies), which no query used and every write kept; the columns stay
    indexed where they are read: the trigram look-up, the covering search index and the
    unique constraint of the duplicate check."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "patients_patient")
    by_columns = {
        name: tuple(info["columns"])
        for name, info in constraints.items()
        if info["index"] or info["unique"]
    }
    alone = {
        name
        for name, columns in by_columns.items()
        if columns in {("name_key",), ("phone_digits",)}
    }
    if connection.vendor == "postgresql":
        assert alone == {"patient_name_key_trgm", "patient_phone_digits_trgm"}
        assert {constraints[name]["type"] for name in alone} == {"gin"}
    else:
        assert alone == set()
    assert by_columns["patient_unique_name_dob_per_org"] == (
        "organization_id",
        "name_key",
        "date_of_birth",
    )
    assert by_columns["patient_org_family_given"][:4] == (
        "organization_id",
        "family_name",
        "given_name",
        "id",
    )


def _plan(actor: Actor, query: str, limit: int = 25) -> str:
    """The database's plan of the search's statement (services.search_sql)."""
    sql, params = services.search_sql(actor.organization.pk, query, limit)
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(explain + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def _family(
    world, given: str, family: str, count: int, born: date, phone: Callable[[int], str]
) -> list[Patient]:
    """COUNT patients of the world's organization, saved: GIVEN, FAMILY.format(i), born a day
    apart from BORN, their phone PHONE(i)."""
    rows = [
        Patient(
            organization=world.org,
            given_name=given,
            family_name=family.format(i),
            name_key=name_key(given, family.format(i)),
            date_of_birth=born + timedelta(days=i),
            phone=phone(i),
            phone_digits=digits(phone(i)),
        )
        for i in range(count)
    ]
    Patient.objects.bulk_create(rows, batch_size=1000)
    return rows


def test_a_rare_phone_substring_is_found_through_the_trigram_index(world):
    rows = _family(
        world,
        "Many",
        "Many-{:05d}",
        3000,
        date(1960, 1, 1),
        lambda i: f"07800 {i * 7919 % 1000000:06d}",
    )
    if connection.vendor == "postgresql":
        # What autovacuum does in the background (a test's transaction cannot VACUUM): the
        # statistics, and the GIN indexes' pending rows moved into the index proper.
        # SQLite: no statistics, as in a clinic's database (Django never runs ANALYZE).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE patients_patient")
            cursor.execute("SELECT gin_clean_pending_list('patient_phone_digits_trgm')")
            cursor.execute("SELECT gin_clean_pending_list('patient_name_key_trgm')")
    actor = world.actor()
    typed = rows[1234].phone_digits[-6:]
    with CaptureQueriesContext(connection) as queries:
        found = services.search_patients(actor, typed)
        assert [p.pk for p in found] == _plain_scan(actor, typed, 25)
    plan = _plan(actor, typed)
    if connection.vendor == "sqlite":
        # One statement: the candidates come from the FTS table, then their rows by id; the
        # other arm, the walk of the organization's search index (which stops before it
        # reads anything when the candidates are few: test_the_number_of_candidates_...).
        # Never a scan of the table.
        asked = [q for q in queries.captured_queries if "patients_patient_fts MATCH" in q["sql"]]
        assert len(asked) == 1, queries.captured_queries
        assert "SCAN patients_patient_fts VIRTUAL TABLE" in plan, plan
        assert "SEARCH patients_patient USING INTEGER PRIMARY KEY" in plan, plan
        assert "USING INDEX patient_org_family_given (organization_id=?)" in plan, plan
        assert not re.search(r"SCAN patients_patient\b(?!_fts)", plan), plan
    else:
        assert "patient_phone_digits_trgm" in plan, plan
        # Phone digits alone: one level, the rows read with the condition (the planner picks
        # the index); a name keeps its fence (below).
        phone_sql, _ = services.search_sql(world.org.pk, typed, 25)
        assert " IN (" not in phone_sql and "MATERIALIZED" not in phone_sql, phone_sql
        name_sql, _ = services.search_sql(world.org.pk, "many", 25)
        assert "MATERIALIZED" in name_sql, name_sql
        # Digits every patient has: found in order, as the scan finds them.
        assert [p.pk for p in services.search_patients(actor, "07800")] == _plain_scan(
            actor, "07800", 25
        )
    common = _plan(actor, "many")
    if connection.vendor == "sqlite":
        # A word in many patients: the same statement, whose walk of the search index, in
        # order, reads a row only where the index shows a match, and stops at the limit.
        assert "USING INDEX patient_org_family_given (organization_id=?)" in common, common
    else:
        # The organization's matches, collected (GIN or organization index), never the walk
        # in order that reads every row before the first match.
        assert "patient_org_family_given" not in common, common
    # Two letters, too short for a trigram: the walk of the search index, stopped at the
    # limit; on PostgreSQL reading the index only.
    short = _plan(actor, "ma")
    assert "patient_org_family_given" in short, short
    if connection.vendor == "sqlite":
        assert "COVERING INDEX" in short, short


def test_without_the_index_search_scans_and_finds_the_same(world, monkeypatch):
    """SQLite without FTS5 trigram (before 3.34), or with its triggers gone: search still
    works, by LIKE alone."""
    patients = _population(world, 80)
    actor = world.actor()
    queries = _random_queries(patients, 40)
    expected = {q: _found(actor, q) for q in queries}
    monkeypatch.setattr(services, "_has_fts_index", lambda alias: False)
    for query in queries:
        assert _found(actor, query) == expected[query], query


def test_the_index_can_be_made_again_after_a_table_rebuild(world):
    """What a later migration that rebuilds patients_patient must do (SQLite loses the
    triggers with the old table): run the migration's own function again."""
    migration = importlib.import_module("glabella.patients.migrations.0005_search_index")
    editor = SimpleNamespace(connection=connection)  # all the function uses of a schema editor
    actor = world.actor()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for trigger in services.FTS_TRIGGERS:
                cursor.execute(f"DROP TRIGGER {trigger}")
        stale = services.create_patient(
            actor,
            {"given_name": "Late", "family_name": "Latimer", "date_of_birth": date(1970, 2, 2)},
        )
        with pytest.raises(DatabaseError):
            _index_is_exact()  # the index no longer holds every patient
        assert migration.sqlite_up(editor)
        _index_is_exact()
        assert _found(actor, "latim") == [stale.pk]
    else:
        with connection.cursor() as cursor:  # a migration has no deferred foreign-key checks
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # pending; this test's writes do
        assert migration.pg_up(editor)  # again: nothing to do, nothing fails
    test_the_substring_indexes_exist_after_all_migrations(None)


def test_a_common_word_walks_the_search_index_and_finds_the_same(world, monkeypatch):
    """SQLite, a word in FTS_MOST patients or more: the walk of the organization's search
    index instead of the FTS rows; the same patients either way."""
    patients = _population(world)
    actor = world.actor()
    queries = _random_queries(patients, 120)
    monkeypatch.setattr(services, "FTS_MOST", 1)  # every word counts as common
    for query in queries:
        assert _found(actor, query) == _plain_scan(actor, query, 1000), query
    plan = _plan(actor, "kowal")
    if connection.vendor == "sqlite":
        assert "patient_org_family_given" in plan, plan


def _quokkas(world, count: int) -> list[int]:
    """COUNT patients of the world's organization named Quokka-NN (ids in search order)."""
    _family(world, "Ann", "Quokka-{:02d}", count, date(1970, 1, 1), lambda i: f"07700 9{i:05d}")
    return _plain_scan(world.actor(), "quokka", 1000)


def test_the_number_of_candidates_chooses_what_reads_the_rows(world, monkeypatch):
    """SQLite: fewer FTS candidates than the organization's threshold, their rows are read by
    id; as many or more, the walk of the search index reads them. Seen through one patient
    the FTS table has been told to forget (as an external-content index is told a row is
    gone): only the walk finds them. The other arm never adds rows of its own."""
    everyone = _quokkas(world, 40)
    assert len(everyone) == 40
    actor = world.actor()
    if connection.vendor != "sqlite":
        # PostgreSQL has no FTS table: its own statement, the same patients.
        assert services._search_statement(world.org.pk, "quokka", 25).either is None
        assert _found(actor, "quokka") == everyone
        return
    hidden = Patient.objects.get(organization=world.org, family_name="Quokka-07")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {services.FTS_TABLE} ({services.FTS_TABLE}, rowid, phone_digits, "  # noqa: S608
            "name_key) VALUES ('delete', %s, %s, %s)",
            [hidden.pk, hidden.phone_digits, hidden.name_key],
        )
    without = [pk for pk in everyone if pk != hidden.pk]
    monkeypatch.setattr(services, "_sizes", {})
    size = Patient.objects.filter(organization=world.org).count()
    # The organization's own threshold: size // WALK_SHARE (2 here) of 39 candidates: walk.
    assert services._fts_most("default", world.org.pk) == max(1, size // services.WALK_SHARE)
    assert size // services.WALK_SHARE <= 39
    assert _found(actor, "quokka") == everyone
    assert _found(actor, "quokka", limit=5) == everyone[:5]
    # A threshold above the 39 candidates: their rows, the forgotten patient missing.
    monkeypatch.setattr(services, "WALK_SHARE", 1)
    monkeypatch.setattr(services, "FTS_MOST", 40)
    assert _found(actor, "quokka") == without
    assert _found(actor, "quokka", limit=5) == without[:5]
    assert len(services.search_patients(actor, "quokka")) == 25
    # Exactly as many candidates as the threshold: the walk again.
    monkeypatch.setattr(services, "FTS_MOST", 39)
    assert _found(actor, "quokka") == everyone
    # Two words, each a phrase of the FTS query (both required): the same choice.
    monkeypatch.setattr(services, "FTS_MOST", 2000)
    assert _found(actor, "77009 quokka") == without
    monkeypatch.setattr(services, "FTS_MOST", 1)
    assert _found(actor, "77009 quokka") == everyone


def test_an_organizations_size_is_counted_once_in_a_while(world, monkeypatch):
    """SQLite: the walk's threshold comes from the organization's number of patients,
    counted once per SIZE_SECONDS per process (a query of its own), then kept."""
    _quokkas(world, 30)
    actor = world.actor()
    monkeypatch.setattr(services, "_sizes", {})
    sqlite = connection.vendor == "sqlite"
    with CaptureQueriesContext(connection) as first:
        services.search_patients(actor, "quokka")[:5]
    with CaptureQueriesContext(connection) as second:
        services.search_patients(actor, "quokka")[:5]
    counted = [
        q for q in first.captured_queries if 'COUNT(*) FROM "patients_patient" WHERE' in q["sql"]
    ]
    assert len(counted) == sqlite, first.captured_queries
    assert len(second.captured_queries) == 1, second.captured_queries
    if sqlite:
        assert services._fts_most("default", world.org.pk) == max(
            1, Patient.objects.filter(organization=world.org).count() // services.WALK_SHARE
        )
        monkeypatch.setattr(services, "SIZE_SECONDS", -1.0)  # every count out of date
        with CaptureQueriesContext(connection) as again:
            services.search_patients(actor, "quokka")[:5]
        assert len(again.captured_queries) == 2, again.captured_queries
        # Another organization's count is its own.
        assert {key[2] for key in services._sizes} == {world.org.pk}


def test_like_wildcards_typed_are_plain_characters(world):
    """The hand-written statement escapes what LIKE reads as wildcards (%, _ and the escape
    character itself), as the ORM's lookups do: typed, they match only themselves."""
    actor = world.actor()
    rows = []
    for i, (family, email) in enumerate(
        (
            ("Under_score", "a_b@example.org"),
            ("Underxscore", "axb@example.org"),
            ("Per%cent", "c%d@example.org"),
            ("Perxxcent", "cxxd@example.org"),
            ("Back\\slash", "e\\f@example.org"),
            ("Backslash", "ef@example.org"),
        )
    ):
        rows.append(
            Patient(
                organization=world.org,
                given_name="Wild",
                family_name=family,
                name_key=name_key("Wild", family),
                date_of_birth=date(1970, 1, 1) + timedelta(days=i),
                phone=f"07900 00{i:04d}",
                phone_digits=f"0790000{i:04d}",
                email=email,
            )
        )
    made = {p.family_name: p.pk for p in Patient.objects.bulk_create(rows)}
    for query, family in (
        ("under_s", "Under_score"),
        ("per%c", "Per%cent"),
        ("back\\s", "Back\\slash"),
        ("A_B@", "Under_score"),
        ("C%D@", "Per%cent"),
        ("E\\F@", "Back\\slash"),
        ("wild r_s", "Under_score"),
    ):
        assert _found(actor, query) == [made[family]], query
        assert _found(actor, query) == _plain_scan(actor, query, 1000), query


def test_a_search_is_one_statement(world):
    """One query per search, whatever the words: on SQLite the FTS table's candidates are
    asked for in the same statement that reads the rows."""
    _population(world)
    actor = world.actor()
    # SQLite: whether the FTS index is there, once per connection; the organization's size,
    # once per SIZE_SECONDS.
    services.search_patients(actor, "kowal")
    for query in (
        "kowal",  # a common word
        "σοφο",
        "7700",  # phone digits
        "ko",  # too short for the index: the walk
        "k",
        "p1@example",  # e-mail only: the walk
        "01/01/1950",
        "ann-m 7700",
        "zzzz",  # nothing found
    ):
        with CaptureQueriesContext(connection) as queries:
            found = [p.pk for p in services.search_patients(actor, query)]
        assert len(queries) == 1, (query, queries.captured_queries)
        assert found == _plain_scan(actor, query, 25), query


def test_search_gives_whole_patients_as_the_orm_loads_them(world):
    """The rows come from a hand-written statement: every field is there (nothing deferred)
    and each value is what the ORM gives for the same row (types included: dates, times
    with their zone, decimals, booleans)."""
    actor = world.actor()
    p = services.create_patient(
        actor,
        {
            "given_name": "Whole",
            "family_name": "Wholesome",
            "date_of_birth": date(1981, 3, 4),
            "phone": "+44 7700 912345",
            "email": "whole@example.org",
            "weight_kg": "61.5",
            "reminder_consent": True,
            "address": "1 High St",
        },
    )
    (found,) = services.search_patients(actor, "wholes")
    assert found.get_deferred_fields() == set()
    loaded = Patient.objects.get(pk=p.pk)
    for field in Patient._meta.concrete_fields:
        ours, orm = getattr(found, field.attname), getattr(loaded, field.attname)
        assert (ours, type(ours)) == (orm, type(orm)), field.attname
    assert found.weight_kg is not None and found.reminder_consent is True
    # Loaded from the database, as from_db leaves an instance: saving it updates the row.
    assert (found._state.adding, found._state.db) == (False, "default")
    assert found == loaded and hash(found) == hash(loaded)
    # The instances are made without Model.__init__ only while nothing listens for a
    # patient's init signals: a receiver connected sees every patient read.
    seen: list[Patient] = []

    def receiver(sender: type, instance: Patient, **kwargs: object) -> None:
        seen.append(instance)

    post_init.connect(receiver, sender=Patient)
    try:
        (again,) = services.search_patients(actor, "wholes")
    finally:
        post_init.disconnect(receiver, sender=Patient)
    assert seen == [again] and again._state.adding is False
    (third,) = services.search_patients(actor, "wholes")
    assert seen == [again]
    assert [getattr(third, f.attname) for f in Patient._meta.concrete_fields] == [
        getattr(loaded, f.attname) for f in Patient._meta.concrete_fields
    ]


def test_results_are_counted_and_paged_in_the_database_as_a_queryset_would(world):
    """The API counts the results and reads one page of them, with a LIMIT as large as its
    deepest page: each is one statement (the count, then the page's rows only), never every
    patient found."""
    _population(world)
    actor = world.actor()
    for query in ("kowal", "ko", "7700", "ann", "01/01/1950", "zzzz"):
        everything = _found(actor, query, limit=1000)
        for limit in (1000, 5):
            expected = everything[:limit]
            results = services.search_patients(actor, query, limit=limit)
            with CaptureQueriesContext(connection) as queries:
                assert len(results) == len(expected), query
                for start, stop in ((0, 3), (3, 8), (2, None), (len(expected), 10_000)):
                    page = results[start:stop]
                    assert [p.pk for p in page] == expected[start:stop], (query, start, stop)
                    assert len(page) <= (limit if stop is None else stop - start)
            # the count, three pages, the fourth (past the end) only if the limit allows more
            assert len(queries) == 1 + 3 + (len(expected) < limit), query
            # Then iterated: all of them, once, kept.
            with CaptureQueriesContext(connection) as queries:
                assert [p.pk for p in results] == expected == [p.pk for p in results]
                assert results[1:3] == list(results)[1:3] and bool(results) == bool(expected)
            assert len(queries) == 1


def test_the_results_list_reads_only_what_it_shows(world):
    """The list asks for RESULT_FIELDS: the same patients in the same order, those values as
    the ORM loads them, the rest deferred; and the page then reads nothing more per patient
    (a deferred field used by the list would cost one query per row)."""
    _population(world)
    actor = world.actor()
    for query in ("kowal", "7700", "ko", "01/01/1950", ""):
        whole = list(services.search_patients(actor, query))
        some = list(services.search_patients(actor, query, fields=services.RESULT_FIELDS))
        assert [p.pk for p in some] == [p.pk for p in whole], query
        for ours, full in zip(some, whole, strict=True):
            assert ours.get_deferred_fields() == (
                {f.attname for f in Patient._meta.concrete_fields} - set(services.RESULT_FIELDS)
            )
            for name in services.RESULT_FIELDS:
                assert (getattr(ours, name), type(getattr(ours, name))) == (
                    getattr(full, name),
                    type(getattr(full, name)),
                ), name
    with pytest.raises(ValueError, match="not fields of a patient"):
        services.search_patients(actor, "kowal", fields=["nope"])
    # The page: a search of many rows costs what a search of one costs (after a first
    # request, which saves the session and finds whether the FTS index is there).
    services.create_patient(
        actor,
        {"given_name": "Zebedee", "family_name": "Quuxley", "date_of_birth": date(1970, 1, 1)},
    )
    client = world.client("front_desk")
    client.get("/patients/", {"q": "kowal"}, HTTP_HX_REQUEST="true")
    counts = {}
    for query in ("kowal", "quuxley"):
        with CaptureQueriesContext(connection) as seen:
            answer = client.get("/patients/", {"q": query}, HTTP_HX_REQUEST="true")
        assert answer.status_code == 200
        counts[query] = (len(seen.captured_queries), answer.content.decode().count("<tr><td>"))
    assert counts["quuxley"][1] == 1 and counts["kowal"][1] >= 5, counts
    assert counts["kowal"][0] == counts["quuxley"][0], counts
