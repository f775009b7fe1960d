"""The charting pages over HTTP: who may open what, bad input, stale pages, signed records."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import URLPattern, resolve, reverse
from django.utils import timezone

from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.accounts.roles import can
from glabella.accounts.services import add_member
from glabella.audit.models import AuditEvent
from glabella.charting import page_urls, services
from glabella.charting.models import (
    Amendment,
    InjectionPoint,
    Override,
    Status,
    TreatmentSession,
)
from glabella.charting.tests.conftest import ready_to_sign
from glabella.conftest import PASSWORD
from glabella.patients import services as patient_services

ROLES = ["owner", "prescriber", "injector", "front_desk", "auditor"]
HX = {"HTTP_HX_REQUEST": "true"}
GLABELLAR = "protocol:glabellar-lines-botox-cosmetic"
# A spot inside the procerus (the glabellar template's midline point).
PROCERUS = {"diagram": "face-front", "x": "50", "y": "35"}


def _start(world, start_from=GLABELLAR, role="injector", **kw):
    kw.setdefault("indication", "glabellar-lines")
    kw.setdefault("product_id", "botox_cosmetic")
    return services.start_session(world.actor(role), world.patient, start_from=start_from, **kw)


def _fresh(session):
    return TreatmentSession.objects.get(pk=session.pk)


def _state(session):
    """Everything a change could touch, to prove nothing was written."""
    s = _fresh(session)
    return (
        s.version,
        s.status,
        s.lot_number,
        s.prescriber_id,
        tuple(s.points.values_list("number", "units", "depth", "x", "y", "removed")),
        s.overrides.count(),
        s.amendments.count(),
    )


def _url(name, session_pk, patient_pk, number=1):
    pattern = next(p for p in page_urls.urlpatterns if p.name == name)
    names = set(pattern.pattern.regex.groupindex)
    kwargs = {"pk": patient_pk if name == "start" else session_pk}
    if "number" in names:
        kwargs["number"] = number
    assert set(kwargs) == names, f"teach this test the URL arguments of {name}"
    return reverse(f"charting:{name}", kwargs=kwargs)


def _all_urls(session_pk, patient_pk):
    return {p.name: _url(p.name, session_pk, patient_pk) for p in page_urls.urlpatterns}


def _outsider_session(world):
    """A draft of the other organization, charted by its own injector."""
    owner = Membership.objects.get(user=world.outsider)
    admin = Actor(world.outsider_org, world.outsider, owner.clinic, "owner")
    m = add_member(
        admin, email="injector@beta.test", clinic=owner.clinic, role="injector", password=PASSWORD
    )
    actor = Actor(world.outsider_org, m.user, owner.clinic, "injector")
    return services.start_session(
        actor,
        world.outsider_patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        start_from=GLABELLAR,
    )


# --- every URL, every role, and the outsider ------------------------------------------------


def test_the_walk_covers_every_charting_page_url(world):
    urls = _all_urls(1, 1)
    assert len(urls) == len(page_urls.urlpatterns) >= 12
    for pattern in page_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        assert hasattr(pattern.callback, "required_permission"), pattern.name


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_charting_url_is_404_for_another_organizations_session(world, role, method):
    theirs = _outsider_session(world)
    before = _state(theirs), TreatmentSession.objects.count(), AuditEvent.objects.count()
    client = world.client(role)
    data = {
        "version": theirs.version,
        "units": "4",
        "reason": "A good reason, in words",
        **PROCERUS,
    }
    for name, url in _all_urls(theirs.pk, world.outsider_patient.pk).items():
        response = getattr(client, method)(url, data)
        permission = resolve(url).func.required_permission
        allowed = {404} | ({403} if not can(role, permission) else set())
        if method == "get":
            allowed |= {405}
        assert response.status_code in allowed, (name, role, response.status_code)
    assert (_state(theirs), TreatmentSession.objects.count()) == before[:2]


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_outsider_gets_404_for_our_session_and_patient(world, method):
    ours = _start(world)
    before = _state(ours)
    client = world.client("outsider")
    for name, url in _all_urls(ours.pk, world.patient.pk).items():
        response = getattr(client, method)(url, {"version": ours.version, "units": "4"})
        # The outsider owns the other organization: 403 where owners may not chart at all.
        assert response.status_code in {404, 403, 405}, (name, response.status_code)
        if response.status_code == 403:
            assert not can("owner", resolve(url).func.required_permission)
    assert _state(ours) == before


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_pages_its_permissions_allow(world, role):
    ours = _start(world, prescriber=world.users["prescriber"])
    client = world.client(role)
    for name, url in _all_urls(ours.pk, world.patient.pk).items():
        permission = resolve(url).func.required_permission
        method = "get" if name in ("start", "session") else "post"
        # Empty posts: refused by validation (or a stale version), never half-written.
        response = getattr(client, method)(url, {})
        if can(role, permission):
            assert response.status_code in {200, 302, 422}, (name, role, response.status_code)
        else:
            assert response.status_code == 403, (name, role, response.status_code)
    fresh = _fresh(ours)
    assert fresh.status == Status.DRAFT and services.totals(fresh).total == 20


def test_reading_a_session_is_audited(world):
    session = _start(world)
    response = world.client("auditor").get(reverse("charting:session", args=[session.pk]))
    assert response.status_code == 200
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.object_type, event.object_id) == (
        "view",
        "charting.treatmentsession",
        str(session.pk),
    )
    assert event.detail["patient"] == world.patient.pk


def test_a_role_that_may_not_chart_sees_the_draft_read_only(world):
    session = _start(world)
    html = world.client("owner").get(reverse("charting:session", args=[session.pk])).content
    assert b"20 U" in html and b'data-readonly="1"' in html
    assert b"Add point" not in html and b"Save lot" not in html
    assert b'tabindex="0"' not in html  # the diagram is a picture, not buttons


# --- the charting page -------------------------------------------------------------------------


def test_the_charting_page_shows_totals_findings_and_points(consented):
    world = consented
    session = _start(world)
    html = world.client("injector").get(reverse("charting:session", args=[session.pk])).text
    assert "20 U" in html and "Botox Cosmetic" in html
    assert 'data-version="2"' in html
    assert html.count('class="point point-ok') == 5
    assert "for the next point" in html
    for step in ("2", "2.5", "4", "5", "10"):
        assert f'data-next-units="{step}"' in html
    assert 'type="module" src="/static/charting/chart.js"' in html
    assert "<script>" not in html and "onclick" not in html


def test_quick_units_follow_the_product():
    from glabella.charting.forms import quick_units

    assert quick_units("botox") == ("2.5", "5", "10", "25", "50")
    assert quick_units("dysport") == ("5", "10", "20", "50")
    assert quick_units("daxxify") == ("4", "8", "16")
    assert quick_units("myobloc") == ("250", "500", "1000")
    assert quick_units("xeomin") == ("2", "2.5", "4", "5", "10")


def test_a_tap_adds_a_point_where_it_lands_and_the_workspace_comes_back(world):
    session = _start(world, "blank")
    response = world.client("injector").post(
        reverse("charting:point_add", args=[session.pk]),
        {"version": session.version, "units": "4", "depth": "IM", **PROCERUS},
        **HX,
    )
    assert response.status_code == 200
    assert 'id="workspace"' in response.text and "<html" not in response.text
    assert "Point 1 added: procerus, midline, 4 U IM." in response.text
    point = _fresh(session).points.get()
    assert (point.muscle, point.side, point.units) == ("procerus", "mid", Decimal(4))


def test_adding_by_keyboard_uses_the_region_anchor(world):
    session = _start(world, "blank")
    response = world.client("injector").post(
        reverse("charting:point_add", args=[session.pk]),
        {"version": session.version, "region": "face-front:corrugator-l", "units": "2.5"},
        **HX,
    )
    assert response.status_code == 200
    point = _fresh(session).points.get()
    assert (point.muscle, point.side, point.units) == ("corrugator", "L", Decimal("2.5"))


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ("0", "more than zero"),
        ("-1", "more than zero"),
        ("NaN", "ordinary number"),
        ("abc", "not a number"),
        ("501", "not a plausible dose"),
        ("", "Enter the units"),
    ],
)
def test_bad_units_are_refused_with_a_message_and_nothing_is_written(world, units, message):
    session = _start(world)
    before = _state(session)
    client = world.client("injector")
    add = client.post(
        reverse("charting:point_add", args=[session.pk]),
        {"version": session.version, "units": units, **PROCERUS},
        **HX,
    )
    edit = client.post(
        reverse("charting:point_update", args=[session.pk, 1]),
        {"version": session.version, "units": units},
        **HX,
    )
    for response in (add, edit):
        assert response.status_code == 422
        assert message in response.text and "Nothing was saved." in response.text
        assert 'role="alert"' in response.text
    assert _state(session) == before


def test_bad_units_without_htmx_redirect_back_with_the_message(world):
    session = _start(world)
    before = _state(session)
    client = world.client("injector")
    response = client.post(
        reverse("charting:point_add", args=[session.pk]),
        {"version": session.version, "units": "abc", **PROCERUS},
        follow=True,
    )
    assert response.redirect_chain[0][1] == 302
    assert "is not a number of units" in response.text
    assert _state(session) == before


def test_a_tap_outside_every_muscle_area_saves_nothing(world):
    session = _start(world)
    before = _state(session)
    response = world.client("injector").post(
        reverse("charting:point_add", args=[session.pk]),
        {"version": session.version, "units": "4", "diagram": "face-front", "x": "1", "y": "1"},
        **HX,
    )
    assert response.status_code == 422
    assert "outside the marked muscle areas" in response.text
    assert _state(session) == before


def test_a_stale_version_is_refused_and_the_current_chart_is_shown(world):
    session = _start(world)
    stale = session.version
    client = world.client("injector")
    client.post(
        reverse("charting:point_update", args=[session.pk, 1]),
        {"version": stale, "units": "5"},
        **HX,
    )
    before = _state(session)
    response = world.client("prescriber").post(
        reverse("charting:point_update", args=[session.pk, 1]),
        {"version": stale, "units": "8"},
        **HX,
    )
    assert response.status_code == 409
    assert "Someone else changed this session" in response.text
    assert "21 U" in response.text  # the chart as it is now: 5 + 4 * 4
    assert _state(session) == before


def test_a_missing_or_garbled_version_counts_as_stale(world):
    session = _start(world)
    before = _state(session)
    for version in ("", "abc", "1e9"):
        response = world.client("injector").post(
            reverse("charting:point_add", args=[session.pk]),
            {"version": version, "units": "4", **PROCERUS},
            **HX,
        )
        assert response.status_code == 409
    assert _state(session) == before


def test_a_double_submitted_add_saves_one_point(world):
    session = _start(world, "blank")
    client = world.client("injector")
    data = {"version": session.version, "units": "4", **PROCERUS}
    first = client.post(reverse("charting:point_add", args=[session.pk]), data, **HX)
    second = client.post(reverse("charting:point_add", args=[session.pk]), data, **HX)
    assert (first.status_code, second.status_code) == (200, 409)
    assert _fresh(session).points.count() == 1


def test_edit_depth_muscle_and_move_a_point(world):
    session = _start(world)
    client = world.client("injector")
    url = reverse("charting:point_update", args=[session.pk, 5])
    v = session.version
    assert client.post(url, {"version": v, "depth": "ID"}, **HX).status_code == 200
    response = client.post(url, {"version": v + 1, "x": "50", "y": "35", "diagram": "face-front"})
    assert response.status_code == 302
    point = _fresh(session).points.get(number=5)
    assert (point.depth, point.muscle, point.x) == ("ID", "procerus", Decimal(50))
    response = client.post(url, {"version": v + 2, "x": "2", "y": "2"}, **HX)
    assert response.status_code == 422 and "outside the marked muscle areas" in response.text
    assert _fresh(session).points.get(number=5).x == Decimal(50)


def test_mirror_remove_and_undo(world):
    session = _start(world, "protocol:lateral-canthal-lines", indication="lateral-canthal-lines")
    client = world.client("injector")
    first = services.live_points(session)[0]
    response = client.post(
        reverse("charting:point_mirror", args=[session.pk, first.number]),
        {"version": _fresh(session).version},
        **HX,
    )
    assert response.status_code == 200 and "added on the other side" in response.text
    mirrored = _fresh(session).points.order_by("-number").first()
    assert mirrored.side != first.side and mirrored.units == first.units
    response = client.post(
        reverse("charting:point_remove", args=[session.pk, mirrored.number]),
        {"version": _fresh(session).version},
        **HX,
    )
    assert response.status_code == 200 and ">Undo</button>" in response.text
    assert _fresh(session).points.get(number=mirrored.number).removed
    response = client.post(
        reverse("charting:point_restore", args=[session.pk, mirrored.number]),
        {"version": _fresh(session).version},
        **HX,
    )
    assert response.status_code == 200 and "is back" in response.text
    assert not _fresh(session).points.get(number=mirrored.number).removed


def test_removing_a_point_twice_says_it_is_gone(world):
    session = _start(world)
    client = world.client("injector")
    url = reverse("charting:point_remove", args=[session.pk, 2])
    client.post(url, {"version": session.version}, **HX)
    response = client.post(url, {"version": _fresh(session).version}, **HX)
    assert response.status_code == 409 and "no longer on the chart" in response.text
    assert _fresh(session).points.filter(removed=True).count() == 1


def test_lot_and_vial_details_give_volume_and_units_left(world):
    session = _start(world)
    client = world.client("injector")
    url = reverse("charting:details", args=[session.pk])
    response = client.post(
        url,
        {"version": session.version, "lot_number": "c1234ab", "lot_expiry": "2030-01-31"},
        **HX,
    )
    assert response.status_code == 200 and "C1234AB" in response.text
    response = client.post(
        url, {"version": session.version + 1, "vial_units": "100", "diluent_ml": "2.5"}, **HX
    )
    assert response.status_code == 200
    assert "0.5 mL" in response.text and "80 U" in response.text  # 20 U at 4 U/0.1 mL
    fresh = _fresh(session)
    assert (fresh.lot_number, fresh.vial_units, fresh.lot_expiry) == (
        "C1234AB",
        100,
        date(2030, 1, 31),
    )
    response = client.post(url, {"version": fresh.version, "vial_units": "300"}, **HX)
    assert response.status_code == 422 and "Botox Cosmetic comes in" in response.text
    assert _fresh(session).vial_units == 100


def test_the_last_lot_of_the_product_is_offered_not_applied(world):
    first = ready_to_sign(world, _start(world))
    second = _start(world, "blank")
    html = world.client("injector").get(reverse("charting:session", args=[second.pk])).text
    expiry = first.lot_expiry.strftime("%d/%m/%Y")
    assert f"Use lot C1234AB, expires {expiry}" in html
    assert _fresh(second).lot_number == ""
    response = world.client("injector").post(
        reverse("charting:details", args=[second.pk]),
        {
            "version": second.version,
            "lot_number": "C1234AB",
            "lot_expiry": first.lot_expiry.isoformat(),
        },
        **HX,
    )
    assert response.status_code == 200 and "Use lot" not in response.text
    assert _fresh(second).lot_number == "C1234AB"
    other = _start(world, "blank", product_id="dysport")
    html = world.client("injector").get(reverse("charting:session", args=[other.pk])).text
    assert "Use lot" not in html  # another product's lot is never offered


# --- findings, overrides, signing ------------------------------------------------------------


def _blocked(world):
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
            "treated_on": timezone.localdate() - timedelta(days=30),
        },
    )
    session = _start(
        world,
        "protocol:chronic-migraine-preempt",
        indication="chronic-migraine",
        product_id="botox",
        prescriber=world.users["prescriber"],
    )
    return ready_to_sign(world, session)


def test_a_block_is_shown_with_its_source_and_who_may_override_it(consented):
    world = consented
    session = _blocked(world)
    url = reverse("charting:session", args=[session.pk])
    injector = world.client("injector").get(url).text
    assert "Blocked" in injector and "455 U" in injector and "400 U" in injector
    assert "Source:" in injector and "[S" in injector
    assert "A prescriber can override this with a written reason" in injector
    assert "Override this block" not in injector
    prescriber = world.client("prescriber").get(url).text
    assert "Override this block" in prescriber


def test_override_as_prescriber_works_and_as_injector_is_403(consented):
    world = consented
    session = _blocked(world)
    url = reverse("charting:override", args=[session.pk])
    reason = "Outside dose was 6 weeks ago per letter; discussed risks, patient agrees."
    response = world.client("injector").post(
        url, {"rule": "cumulative-3-month", "reason": reason}, **HX
    )
    assert response.status_code == 403 and Override.objects.count() == 0
    short = world.client("prescriber").post(
        url, {"rule": "cumulative-3-month", "reason": "ok"}, **HX
    )
    assert short.status_code == 422 and "clinical reason" in short.text
    assert Override.objects.count() == 0
    response = world.client("prescriber").post(
        url, {"rule": "cumulative-3-month", "reason": reason}, **HX
    )
    assert response.status_code == 200 and "Overridden" in response.text and reason in response.text
    assert Override.objects.get().by == world.users["prescriber"]
    sign = world.client("injector").post(
        reverse("charting:sign", args=[session.pk]), {"version": _fresh(session).version}, **HX
    )
    assert sign.status_code == 200 and sign["HX-Redirect"] == reverse(
        "charting:session", args=[session.pk]
    )


def test_a_hard_block_says_why_it_cannot_be_overridden(consented):
    world = consented
    session = _start(world, prescriber=world.users["prescriber"])
    session = ready_to_sign(world, session, lot_expiry=timezone.localdate() - timedelta(days=1))
    html = world.client("prescriber").get(reverse("charting:session", args=[session.pk])).text
    assert "This cannot be overridden." in html and "past its expiry" in html
    response = world.client("prescriber").post(
        reverse("charting:override", args=[session.pk]),
        {"rule": "expired-lot", "reason": "We have nothing else in the fridge today."},
        **HX,
    )
    assert response.status_code == 422 and Override.objects.count() == 0


def test_signing_refused_lists_every_reason_beside_the_sign_button(world):
    session = _start(world, "blank")
    before = _state(session)
    response = world.client("injector").post(
        reverse("charting:sign", args=[session.pk]), {"version": session.version}, **HX
    )
    assert response.status_code == 422
    html = response.text
    assert 'id="sign-reasons"' in html
    for reason in (
        "Chart at least one injection point.",
        "Enter the lot number and expiry date of the vial used.",
        "Choose the prescriber of record.",
        "There is no valid cosmetic consent on file for this date.",
    ):
        assert reason in html
    assert _state(session) == before


def test_signing_shows_the_review_date_and_a_touch_up_link(consented):
    world = consented
    session = ready_to_sign(world, _start(world, prescriber=world.users["prescriber"]))
    client = world.client("injector")
    response = client.post(
        reverse("charting:sign", args=[session.pk]), {"version": session.version}, follow=True
    )
    assert response.status_code == 200
    signed = _fresh(session)
    assert signed.status == Status.SIGNED
    due = signed.review_due_on.strftime("%d/%m/%Y")
    assert f"Review due on {due}" in response.text
    touch_up = reverse("charting:start", args=[world.patient.pk]) + f"?follow_up_of={signed.pk}"
    assert touch_up in response.text
    assert "Cosmetic (lines and wrinkles), form version 1" in response.text
    page = client.get(touch_up)
    assert page.status_code == 200 and "Touch-up at the review" in page.text


def test_signing_twice_is_harmless(consented):
    world = consented
    session = ready_to_sign(world, _start(world, prescriber=world.users["prescriber"]))
    client = world.client("injector")
    data = {"version": session.version}
    first = client.post(reverse("charting:sign", args=[session.pk]), data, **HX)
    second = client.post(reverse("charting:sign", args=[session.pk]), data, **HX)
    assert first.status_code == 200 and second.status_code == 409
    assert second["HX-Redirect"] == reverse("charting:session", args=[session.pk])
    assert AuditEvent.objects.filter(action="sign").count() == 1


# --- the signed record -----------------------------------------------------------------------


@pytest.fixture
def signed(consented):
    world = consented
    session = ready_to_sign(world, _start(world, prescriber=world.users["prescriber"]))
    return services.sign(world.actor("injector"), session, session.version)


DRAFT_CHANGES = [
    "point_add",
    "point_update",
    "point_mirror",
    "point_remove",
    "point_restore",
    "details",
    "vial",
    "override",
    "sign",
]


@pytest.mark.parametrize("htmx", [True, False])
def test_a_signed_session_refuses_every_draft_change_url(consented, signed, htmx):
    world = consented
    before = _state(signed)
    headers = HX if htmx else {}
    data = {
        "version": signed.version,
        "units": "40",
        "depth": "SC",
        "lot_number": "FORGED",
        "rule": "session-max",
        "reason": "Forged request from an old page.",
        **PROCERUS,
    }
    urls = _all_urls(signed.pk, world.patient.pk)
    assert set(DRAFT_CHANGES) <= set(urls)
    clients = {role: world.client(role) for role in ("injector", "prescriber")}
    for name in DRAFT_CHANGES:
        role = "prescriber" if name == "override" else "injector"
        response = clients[role].post(urls[name], data, **headers)
        if htmx:
            assert response.status_code == 409, name
            assert response["HX-Redirect"] == urls["session"]
        else:
            assert response.status_code == 302 and response["Location"] == urls["session"], name
    assert _state(signed) == before
    page = clients["injector"].get(urls["session"]).text
    assert "can no longer be changed except by amendment" in page
    assert 'id="workspace"' not in page and "Add point" not in page


def test_the_signed_page_is_read_only_with_amend_and_void_forms(consented, signed):
    world = consented
    html = world.client("injector").get(reverse("charting:session", args=[signed.pk])).text
    assert "Signed" in html and "C1234AB" in html and "20 U" in html
    assert "Version 1" in html and "Checks at signing" in html
    compare, pdf = (reverse(f"charting:{n}", args=[signed.pk]) for n in ("compare", "record"))
    assert f'<a class="button" href="{compare}">Compare with last</a>' in html
    assert f'<a class="button" href="{pdf}">Record (PDF)</a>' in html
    # The void form is in the page; the amendment form is fetched when "Amend" is opened,
    # with a plain link to it for a browser without script.
    amend_url = reverse("charting:amend", args=[signed.pk])
    assert "Void this session" in html and "Amend (units or lot)" in html
    assert f'hx-get="{amend_url}" hx-trigger="toggle from:closest details once"' in html
    assert f'<a href="{amend_url}">Open the amendment form</a>' in html
    assert "Save amendment" not in html and 'name="units_1"' not in html
    assert 'tabindex="0"' not in html and "hx-post" not in html
    auditor = world.client("auditor").get(reverse("charting:session", args=[signed.pk])).text
    assert "Amend (" not in auditor and "Void this session" not in auditor
    assert amend_url not in auditor
    assert world.client("auditor").get(amend_url, HTTP_HX_REQUEST="true").status_code == 403


def _amend_views(session):
    return list(
        AuditEvent.objects.filter(
            object_type="charting.treatmentsession", object_id=str(session.pk), action="view"
        ).values_list("detail__part", flat=True)
    )


def test_opening_amend_fetches_the_form_with_every_point_and_audits_it(consented, signed):
    """htmx asks for the form alone as "Amend" is opened: every point's units as stored, the lot,
    the reason; the form shows clinical data, so the view is audited."""
    world = consented
    url = reverse("charting:amend", args=[signed.pk])
    client = world.client("injector")
    before = _amend_views(signed)
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "HX-Request" in fragment["Vary"]  # one URL, two answers: a cache must tell them apart
    html = fragment.text
    assert "<html" not in html and "<main" not in html  # the form alone
    assert f'<form method="post" action="{url}"' in html and "Save amendment" in html
    for number in range(1, 6):
        assert f'name="units_{number}" value="4"' in html, number
    assert 'name="lot_number" value="C1234AB"' in html and 'name="reason"' in html
    assert len(re.findall(r'name="csrfmiddlewaretoken"', html)) == 1
    assert _amend_views(signed) == [*before, "amendment form"]
    # What the fragment's form sends is an amendment like any other.
    data = {f"units_{n}": "4" for n in range(1, 6)}
    data.update(
        reason="Point 1 was 5 U, typo",
        units_1="5",
        lot_number="C1234AB",
        lot_expiry=signed.lot_expiry.isoformat(),
    )
    assert client.post(url, data).status_code == 302
    assert _fresh(signed).status == Status.AMENDED


def test_without_script_the_amend_link_opens_the_record_with_the_form_open(consented, signed):
    world = consented
    url = reverse("charting:amend", args=[signed.pk])
    page = world.client("injector").get(url)
    assert page.status_code == 200 and "HX-Request" in page["Vary"]
    html = page.text
    assert "Version 1" in html and "Void this session" in html  # the whole record
    assert '<details class="side-box" data-amend open>' in html
    assert "Save amendment" in html and 'name="units_5" value="4"' in html
    assert "Open the amendment form" not in html
    assert _amend_views(signed)[-1] == "record"


def test_the_amendment_form_of_a_draft_or_a_voided_session_is_not_given(consented, signed, world):
    draft = _start(world)
    client = world.client("injector")
    page = client.get(reverse("charting:amend", args=[draft.pk]))
    assert page.status_code == 302 and page["Location"] == reverse(
        "charting:session", args=[draft.pk]
    )
    fragment = client.get(reverse("charting:amend", args=[draft.pk]), HTTP_HX_REQUEST="true")
    assert fragment["HX-Redirect"] == reverse("charting:session", args=[draft.pk])
    assert "units_" not in fragment.text
    services.void(world.actor("injector"), signed, "Charted on the wrong patient")
    voided = client.get(reverse("charting:amend", args=[signed.pk]), HTTP_HX_REQUEST="true")
    assert voided["HX-Redirect"] == reverse("charting:session", args=[signed.pk])


def test_an_amendment_records_the_reason_and_what_changed(consented, signed):
    world = consented
    url = reverse("charting:amend", args=[signed.pk])
    data = {
        "reason": "Point 1 was 5 U, typo",
        "units_1": "5",
        "units_2": "4",
        "units_3": "4",
        "units_4": "4",
        "units_5": "4",
        "lot_number": "C1234AB",
        "lot_expiry": signed.lot_expiry.isoformat(),
    }
    bad = world.client("injector").post(url, {**data, "units_2": "abc"})
    assert bad.status_code == 422 and "is not a number of units" in bad.text
    assert Amendment.objects.count() == 0
    response = world.client("injector").post(url, data, follow=True)
    assert response.status_code == 200
    amended = _fresh(signed)
    assert amended.status == Status.AMENDED and services.totals(amended).total == 21
    html = response.text
    assert "Version 2" in html and "Point 1 was 5 U, typo" in html
    assert "4 U → 5 U" in html and "Total: 20 U → 21 U" in html
    nothing = world.client("injector").post(url, {**data, "reason": "No change at all"})
    assert nothing.status_code == 422 and "Nothing was changed" in nothing.text


def test_voiding_keeps_the_session_visible_struck_through(consented, signed):
    world = consented
    url = reverse("charting:void", args=[signed.pk])
    assert world.client("injector").post(url, {"reason": ""}).status_code == 422
    response = world.client("injector").post(
        url, {"reason": "Charted on the wrong patient"}, follow=True
    )
    assert _fresh(signed).status == Status.VOIDED
    html = response.text
    assert "Voided: entered in error." in html and "Charted on the wrong patient" in html
    assert "is-voided" in html and "Save amendment" not in html
    assert "Status: Signed → Voided" in html


def test_an_abandoned_draft_is_voided_with_a_reason_and_stays_visible(world):
    session = _start(world)
    client = world.client("injector")
    url = reverse("charting:void", args=[session.pk])
    response = client.post(url, {"reason": ""}, follow=True)
    assert "Say why this session was entered in error." in response.text
    assert _fresh(session).status == Status.DRAFT
    response = client.post(url, {"reason": "Patient changed her mind"}, follow=True)
    assert _fresh(session).status == Status.VOIDED
    assert "Patient changed her mind" in response.text and "never signed" in response.text


def test_an_amendment_cannot_be_made_to_a_draft(world):
    session = _start(world)
    before = _state(session)
    response = world.client("injector").post(
        reverse("charting:amend", args=[session.pk]), {"reason": "sneaky", "units_1": "40"}
    )
    assert response.status_code == 302 and _state(session) == before


# --- starting a session ----------------------------------------------------------------------


def test_the_start_page_offers_the_protocols_of_the_product_and_indication(world):
    url = reverse("charting:start", args=[world.patient.pk])
    client = world.client("injector")

    def start_from(params):
        html = client.get(url, params).text
        return html[html.index('id="start-from"') : html.index("</fieldset>")]

    choices = start_from({"indication": "chronic-migraine", "product_id": "botox"})
    assert 'value="blank" checked' in choices
    assert 'value="protocol:chronic-migraine-preempt"' in choices
    assert "31 points, 155 U laid out" in choices
    choices = start_from({"indication": "glabellar-lines", "product_id": "dysport"})
    assert "5 points, 50 U laid out" in choices and "155 U" not in choices
    assert "Botox Cosmetic" not in choices  # never another product's protocol
    assert "Repeat last treatment" not in client.get(url).text  # nothing signed yet


def test_start_from_a_protocol_with_one_tap(world):
    response = world.client("prescriber").post(
        reverse("charting:start", args=[world.patient.pk]),
        {
            "quick": "protocol:chronic-migraine-preempt",
            "treated_on": timezone.localdate().isoformat(),
        },
    )
    session = TreatmentSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("charting:session", args=[session.pk])
    assert (session.product_id, session.indication) == ("botox", "chronic-migraine")
    assert session.prescriber == world.users["prescriber"]
    t = services.totals(session)
    assert (t.points, t.total) == (31, Decimal(155))


def test_start_from_the_form_and_refuse_a_protocol_of_another_product(world):
    url = reverse("charting:start", args=[world.patient.pk])
    client = world.client("injector")
    data = {
        "indication": "glabellar-lines",
        "product_id": "dysport",
        "treated_on": timezone.localdate().isoformat(),
        "prescriber": world.users["prescriber"].pk,
        "start_from": GLABELLAR,
    }
    response = client.post(url, data)
    assert response.status_code == 422 and "Units are not interchangeable" in response.text
    assert not TreatmentSession.objects.exists()
    response = client.post(url, {**data, "start_from": "protocol:glabellar-lines-dysport"})
    assert response.status_code == 302
    assert services.totals(TreatmentSession.objects.get()).total == 50
    future = client.post(url, {**data, "treated_on": "2999-01-01", "start_from": "blank"})
    assert future.status_code == 422 and "future date" in future.text
    unborn = client.post(url, {**data, "treated_on": "1980-01-01", "start_from": "blank"})
    assert unborn.status_code == 422 and "before the patient&#x27;s date of birth" in unborn.text
    assert TreatmentSession.objects.count() == 1


def test_repeat_last_treatment_in_one_tap(consented, signed):
    world = consented
    url = reverse("charting:start", args=[world.patient.pk])
    html = world.client("injector").get(url).text
    assert "Repeat last treatment" in html
    response = world.client("injector").post(
        url, {"quick": "repeat", "treated_on": timezone.localdate().isoformat()}
    )
    assert response.status_code == 302
    again = TreatmentSession.objects.exclude(pk=signed.pk).get()
    assert services.totals(again).total == 20 and again.prescriber == signed.prescriber


def test_a_touch_up_of_another_organizations_session_is_404(world):
    theirs = _outsider_session(world)
    response = world.client("injector").get(
        reverse("charting:start", args=[world.patient.pk]), {"follow_up_of": theirs.pk}
    )
    assert response.status_code == 404


def test_injection_points_are_never_deleted_through_the_pages(world):
    session = _start(world)
    world.client("injector").post(
        reverse("charting:point_remove", args=[session.pk, 1]), {"version": session.version}
    )
    assert InjectionPoint.objects.filter(session=session).count() == 5
