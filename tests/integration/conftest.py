"""Cards of their own for each test, so that tests sharing the demo database never
see each other's balances."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.local.demo import ensure_demo_keys, load_demo
from service.storage.postgres.pool import connect
from tests.conftest import ADMIN_KEY, POS_KEY, app_settings, fresh_database

NewCard = Callable[..., Awaitable[str]]
_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)


@contextlib.asynccontextmanager
async def webhook_listener(conn: asyncpg.Connection, events: list[str]) -> AsyncIterator[None]:
    """An active webhook subscription for ``events`` while the block runs (to a port
    nothing listens on): the events only a listener gets are written to the outbox
    (loyalty_event_wanted, loyalty_sale_event_wanted); it is switched off after."""
    subscription = await conn.fetchval(
        "INSERT INTO webhook_subscriptions (url, secret, events, active, created_by)"
        " VALUES ('http://127.0.0.1:9/hook', 's', $1, true, 'test') RETURNING subscription_id",
        events,
    )
    try:
        yield
    finally:
        await conn.execute(
            "UPDATE webhook_subscriptions SET active = false WHERE subscription_id = $1",
            subscription,
        )


@pytest.fixture
async def ledger_db(demo_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain (committing) connection to the demo database, to set up and inspect."""
    conn = await connect(demo_database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def new_card(ledger_db: asyncpg.Connection) -> NewCard:
    async def make(
        points: int = 0,
        *,
        spend: int = 0,
        status: str = "active",
        expires_in_days: int = 365,
        referred_by: str | None = None,
    ) -> str:
        number = f"77{next(_numbers):011d}"
        now = datetime.now(UTC)
        card_id = await ledger_db.fetchval(
            "INSERT INTO cards (number, status, referred_by) VALUES ($1, $2,"
            " (SELECT card_id FROM cards WHERE number = $3)) RETURNING card_id",
            number,
            status,
            referred_by,
        )
        if points:
            lot_id = await ledger_db.fetchval(
                "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
                " source) VALUES ($1, $2, $2, $3, $4, 'adjustment') RETURNING lot_id",
                card_id,
                points,
                now - timedelta(days=400),
                now + timedelta(days=expires_in_days),
            )
            await ledger_db.execute(
                "INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)"
                " VALUES ($1, 'adjustment', $2, $3, 'test opening balance', 'tests')",
                card_id,
                points,
                lot_id,
            )
        if spend:
            await ledger_db.execute(
                "INSERT INTO tier_spend (card_id, amount, occurred_at) VALUES ($1, $2, $3)",
                card_id,
                spend,
                now - timedelta(days=10),
            )
        return number

    return make


OwnProgram = tuple[httpx.AsyncClient, str, FastAPI]


@contextlib.asynccontextmanager
async def own_program(
    server_url: str, redis_url: str, document: dict[str, Any], **settings: Any
) -> AsyncIterator[OwnProgram]:
    """The service over a database of its own holding ``document`` (a variant of the demo)
    with the demo's stores, cards and test keys: a client, the database's URL, the app."""
    async with fresh_database(server_url, "loyalty_own") as url:
        conn = await connect(url)
        try:
            await load_demo(conn, document=document)
            await ensure_demo_keys(conn, admin_key=ADMIN_KEY, pos_key=POS_KEY)
        finally:
            await conn.close()
        app = create_app(app_settings(url, redis_url, **settings))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client, url, app
