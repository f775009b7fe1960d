import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.audit.services import verify_chain


def _tamper(sql: str, params: list) -> None:
    """Change the table behind the application's back, as an attacker with the file would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # flush deferred FK checks first
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        else:
            cursor.execute("DROP TRIGGER audit_append_only")
        cursor.execute(sql, params)


def test_an_untouched_chain_verifies(world):
    report = verify_chain()
    assert report.ok
    assert report.checked == AuditEvent.objects.count() > 5
    call_command("audit_verify", "--quiet")


def test_every_event_points_at_the_one_before(world):
    events = list(AuditEvent.objects.order_by("seq"))
    assert events[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
        assert after.seq == before.seq + 1


def test_an_edited_event_is_named_as_the_first_broken_link(world):
    victim = AuditEvent.objects.order_by("seq")[3]
    _tamper(
        "UPDATE audit_auditevent SET actor_label = %s WHERE seq = %s", ["someone-else", victim.seq]
    )
    report = verify_chain()
    assert not report.ok
    assert report.broken_seq == victim.seq
    assert "changed after it was written" in report.reason
    with pytest.raises(CommandError, match=f"BROKEN at event #{victim.seq}") as exc:
        call_command("audit_verify")
    assert exc.value.returncode == 1


def test_a_removed_event_is_named(world):
    victim = AuditEvent.objects.order_by("seq")[2]
    _tamper("DELETE FROM audit_auditevent WHERE seq = %s", [victim.seq])
    report = verify_chain()
    assert report.broken_seq == victim.seq
    assert "missing" in report.reason


def test_removing_the_newest_events_is_noticed(world):
    last = AuditEvent.objects.order_by("-seq").first()
    _tamper("DELETE FROM audit_auditevent WHERE seq = %s", [last.seq])
    report = verify_chain()
    assert not report.ok and report.broken_seq == last.seq


def test_the_database_refuses_to_update_an_audit_event(world):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=AuditEvent.objects.first().pk).update(actor_label="x")


def test_deleting_an_audit_event_is_refused_by_postgresql_and_caught_on_sqlite(world):
    first = AuditEvent.objects.order_by("seq").first()
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=first.pk).delete()
        assert verify_chain().ok
    else:
        # SQLite cannot refuse it (the test runner's flush needs DELETE); the chain tells.
        AuditEvent.objects.filter(pk=first.pk).delete()
        assert verify_chain().broken_seq == first.seq


def test_owner_and_auditor_read_their_organizations_log_only(world):
    world.client("injector").get(reverse("patients:detail", args=[world.patient.pk]))
    for role in ("owner", "auditor"):
        html = world.client(role).get(reverse("audit:log")).content.decode()
        assert "injector@alpha.test" in html
        assert "owner@beta.test" not in html  # the other organization's setup and logins
    for role in ("injector", "prescriber", "front_desk"):
        assert world.client(role).get(reverse("audit:log")).status_code == 403


def test_the_log_filters_by_action_and_person(world):
    world.client("injector").get(reverse("patients:detail", args=[world.patient.pk]))
    html = (
        world.client("auditor")
        .get(reverse("audit:log"), {"action": "view", "who": "injector"})
        .content.decode()
    )
    assert "LOVELACE, Ada" in html and "signed in" not in html.split("<tbody>")[1]


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "select-for-update"])
def test_the_head_moves_in_two_statements_or_in_the_older_form_without_returning(
    world, monkeypatch, returning
):
    """The chain head is moved on and read in one ``UPDATE ... RETURNING``; a database without
    RETURNING (SQLite before 3.35) takes the older way (update, then SELECT ... FOR UPDATE).
    Either way the events chain on and the trail verifies."""
    from django.test.utils import CaptureQueriesContext

    from glabella.audit.models import ChainHead
    from glabella.audit.services import append, append_many

    monkeypatch.setattr("glabella.audit.services._update_returns", lambda: returning)
    before = ChainHead.objects.get(pk=1).seq
    with CaptureQueriesContext(connection) as queries:
        one = append(organization=world.org, user=None, actor_label="test", action="view")
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    if connection.vendor == "postgresql":
        # One statement moves the head, hashes the event and writes it (no BEGIN or COMMIT).
        assert len(statements) == 1 and statements[0].startswith("WITH h AS (UPDATE"), statements
        assert ChainHead.objects.get(pk=1).prev_hash == one.prev_hash
    else:
        # Move the head, write the event, set the head's hash.
        assert len(statements) == (3 if returning else 4), statements
    with CaptureQueriesContext(connection) as queries:
        assert append_many([]) == []
    assert len(queries) == 0
    events = [
        AuditEvent(organization=world.org, actor_label=f"test {i}", action="view", detail={})
        for i in range(3)
    ]
    append_many(events)
    assert [e.seq for e in [one, *events]] == list(range(before + 1, before + 5))
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (before + 4, events[-1].hash)
    assert events[0].prev_hash == one.hash
    assert verify_chain().ok


def test_one_event_is_written_as_the_orm_writes_it_and_read_back_whole(world):
    """The one-event path writes its INSERT as text (the hot path of every page view): every
    column comes back as it was given, the row is the saved event's, and the chain verifies."""
    from glabella.audit.models import ChainHead
    from glabella.audit.services import append

    detail = {
        "patient": 7,
        "part": "record",
        "note": 'Zoë «ß» 😀 O\'Brien "quoted" back\\slash % %s {}',
        "nested": {"a": [1, 2.5, None], "seq": "not the number"},
    }
    event = append(
        organization=world.org,
        user=world.users["prescriber"],
        actor_label="Dr Zoë O'Brien",
        action="view",
        object_type="charting.treatmentsession",
        object_id="42",
        object_label="LOVELACE, Ada: treatment session",
        ip="2001:db8::1",
        request_id="r" * 32,
        detail=detail,
    )
    assert event.pk is not None and not event._state.adding
    stored = AuditEvent.objects.get(pk=event.pk)
    for f in AuditEvent._meta.concrete_fields:
        assert getattr(stored, f.attname) == getattr(event, f.attname), f.name
    assert stored.detail == detail and stored.actor_id == world.users["prescriber"].pk
    assert ChainHead.objects.get(pk=1).hash == event.hash == stored.compute_hash()
    assert verify_chain().ok
    # The INSERT sends no signal, as save() would: nothing may listen for events' saves.
    from django.db.models.signals import post_save, pre_save

    assert not pre_save.has_listeners(AuditEvent) and not post_save.has_listeners(AuditEvent)


