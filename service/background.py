"""The work every worker does besides answering requests, each job a loop that outlives a
failed round: re-reading keys, stores and the current program (the safety net behind
Redis's program switches, which it also follows), the ledger's expiry and tier jobs,
and the back office's scheduled publications, expiry notices and webhook deliveries.

Every job is safe to run in many workers at once: the database decides who does what.
The lifespan (``service.api.app``) starts them and cancels them at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from service.api.state import Services
from service.storage.postgres import expiry, keys, stores
from service.storage.redis.program_switch import follow_switches
from service.usecases import admin_programs, admin_webhooks
from service.usecases.directory import load_current

_log = logging.getLogger(__name__)


async def load_program(services: Services) -> None:
    await load_current(services.program_versions, services.programs)


async def refresh(services: Services) -> None:
    """Keys, stores, the program version and the promotions' counters, read again."""
    services.keyring.replace(await keys.active_keys(services.pool))
    services.stores.replace(await stores.list_stores(services.pool))
    await load_program(services)
    await services.promotions.refresh()
    pool = services.pool
    services.metrics.pool_connections.labels("in_use").set(pool.get_size() - pool.get_idle_size())
    services.metrics.pool_connections.labels("idle").set(pool.get_idle_size())


async def run_ledger_jobs(services: Services, now: datetime) -> None:
    """Expiry and tier downgrades; the cards they moved leave the cache."""
    tiers = services.programs.current.document.tiers
    numbers = await expiry.run_ledger_jobs(services.pool, tiers, now)
    for number in numbers or ():
        await services.card_cache.forget(number)
    if numbers:
        _log.info("ledger jobs moved cards", extra={"cards": len(numbers)})


def retry_policy(services: Services) -> admin_webhooks.RetryPolicy:
    s = services.settings
    return admin_webhooks.RetryPolicy(
        s.webhook_timeout_s, s.webhook_max_attempts, s.webhook_backoff_s, s.webhook_backoff_max_s
    )


async def run_back_office_jobs(services: Services, now: datetime) -> None:
    published = await admin_programs.publish_due(
        services.program_versions, services.program_switch, now
    )
    if published:
        _log.info("scheduled programs published", extra={"versions": published})
    webhooks = services.webhooks
    if await webhooks.wanted("expiring"):  # nobody listens: no need to note anything
        await webhooks.note_expiring(now, timedelta(days=services.settings.expiring_notice_days))
    await admin_webhooks.deliver_due(webhooks, services.webhook_sender, retry_policy(services), now)


async def _every(
    seconds: Callable[[], float], job: Callable[[], Awaitable[None]], failed: str
) -> None:
    """Run ``job`` every ``seconds()``, for ever; a failed round is logged and the next
    one tries again (the API keeps serving with what it has; readiness tells the rest)."""
    while True:
        await asyncio.sleep(seconds())
        try:
            await job()
        except Exception:
            _log.warning(failed, exc_info=True)


def start_tasks(services: Services) -> list[asyncio.Task[None]]:
    """The worker's background tasks; the lifespan cancels them at shutdown."""
    settings = services.settings
    return [
        asyncio.create_task(_every(
            lambda: settings.api_key_refresh_s, lambda: refresh(services),
            "background refresh failed",
        )),
        asyncio.create_task(_every(
            lambda: settings.expire_interval_s,
            lambda: run_ledger_jobs(services, datetime.now(UTC)),
            "ledger jobs failed; the next run retries",
        )),
        asyncio.create_task(_every(
            lambda: settings.back_office_interval_s,
            lambda: run_back_office_jobs(services, datetime.now(UTC)),
            "back office jobs failed",
        )),
        asyncio.create_task(follow_switches(services.redis, lambda: load_program(services))),
    ]  # fmt: skip
