"""Prepared queries (glabella/prepared.py) give what their plain querysets give, compile once
per connection, and refuse what they cannot reproduce.

Every prepared query the app makes is run here against its own queryset on the demo
organization, for every id it takes, on the database the suite runs on (SQLite or
PostgreSQL): the same rows, in the same order, the same values of the same types, the same
related records loaded with them."""

from __future__ import annotations

import importlib
import itertools
import re
import warnings
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import BooleanField, Model
from django.db.models.expressions import RawSQL
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import glabella
from glabella import prepared as prepared_module

# The modules that make the app's prepared queries (importing them registers the queries).
from glabella.charting import services as charting_services
from glabella.charting import views as charting_views
from glabella.charting.models import Override, TreatmentSession
from glabella.consent import services as consent_services  # noqa: F401
from glabella.inventory import services as stock_services  # noqa: F401
from glabella.inventory.models import Lot, StockMove, Vial
from glabella.outcomes import durations
from glabella.outcomes.models import EffectReturn
from glabella.patients import services as patient_services  # noqa: F401
from glabella.patients import views as patient_views
from glabella.patients.models import HistoryItem, Patient
from glabella.prepared import NotPreparable, Prepared
from glabella.scheduling import booking
from glabella.scheduling.models import Appointment
from glabella.web import demo

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _same(a: Any, b: Any, where: str) -> None:
    """A and B are equal in every value and type; model instances field by field, with the
    related records loaded with them and their annotations."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, Model):
        assert a._state.db == b._state.db and a._state.adding == b._state.adding, where
        fields = {k for k in a.__dict__ if k != "_state"}
        assert fields == {k for k in b.__dict__ if k != "_state"}, where
        for name in sorted(fields):
            _same(a.__dict__[name], b.__dict__[name], f"{where}.{name}")
        assert a._state.fields_cache.keys() == b._state.fields_cache.keys(), where
        for name, related in a._state.fields_cache.items():
            other = b._state.fields_cache[name]
            if related is None or other is None:
                assert related is other, f"{where}.{name}"
            else:
                _same(related, other, f"{where}.{name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
        if isinstance(a, datetime):
            assert a.tzinfo == b.tzinfo, where
        if isinstance(a, Decimal):
            assert str(a) == str(b), where  # the same places, not only the same number


@pytest.fixture
def demo_org(db):
    org = demo.load(patients=6, now=NOW)
    # Every kind of row the prepared queries read, at least once (demo.load makes most; a
    # small demo has no override or return of effect). Written as rows: no page reads them.
    s = TreatmentSession.objects.filter(organization=org, status="signed").first()
    if not Override.objects.filter(organization=org).exists():
        Override.objects.create(
            organization=org,
            session=s,
            rule="interval",
            message="Less than 12 weeks since the last treatment.",
            reason="A test.",
            by=s.signed_by,
        )
    if not HistoryItem.objects.filter(organization=org, kind="outside_treatment").exists():
        HistoryItem.objects.create(
            organization=org,
            patient=s.patient,
            kind="outside_treatment",
            code="botulinum_toxin",
            treated_on=s.treated_on - timedelta(days=30),
            product_id=s.product_id,
            units=Decimal("12.50"),
            indication="glabellar-lines",
            recorded_by=s.signed_by,
        )
    if not EffectReturn.objects.filter(organization=org).exists():
        EffectReturn.objects.create(
            organization=org,
            patient=s.patient,
            session=s,
            returned_on=s.treated_on + timedelta(days=100),
            recorded_by=s.signed_by,
        )
    if not StockMove.objects.filter(organization=org, kind="administer").exists():
        # The recall trace's rows: a draw to a charted point, a draw to a point no longer on
        # the chart, and a draw reversed (which the trace leaves out).
        vial = Vial.objects.filter(organization=org).first()
        assert vial is not None, "the demo has no vial"
        number = s.points.order_by("number").values_list("number", flat=True).first()
        common = {
            "organization": org,
            "clinic": s.clinic,
            "kind": "administer",
            "lot": vial.lot,
            "vial": vial,
            "at": s.created_at,
            "by": s.signed_by,
            "session": s,
        }
        StockMove.objects.create(**common, units=Decimal("-4.00"), point_number=number)
        StockMove.objects.create(**common, units=Decimal("-2.50"), point_number=99)
        drawn = StockMove.objects.create(**common, units=Decimal("-1.00"), point_number=number)
        StockMove.objects.create(
            **{**common, "kind": "adjust"}, units=Decimal("1.00"), reverses=drawn, reason="Test."
        )
    return org


def _candidates(org) -> dict[str, list[Any]]:
    """The values each named parameter of the app's prepared queries is tried with."""
    sessions = TreatmentSession.objects.filter(organization=org)
    starts = sorted(Appointment.objects.filter(organization=org).values_list("ends_at", flat=True))
    assert starts, "the demo has no appointments"
    london = zoneinfo.ZoneInfo("Europe/London")
    return {
        # Moments before, among and after the demo's appointments, in UTC and in summer time in
        # London (another offset), and one exactly on an appointment's end (>= includes it).
        "now": [
            starts[0] - timedelta(days=400),
            starts[len(starts) // 2].astimezone(london),
            starts[-1],
            starts[-1] + timedelta(microseconds=1),
            datetime(2026, 7, 1, 12, 0, 0, 500, tzinfo=london),
        ],
        "org": [org.pk],
        "session": list(sessions.values_list("pk", flat=True)),
        "patient": list(Patient.objects.filter(organization=org).values_list("pk", flat=True)),
        "clinic": sorted(set(sessions.values_list("clinic_id", flat=True))),
        "product": sorted(set(sessions.values_list("product_id", flat=True))),
        # The recall trace: every lot (drawn from or not), by id and by number.
        "lot": sorted(Lot.objects.filter(organization=org).values_list("pk", flat=True)),
        "number": sorted(
            set(Lot.objects.filter(organization=org).values_list("lot_number", flat=True))
        ),
    }


def _names(prepared: Prepared[Any]) -> tuple[str, ...]:
    code = prepared.build.__code__
    return code.co_varnames[: code.co_argcount]


def _the_apps() -> list[Prepared[Any]]:
    """The app's prepared queries (not those the tests make, some of them refused on purpose):
    every module of the app that makes one is imported first, so a new one is not missed."""
    root = Path(glabella.__file__).parent
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent)
        if "tests" in relative.parts or "migrations" in relative.parts:
            continue
        if path.name != "prepared.py" and "Prepared(" in path.read_text(encoding="utf-8"):
            importlib.import_module(".".join(relative.with_suffix("").parts))
    return [p for p in Prepared.every if ".tests." not in p.build.__module__]


