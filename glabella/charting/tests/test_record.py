"""The printable treatment record (PDF): checked by extracting its text."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from pypdf import PdfReader

from glabella.audit.models import AuditEvent
from glabella.charting import record, services
from glabella.charting.models import Status
from glabella.charting.tests.conftest import ready_to_sign
from glabella.consent import services as consent_services
from glabella.consent.tests.helpers import PDF, upload
from glabella.patients import services as patient_services
from glabella.web.tests.browser import SHOTS

CLINICAL = ("owner", "prescriber", "injector")
OVERRIDE_REASON = "Outside dose was 6 weeks ago per letter; discussed risks, patient agrees."


def pdf_text(pdf: bytes, name: str | None = None) -> str:
    """All the text of the PDF, one string (and, with NAME, a copy kept as a test artifact)."""
    if name:
        SHOTS.mkdir(exist_ok=True)
        (SHOTS / f"{name}.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def pdf_lines(pdf: bytes) -> list[str]:
    """The PDF's text laid out as printed, one table row per line, spaces collapsed."""
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages)
    return [flat(line).strip() for line in text.splitlines() if line.strip()]


def flat(text: str) -> str:
    """Whitespace collapsed, so a phrase matches wherever a line broke it."""
    return re.sub(r"\s+", " ", text)


def _outside_300_units(world) -> None:
    patient_services.add_history_item(
        world.actor("injector"),
        world.patient,
        {
            "kind": "outside_treatment",
            "code": "toxin",
            "product_id": "botox",
            "units": "300",
            "area": "neck",
            "indication": "cervical-dystonia",
            "treated_on": date.today() - timedelta(days=30),
        },
    )


def _start(world, protocol: str, indication: str, product_id: str):
    return services.start_session(
        world.actor("injector"),
        world.patient,
        indication=indication,
        product_id=product_id,
        start_from=f"protocol:{protocol}",
        prescriber=world.users["prescriber"],
    )


@pytest.fixture
def preempt_draft(consented):
    """PREEMPT (31 points, 155 U of Botox) with 300 U given elsewhere a month ago: blocked."""
    world = consented
    _outside_300_units(world)
    session = _start(world, "chronic-migraine-preempt", "chronic-migraine", "botox")
    return ready_to_sign(world, session, vial_units=100, diluent_ml=Decimal("2"))


@pytest.fixture
def preempt(consented, preempt_draft):
    """The PREEMPT session, the cumulative block overridden by the prescriber, signed."""
    world = consented
    services.override(
        world.actor("prescriber"), preempt_draft, "cumulative-3-month", OVERRIDE_REASON
    )
    preempt_draft.refresh_from_db()
    return services.sign(world.actor("injector"), preempt_draft, preempt_draft.version)


@pytest.fixture
def glabellar(consented):
    """Glabellar lines, 5 x 4 U of Botox Cosmetic, signed."""
    world = consented
    session = _start(world, "glabellar-lines-botox-cosmetic", "glabellar-lines", "botox_cosmetic")
    session = ready_to_sign(world, session, vial_units=100, diluent_ml=Decimal("2.5"))
    return services.sign(world.actor("injector"), session, session.version)


