"""Scheduled ledger jobs: tier downgrades once the window's spend falls."""

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from fastapi import FastAPI

from service.storage.postgres.expiry import run_ledger_jobs
from tests.integration.conftest import NewCard, webhook_listener
from tests.integration.test_sales import card_info


async def test_tiers_move_down_on_schedule_when_the_window_spend_falls(
    client: httpx.AsyncClient, app: FastAPI, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    lapsed, loyal = await new_card(0), await new_card(0, spend=6_000_000)
    old = datetime.now(UTC) - timedelta(days=400)
    await ledger_db.execute(
        "UPDATE cards SET tier = 'gold' WHERE number = ANY($1)", [lapsed, loyal]
    )
    await ledger_db.execute(
        "INSERT INTO tier_spend (card_id, amount, occurred_at)"
        " SELECT card_id, 6000000, $2 FROM cards WHERE number = $1",
        lapsed,
        old,
    )
    tiers = app.state.services.programs.current.document.tiers
    async with webhook_listener(ledger_db, ["tier_change"]):
        moved = await run_ledger_jobs(app.state.services.pool, tiers, datetime.now(UTC))
    assert moved is not None and lapsed in moved and loyal not in moved
    rows = await ledger_db.fetch(
        "SELECT number, tier FROM cards WHERE number = ANY($1)", [lapsed, loyal]
    )
    assert {r["number"]: r["tier"] for r in rows} == {lapsed: "base", loyal: "gold"}
    event = await ledger_db.fetchval(
        "SELECT payload FROM outbox WHERE kind = 'tier_change' AND payload->>'card' = $1", lapsed
    )
    assert event == {"card": lapsed, "from": "gold", "to": "base"}
    again = await run_ledger_jobs(app.state.services.pool, tiers, datetime.now(UTC))
    assert again is not None and lapsed not in again
    await app.state.services.card_cache.forget(lapsed)
    assert (await card_info(client, lapsed))["tier"] == "base"
