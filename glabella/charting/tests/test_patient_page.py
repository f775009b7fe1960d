"""The patient page shows the treatments, the consents and the way to start a treatment."""

from django.urls import reverse

from glabella.charting import services
from glabella.charting.tests.conftest import signed_glabellar


def test_treatments_are_listed_with_totals_in_the_products_own_units(consented):
    session = signed_glabellar(consented)
    html = (
        consented.client("injector")
        .get(reverse("patients:detail", args=[consented.patient.pk]))
        .content.decode()
    )
    assert reverse("charting:session", args=[session.pk]) in html
    assert "Glabellar lines" in html and "Botox Cosmetic" in html
    assert "20 U" in html and "5 points" in html and "Signed" in html
    assert "review " + session.review_due_on.strftime("%d/%m/%Y") in html


def test_start_treatment_is_offered_to_clinicians_who_chart(world):
    url = reverse("charting:start", args=[world.patient.pk])
    page = reverse("patients:detail", args=[world.patient.pk])
    assert url in world.client("injector").get(page).content.decode()
    assert "No treatments yet." in world.client("prescriber").get(page).content.decode()
    for role in ("owner", "auditor", "front_desk"):
        assert url not in world.client(role).get(page).content.decode(), role


def test_consents_show_per_category_on_the_patient_page(consented):
    html = (
        consented.client("injector")
        .get(reverse("patients:detail", args=[consented.patient.pk]))
        .content.decode()
    )
    assert html.count("valid until") == 2  # cosmetic and chronic migraine
    assert "Take consent" in html  # for hyperhidrosis and other medical


def test_front_desk_sees_neither_treatments_nor_consents(consented):
    signed_glabellar(consented)
    html = (
        consented.client("front_desk")
        .get(reverse("patients:detail", args=[consented.patient.pk]))
        .content.decode()
    )
    assert "Treatments" not in html and "Botox Cosmetic" not in html
    assert "valid until" not in html


def test_voided_treatments_stay_listed_struck_through(consented):
    session = signed_glabellar(consented)
    services.void(consented.actor("injector"), session, "Charted on the wrong patient")
    html = (
        consented.client("auditor")
        .get(reverse("patients:detail", args=[consented.patient.pk]))
        .content.decode()
    )
    assert 'class="struck"' in html and "Voided" in html
