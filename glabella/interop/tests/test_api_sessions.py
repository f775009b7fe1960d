"""The dose check and treatment sessions through the API, with tokens only: the chairside
flow (patient -> dose check -> session -> sign), a blocked dose refused at sign, overrides,
the version guard and the lock of a signed session."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from glabella.audit.models import AuditEvent
from glabella.charting.models import InjectionPoint, Override, Status, TreatmentSession
from glabella.consent import services as consent_services
from glabella.interop.tests.helpers import api_client
from glabella.patients.models import Patient
from glabella.testing import signature_png

LOT = {"lot_number": "C1234AB", "lot_expiry": (date.today() + timedelta(days=200)).isoformat()}


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def glabellar(units=4):
    """The Botox Cosmetic glabellar pattern: 2 per corrugator and the procerus."""
    return [
        {"area": "glabella", "muscle": "corrugator", "side": "R", "units": units},
        {"area": "glabella", "muscle": "corrugator", "side": "R", "units": units,
         "diagram": "face-front", "x": 38, "y": 28},
        {"area": "glabella", "muscle": "corrugator", "side": "L", "units": units},
        {"area": "glabella", "muscle": "corrugator", "side": "L", "units": units,
         "diagram": "face-front", "x": 62, "y": 28},
        {"area": "glabella", "muscle": "procerus", "side": "mid", "units": units},
    ]  # fmt: skip


def consent(world, patient, category="cosmetic"):
    """The patient signs the consent on the clinic's tablet (the consent page; not an API)."""
    consent_services.ensure_default_templates(world.org)
    consent_services.take_consent(
        world.actor("injector"),
        patient,
        category,
        method="drawn",
        signature_png=signature_png(),
        read_confirmed=True,
    )


def _counts():
    return (
        TreatmentSession.objects.count(),
        InjectionPoint.objects.count(),
        Override.objects.count(),
        AuditEvent.objects.count(),
    )


# --- the dose check --------------------------------------------------------------------------


