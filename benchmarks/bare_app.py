"""The bare stack ceiling: the service's own FastAPI configuration (middleware, error
handlers, orjson, uvicorn with uvloop and httptools, the same workers) with one
endpoint that validates the same receipt model as /v1/calculate and echoes it.

    uvicorn --factory benchmarks.bare_app:create_bare_app --workers 2 ...

Whatever /v1/calculate costs beyond this is the service's own work.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.api.errors import install_error_handlers
from service.api.metrics import Metrics
from service.api.middleware import ObservabilityMiddleware
from service.api.responses import OrjsonResponse
from service.api.schemas import CalculateRequest


def create_bare_app() -> FastAPI:
    app = FastAPI(title="bare stack ceiling")
    app.state.metrics = Metrics()
    install_error_handlers(app)

    @app.post("/v1/echo")
    async def echo(body: CalculateRequest) -> OrjsonResponse:
        return OrjsonResponse(body.model_dump(mode="json"))

    @app.get("/healthz")
    async def healthz() -> OrjsonResponse:
        return OrjsonResponse({"status": "ok"})

    app.add_middleware(ObservabilityMiddleware, metrics_holder=app)
    return app
