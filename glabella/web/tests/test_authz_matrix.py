"""Authorization proven: every URL and API operation, as every role, anonymous and an outsider.

The table is authz_matrix.py. Here:

1. every URL pattern of the project (walked recursively through every included URLconf) and
   every operation of the REST API (from its router) has an entry, and every entry still
   exists; the permission an entry names is the one the code declares (the ``require``
   decorator's ``required_permission``, the API function's ``require(request, ...)``, the
   FHIR resource type's permission);
2. one world with one of everything is built, and each entry is requested as each of the five
   roles, as no one, and as a member of another organization whose own role would allow it,
   with the ids of our objects. Each answer is compared with the table's; every mismatch is
   collected and reported together (URL, who, expected, got). Every request runs in a
   transaction rolled back after it (one request cannot spoil the next), and for every request
   that must be refused, nothing is written (row counts of every table, the audit trail).
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from glabella.accounts import mfa
from glabella.accounts.actor import Actor
from glabella.accounts.models import Membership
from glabella.accounts.roles import PERMISSIONS, Role, can
from glabella.accounts.services import add_member
from glabella.accounts.tokens import create_token
from glabella.conftest import PASSWORD
from glabella.web.tests.authz_matrix import (
    API,
    FHIR_TYPES,
    NOWHERE_PAGE,
    OPEN_BREAK_GLASS,
    PAGES,
    PORTAL_LINK,
    PUBLIC,
    PUBLIC_TOKEN,
    SIGNED_IN,
    TOKEN,
    VALUES,
    Rule,
)

ROLES = [r.value for r in Role]
TABLE = "glabella/web/tests/authz_matrix.py"
NOWHERE = 987_654_321


# --- 1. the table covers the code, and the code the table -------------------------------------


def url_patterns(resolver: URLResolver | None = None, ns: str = "", prefix: str = ""):
    """(name with namespaces, route, callback) of every URL pattern, through every include."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}{p.namespace}:" if p.namespace else ns
            yield from url_patterns(p, inner, prefix + str(p.pattern))
        else:
            assert isinstance(p, URLPattern)
            yield f"{ns}{p.name}", prefix + str(p.pattern), p.callback


def api_operations():
    """("METHOD /api/v1/path", view function) of every REST API operation."""
    from glabella.interop.api.core import api

    for _prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for op in path_view.operations:
                for method in op.methods:
                    yield f"{method} /api/v1{path}", op.view_func


