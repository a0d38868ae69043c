"""Webhook subscriptions to ledger events, and their delivery: signed with HMAC-SHA256,
retried with exponential backoff.

The receiver checks ``X-Loyalty-Signature: t=<unix time>,v1=<hex>``, where the hex is
HMAC-SHA256 of ``"<t>." + body`` under the subscription's secret, and may refuse old
``t`` values to stop replays. Delivery is at least once: ``event_id`` and ``event``
together identify an event for deduplication.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from service.domain.addresses import is_private_literal
from service.domain.errors import invalid_field


@dataclass(frozen=True, slots=True)
class Delivery:
    subscription_id: int
    event_id: int
    event: str
    attempts: int
    url: str
    secret: str
    active: bool
    payload: dict[str, Any]
    created_at: datetime


_log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryRound:
    """What one round of deliveries did: delivered, failed and tried again later, given up
    (attempts exhausted, or the subscription stopped)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    timeout_s: float
    max_attempts: int
    backoff_s: float
    backoff_max_s: float

    def delay(self, attempts: int) -> timedelta:
        """Wait before the next attempt after ``attempts`` failed: doubling, capped."""
        return timedelta(seconds=min(self.backoff_max_s, self.backoff_s * 2 ** (attempts - 1)))


class DeliveryStore(Protocol):
    async def fan_out(self, limit: int = 1000) -> int: ...

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]: ...

    async def settle(
        self, delivery: Delivery, *, status: str, error: str | None, retry_at: datetime | None
    ) -> None: ...


class SubscriptionStore(Protocol):
    async def create(self, url: str, events: list[str], secret: str, author: str) -> int: ...

    async def subscriptions(self, subscription_id: int | None = None) -> list[dict[str, Any]]:
        """Every subscription, or the one ``subscription_id`` (``NotFound`` if none)."""
        ...

    async def deactivate(self, subscription_id: int, author: str) -> None: ...

    async def deliveries(
        self, subscription_id: int, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]: ...


class Sender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; the HTTP status, or raise on a transport failure."""
        ...


async def subscribe(
    store: SubscriptionStore,
    url: str,
    host: str,
    events: Iterable[str],
    secret: str | None,
    author: str,
    *,
    allow_private: bool,
) -> dict[str, Any]:
    """Subscribe ``url`` (whose host is ``host``) to ``events``, signed with ``secret`` or
    a random one; the subscription with its secret, which is shown this once. A loopback,
    private or link-local target is refused unless ``allow_private``."""
    if not allow_private and is_private_literal(host):
        raise invalid_field(
            "url", "a webhook may not target a loopback, private or link-local address"
        )
    secret = secret or "whsec_" + secrets.token_urlsafe(24)
    subscription_id = await store.create(url, sorted(set(events)), secret, author)
    created = (await store.subscriptions(subscription_id))[0]
    return {**created, "secret": secret}


async def subscriptions(store: SubscriptionStore) -> list[dict[str, Any]]:
    """Every subscription, active or not, without its secret."""
    return await store.subscriptions()


async def unsubscribe(store: SubscriptionStore, subscription_id: int, author: str) -> None:
    """Stop a subscription; its pending deliveries fail as unsubscribed."""
    await store.deactivate(subscription_id, author)


async def deliveries(
    store: SubscriptionStore, subscription_id: int, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """A subscription's deliveries, newest event first, below event id ``before``."""
    return await store.deliveries(subscription_id, before=before, limit=limit)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def body_of(delivery: Delivery) -> bytes:
    return orjson.dumps(
        {
            "event_id": delivery.event_id,
            "event": delivery.event,
            "created_at": delivery.created_at,
            "data": delivery.payload,
        }
    )


async def _attempt(delivery: Delivery, sender: Sender, now: datetime) -> str | None:
    """None when delivered; else why not."""
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "X-Loyalty-Event": delivery.event,
        "X-Loyalty-Signature": signature(delivery.secret, int(now.timestamp()), body),
    }
    try:
        status = await sender.post(delivery.url, body, headers)
    except Exception as error:  # any transport failure is a failed attempt, retried
        return f"{type(error).__name__}: {error}"[:500]
    return None if 200 <= status < 300 else f"HTTP {status}"


async def deliver_due(
    store: DeliveryStore, sender: Sender, policy: RetryPolicy, now: datetime, limit: int = 100
) -> DeliveryRound:
    """Fan new events out, then attempt the deliveries due; returns what became of them."""
    await store.fan_out()
    lease = now + timedelta(seconds=policy.timeout_s * 2)
    done = DeliveryRound()
    for delivery in await store.claim(now, lease, limit):
        if not delivery.active:
            done.failed += 1
            await store.settle(delivery, status="failed", error="unsubscribed", retry_at=None)
            continue
        error = await _attempt(delivery, sender, now)
        if error is None:
            done.delivered += 1
            await store.settle(delivery, status="delivered", error=None, retry_at=None)
        elif delivery.attempts >= policy.max_attempts:
            done.failed += 1
            _log.warning("webhook given up", extra={"event_id": delivery.event_id})
            await store.settle(delivery, status="failed", error=error, retry_at=None)
        else:
            done.retried += 1
            retry_at = now + policy.delay(delivery.attempts)
            await store.settle(delivery, status="pending", error=error, retry_at=retry_at)
    return done