def test_the_app_prepares_the_pages_queries():
    """The registry the next test walks holds the queries of the chart and the patient."""
    for made in (
        charting_views._SESSION,
        charting_services._LIVE_POINTS,
        patient_views._PATIENT_PAGE,
        durations._PATIENT_SESSIONS,
        booking._NEXT_TEN,
    ):
        assert made in _the_apps()
    assert len(_the_apps()) >= 11


def test_every_prepared_query_gives_what_its_queryset_gives(demo_org):
    values = _candidates(demo_org)
    for prepared in _the_apps():
        names = _names(prepared)
        unknown = set(names) - set(values)
        assert not unknown, f"add test values for the parameters {unknown} of {names}"
        found_rows = 0
        for args in itertools.product(*(values[n] for n in names)):
            theirs = list(prepared.build(*args))
            ours = prepared(*args)
            _same(ours, theirs, f"{names}{args}")
            found_rows += len(ours)
            # Another organization's id finds nothing, as the queryset does.
            other = tuple(
                a + 1_000_000 if n == "org" else a for n, a in zip(names, args, strict=True)
            )
            assert prepared(*other) == list(prepared.build(*other)) == []
        assert found_rows, f"the demo gives the query of {names} no rows to compare"


def test_a_prepared_query_is_compiled_once_per_connection_then_only_run(demo_org, monkeypatch):
    compiled = []
    as_sql = SQLCompiler.as_sql

    def counting(self, *args, **kwargs):
        compiled.append(self.query.model)
        return as_sql(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", counting)
    query = Prepared(
        lambda org, patient: TreatmentSession.objects.filter(
            organization_id=org, patient_id=patient
        ).select_related("patient")
    )
    a, b = Patient.objects.filter(organization=demo_org, sessions__isnull=False).distinct()[:2]
    compiled.clear()
    first = query(demo_org.pk, a.pk)
    assert len(compiled) == 2  # with each set of stand-ins, the second a check of the first
    with CaptureQueriesContext(connection) as seen:
        second = query(demo_org.pk, b.pk)
    assert len(compiled) == 2, "compiled again"
    assert len(seen.captured_queries) == 1
    assert {s.patient_id for s in first} == {a.pk} and {s.patient_id for s in second} == {b.pk}
    assert all(s.patient == b for s in second)


def test_values_that_are_not_ids_take_the_ordinary_way(demo_org):
    patient = Patient.objects.filter(organization=demo_org).first()
    query = patient_views._PATIENT_PAGE
    assert query(demo_org.pk, None) == [] == list(query.build(demo_org.pk, None))
    assert query(demo_org.pk, str(patient.pk)) == [patient]  # a string: the ORM converts it
    assert query(True, patient.pk) == list(query.build(True, patient.pk))
    with pytest.raises(TypeError, match="takes 2 parameters"):
        query(demo_org.pk)


@pytest.mark.parametrize(
    ("build", "kinds", "words"),
    [
        # The parameter is changed before it becomes a value (here: added to).
        (lambda org: Patient.objects.filter(organization_id=org + 1), None, "not filter values"),
        # A string made into a LIKE pattern is not the string.
        (
            lambda text: Patient.objects.filter(family_name__contains=text),
            (str,),
            "changed on its way",
        ),
        (lambda org: Patient.objects.filter(organization_id=org).values("pk"), None, "values"),
        # A value worked out from a parameter also used as it is: caught by the second compile.
        (
            lambda org: Patient.objects.filter(organization_id=org).exclude(pk=org + 1),
            None,
            "changes with its parameters",
        ),
        (
            lambda now: Patient.objects.filter(
                updated_at__gte=now, created_at__lte=now + timedelta(days=7)
            ),
            (datetime,),
            "changes with its parameters",
        ),
        # A stand-in no positive field can hold (the ORM drops such a condition).
        (lambda org: Vial.objects.filter(organization_id=org, units=org), None, "stand-ins"),
        (lambda org: Patient.objects.filter(organization_id=org).none(), None, "stand-ins"),
        (
            lambda org: Patient.objects.using("default").filter(organization_id=org),
            None,
            "using",
        ),
        (
            lambda org: Patient.objects.filter(organization_id=org).select_for_update(),
            None,
            "select_for_update",
        ),
        (
            lambda org: Patient.objects.filter(organization_id=org).prefetch_related("history"),
            None,
            "prefetch_related",
        ),
    ],
)
def test_what_cannot_be_prepared_is_refused_when_compiled(db, build, kinds, words):
    query = Prepared(build, kinds=kinds)
    value = {(str,): "x", (datetime,): NOW}.get(kinds, 1)
    with pytest.raises(NotPreparable, match=words):
        query(value)


def test_parameters_are_ids_strings_or_datetimes_and_few():
    with pytest.raises(NotPreparable):
        Prepared(lambda day: Patient.objects.filter(date_of_birth=day), kinds=(date,))
    with pytest.raises(NotPreparable):
        Prepared(lambda *ids: Patient.objects.filter(pk__in=ids), kinds=(int,) * 9)


def test_a_session_and_its_points_keep_the_session_in_hand(demo_org, django_assert_num_queries):
    session = TreatmentSession.objects.filter(organization=demo_org, status="signed").first()
    points = charting_services.live_points(session)
    assert points
    with django_assert_num_queries(0):
        assert all(p.session is session for p in points)
    overrides = charting_services.session_overrides(session)
    with django_assert_num_queries(0):
        assert all(o.session is session for o in overrides)


def test_a_datetime_goes_in_as_the_field_sends_it_and_a_naive_one_takes_the_orm(demo_org):
    """Aware datetimes in any zone find what the queryset finds (the database gets the value
    as a DateTimeField adapts it: on SQLite UTC text, on PostgreSQL the datetime); a naive
    one is not prepared for, and the ORM reads it as it always does (in the server's zone,
    with its warning)."""
    appointment = Appointment.objects.filter(organization=demo_org).order_by("ends_at").first()
    org, patient = demo_org.pk, appointment.patient_id
    query = booking._NEXT_TEN
    for now in (
        appointment.ends_at,
        appointment.ends_at.astimezone(zoneinfo.ZoneInfo("Pacific/Kiritimati")),
        appointment.ends_at + timedelta(microseconds=1),
    ):
        assert [a.pk for a in query(org, patient, now)] == [
            a.pk for a in query.build(org, patient, now)
        ]
    assert appointment in query(org, patient, appointment.ends_at)
    assert appointment not in query(org, patient, appointment.ends_at + timedelta(seconds=1))
    naive = appointment.ends_at.astimezone(UTC).replace(tzinfo=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "received a naive datetime"
        assert query(org, patient, naive) == list(query.build(org, patient, naive))


def test_a_datetime_made_into_something_else_is_refused(db):
    # Compared with a date field, a datetime becomes a date on its way in: not the value.
    query = Prepared(
        lambda when: Patient.objects.filter(date_of_birth__lte=when), kinds=(datetime,)
    )
    with pytest.raises(NotPreparable):
        query(datetime(2026, 1, 1, tzinfo=UTC))


def test_an_id_too_large_for_any_column_finds_nothing_as_the_orm_does(demo_org):
    # A URL's <int:pk> takes any number of digits; SQLite's driver refuses past 64 bits.
    query = patient_views._PATIENT_PAGE
    for huge in (2**63, -(2**63) - 1, 10**30):
        assert query(demo_org.pk, huge) == [] == list(query.build(demo_org.pk, huge))


def test_the_active_time_zone_is_part_of_what_is_kept(demo_org):
    """A query with __date is compiled for each zone it runs in: in UTC+14 a moment of
    05:00 UTC on 2 March is on the 2nd, in UTC-11 on the 1st."""
    patient = Patient.objects.filter(organization=demo_org).first()
    Patient.objects.filter(pk=patient.pk).update(created_at=datetime(2026, 3, 2, 5, tzinfo=UTC))
    query = Prepared(
        lambda org: Patient.objects.filter(
            organization_id=org, created_at__date=date(2026, 3, 2)
        ).values_list("pk", flat=True)
    )
    found = {}
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Kiritimati"):
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            ours = query(demo_org.pk)
            assert ours == list(query.build(demo_org.pk)), zone
            found[zone] = patient.pk in ours
    assert found == {"Pacific/Kiritimati": True, "Pacific/Pago_Pago": False}


# --- PostgreSQL: prepared on the server, planned once per connection ----------------------------


def _statements() -> dict[str, str | None]:
    """SQL -> the name it is prepared under on this connection (None: the server refused)."""
    connection.ensure_connection()
    return getattr(connection.connection, "_glabella_statements", {})


def _untyped() -> Prepared[int]:
    """A query with a parameter PostgreSQL cannot type: a value tested for NULL."""
    return Prepared(
        lambda org, label: Patient.objects.filter(
            RawSQL("%s IS NOT NULL", (label,), output_field=BooleanField()), organization_id=org
        ).values_list("pk", flat=True),
        kinds=(int, str),
    )


def test_placeholders_become_numbered_and_percent_signs_stay():
    assert (
        prepared_module._numbered("a LIKE '%%x%%' AND b = %s AND c IN (%s, %s)")
        == "a LIKE '%x%' AND b = $1 AND c IN ($2, $3)"
    )
    assert prepared_module._numbered("SELECT 1") == "SELECT 1"


def test_the_log_of_an_execute_gives_the_sql_it_was_prepared_from():
    shown = " /* glabella prepared: "
    # A value may hold anything, the comment's own opening included; the SQL is what follows
    # the last one.
    values = f"(1, 'a) /* b{shown}c */', 3)"
    logged = "EXECUTE glabella_7" + values + shown + 'SELECT x FROM "t" WHERE a = $1 */'  # noqa: S608 (a log line, never run)
    assert prepared_module.logged_sql(logged) == 'SELECT x FROM "t" WHERE a = $1'
    assert prepared_module.logged_sql(f"EXECUTE glabella_2{shown}SELECT 1 */") == "SELECT 1"
    assert prepared_module.logged_sql('SELECT "a" FROM "b"') == 'SELECT "a" FROM "b"'


def test_each_query_of_the_app_is_prepared_on_postgresql_and_run_by_name(demo_org):
    """On PostgreSQL every app query is prepared (none refused by the server) and run as
    EXECUTE, the log showing the SQL; SQLite runs the SQL itself."""
    values = _candidates(demo_org)
    for prepared in _the_apps():
        names = _names(prepared)
        args = tuple(values[n][0] for n in names)
        with CaptureQueriesContext(connection) as seen:
            prepared(*args)
        [sql] = [q["sql"] for q in seen.captured_queries]
        if connection.vendor == "postgresql":
            assert re.match(r"EXECUTE glabella_\d+\(", sql), sql
            assert all(_statements().values()), "the server refused to prepare a query"
        else:
            assert sql.startswith("SELECT "), sql
        # The log still tells what ran: the SQL itself, or the SQL the statement was made from.
        shown = prepared_module.logged_sql(sql)
        assert shown.startswith("SELECT ") and "%s" not in shown and "EXECUTE" not in shown
    if connection.vendor == "postgresql":
        assert len([n for n in _statements().values() if n]) >= len(_the_apps())


def test_postgresql_plans_a_prepared_query_once(demo_org):
    """After its first runs (PostgreSQL tries plans for the values five times) the session's
    query runs on the plan kept for it: no more planning."""
    session = TreatmentSession.objects.filter(organization=demo_org).first()
    for _ in range(8):
        charting_views._SESSION(demo_org.pk, session.pk)
    if connection.vendor != "postgresql":
        assert not hasattr(connection.connection, "_glabella_statements")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements")
        plans = {name: (generic, custom) for name, generic, custom in cursor.fetchall()}
    key = (charting_views._SESSION._key, timezone.get_current_timezone_name())
    sql = connections["default"].__dict__["_glabella_prepared"][key].sql
    generic, custom = plans[_statements()[sql]]
    assert generic >= 3 and custom <= 5, (generic, custom)


def test_a_query_the_server_will_not_prepare_runs_unprepared_and_the_transaction_goes_on(
    demo_org, caplog
):
    """A parameter whose type PostgreSQL cannot tell (here ``%s IS NOT NULL``): the
    statement is refused under its own savepoint, the query runs as plain SQL, gives what
    the queryset gives, and the test's transaction is still usable."""
    query = _untyped()
    for _ in range(2):
        assert query(demo_org.pk, "x") == list(query.build(demo_org.pk, "x"))
        assert len(query(demo_org.pk, "x")) == 6
    assert Patient.objects.filter(organization=demo_org).count() == 6  # the transaction goes on
    if connection.vendor == "postgresql":
        assert None in _statements().values()
        assert "did not prepare" in caplog.text


def test_prepared_statements_can_be_turned_off(demo_org, settings):
    """GLABELLA_PG_PREPARE=0 (a pooler in transaction mode): the SQL is sent as it is."""
    settings.GLABELLA_PG_PREPARE = False
    patient = Patient.objects.filter(organization=demo_org).first()
    with CaptureQueriesContext(connection) as seen:
        assert patient_views._PATIENT_PAGE(demo_org.pk, patient.pk) == [patient]
    assert seen.captured_queries[0]["sql"].startswith("SELECT ")


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_again_and_autocommit_needs_no_savepoint():
    """The statements belong to the database session: after Django reconnects they are
    prepared again on the new connection. Outside a transaction (as a page runs) preparing
    takes no savepoint, and a refused statement leaves nothing behind either."""
    org = demo.load(patients=2, now=NOW)
    patient = Patient.objects.filter(organization=org).first()
    refused = _untyped()
    for _ in range(2):
        assert patient_views._PATIENT_PAGE(org.pk, patient.pk) == [patient]
        assert sorted(refused(org.pk, "z")) == sorted(
            Patient.objects.filter(organization=org).values_list("pk", flat=True)
        )
        if connection.vendor == "postgresql":
            prepared = [n for n in _statements().values() if n]
            assert prepared and None in _statements().values()
            with connection.cursor() as cursor:
                cursor.execute("SELECT name FROM pg_prepared_statements")
                assert set(prepared) == {name for (name,) in cursor.fetchall()}
        first = connection.connection
        connection.close()
        assert connection.connection is None and first is not None
