from datetime import timedelta

import pytest
from django.urls import reverse

from glabella.audit.models import AuditEvent
from glabella.consent import services
from glabella.consent.models import Consent
from glabella.patients.models import Patient

from .helpers import BLANK, PDF, SIGNATURE, data_url, upload

CLINICAL = ("owner", "prescriber", "injector")
VIEWERS = (*CLINICAL, "auditor")
ALL_ROLES = (*VIEWERS, "front_desk")


@pytest.fixture
def consents(world, forms):
    """A drawn and a paper consent in Alpha, and a drawn one in Beta (the outsider)."""
    mine = services.take_consent(
        world.actor(),
        world.patient,
        "cosmetic",
        method="drawn",
        signature_png=SIGNATURE,
        read_confirmed=True,
    )
    scanned = services.take_consent(
        world.actor(),
        world.patient,
        "chronic-migraine",
        method="paper",
        scan=upload("form.pdf", PDF),
        read_confirmed=True,
    )
    theirs = services.take_consent(
        world.outsider_actor(),
        world.outsider_patient,
        "cosmetic",
        method="drawn",
        signature_png=SIGNATURE,
        read_confirmed=True,
    )
    return mine, scanned, theirs


def take_url(patient, category="cosmetic"):
    return reverse("consent:take", args=[patient.pk, category])