def test_dose_check_gives_findings_and_totals_and_writes_nothing(world):
    client = api_client(world, "injector")
    before = _counts()
    r = post(
        client,
        "/api/v1/dose-check",
        {
            "patient": world.patient.pk,
            "product": "botox_cosmetic",
            "indication": "glabellar-lines",
            "points": glabellar(),
        },
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["blocked"] is False
    assert not [f for f in body["findings"] if f["severity"] == "block"]
    (totals,) = body["totals"]
    assert totals == {
        "product": "botox_cosmetic",
        "brand": "Botox Cosmetic",
        "total": "20.00",
        "points": 5,
        "by_area": {"glabella": "20.00"},
        "by_side": {"Right": "8.00", "Left": "8.00", "Midline": "4.00"},
    }
    assert _counts() == before  # no row, no audit event


def test_dose_check_blocks_with_the_rule_message_and_source(world):
    client = api_client(world, "injector")
    r = post(
        client,
        "/api/v1/dose-check",
        {
            "patient": world.patient.pk,
            "product": "botox_cosmetic",
            "indication": "glabellar-lines",
            "points": glabellar(84),
        },
    )
    body = r.json()
    assert body["blocked"] is True
    block = next(f for f in body["findings"] if f["rule"] == "cumulative-3-month")
    assert block["severity"] == "block"
    assert "420" in block["message"] and "400" in block["message"]
    assert "S2" in block["source_ids"] and "label" in block["source"]
    assert block["limit"] == "400" and block["value"] == "420.00"


def test_dose_check_counts_treatment_elsewhere_and_mixing(world):
    client = api_client(world, "injector")
    post(
        client,
        f"/api/v1/patients/{world.patient.pk}/history",
        {
            "kind": "outside_treatment",
            "code": "toxin",
            "treated_on": (date.today() - timedelta(days=30)).isoformat(),
            "product_id": "botox",
            "units": 390,
            "area": "neck",
            "indication": "cervical-dystonia",
        },
    )
    plan = {
        "patient": world.patient.pk,
        "product": "botox_cosmetic",
        "indication": "glabellar-lines",
        "points": glabellar(),
    }
    rules = {f["rule"] for f in post(client, "/api/v1/dose-check", plan).json()["findings"]}
    assert "cumulative-3-month" in rules
    plan["points"][0]["product"] = "dysport"
    body = post(client, "/api/v1/dose-check", plan).json()
    assert "product-mixing" in {f["rule"] for f in body["findings"]}
    assert [t["product"] for t in body["totals"]] == ["botox_cosmetic", "dysport"]
    assert body["totals"][1]["total"] == "4.00"


@pytest.mark.parametrize(
    ("units", "words"),
    [
        ("twenty", "Units must be a number, for example 2.5 — not text."),
        ("20", "Units must be a number, for example 2.5 — not text."),
        ("2.5", "not text"),
        ("", "not text"),
        (True, "Units must be a number"),
        (None, "Units must be a number"),
        ([4], "Units must be a number"),
        ({"value": 4}, "Units must be a number"),
        (0, "Units must be more than zero."),
        (-4, "more than zero"),
        (-0.01, "more than zero"),
        (2.555, "at most 2 decimal places"),
        (0.001, "at most 2 decimal places"),
        (10000.01, "not a plausible dose"),
        (1e300, "not a plausible dose"),
        (10**30, "not a plausible dose"),
    ],
)
def test_dose_check_refuses_units_that_are_not_a_dose(world, units, words):
    client = api_client(world, "injector")
    points = glabellar()
    points[2]["units"] = units
    body = {
        "patient": world.patient.pk,
        "product": "botox",
        "indication": "glabellar-lines",
        "points": points,
    }
    r = post(client, "/api/v1/dose-check", body)
    assert r.status_code == 422, r.content
    assert r.json()["field"] == "points[2].units"
    assert words in r.json()["errors"][0]["message"]
    assert words in r.json()["message"]


@pytest.mark.parametrize(
    ("literal", "words"),
    [("1e400", "not a plausible dose"), ("-1e400", "more than zero"), ("NaN", "ordinary")],
)
def test_units_beyond_what_a_float_holds_are_refused_in_words(world, literal, words):
    # JSON text a client might send (Python reads 1e400 as infinity, NaN as not-a-number).
    client = api_client(world, "injector")
    points = glabellar()
    points[2]["units"] = 4321  # a stand-in, replaced by the literal in the JSON text
    body = {
        "patient": world.patient.pk,
        "product": "botox",
        "indication": "glabellar-lines",
        "points": points,
    }
    text = json.dumps(body).replace("4321", literal)
    r = client.post("/api/v1/dose-check", text, content_type="application/json")
    assert r.status_code == 422, r.content
    assert r.json()["field"] == "points[2].units"
    assert words in r.json()["message"]


def test_dose_check_takes_json_numbers_and_adds_them_exactly(world):
    """0.1 + 0.2 is 0.30 here, not 0.30000000000000004: units become Decimal through their
    text, and answers carry them as exact decimal strings."""
    client = api_client(world, "injector")
    points = glabellar()
    for point, units in zip(points, (0.1, 0.2, 2.5, 2.50, 4), strict=True):
        point["units"] = units
    r = post(
        client,
        "/api/v1/dose-check",
        {
            "patient": world.patient.pk,
            "product": "botox_cosmetic",
            "indication": "glabellar-lines",
            "points": points,
        },
    )
    assert r.status_code == 200, r.content
    (totals,) = r.json()["totals"]
    assert totals["total"] == "9.30"
    assert totals["by_side"] == {"Right": "0.30", "Left": "5.00", "Midline": "4.00"}


def test_one_ceiling_for_every_product_and_the_products_own_check_after_it(world):
    """The API's one ceiling (the largest vial of any product, from the clinical core) lets a
    Myobloc dose through: thousands of units at one point. Whether a figure suits the product
    is the services' and the dose check's to say, not the schema's."""
    client = api_client(world, "injector")
    plan = {
        "patient": world.patient.pk,
        "product": "myobloc",
        "indication": "cervical-dystonia",
        "points": [
            {"area": "neck", "muscle": "sternocleidomastoid", "side": "R", "units": 2500},
            {"area": "neck", "muscle": "splenius capitis", "side": "L", "units": 10000},
        ],
    }
    r = post(client, "/api/v1/dose-check", plan)
    assert r.status_code == 200, r.content
    assert r.json()["totals"][0]["total"] == "12500.00"
    plan["points"][1]["units"] = 10000.01
    r = post(client, "/api/v1/dose-check", plan)
    assert r.status_code == 422 and r.json()["field"] == "points[1].units"


def test_dose_check_refuses_unknown_products_and_indications_and_front_desk(world):
    client = api_client(world, "injector")
    base = {"patient": world.patient.pk, "points": glabellar()}
    r = post(client, "/api/v1/dose-check", {**base, "product": "botux", "indication": "x"})
    assert r.status_code == 422
    assert {p["field"] for p in r.json()["errors"]} == {"product", "indication"}
    desk = api_client(world, "front_desk")
    plan = {**base, "product": "botox", "indication": "glabellar-lines"}
    assert post(desk, "/api/v1/dose-check", plan).status_code == 403


# --- the chairside flow ----------------------------------------------------------------------


def test_chairside_flow_with_tokens_and_a_blocked_dose_refused_at_sign(world):
    desk = api_client(world, "front_desk")
    injector = api_client(world, "injector")
    # The front desk registers the patient.
    r = post(
        desk,
        "/api/v1/patients",
        {
            "given_name": "Hedy",
            "family_name": "Lamarr",
            "date_of_birth": "1984-11-09",
            "sex": "female",
            "email": "hedy@example.org",
        },
    )
    assert r.status_code == 201, r.content
    patient_id = r.json()["id"]
    consent(world, Patient.objects.get(pk=patient_id))
    plan = {
        "patient": patient_id,
        "product": "botox_cosmetic",
        "indication": "glabellar-lines",
        "points": glabellar(),
    }
    # The injector checks the plan, then charts it as a draft.
    check = post(injector, "/api/v1/dose-check", plan)
    assert check.status_code == 200 and check.json()["blocked"] is False
    r = post(
        injector,
        "/api/v1/sessions",
        {**plan, "prescriber_email": "prescriber@alpha.test", **LOT},
    )
    assert r.status_code == 201, r.content
    draft = r.json()
    assert draft["status"] == "draft" and draft["totals"]["total"] == "20.00"
    assert [p["units"] for p in draft["points"]] == ["4.00"] * 5
    assert draft["points"][1]["x"] == "38.00" and draft["points"][1]["muscle"] == "corrugator"
    assert draft["blocking"] == []
    # ... and signs it.
    r = post(injector, f"/api/v1/sessions/{draft['id']}/sign", {"version": draft["version"]})
    assert r.status_code == 200, r.content
    signed = r.json()
    assert signed["status"] == "signed" and signed["signed_by"] == "injector@alpha.test"
    assert {f["rule"] for f in signed["findings"]} == {f["rule"] for f in check.json()["findings"]}
    listed = injector.get(f"/api/v1/patients/{patient_id}/sessions").json()
    assert [(s["id"], s["status"], s["total"]) for s in listed] == [
        (draft["id"], "signed", "20.00")
    ]

    # The same day, a plan that would exceed the label's 400 U in 3 months.
    blocked_plan = {**plan, "points": glabellar(80)}
    check = post(injector, "/api/v1/dose-check", blocked_plan).json()
    assert check["blocked"] is True
    r = post(
        injector,
        "/api/v1/sessions",
        {**blocked_plan, "prescriber_email": "prescriber@alpha.test", **LOT},
    )
    assert r.status_code == 201, r.content  # a draft may hold a blocked plan ...
    second = r.json()
    assert "cumulative-3-month" in {f["rule"] for f in second["blocking"]}
    r = post(injector, f"/api/v1/sessions/{second['id']}/sign", {"version": second["version"]})
    assert r.status_code == 422, r.content  # ... it cannot be signed.
    refused = r.json()
    assert refused["message"].startswith("Not signed:")
    assert "cumulative-3-month" in {f["rule"] for f in refused["blocking"]}
    assert any("420" in reason for reason in refused["reasons"])
    assert refused["errors"] and all(e["message"] for e in refused["errors"])
    again = injector.get(f"/api/v1/sessions/{second['id']}").json()
    assert again["status"] == "draft" and again["version"] == second["version"]
    assert TreatmentSession.objects.filter(status=Status.SIGNED).count() == 1


# --- sessions: the rest ----------------------------------------------------------------------


def _draft(world, client, points=None, **extra):
    r = post(
        client,
        "/api/v1/sessions",
        {
            "patient": world.patient.pk,
            "product": "botox_cosmetic",
            "indication": "glabellar-lines",
            "prescriber_email": "prescriber@alpha.test",
            "points": glabellar() if points is None else points,
            **LOT,
            **extra,
        },
    )
    assert r.status_code == 201, r.content
    return r.json()


def test_a_refused_point_refuses_the_whole_session(world):
    client = api_client(world, "injector")
    before = _counts()
    points = glabellar()
    points[3]["x"] = 1  # outside every muscle region
    points[3]["y"] = 1
    r = post(
        client,
        "/api/v1/sessions",
        {
            "patient": world.patient.pk,
            "product": "botox_cosmetic",
            "indication": "glabellar-lines",
            "points": points,
        },
    )
    assert r.status_code == 422
    assert r.json()["field"] == "points[3].x" and "outside the marked" in r.json()["message"]
    points = glabellar()
    points[0]["muscle"] = "biceps brachii"
    points[0]["area"] = "arm"
    r = post(
        client,
        "/api/v1/sessions",
        {"patient": world.patient.pk, "product": "botox", "indication": "other", "points": points},
    )
    assert r.status_code == 422 and r.json()["field"] == "points[0].muscle"
    future = (date.today() + timedelta(days=2)).isoformat()
    r = post(
        client,
        "/api/v1/sessions",
        {
            "patient": world.patient.pk,
            "product": "botox",
            "indication": "glabellar-lines",
            "date": future,
            "points": glabellar(),
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "date"
    r = post(
        client,
        "/api/v1/sessions",
        {
            "patient": world.patient.pk,
            "product": "botox",
            "indication": "glabellar-lines",
            "prescriber_email": "injector@alpha.test",
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "prescriber_email"
    assert _counts() == before


def test_a_protocol_can_be_laid_out_and_points_added_with_the_version(world):
    client = api_client(world, "injector")
    draft = _draft(world, client, points=[], protocol="glabellar-lines-botox-cosmetic")
    assert draft["protocol"] == "glabellar-lines-botox-cosmetic"
    assert draft["totals"]["total"] == "20.00"
    url = f"/api/v1/sessions/{draft['id']}/points"
    extra = [{"area": "forehead", "muscle": "frontalis", "side": "mid", "units": 2}]
    r = post(client, url, {"version": draft["version"], "points": extra})
    assert r.status_code == 200, r.content
    grown = r.json()
    assert grown["totals"]["total"] == "22.00" and grown["version"] > draft["version"]
    assert grown["points"][-1]["number"] == 6
    # The old version is stale: 409, with the current one.
    r = post(client, url, {"version": draft["version"], "points": extra})
    assert r.status_code == 409 and r.json()["current_version"] == grown["version"]
    # A refused point among good ones: none are added.
    bad = [extra[0], {**extra[0], "units": 600}]
    r = post(client, url, {"version": grown["version"], "points": bad})
    assert r.status_code == 422 and r.json()["field"] == "points[1].units"
    assert client.get(f"/api/v1/sessions/{draft['id']}").json()["totals"]["total"] == "22.00"


def test_reading_a_session_is_audited_and_scoped(world):
    injector = api_client(world, "injector")
    draft = _draft(world, injector)
    auditor = api_client(world, "auditor")
    r = auditor.get(f"/api/v1/sessions/{draft['id']}")
    assert r.status_code == 200 and r.json()["id"] == draft["id"]
    seen = AuditEvent.objects.filter(action="view", object_id=str(draft["id"])).order_by("seq")
    assert seen.last().actor == world.users["auditor"] and seen.last().detail["part"] == "api"
    assert api_client(world, "front_desk").get(f"/api/v1/sessions/{draft['id']}").status_code == 403
    assert api_client(world, "outsider").get(f"/api/v1/sessions/{draft['id']}").status_code == 404
    assert post(auditor, f"/api/v1/sessions/{draft['id']}/sign", {"version": 1}).status_code == 403


def test_a_prescriber_overrides_a_block_with_a_reason_then_it_signs(world):
    consent(world, world.patient)
    injector = api_client(world, "injector")
    draft = _draft(world, injector, points=glabellar(84))
    url = f"/api/v1/sessions/{draft['id']}/overrides"
    body = {"rule": "cumulative-3-month", "reason": "Dose agreed with the consultant; see notes."}
    assert post(injector, url, body).status_code == 403  # injectors do not override
    prescriber = api_client(world, "prescriber")
    r = post(prescriber, url, {**body, "reason": "ok"})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = post(prescriber, url, {**body, "rule": "no-such-rule"})
    assert r.status_code == 422
    r = post(prescriber, url, body)
    assert r.status_code == 201, r.content
    overridden = r.json()
    assert overridden["overrides"][0]["by"] == "prescriber@alpha.test"
    assert "cumulative-3-month" not in {f["rule"] for f in overridden["blocking"]}
    r = post(injector, f"/api/v1/sessions/{draft['id']}/sign", {"version": overridden["version"]})
    assert r.status_code == 200, r.content


def test_a_signed_session_cannot_change_through_the_api(world):
    consent(world, world.patient)
    client = api_client(world, "injector")
    draft = _draft(world, client)
    signed = post(client, f"/api/v1/sessions/{draft['id']}/sign", {"version": draft["version"]})
    assert signed.status_code == 200
    version = signed.json()["version"]
    more = [{"area": "forehead", "muscle": "frontalis", "side": "mid", "units": 2}]
    r = post(client, f"/api/v1/sessions/{draft['id']}/points", {"version": version, "points": more})
    assert r.status_code == 409 and "amendment" in r.json()["message"]
    r = post(client, f"/api/v1/sessions/{draft['id']}/sign", {"version": version})
    assert r.status_code == 409
    r = post(
        api_client(world, "prescriber"),
        f"/api/v1/sessions/{draft['id']}/overrides",
        {"rule": "session-max", "reason": "A long enough reason for the record."},
    )
    assert r.status_code == 409
    assert InjectionPoint.objects.filter(session_id=draft["id"]).count() == 5


def test_impossible_days_are_refused_not_a_server_error(world):
    client = api_client(world, "injector")
    before = _counts()
    base = {
        "patient": world.patient.pk,
        "product": "botox",
        "indication": "glabellar-lines",
        "points": glabellar(),
    }
    for day, words in (
        ("0001-01-01", "between 1900 and 2199"),
        ("1985-12-09", "before the patient was born"),  # the day before Ada's birth
        ("9999-12-31", "between 1900 and 2199"),
        ((date.today() + timedelta(days=400)).isoformat(), "a year ahead"),
    ):
        r = post(client, "/api/v1/dose-check", {**base, "date": day})
        assert r.status_code == 422, (day, r.content)
        assert r.json()["field"] == "date" and words in r.json()["message"]
    ahead = (date.today() + timedelta(days=60)).isoformat()
    assert post(client, "/api/v1/dose-check", {**base, "date": ahead}).status_code == 200
    r = post(client, "/api/v1/sessions", {**base, "date": "0001-01-01"})
    assert r.status_code == 422 and r.json()["field"] == "date"
    assert _counts() == before


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_a_session_without_a_date_is_dated_on_the_clinics_day(world, zone):
    """At any hour one of the two zones is on another day than UTC (see test_sessions)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    world.clinic.timezone = zone
    world.clinic.save(update_fields=["timezone"])
    consent(world, world.patient)
    r = post(
        api_client(world, "injector"),
        "/api/v1/sessions",
        {
            "patient": world.patient.pk,
            "product": "botox_cosmetic",
            "indication": "glabellar-lines",
            "points": glabellar(),
            "prescriber_email": "prescriber@alpha.test",
            **LOT,
        },
    )
    assert r.status_code == 201, r.content
    assert r.json()["date"] == datetime.now(UTC).astimezone(ZoneInfo(zone)).date().isoformat()
