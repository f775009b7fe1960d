"""The stock pages: who may reach what, another organization's objects are 404, bad input
is refused beside the field with nothing written, receiving twice by a double submit is
impossible, and the downloads hold the right rows."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from importlib import import_module

import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone

from glabella.accounts.models import Membership
from glabella.accounts.roles import can
from glabella.accounts.services import add_clinic
from glabella.audit.models import Action, AuditEvent
from glabella.conftest import PASSWORD
from glabella.inventory import services, views
from glabella.inventory import urls as inventory_urls
from glabella.inventory.models import GtinProduct, Lot, MoveKind, Price, StockMove, Threshold
from glabella.inventory.tests.helpers import (
    GS,
    GTIN_BOTOX_COSMETIC_50,
    GTIN_BOTOX_COSMETIC_100,
    GTIN_DAXXIFY_100,
    clinic_today,
    datamatrix,
    draw_session,
    glabellar_session,
    hri,
    in_a_year,
    receive_botox_cosmetic,
    second_patient,
)

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]

# Every URL of glabella/inventory/urls.py: the permission its view requires and the methods
# it answers. A URL missing here fails test_the_walk_covers_every_inventory_url.
URLS: dict[str, tuple[str, frozenset[str]]] = {
    "overview": ("stock.view", frozenset({"get"})),
    "receive": ("stock.receive", frozenset({"get", "post"})),
    "lot": ("stock.view", frozenset({"get"})),
    "lot_transfer": ("stock.receive", frozenset({"post"})),
    "lot_destroy": ("stock.use", frozenset({"post"})),
    "lot_adjust": ("stock.manage", frozenset({"post"})),
    "vial": ("stock.view", frozenset({"get"})),
    "vial_reconstitute": ("stock.use", frozenset({"post"})),
    "vial_waste": ("stock.use", frozenset({"post"})),
    "vial_destroy": ("stock.use", frozenset({"post"})),
    "reconciliation": ("stock.view", frozenset({"get"})),
    "reconciliation_csv": ("stock.view", frozenset({"get"})),
    "prices_csv": ("stock.manage", frozenset({"get"})),
    "recall": ("stock.recall", frozenset({"get"})),
    "recall_csv": ("stock.recall", frozenset({"get"})),
    "settings": ("stock.manage", frozenset({"get", "post"})),
}


def url(name, *args):
    return reverse(f"inventory:{name}", args=args)


@pytest.fixture
def stock(world):
    """Alpha: a second clinic; lot LOT1 (3 x 50 U) with one vial open. Beta (the outsider):
    its own clinic, lot and vial."""
    owner = world.actor("owner")
    world.north = add_clinic(owner, name="Alpha North", timezone="Europe/London")
    receipt = receive_botox_cosmetic(world, lot="LOT1", count=3)
    world.lot = receipt.lot
    world.sealed = receipt.vials[0]
    world.opened = services.reconstitute(world.actor("injector"), receipt.vials[1], "1.25")
    theirs = services.receive(
        world.outsider_actor(),
        world.outsider_actor().clinic,
        barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "THEIRS", in_a_year()),
        product_id="botox_cosmetic",
        vial_units=50,
        vial_count=2,
    )
    world.their_clinic = world.outsider_actor().clinic
    world.their_lot = theirs.lot
    world.their_vial = theirs.vials[0]
    return world


def _kwargs(pattern: URLPattern, lot_pk: int, vial_pk: int) -> list[int]:
    names = set(pattern.pattern.regex.groupindex)
    if not names:
        return []
    assert names == {"pk"}, f"teach this test the URL arguments of {pattern.name}"
    return [vial_pk if pattern.name.startswith("vial") else lot_pk]


def _walk(lot_pk: int, vial_pk: int) -> list[tuple[str, str]]:
    return [
        (p.name, reverse(f"inventory:{p.name}", args=_kwargs(p, lot_pk, vial_pk)))
        for p in inventory_urls.urlpatterns
    ]


# --- the walk ------------------------------------------------------------------------------


def test_the_walk_covers_every_inventory_url():
    names = [p.name for p in inventory_urls.urlpatterns]
    assert all(isinstance(p, URLPattern) for p in inventory_urls.urlpatterns)
    assert sorted(names) == sorted(URLS), "add the new URL to URLS in this test"
    for p in inventory_urls.urlpatterns:
        assert p.callback.required_permission == URLS[p.name][0], p.name


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_by_its_permission(stock, role):
    client = stock.client(role)
    for name, address in _walk(stock.lot.pk, stock.opened.pk):
        permission, methods = URLS[name]
        response = client.get(address)
        if "get" not in methods:
            assert response.status_code == 405, (name, role)
            continue
        expected = 200 if can(role, permission) else 403
        if name == "recall_csv" and expected == 200:
            expected = 302  # no lot given: back to the form
        assert response.status_code == expected, (name, role, response.status_code)


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_organizations_lot_vial_and_clinic_are_404(stock, role, method):
    """Every URL with another organization's lot or vial, and every clinic parameter naming
    another organization's clinic: 404 (403 only where the role may not use the page)."""
    client = stock.client(role)
    if role == "outsider":
        # The outsider reaching into Alpha: Alpha's objects are the foreign ones.
        lot, vial, clinic, own_clinic = stock.lot, stock.opened, stock.clinic, stock.their_clinic
        acting_role = "owner"
    else:
        lot, vial, clinic = stock.their_lot, stock.their_vial, stock.their_clinic
        own_clinic, acting_role = stock.clinic, role
    before = StockMove.objects.count(), AuditEvent.objects.filter(action=Action.EXPORT).count()
    data = {
        "clinic": clinic.pk,
        "from_clinic": clinic.pk,
        "to_clinic": clinic.pk,
        "destroy-clinic": clinic.pk,
        "vial_count": "1",
        "vials": "1",
        "destroy-vials": "1",
        "reason": "stock count",
        "destroy-reason": "expired",
        "diluent_ml": "1.25",
        "confirm": "on",
        "step": "typed",
        "product_id": "botox_cosmetic",
        "what": "threshold",
        "t-botox_cosmetic-min_vials": "2",
    }
    for name, address in _walk(lot.pk, vial.pk):
        permission, methods = URLS[name]
        if name in (
            "overview",
            "receive",
            "reconciliation",
            "reconciliation_csv",
            "prices_csv",
            "settings",
        ):
            address += f"?clinic={clinic.pk}"
        if name in ("recall", "recall_csv"):
            continue  # by lot number: covered by the recall tests below
        response = getattr(client, method)(address, data)
        allowed = {404} if can(acting_role, permission) else {403}
        if method not in methods:
            allowed = {405}
        assert response.status_code in allowed, (name, role, method, response.status_code)
    # A transfer of one's own lot to another organization's clinic, an adjustment naming
    # another organization's vial, and the reconciliation of another organization's lot.
    if role in ("owner", "outsider"):
        own_lot = stock.their_lot if role == "outsider" else stock.lot
        response = client.post(
            url("lot_transfer", own_lot.pk),
            {"from_clinic": own_clinic.pk, "to_clinic": clinic.pk, "vial_count": "1"},
        )
        assert response.status_code == 404
        response = client.post(
            url("lot_adjust", own_lot.pk),
            {"clinic": own_clinic.pk, "vial": vial.pk, "units": "-1", "reason": "count"},
        )
        assert response.status_code == 404
        response = client.get(url("reconciliation"), {"clinic": "all", "lot": lot.pk})
        assert response.status_code == 404
    after = StockMove.objects.count(), AuditEvent.objects.filter(action=Action.EXPORT).count()
    assert after == before


