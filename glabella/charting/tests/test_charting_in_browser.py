"""Charting in a real Chromium at 1024x768 and 768x1024: tap, drag, keyboard, sign."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from glabella.charting import services
from glabella.charting.models import Status, TreatmentSession
from glabella.charting.tests.conftest import ready_to_sign
from glabella.conftest import PASSWORD
from glabella.consent import services as consent_services
from glabella.patients import services as patient_services
from glabella.testing import signature_png
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def _consent(world, *categories):
    actor = world.actor("injector")
    consent_services.ensure_default_templates(world.org)
    for category in categories:
        consent_services.take_consent(
            actor,
            world.patient,
            category,
            method="drawn",
            signature_png=signature_png(),
            read_confirmed=True,
        )


def _draft(world, start_from="blank", **kw):
    kw.setdefault("indication", "glabellar-lines")
    kw.setdefault("product_id", "botox_cosmetic")
    kw.setdefault("prescriber", world.users["prescriber"])
    return services.start_session(
        world.actor("injector"), world.patient, start_from=start_from, **kw
    )


def _shot(page, name):
    """A full-page screenshot from the top (so the sticky totals sit where they belong)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(50)
    shot(page, name)


def _open(page, base, session):
    page.goto(f"{base}/charting/{session.pk}/")
    expect(page.locator("#workspace")).to_be_visible()


def _screen(page, x, y):
    """Viewport pixels of diagram point (x%, y%) on the diagram shown."""
    return page.evaluate(
        """([x, y]) => {
            const svg = document.querySelector('#workspace svg.diagram');
            const p = new DOMPoint(x, y * Number(svg.dataset.aspect))
              .matrixTransform(svg.getScreenCTM());
            return [p.x, p.y];
        }""",
        [x, y],
    )


def _region(page, region_id):
    region = page.locator(f'#workspace [data-region="{region_id}"]')
    return float(region.get_attribute("data-x")), float(region.get_attribute("data-y"))


def _point(page, number):
    g = page.locator(f'#workspace svg.diagram .point[data-number="{number}"]')
    return _screen(page, float(g.get_attribute("data-x")), float(g.get_attribute("data-y")))


def _total(page):
    return page.locator("[data-total]")


def _version(page):
    return page.locator("#workspace").get_attribute("data-version")


def _after_change(page, before):
    """Wait for the workspace to come back with a new version."""
    expect(page.locator("#workspace")).not_to_have_attribute("data-version", before)


# (a) ---------------------------------------------------------------------------------------


def test_chart_preempt_from_the_template_and_edit_one_point(live_server, live_world, page):
    login(page, live_server.url, "prescriber@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/charting/patient/{live_world.patient.pk}/new/")
    expect(page.get_by_role("heading", name="New treatment: Ada Lovelace")).to_be_visible()
    assert_fits_and_touchable(page)
    _shot(page, "charting-start")
    page.get_by_role("button", name=re.compile("PREEMPT")).click()

    expect(_total(page)).to_have_text("155 U")
    expect(page.locator("[data-points-count]")).to_have_text("31")
    expect(page.locator("#points-title")).to_contain_text("31")
    expect(page.locator("#findings")).to_contain_text("No findings")
    expect(page.locator(".check-chip")).to_have_text("No blocks")
    assert_fits_and_touchable(page)
    _shot(page, "charting-preempt")

    # Tap point 1 with a finger, then the 10 U button.
    x, y = _point(page, 1)
    page.touchscreen.tap(x, y)
    expect(page.locator("#editor")).to_contain_text("Corrugator")
    expect(page.get_by_text("Units for point 1")).to_be_visible()
    page.locator(".quick-form").get_by_role("button", name="10 U").click()
    expect(_total(page)).to_have_text("160 U")
    findings = page.locator("#findings")
    expect(findings).to_contain_text("Warning")
    expect(findings).to_contain_text("above the labelled dose of 155 U")
    expect(page.locator(".check-chip")).to_have_text("1 warning")
    expect(page.locator("#row-1")).to_contain_text("10 U")
    assert_fits_and_touchable(page)
    _shot(page, "charting-selected")
    session = TreatmentSession.objects.get()
    assert services.totals(session).total == Decimal(160)


# (b) ---------------------------------------------------------------------------------------


