"""A sale's 'sale' outbox event is written only when a webhook subscription listens for
what the sale did (``loyalty_sale_event_wanted``; issue 21: unheard, it was a sixth of a
sale's WAL), and a tier change's only when one listens for ``tier_change``
(``loyalty_event_wanted``, session 12). The delivery itself:
tests/e2e/test_admin_webhooks.py."""

from __future__ import annotations

import asyncpg


async def _wanted(db: asyncpg.Connection, earned: int, redeemed: int) -> bool:
    return bool(await db.fetchval("SELECT loyalty_sale_event_wanted($1, $2)", earned, redeemed))


async def _subscribe(db: asyncpg.Connection, events: list[str], active: bool = True) -> None:
    await db.execute(
        "INSERT INTO webhook_subscriptions (url, secret, events, active, created_by)"
        " VALUES ('https://crm.example/hook', 's', $1, $2, 'test')",
        events,
        active,
    )


async def test_nobody_listening_no_sale_event(db: asyncpg.Connection) -> None:
    assert not await _wanted(db, 50, 10)
    await _subscribe(db, ["accrual", "redemption"], active=False)
    await _subscribe(db, ["tier_change", "expiry"])
    assert not await _wanted(db, 50, 10)


async def test_a_listener_gets_the_sales_that_did_what_it_listens_for(
    db: asyncpg.Connection,
) -> None:
    await _subscribe(db, ["redemption"])
    assert await _wanted(db, 0, 10) and await _wanted(db, 50, 10)
    assert not await _wanted(db, 50, 0)
    await _subscribe(db, ["accrual"])
    assert await _wanted(db, 50, 0)
    assert not await _wanted(db, 0, 0)  # a sale that moved no points never had an event


async def test_a_tier_change_event_only_for_a_listener(db: asyncpg.Connection) -> None:
    async def wanted() -> bool:
        return bool(await db.fetchval("SELECT loyalty_event_wanted('tier_change')"))

    assert not await wanted()
    await _subscribe(db, ["tier_change"], active=False)
    await _subscribe(db, ["accrual", "redemption"])
    assert not await wanted()
    await _subscribe(db, ["expiry", "tier_change"])
    assert await wanted()
