"""The bare stack ceiling: the service's own FastAPI configuration (middleware, error
handlers, orjson, uvicorn with uvloop and httptools, the same supervisor forking the
same number of workers, each on its own listening socket) with one endpoint that
validates the same receipt model as /v1/calculate and echoes it.

    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) python -m benchmarks.bare_app --port 18000 --workers 2

(The folder makes prometheus_client keep the metrics in multiprocess files, as
`loyalty serve` does for its workers; `make bench` gives it a fresh one.)

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


def main() -> int:
    import argparse

    from service.settings import Settings
    from service.supervisor import Supervisor, preload

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(port=args.port, workers=args.workers, host="127.0.0.1")
    config, socks = preload(settings, create_bare_app())
    return Supervisor(config, socks).run()


if __name__ == "__main__":
    raise SystemExit(main())
