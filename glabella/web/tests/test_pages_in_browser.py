"""The foundation's pages in a real Chromium at 1024x768 and 768x1024."""

import re

import pytest
from playwright.sync_api import expect

from glabella.audit.models import AuditEvent
from glabella.conftest import PASSWORD
from glabella.patients.models import Patient
from glabella.web.tests.browser import assert_fits_and_touchable, login, shot

pytestmark = pytest.mark.browser


def test_sign_in_search_as_you_type_and_open_a_patient(live_server, live_world, page):
    login(page, live_server.url, "front_desk@alpha.test", PASSWORD)
    expect(page.get_by_role("heading", name="Alpha Central")).to_be_visible()
    shot(page, "dashboard")
    page.get_by_role("link", name="Patients", exact=True).click()
    page.get_by_label("Find a patient").press_sequentially("lovel", delay=30)
    # Results arrive without pressing Enter (htmx), and the URL follows the search.
    expect(page.locator("#results")).to_contain_text("LOVELACE, Ada")
    expect(page).to_have_url(re.compile(r"q=lovel"))
    shot(page, "search")
    assert_fits_and_touchable(page)
    page.get_by_role("link", name="LOVELACE, Ada").click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    expect(page.get_by_text("07700 900123")).to_be_visible()
    # Front desk: contact details, no clinical sections.
    expect(page.get_by_role("heading", name="Medical history")).to_have_count(0)
    assert_fits_and_touchable(page)


def test_edit_a_patient_with_a_mistake_then_fix_it(live_server, live_world, page):
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/patients/{live_world.patient.pk}/edit/")
    page.get_by_label("Date of birth").fill("2099-01-01")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("The date of birth is in the future.")).to_be_visible()
    expect(page.get_by_text("Nothing was saved")).to_be_visible()
    shot(page, "edit-error")
    assert_fits_and_touchable(page)
    page.get_by_label("Date of birth").fill("1985-12-11")
    page.get_by_label("Weight (kg)").fill("58.5")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    patient = Patient.objects.get(pk=live_world.patient.pk)
    assert str(patient.date_of_birth) == "1985-12-11" and str(patient.weight_kg) == "58.5"


def test_screening_raises_flags_shown_at_a_glance(live_server, live_world, page):
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/patients/{live_world.patient.pk}/")
    expect(page.get_by_text("Not screened yet")).to_be_visible()
    page.get_by_role("link", name="Screen now").click()
    # Submitting with questions unanswered keeps everything and says what is missing.
    page.get_by_role("button", name="Save screening").click()
    expect(page.get_by_text("Answer yes or no.").first).to_be_visible()
    for group in page.locator("li.question").all():
        group.get_by_label("No").check()
    page.locator("li.question", has_text="cow's milk protein").get_by_label("Yes").check()
    anticoag = page.locator("li.question", has_text="blood thinner")
    anticoag.get_by_label("Yes").check()
    anticoag.get_by_placeholder(re.compile("Details")).fill("apixaban 5 mg")
    shot(page, "screening")
    assert_fits_and_touchable(page)
    page.get_by_role("button", name="Save screening").click()
    flags = page.get_by_role("region", name="Safety flags")
    expect(flags).to_contain_text("Cow's milk protein allergy")
    expect(flags).to_contain_text("Anticoagulant")
    expect(page.get_by_text("apixaban 5 mg")).to_be_visible()
    shot(page, "patient-flags")
    assert_fits_and_touchable(page)


def test_auditor_reads_the_audit_log(live_server, live_world, page):
    login(page, live_server.url, "auditor@alpha.test", PASSWORD)
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.locator("tbody")).to_contain_text("auditor@alpha.test")
    page.get_by_label("Action").select_option("login")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr").first).to_contain_text("signed in")
    shot(page, "audit-log")
    assert_fits_and_touchable(page)
    assert AuditEvent.objects.filter(action="login", actor_label="auditor@alpha.test").exists()


def test_record_a_treatment_given_elsewhere_with_a_typo_first(live_server, live_world, page):
    login(page, live_server.url, "injector@alpha.test", PASSWORD)
    page.goto(f"{live_server.url}/patients/{live_world.patient.pk}/")
    page.get_by_role("link", name="Add toxin treatment elsewhere").click()
    page.get_by_label("Date treated").fill("2026-10-01")
    page.get_by_label("Product").select_option("botox_cosmetic")
    page.get_by_label("Units").fill("-20")
    page.get_by_label("Area treated").fill("glabella")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Units must be more than zero.")).to_be_visible()
    # What was typed is still there: only the wrong figure needs fixing.
    expect(page.get_by_label("Area treated")).to_have_value("glabella")
    shot(page, "outside-treatment-error")
    assert_fits_and_touchable(page)
    page.get_by_label("Units").fill("20")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Added to the medical history.")).to_be_visible()
    row = page.locator("tr", has_text="Botox Cosmetic")
    expect(row).to_contain_text("20 U")
    expect(row).to_contain_text("01/10/2026")
