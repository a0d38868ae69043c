"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path): request id,
latency histogram and counters per route template, and the last resort for an error
nothing else handled."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import INTERNAL_ERROR_BODY, INTERNAL_ERROR_START
from service.api.logs import request_id_var
from service.api.metrics import Metrics

_log = logging.getLogger("loyalty.access")


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics_holder: Any, access_log: bool = False) -> None:
        self.app = app
        self._holder = metrics_holder  # the FastAPI app: metrics appear in its lifespan
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]  # fmt: skip
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status:  # too late to answer: let the server close the connection
                raise
            # Answered here rather than by Starlette's last handler, which re-raises after
            # answering: the server then drops the kept-alive connection of a POS that
            # did nothing wrong.
            _log.exception("unhandled error", extra={"path": scope.get("path")})
            await send_with_id({**INTERNAL_ERROR_START})  # a copy: the request id goes in
            await send_with_id(INTERNAL_ERROR_BODY)
            metrics: Metrics | None = getattr(self._holder.state, "metrics", None)
            if metrics is not None:
                metrics.count_error("internal_error")
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        metrics: Metrics | None = getattr(self._holder.state, "metrics", None)
        if metrics is not None:
            metrics.observe_request(scope["method"], template, status, elapsed)
        if self._access_log:
            _log.info(
                "request",
                extra={"route": template, "status": status, "ms": round(elapsed * 1000, 2)},
            )


# A caller's request id is kept only as a short token of safe characters: it goes into
# logs and back into a header, so nothing that could forge a log line or a header passes.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=-]{1,64}")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("ascii") if _SAFE_REQUEST_ID.fullmatch(value) else None
    return None