def test_a_cumulative_dose_over_the_limit_blocks_with_its_source(live_server, live_world, page):
    world = live_world
    _consent(world, "chronic-migraine")
    patient_services.add_history_item(
        world.actor("injector"),
        world.patient,
        {
            "kind": "outside_treatment",
            "code": "toxin",
            "product_id": "botox",
            "units": "265",  # + 155 U of PREEMPT = 420 U in 90 days
            "area": "neck",
            "indication": "cervical-dystonia",
            "treated_on": timezone.localdate() - timedelta(days=30),
        },
    )
    session = _draft(
        world,
        "protocol:chronic-migraine-preempt",
        indication="chronic-migraine",
        product_id="botox",
    )
    session = ready_to_sign(world, session)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    _open(page, live_server.url, session)

    block = page.locator(".finding-block").first
    expect(block).to_contain_text("Blocked")
    expect(block).to_contain_text("420 U")
    expect(block).to_contain_text("400 U")
    expect(block.locator(".finding-src")).to_contain_text("Source:")
    expect(block).to_contain_text("A prescriber can override this with a written reason")
    expect(page.locator(".check-chip")).to_have_text("Blocked")
    page.get_by_role("button", name="Sign", exact=True).click()
    reasons = page.locator("#sign-reasons")
    expect(reasons).to_contain_text("Not signed")
    expect(reasons).to_contain_text("420 U")
    assert_fits_and_touchable(page)
    _shot(page, "charting-blocked")
    assert TreatmentSession.objects.get().status == Status.DRAFT


# (c) ---------------------------------------------------------------------------------------


def test_sign_then_the_signed_session_cannot_be_edited(live_server, live_world, page):
    world = live_world
    _consent(world, "cosmetic")
    session = ready_to_sign(world, _draft(world, "protocol:glabellar-lines-botox-cosmetic"))
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    _open(page, live_server.url, session)
    page.get_by_role("button", name="Sign", exact=True).click()

    expect(page.locator(".status-signed")).to_have_text("Signed")
    due = (timezone.localdate() + timedelta(days=14)).strftime("%d/%m/%Y")
    expect(page.locator(".review-due")).to_contain_text(f"Review due on {due}")
    expect(page.get_by_role("link", name="Start touch-up")).to_be_visible()
    # No edit controls: the diagram is a picture, no unit buttons, no point forms.
    assert page.locator("svg.diagram [tabindex]").count() == 0
    assert page.locator("[data-next-units], .quick, .add-point, .row-actions").count() == 0
    expect(page.get_by_role("button", name="Add point")).to_have_count(0)
    assert_fits_and_touchable(page)
    _shot(page, "charting-signed")

    # A forged change from an old page is refused and changes nothing.
    signed = TreatmentSession.objects.get()
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{live_server.url}/charting/{signed.pk}/points/1/",
        form={"version": str(signed.version - 1), "units": "40"},
        headers={"X-CSRFToken": token, "HX-Request": "true", "Referer": live_server.url},
    )
    assert response.status == 409
    assert services.totals(TreatmentSession.objects.get()).total == Decimal(20)


def test_opening_amend_brings_the_form_and_a_correction_is_saved(live_server, live_world, page):
    """The record opens without the amendment form; opening "Amend" fetches it (htmx), with
    every point's units, and the correction is saved as version 2."""
    world = live_world
    _consent(world, "cosmetic")
    draft = ready_to_sign(world, _draft(world, "protocol:glabellar-lines-botox-cosmetic"))
    signed = services.sign(world.actor("injector"), draft, draft.version)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/charting/{signed.pk}/")
    expect(page.locator(".status-signed")).to_have_text("Signed")
    assert page.locator("form.amend-form").count() == 0
    page.get_by_text("Amend (units or lot)").click()
    units = page.get_by_label("Procerus, midline")
    expect(units).to_have_value("4")
    expect(page.get_by_role("link", name="Open the amendment form")).to_have_count(0)
    assert page.locator("input[name^='units_']").count() == 5
    units.fill("5")
    page.get_by_label("Reason for the correction").fill("Procerus was 5 U, typo")
    page.get_by_role("button", name="Save amendment").click()
    expect(page.locator(".msg-success")).to_contain_text("Amendment 1 saved (version 2)")
    expect(page.locator(".versions")).to_contain_text("Procerus was 5 U, typo")
    assert services.totals(TreatmentSession.objects.get()).total == Decimal(21)
    assert_fits_and_touchable(page)


# (d) ---------------------------------------------------------------------------------------


def test_a_cosmetic_glabellar_session_is_signed_in_three_actions(live_server, live_world, page):
    world = live_world
    _consent(world, "cosmetic")
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/charting/patient/{world.patient.pk}/new/")
    actions = 0

    # 1. Start with the template (date today, the clinic's prescriber of record).
    page.get_by_role("button", name=re.compile(r"Glabellar lines \(Botox Cosmetic")).click()
    actions += 1
    expect(_total(page)).to_have_text("20 U")

    # 2. The vial's lot and expiry.
    before = _version(page)
    page.get_by_label("Lot number").fill("c1234ab")
    page.get_by_label("Expiry").fill((timezone.localdate() + timedelta(days=200)).isoformat())
    page.get_by_role("button", name="Save lot").click()
    actions += 1
    _after_change(page, before)
    expect(page.get_by_label("Lot number")).to_have_value("C1234AB")

    # 3. Sign.
    page.get_by_role("button", name="Sign", exact=True).click()
    actions += 1
    expect(page.locator(".status-signed")).to_have_text("Signed")
    assert actions <= 3
    session = TreatmentSession.objects.get()
    assert session.status == Status.SIGNED and session.lot_number == "C1234AB"


