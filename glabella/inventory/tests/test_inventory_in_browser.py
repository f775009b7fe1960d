"""Stock in a real Chromium at 1024x768 and 768x1024: scan a carton like a scanner does,
reconstitute, waste the rest, reconcile; and trace a lot to the one patient who had it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from glabella.conftest import PASSWORD
from glabella.inventory import services
from glabella.inventory.models import Lot, MoveKind, StockMove
from glabella.inventory.tests.helpers import (
    GTIN_BOTOX_COSMETIC_50,
    datamatrix,
    draw_session,
    glabellar_session,
    in_a_year,
    receive_botox_cosmetic,
    second_patient,
)
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def _look(page, name):
    assert_fits_and_touchable(page)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, name)


def test_scan_receive_reconstitute_waste_and_reconcile(live_server, live_world, page):
    base = live_server.url
    login(page, base, "prescriber@alpha.test", PASSWORD)
    page.get_by_role("link", name="Stock", exact=True).click()
    expect(page.get_by_text("No stock yet at Alpha Central")).to_be_visible()
    _look(page, "inventory-empty")

    page.get_by_role("link", name="Receive a delivery", exact=True).click()
    field = page.get_by_label("Scan the carton's code")
    expect(field).to_be_focused()
    # What a scanner types for the carton's DataMatrix: ]d2, GTIN, expiry, lot, FNC1 (the
    # ASCII group separator), serial - then Enter.
    expiry = in_a_year()
    field.press_sequentially(datamatrix(GTIN_BOTOX_COSMETIC_50, "BRW1", expiry, serial="SN9"))
    field.press("Enter")

    expect(page.get_by_text("Not known yet")).to_be_visible()
    expect(page.get_by_text("BRW1", exact=True)).to_be_visible()
    expect(page.get_by_text("SN9", exact=True)).to_be_visible()
    expect(page.get_by_text(expiry.strftime("%d/%m/%Y"))).to_be_visible()
    _look(page, "inventory-scanned")
    page.get_by_label("Which product is this?").select_option("botox_cosmetic")
    expect(page.get_by_label("Vial size")).to_have_value("")  # 50 or 100: the nurse says
    page.get_by_label("Vial size").select_option("50")
    page.get_by_label("How many vials?").fill("3")
    page.get_by_role("button", name="Receive into stock").first.click()

    received = "Received 3 × 50 U vials of Botox Cosmetic, lot BRW1"  # noqa: RUF001
    expect(page.get_by_text(received)).to_be_visible()
    expect(page.get_by_text("now remembered as Botox Cosmetic 50 U")).to_be_visible()
    _look(page, "inventory-received")
    lot = Lot.objects.get(lot_number="BRW1")
    assert StockMove.objects.filter(lot=lot, kind=MoveKind.RECEIVE).count() == 1

    page.get_by_role("link", name="Open the lot").click()
    expect(page.get_by_role("heading", name="Botox Cosmetic lot BRW1")).to_be_visible()
    _look(page, "inventory-lot")
    page.get_by_role("link", name=re.compile(r"Reconstitute a vial")).click()

    page.get_by_role("button", name="1.25 mL → 4 U / 0.1 mL").click()
    preview = page.locator("[data-preview]")
    expect(preview).to_contain_text("4 U per 0.1 mL")
    expect(preview).to_contain_text("Use by")
    _look(page, "inventory-reconstitute-preview")
    page.get_by_role("button", name="Reconstitute now").click()

    expect(
        page.get_by_text(re.compile(r"reconstituted with 1\.25 mL: 4 U per 0\.1 mL"))
    ).to_be_visible()
    expect(page.locator("[data-units-left]")).to_contain_text("50 U")
    expect(page.locator("[data-time-left]")).to_contain_text(re.compile(r"23 h 5\d min left"))
    _look(page, "inventory-vial-open")

    page.get_by_text("Waste the rest (50 U)").click()
    page.get_by_label("Reason for the waste").fill("End of the clinic day")
    page.get_by_role("button", name="Record 50 U as wasted").click()
    expect(page.get_by_text("50 U recorded as wasted")).to_be_visible()
    expect(page.locator("[data-units-left]")).to_contain_text("0 U")
    _look(page, "inventory-vial-wasted")

    page.get_by_role("link", name="Stock", exact=True).click()
    expect(page.get_by_role("link", name="BRW1")).to_be_visible()
    _look(page, "inventory-overview")
    page.get_by_role("link", name="Reconciliation").click()
    expect(page.get_by_text("Balanced: every unit is accounted for.")).to_be_visible()
    row = page.locator("table.recon tbody")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("BRW1")
    _look(page, "inventory-reconciliation")


def test_recall_trace_finds_the_one_patient_who_received_the_lot(live_server, live_world, page):
    world = live_world
    injector = world.actor("injector")
    recalled = receive_botox_cosmetic(world, lot="RCL7", count=1)
    other = receive_botox_cosmetic(world, lot="SAFE1", count=1)
    draw_session(
        world, glabellar_session(world), services.reconstitute(injector, recalled.vials[0], "1.25")
    )
    grace = second_patient(world)
    draw_session(
        world,
        glabellar_session(world, patient=grace),
        services.reconstitute(injector, other.vials[0], "1.25"),
    )

    login(page, live_server.url, "prescriber@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/inventory/")
    page.get_by_role("link", name="Recall trace").click()
    page.get_by_label("Lot number").fill("rcl7")
    page.get_by_role("button", name="Trace").click()

    expect(page.get_by_role("heading", name="Recall trace: lot RCL7")).to_be_visible()
    expect(page.locator("[data-patient-count]")).to_have_text("1 patient")
    cards = page.locator("[data-patient]")
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("Ada Lovelace")
    expect(cards).to_contain_text("07700 900123")
    expect(cards).to_contain_text("20 U from this lot")
    expect(page.get_by_text("Grace Hopper")).to_have_count(0)
    _look(page, "inventory-recall")

    page.get_by_label("Lot number").fill("NOSUCH")
    page.get_by_role("button", name="Trace").click()
    expect(page.get_by_text("No lot NOSUCH in your organization's stock")).to_be_visible()


def test_alerts_minimums_a_discrepancy_and_a_witnessed_destruction(live_server, live_world, page):
    world = live_world
    injector = world.actor("injector")
    soon = receive_botox_cosmetic(
        world, lot="SOON3", count=2, expiry=timezone.localdate() + timedelta(days=10)
    )
    services.set_threshold(world.actor("owner"), world.clinic, "dysport", 2)
    lost = services.reconstitute(injector, soon.vials[0], "1.25")
    services.finish(injector, lost)  # thrown away with its 50 U unrecorded

    login(page, live_server.url, "owner@alpha.test", PASSWORD)
    alerts = page.locator(".alert-list li")
    expect(alerts.filter(has_text="lot SOON3")).to_contain_text("in 10 days")
    expect(alerts.filter(has_text="Dysport")).to_contain_text("below the minimum of 2")
    _look(page, "inventory-dashboard")

    page.get_by_role("link", name="Stock", exact=True).click()
    expect(page.locator(".product-block.below")).to_contain_text("Dysport")
    _look(page, "inventory-overview-alerts")

    page.get_by_role("link", name="Reconciliation").click()
    expect(page.get_by_text("1 row does not balance.")).to_be_visible()
    expect(page.locator("tbody.unbalanced")).to_contain_text(f"vial #{lost.pk} 50 U")
    _look(page, "inventory-reconciliation-discrepancy")

    page.goto(f"{live_server.url}/inventory/settings/")
    row = page.locator("section.settings-row").filter(has_text="Botox Cosmetic")
    row.get_by_label("Price").fill("9.50")
    row.get_by_label("Currency").fill("gbp")
    row.get_by_role("button", name="Save price").click()
    expect(page.get_by_text("Botox Cosmetic at Alpha Central: 9.50 GBP per unit.")).to_be_visible()
    _look(page, "inventory-settings")

    page.context.clear_cookies()
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/inventory/lot/{soon.lot.pk}/")
    page.get_by_text("Destroy sealed vials (witnessed)").click()
    panel = page.locator("#destroy")
    panel.get_by_label("Sealed vials to destroy").fill("1")
    panel.get_by_label("Reason for destroying").fill("Cold chain broken")
    panel.get_by_label("Witness", exact=True).select_option(label="prescriber@alpha.test")
    panel.get_by_label("Witness's password").fill("wrong password")
    panel.get_by_role("button", name="Destroy").click()
    expect(page.get_by_text("That is not prescriber@alpha.test's password")).to_be_visible()
    _look(page, "inventory-destroy-refused")
    panel = page.locator("#destroy")
    panel.get_by_label("Witness's password").fill(PASSWORD)
    panel.get_by_role("button", name="Destroy").click()
    expect(
        page.get_by_text("1 sealed vial of lot SOON3 destroyed at Alpha Central")
    ).to_be_visible()
    assert StockMove.objects.filter(kind=MoveKind.DESTROY, lot=soon.lot).count() == 1
