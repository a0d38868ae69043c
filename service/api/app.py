"""The FastAPI app factory. Nothing connects at import; the lifespan builds the pools,
loads keys, stores and the program, warms the kernels, and closes all in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from service import background, kernels
from service.api.docs import install_offline_docs
from service.api.errors import install_error_handlers
from service.api.metrics import Metrics
from service.api.middleware import ObservabilityMiddleware
from service.api.routers import (
    admin_analysis,
    admin_cards,
    admin_customers,
    admin_keys,
    admin_programs,
    admin_promos,
    admin_receipts,
    admin_reports,
    admin_rewards,
    admin_simulations,
    admin_stores,
    admin_wallets,
    admin_webhooks,
    cards,
    health,
    pos,
    registrations,
    wallets,
)
from service.api.state import Services
from service.console import install_console
from service.domain.access import KeyRing
from service.settings import Settings
from service.storage.card_states import CachedCardStates
from service.storage.http.webhook_sender import HttpxSender
from service.storage.postgres import pool as postgres
from service.storage.postgres.admin_cards import CardAdmin
from service.storage.postgres.admin_stores import StoreAdmin
from service.storage.postgres.cards import CardQueries
from service.storage.postgres.customers import Customers
from service.storage.postgres.holds import PointHolds
from service.storage.postgres.import_jobs import ImportJobs
from service.storage.postgres.keys import KeyStore
from service.storage.postgres.ledger import Ledger
from service.storage.postgres.programs import ProgramVersions
from service.storage.postgres.promo_batches import PromoBatches
from service.storage.postgres.refunds import ReturnsLedger
from service.storage.postgres.registrations import Registrations
from service.storage.postgres.reports import Reports
from service.storage.postgres.rewards import PostgresRewards
from service.storage.postgres.signing import SigningKeys
from service.storage.postgres.simulation_jobs import SimulationJobs
from service.storage.postgres.wallets import PostgresWallets
from service.storage.postgres.webhooks import Webhooks
from service.storage.promotions import Promotions
from service.storage.redis import cache
from service.storage.redis.calculations import CalculationStore
from service.storage.redis.card_writes import CardStateWriter
from service.storage.redis.program_switch import RedisProgramSwitch
from service.storage.redis.resp import RespClient
from service.usecases.calculate import ReceiptLimits
from service.usecases.directory import ProgramHolder, StoreDirectory, compile_version

_log = logging.getLogger(__name__)

API_DESCRIPTION = """
Loyalty calculation for retail POS: per-line discounts, bonus points earned and
spendable, and a Postgres ledger of record. Money is integer kopecks; quantities are
decimals with at most 3 places. Authenticate with `Authorization: Bearer <key>`.
"""


def _count_lookups(metrics: Metrics) -> Callable[[str], None]:
    """Card-cache lookups counted by "hit" / "miss", with the labelled children kept."""
    children = {result: metrics.card_cache.labels(result) for result in ("hit", "miss")}
    return lambda result: children[result].inc()


async def _build(settings: Settings, metrics: Metrics) -> Services:
    if settings.database_url is None or settings.redis_url is None:
        raise RuntimeError("database_url and redis_url must be set (loyalty serve sets them)")
    pool = await postgres.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=settings.db_command_timeout_s,
    )
    cluster = await cache.is_cluster(
        settings.redis_url, settings.redis_timeout_s, configured=settings.redis_cluster
    )
    redis = cache.create_client(settings.redis_url, settings.redis_timeout_s, cluster=cluster)
    reader = RespClient(settings.redis_url, settings.redis_timeout_s, cluster=cluster)
    card_cache = cache.CardCache(redis, reader=reader)
    ledger = Ledger(
        pool,
        max_batch=settings.commit_batch_max,
        max_in_flight=settings.commit_in_flight,
        states=CardStateWriter(reader),
        on_batch=metrics.commit_batch_size.observe,
    )
    versions = ProgramVersions(pool)
    return Services(
        settings=settings,
        metrics=metrics,
        pool=pool,
        redis=redis,
        keyring=KeyRing(),
        stores=StoreDirectory(),
        programs=ProgramHolder(loader=lambda version: compile_version(versions, version)),
        card_cache=card_cache,
        cards=CachedCardStates(
            pool,
            card_cache,
            _count_lookups(metrics),
            partial(metrics.count_redis_fallback, "card_state"),
        ),
        # One RESP connection per worker for the hot path: card reads, calculation records
        # and the commits' stale marks leave together, one write per turn of the loop.
        calculations=CalculationStore(
            redis,
            writer=reader,
            count_fallback=partial(metrics.count_redis_fallback, "calculation"),
        ),
        ledger=ledger,
        returns=ReturnsLedger(pool, on_recorded=metrics.record_return),
        card_queries=CardQueries(pool),
        promotions=Promotions(pool, redis),
        limits=ReceiptLimits(
            max_lines=settings.max_lines,
            max_future_skew=timedelta(seconds=settings.max_future_skew_s),
        ),
        program_versions=versions,
        program_switch=RedisProgramSwitch(redis),
        card_admin=CardAdmin(pool),
        customers=Customers(pool),
        store_admin=StoreAdmin(pool),
        key_store=KeyStore(pool),
        registrations=Registrations(pool),
        promo_batches=PromoBatches(pool),
        reports=Reports(pool),
        webhooks=Webhooks(pool),
        holds=PointHolds(pool),
        wallets=PostgresWallets(pool),
        secrets=SigningKeys(pool),
        import_jobs=ImportJobs(pool),
        simulation_jobs=SimulationJobs(pool),
        rewards=PostgresRewards(pool),
        webhook_sender=HttpxSender(
            settings.webhook_timeout_s, allow_private=settings.webhook_allow_private
        ),
    )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.metrics = metrics = Metrics()
    services = await _build(settings, metrics)
    try:
        await background.refresh(services)
        await asyncio.to_thread(kernels.warm_up)
        services.kernels_warm = True
        # Everything built so far lives as long as the worker: keep it out of the
        # collector's scans, which otherwise walk the whole heap on every full pass.
        gc.collect()
        gc.freeze()
        services.tasks += background.start_tasks(services)
        app.state.services = services
        yield
    finally:
        for task in services.tasks:
            task.cancel()
        # Bounded: a task that swallowed its cancellation must not hold the shutdown.
        if services.tasks:
            await asyncio.wait(services.tasks, timeout=5)
        await services.webhook_sender.aclose()
        await services.ledger.close()
        await services.calculations.close()
        services.card_cache.close()
        await services.redis.aclose()
        await services.pool.close()


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Loyalty engine",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from install_offline_docs: no CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    pos.add_sale_routes(app.router)  # first: they are matched on every sale
    app.include_router(health.router)
    app.include_router(pos.router)
    app.include_router(cards.router)
    app.include_router(registrations.router)
    app.include_router(wallets.router)
    for admin in (
        admin_programs,
        admin_receipts,
        admin_stores,
        admin_cards,
        admin_customers,
        admin_promos,
        admin_reports,
        admin_simulations,
        admin_analysis,
        admin_webhooks,
        admin_keys,
        admin_wallets,
        admin_rewards,
    ):
        app.include_router(admin.router)
    install_offline_docs(app)  # after the routes a sale is matched against
    install_console(app)  # /console: the pages for the people who run the program
    app.add_middleware(ObservabilityMiddleware, metrics_holder=app, access_log=settings.access_log)
    return app
