"""The API instance: bearer-token auth, the error handlers, the routers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.security import HttpBearer

from glabella.accounts.actor import Actor
from glabella.accounts.tokens import actor_for_request
from glabella.interop.api import (
    inventory,
    outcomes,
    patients,
    products,
    scheduling,
    sessions,
)
from glabella.interop.api.base import ApiError


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        return actor_for_request(request, via="api")


api = NinjaAPI(
    title="Glabella API",
    version="1",
    description="The REST API of Glabella. Authenticate with `Authorization: Bearer <token>`.",
    urls_namespace="api-v1",
    auth=TokenAuth(),
)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    body: dict[str, Any] = {"message": exc.message, "field": exc.field, "errors": exc.errors}
    body.update(exc.extra)
    return api.create_response(request, body, status=exc.status)


api.add_router("/", products.router)
api.add_router("/", patients.router)
api.add_router("/", sessions.router)
api.add_router("/", inventory.router)
api.add_router("/", scheduling.router)
api.add_router("/", outcomes.router)