def test_the_outsider_does_not_find_alphas_lot_by_number(stock):
    response = stock.client("outsider").get(url("recall"), {"lot": "LOT1"})
    assert response.status_code == 200
    assert "No lot LOT1 in your organization" in response.content.decode()
    assert "Lovelace" not in response.content.decode()


# --- the overview and the dashboard ----------------------------------------------------------


def test_the_overview_says_there_is_no_stock_yet(world):
    page = world.client("front_desk").get(url("overview")).content.decode()
    assert "No stock yet at Alpha Central" in page
    assert "receive a delivery" in page


def test_the_overview_shows_lots_open_vials_and_a_product_below_its_minimum(stock):
    soon = clinic_today(stock) + timedelta(days=12)
    receive_botox_cosmetic(stock, lot="SOON1", count=1, expiry=soon)
    services.set_threshold(stock.actor("owner"), stock.clinic, "botox_cosmetic", 5)
    services.set_threshold(stock.actor("owner"), stock.clinic, "dysport", 1)
    page = stock.client("auditor").get(url("overview")).content.decode()
    assert "LOT1" in page and "SOON1" in page
    assert "12 days left" in page and "chip-soon" in page
    assert f"#{stock.opened.pk}: 50 U left" in page
    assert "23 h" in page  # time left to use-by
    assert "Botox Cosmetic</strong>: 3 sealed vials in date, below the minimum of 5" in page
    assert "Dysport</strong>: 0 sealed vials in date, below the minimum of 1" in page
    assert "product-block below" in page


