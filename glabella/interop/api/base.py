"""What every API router shares: strict schemas, the error shape, the caller's actor.

Routers are thin: they parse with a schema, call the same service the page calls, and map
its answer to a schema. Every error body has the same shape (``ErrorOut``): a sentence a
person can act on, the field it concerns (when there is one), and every field problem.
"""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import ConfigDict

from glabella.accounts.actor import Actor


class StrictIn(Schema):
    """Request bodies: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class FieldProblem(Schema):
    field: str | None = None
    message: str


class ErrorOut(Schema):
    message: str
    field: str | None = None
    errors: list[FieldProblem] = []


class ApiError(Exception):
    """Raise from a router: becomes ``ErrorOut`` with STATUS."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.errors = errors or ([{"field": field, "message": message}] if field else [])
        self.extra = extra or {}


def actor(request: Any) -> Actor:
    """The authenticated caller (set by the bearer-token auth of ``core.api``)."""
    found = getattr(request, "auth", None)
    if not isinstance(found, Actor):
        raise ApiError("Sign in with an API token.", status=401)
    return found


def require(request: Any, permission: str) -> Actor:
    """The caller, if their role has PERMISSION; otherwise a 403 in words."""
    who = actor(request)
    if not who.can(permission):
        raise ApiError("Your role does not allow this.", status=403)
    return who


# The error answers every operation may give, for the OpenAPI document.
ERRORS: dict[int, type[ErrorOut]] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}
