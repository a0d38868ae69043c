"""The route class of every route that takes a JSON body: the caller first, then the body.

FastAPI parses a request's body before it solves the route's dependencies, so a body
that is not UTF-8 was answered 400 before the key was even looked at, and a body sent
as ``text/plain`` or a form was parsed as JSON all the same. ``JsonRoute`` checks the
key (401, and 403 where the route is for admins) before anything of the body, then
refuses what is not JSON by its type (415) or by its bytes (422, in the documented
shape), then hands the request to FastAPI's own handling.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from service.api.deps import PRINCIPAL, permission_of, principal_of
from service.api.schemas import ErrorOut
from service.domain.access import Permission


def check_json(request: Request, body: bytes) -> None:
    """Refuse a body that is not JSON: by its declared type (415), or not UTF-8 (422)."""
    if not body:
        return  # no body: the route's own validation says whether one was needed
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise HTTPException(415, "send the body as application/json")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": "the body is not UTF-8 text",
                    "input": None,
                }
            ]
        ) from None


def declare_json_errors(route: APIRoute) -> None:
    """Declare in the OpenAPI document what ``check_json`` may answer."""
    if route.body_field is None:
        return
    route.responses.setdefault(415, {"model": ErrorOut, "description": "not application/json"})
    route.responses.setdefault(
        422, {"model": ErrorOut, "description": "malformed input; `fields` names each field"}
    )


def route_permissions(dependant: Dependant) -> tuple[Permission, ...]:
    """The permissions a route's dependencies check (``deps.allowed``), at any depth."""
    found: list[Permission] = []
    for dependency in dependant.dependencies:
        permission = permission_of(dependency.call)
        if permission is not None:
            found.append(permission)
        found.extend(route_permissions(dependency))
    return tuple(found)


class JsonRoute(APIRoute):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        declare_json_errors(self)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        permissions = route_permissions(self.dependant)

        async def handle(request: Request) -> Response:
            principal = request.scope[PRINCIPAL] = principal_of(request)
            for permission in permissions:
                principal.ensure(permission)
            check_json(request, await request.body())
            return await handler(request)

        return handle
