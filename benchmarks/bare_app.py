"""The bare stack ceiling: the service's own FastAPI configuration (middleware, error
handlers, orjson, uvicorn with uvloop and httptools, the same supervisor forking the
same number of workers, each on its own listening socket) with endpoints that validate
the same receipt model as /v1/calculate and echo it.

    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) python -m benchmarks.bare_app --port 18000 --workers 2

(The folder makes prometheus_client keep the metrics in multiprocess files, as
`loyalty serve` does for its workers; `make bench` gives it a fresh one.)

Two echoes (issue 21):
- ``/v1/echo-lean``, the ceiling of SPEC §8's new target: the same request path as
  /v1/calculate, ``PosRoute`` (the key checked against a key ring, the body refused
  unless JSON, validated by pydantic straight from the bytes, the endpoint called as
  ``endpoint(body, principal, request)``, the store checked against the key), declared on
  the app's own router as ``pos.add_sale_routes`` declares calculate;
- ``/v1/echo``, the first round's ceiling: FastAPI's standard body handling (the body
  parsed by ``json``, then validated, dependencies solved), no key. It flattered the
  ratio: calculate had a leaner path than its reference.

Whatever /v1/calculate costs beyond ``/v1/echo-lean`` is the service's own work.
"""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI, Request

from benchmarks.fixtures import POS_KEY
from service.api.deps import Sell
from service.api.errors import install_error_handlers
from service.api.metrics import Metrics
from service.api.middleware import ObservabilityMiddleware
from service.api.pos_route import PosRoute
from service.api.responses import OrjsonResponse
from service.api.schemas import CalculateRequest
from service.domain.access import KeyRing, Principal, StoredKey, key_digest, key_id_for
from service.rules.demo import DEMO_STORES


def bench_keyring() -> KeyRing:
    """The benchmark's POS key, bound to the demo's stores as `loyalty serve`'s demo key
    is (service/local/demo.py)."""
    stores = frozenset(s.store_id for s in DEMO_STORES)
    principal = Principal(key_id_for(POS_KEY), "bench pos", "pos", stores)
    return KeyRing([StoredKey(principal, key_digest(POS_KEY))])


async def echo_lean(body: CalculateRequest, principal: Sell, request: Request) -> OrjsonResponse:
    # Called by PosRoute as (body, principal, request), as /v1/calculate is.
    principal.ensure_store(body.store_id)
    return OrjsonResponse(body.model_dump(mode="json"))


def create_bare_app() -> FastAPI:
    app = FastAPI(title="bare stack ceiling")
    app.state.metrics = Metrics()
    # What PosRoute reaches on every request: the key ring (principal_of).
    app.state.services = SimpleNamespace(keyring=bench_keyring())
    install_error_handlers(app)
    app.router.add_api_route(
        "/v1/echo-lean",
        echo_lean,
        methods=["POST"],
        route_class_override=PosRoute,
        response_model=CalculateRequest,
    )

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
