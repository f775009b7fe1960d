"""The authorization matrix: every URL of Glabella and every API operation, with who may use it.

This is a table, not a test (the walk is test_authz_matrix.py). A new URL or API operation
without an entry here fails that test; so does an entry for one that no longer exists.

Each entry says what the URL needs (``Rule.need``):

- ``PUBLIC``: anyone, signed in or not (health check, sign-in page, API schema).
- ``SIGNED_IN``: any signed-in member, whatever the role (the two-step pages, password).
- a permission of glabella/accounts/roles.py (``"patient.view_contact"``...): the roles that
  have it get the page (200, a redirect, 405 for a GET of a POST-only view, 400/422 for an
  empty form), the others a 403; not signed in: a redirect to the sign-in page.
- ``OPEN_BREAK_GLASS``: the user holding an open break-glass access to the patient; a role
  that may see clinical records anyway is sent to the ordinary record (302); others: 403.
- ``NOWHERE_PAGE``: an address that is no page (404 for everyone, signed in or not).
- ``PORTAL_LINK``: the patient's own pages: the secret link in the URL is the key.
- ``PUBLIC_TOKEN``: a secret token in the URL (calendar feed, reminder opt-out).
- for the API and FHIR: ``"token + <permission>"`` (a personal API token whose role has the
  permission; no token: 401), ``TOKEN`` (any valid token: reference data).

``ids`` names the object each URL argument refers to (keys of the world built by
test_authz_matrix.build_world): an outsider (a member of another organization whose own
role has the permission) asking for our object gets a 404, never a 403 nor the object.
``hidden`` lists roles answered 404 on purpose (a record that is someone else's own: say why
in ``note``). ``methods``: "get", "post" or both (a view that answers only POST is listed
"post": a GET is a 405 before any check); a POST is sent empty, or with ``form`` (a page's
fields that locate a record, like the clinic of a lot) or ``body`` (the API's JSON, valid
for the schema so that the role check is reached). ``post_need``: the POST needs more than
the GET. ``anonymous``: the answer to no one signed in (default: the sign-in page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PUBLIC = "public"
SIGNED_IN = "signed-in"
OPEN_BREAK_GLASS = "open break-glass of this user"
PORTAL_LINK = "portal link"
PUBLIC_TOKEN = "secret token in the URL"
TOKEN = "token"
NOWHERE_PAGE = "no page: not found for everyone"

# Keys of the world that are values, not records of an organization: an outsider asking with
# them sees their own organization's page (a 404 is expected only for ids of our records).
VALUES = frozenset(
    {
        "consent_category",
        "message_kind",
        "message_channel",
        "scale_id",
        "elsewhere",
        "bulk_file_name",
        "protocol_id",
    }
)


@dataclass(frozen=True)
class Rule:
    need: str
    methods: tuple[str, ...] = ("get",)
    ids: dict[str, str] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    body: dict[str, Any] | None = None
    post_need: str | None = None
    anonymous: str | int = "login"
    form: dict[str, Any] | None = None
    note: str = ""


GET, POST, BOTH = ("get",), ("post",), ("get", "post")
P = {"pk": "patient"}

# --- pages: URL name (namespace:name) -> rule ----------------------------------------------------

PAGES: dict[str, Rule] = {
    "healthz": Rule(PUBLIC),
    # accounts
    "accounts:login": Rule(PUBLIC),
    "accounts:logout": Rule(PUBLIC, POST, note="signing out needs no permission"),
    "accounts:switch_clinic": Rule(
        "patient.view_contact", POST, {"clinic_id": "clinic"}, note="a clinic of one's own"
    ),
    "accounts:settings": Rule("patient.view_contact", BOTH),
    "accounts:revoke_token": Rule(
        "patient.view_contact",
        POST,
        {"token_id": "token"},
        hidden=frozenset({"prescriber", "injector", "front_desk", "auditor"}),
        note="the owner's own token: for anyone else it is not found",
    ),
    "accounts:still_here": Rule(
        SIGNED_IN, GET, anonymous=401, note="the idle timer's ping: 204 signed in, else 401"
    ),
    "accounts:mfa_verify": Rule(SIGNED_IN, BOTH, note="reachable with only the password passed"),
    "accounts:mfa_setup": Rule(SIGNED_IN, BOTH),
    "accounts:mfa_recovery_codes": Rule(SIGNED_IN, BOTH),
    "accounts:password_change": Rule(SIGNED_IN, BOTH),
    "accounts:reauth": Rule(SIGNED_IN, BOTH),
    "accounts:team": Rule("organization.manage", BOTH),
    "accounts:team_member": Rule("organization.manage", BOTH, {"membership_id": "membership"}),
    # patients
    "patients:list": Rule("patient.view_contact"),
    "patients:new": Rule("patient.create", BOTH),
    "patients:detail": Rule("patient.view_contact", GET, P),
    "patients:edit": Rule("patient.edit_contact", BOTH, P),
    "patients:screening": Rule("patient.edit_clinical", BOTH, P),
    "patients:notes": Rule("patient.edit_clinical", POST, P),
    "patients:history_add": Rule("patient.edit_clinical", BOTH, P),
    "patients:history_close": Rule(
        "patient.edit_clinical", POST, {"pk": "patient", "item_pk": "history_item"}
    ),
    "patients:break_glass": Rule("patient.break_glass", BOTH, P),
    "patients:emergency_summary": Rule(OPEN_BREAK_GLASS, GET, P),
    "patients:break_glass_log": Rule("audit.view"),
    "patients:break_glass_review": Rule("organization.manage", POST, {"access_pk": "break_glass"}),
    # audit
    "audit:log": Rule("audit.view"),
    # consent
    "consent:patient": Rule("consent.view", GET, P),
    "consent:take": Rule("consent.record", BOTH, {"pk": "patient", "category": "consent_category"}),
    "consent:detail": Rule("consent.view", GET, {"pk": "consent"}),
    "consent:withdraw": Rule("consent.record", POST, {"pk": "consent"}),
    "consent:signature": Rule("consent.view", GET, {"pk": "consent"}),
    "consent:scan": Rule("consent.view", GET, {"pk": "paper_consent"}),
    "consent:templates": Rule("consent.view"),
    "consent:template_new": Rule(
        "consent.manage_templates", BOTH, {"category": "consent_category"}
    ),
    # charting
    "charting:start": Rule("session.chart", BOTH, P),
    "charting:session": Rule("session.view", GET, {"pk": "draft"}),
    "charting:point_add": Rule("session.chart", POST, {"pk": "draft"}),
    "charting:point_update": Rule("session.chart", POST, {"pk": "draft", "number": "point"}),
    "charting:point_mirror": Rule("session.chart", POST, {"pk": "draft", "number": "point"}),
    "charting:point_remove": Rule("session.chart", POST, {"pk": "draft", "number": "point"}),
    "charting:point_restore": Rule("session.chart", POST, {"pk": "draft", "number": "point"}),
    "charting:vial": Rule("session.chart", POST, {"pk": "draft"}),
    "charting:details": Rule("session.chart", POST, {"pk": "draft"}),
    "charting:override": Rule("session.override", POST, {"pk": "draft"}),
    "charting:sign": Rule("session.sign", POST, {"pk": "draft"}),
    "charting:amend": Rule("session.sign", BOTH, {"pk": "signed"}),
    "charting:void": Rule("session.sign", POST, {"pk": "signed"}),
    "charting:record": Rule("session.view", GET, {"pk": "signed"}),
    "charting:compare": Rule("session.view", GET, {"pk": "signed"}),
    # inventory
    "inventory:overview": Rule("stock.view"),
    "inventory:receive": Rule("stock.receive", BOTH),
    "inventory:lot": Rule("stock.view", GET, {"pk": "lot"}),
    "inventory:lot_transfer": Rule(
        "stock.receive", POST, {"pk": "lot"}, form={"from_clinic": "{clinic}"}
    ),
    "inventory:lot_destroy": Rule(
        "stock.use", POST, {"pk": "lot"}, form={"destroy-clinic": "{clinic}"}
    ),
    "inventory:lot_adjust": Rule("stock.manage", POST, {"pk": "lot"}, form={"clinic": "{clinic}"}),
    "inventory:vial": Rule("stock.view", GET, {"pk": "vial"}),
    "inventory:vial_reconstitute": Rule("stock.use", POST, {"pk": "sealed_vial"}),
    "inventory:vial_waste": Rule("stock.use", POST, {"pk": "vial"}),
    "inventory:vial_destroy": Rule("stock.use", POST, {"pk": "vial"}),
    "inventory:reconciliation": Rule("stock.view"),
    "inventory:reconciliation_csv": Rule("stock.view"),
    "inventory:prices_csv": Rule("stock.manage"),
    "inventory:recall": Rule("stock.recall"),
    "inventory:recall_csv": Rule("stock.recall"),
    "inventory:settings": Rule("stock.manage", BOTH),
    # scheduling
    "scheduling:day": Rule("appointment.view"),
    "scheduling:week": Rule("appointment.view"),
    "scheduling:book": Rule("appointment.edit", BOTH),
    "scheduling:appointment": Rule("appointment.view", GET, {"pk": "appointment"}),
    "scheduling:appointment_edit": Rule("appointment.edit", POST, {"pk": "appointment"}),
    "scheduling:appointment_status": Rule("appointment.edit", POST, {"pk": "appointment"}),
    "scheduling:move": Rule("appointment.edit", POST, {"pk": "appointment"}),
    "scheduling:clinic_settings": Rule("organization.manage", BOTH),
    "scheduling:recalls": Rule("appointment.view"),
    "scheduling:recall_state": Rule("appointment.edit", POST, {"pk": "recall"}),
    "scheduling:cycles": Rule("appointment.view", GET, P),
    "scheduling:cycles_book": Rule("appointment.edit", POST, P),
    "scheduling:messages": Rule("appointment.view"),
    "scheduling:message_resend": Rule("appointment.edit", POST, {"pk": "reminder"}),
    "scheduling:message_templates": Rule("organization.manage"),
    "scheduling:message_template": Rule(
        "organization.manage", BOTH, {"kind": "message_kind", "channel": "message_channel"}
    ),
    "scheduling:opt_out": Rule(PUBLIC_TOKEN, BOTH, {"token": "opt_out_token"}),
    "scheduling:feeds": Rule("appointment.edit"),
    "scheduling:feed_create": Rule("appointment.edit", POST),
    "scheduling:feed_revoke": Rule(
        "appointment.edit",
        POST,
        {"pk": "feed"},
        hidden=frozenset({"injector", "front_desk"}),
        note="the prescriber's own feed: the owner may revoke it, other members do not find it",
    ),
    "scheduling:feed": Rule(PUBLIC_TOKEN, GET, {"token": "feed_token"}),
    # outcomes
    "outcomes:patient": Rule("outcome.view", GET, P),
    "outcomes:assess": Rule("outcome.record", BOTH, P),
    "outcomes:diary": Rule("outcome.view", BOTH, P, post_need="outcome.record"),
    "outcomes:decide": Rule("outcome.decide", POST, P),
    "outcomes:assessment_error": Rule("outcome.record", POST, {"pk": "assessment"}),
    "outcomes:durations": Rule("outcome.view", GET, P),
    "outcomes:duration_return": Rule(
        "outcome.record", POST, {"pk": "patient", "session_pk": "signed"}
    ),
    "outcomes:duration_return_error": Rule(
        "outcome.record", POST, {"pk": "patient", "return_pk": "effect_return"}
    ),
    "outcomes:cohort": Rule("outcome.view"),
    "outcomes:adverse_list": Rule("outcome.view", GET, P),
    "outcomes:adverse_new": Rule("outcome.record", BOTH, {"session_pk": "signed"}),
    "outcomes:adverse_reporting": Rule("outcome.view"),
    "outcomes:adverse_detail": Rule("outcome.view", GET, {"pk": "adverse"}),
    "outcomes:adverse_update": Rule("outcome.record", POST, {"pk": "adverse"}),
    "outcomes:adverse_report": Rule("outcome.view", GET, {"pk": "adverse"}),
    "outcomes:adverse_reported": Rule("outcome.record", POST, {"pk": "adverse"}),
    "outcomes:adverse_error": Rule("outcome.record", POST, {"pk": "adverse"}),
    # photos
    "photos:patient": Rule("photo.view", GET, P),
    "photos:take": Rule("photo.take", BOTH, P),
    "photos:compare": Rule("photo.view", GET, P),
    "photos:detail": Rule("photo.view", GET, {"pk": "photo"}),
    "photos:file": Rule("photo.view", GET, {"pk": "photo"}),
    "photos:error": Rule("photo.take", POST, {"pk": "photo"}),
    "photos:marketing": Rule("photo.take", POST, {"pk": "photo"}),
    # the patient's own pages, and their staff side
    "portal:manage": Rule("portal.manage", BOTH, P),
    "portal:revoke": Rule("portal.manage", POST, {"pk": "patient", "link_pk": "portal_link"}),
    "portal:home": Rule(PORTAL_LINK, GET, {"token": "portal_token"}),
    "portal:diary": Rule(PORTAL_LINK, BOTH, {"token": "portal_token"}),
    "portal:questionnaires": Rule(PORTAL_LINK, GET, {"token": "portal_token"}),
    "portal:questionnaire": Rule(
        PORTAL_LINK, BOTH, {"token": "portal_token", "scale_id": "scale_id"}
    ),
    "portal:wearing_off": Rule(
        PORTAL_LINK, POST, {"token": "portal_token", "session_pk": "signed"}
    ),
    "portal:elsewhere": Rule(
        NOWHERE_PAGE, GET, {"token": "portal_token", "rest": "elsewhere"}, note="polite 404"
    ),
    # interop pages
    "interop:import": Rule("data.import", BOTH),
    "interop:import_run": Rule("data.import", GET, {"pk": "import_run"}),
    "interop:import_confirm": Rule("data.import", POST, {"pk": "import_run"}),
    "interop:export": Rule("data.export", GET, note="POST starts a real export: export tests"),
    "interop:export_job": Rule("data.export", GET, {"pk": "export_job"}),
    "interop:export_download": Rule("data.export", GET, {"pk": "export_job"}),
    "interop:export_delete": Rule("data.export", POST, {"pk": "export_job"}),
    # the API's own documents
    "api-v1:openapi-json": Rule(PUBLIC),
    "api-v1:openapi-view": Rule(PUBLIC),
    "api-v1:api-root": Rule(NOWHERE_PAGE, note="ninja's root: not found, for everyone"),
    # FHIR (bearer token); search and read are walked once per resource type (FHIR_TYPES)
    "fhir:metadata": Rule(PUBLIC, note="the CapabilityStatement is public (FHIR spec)"),
    "fhir:bulk_export": Rule("token + data.export", GET, note="kick-off walked in fhir tests"),
    "fhir:bulk_export_patient": Rule("token + data.export", GET),
    "fhir:bulk_status": Rule("token + data.export", GET, {"job_id": "bulk_job"}),
    "fhir:bulk_file": Rule(
        "token + data.export", GET, {"job_id": "bulk_job", "name": "bulk_file_name"}
    ),
    "fhir:search": Rule("token + <per resource type>", GET, {"resource_type": "fhir_type"}),
    "fhir:read": Rule(
        "token + <per resource type>",
        GET,
        {"resource_type": "fhir_type", "resource_id": "fhir_id"},
    ),
    "fhir:unknown": Rule(NOWHERE_PAGE, GET, {"rest": "elsewhere"}, note="unknown: 404 for all"),
    # the dashboard
    "web:dashboard": Rule("patient.view_contact"),
}

# FHIR resource type -> the permission its search and read need (None: any token).
FHIR_TYPES: dict[str, str | None] = {
    "Organization": None,
    "Location": None,
    "Practitioner": None,
    "Patient": "patient.view_contact",
    "Encounter": "session.view",
    "Procedure": "session.view",
    "MedicationAdministration": "session.view",
    "Observation": "outcome.view",
    "Consent": "consent.view",
    "Appointment": "appointment.view",
    "AdverseEvent": "outcome.view",
}

# --- the REST API: "METHOD /api/v1/path" (as in the OpenAPI document) -> rule ---------------------

_POINT = {"area": "forehead", "muscle": "frontalis", "side": "mid", "units": 2}
_PLAN = {"product": "botox", "indication": "forehead-lines", "points": [_POINT]}

API: dict[str, Rule] = {
    "GET /api/v1/products": Rule(TOKEN),
    "GET /api/v1/protocols": Rule(TOKEN),
    "GET /api/v1/protocols/{protocol_id}": Rule(TOKEN, GET, {"protocol_id": "protocol_id"}),
    "GET /api/v1/patients": Rule("token + patient.view_contact"),
    "POST /api/v1/patients": Rule(
        "token + patient.create",
        POST,
        body={"given_name": "Eve", "family_name": "Matrix", "date_of_birth": "1990-01-01"},
    ),
    "GET /api/v1/patients/{patient_id}": Rule(
        "token + patient.view_contact", GET, {"patient_id": "patient"}
    ),
    "PATCH /api/v1/patients/{patient_id}": Rule(
        "token + patient.edit_contact",
        ("patch",),
        {"patient_id": "patient"},
        body={"phone": "07700 900999"},
    ),
    "GET /api/v1/patients/{patient_id}/history": Rule(
        "token + patient.view_clinical", GET, {"patient_id": "patient"}
    ),
    "POST /api/v1/patients/{patient_id}/history": Rule(
        "token + patient.edit_clinical",
        POST,
        {"patient_id": "patient"},
        body={"kind": "condition", "code": "als"},
    ),
    "POST /api/v1/dose-check": Rule(
        "token + patient.view_clinical", POST, body={**_PLAN, "patient": "{patient}"}
    ),
    "POST /api/v1/sessions": Rule(
        "token + session.chart", POST, body={**_PLAN, "patient": "{patient}"}
    ),
    "GET /api/v1/sessions/{session_id}": Rule("token + session.view", GET, {"session_id": "draft"}),
    "GET /api/v1/patients/{patient_id}/sessions": Rule(
        "token + session.view", GET, {"patient_id": "patient"}
    ),
    "POST /api/v1/sessions/{session_id}/points": Rule(
        "token + session.chart",
        POST,
        {"session_id": "draft"},
        body={"version": 1, "points": [_POINT]},
    ),
    "POST /api/v1/sessions/{session_id}/overrides": Rule(
        "token + session.override",
        POST,
        {"session_id": "draft"},
        body={"rule": "session-max", "reason": "A long enough clinical reason for the record."},
    ),
    "POST /api/v1/sessions/{session_id}/sign": Rule(
        "token + session.sign", POST, {"session_id": "draft"}, body={"version": 1}
    ),
    "GET /api/v1/lots": Rule("token + stock.view"),
    "GET /api/v1/lots/{lot_id}": Rule("token + stock.view", GET, {"lot_id": "lot"}),
    "POST /api/v1/stock/receive": Rule(
        "token + stock.receive",
        POST,
        body={
            "product_id": "dysport",
            "lot_number": "MATRIX2",
            "expiry": "{in_200_days}",
            "vial_units": 300,
            "vial_count": 2,
        },
    ),
    "GET /api/v1/vials": Rule("token + stock.view"),
    "GET /api/v1/vials/{vial_id}": Rule("token + stock.view", GET, {"vial_id": "vial"}),
    "POST /api/v1/vials/{vial_id}/reconstitute": Rule(
        "token + stock.use", POST, {"vial_id": "sealed_vial"}, body={"diluent_ml": 2.5}
    ),
    "POST /api/v1/vials/{vial_id}/waste": Rule(
        "token + stock.use", POST, {"vial_id": "vial"}, body={"units": 1, "reason": "spilt"}
    ),
    "GET /api/v1/stock-moves": Rule("token + stock.view"),
    "GET /api/v1/stock/on-hand": Rule("token + stock.view"),
    "GET /api/v1/appointments": Rule("token + appointment.view"),
    "POST /api/v1/appointments": Rule(
        "token + appointment.edit",
        POST,
        body={
            "patient_id": "{patient}",
            "practitioner_id": "{practitioner}",
            "starts_at": "{starts_at}",
            "kind": "treatment",
        },
    ),
    "GET /api/v1/appointments/{appointment_id}": Rule(
        "token + appointment.view", GET, {"appointment_id": "appointment"}
    ),
    "PATCH /api/v1/appointments/{appointment_id}": Rule(
        "token + appointment.edit",
        ("patch",),
        {"appointment_id": "appointment"},
        body={"notes": "moved"},
    ),
    "POST /api/v1/appointments/{appointment_id}/status": Rule(
        "token + appointment.edit",
        POST,
        {"appointment_id": "appointment"},
        body={"status": "arrived"},
    ),
    "GET /api/v1/recalls": Rule("token + appointment.view"),
    "GET /api/v1/patients/{patient_id}/assessments": Rule(
        "token + outcome.view", GET, {"patient_id": "patient"}
    ),
    "POST /api/v1/patients/{patient_id}/assessments": Rule(
        "token + outcome.record",
        POST,
        {"patient_id": "patient"},
        body={"scale_id": "hdss", "answers": 3, "time_point": "baseline", "assessed_on": "{ago}"},
    ),
    "GET /api/v1/patients/{patient_id}/diary": Rule(
        "token + outcome.view", GET, {"patient_id": "patient"}
    ),
    "POST /api/v1/patients/{patient_id}/diary": Rule(
        "token + outcome.record",
        POST,
        {"patient_id": "patient"},
        body={"days": [{"day": "{ago}", "headache": False}]},
    ),
}