def _api_route(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_every_url_and_api_operation_has_an_entry_and_every_entry_a_url():
    problems = []
    api_paths = {key.split(" ", 1)[1] for key in API}
    seen = set()
    for name, route, _callback in url_patterns():
        if name.startswith("api-v1:") and name not in PAGES:
            if _api_route(route) not in api_paths:
                problems.append(f"API route /{route} ({name}) has no entry in API in {TABLE}")
            continue
        seen.add(name)
        if name not in PAGES:
            problems.append(
                f"URL /{route} (name {name!r}) has no entry: add it to PAGES in {TABLE} "
                "with what it needs and which objects its ids are"
            )
    for name in sorted(set(PAGES) - seen):
        problems.append(f"PAGES in {TABLE} has {name!r}, which is no URL any more: remove it")
    operations = dict(api_operations())
    for key in sorted(set(operations) - set(API)):
        problems.append(f"API operation {key} has no entry: add it to API in {TABLE}")
    for key in sorted(set(API) - set(operations)):
        problems.append(f"API in {TABLE} has {key}, which is no operation any more: remove it")
    assert not problems, "\n".join(problems)


def _permission(need: str) -> str | None:
    if need.startswith("token + "):
        need = need.removeprefix("token + ")
    return need if need in PERMISSIONS else None


def test_the_table_says_what_the_code_declares():
    problems = []
    for name, _route, callback in url_patterns():
        rule = PAGES.get(name)
        if rule is None:
            continue
        declared = getattr(callback, "required_permission", None)
        wanted = _permission(rule.need)
        if declared is not None and declared != wanted and rule.need != SIGNED_IN:
            # `signed_in` (any member) in front, the permission checked inside: say so there
            inside = inspect.getsource(inspect.unwrap(callback))
            if declared != "patient.view_contact" or (wanted and f'"{wanted}"' not in inside):
                problems.append(f"{name}: the view requires {declared!r}, the table {rule.need!r}")
        if rule.need == SIGNED_IN and declared not in (None, "patient.view_contact"):
            problems.append(f"{name}: the table says any signed-in user, the view {declared!r}")
    for key, view in api_operations():
        rule = API.get(key)
        if rule is None or rule.need == TOKEN:
            continue
        wanted = _permission(rule.need)
        source = inspect.getsource(view)
        asked = re.findall(r"(?:require\(\s*request,\s*|\.can\()\"([a-z_.]+)\"", source)
        if wanted not in asked:
            problems.append(f"{key}: the table needs {wanted!r}; the code asks {asked}")
    from glabella.interop.fhir import kinds

    assert sorted(FHIR_TYPES) == sorted(kinds.RESOURCE_TYPES), "update FHIR_TYPES"
    for name, permission in FHIR_TYPES.items():
        if kinds.get(name).permission != permission:
            problems.append(f"FHIR {name}: the table {permission}, the code ")
    for need in {r.need for r in [*PAGES.values(), *API.values()]}:
        known = (
            PUBLIC,
            SIGNED_IN,
            OPEN_BREAK_GLASS,
            PORTAL_LINK,
            PUBLIC_TOKEN,
            TOKEN,
            NOWHERE_PAGE,
        )
        if need not in known and _permission(need) is None and "<per resource type>" not in need:
            problems.append(f"{need!r} is no permission of roles.py nor a kind of access")
    assert not problems, "\n".join(problems)


# --- 2. the world ---------------------------------------------------------------------------------


def build_world(world) -> dict[str, Any]:
    """One of everything in our organization, through the services; members of every role
    at the other organization (each with a token); every principal's client."""
    from glabella.charting import services as charting
    from glabella.charting.tests.conftest import ready_to_sign
    from glabella.consent import services as consent_services
    from glabella.consent.tests.helpers import make_png
    from glabella.interop.export import jobs
    from glabella.interop.models import ExportJob, ImportRun
    from glabella.interop.tests.test_api_fuzz import seed
    from glabella.outcomes import durations
    from glabella.outcomes.tests.test_adverse import consent, ptosis, signed
    from glabella.patients import services as patient_services
    from glabella.patients.models import BreakGlass
    from glabella.photos import services as photo_services
    from glabella.photos.tests.helpers import gps_jpeg, photo_upload
    from glabella.portal import services as portal_services
    from glabella.scheduling import feeds
    from glabella.scheduling import messages as scheduling_messages
    from glabella.scheduling.models import MessageChannel, MessageKind, Reminder, ReminderStatus

    real = seed(world)  # lot, opened and sealed vial, appointment, recall, assessment
    injector = world.actor("injector")
    consent(world)  # a paper cosmetic consent, with its scan
    drawn = consent_services.take_consent(
        injector,
        world.patient,
        "photography",
        method="drawn",
        signature_png=make_png(),
        read_confirmed=True,
    )
    from glabella.consent.models import Consent

    paper = Consent.objects.filter(patient=world.patient).exclude(pk=drawn.pk).first()
    draft = charting.start_session(
        injector,
        world.patient,
        indication="glabellar-lines",
        product_id="botox_cosmetic",
        prescriber=world.users["prescriber"],
        start_from="protocol:glabellar-lines-botox-cosmetic",
    )
    draft = ready_to_sign(world, draft)
    old = signed(world, days_ago=130)
    session = signed(world, days_ago=10)
    effect_return = durations.record_return(
        injector, old, timezone.localdate() - timedelta(days=30)
    )
    event = ptosis(world, session)
    photo = photo_services.take_photo(
        injector,
        world.patient,
        photo_upload(gps_jpeg()),
        area="glabellar",
        view="front",
        expression="frown",
    )
    item = patient_services.add_history_item(
        injector, world.patient, {"kind": "condition", "code": "als"}
    )
    link = portal_services.show_link(world.actor("front_desk"), world.patient)
    feed = feeds.create_feed(world.actor("prescriber"))
    from glabella.scheduling.models import Appointment

    appointment = Appointment.objects.get(pk=real["appointment_id"])
    when = appointment.starts_at
    reminder = Reminder.objects.create(
        organization=world.org,
        clinic=world.clinic,
        patient=world.patient,
        appointment=appointment,
        kind=MessageKind.REMINDER,
        key=f"matrix:{appointment.pk}",
        due_at=when - timedelta(hours=48),
        next_attempt_at=when - timedelta(hours=48),
        channel=MessageChannel.EMAIL,
        status=ReminderStatus.FAILED,
        last_error="the mail server refused the address",
    )
    now = timezone.now()
    export_job = ExportJob.objects.create(
        organization=world.org,
        kind="full",
        requested_by=world.users["owner"],
        created_at=now,
        finished_at=now,
        state="done",
    )
    (jobs.job_dir(export_job)).mkdir(parents=True)
    (jobs.job_dir(export_job) / "manifest.json").write_text("{}")
    bulk_job = ExportJob.objects.create(
        organization=world.org,
        kind="fhir",
        requested_by=world.users["owner"],
        created_at=now,
        finished_at=now,
        transaction_time=now,
        state="done",
        output=[{"type": "Patient", "file": "Patient.ndjson", "count": 1, "bytes": 3}],
    )
    (jobs.job_dir(bulk_job)).mkdir(parents=True)
    (jobs.job_dir(bulk_job) / "Patient.ndjson").write_text("{}\n")
    import_run = ImportRun.objects.create(
        organization=world.org,
        kind="patients",
        filename="patients.csv",
        sha256="0" * 64,
        dry_run=True,
        state="done",
        run_by=world.users["owner"],
        created_at=now,
    )
    access = BreakGlass.objects.create(
        organization=world.org,
        clinic=world.clinic,
        user=world.users["front_desk"],
        patient=world.patient,
        reason="Collapsed in the waiting room; the paramedic asks what was injected.",
        started_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    objects: dict[str, Any] = {
        "patient": world.patient.pk,
        "clinic": world.clinic.pk,
        "history_item": item.pk,
        "consent": drawn.pk,
        "paper_consent": paper.pk,
        "consent_category": "cosmetic",
        "draft": draft.pk,
        "point": 1,
        "signed": session.pk,
        "lot": real["lot_id"],
        "vial": real["vial_id"],
        "sealed_vial": real["sealed_vial_id"],
        "appointment": real["appointment_id"],
        "recall": real["recall_id"],
        "assessment": real["assessment_id"],
        "protocol_id": real["protocol_id"],
        "reminder": reminder.pk,
        "message_kind": "reminder",
        "message_channel": "email",
        "opt_out_token": scheduling_messages.opt_out_token(world.patient),
        "feed": feed.feed.pk,
        "feed_token": feed.token,
        "effect_return": effect_return.pk,
        "adverse": event.pk,
        "photo": photo.pk,
        "portal_link": link.link.pk,
        "portal_token": link.token,
        "scale_id": "hit-6",
        "elsewhere": "somewhere/else",
        "import_run": import_run.pk,
        "export_job": export_job.pk,
        "bulk_job": bulk_job.pk,
        "bulk_file_name": "Patient.ndjson",
        "break_glass": access.pk,
        "membership": Membership.objects.get(user=world.users["injector"], clinic=world.clinic).pk,
    }
    return objects


def _client(user, *, reauthenticated: bool = True) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    session = client.session
    mfa.mark_verified(session)
    if reauthenticated:
        mfa.mark_reauthenticated(session)
    session.save()
    return client


def principals(world) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our members and the other organization's (by role): user, page client, API token."""
    ours, theirs = {}, {}
    for role in ROLES:
        m = Membership.objects.get(user=world.users[role], clinic=world.clinic)
        ours[role] = _principal(m)
    boss = Membership.objects.get(user=world.outsider)
    boss_actor = Actor(boss.organization, boss.user, boss.clinic, boss.role)
    for role in ROLES:
        m = boss
        if role != Role.OWNER:
            m = add_member(
                boss_actor,
                email=f"{role}@beta-matrix.test",
                clinic=boss.clinic,
                role=role,
                password=PASSWORD,
            )
        theirs[role] = _principal(m)
    return ours, theirs


def _principal(m: Membership) -> dict[str, Any]:
    me = Actor(m.organization, m.user, m.clinic, m.role)
    token = create_token(me, name=f"matrix {m.role}", membership=m)
    secret = token.secret
    return {
        "token": token.token.pk,
        "user": m.user,
        "role": m.role,
        "client": _client(m.user),
        "api": Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {secret}"),
    }


# --- 2. what each answer should be ---------------------------------------------------------


def _fingerprint() -> tuple[int, ...]:
    """Rows in every table of Glabella's apps (the audit trail included)."""
    tables = sorted(
        m._meta.db_table
        for m in apps.get_models()
        if m._meta.app_label not in ("sessions", "contenttypes", "admin")
        and m._meta.managed
        and not m._meta.proxy
    )
    # One row, one column per table: the order is the query's (rows of a UNION ALL come back in
    # no promised order; PostgreSQL may shuffle them).
    sql = "SELECT " + ", ".join(f'(SELECT COUNT(*) FROM "{t}")' for t in tables)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return tuple(cursor.fetchone())


def _request(
    client: Client, method: str, url: str, body: Any = None, *, form=None, check_nothing=False
):
    """One request in a transaction rolled back after it: (status, location, wrote). The
    client's cookies are put back too (signing out, or a new session key, is undone)."""
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        before = _fingerprint() if check_nothing else None
        if method == "get":
            response = client.get(url)
        elif body is not None:
            response = getattr(client, method)(
                url, json.dumps(body), content_type="application/json"
            )
        else:
            response = getattr(client, method)(url, form or {})
        wrote = check_nothing and _fingerprint() != before
        transaction.set_rollback(True)
    client.cookies = cookies
    return response.status_code, response.get("Location", ""), wrote


def _ok(status: int, location: str, method: str) -> bool:
    """Allowed: the page itself, a redirect (not to the sign-in page), 405 for a GET of a
    POST-only view, 400/409/422 for an empty or stale form."""
    if status in (401, 403, 404) or status >= 500:
        return False
    return not (status == 302 and "/accounts/login/" in location)


def _format(value: Any, objects: dict[str, Any], extra: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _format(v, objects, extra) for k, v in value.items()}
    if isinstance(value, list):
        return [_format(v, objects, extra) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return extra[value[1:-1]]
    return value


class Walk:
    def __init__(self, world, objects, ours, theirs):
        self.world, self.objects, self.ours, self.theirs = world, objects, ours, theirs
        self.problems: list[str] = []
        self.requests = 0

    def expect(self, label, who, expected, got, location="", wrote=False):
        self.requests += 1
        status = got
        if expected == "ok":
            good = _ok(status, location, "")
        elif expected == "public":
            good = status not in (401, 403, 404) and status < 500
        elif expected == "login":
            good = status == 302 and "/accounts/login/" in location
        else:
            good = status == expected
        if not good:
            where = f" -> {location}" if location else ""
            self.problems.append(f"{label} as {who}: expected {expected}, got {status}{where}")
        if wrote:
            self.problems.append(f"{label} as {who}: refused ({status}) but wrote to the database")

    def outsider_for(self, permission: str | None) -> dict[str, Any]:
        for role in ROLES:
            if permission is None or can(role, permission):
                return self.theirs[role]
        raise AssertionError(permission)

    # pages -----------------------------------------------------------------------------------
    def page(self, name: str, rule: Rule, kwargs: dict[str, Any], label: str) -> None:
        url = reverse(name, kwargs=kwargs)
        records = [arg for arg, key in rule.ids.items() if key not in VALUES]
        nowhere = reverse(name, kwargs={**kwargs, **dict.fromkeys(records, NOWHERE)})
        form = _format(rule.form, self.objects, self.objects) if rule.form else None
        for method in rule.methods:
            what = f"{method.upper()} {label}"
            writes = method != "get"
            need = rule.post_need if (writes and rule.post_need) else rule.need
            permission = _permission(need)
            anonymous = Client(raise_request_exception=False)
            if need in (PUBLIC, NOWHERE_PAGE):
                expected = "public" if need == PUBLIC else 404
                for who, client in [("anonymous", anonymous), *self._roles()]:
                    status, location, wrote = _request(
                        client, method, url, form=form, check_nothing=writes and expected == 404
                    )
                    self.expect(what, who, expected, status, location, wrote)
                continue
            if need in (PORTAL_LINK, PUBLIC_TOKEN):
                self.expect(what, "anonymous", "ok", *_request(anonymous, method, url)[:2])
                fake = reverse(name, kwargs={**kwargs, "token": "x" * 43})
                status, location, wrote = _request(anonymous, method, fake, check_nothing=writes)
                self.expect(f"{what} (unknown token)", "anonymous", 404, status, location, wrote)
                continue
            # signed-in pages: anonymous first
            status, location, wrote = _request(anonymous, method, url, check_nothing=writes)
            self.expect(what, "anonymous", rule.anonymous, status, location, wrote)
            for role, p in self.ours.items():
                if need == SIGNED_IN:
                    allowed = True
                elif need == OPEN_BREAK_GLASS:
                    # the holder sees the summary; a clinical role is sent to the record
                    allowed = role == Role.FRONT_DESK or can(role, "patient.view_clinical")
                else:
                    allowed = can(role, permission)
                expected = 404 if role in rule.hidden else ("ok" if allowed else 403)
                status, location, wrote = _request(
                    p["client"], method, url, form=form, check_nothing=writes and expected != "ok"
                )
                self.expect(what, role, expected, status, location, wrote)
            if need == OPEN_BREAK_GLASS:
                outsider = self.theirs[Role.FRONT_DESK]
            else:
                outsider = self.outsider_for(permission)
            status, location, wrote = _request(
                outsider["client"], method, url, form=form, check_nothing=writes and bool(records)
            )
            who = f"outsider {outsider['role']}"
            self.expect(what, who, 404 if records else "ok", status, location, wrote)
            if records and need != OPEN_BREAK_GLASS:
                # the same role of ours, asking for an id that exists nowhere: also a 404
                mine = self.ours[outsider["role"]]
                status, location, wrote = _request(
                    mine["client"], method, nowhere, form=form, check_nothing=writes
                )
                self.expect(f"{what} (no such id)", outsider["role"], 404, status, location, wrote)

    def _roles(self):
        return [(role, p["client"]) for role, p in self.ours.items()]

    # API and FHIR ------------------------------------------------------------------------------
    def bearer(self, label, method, url, need, body=None, names_ours=True, found=True):
        """NEED of a bearer token: no token 401; roles by permission; the outsider's token
        404 on our records. FOUND false: an address that is no resource (404 for all)."""
        permission = _permission(need)
        writes = method != "get"
        status, location, wrote = _request(
            Client(raise_request_exception=False), method, url, body, check_nothing=writes
        )
        self.expect(label, "no token", 401, status, location, wrote)
        for role, p in self.ours.items():
            allowed = permission is None or can(role, permission)
            expected = ("ok" if found else 404) if allowed else 403
            status, location, wrote = _request(
                p["api"], method, url, body, check_nothing=writes and expected != "ok"
            )
            self.expect(label, role, expected, status, location, wrote)
        outsider = self.outsider_for(permission)
        status, location, wrote = _request(
            outsider["api"], method, url, body, check_nothing=writes and names_ours
        )
        self.expect(
            label,
            f"outsider {outsider['role']}",
            404 if names_ours or not found else "ok",
            status,
            location,
            wrote,
        )


def _kwargs(rule: Rule, objects: dict[str, Any]) -> dict[str, Any]:
    return {arg: objects[key] for arg, key in rule.ids.items()}


def test_every_url_answers_every_role_anonymous_and_outsider_as_the_table_says(world):
    objects = build_world(world)
    ours, theirs = principals(world)
    objects["token"] = ours[Role.OWNER]["token"]  # the owner's own token
    walk = Walk(world, objects, ours, theirs)

    for name, rule in PAGES.items():
        if name.startswith("fhir:") and rule.need != PUBLIC:
            continue
        walk.page(name, rule, _kwargs(rule, objects), name)

    # FHIR: a token, per resource type
    fhir_ids = _fhir_ids(world, objects)
    for resource_type, permission in FHIR_TYPES.items():
        need = f"token + {permission}" if permission else TOKEN
        walk.bearer(
            f"GET fhir search {resource_type}",
            "get",
            f"/fhir/r4/{resource_type}",
            need,
            names_ours=False,
        )
        url = f"/fhir/r4/{resource_type}/{fhir_ids[resource_type]}"
        walk.bearer(f"GET fhir read {resource_type}", "get", url, need)
    walk.bearer("GET fhir unknown", "get", "/fhir/r4/no/such/thing", TOKEN, found=False)
    walk.bearer(
        "GET fhir $export", "get", "/fhir/r4/$export", "token + data.export", names_ours=False
    )
    walk.bearer(
        "GET fhir bulk-status",
        "get",
        f"/fhir/r4/bulk-status/{objects['bulk_job']}",
        "token + data.export",
    )
    walk.bearer(
        "GET fhir bulk-file",
        "get",
        f"/fhir/r4/bulk-files/{objects['bulk_job']}/Patient.ndjson",
        "token + data.export",
    )

    # the REST API
    clinic_tz = timezone.zoneinfo.ZoneInfo(world.clinic.timezone)
    from glabella.interop.tests.test_api_fuzz import _next_weekday_10

    extra = {
        "patient": objects["patient"],
        "practitioner": world.users["injector"].pk,
        "starts_at": (_next_weekday_10(world) + timedelta(hours=2))
        .astimezone(clinic_tz)
        .replace(tzinfo=None)
        .isoformat(timespec="minutes"),
        "in_200_days": (timezone.localdate() + timedelta(days=200)).isoformat(),
        "ago": (timezone.localdate() - timedelta(days=1)).isoformat(),
    }
    for key, rule in API.items():
        method, path = key.split(" ", 1)
        url = path.format(**_kwargs(rule, objects))
        body = _format(rule.body, objects, extra) if rule.body is not None else None
        names_ours = bool(rule.ids) or "{patient}" in json.dumps(rule.body or {})
        if rule.need == TOKEN:
            names_ours = False
        walk.bearer(key, method.lower(), url, rule.need, body, names_ours=names_ours)

    assert not walk.problems, (
        f"{len(walk.problems)} of {walk.requests} answers differ from {TABLE}:\n"
        + "\n".join(walk.problems)
    )
    assert walk.requests > 1000


def _fhir_ids(world, objects) -> dict[str, str]:
    """A real id of ours for every FHIR resource type."""
    from glabella.charting.models import InjectionPoint

    point = InjectionPoint.objects.filter(session_id=objects["signed"]).first()
    return {
        "Organization": str(world.org.pk),
        "Location": str(world.clinic.pk),
        "Practitioner": str(world.users["injector"].pk),
        "Patient": str(objects["patient"]),
        "Encounter": str(objects["signed"]),
        "Procedure": str(objects["signed"]),
        "MedicationAdministration": str(point.pk),
        "Observation": f"assessment-{objects['assessment']}",
        "Consent": str(objects["consent"]),
        "Appointment": str(objects["appointment"]),
        "AdverseEvent": str(objects["adverse"]),
    }
