"""The API instance: bearer-token auth, the error handlers, the routers.

Every answer that is not a success is an ``ErrorOut``: a sentence a person can act on, the
field it concerns, and every field problem. The mapping, in one place:

=====  =========================================================================================
401    no token, an unknown, revoked or expired one, or its user or membership switched off
       (with ``WWW-Authenticate: Bearer``)
403    the token's role does not allow it (``require``; a service's ``PermissionDenied``, which
       is how ``Actor.require`` refuses a role, as on the pages)
404    missing, or another organization's (``Http404``, ``ObjectDoesNotExist``, and a
       service's ``PermissionError``, which is how the services refuse a record of another
       organization: "That record belongs to another organization."): never a 403, and never
       the service's words, so that nothing says the record exists
400    a body that is not JSON
409    the record changed since it was read (``StaleVersion``), or it is signed and can no
       longer change (``SessionLocked``)
422    a value refused: by the schema (wrong type, unknown or missing field; the field named
       as ``points[2].units``) or by the service (``ValidationError``, as the pages show it
       on the form). A service's ``ValueError`` is a programming error there (a naive
       datetime...), never the caller's: a 500, like any other exception
=====  =========================================================================================

A 500 is a bug, never an answer to bad input; it is logged and answered in JSON too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationErrorContext
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from glabella.accounts.actor import Actor
from glabella.accounts.tokens import SIGN_IN, check_request
from glabella.charting.models import SessionLocked
from glabella.charting.services import SigningRefused, StaleVersion
from glabella.interop.api import (
    inventory,
    outcomes,
    patients,
    products,
    scheduling,
    sessions,
)
from glabella.interop.api.base import NOT_FOUND, ApiError
from glabella.web.middleware import is_connection_failure, unavailable_response

log = logging.getLogger(__name__)

NOT_JSON = (
    "The request body is not valid JSON. Send a JSON object with the header "
    "'Content-Type: application/json'."
)
SERVER_ERROR = (
    "Something went wrong on the server and nothing was changed by this request. It has been "
    "logged; try again, and if it keeps happening tell your administrator (request {rid})."
)


class TokenAuth(HttpBearer):
    """``Authorization: Bearer glb_...``: the token's membership (organization, clinic, role)."""

    def __call__(self, request: HttpRequest) -> Actor | None:
        checked = check_request(request, via="api")
        # Remembered for the 401 answer, which says why the token was refused.
        request._glabella_token_problem = checked.problem  # type: ignore[attr-defined]
        return checked.actor

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:  # pragma: no cover
        return self(request)


class GlabellaAPI(NinjaAPI):
    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext]
    ) -> NinjaValidationError:
        """Field paths without ninja's wrapping: ``points[2].units``, not
        ``body.payload.points.2.units`` (the body's parameter name is dropped)."""
        errors: list[dict[str, Any]] = []
        for context in error_contexts:
            model = context.model
            source = model.__ninja_param_source__
            single = getattr(model, "__read_from_single_attr__", None)
            for e in context.pydantic_validation_error.errors(include_url=False):
                loc = tuple(model.__ninja_flatten_map_reverse__.get(e["loc"], e["loc"]))
                if single and loc[:1] == (single,):
                    loc = loc[1:]
                errors.append(
                    {
                        "source": source,
                        "loc": loc,
                        "type": e["type"],
                        "msg": e["msg"],
                        "ctx": {k: str(v) for k, v in (e.get("ctx") or {}).items()},
                    }
                )
        return NinjaValidationError(errors)


api = GlabellaAPI(
    title="Glabella API",
    version="1",
    description=(
        "The REST API of Glabella. Authenticate with `Authorization: Bearer <token>` (a personal "
        "API token from your settings page or `glabella token create`). A token acts with its "
        "membership's organization, clinic and role. Every error is JSON: `message` (a sentence "
        "to act on), `field` (the field it concerns, like `points[2].units`) and `errors` (every "
        "field problem). See docs/api.md."
    ),
    urls_namespace="api-v1",
    auth=TokenAuth(),
)


# --- the error shape ---------------------------------------------------------------------------


