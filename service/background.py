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
import time
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
    if services.programs.version is not None:
        services.metrics.program_version.set(services.programs.version)


async def refresh_keys(services: Services, *, changed_only: bool = False) -> None:
    """The keys that may authenticate, read again: every ``keys_refresh_s`` when a key was
    made or revoked since (a revocation reaches every worker within a second; an expiry
    is checked at each request), every ``api_key_refresh_s`` whatever happened. The keys
    used since the last round are marked used."""
    pool = services.pool
    version = await keys.keys_version(pool)
    if not changed_only or version != services.keys_version:
        production = services.settings.environment == "production"
        services.keyring.replace(await keys.active_keys(pool, accept_demo=not production))
        services.keys_version = version
    await keys.mark_used(pool, services.keyring.take_used())


async def refresh(services: Services) -> None:
    """Keys, stores, the program version and the promotions' counters, read again."""
    await refresh_keys(services)
    services.stores.replace(await stores.list_stores(services.pool))
    await load_program(services)
    await services.promotions.refresh()
    pool = services.pool
    services.metrics.pool_connections.labels("in_use").set(pool.get_size() - pool.get_idle_size())
    services.metrics.pool_connections.labels("idle").set(pool.get_idle_size())


async def run_ledger_jobs(services: Services, now: datetime) -> None:
    """Expiry and tier downgrades, timed by outcome; the cards they moved leave the cache."""
    started = time.perf_counter()
    try:
        tiers = services.programs.current.document.tiers
        numbers = await expiry.run_ledger_jobs(services.pool, tiers, now)
    except Exception:
        services.metrics.observe_expiry_run("failed", time.perf_counter() - started)
        raise
    outcome = "skipped" if numbers is None else "done"  # None: another worker ran them
    services.metrics.observe_expiry_run(outcome, time.perf_counter() - started)
    for number in numbers or ():
        await services.card_cache.forget(number)
    if numbers:
        _log.info("ledger jobs moved cards", extra={"cards": len(numbers)})


def retry_policy(services: Services) -> admin_webhooks.RetryPolicy:
    s = services.settings
    return admin_webhooks.RetryPolicy(
        s.webhook_timeout_s, s.webhook_max_attempts, s.webhook_backoff_s, s.webhook_backoff_max_s
    )


async def refresh_backlog(services: Services) -> None:
    """What the outbox still owes, for the gauges (the same reading in every worker)."""
    backlog = await services.webhooks.backlog()
    services.metrics.webhook_backlog.set(backlog.pending)
    services.metrics.outbox_age.set(backlog.oldest_age_s)


async def run_back_office_jobs(services: Services, now: datetime) -> None:
    await refresh_backlog(services)  # first: a round that fails below still shows the backlog
    published = await admin_programs.publish_due(
        services.program_versions, services.program_switch, now
    )
    if published:
        _log.info("scheduled programs published", extra={"versions": published})
    webhooks = services.webhooks
    if await webhooks.wanted("expiring"):  # nobody listens: no need to note anything
        await webhooks.note_expiring(now, timedelta(days=services.settings.expiring_notice_days))
    if await webhooks.wanted("birthday"):
        ahead = services.programs.current.document.events.birthday_days_ahead
        await webhooks.note_birthdays(now.date(), ahead)
    done = await admin_webhooks.deliver_due(
        webhooks, services.webhook_sender, retry_policy(services), now
    )
    services.metrics.count_webhooks(
        delivered=done.delivered, retried=done.retried, failed=done.failed
    )


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
            lambda: settings.keys_refresh_s,
            lambda: refresh_keys(services, changed_only=True),
            "key refresh failed",
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
