"""Two (or more) injectors drawing from one vial at the same moment never overdraw it.

On PostgreSQL each draw locks the vial row (SELECT ... FOR UPDATE) before it sums the vial's
moves; on SQLite the IMMEDIATE transactions serialize the writers. The same test runs on both.

SQLite note: the test runner's in-memory database (shared cache) answers a second writer with
"database table is locked" at once instead of waiting for the first, unlike the file database
Glabella runs on. On SQLite these tests therefore run on a file database with the production
settings (WAL, IMMEDIATE transactions, 20 s busy timeout): see the ``race_world`` fixture.
"""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from glabella.conftest import _make_world
from glabella.inventory import services
from glabella.inventory.models import MoveKind, StockMove, Vial
from glabella.inventory.tests.helpers import glabellar_session, receive_botox_cosmetic
from glabella.testing_processes import migrated_sqlite


@pytest.fixture
def race_world(transactional_db, tmp_path):
    """The standing personas in a database where concurrent writers behave as in production."""
    if connection.vendor != "sqlite":
        yield _make_world()
        return
    settings = connection.settings_dict
    memory_name, memory_connection = settings["NAME"], connection.connection
    connection.connection = None  # keep the in-memory test database alive, aside
    settings["NAME"] = str(tmp_path / "race.sqlite3")  # every thread's connection reads this
    try:
        migrated_sqlite(settings["NAME"])  # a copy of the run's migrated template
        yield _make_world()
    finally:
        connection.close()
        settings["NAME"] = memory_name
        connection.connection = memory_connection


def _race(world, vial, session, amounts):
    """Start one thread per amount at the same instant; each draws for its own point."""
    barrier = threading.Barrier(len(amounts))
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(index: int, units: Decimal) -> None:
        try:
            barrier.wait(timeout=10)
            services.draw(
                world.actor("injector"),
                Vial.objects.get(pk=vial.pk),
                units,
                session=session,
                point_number=index % 5 + 1,
            )
            result = "drawn"
        except ValidationError as exc:
            result = " ".join(exc.messages)
        except Exception as exc:  # report anything else as a failure
            result = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append((index, result))

    threads = [threading.Thread(target=worker, args=(i, u)) for i, u in enumerate(amounts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def _ledger_never_below_zero(vial):
    running = Decimal(vial.units)
    for units in StockMove.objects.filter(vial=vial).order_by("pk").values_list("units", flat=True):
        running += units
        assert running >= 0, "the vial was overdrawn"
    return running


def test_two_concurrent_draws_that_together_exceed_the_vial_one_wins(race_world):
    world = race_world
    receipt = receive_botox_cosmetic(world, count=1)  # 50 U
    vial = services.reconstitute(world.actor("injector"), receipt.vials[0], "1.25")
    session = glabellar_session(world)

    outcomes = _race(world, vial, session, [Decimal(30), Decimal(30)])

    results = sorted(r for _, r in outcomes)
    assert len(results) == 2 and not any(r.startswith("error") for r in results), results
    assert results[0] == (
        "This vial holds only 20 U; 30 U cannot be drawn from it. Draw the rest from another vial."
    )
    assert results[1] == "drawn"
    assert StockMove.objects.filter(vial=vial, kind=MoveKind.ADMINISTER).count() == 1
    assert _ledger_never_below_zero(vial) == 20 == services.units_left(vial)


def test_many_concurrent_draws_exactly_as_many_as_fit_succeed(race_world):
    world = race_world
    receipt = receive_botox_cosmetic(world, count=1)  # 50 U
    vial = services.reconstitute(world.actor("injector"), receipt.vials[0], "1.25")
    session = glabellar_session(world)

    outcomes = _race(world, vial, session, [Decimal(10)] * 8)

    drawn = [i for i, r in outcomes if r == "drawn"]
    refused = [r for _, r in outcomes if r != "drawn"]
    assert len(drawn) == 5, outcomes
    # Each refused draw saw the vial as the fifth draw left it: emptied, hence finished.
    assert refused == ["This vial is finished; use another vial."] * 3, refused
    assert _ledger_never_below_zero(vial) == 0 == services.units_left(vial)
    vial.refresh_from_db()
    assert vial.state == "finished"
