"""Prepared queries (glabella/prepared.py) give what their plain querysets give, compile once
per connection, and refuse what they cannot reproduce.

Every prepared query the app makes is run here against its own queryset on the demo
organization, for every id it takes, on the database the suite runs on (SQLite or
PostgreSQL): the same rows, in the same order, the same values of the same types, the same
related records loaded with them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext

# The modules that make the app's prepared queries (importing them registers the queries).
from glabella.charting import services as charting_services
from glabella.charting import views as charting_views
from glabella.charting.models import Override, TreatmentSession
from glabella.consent import services as consent_services  # noqa: F401
from glabella.inventory import services as stock_services  # noqa: F401
from glabella.outcomes import durations
from glabella.outcomes.models import EffectReturn
from glabella.patients import services as patient_services  # noqa: F401
from glabella.patients import views as patient_views
from glabella.patients.models import Patient
from glabella.prepared import NotPreparable, Prepared
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
    if not EffectReturn.objects.filter(organization=org).exists():
        EffectReturn.objects.create(
            organization=org,
            patient=s.patient,
            session=s,
            returned_on=s.treated_on + timedelta(days=100),
            recorded_by=s.signed_by,
        )
    return org


def _candidates(org) -> dict[str, list[Any]]:
    """The values each named parameter of the app's prepared queries is tried with."""
    sessions = TreatmentSession.objects.filter(organization=org)
    return {
        "org": [org.pk],
        "session": list(sessions.values_list("pk", flat=True)),
        "patient": list(Patient.objects.filter(organization=org).values_list("pk", flat=True)),
        "clinic": sorted(set(sessions.values_list("clinic_id", flat=True))),
        "product": sorted(set(sessions.values_list("product_id", flat=True))),
    }


def _names(prepared: Prepared[Any]) -> tuple[str, ...]:
    code = prepared.build.__code__
    return code.co_varnames[: code.co_argcount]


def test_the_app_prepares_the_pages_queries():
    """The registry the next test walks holds the queries of the chart and the patient."""
    for made in (
        charting_views._SESSION,
        charting_services._LIVE_POINTS,
        patient_views._PATIENT_PAGE,
        durations._PATIENT_SESSIONS,
    ):
        assert made in Prepared.every
    assert len(Prepared.every) >= 10


def test_every_prepared_query_gives_what_its_queryset_gives(demo_org):
    values = _candidates(demo_org)
    for prepared in Prepared.every:
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
    assert len(compiled) == 1
    with CaptureQueriesContext(connection) as seen:
        second = query(demo_org.pk, b.pk)
    assert len(compiled) == 1, "compiled again"
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
        (
            lambda org: Patient.objects.filter(organization_id=org).prefetch_related("history"),
            None,
            "prefetch_related",
        ),
    ],
)
def test_what_cannot_be_prepared_is_refused_when_compiled(db, build, kinds, words):
    query = Prepared(build, kinds=kinds)
    with pytest.raises(NotPreparable, match=words):
        query(*(["x"] if kinds == (str,) else [1]))


def test_parameters_are_ids_or_strings_and_few():
    with pytest.raises(NotPreparable):
        Prepared(lambda when: Patient.objects.filter(updated_at__gte=when), kinds=(datetime,))
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
