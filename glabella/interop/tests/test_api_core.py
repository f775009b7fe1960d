"""The API's shared behaviour: one JSON error shape with words a person can act on, the
status codes, the reference data, the OpenAPI document and the offline docs page."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest

from glabella.clinical import catalogue, protocols
from glabella.interop.tests.helpers import api_client
from glabella.interop.tests.test_api_fuzz import seed

SHAPE = {"message", "field", "errors"}


def post(client, url, body, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **extra)


def error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= SHAPE, body
    assert body["message"] and body["message"][0].isupper()
    return body


# --- errors ----------------------------------------------------------------------------------


def test_malformed_json_is_a_400_in_words(world):
    client = api_client(world, "injector")
    for bad in ("{not json", '{"patient": 1,}', "\x00", b"\xff\xfe"):
        body = error(post(client, "/api/v1/dose-check", bad), 400)
        assert "not valid JSON" in body["message"]


def test_a_body_that_is_not_an_object_or_is_missing_is_a_422(world):
    client = api_client(world, "injector")
    body = error(post(client, "/api/v1/dose-check", "[1, 2]"), 422)
    assert "JSON object" in body["message"]
    body = error(post(client, "/api/v1/dose-check", ""), 422)
    assert "JSON body" in body["message"]


def test_wrong_types_unknown_and_missing_fields_name_their_field(world):
    client = api_client(world, "injector")
    body = error(
        post(
            client,
            "/api/v1/dose-check",
            {
                "patient": "Ada",
                "product": "botox",
                "indication": "glabellar-lines",
                "colour": "blue",
                "points": [
                    {"area": "glabella", "muscle": "procerus", "side": "mid", "units": 4},
                    {"area": "glabella", "muscle": "procerus", "side": "mid", "units": 4},
                    {"area": "glabella", "muscle": "procerus", "side": "middle"},
                ],
            },
        ),
        422,
    )
    problems = {p["field"]: p["message"] for p in body["errors"]}
    assert problems["patient"] == "Enter a whole number."
    assert "not known" in problems["colour"]
    assert problems["points[2].units"] == "This is required."
    assert problems["points[2].side"].startswith("Choose one of: L, R")
    assert body["field"] in problems
    assert "Nothing was saved" in body["message"]


def test_unknown_query_parameters_are_harmless(world):
    client = api_client(world, "owner")
    r = client.get("/api/v1/patients?name=ada&colour=blue&utm_source=x")
    assert r.status_code == 200 and r.json()["count"] == 1


def test_bad_query_values_and_ids_are_422_or_404_never_500(world):
    client = api_client(world, "owner")
    body = error(client.get("/api/v1/patients?limit=0"), 422)
    assert body["field"] == "limit" and "at least 1" in body["message"]
    assert "Nothing was saved" not in body["message"]  # a read saves nothing anyway
    error(client.get("/api/v1/patients?limit=abc"), 422)
    error(client.get("/api/v1/patients?offset=-1"), 422)
    error(client.get("/api/v1/patients/0"), 422)
    error(client.get("/api/v1/patients/99999999999999999999999"), 422)
    error(client.get("/api/v1/patients/abc"), 422)
    body = error(client.get("/api/v1/patients/123456789"), 404)
    assert "no such record in your organization" in body["message"]
    error(client.get("/api/v1/sessions/123456789"), 404)
    error(client.get("/api/v1/protocols/no-such-protocol"), 404)


def test_text_with_nul_or_broken_characters_is_refused_in_words(world):
    client = api_client(world, "front_desk")
    body = error(
        post(
            client,
            "/api/v1/patients",
            {"given_name": "Ad\u0000a", "family_name": "Byron", "date_of_birth": "1990-01-01"},
        ),
        422,
    )
    assert body["field"] == "given_name" and "control character" in body["message"]
    body = error(client.get("/api/v1/patients?name=%00ada"), 422)  # a query, the same rule
    assert body["field"] == "name" and "control character" in body["message"]


def test_role_refusal_is_a_403_and_another_orgs_record_a_404(world):
    desk = api_client(world, "front_desk")
    body = error(
        post(
            desk,
            "/api/v1/sessions",
            {"patient": world.patient.pk, "product": "botox", "indication": "glabellar-lines"},
        ),
        403,
    )
    assert body["message"] == "Your role does not allow this."
    injector = api_client(world, "injector")
    body = error(
        post(
            injector,
            "/api/v1/dose-check",
            {
                "patient": world.outsider_patient.pk,
                "product": "botox",
                "indication": "glabellar-lines",
                "points": [],
            },
        ),
        404,
    )
    assert body["field"] == "patient"


# --- reference data --------------------------------------------------------------------------


def test_products_come_from_the_core_with_their_sources(world):
    products = api_client(world, "auditor").get("/api/v1/products").json()
    assert [p["id"] for p in products] == [p.id for p in catalogue.products()]
    dysport = next(p for p in products if p["id"] == "dysport")
    assert dysport["units_not_interchangeable"] is True
    assert dysport["vial_units"] == list(catalogue.product("dysport").vial_units)
    assert dysport["sources"] and all(s["id"] and s["citation"] for s in dysport["sources"])


def test_protocols_list_and_one_with_its_sites_and_sources(world):
    client = api_client(world, "front_desk")
    listed = client.get("/api/v1/protocols").json()
    assert {p["id"] for p in listed} == set(protocols.ids())
    one = client.get("/api/v1/protocols/glabellar-lines-botox-cosmetic").json()
    assert one["total_units"] == "20.00" and one["product_ids"] == ["botox_cosmetic"]
    assert len(one["sites"]) == 5 and {s["units"] for s in one["sites"]} == {"4.00"}
    assert one["sites"][0]["diagram"] == "face-front"
    assert {s["id"] for s in one["sources"]} >= {"S1", "S2"}
    preempt = client.get("/api/v1/protocols/chronic-migraine-preempt").json()
    assert preempt["total_units"] == "155.00" and preempt["max_total_units"] == "195.00"


# --- the OpenAPI document and the docs page --------------------------------------------------


def test_openapi_describes_every_operation_with_its_error_answers(world):
    doc = api_client(world, "owner").get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    mine = [
        ("/api/v1/products", "get"),
        ("/api/v1/protocols", "get"),
        ("/api/v1/protocols/{protocol_id}", "get"),
        ("/api/v1/patients", "get"),
        ("/api/v1/patients", "post"),
        ("/api/v1/patients/{patient_id}", "get"),
        ("/api/v1/patients/{patient_id}", "patch"),
        ("/api/v1/patients/{patient_id}/history", "get"),
        ("/api/v1/patients/{patient_id}/history", "post"),
        ("/api/v1/patients/{patient_id}/sessions", "get"),
        ("/api/v1/dose-check", "post"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/sessions/{session_id}", "get"),
        ("/api/v1/sessions/{session_id}/points", "post"),
        ("/api/v1/sessions/{session_id}/overrides", "post"),
        ("/api/v1/sessions/{session_id}/sign", "post"),
    ]
    for path, method in mine:
        op = doc["paths"][path][method]
        assert {"401", "403", "404", "422"} <= set(op["responses"]), (path, method)
        assert op.get("security"), (path, method)
    sign = doc["paths"]["/api/v1/sessions/{session_id}/sign"]["post"]["responses"]
    refused = sign["422"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"reasons", "blocking"} <= set(doc["components"]["schemas"][refused]["properties"])
    # Units: a JSON number in, within one ceiling for every product; an exact string out.
    units = doc["components"]["schemas"]["PointIn"]["properties"]["units"]
    assert units["type"] == "number" and units["exclusiveMinimum"] == 0
    assert units["maximum"] == 10000 >= max(max(p.vial_units) for p in catalogue.products())
    assert doc["components"]["schemas"]["PointOut"]["properties"]["units"]["type"] == "string"


@pytest.mark.browser
def test_docs_page_renders_the_operations_offline(live_world, live_server, page):
    outside: list[str] = []
    base = urlparse(live_server.url)

    def watch(request):
        host = urlparse(request.url)
        if host.scheme in ("http", "https") and host.netloc != base.netloc:
            outside.append(request.url)

    page.on("request", watch)
    page.goto(f"{live_server.url}/api/v1/docs")
    page.get_by_text("/api/v1/dose-check").first.wait_for()
    assert page.get_by_text("/api/v1/sessions/{session_id}/sign").count() >= 1
    assert page.locator(".opblock").count() >= 16
    assert outside == [], outside


# --- one rule for units, wherever they are sent ----------------------------------------------

UNITS_AS_TEXT = "Units must be a number, for example 2.5 — not text."


def test_units_follow_one_rule_in_every_body_that_takes_them(world):
    """The dose check, a session's points, an outside treatment and a vial's waste: text is
    refused in the same words, naming the field; nothing is written."""
    real = seed(world)
    injector = api_client(world, "injector")
    point = {"area": "forehead", "muscle": "frontalis", "side": "mid"}
    plan = {"patient": world.patient.pk, "product": "botox", "indication": "forehead-lines"}
    outside = {
        "kind": "outside_treatment",
        "code": "toxin",
        "treated_on": "2024-01-10",
        "product_id": "botox",
        "area": "forehead",
    }
    sends = [
        (
            "/api/v1/dose-check",
            lambda u: {**plan, "points": [{**point, "units": u}]},
            "points[0].units",
        ),
        (
            "/api/v1/sessions",
            lambda u: {**plan, "points": [{**point, "units": u}]},
            "points[0].units",
        ),
        (
            f"/api/v1/sessions/{real['session_id']}/points",
            lambda u: {"version": 1, "points": [{**point, "units": u}]},
            "points[0].units",
        ),
        (
            f"/api/v1/patients/{world.patient.pk}/history",
            lambda u: {**outside, "units": u},
            "units",
        ),
        (
            f"/api/v1/vials/{real['vial_id']}/waste",
            lambda u: {"units": u, "reason": "spilt"},
            "units",
        ),
    ]
    for url, body, field in sends:
        for text in ("20", "twenty", "2.5"):
            got = error(post(injector, url, body(text)), 422)
            assert (got["field"], got["errors"][0]["message"]) == (field, UNITS_AS_TEXT), url
        for number, words in ((0, "more than zero"), (1.001, "2 decimal places")):
            got = error(post(injector, url, body(number)), 422)
            assert got["field"] == field and words in got["message"], (url, got)
        got = error(post(injector, url, body(10000.5)), 422)
        assert "not a plausible dose" in got["message"] and "10000" in got["message"], url
    assert injector.get(f"/api/v1/vials/{real['vial_id']}").json()["units_left"] == "100.00"
    assert injector.get(f"/api/v1/patients/{world.patient.pk}/history").json() == []
