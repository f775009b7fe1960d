"""The clinic's Kaplan-Meier duration of effect per product, on synthetic patients."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse

from glabella.accounts.actor import Actor
from glabella.accounts.services import add_clinic
from glabella.audit.models import AuditEvent
from glabella.outcomes import durations
from glabella.outcomes.tests.test_durations import quick_session
from glabella.patients import services as patient_services

pytestmark = pytest.mark.today_from_the_clock
TODAY = date.today()  # again as each test starts: see steady_today()
MIGRAINE = {"indication": "chronic-migraine", "product_id": "botox"}


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def _patient(world, n: int, org=None):
    actor = world.actor("injector") if org is None else Actor(org, world.outsider, None, "owner")
    return patient_services.create_patient(
        actor, {"given_name": f"P{n}", "family_name": "Cohort", "date_of_birth": date(1980, 1, n)}
    )


def _back(world, session, days: int, org_actor=None):
    return durations.record_return(
        org_actor or world.actor("injector"), session, session.treated_on + timedelta(days=days)
    )


@pytest.fixture
def migraine_cohort(world):
    """Seven Botox chronic-migraine treatments of six patients:
    returns after 70, 80, 90 and 100 days; one treated again after 85 days (censored there)
    and that next treatment still working at 115 days; one still working at 50 days."""
    for n, days in enumerate((70, 80, 90, 100), start=1):
        session = quick_session(world, ago(200), "155", patient=_patient(world, n), **MIGRAINE)
        _back(world, session, days)
    again = _patient(world, 5)
    quick_session(world, ago(200), "155", patient=again, **MIGRAINE)
    quick_session(world, ago(115), "155", patient=again, **MIGRAINE)
    quick_session(world, ago(50), "155", patient=_patient(world, 6), **MIGRAINE)
    return world


def test_the_migraine_cohort_gives_the_kaplan_meier_median_by_hand(migraine_cohort):
    (curve,) = durations.cohort(migraine_cohort.org, indication="chronic-migraine", today=TODAY)
    # 50c 70 80 85c 90 100 115c: S = 5/6, 2/3, then 4/9 at day 90 (the median), 2/9 at 100.
    assert curve.label == "Botox"
    assert (curve.treatments, curve.patients, curve.events, curve.censored) == (7, 6, 4, 3)
    assert curve.median_days == 90 and curve.median_text == "90 days"
    assert curve.p25_days == 80 and curve.p75_days == 100
    survival = dict(curve.points)
    assert survival[0] == 1.0
    assert survival[70] == pytest.approx(5 / 6)
    assert survival[90] == pytest.approx(4 / 9)
    assert survival[100] == pytest.approx(2 / 9)


def test_a_cohort_without_enough_returns_has_its_median_not_reached(world):
    for n in range(3):
        session = quick_session(world, ago(150), "155", patient=_patient(world, n + 1), **MIGRAINE)
        if n == 0:
            _back(world, session, 80)
    (curve,) = durations.cohort(world.org, indication="chronic-migraine", today=TODAY)
    assert curve.median_days is None and curve.median_text == "not reached"
    assert curve.p25_days == 80 and curve.p75_days is None


def test_one_curve_per_product_family_and_filters_by_product_and_clinic(migraine_cohort):
    world = migraine_cohort
    north = add_clinic(world.actor("owner"), name="Alpha North", timezone="Europe/London")
    dysport = quick_session(
        world,
        ago(150),
        "500",
        patient=_patient(world, 7),
        clinic=north,
        indication="chronic-migraine",
        product_id="dysport",
    )
    _back(world, dysport, 60)
    curves = durations.cohort(world.org, indication="chronic-migraine", today=TODAY)
    assert [c.label for c in curves] == ["Botox", "Dysport"]
    only = durations.cohort(
        world.org, indication="chronic-migraine", product_id="dysport", today=TODAY
    )
    assert [(c.label, c.treatments, c.median_days) for c in only] == [("Dysport", 1, 60)]
    at_north = durations.cohort(world.org, indication="chronic-migraine", clinic=north, today=TODAY)
    assert [c.label for c in at_north] == ["Dysport"]
    assert durations.cohort(world.org, indication="glabellar-lines", today=TODAY) == []


def test_another_organizations_treatments_never_count(migraine_cohort):
    world = migraine_cohort
    from glabella.accounts.models import Clinic

    theirs = _patient(world, 9, org=world.outsider_org)
    their_clinic = Clinic.objects.get(organization=world.outsider_org)
    session = quick_session(world, ago(200), "155", patient=theirs, clinic=their_clinic, **MIGRAINE)
    _back(world, session, 20, org_actor=Actor(world.outsider_org, world.outsider, None, "owner"))
    (ours,) = durations.cohort(world.org, indication="chronic-migraine", today=TODAY)
    assert (ours.treatments, ours.events, ours.median_days) == (7, 4, 90)
    (their_curve,) = durations.cohort(
        world.outsider_org, indication="chronic-migraine", today=TODAY
    )
    assert (their_curve.treatments, their_curve.median_days) == (1, 20)
    with pytest.raises(PermissionError):
        durations.cohort(
            world.outsider_org,
            indication="chronic-migraine",
            clinic=world.clinic,
            today=TODAY,
        )


# --- the page ----------------------------------------------------------------------------------


def test_the_cohort_page_draws_the_curves_with_a_table_and_explains_censoring(migraine_cohort):
    client = migraine_cohort.client("prescriber")
    response = client.get(reverse("outcomes:cohort"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page and "<table" in page
    assert "Botox" in page and "90 days" in page
    assert "censored" in page
    assert "data-median>90 days<" in page
    event = AuditEvent.objects.filter(object_type="outcomes.cohort").latest("seq")
    assert event.action == "view" and event.detail["indication"] == "chronic-migraine"
    assert "Cohort" not in page  # counts only: no patient's name


def test_the_cohort_page_with_no_treatments_says_so(world):
    response = world.client("auditor").get(reverse("outcomes:cohort"))
    assert response.status_code == 200
    assert "No signed treatments yet" in response.content.decode()


def test_the_cohort_page_refuses_another_organizations_clinic(migraine_cohort):
    world = migraine_cohort
    from glabella.accounts.models import Clinic

    theirs = Clinic.objects.get(organization=world.outsider_org)
    response = world.client("owner").get(
        reverse("outcomes:cohort"), {"indication": "chronic-migraine", "clinic": theirs.pk}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Choose one of your organization" in page
    assert "<svg" not in page