# (e) ---------------------------------------------------------------------------------------


def test_tap_drag_mirror_remove_undo_and_a_lost_connection(live_server, live_world, page):
    world = live_world
    session = _draft(world)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    _open(page, live_server.url, session)
    expect(page.locator("#points-title")).to_contain_text("(0)")

    # Choose 2 U, then tap the right corrugator.
    page.locator("[data-next-units='2']").click()
    expect(page.locator("[data-next-units='2']")).to_have_attribute("aria-pressed", "true")
    x, y = _screen(page, *_region(page, "corrugator-r"))
    page.mouse.click(x, y)
    expect(_total(page)).to_have_text("2 U")
    expect(page.locator("#row-1")).to_contain_text("Corrugator")
    expect(page.locator("#row-1")).to_contain_text("Right")

    # A tap outside every muscle area saves nothing and says why.
    x, y = _screen(page, 2, 2)
    page.mouse.click(x, y)
    expect(page.locator("#ws-note")).to_contain_text("outside the marked muscle areas")
    expect(_total(page)).to_have_text("2 U")

    # Drag point 1 onto the right frontalis: the muscle follows.
    x0, y0 = _point(page, 1)
    x1, y1 = _screen(page, *_region(page, "frontalis-r"))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    expect(page.locator("#row-1")).to_contain_text("Frontalis")
    expect(page.locator("#editor")).to_contain_text("Frontalis")

    # Mirror it, remove the mirrored point, and undo.
    page.get_by_role("button", name="Mirror to the other side", exact=True).click()
    expect(page.locator("#row-2")).to_contain_text("Left")
    expect(_total(page)).to_have_text("4 U")
    page.get_by_role("button", name="Remove point", exact=True).click()
    expect(page.locator("#ws-note")).to_contain_text("Point 2 removed")
    expect(_total(page)).to_have_text("2 U")
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#ws-note")).to_contain_text("Point 2 is back")
    expect(_total(page)).to_have_text("4 U")

    # The connection drops: the page says so, stays as it was, and works again after.
    page.route("**/charting/*/points/**", lambda route: route.abort())
    x, y = _screen(page, *_region(page, "procerus"))
    page.mouse.click(x, y)
    banner = page.locator("#conn-banner")
    expect(banner).to_contain_text("Not saved: the connection was lost.")
    expect(_total(page)).to_have_text("4 U")
    _shot(page, "charting-connection-lost")
    page.unroute("**/charting/*/points/**")
    page.mouse.click(x, y)
    expect(_total(page)).to_have_text("6 U")
    expect(banner).to_be_hidden()
    points = services.live_points(TreatmentSession.objects.get())
    assert [(p.number, p.muscle, p.side, p.units) for p in points] == [
        (1, "frontalis", "R", Decimal(2)),
        (2, "frontalis", "L", Decimal(2)),
        (3, "procerus", "mid", Decimal(2)),
    ]


# (f) ---------------------------------------------------------------------------------------


def test_keyboard_alone_adds_a_point_and_changes_its_units(live_server, live_world, page):
    world = live_world
    session = _draft(world)
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    _open(page, live_server.url, session)

    # A focused muscle area: Enter adds a point at its centre with the chosen units.
    page.locator('#workspace [data-region="procerus"]').focus()
    page.keyboard.press("Enter")
    expect(_total(page)).to_have_text("4 U")
    expect(page.locator("#row-1")).to_contain_text("Procerus")
    # Focus stays on the area: Space adds another there.
    expect(page.locator('#workspace [data-region="procerus"]')).to_be_focused()

    # Edit point 1 from the list: focus lands in its units field.
    page.get_by_role("link", name="Edit point 1").focus()
    page.keyboard.press("Enter")
    units = page.get_by_label("Units at point 1")
    expect(units).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    expect(_total(page)).to_have_text("5 U")
    expect(page.get_by_label("Units at point 1")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#editor")).to_have_count(0)

    # The add-point form, keyboard only.
    page.get_by_label("Muscle area").focus()
    page.get_by_label("Muscle area").select_option("face-front:corrugator-l")
    page.get_by_label("Units", exact=True).fill("2.5")
    page.get_by_role("button", name="Add point").focus()
    page.keyboard.press("Enter")
    expect(_total(page)).to_have_text("7.5 U")
    expect(page.locator("#row-2")).to_contain_text("Corrugator")
    expect(page.get_by_role("button", name="Add point")).to_be_focused()
    points = services.live_points(TreatmentSession.objects.get())
    assert [(p.muscle, p.units) for p in points] == [
        ("procerus", Decimal(5)),
        ("corrugator", Decimal("2.5")),
    ]