def test_the_overview_of_another_clinic_of_the_organization(stock):
    services.transfer(stock.actor("owner"), stock.clinic, stock.north, stock.lot, 1)
    page = stock.client("owner").get(url("overview"), {"clinic": stock.north.pk})
    assert page.status_code == 200
    assert "Stock at Alpha North" in page.content.decode()
    assert "LOT1" in page.content.decode()


def test_the_dashboard_shows_stock_alerts_and_a_clear_empty_state(world):
    client = world.client("injector")
    page = client.get(reverse("web:dashboard")).content.decode()
    assert "Nothing in the stock needs attention" in page
    receive_botox_cosmetic(world, lot="NEAR", count=1, expiry=clinic_today(world) + timedelta(5))
    page = client.get(reverse("web:dashboard")).content.decode()
    assert "Botox Cosmetic lot NEAR" in page and "in 5 days" in page
    assert "Nothing in the stock needs attention" not in page


def test_the_nav_links_to_the_stock(world):
    page = world.client("auditor").get(reverse("web:dashboard")).content.decode()
    assert f'href="{url("overview")}"' in page


# --- receiving -----------------------------------------------------------------------------


def _scan(client, barcode, **extra):
    return client.post(url("receive"), {"step": "scan", "barcode": barcode, **extra})


def _confirm(client, barcode, **fields):
    response = _scan(client, barcode)
    assert response.status_code == 200, response.content.decode()[:2000]
    token = response.context["confirm"].initial["token"]
    data = {"step": "confirm", "barcode": barcode, "token": token, **fields}
    return client.post(url("receive"), data), data


def _typed(client, **fields):
    token = client.get(url("receive")).context["typed"].initial["token"]
    data = {"step": "typed", "typed-token": token}
    data.update({f"typed-{k}": v for k, v in fields.items()})
    return client.post(url("receive"), data), data


def _counts():
    return (
        StockMove.objects.count(),
        Lot.objects.count(),
        GtinProduct.objects.count(),
    )


def test_a_scan_shows_what_was_read_and_asks_only_for_what_is_missing(world):
    client = world.client("front_desk")
    expiry = in_a_year()
    code = datamatrix(GTIN_DAXXIFY_100, "DX77", expiry, serial="SN123")
    page = _scan(client, code).content.decode()
    assert "Not known yet" in page
    assert "DX77" in page and "SN123" in page and expiry.strftime("%d/%m/%Y") in page
    assert 'name="product_id"' in page and 'name="vial_units"' in page
    response, _ = _confirm(client, code, product_id="daxxify", vial_units="100", vial_count="2")
    assert response.status_code == 302
    mapping = GtinProduct.objects.get(organization=world.org, gtin=GTIN_DAXXIFY_100)
    assert (mapping.product_id, mapping.vial_units) == ("daxxify", 100)
    # The next carton with that product code: the product and size are known, only the count.
    page = _scan(client, hri(GTIN_DAXXIFY_100, "DX78", expiry)).content.decode()
    assert "Daxxify" in page and "Not known yet" not in page
    assert 'name="product_id"' not in page and 'name="vial_units"' not in page
    response, _ = _confirm(client, hri(GTIN_DAXXIFY_100, "DX78", expiry), vial_count="1")
    assert response.status_code == 302
    follow = client.get(response["Location"]).content.decode()
    assert "Received 1 × 100 U vial of Daxxify, lot DX78" in follow  # noqa: RUF001


def test_the_group_separator_and_the_printed_line_are_both_read(world):
    client = world.client("front_desk")
    expiry = in_a_year()
    code = f"{GS}]C101{GTIN_BOTOX_COSMETIC_100}10GSLOT{GS}17{expiry:%y%m%d}"
    response, _ = _confirm(
        client, code, product_id="botox_cosmetic", vial_units="100", vial_count="1"
    )
    assert response.status_code == 302
    assert Lot.objects.get(lot_number="GSLOT").expiry == expiry


