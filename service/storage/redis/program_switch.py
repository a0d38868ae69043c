"""The program switch over Redis: the current version under a key, and a pub/sub message
on every change, so that every worker of every pod loads a published version at once.

Postgres stays the source of truth: a worker told of a switch reads the current version
from it, and re-reads it periodically in case a message was lost (Redis down, reconnect).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from service.storage.redis.cache import PROGRAM_CHANNEL, PROGRAM_KEY, RedisClient

_log = logging.getLogger(__name__)


class RedisProgramSwitch:
    def __init__(self, client: RedisClient) -> None:
        self._client = client

    async def announce(self, version: int) -> None:
        # In a cluster PUBLISH reaches the subscribers of every node (the cluster bus).
        await self._client.set(PROGRAM_KEY, version)
        await self._client.publish(PROGRAM_CHANNEL, str(version))


async def _listen(client: RedisClient, on_switch: Callable[[], Awaitable[None]]) -> None:
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(PROGRAM_CHANNEL)
        await on_switch()  # a switch missed while (re)subscribing is caught here
        while True:
            # A blocking read (no read timeout): redis-py's timed reads can swallow the
            # task's cancellation, which hung shutdown. A dead connection still ends the
            # read with an error, and the periodic re-read covers a silent one.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None:
                await on_switch()


async def follow_switches(
    client: RedisClient, on_switch: Callable[[], Awaitable[None]], retry_s: float = 1.0
) -> None:
    """Call ``on_switch`` on every announced switch, forever; resubscribe after failures."""
    while True:
        try:
            await _listen(client, on_switch)
        except (RedisError, OSError):
            _log.warning("program switch channel lost; resubscribing", exc_info=True)
        except Exception:  # a failed load must not end the subscription
            _log.warning("program switch handling failed", exc_info=True)
        await asyncio.sleep(retry_s)
