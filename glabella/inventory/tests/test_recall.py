import csv
import dataclasses
import io

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext

from glabella.audit.models import Action, AuditEvent
from glabella.charting import services as charting
from glabella.charting.models import InjectionPoint
from glabella.inventory import services
from glabella.inventory.models import StockMove
from glabella.inventory.services import RecallRow
from glabella.inventory.tests.helpers import (
    GTIN_BOTOX_COSMETIC_50,
    datamatrix,
    draw_session,
    glabellar_session,
    in_a_year,
    outsider_injector,
    receive_botox_cosmetic,
    second_patient,
)


@pytest.fixture
def treated(world):
    """Lot RC1 went to Ada (5 points) and to Grace (one point, the other four from lot RC2);
    Alan's draw from RC1 was reversed; Linus was treated from RC2 only; in the other
    organization Bob was treated from a lot that is also numbered RC1."""
    injector = world.actor("injector")
    rc1 = receive_botox_cosmetic(world, lot="RC1", count=2)
    rc2 = receive_botox_cosmetic(world, lot="RC2", count=2)
    vial1 = services.reconstitute(injector, rc1.vials[0], "1.25")
    vial2 = services.reconstitute(injector, rc2.vials[0], "1.25")

    ada = glabellar_session(world)
    draw_session(world, ada, vial1)

    grace = second_patient(world)
    mixed = glabellar_session(world, patient=grace)
    services.draw(injector, vial1, 4, session=mixed, point_number=1)
    for n in range(2, 6):
        services.draw(injector, vial2, 4, session=mixed, point_number=n)

    alan = second_patient(world, given="Alan", family="Turing")
    wrong = glabellar_session(world, patient=alan)
    services.draw(injector, vial1, 4, session=wrong, point_number=1)
    services.reverse_session_draws(injector, wrong, "charted on the wrong patient")

    linus = second_patient(world, given="Linus", family="Torvalds")
    draw_session(world, glabellar_session(world, patient=linus), vial2)

    outsider = outsider_injector(world)
    theirs = services.receive(
        world.outsider_actor(),
        outsider.clinic,
        barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "RC1", in_a_year()),
        product_id="botox_cosmetic",
        vial_units=50,
        vial_count=1,
    )
    their_vial = services.reconstitute(outsider, theirs.vials[0], "1.25")
    bob = charting.start_session(
        outsider,
        world.outsider_patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    draw_session(world, bob, their_vial, actor=outsider)
    world.grace, world.alan, world.linus = grace, alan, linus
    world.ada_session, world.mixed_session = ada, mixed
    return world


def test_recall_trace_finds_exactly_the_patients_who_received_the_lot(treated):
    trace = services.recall_trace(treated.org, " rc1 ")
    assert trace.lot_number == "RC1"
    assert trace.patient_ids == [treated.grace.pk, treated.patient.pk]  # Hopper, Lovelace
    assert trace.session_ids == [treated.mixed_session.pk, treated.ada_session.pk]
    grace_rows = [r for r in trace.rows if r.patient_id == treated.grace.pk]
    assert [(r.point_number, r.units) for r in grace_rows] == [(1, 4)]
    ada_rows = [r for r in trace.rows if r.patient_id == treated.patient.pk]
    assert [r.point_number for r in ada_rows] == [1, 2, 3, 4, 5]
    first = ada_rows[0]
    assert (first.patient_name, first.phone, first.email, first.reminder_consent) == (
        "Ada Lovelace",
        "07700 900123",
        "ada@example.org",
        False,
    )
    assert (first.area, first.muscle, first.side, first.lot_number, first.clinic) == (
        "glabella",
        "corrugator",
        "R",
        "RC1",
        "Alpha Central",
    )
    assert [r.muscle for r in ada_rows][-1] == "procerus"


def test_recall_of_the_other_lot_and_of_an_unknown_lot(treated):
    rc2 = services.recall_trace(treated.org, "RC2")
    assert set(rc2.patient_ids) == {treated.grace.pk, treated.linus.pk}
    assert services.recall_trace(treated.org, "NOPE").rows == []
    theirs = services.recall_trace(treated.outsider_org, "RC1")
    assert theirs.patient_ids == [treated.outsider_patient.pk]


def test_recall_trace_is_one_query_for_the_rows(treated):
    with CaptureQueriesContext(connection) as ctx:
        trace = services.recall_trace(treated.org, "RC1")
    assert len(trace.rows) == 6
    assert len(ctx.captured_queries) == 2  # the lot look-up, then the rows


def test_recall_csv_is_for_prescribers_owners_and_auditors_and_is_audited(treated):
    with pytest.raises(PermissionDenied):
        services.recall_csv(treated.actor("front_desk"), "RC1")
    with pytest.raises(PermissionDenied):
        services.recall_csv(treated.actor("injector"), "RC1")
    text = services.recall_csv(treated.actor("auditor"), "RC1")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["family name"], r["date of birth"]) for r in rows} == {
        ("Hopper", "1976-12-09"),
        ("Lovelace", "1985-12-10"),
    }
    assert len(rows) == 6 and rows[0]["product"] == "Botox Cosmetic"
    event = AuditEvent.objects.filter(action=Action.EXPORT).get()
    assert event.detail == {"lot_number": "RC1", "rows": 6}


def test_viewing_the_recall_is_audited_with_the_patients(treated):
    trace = services.view_recall(treated.actor("prescriber"), "RC1")
    event = AuditEvent.objects.filter(action=Action.VIEW, object_type="inventory.lot").get()
    assert event.detail["patients"] == trace.patient_ids


def test_each_trace_row_holds_its_draw_point_session_patient_and_lot(treated):
    """Every field of every row, against the records themselves (the rows are read as tuples,
    in RecallRow's order: a column out of place would put one value in another's field)."""
    assert tuple(services._TRACE_COLUMNS) == tuple(f.name for f in dataclasses.fields(RecallRow))
    for trace in (
        services.recall_trace(treated.org, "RC1"),
        services.recall_trace(treated.org, lot=services.recall_trace(treated.org, "RC2").lots[0]),
    ):
        assert trace.rows
        for r in trace.rows:
            move = StockMove.objects.get(
                organization=treated.org,
                kind="administer",
                session_id=r.session_id,
                point_number=r.point_number,
                lot__lot_number=r.lot_number,
                reversed_by__isnull=True,
            )
            point = InjectionPoint.objects.get(session=move.session, number=r.point_number)
            patient = move.session.patient
            assert r == RecallRow(
                patient_id=patient.pk,
                given_name=patient.given_name,
                family_name=patient.family_name,
                date_of_birth=patient.date_of_birth,
                phone=patient.phone,
                email=patient.email,
                reminder_consent=patient.reminder_consent,
                preferred_channel=patient.preferred_channel,
                session_id=move.session_id,
                treated_on=move.session.treated_on,
                session_status=move.session.status,
                clinic=move.session.clinic.name,
                point_number=move.point_number,
                area=point.area,
                muscle=point.muscle,
                side=point.side,
                units=-move.units,
                drawn_at=move.at,
                vial_id=move.vial_id,
                lot_number=move.lot.lot_number,
                product_id=move.lot.product_id,
                expiry=move.lot.expiry,
            )