@pytest.mark.parametrize(
    ("barcode", "message"),
    [
        ("hello world", "This barcode could not be read"),
        (f"]d201{GTIN_BOTOX_COSMETIC_50[:-1]}0" + "17301231" + "10X", "check digit"),
        ("", "Scan the carton"),
    ],
)
def test_an_unreadable_barcode_is_refused_in_plain_words(world, barcode, message):
    before = _counts()
    response = _scan(world.client("front_desk"), barcode)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert _counts() == before


def test_an_expired_carton_is_refused(world):
    client = world.client("front_desk")
    past = timezone.localdate() - timedelta(days=3)
    code = datamatrix(GTIN_BOTOX_COSMETIC_50, "OLD1", past)
    assert "expired stock is not received" in _scan(client, code).content.decode()
    before = _counts()
    response, _ = _confirm(
        client, code, product_id="botox_cosmetic", vial_units="50", vial_count="2"
    )
    assert response.status_code == 422
    assert f"This lot expired on {past:%d/%m/%Y}" in response.content.decode()
    assert _counts() == before


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("0", "must be at least 1 (got 0)"),
        ("-1", "must be at least 1 (got -1)"),
        ("1.5", "Vials are counted whole: 1.5 is not a number of vials."),
        ("abc", "“abc” is not a number of vials."),
        ("", "Enter the number of vials."),
    ],
)
def test_a_count_that_is_not_a_positive_whole_number_is_refused(world, count, message):
    client = world.client("front_desk")
    before = _counts()
    code = datamatrix(GTIN_BOTOX_COSMETIC_50, "CNT1", in_a_year())
    response, _ = _confirm(
        client, code, product_id="botox_cosmetic", vial_units="50", vial_count=count
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    typed, _ = _typed(
        client,
        product_id="botox_cosmetic",
        lot_number="CNT2",
        expiry=in_a_year().isoformat(),
        vial_units="50",
        vial_count=count,
    )
    assert typed.status_code == 422
    assert message in typed.content.decode()
    assert _counts() == before


def test_a_size_the_product_is_not_made_in_is_refused(world):
    client = world.client("front_desk")
    before = _counts()
    response, _ = _typed(
        client,
        product_id="dysport",
        lot_number="DY1",
        expiry=in_a_year().isoformat(),
        vial_units="100",
        vial_count="2",
    )
    assert response.status_code == 422
    assert "Dysport does not come in a 100 U vial (it comes in 300 U, 500 U)" in (
        response.content.decode()
    )
    response, _ = _confirm(
        client,
        datamatrix(GTIN_DAXXIFY_100, "DX1", in_a_year()),
        product_id="daxxify",
        vial_units="300",
        vial_count="1",
    )
    assert response.status_code == 422
    assert "Daxxify does not come in a 300 U vial" in response.content.decode()
    assert _counts() == before


def test_typed_entry_receives_and_a_past_expiry_is_refused(world):
    client = world.client("front_desk")
    response, _ = _typed(
        client,
        product_id="xeomin",
        gtin="",
        lot_number=" xe 42 ",
        expiry=in_a_year().isoformat(),
        vial_units="100",
        vial_count="4",
    )
    assert response.status_code == 302
    lot = Lot.objects.get(lot_number="XE 42")
    assert [s.sealed_vials for s in services.on_hand(world.org, lot=lot)] == [4]
    before = _counts()
    response, _ = _typed(
        client,
        product_id="xeomin",
        lot_number="XE43",
        expiry=(timezone.localdate() - timedelta(days=1)).isoformat(),
        vial_units="100",
        vial_count="4",
    )
    assert response.status_code == 422
    assert "expired stock is not received" in response.content.decode()
    assert _counts() == before


def test_a_double_submit_receives_once(world):
    client = world.client("front_desk")
    code = datamatrix(GTIN_BOTOX_COSMETIC_50, "TWICE", in_a_year())
    first, data = _confirm(
        client, code, product_id="botox_cosmetic", vial_units="50", vial_count="3"
    )
    assert first.status_code == 302
    second = client.post(url("receive"), data)  # the same form again: a double tap
    assert second.status_code == 302
    lot = Lot.objects.get(lot_number="TWICE")
    assert StockMove.objects.filter(lot=lot, kind=MoveKind.RECEIVE).count() == 1
    assert lot.vials.count() == 3
    follow = client.get(second["Location"]).content.decode()
    assert "already received" in follow and "Nothing was added the second time" in follow
    # The typed form too; and a token never issued is refused.
    typed, data = _typed(
        client,
        product_id="botox_cosmetic",
        lot_number="TWICE2",
        expiry=in_a_year().isoformat(),
        vial_units="50",
        vial_count="1",
    )
    assert typed.status_code == 302
    assert client.post(url("receive"), data).status_code == 302
    assert Lot.objects.get(lot_number="TWICE2").vials.count() == 1
    data["typed-token"] = "made-up"
    data["typed-lot_number"] = "TWICE3"
    response = client.post(url("receive"), data)
    assert not Lot.objects.filter(lot_number="TWICE3").exists()
    assert "expired or was already sent" in client.get(response["Location"]).content.decode()


def test_two_submits_that_began_together_receive_once(world, settings):
    """Both requests loaded the session (with the live token) before either ran: the second
    finds the token spent, and saving its stale copy of the session does not revive it."""
    client = world.client("front_desk")
    code = datamatrix(GTIN_BOTOX_COSMETIC_50, "RACE", in_a_year())
    token = _scan(client, code).context["confirm"].initial["token"]
    data = {
        "step": "confirm",
        "barcode": code,
        "token": token,
        "product_id": "botox_cosmetic",
        "vial_units": "50",
        "vial_count": "2",
    }
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    engine = import_module(settings.SESSION_ENGINE)
    membership = Membership.objects.get(user=world.users["front_desk"])
    requests = []
    for _ in range(2):
        request = RequestFactory().post(url("receive"), data)
        request.session = engine.SessionStore(key)
        assert token in request.session[views.LIVE_TOKENS]  # loaded now, before either runs
        request.user = membership.user
        request.membership, request.org = membership, membership.organization
        request._messages = FallbackStorage(request)
        requests.append(request)
    first, second = (views.receive(r) for r in requests)
    requests[1].session.save()  # what SessionMiddleware does at the end of the request
    assert first.status_code == second.status_code == 302
    assert client.post(url("receive"), data).status_code == 302  # and a third tap
    lot = Lot.objects.get(lot_number="RACE")
    assert StockMove.objects.filter(lot=lot, kind=MoveKind.RECEIVE).count() == 1
    assert lot.vials.count() == 2


def test_a_refused_receipt_keeps_its_token_for_the_corrected_form(world):
    client = world.client("front_desk")
    code = datamatrix(GTIN_BOTOX_COSMETIC_50, "FIXED", in_a_year())
    response, data = _confirm(
        client, code, product_id="botox_cosmetic", vial_units="50", vial_count="0"
    )
    assert response.status_code == 422
    data["vial_count"] = "2"
    assert client.post(url("receive"), data).status_code == 302
    assert Lot.objects.get(lot_number="FIXED").vials.count() == 2


# --- vials ---------------------------------------------------------------------------------


def test_the_vial_page_shows_units_left_time_left_and_the_ledger(stock):
    page = stock.client("front_desk").get(url("vial", stock.opened.pk)).content.decode()
    assert "50 U" in page and "h 59 min left" in page
    assert "Reconstituted" in page
    assert "Waste the rest" not in page  # front desk may not
    page = stock.client("injector").get(url("vial", stock.opened.pk)).content.decode()
    assert "Waste the rest (50 U)" in page and "Destroy this vial" in page


def test_a_timed_out_vial_says_why_it_cannot_be_used(stock):
    vial = services.reconstitute(
        stock.actor("injector"),
        stock.sealed,
        "1.25",
        at=timezone.now() - timedelta(hours=30),
    )
    page = stock.client("injector").get(url("vial", vial.pk)).content.decode()
    assert "This vial cannot be drawn from" in page
    assert "past its use-by time" in page


def test_reconstitution_shows_concentration_and_use_by_before_confirming(stock):
    client = stock.client("injector")
    page = client.get(url("vial", stock.sealed.pk)).content.decode()
    assert "1.25 mL → 4 U / 0.1 mL" in page  # the label's table row for 50 U
    preview = client.post(url("vial_reconstitute", stock.sealed.pk), {"diluent_ml": "1.25"})
    assert preview.status_code == 200
    assert "4 U per 0.1 mL" in preview.content.decode()
    assert "Use by" in preview.content.decode()
    stock.sealed.refresh_from_db()
    assert stock.sealed.state == "sealed"  # nothing written by the preview
    done = client.post(
        url("vial_reconstitute", stock.sealed.pk), {"diluent_ml": "1.25", "confirm": "on"}
    )
    assert done.status_code == 302
    stock.sealed.refresh_from_db()
    assert stock.sealed.state == "reconstituted"
    assert stock.sealed.concentration == 4


@pytest.mark.parametrize(("diluent", "message"), [("abc", "is not a volume"), ("0", "0 mL")])
def test_a_bad_diluent_volume_is_refused(stock, diluent, message):
    before = StockMove.objects.count()
    response = stock.client("injector").post(
        url("vial_reconstitute", stock.sealed.pk), {"diluent_ml": diluent, "confirm": "on"}
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert StockMove.objects.count() == before


def test_wasting_the_rest_finishes_the_vial(stock):
    client = stock.client("injector")
    assert client.post(url("vial_waste", stock.opened.pk), {"reason": ""}).status_code == 422
    response = client.post(url("vial_waste", stock.opened.pk), {"reason": "end of session"})
    assert response.status_code == 302
    stock.opened.refresh_from_db()
    assert stock.opened.state == "finished"
    assert "50 U recorded as wasted" in client.get(response["Location"]).content.decode()


def test_destruction_needs_a_witness_who_confirms_with_their_password(stock):
    client = stock.client("injector")
    address = url("vial_destroy", stock.sealed.pk)
    before = StockMove.objects.count()
    no_witness = client.post(address, {"destroy-reason": "damaged vial"})
    assert no_witness.status_code == 422
    assert "Destruction needs a witness" in no_witness.content.decode()
    prescriber = stock.users["prescriber"]
    wrong = client.post(
        address,
        {
            "destroy-reason": "damaged vial",
            "destroy-witness": prescriber.pk,
            "destroy-witness_password": "not-the-password",
        },
    )
    assert wrong.status_code == 422
    assert "That is not" in wrong.content.decode()
    themselves = client.post(
        address,
        {
            "destroy-reason": "damaged vial",
            "destroy-witness": stock.users["injector"].pk,
            "destroy-witness_password": PASSWORD,
        },
    )
    assert themselves.status_code == 422  # not in the list of possible witnesses
    outsider = client.post(
        address,
        {
            "destroy-reason": "damaged vial",
            "destroy-witness": stock.outsider.pk,
            "destroy-witness_password": PASSWORD,
        },
    )
    assert outsider.status_code == 422
    assert StockMove.objects.count() == before
    ok = client.post(
        address,
        {
            "destroy-reason": "damaged vial",
            "destroy-witness": prescriber.pk,
            "destroy-witness_password": PASSWORD,
        },
    )
    assert ok.status_code == 302
    move = StockMove.objects.get(vial=stock.sealed, kind=MoveKind.DESTROY)
    assert move.witness == prescriber and move.reason == "damaged vial"


def test_destroying_sealed_vials_of_a_lot(stock):
    response = stock.client("prescriber").post(
        url("lot_destroy", stock.lot.pk),
        {
            "destroy-clinic": stock.clinic.pk,
            "destroy-vials": "1",
            "destroy-reason": "cold chain broken",
            "destroy-witness": stock.users["injector"].pk,
            "destroy-witness_password": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert StockMove.objects.filter(lot=stock.lot, kind=MoveKind.DESTROY).count() == 1


def test_adjusting_needs_a_reason(stock):
    client = stock.client("owner")
    before = StockMove.objects.count()
    response = client.post(
        url("lot_adjust", stock.lot.pk), {"clinic": stock.clinic.pk, "vials": "-1", "reason": ""}
    )
    assert response.status_code == 422
    assert "Say why, in a few words." in response.content.decode()
    response = client.post(
        url("lot_adjust", stock.lot.pk),
        {"clinic": stock.clinic.pk, "vial": stock.opened.pk, "units": "-2"},
        follow=False,
    )
    assert response.status_code == 422
    assert StockMove.objects.count() == before
    response = client.post(
        url("lot_adjust", stock.lot.pk),
        {"clinic": stock.clinic.pk, "vials": "-1", "reason": "stock count: vial missing"},
    )
    assert response.status_code == 302
    assert StockMove.objects.filter(kind=MoveKind.ADJUST).count() == 1


def test_transferring_sealed_vials_to_another_clinic(stock):
    client = stock.client("front_desk")
    address = url("lot_transfer", stock.lot.pk)
    bad = client.post(
        address, {"from_clinic": stock.clinic.pk, "to_clinic": stock.north.pk, "vial_count": "5"}
    )
    assert bad.status_code == 422
    assert "has 2 sealed vials of lot LOT1; 5 cannot be sent" in bad.content.decode()
    none = client.post(address, {"from_clinic": stock.clinic.pk, "vial_count": "1"})
    assert none.status_code == 422 and "Choose the clinic." in none.content.decode()
    ok = client.post(
        address,
        {
            "from_clinic": stock.clinic.pk,
            "to_clinic": stock.north.pk,
            "vial_count": "1",
            "from_vial": stock.sealed.pk,
        },
    )
    assert ok.status_code == 302 and ok["Location"] == url("vial", stock.sealed.pk)
    north = services.on_hand(stock.org, stock.north)
    assert [s.sealed_vials for s in north] == [1]


def test_the_lot_page_lists_vials_stock_and_moves(stock):
    page = stock.client("auditor").get(url("lot", stock.lot.pk)).content.decode()
    assert "Botox Cosmetic lot LOT1" in page
    assert f"#{stock.opened.pk}" in page and "Received" in page and "Reconstituted" in page
    assert "Destroy sealed vials" not in page  # the auditor only looks


# --- reconciliation ------------------------------------------------------------------------


def test_the_reconciliation_balances_and_flags_an_unrecorded_unit(stock):
    client = stock.client("auditor")
    page = client.get(url("reconciliation")).content.decode()
    assert "Balanced: every unit is accounted for." in page
    services.finish(stock.actor("injector"), stock.opened)  # thrown away with 50 U unrecorded
    page = client.get(url("reconciliation")).content.decode()
    assert "does not balance" in page and 'class="unbalanced"' in page
    assert f"vial #{stock.opened.pk}</a> 50 U" in page


def test_the_reconciliation_csv_has_the_period_rows_and_is_audited(stock):
    client = stock.client("owner")
    today = clinic_today(stock)
    start = today.replace(day=1)
    response = client.get(
        url("reconciliation_csv"),
        {"clinic": "all", "start": start.isoformat(), "end": today.isoformat()},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        f'filename="stock-reconciliation-{start.isoformat()}-to-{today.isoformat()}.csv"'
        in response["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["clinic"], r["lot"], r["received"]) for r in rows] == [
        ("Alpha Central", "LOT1", "150.00")
    ]
    event = AuditEvent.objects.filter(action=Action.EXPORT).latest("seq")
    assert event.object_type == "inventory.reconciliation"
    assert event.detail["rows"] == 1 and event.detail["start"] == start.isoformat()


def test_a_bad_period_is_said_beside_the_field(stock):
    response = stock.client("owner").get(
        url("reconciliation"), {"start": "2026-05-10", "end": "2026-05-01"}
    )
    assert response.status_code == 200
    assert "The end of the period is before its start." in response.content.decode()


# --- recall --------------------------------------------------------------------------------


@pytest.fixture
def treated(stock):
    """LOT1 drawn for Ada (5 points) and for Grace (5 points); Linus only from another lot."""
    ada = glabellar_session(stock)
    draw_session(stock, ada, stock.opened)
    grace = second_patient(stock)
    draw_session(stock, glabellar_session(stock, patient=grace), stock.opened)
    other = receive_botox_cosmetic(stock, lot="LOT2", count=1)
    other_vial = services.reconstitute(stock.actor("injector"), other.vials[0], "1.25")
    linus = second_patient(stock, given="Linus", family="Torvalds")
    draw_session(stock, glabellar_session(stock, patient=linus), other_vial)
    stock.grace, stock.linus = grace, linus
    return stock


def test_the_recall_trace_lists_exactly_the_patients_with_contact_details(treated):
    page = treated.client("prescriber").get(url("recall"), {"lot": " lot1 "})
    text = page.content.decode()
    assert page.status_code == 200
    assert "2 patients" in text and "40 U" in text
    assert "Ada Lovelace" in text and "Grace Hopper" in text and "Torvalds" not in text
    assert "07700 900123" in text and "ada@example.org" in text and "10/12/1985" in text
    assert "20 U from this lot" in text
    event = AuditEvent.objects.filter(action=Action.VIEW).latest("seq")
    assert event.detail["lot_number"] == "LOT1"


def test_an_unknown_lot_is_said_plainly(treated):
    page = treated.client("owner").get(url("recall"), {"lot": "NOPE9"})
    assert page.status_code == 200
    assert "No lot NOPE9 in your organization" in page.content.decode()


def test_the_recall_csv_has_a_row_per_point(treated):
    response = treated.client("auditor").get(url("recall_csv"), {"lot": "LOT1"})
    assert response.status_code == 200
    assert 'filename="recall-lot-LOT1.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 10
    assert {r["family name"] for r in rows} == {"Lovelace", "Hopper"}
    assert AuditEvent.objects.filter(action=Action.EXPORT).latest("seq").detail["rows"] == 10


def test_the_recall_page_does_not_query_per_row(treated, django_assert_max_num_queries):
    for n in range(6):
        patient = second_patient(treated, given=f"Extra{n}", family="Patient")
        draw_session(treated, glabellar_session(treated, patient=patient), _fresh_vial(treated, n))
    client = treated.client("owner")
    client.get(url("recall"), {"lot": "LOT1"})  # warm the session
    with django_assert_max_num_queries(16):
        page = client.get(url("recall"), {"lot": "LOT1"})
    assert page.content.decode().count("data-patient>") == 8


def _fresh_vial(world, n):
    receipt = services.receive(
        world.actor("front_desk"),
        world.clinic,
        barcode=datamatrix(GTIN_BOTOX_COSMETIC_50, "LOT1", in_a_year()),
        vial_count=1,
    )
    return services.reconstitute(world.actor("injector"), receipt.vials[0], "1.25")


# --- thresholds and prices -----------------------------------------------------------------


def test_minimums_and_prices_are_set_per_clinic(stock):
    client = stock.client("owner")
    page = client.get(url("settings"), {"clinic": stock.north.pk}).content.decode()
    assert "Minimums and prices at Alpha North" in page
    response = client.post(
        url("settings"),
        {
            "clinic": stock.north.pk,
            "product_id": "dysport",
            "what": "threshold",
            "t-dysport-min_vials": "4",
        },
    )
    assert response.status_code == 302
    assert Threshold.objects.get(clinic=stock.north, product_id="dysport").min_vials == 4
    bad = client.post(
        url("settings"),
        {
            "clinic": stock.north.pk,
            "product_id": "dysport",
            "what": "price",
            "p-dysport-amount": "-3",
            "p-dysport-currency": "pounds",
            "p-dysport-basis": "per_unit",
        },
    )
    assert bad.status_code == 422
    text = bad.content.decode()
    assert "Enter the price, e.g. 9.50." in text and "three-letter currency code" in text
    assert not Price.objects.exists()
    ok = client.post(
        url("settings"),
        {
            "clinic": stock.north.pk,
            "product_id": "dysport",
            "what": "price",
            "p-dysport-amount": "3.20",
            "p-dysport-currency": "gbp",
            "p-dysport-basis": "per_unit",
        },
    )
    assert ok.status_code == 302
    price = Price.objects.get(clinic=stock.north, product_id="dysport")
    assert (str(price.amount), price.currency) == ("3.20", "GBP")
    bad_count = client.post(
        url("settings"),
        {
            "clinic": stock.clinic.pk,
            "product_id": "botox",
            "what": "threshold",
            "t-botox-min_vials": "2.5",
        },
    )
    assert bad_count.status_code == 422
    assert "Vials are counted whole" in bad_count.content.decode()


def test_dates_are_shown_day_first(stock):
    page = stock.client("owner").get(url("lot", stock.lot.pk)).content.decode()
    assert stock.lot.expiry.strftime("%d/%m/%Y") in page
    assert date.today().strftime("%Y-%m-%d") not in page.split("<main")[1].split("</main>")[0]
