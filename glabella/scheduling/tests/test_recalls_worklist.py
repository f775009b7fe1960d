"""The worklist query: tabs, counts, order and paging (the paging takes a short cut through the
index; every page must be exactly what sorting all the rows would give)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from glabella.patients import services as patient_services
from glabella.scheduling import recalls
from glabella.scheduling.models import Recall, RecallState

TODAY = date(2026, 6, 15)
INDICATIONS = ["glabellar-lines", "chronic-migraine", "forehead-lines", "blepharospasm"]


def _recalls(world, n_patients: int = 30, seed: int = 3) -> None:
    rng = random.Random(seed)
    rows = []
    for n in range(n_patients):
        patient = patient_services.create_patient(
            world.actor("front_desk"),
            {"given_name": f"P{n}", "family_name": "Many", "date_of_birth": date(1980, 1, 1)},
        )
        for indication in INDICATIONS:
            rows.append(
                Recall(
                    organization=world.org,
                    patient=patient,
                    clinic=world.clinic,
                    practitioner=world.users["injector"] if n % 2 else world.users["prescriber"],
                    indication=indication,
                    kind="retreatment",
                    product_id="botox",
                    basis_on=TODAY - timedelta(days=100),
                    # Few distinct dates: many ties on the due date, in every tab.
                    due_on=TODAY + timedelta(days=rng.choice([-30, -9, -1, 0, 3, 6, 7, 20, 41])),
                    state=rng.choice(
                        [RecallState.OPEN, RecallState.OPEN, RecallState.CONTACTED, "declined"]
                    ),
                )
            )
    # One recall of another organization, due in every sense: never shown.
    rows.append(
        Recall(
            organization=world.outsider_org,
            patient=world.outsider_patient,
            indication="glabellar-lines",
            kind="retreatment",
            basis_on=TODAY,
            due_on=TODAY - timedelta(days=1),
        )
    )
    Recall.objects.bulk_create(rows)


def _naive(world, tab: str, filters: recalls.Filters) -> list[int]:
    first, last = recalls.tab_range(tab, TODAY)
    rows = Recall.objects.filter(organization=world.org, is_current=True)
    if filters.state == "":
        rows = rows.filter(state__in=["open", "contacted"])
    elif filters.state != "all":
        rows = rows.filter(state=filters.state)
    if filters.practitioner_id:
        rows = rows.filter(practitioner_id=filters.practitioner_id)
    if first:
        rows = rows.filter(due_on__gte=first)
    if last:
        rows = rows.filter(due_on__lte=last)
    lead = "-due_on" if tab == "overdue" else "due_on"
    return list(
        rows.order_by(lead, "patient_id", "indication", "kind").values_list("pk", flat=True)
    )


def test_every_page_of_every_tab_is_the_fully_sorted_order(world):
    _recalls(world)
    for state in ("", "all", "declined", "contacted"):
        for practitioner in (None, world.users["injector"].pk):
            filters = recalls.Filters(state=state, practitioner_id=practitioner)
            for tab in recalls.TABS:
                expected = _naive(world, tab, filters)
                got: list[int] = []
                page = recalls.worklist(
                    world.org, today=TODAY, tab=tab, filters=filters, per_page=7
                )
                assert page.total == len(expected)
                for number in range(1, page.num_pages + 1):
                    page = recalls.worklist(
                        world.org,
                        today=TODAY,
                        tab=tab,
                        filters=filters,
                        page=number,
                        per_page=7,
                    )
                    assert len(page.rows) <= 7
                    got += [r.pk for r in page.rows]
                assert got == expected, (state, practitioner, tab)


def test_tab_bounds_counts_and_order(world):
    _recalls(world, n_patients=12)
    counts = recalls.counts(world.org, TODAY)
    assert counts == {tab: len(_naive(world, tab, recalls.Filters())) for tab in recalls.TABS}
    assert recalls.tab_range("overdue", TODAY) == (None, TODAY - timedelta(days=1))
    assert recalls.tab_range("week", TODAY) == (TODAY, TODAY + timedelta(days=6))
    assert recalls.tab_range("upcoming", TODAY) == (
        TODAY + timedelta(days=7),
        TODAY + timedelta(days=41),
    )
    overdue = recalls.worklist(world.org, today=TODAY, tab="overdue").rows
    assert [r.due_on for r in overdue] == sorted((r.due_on for r in overdue), reverse=True)
    assert all(r.due_on < TODAY for r in overdue)
    week = recalls.worklist(world.org, today=TODAY, tab="week").rows
    assert [r.due_on for r in week] == sorted(r.due_on for r in week)
    assert {r.due_on - TODAY for r in week} <= {timedelta(days=d) for d in (0, 3, 6)}
    upcoming = recalls.worklist(world.org, today=TODAY, tab="upcoming").rows
    assert {(r.due_on - TODAY).days for r in upcoming} <= {7, 20, 41}
    # Past the last page: the last page. The other organization's recall is never counted.
    assert recalls.worklist(world.org, today=TODAY, page=999).number == max(
        1, -(-counts["overdue"] // recalls.PER_PAGE)
    )
    assert sum(recalls.counts(world.outsider_org, TODAY).values()) == 1