def error_response(
    request: HttpRequest,
    status: int,
    message: str,
    *,
    field: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {"message": message, "field": field, "errors": list(errors or [])}
    if extra:
        body.update(extra)
    response = api.create_response(request, body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="glabella"'
    return response


def field_path(loc: Iterable[Any]) -> str | None:
    """("points", 2, "units") -> "points[2].units"; () -> None."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


def _plain_message(e: Mapping[str, Any]) -> str:
    """Pydantic's error, in words a nurse understands."""
    kind = str(e.get("type", ""))
    ctx = e.get("ctx") or {}
    msg = str(e.get("msg", ""))
    if kind == "missing":
        return "This is required."
    if kind == "extra_forbidden":
        return "This field is not known here: remove it (check the spelling)."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "Enter a whole number."
    if kind in ("decimal_parsing", "decimal_type", "float_parsing", "float_type", "finite_number"):
        return "Enter a number."
    if kind.startswith("date") and "datetime" not in kind:
        return "Enter the date as YYYY-MM-DD."
    if kind.startswith("datetime"):
        return "Enter the date and time as YYYY-MM-DDTHH:MM (ISO 8601)."
    if kind in ("bool_parsing", "bool_type"):
        return "Enter true or false."
    if kind in ("string_type",):
        return "Enter text."
    if kind in ("list_type", "tuple_type", "set_type"):
        return "Give a list ([...])."
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "Give a JSON object ({...})."
    if kind in ("literal_error", "enum"):
        return f"Choose one of: {ctx.get('expected', '')}.".replace("'", "")
    if kind == "string_too_short":
        return "This cannot be empty." if str(ctx.get("min_length")) == "1" else msg + "."
    if kind == "string_too_long":
        return f"This is too long (at most {ctx.get('max_length')} characters)."
    if kind in ("too_short", "too_long"):
        return msg.replace("List", "The list").rstrip(".") + "."
    if kind == "greater_than":
        return f"This must be more than {ctx.get('gt')}."
    if kind == "greater_than_equal":
        return f"This must be at least {ctx.get('ge')}."
    if kind == "less_than":
        return f"This must be less than {ctx.get('lt')}."
    if kind == "less_than_equal":
        return f"This must be at most {ctx.get('le')}."
    if kind in ("value_error", "assertion_error"):
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        return msg
    if kind == "json_invalid":
        return NOT_JSON
    return msg.rstrip(".") + "."


def _summary(problems: list[dict[str, Any]], writes: bool) -> str:
    first = problems[0]
    if len(problems) > 1:
        where = f"{first['field']}: " if first["field"] else ""
        text = f"Correct {len(problems)} values (listed in errors). First, {where}"
        text += first["message"]
    elif first["field"]:
        text = f"Check {first['field']}: {first['message']}"
    else:
        text = first["message"]
    return f"{text} Nothing was saved." if writes else text


def django_problems(exc: DjangoValidationError) -> list[dict[str, Any]]:
    """A service's ValidationError as [{field, message}] (field None for the whole)."""
    if hasattr(exc, "error_dict"):
        return [
            {"field": None if name == "__all__" else name, "message": message}
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
    return [{"field": None, "message": m} for m in exc.messages]


# --- the handlers ------------------------------------------------------------------------------


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(
        request, exc.status, exc.message, field=exc.field, errors=exc.errors, extra=exc.extra
    )


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    problems = []
    for e in exc.errors:
        if e.get("type") == "json_invalid":
            return error_response(request, 400, NOT_JSON)
        loc = e.get("loc", ())
        path = field_path(loc)
        message = _plain_message(e)
        if path is None and e.get("source") == "body":
            message = (
                "Send a JSON object in the body."
                if e.get("type") != "missing"
                else "This needs a JSON body; none was sent."
            )
        problems.append({"field": path, "message": message})
    if not problems:  # pragma: no cover (ninja always lists at least one)
        problems.append({"field": None, "message": "The request was not understood."})
    writes = request.method not in ("GET", "HEAD")
    summary = _summary(problems, writes)
    return error_response(request, 422, summary, field=problems[0]["field"], errors=problems)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        problem = getattr(request, "_glabella_token_problem", "") or SIGN_IN
        return error_response(request, 401, problem)
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return error_response(request, 400, NOT_JSON)
    return error_response(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, NOT_FOUND)


@api.exception_handler(ObjectDoesNotExist)
def _does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    return error_response(request, 404, NOT_FOUND)


@api.exception_handler(PermissionDenied)
def _denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(request, 403, str(exc) or "Your role does not allow this.")


@api.exception_handler(PermissionError)
def _another_organizations(request: HttpRequest, exc: PermissionError) -> HttpResponse:
    # The services raise PermissionError for a record outside the caller's organization (the
    # routers look records up within it first, so this is a second line): answered exactly
    # like a record that does not exist.
    return error_response(request, 404, NOT_FOUND)


@api.exception_handler(DjangoValidationError)
def _service_refused(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    problems = django_problems(exc)
    text = " ".join(p["message"] for p in problems).strip() or "That was refused."
    if not text.endswith("Nothing was saved."):
        text += " Nothing was saved."
    return error_response(request, 422, text, field=problems[0]["field"], errors=problems)


@api.exception_handler(StaleVersion)
def _stale(request: HttpRequest, exc: StaleVersion) -> HttpResponse:
    return error_response(
        request,
        409,
        "Someone else changed this session since you read it; nothing was saved. Read it "
        f"again (it is now version {exc.current}) and redo the change.",
        field="version",
        errors=[{"field": "version", "message": f"The current version is {exc.current}."}],
        extra={"current_version": exc.current},
    )


@api.exception_handler(SessionLocked)
def _locked(request: HttpRequest, exc: SessionLocked) -> HttpResponse:
    return error_response(
        request,
        409,
        "This session has been signed: it can no longer be changed except by amendment, "
        "with a reason, on its record page. Nothing was saved.",
    )


@api.exception_handler(SigningRefused)
def _not_signed(request: HttpRequest, exc: SigningRefused) -> HttpResponse:
    return error_response(
        request,
        422,
        "Not signed: " + " ".join(exc.reasons),
        errors=[{"field": None, "message": r} for r in exc.reasons],
        extra={"reasons": exc.reasons},
    )


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("API error on %s %s", request.method, request.path, exc_info=exc)
    rid = str(getattr(request, "request_id", "") or "-")
    return error_response(request, 500, SERVER_ERROR.format(rid=rid))


@api.exception_handler(DatabaseError)
def _database_error(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    """The database went away: the same 503 as the pages (glabella/web/middleware.py); any
    other database error is a server error like the rest."""
    if is_connection_failure(exc):
        return unavailable_response(request, exc)
    return _server_error(request, exc)


api.add_router("/", products.router)
api.add_router("/", patients.router)
api.add_router("/", sessions.router)
api.add_router("/", inventory.router)
api.add_router("/", scheduling.router)
api.add_router("/", outcomes.router)
