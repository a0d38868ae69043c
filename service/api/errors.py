"""The one table from domain errors to HTTP, and the handlers that render them.

Every error body is ``{"error": code, "detail": message}`` plus, where useful,
machine-readable extras (``fields`` for validation, ``balance`` for an overspend).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from service.api.metrics import Metrics
from service.api.responses import OrjsonResponse
from service.domain import errors as e
from service.i18n import error_text, negotiate
from service.storage.postgres.pool import (
    CONNECTION_ERRORS,
    INPUT_ERRORS,
    RETRY_ERRORS,
    domain_error,
)

_log = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[e.DomainError], int], ...] = (
    (e.QuantityExceeded, 422),
    (e.ProgramInvalid, 422),
    (e.InvalidInput, 422),
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.Unavailable, 503),
    (e.DomainError, 400),
)


def status_for(error: e.DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 400


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _error_response(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> OrjsonResponse:
    """Every handled error's answer, counted by its code on the way (``loyalty_errors``;
    the one unhandled error's, ``internal_error``, is counted where it is sent)."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.count_error(body["error"])
    language = request_language(request)
    if language != "en":
        body = {**body, "detail": error_text(language, body["error"], body["detail"])}
    return OrjsonResponse(body, status, headers=headers)


def request_language(request: Request) -> str:
    """What people read in answer to ``request``: the language its ``Accept-Language``
    asks for, else the chain's (settings); for every route, errors included."""
    services = getattr(request.app.state, "services", None)
    default = "en" if services is None else services.settings.language
    return negotiate(request.headers.get("accept-language"), default)


async def _domain_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, e.DomainError)
    status = status_for(exc)
    headers = {}
    if isinstance(exc, e.Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
    return _error_response(request, status, error_body(exc.code, exc.message, **extra), headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


async def _validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return _error_response(request, 422, error_body("validation_error", detail, fields=fields))


async def _http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}.get(
        exc.status_code, "http_error"
    )
    return _error_response(request, exc.status_code, error_body(code, str(exc.detail)))


async def _driver_error(request: Request, exc: Exception) -> OrjsonResponse:
    """A database failure raised past the repositories' own mapping (a driver error on a
    path without it, a deadlock nobody retried): rendered as its domain error."""
    error = domain_error(exc)
    if error is None:  # pragma: no cover - the handler is registered for mapped classes only
        raise exc
    return await _domain_error(request, error)


# The answer to an error nothing handled (ObservabilityMiddleware sends it).
_INTERNAL = orjson.dumps(error_body("internal_error", "internal error"))
INTERNAL_ERROR_START: Message = {
    "type": "http.response.start", "status": 500,
    "headers": [(b"content-type", b"application/json"),
                (b"content-length", str(len(_INTERNAL)).encode())],
}  # fmt: skip
INTERNAL_ERROR_BODY: Message = {"type": "http.response.body", "body": _INTERNAL}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(e.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for driver_error in (*CONNECTION_ERRORS, *RETRY_ERRORS, *INPUT_ERRORS):
        app.add_exception_handler(driver_error, _driver_error)
