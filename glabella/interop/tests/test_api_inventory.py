"""The stock API: lots, vials, the ledger and what is on hand, through a personal API token."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.accounts.roles import Role
from glabella.accounts.services import add_member
from glabella.accounts.tokens import create_token
from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD
from glabella.interop.tests.helpers import api_client
from glabella.inventory import services
from glabella.inventory.models import Lot, MoveKind, StockMove, Vial, VialState

API = "/api/v1"
NEXT_YEAR = date.today().replace(day=1) + timedelta(days=400)


def post(client, url, body, method="post"):
    return getattr(client, method)(
        f"{API}{url}", data=json.dumps(body), content_type="application/json"
    )


def receive(client, **overrides):
    body = {
        "product_id": "botox",
        "lot_number": "C1234AB",
        "expiry": NEXT_YEAR.isoformat(),
        "vial_units": 100,
        "vial_count": 3,
    }
    body.update(overrides)
    return post(client, "/stock/receive", body)


@pytest.fixture
def stocked(world):
    """Three sealed 100 U Botox vials of lot C1234AB at the world's clinic."""
    receipt = services.receive(
        world.actor("owner"),
        world.clinic,
        product_id="botox",
        lot_number="C1234AB",
        expiry=NEXT_YEAR,
        vial_units=100,
        vial_count=3,
    )
    return receipt


# --- receiving ----------------------------------------------------------------------------------


def test_front_desk_receives_a_delivery_through_the_ledger_and_it_is_audited(world):
    client = api_client(world, "front_desk")
    response = receive(client, gtin="5012345678900", note="box 1 of 2")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lot"]["lot_number"] == "C1234AB"
    assert body["lot"]["gtin"] == "05012345678900"
    assert body["lot"]["expired"] is False
    assert len(body["vial_ids"]) == 3
    assert body["move"]["kind"] == "receive"
    assert body["move"]["units"] == "300.00"
    assert body["move"]["vials"] == 3
    assert body["move"]["by"] == "front_desk@alpha.test"
    assert body["gtin_remembered"] is True

    move = StockMove.objects.get(pk=body["move"]["id"])
    assert move.units == Decimal("300") and move.organization == world.org
    assert AuditEvent.objects.filter(
        organization=world.org, object_type="inventory.stockmove", object_id=str(move.pk)
    ).exists()

    stock = client.get(f"{API}/lots/{body['lot']['id']}").json()["stock"]
    assert [(s["clinic_id"], s["sealed_vials"], s["total_units"]) for s in stock] == [
        (world.clinic.pk, 3, "300.00")
    ]


def test_a_second_delivery_of_the_same_gtin_needs_no_product(world):
    client = api_client(world, "owner")
    assert receive(client, gtin="5012345678900").status_code == 201
    again = post(
        client,
        "/stock/receive",
        {
            "gtin": "05012345678900",
            "lot_number": "D5",
            "expiry": NEXT_YEAR.isoformat(),
            "vial_count": 1,
        },
    )
    assert again.status_code == 201, again.content
    assert again.json()["lot"]["product_id"] == "botox"
    assert again.json()["lot"]["vial_units"] == 100


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"expiry": "2020-01-31"}, "expiry", "expired stock is not received"),
        ({"gtin": "5012345678901"}, "gtin", "not a valid product code"),
        ({"vial_units": 150}, "vial_units", "does not come in a 150 U vial"),
        ({"product_id": "botulism"}, "product_id", "Choose the product"),
        ({"lot_number": ""}, "lot_number", "Enter the lot number"),
    ],
)
def test_a_delivery_the_receiving_page_would_refuse_is_refused_and_nothing_is_written(
    world, overrides, field, words
):
    response = receive(api_client(world, "owner"), **overrides)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"] == field
    assert words in body["message"]
    assert not Lot.objects.filter(organization=world.org).exists()
    assert not StockMove.objects.filter(organization=world.org).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"vial_count": "3"}, "vial_count"),  # a number sent as text
        ({"vial_count": 2.5}, "vial_count"),
        ({"vial_count": 0}, "vial_count"),
        ({"vial_count": 501}, "vial_count"),
        ({"vial_count": True}, "vial_count"),
        ({"vial_units": "100"}, "vial_units"),
        ({"expiry": "31/01/2031"}, "expiry"),
        ({"expiry": 20310131}, "expiry"),
        ({"expiry": "2031-02-30"}, "expiry"),
        ({"expiry": "2031-01-31T00:00:00"}, "expiry"),
        ({"colour": "blue"}, "colour"),  # an unknown field
        ({"clinic_id": "1"}, "clinic_id"),
    ],
)
def test_wrong_types_unknown_fields_and_bad_dates_are_refused_naming_the_field(
    world, overrides, field
):
    response = receive(api_client(world, "owner"), **overrides)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"] == field, body
    assert body["message"]
    assert not Lot.objects.filter(organization=world.org).exists()


