"""Background work of the back office in every worker: following program switches
announced over Redis, publishing scheduled versions, noting points about to expire,
delivering webhooks.

Every job is safe to run in many workers at once: the database decides who does what.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from service.api.state import Services
from service.storage.program_switch import follow_switches
from service.usecases import admin_programs, admin_webhooks

_log = logging.getLogger(__name__)


def retry_policy(services: Services) -> admin_webhooks.RetryPolicy:
    s = services.settings
    return admin_webhooks.RetryPolicy(
        s.webhook_timeout_s, s.webhook_max_attempts, s.webhook_backoff_s, s.webhook_backoff_max_s
    )


async def run_jobs(services: Services, now: datetime) -> None:
    published = await admin_programs.publish_due(
        services.program_versions, services.program_switch, now
    )
    if published:
        _log.info("scheduled programs published", extra={"versions": published})
    webhooks = services.webhooks
    if await webhooks.wanted("expiring"):  # nobody listens: no need to note anything
        await webhooks.note_expiring(now, timedelta(days=services.settings.expiring_notice_days))
    await admin_webhooks.deliver_due(webhooks, services.webhook_sender, retry_policy(services), now)


async def _jobs_forever(services: Services) -> None:
    while True:
        await asyncio.sleep(services.settings.back_office_interval_s)
        try:
            await run_jobs(services, datetime.now(UTC))
        except Exception:  # the next round retries; the API keeps serving
            _log.warning("back office jobs failed", exc_info=True)


def start_tasks(
    services: Services, load_program: Callable[[], Awaitable[None]]
) -> list[asyncio.Task[None]]:
    """The back office's background tasks; the lifespan cancels them at shutdown."""
    return [
        asyncio.create_task(follow_switches(services.redis, load_program)),
        asyncio.create_task(_jobs_forever(services)),
    ]