def post_data(**overrides):
    data = {
        "method": "drawn",
        "signature": data_url(SIGNATURE),
        "read_confirmed": "on",
        "form_token": "form-token-1",
        "template_version": "1",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- reading -----------------------------------------------------------------------


@pytest.mark.parametrize("role", VIEWERS)
def test_clinical_staff_and_auditor_see_consents(world, consents, role):
    mine, scanned, _ = consents
    client = world.client(role)
    page = client.get(reverse("consent:patient", args=[world.patient.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Valid until" in body and "Cosmetic" in body
    detail = client.get(reverse("consent:detail", args=[mine.pk]))
    assert detail.status_code == 200
    assert "version 1" in detail.content.decode()
    assert mine.text_hash in detail.content.decode()
    sig = client.get(reverse("consent:signature", args=[mine.pk]))
    assert sig.status_code == 200 and sig["Content-Type"] == "image/png"
    assert sig.content == SIGNATURE and "no-store" in sig["Cache-Control"]
    scan = client.get(reverse("consent:scan", args=[scanned.pk]))
    assert scan.status_code == 200 and scan["Content-Type"] == "application/pdf"
    assert b"".join(scan.streaming_content) == PDF
    assert client.get(reverse("consent:templates")).status_code == 200


def test_viewing_is_audited(world, consents):
    mine = consents[0]
    world.client("auditor").get(reverse("consent:detail", args=[mine.pk]))
    assert AuditEvent.objects.filter(
        action="view",
        object_type="consent.consent",
        object_id=str(mine.pk),
        actor_label="auditor@alpha.test",
    ).exists()


def test_a_patient_without_consents_has_a_clear_empty_state(world, forms):
    page = world.client("injector").get(reverse("consent:patient", args=[world.patient.pk]))
    body = page.content.decode()
    assert "No consent has been recorded" in body
    assert body.count(">Take consent</a>") == 6  # four treatments, photographs, marketing


def test_front_desk_cannot_see_consents(world, consents):
    mine, scanned, _ = consents
    client = world.client("front_desk")
    for url in (
        reverse("consent:patient", args=[world.patient.pk]),
        take_url(world.patient),
        reverse("consent:detail", args=[mine.pk]),
        reverse("consent:signature", args=[mine.pk]),
        reverse("consent:scan", args=[scanned.pk]),
        reverse("consent:templates"),
        reverse("consent:template_new", args=["cosmetic"]),
    ):
        assert client.get(url).status_code == 403, url
    assert (
        client.post(reverse("consent:withdraw", args=[mine.pk]), {"reason": "x"}).status_code == 403
    )


def test_auditor_reads_but_cannot_take_or_withdraw(world, consents):
    mine = consents[0]
    client = world.client("auditor")
    assert client.get(take_url(world.patient)).status_code == 403
    assert client.post(take_url(world.patient), post_data()).status_code == 403
    assert (
        client.post(reverse("consent:withdraw", args=[mine.pk]), {"reason": "x"}).status_code == 403
    )
    assert client.get(reverse("consent:template_new", args=["cosmetic"])).status_code == 403
    assert Consent.objects.get(pk=mine.pk).withdrawn_at is None
    detail = client.get(reverse("consent:detail", args=[mine.pk])).content.decode()
    assert "Record withdrawal" not in detail


@pytest.mark.parametrize("role", ALL_ROLES)
def test_another_organizations_patient_and_consent_are_not_found(world, consents, role):
    theirs = consents[2]
    client = world.client(role)
    urls = [
        reverse("consent:patient", args=[world.outsider_patient.pk]),
        reverse("consent:detail", args=[theirs.pk]),
        reverse("consent:signature", args=[theirs.pk]),
        reverse("consent:scan", args=[theirs.pk]),
    ]
    # Without consent.view the answer is 403 for every object, theirs or ours: it tells
    # nothing either way. Everyone else is told it does not exist.
    expected = 403 if role == "front_desk" else 404
    for url in urls:
        assert client.get(url).status_code == expected, url
    taking = client.get(take_url(world.outsider_patient))
    assert taking.status_code == (404 if role in CLINICAL else 403)
    withdraw = client.post(reverse("consent:withdraw", args=[theirs.pk]), {"reason": "x"})
    assert withdraw.status_code == (404 if role in CLINICAL else 403)
    taken = client.post(take_url(world.outsider_patient), post_data())
    assert taken.status_code == (404 if role in CLINICAL else 403)
    assert Consent.objects.filter(patient=world.outsider_patient).count() == 1
    assert Consent.objects.get(pk=theirs.pk).withdrawn_at is None


def test_the_outsider_cannot_reach_our_consents(world, consents):
    mine, scanned, _ = consents
    client = world.client("outsider")
    for url in (
        reverse("consent:patient", args=[world.patient.pk]),
        take_url(world.patient),
        reverse("consent:detail", args=[mine.pk]),
        reverse("consent:signature", args=[mine.pk]),
        reverse("consent:scan", args=[scanned.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_unknown_category_and_missing_media_are_not_found(world, consents):
    mine, scanned, _ = consents
    client = world.client("injector")
    assert client.get(take_url(world.patient, "botox")).status_code == 404
    assert client.get(reverse("consent:scan", args=[mine.pk])).status_code == 404
    assert client.get(reverse("consent:signature", args=[scanned.pk])).status_code == 404


# --- taking consent ------------------------------------------------------------------


def test_the_take_page_shows_the_filled_in_text_and_a_signature_pad(world, forms):
    page = world.client("injector").get(take_url(world.patient))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Ada Lovelace" in body and "10/12/1985" in body and "Alpha Central" in body
    assert "{patient_name}" not in body
    assert "<canvas data-signature-pad" in body
    assert 'type="module" src="/static/consent/signature.js"' in body
    assert "onclick" not in body and "<script>" not in body
    assert 'name="form_token"' in body and "Form version 1" in body
    assert "The patient has read this and had the chance to ask questions" in body


def test_taking_a_drawn_consent_through_the_page(world, forms):
    client = world.client("injector")
    response = client.post(take_url(world.patient), post_data())
    consent = Consent.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("consent:detail", args=[consent.pk])
    assert bytes(consent.signature) == SIGNATURE and consent.method == "drawn"
    assert consent.form_token == "form-token-1"


def test_taking_a_paper_consent_through_the_page(world, forms):
    signed = services.today_for(world.actor()) - timedelta(days=2)
    response = world.client("prescriber").post(
        take_url(world.patient, "hyperhidrosis"),
        post_data(
            method="paper", signature=None, scan=upload("x.pdf", PDF), signed_on=signed.isoformat()
        ),
    )
    assert response.status_code == 302
    consent = Consent.objects.get()
    assert consent.category == "hyperhidrosis" and consent.signed_on == signed
    assert consent.scan_content_type == "application/pdf"


def test_a_double_submit_through_the_page_records_one_consent(world, forms):
    client = world.client("injector")
    first = client.post(take_url(world.patient), post_data())
    second = client.post(take_url(world.patient), post_data())
    assert first["Location"] == second["Location"]
    assert Consent.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"read_confirmed": None}, "Tick this box once the patient has read the form"),
        ({"signature": ""}, "Ask the patient to sign in the box"),
        ({"signature": data_url(BLANK)}, "The signature box looks empty"),
        ({"signature": "data:image/png;base64,not base64!"}, "could not be read"),
        ({"signature": data_url(b"<svg>" + b" " * 500)}, "could not be read"),
        (
            {"method": "paper", "scan": upload("form.png", b"not an image, just text\n" * 40)},
            "not a PDF, PNG or JPEG",
        ),
        (
            {"method": "paper", "signed_on": "2999-01-01", "scan": upload("f.pdf", PDF)},
            "cannot be in the future",
        ),
        ({"method": "paper"}, "Upload the scan or photo"),
        ({"template_version": "7"}, "The wording of this form changed"),
    ],
)
def test_mistakes_re_render_with_the_message_and_save_nothing(world, forms, overrides, message):
    response = world.client("injector").post(take_url(world.patient), post_data(**overrides))
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    assert "Ada Lovelace" in body, "the text is shown again"
    assert Consent.objects.count() == 0
    assert not AuditEvent.objects.filter(object_type="consent.consent").exists()


def test_a_too_big_scan_through_the_page(world, forms, settings):
    settings.GLABELLA_MAX_UPLOAD_BYTES = 2000
    response = world.client("injector").post(
        take_url(world.patient),
        post_data(method="paper", scan=upload("f.pdf", PDF + b"0" * 3000)),
    )
    assert "the limit is" in response.content.decode()
    assert Consent.objects.count() == 0


def test_a_valid_signature_is_kept_when_only_the_checkbox_was_missing(world, forms):
    response = world.client("injector").post(
        take_url(world.patient), post_data(read_confirmed=None)
    )
    assert data_url(SIGNATURE) in response.content.decode()


# --- withdrawing and templates ---------------------------------------------------------


def test_withdrawal_needs_a_reason_and_is_shown(world, consents):
    mine = consents[0]
    client = world.client("injector")
    url = reverse("consent:withdraw", args=[mine.pk])
    response = client.post(url, {"reason": ""})
    assert (
        response.status_code == 200
        and "Say why the consent is withdrawn" in response.content.decode()
    )
    assert Consent.objects.get(pk=mine.pk).withdrawn_at is None
    response = client.post(url, {"reason": "Patient asked by phone"}, follow=True)
    body = response.content.decode()
    assert "Withdrawn" in body and "Patient asked by phone" in body
    assert client.get(url).status_code == 405


def test_a_tampered_consent_says_so_on_its_page(world, consents):
    mine = consents[0]
    Consent.objects.filter(pk=mine.pk).update(rendered_text="I agree to anything.")
    body = world.client("owner").get(reverse("consent:detail", args=[mine.pk])).content.decode()
    assert "does not match its fingerprint" in body


def test_writing_a_new_template_version_through_the_page(world, forms):
    client = world.client("prescriber")
    url = reverse("consent:template_new", args=["cosmetic"])
    page = client.get(url)
    assert page.status_code == 200 and "Default wording supplied" in page.content.decode()
    bad = client.post(url, {"title": "Ours", "body": "Hello {name}", "valid_months": "12"})
    assert "Unknown placeholder {name}" in bad.content.decode()
    good = client.post(
        url, {"title": "Ours", "body": "Hello {patient_name}.", "valid_months": "9"}, follow=True
    )
    assert "Version 2 of the" in good.content.decode()
    current = services.current_template(world.org, "cosmetic")
    assert (current.version, current.valid_months) == (2, 9)
    assert world.client("injector").get(url).status_code == 403


def test_the_templates_list_creates_missing_defaults_and_shows_versions(world):
    page = world.client("auditor").get(reverse("consent:templates"))
    body = page.content.decode()
    assert page.status_code == 200 and "Chronic migraine" in body and "version 1" in body
    assert "Write a new version" not in body
    assert services.current_template(world.org, "hyperhidrosis") is not None


def test_the_patient_page_include_renders_the_summary(world, consents):
    from django.template.loader import render_to_string

    from glabella.accounts.context_processors import _Perms

    today = services.today_for(world.actor())
    patient = Patient.objects.get(pk=world.patient.pk)
    html = render_to_string(
        "consent/_patient_consents.html",
        {
            "patient": patient,
            "consent_summary": services.summary_for(patient, today),
            "may": _Perms("injector"),
        },
    )
    valid_until = consents[0].valid_until.strftime("%d/%m/%Y")
    assert f"valid until {valid_until}" in html
    # hyperhidrosis, other medical, photographs, marketing
    assert html.count(">Take consent</a>") == 4
    assert reverse("consent:take", args=[patient.pk, "hyperhidrosis"]) in html
    none_for_front_desk = render_to_string(
        "consent/_patient_consents.html",
        {"patient": patient, "consent_summary": [], "may": _Perms("front_desk")},
    )
    assert none_for_front_desk.strip() == ""