def test_roles_as_on_the_pages(world, stocked):
    vial = stocked.vials[0]
    assert receive(api_client(world, "auditor")).status_code == 403
    assert api_client(world, "auditor").get(f"{API}/lots").status_code == 200
    front_desk = api_client(world, "front_desk")
    response = post(front_desk, f"/vials/{vial.pk}/reconstitute", {"diluent_ml": 2.5})
    assert response.status_code == 403
    assert response.json()["message"]
    owner = api_client(world, "owner")  # owners receive and manage, but do not open vials
    assert post(owner, f"/vials/{vial.pk}/reconstitute", {"diluent_ml": 2.5}).status_code == 403
    assert Vial.objects.get(pk=vial.pk).state == VialState.SEALED


# --- vials --------------------------------------------------------------------------------------


def test_an_injector_reconstitutes_then_wastes_and_the_ledger_follows(world, stocked):
    client = api_client(world, "injector")
    vial = stocked.vials[0]
    opened = post(client, f"/vials/{vial.pk}/reconstitute", {"diluent_ml": 2.5})
    assert opened.status_code == 200, opened.content
    body = opened.json()
    assert body["state"] == "reconstituted"
    assert Decimal(body["concentration"]) == Decimal(4)  # 100 U in 2.5 mL: 4 U per 0.1 mL
    assert Decimal(body["units_left"]) == Decimal(100)
    assert body["usable"] is True and body["blocks"] == []
    assert body["opened_by"] == "injector@alpha.test"

    again = post(client, f"/vials/{vial.pk}/reconstitute", {"diluent_ml": 2.5})
    assert again.status_code == 422
    assert "already reconstituted" in again.json()["message"]

    wasted = post(client, f"/vials/{vial.pk}/waste", {"units": 2.5, "reason": "spilt drawing up"})
    assert wasted.status_code == 200, wasted.content
    assert wasted.json()["move"]["units"] == "-2.50"
    assert wasted.json()["vial"]["units_left"] == "97.50"

    rest = post(client, f"/vials/{vial.pk}/waste", {"rest": True, "reason": "end of the day"})
    assert rest.status_code == 200, rest.content
    assert rest.json()["vial"]["state"] == "finished"
    assert rest.json()["vial"]["units_left"] == "0.00"
    assert services.units_left(Vial.objects.get(pk=vial.pk)) == 0

    kinds = [m["kind"] for m in client.get(f"{API}/stock-moves?vial={vial.pk}").json()["items"]]
    assert kinds == ["reconstitute", "waste", "waste"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"units": "2", "reason": "spilt"}, "units"),  # units as a string
        ({"units": 0.001, "reason": "spilt"}, "units"),  # more than two decimals
        ({"units": -1, "reason": "spilt"}, "units"),
        ({"units": 0, "reason": "spilt"}, "units"),
        ({"units": 1e9, "reason": "spilt"}, "units"),  # out of range
        ({"units": 500, "reason": "spilt"}, "units"),  # more than the vial holds
        ({"units": 1, "reason": ""}, "reason"),
        ({"units": 1, "reason": "spilt\x00"}, "reason"),  # NUL: no database stores it
        ({"units": 1, "rest": True, "reason": "spilt"}, "units"),  # both
        ({"units": 1, "reason": "spilt", "witness": 3}, "witness"),  # unknown field
    ],
)
def test_bad_waste_is_refused_naming_the_field_and_the_vial_keeps_its_units(
    world, stocked, body, field
):
    vial = stocked.vials[0]
    services.reconstitute(world.actor("injector"), vial, "2.5")
    response = post(api_client(world, "injector"), f"/vials/{vial.pk}/waste", body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field, response.json()
    assert services.units_left(vial) == Decimal(100)
    assert not StockMove.objects.filter(vial=vial, kind=MoveKind.WASTE).exists()


@pytest.mark.parametrize("diluent", ["2.5", -1, 1000, 2.555, None])
def test_a_bad_diluent_volume_is_refused(world, stocked, diluent):
    vial = stocked.vials[0]
    response = post(
        api_client(world, "injector"), f"/vials/{vial.pk}/reconstitute", {"diluent_ml": diluent}
    )
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "diluent_ml"
    assert Vial.objects.get(pk=vial.pk).state == VialState.SEALED


def test_a_reconstitution_time_in_the_future_is_refused(world, stocked):
    vial = stocked.vials[0]
    later = (timezone.now() + timedelta(hours=2)).isoformat()
    response = post(
        api_client(world, "injector"),
        f"/vials/{vial.pk}/reconstitute",
        {"diluent_ml": 2.5, "at": later},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "at"
    assert "future" in response.json()["message"]


def test_vials_are_listed_with_units_left_and_filtered(world, stocked):
    services.reconstitute(world.actor("injector"), stocked.vials[0], "2.5")
    client = api_client(world, "auditor")
    body = client.get(f"{API}/vials?state=sealed").json()
    assert body["count"] == 2
    assert {v["units_left"] for v in body["items"]} == {"100.00"}
    opened = client.get(f"{API}/vials?state=reconstituted&clinic={world.clinic.pk}").json()
    assert [v["id"] for v in opened["items"]] == [stocked.vials[0].pk]
    assert client.get(f"{API}/vials?state=melted").status_code == 422
    assert client.get(f"{API}/vials?product=nothing").status_code == 422
    detail = client.get(f"{API}/vials/{stocked.vials[0].pk}").json()
    assert detail["usable"] is True


# --- lots, the ledger and what is on hand -------------------------------------------------------


def test_lots_filter_by_product_and_expiry(world, stocked):
    long_ago = timezone.now() - timedelta(days=800)
    services.receive(
        world.actor("owner"),
        world.clinic,
        product_id="dysport",
        lot_number="OLD1",
        expiry=(long_ago + timedelta(days=30)).date(),
        vial_units=300,
        vial_count=1,
        now=long_ago,
    )
    client = api_client(world, "front_desk")
    everything = client.get(f"{API}/lots").json()
    assert everything["count"] == 2
    assert everything["items"][0]["lot_number"] == "OLD1"  # soonest expiry first
    expired = client.get(f"{API}/lots?expired=true").json()["items"]
    assert [(lot["lot_number"], lot["expired"]) for lot in expired] == [("OLD1", True)]
    in_date = client.get(f"{API}/lots?expired=false").json()["items"]
    assert [lot["lot_number"] for lot in in_date] == ["C1234AB"]
    botox = client.get(f"{API}/lots?product=botox").json()["items"]
    assert [lot["product"] for lot in botox] == ["Botox"]
    assert client.get(f"{API}/lots?lot_number=C1%00").status_code == 422
    unknown = client.get(f"{API}/lots?product=botoxx")
    assert unknown.status_code == 422 and unknown.json()["field"] == "product"


def test_the_ledger_pages_and_filters(world, stocked):
    for n in range(4):
        services.receive(
            world.actor("owner"),
            world.clinic,
            product_id="botox",
            lot_number=f"L{n}",
            expiry=NEXT_YEAR,
            vial_units=100,
            vial_count=1,
        )
    client = api_client(world, "auditor")
    first = client.get(f"{API}/stock-moves?limit=2").json()
    assert (first["count"], first["limit"], first["offset"]) == (5, 2, 0)
    second = client.get(f"{API}/stock-moves?limit=2&offset=2").json()
    last = client.get(f"{API}/stock-moves?limit=2&offset=4").json()
    ids = [m["id"] for m in first["items"] + second["items"] + last["items"]]
    assert len(ids) == len(set(ids)) == 5
    assert client.get(f"{API}/stock-moves?offset=99").json()["items"] == []
    lot = stocked.lot.pk
    assert client.get(f"{API}/stock-moves?lot={lot}&kind=receive").json()["count"] == 1
    today = timezone.localdate()
    since = client.get(f"{API}/stock-moves?from={today - timedelta(days=1)}").json()
    assert since["count"] == 5
    before = client.get(f"{API}/stock-moves?to={today - timedelta(days=2)}").json()
    assert before["count"] == 0
    for bad in (
        "limit=0",
        "limit=201",
        "offset=-1",
        "limit=ten",
        "from=yesterday",
        "kind=stolen",
        f"from={today}&to={today - timedelta(days=1)}",
    ):
        response = client.get(f"{API}/stock-moves?{bad}")
        assert response.status_code == 422, bad
        assert response.json()["message"], bad


def test_on_hand_sums_the_ledger(world, stocked):
    services.reconstitute(world.actor("injector"), stocked.vials[0], "2.5")
    services.waste(world.actor("injector"), stocked.vials[0], "10", reason="spilt")
    body = api_client(world, "front_desk").get(f"{API}/stock/on-hand").json()
    assert body["count"] == 1
    row = body["items"][0]
    assert row["lot"]["lot_number"] == "C1234AB"
    assert row["sealed_vials"] == 2
    assert row["sealed_units"] == "200.00"
    assert row["open_vials"] == [
        {
            "vial_id": stocked.vials[0].pk,
            "units_left": "90.00",
            "use_by": row["open_vials"][0]["use_by"],
        }
    ]
    assert row["total_units"] == "290.00"
    assert row["unaccounted"] == "0.00"
    assert (
        api_client(world, "front_desk").get(f"{API}/stock/on-hand?product=dysport").json()["count"]
        == 0
    )


# --- other organizations ------------------------------------------------------------------------


def test_another_organizations_stock_is_not_found(world, stocked):
    outsider = api_client(world, "outsider")
    vial = stocked.vials[0]
    for url in (f"/lots/{stocked.lot.pk}", f"/vials/{vial.pk}"):
        response = outsider.get(f"{API}{url}")
        assert response.status_code == 404, url
        assert "C1234AB" not in response.content.decode()
    # (the outsider is an owner: opening vials is not an owner's job, whoever's the vial is)
    assert post(outsider, f"/vials/{vial.pk}/reconstitute", {"diluent_ml": 2.5}).status_code == 403
    for url in ("/lots", "/vials", "/stock-moves", "/stock/on-hand"):
        assert outsider.get(f"{API}{url}").json()["count"] == 0, url
    assert outsider.get(f"{API}/vials?clinic={world.clinic.pk}").status_code == 404
    assert receive(outsider, clinic_id=world.clinic.pk).status_code == 404
    assert Vial.objects.get(pk=vial.pk).state == VialState.SEALED
    assert StockMove.objects.filter(organization=world.outsider_org).count() == 0


def test_an_outsider_injector_gets_404_not_403_for_our_vial(world, stocked):
    """An outsider whose role could open vials still cannot reach ours: not found."""
    m = Membership.objects.get(user=world.outsider)
    owner = Actor(m.organization, m.user, m.clinic, m.role)
    nurse = add_member(
        owner, email="nurse@beta.test", clinic=m.clinic, role=Role.INJECTOR, password=PASSWORD
    )
    token = create_token(
        Actor(m.organization, nurse.user, m.clinic, Role.INJECTOR), name="t", membership=nurse
    ).secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    vial = stocked.vials[0]
    response = post(client, f"/vials/{vial.pk}/reconstitute", {"diluent_ml": 2.5})
    assert response.status_code == 404
    response = post(client, f"/vials/{vial.pk}/waste", {"rest": True, "reason": "mine now"})
    assert response.status_code == 404
    assert Vial.objects.get(pk=vial.pk).state == VialState.SEALED


def test_no_token_is_a_401(world):
    response = Client().get(f"{API}/lots")
    assert response.status_code == 401
    assert response.json()["message"]