def test_the_preempt_record_has_every_point_lot_total_finding_and_signature(consented, preempt):
    world = consented
    pdf = record.render_pdf(preempt, printed_by="injector@alpha.test")
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)  # A4
    assert reader.pages[0].mediabox.height == pytest.approx(841.89, abs=0.5)
    text = pdf_text(pdf, "record-preempt-signed")
    lines = pdf_lines(pdf)
    one = flat(text)

    # The header: clinic, patient, treatment, product (brand and generic), status.
    assert "Alpha Central" in one
    assert "LOVELACE, Ada" in one and "10/12/1985" in one
    assert f"{date.today():%d/%m/%Y}" in one
    assert "Chronic migraine" in one
    assert "Botox (onabotulinumtoxinA)" in one
    assert "Signed by injector@alpha.test" in one
    assert "DRAFT" not in one and "VOIDED" not in one

    # Every point: its number, area, muscle, side, depth, units and volume on one table row.
    points = services.live_points(preempt)
    assert len(points) == 31
    for p in points:
        side = {"L": "Left", "R": "Right", "mid": "Midline"}[p.side]
        row = re.compile(
            rf"^{p.number} {p.area.capitalize()} {re.escape(p.muscle)} {side} Intramuscular "
            r"5 U 0\.1 mL$"
        )
        assert any(row.match(line) for line in lines), f"point {p.number} not on its row"
    assert "Session total (31 points) 155 U 3.1 mL" in lines

    # The vial.
    assert "Lot number C1234AB" in one
    expiry = preempt.lot_expiry
    assert f"Lot expiry {expiry:%d/%m/%Y}" in one
    assert "Vial size 100 U" in one
    assert "2 mL preservative-free 0.9% NaCl" in one
    assert "5 U per 0.1 mL" in one

    # Totals per area, per side and for the session, in Botox units.
    for area, units in {
        "Glabella": 15,
        "Forehead": 20,
        "Temple": 40,
        "Occiput": 30,
        "Neck": 20,
        "Shoulder": 30,
    }.items():
        assert f"{area} {units} U" in one, area
    for side, units in {"Right": 75, "Left": 75, "Midline": 5}.items():
        assert f"{side} {units} U" in one, side
    assert "Glabella 15 U Right 75 U Points 31" in lines  # the three totals tables side by side
    assert "Total 155 U" in one and "Points 31" in one
    assert "In Botox units; never converted" in one

    # The finding at signing with its source, and the override with its reason and who.
    finding = next(f for f in preempt.findings_at_signing if f["rule"] == "cumulative-3-month")
    assert "Dose checks at signing" in one
    assert "Block cumulative-3-month" in one
    assert flat(finding["message"]) in one
    assert flat(finding["source"])[:40] in one
    assert "Overrides" in one and flat(OVERRIDE_REASON) in one
    assert "prescriber@alpha.test" in one

    # Consent and signatures.
    consent = preempt.consent
    assert "Chronic migraine version 1" in one
    assert consent.text_hash[:12] in one
    assert "Practitioner Prescriber of record Signed by, at" in one
    assert "injector@alpha.test prescriber@alpha.test injector@alpha.test" in one

    # Every page: the patient, the printer, the page count.
    for n, page in enumerate(reader.pages, start=1):
        page_text = flat(page.extract_text())
        assert "LOVELACE, Ada · born 10/12/1985" in page_text
        assert "Printed by injector@alpha.test on" in page_text and "— Glabella" in page_text
        assert f"Page {n} of {len(reader.pages)}" in page_text
    assert world.org.name in one


def test_an_amended_record_shows_each_amendment_and_what_changed(consented, glabellar):
    world = consented
    services.amend(
        world.actor("injector"), glabellar, "Point 1 was 5 U, typo", point_units={1: "5"}
    )
    glabellar.refresh_from_db()
    text = pdf_text(record.render_pdf(glabellar, printed_by="auditor"), "record-glabellar-amended")
    one = flat(text)
    assert "Signed — Amended (1 amendment)" in one
    assert "Point 1 was 5 U, typo" in one
    assert "Point 1 (corrugator, Right): 4 U → 5 U" in one
    assert "Botox Cosmetic (onabotulinumtoxinA)" in one
    assert "Glabellar lines" in one
    # The totals follow the amendment; units carry no trailing zeros.
    assert "Total 21 U" in one and "Session total (5 points) 21 U" in one
    assert "4.00" not in one and "5.00" not in one
    assert "Lot number C1234AB" in one
    assert "4 U per 0.1 mL" in one and "Cosmetic (lines and wrinkles) version 1" in one


def test_a_draft_is_marked_draft_with_the_checks_as_they_stand(preempt_draft):
    one = flat(pdf_text(record.render_pdf(preempt_draft), "record-preempt-draft"))
    assert "DRAFT — not a signed record" in one
    assert "Dose checks now (draft)" in one and "cumulative-3-month" in one
    assert "Not signed" in one
    assert "The consent on file now" in one


def test_a_voided_record_says_so_with_the_reason(consented, glabellar):
    world = consented
    services.void(world.actor("injector"), glabellar, "Charted on the wrong patient")
    glabellar.refresh_from_db()
    assert glabellar.status == Status.VOIDED
    one = flat(pdf_text(record.render_pdf(glabellar), "record-glabellar-voided"))
    assert "VOIDED — entered in error: Charted on the wrong patient" in one
    assert "1 (void)" in one and "Status: Signed → Voided (entered in error)" in one


def test_characters_outside_the_font_still_print():
    """Names in any Latin script print; what the font lacks is drawn without its accent."""
    assert record.markup("Łucja Ő → <b>") == 'Łucja O <font name="Symbol">→</font> &lt;b&gt;'
    assert record.plain("Đặng") == "Đang"