def test_the_hash_can_be_finished_from_the_body_before_the_number(world):
    """PostgreSQL finishes an event's hash from the body Python wrote up to its number; the
    result must be ``compute_hash()``'s for any content, Unicode included."""
    import hashlib

    from django.utils import timezone

    event = AuditEvent(
        seq=1234567,
        at=timezone.now(),
        organization=world.org,
        actor_label="Dr Zoë «ß» 😀",
        action="view",
        detail={"z": 1, "seq": "in detail", "nested": {"seq": [1, None]}},
        prev_hash="ab" * 32,
    )
    before = event.body_before_seq()
    assert before.isascii() and before.endswith(',"seq":')
    finished = f"{event.prev_hash}|{before}{event.seq}}}"
    assert hashlib.sha256(finished.encode()).hexdigest() == event.compute_hash()
    event.seq = 1235567  # another number, another hash: the number is hashed
    assert hashlib.sha256(finished.encode()).hexdigest() != event.compute_hash()


def test_the_one_statement_append_is_postgresqls_and_writes_nothing_without_a_head(
    world, monkeypatch
):
    """On PostgreSQL a single event goes in by one statement, which writes nothing when there
    is no head row (the ordinary path then makes one); SQLite never takes it."""
    from glabella.audit import services
    from glabella.audit.models import ChainHead

    def event() -> AuditEvent:
        return services._unsaved(
            organization=world.org, user=None, actor_label="test", action="view", object_type="",
            object_id="", object_label="", ip="", request_id="", detail={},
        )  # fmt: skip

    if connection.vendor == "postgresql":
        ChainHead.objects.all().delete()
        count, unsaved = AuditEvent.objects.count(), event()
        assert services._append_in_one_statement(unsaved) is False
        assert AuditEvent.objects.count() == count and unsaved.pk is None
    else:

        def refuse(_event: AuditEvent) -> bool:
            raise AssertionError("SQLite took PostgreSQL's one-statement append")

        monkeypatch.setattr(services, "_append_in_one_statement", refuse)
        written = services.append_many([event()])[0]
        assert written.pk is not None and verify_chain().ok


def test_writers_at_once_never_chain_onto_the_same_event(transactional_db, world):
    """Four connections appending single events at once (a page view each): every number once,
    in one unbroken chain, and the head on the last."""
    import threading

    from django.db import connections

    from glabella.audit.models import ChainHead
    from glabella.audit.services import append

    start = ChainHead.objects.get(pk=1).seq
    go = threading.Barrier(4)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            go.wait()
            for i in range(25):
                append(organization=world.org, user=None, actor_label=f"w{n}", action="view",
                       object_id=str(i))  # fmt: skip
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    seqs = list(
        AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(start + 1, start + 101))
    head = ChainHead.objects.get(pk=1)
    assert head.seq == start + 100
    assert head.hash == AuditEvent.objects.get(seq=start + 100).hash
    assert verify_chain().ok


def test_an_older_schema_without_the_heads_prev_hash_is_audited_the_ordinary_way(
    world, monkeypatch
):
    """A backup of an older version, just restored and not yet migrated, has no
    ``audit_chainhead.prev_hash``: the restore's own event (``backup._audit``) is written the
    ordinary way, which reads the head's number and hash only."""
    from django.db import ProgrammingError

    from glabella.audit import services
    from glabella.interop import backup

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_chainhead DROP COLUMN prev_hash")
    if connection.vendor == "postgresql":
        with pytest.raises(ProgrammingError, match="prev_hash"):
            services.append(organization=None, user=None, actor_label="t", action="update")
    event = services.append(
        organization=None, user=None, actor_label="t", action="update", any_schema=True
    )
    assert event.pk is not None

    def refuse(_event: AuditEvent) -> bool:
        raise AssertionError("the one-statement append needs the head's prev_hash")

    monkeypatch.setattr(services, "_append_in_one_statement", refuse)
    backup._audit("glabella restore", "update", "database", "restored", {"archive": "x"})
    assert AuditEvent.objects.latest("seq").actor_label == "glabella restore"
    assert verify_chain().ok
