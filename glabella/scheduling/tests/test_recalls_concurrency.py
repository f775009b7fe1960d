"""Two refreshes of one patient at once (two tablets signing, a rebuild running) still leave
exactly one current recall per indication: the refresh locks the patient row first.

On SQLite this runs on a file database with the production settings (the inventory tests'
``race_world`` fixture): the test runner's shared-cache memory database refuses a second
writer at once instead of letting it wait."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

from django.db import connection, transaction

from glabella.charting.models import Status, TreatmentSession
from glabella.inventory.tests.test_concurrent_draws import race_world  # noqa: F401
from glabella.scheduling import booking, recalls
from glabella.scheduling.models import Recall


def test_two_refreshes_at_once_make_one_current_recall(race_world):  # noqa: F811
    world = race_world
    # A signed session written directly (the charting services would refresh at once; here
    # the two threads below are the first to look at it).
    TreatmentSession.objects.create(
        organization=world.org,
        patient=world.patient,
        clinic=world.clinic,
        practitioner=world.users["injector"],
        indication="chronic-migraine",
        product_id="botox",
        treated_on=date.today() - timedelta(days=3),
        status=Status.SIGNED,
        created_by=world.users["injector"],
    )
    assert not Recall.objects.exists()
    booking.settings_for(world.clinic)  # the clinic's settings exist already
    first_done = threading.Event()
    errors: list[BaseException] = []
    made: dict[str, int] = {}

    def first() -> None:
        # Refreshes, then keeps its transaction open a while: the second one starts meanwhile.
        try:
            with transaction.atomic():
                made["first"] = len(recalls.refresh(world.patient).create)
                first_done.set()
                time.sleep(1.0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_done.set()
            connection.close()

    def second() -> None:
        try:
            first_done.wait(timeout=30)
            with transaction.atomic():
                made["second"] = len(recalls.refresh(world.patient).create)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert made == {"first": 1, "second": 0}  # the second waited, then found it
    current = Recall.objects.filter(patient=world.patient, is_current=True)
    assert current.count() == 1
    assert current.get().due_on == date.today() + timedelta(days=81)