@pytest.mark.parametrize("role", [*CLINICAL, "auditor"])
def test_clinical_roles_and_the_auditor_get_the_pdf_and_the_export_is_audited(
    consented, glabellar, role
):
    world = consented
    before = AuditEvent.objects.filter(action="export").count()
    response = world.client(role).get(reverse("charting:record", args=[glabellar.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'inline; filename="treatment-{glabellar.treated_on:%Y-%m-%d}-lovelace.pdf"'
    )
    assert "no-store" in response["Cache-Control"]
    one = flat(pdf_text(response.content))
    assert f"Printed by {world.users[role]} on" in one
    events = AuditEvent.objects.filter(action="export")
    assert events.count() == before + 1
    event = events.latest("seq")
    assert event.object_type == "charting.treatmentsession"
    assert event.object_id == str(glabellar.pk)
    assert event.actor == world.users[role]
    assert event.detail["format"] == "pdf"


def test_front_desk_may_not_print_a_record(consented, glabellar):
    response = consented.client("front_desk").get(reverse("charting:record", args=[glabellar.pk]))
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="export").exists()


def test_another_organizations_record_is_not_found(consented, glabellar):
    response = consented.client("outsider").get(reverse("charting:record", args=[glabellar.pk]))
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="export").exists()


def test_signed_out_is_sent_to_sign_in(glabellar, client):
    response = client.get(reverse("charting:record", args=[glabellar.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_record_is_get_only(consented, glabellar):
    url = reverse("charting:record", args=[glabellar.pk])
    assert consented.client("injector").post(url).status_code == 405


# --- the comparison with the previous session ------------------------------------------------


def signed_pair(world, *, previous_product: str = "botox_cosmetic", days_ago: int = 100):
    """Two signed glabellar sessions of Ada: DAYS_AGO (5 x 4 U of PREVIOUS_PRODUCT) and today
    (Botox Cosmetic: point 1 at 6 U, and a forehead point of 4 U added)."""
    injector = world.actor("injector")
    today = date.today()
    consent_services.take_consent(
        injector,
        world.patient,
        "cosmetic",
        method="paper",
        scan=upload("consent.pdf", PDF),
        signed_on=today - timedelta(days=days_ago + 10),
        read_confirmed=True,
    )
    protocol = {
        "botox_cosmetic": "glabellar-lines-botox-cosmetic",
        "dysport": "glabellar-lines-dysport",
    }[previous_product]
    earlier = services.start_session(
        injector,
        world.patient,
        indication="glabellar-lines",
        product_id=previous_product,
        treated_on=today - timedelta(days=days_ago),
        start_from=f"protocol:{protocol}",
        prescriber=world.users["prescriber"],
    )
    earlier = ready_to_sign(world, earlier)
    earlier = services.sign(injector, earlier, earlier.version)
    later = _start(world, "glabellar-lines-botox-cosmetic", "glabellar-lines", "botox_cosmetic")
    services.update_point(injector, later, later.version, 1, units="6")
    later.refresh_from_db()
    services.add_point(injector, later, later.version, diagram="face-front", x=40, y=20, units="4")
    later.refresh_from_db()
    later = ready_to_sign(world, later)
    later = services.sign(injector, later, later.version)
    return earlier, later


def test_compare_shows_both_sessions_and_the_difference_per_area(world):
    earlier, later = signed_pair(world)
    response = world.client("injector").get(reverse("charting:compare", args=[later.pk]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 3  # this, previous, overlay
    assert 'class="compare-point"' in html
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in rows]
    assert "Glabella 22 U 20 U +2 U" in cells
    assert "Forehead 4 U — +4 U" in cells
    assert "Session total 26 U 20 U +6 U" in cells
    assert "Right 14 U 8 U +6 U" in cells and "Midline 4 U 4 U no change" in cells
    assert "100 days apart" in html
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.object_id) == ("view", str(later.pk))
    assert event.detail == {
        "patient": world.patient.pk,
        "part": "comparison",
        "previous": earlier.pk,
    }


def test_an_older_session_is_compared_with_the_one_before_it_not_a_later_one(world):
    earlier, _ = signed_pair(world)
    response = world.client("auditor").get(reverse("charting:compare", args=[earlier.pk]))
    assert response.status_code == 200
    assert "Nothing to compare with yet" in response.content.decode()


def test_units_of_different_products_are_not_compared(world):
    _, later = signed_pair(world, previous_product="dysport")
    html = world.client("prescriber").get(reverse("charting:compare", args=[later.pk])).content
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))
    assert "The units cannot be compared." in text
    assert "This session used Botox Cosmetic and the previous one Dysport" in text
    assert "Difference" not in text and "+2 U" not in text
    assert "Glabella 22 U 50 U" in text  # each in its own product's units


@pytest.mark.parametrize(("role", "status"), [("front_desk", 403), ("outsider", 404)])
def test_compare_is_for_clinical_roles_of_the_organization(world, role, status):
    _, later = signed_pair(world)
    response = world.client(role).get(reverse("charting:compare", args=[later.pk]))
    assert response.status_code == status
