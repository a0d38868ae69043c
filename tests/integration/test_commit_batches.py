"""Group commit (service/storage/postgres/ledger.py): concurrent sales leave in batches, and every
sale in a batch is still decided on its own."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from service.domain.errors import InvalidInput
from service.storage.postgres.ledger import Ledger
from service.storage.redis.cache import card_key
from service.usecases.ports import Committed, RefusalReason, Replayed, SaleEntry, SaleOutcome
from tests.integration.conftest import NewCard
from tests.integration.test_sales import card_info, post, shirts


@pytest.fixture
def batch_sizes(app: FastAPI) -> Any:
    ledger: Ledger = app.state.services.ledger
    sizes: list[int] = []
    before = ledger.on_batch
    ledger.on_batch = sizes.append
    yield sizes
    ledger.on_batch = before


async def sale_entries_of(
    app: FastAPI, client: httpx.AsyncClient, numbers: list[str], prefix: str
) -> list[SaleEntry]:
    """What the commit use case sends the ledger for a sale of 10 points on each card
    (committed: transaction ids ``<prefix>-<card>-0``), to send again straight."""
    ledger: Ledger = app.state.services.ledger
    captured: list[SaleEntry] = []
    original = ledger.commit_sale

    async def capture(entry: SaleEntry) -> SaleOutcome:
        captured.append(entry)
        return await original(entry)

    ledger.commit_sale = capture  # type: ignore[method-assign]
    try:
        for number in numbers:
            sale = {**shirts(number, redeem=10), "transaction_id": f"{prefix}-{number}-0"}
            assert (await post(client, "/v1/commit", sale)).status_code == 200
    finally:
        ledger.commit_sale = original  # type: ignore[method-assign]
    return captured


async def test_concurrent_sales_share_batches_and_each_gets_its_own_answer(
    client: httpx.AsyncClient,
    new_card: NewCard,
    ledger_db: asyncpg.Connection,
    batch_sizes: list[int],
) -> None:
    short, plain = await new_card(500), await new_card(0)
    sales = (
        [{**shirts(short, redeem=100), "transaction_id": f"B-1-{short}-{i}"} for i in range(10)]
        + [{**shirts(plain), "transaction_id": f"B-1-{plain}-{i}"} for i in range(10)]
        + [{**shirts(None), "transaction_id": f"B-1-anon-{short}-{i}"} for i in range(10)]
    )
    responses = await asyncio.gather(*(post(client, "/v1/commit", s) for s in sales))
    assert max(batch_sizes) > 1, batch_sizes
    assert sum(batch_sizes) >= 25  # sales refused before the ledger never reach a batch
    spends = [r.status_code for r in responses[:10]]
    assert spends.count(200) == 5 and spends.count(409) == 5, spends
    assert [r.status_code for r in responses[10:]] == [200] * 20
    assert (await card_info(client, short))["balance"] == 0
    # Each of the ten sales of 1,000.00 earns 1% of what was paid in money.
    assert (await card_info(client, plain))["pending"] == 10 * 10
    refused = [
        s["transaction_id"] for s, r in zip(sales, responses, strict=True) if r.status_code == 409
    ]
    written = await ledger_db.fetchval(
        "SELECT count(*) FROM receipts WHERE store_id = 'msk-001'"
        " AND transaction_id = ANY($1::text[])",
        refused,
    )
    assert written == 0


async def test_a_batch_that_fails_as_a_whole_is_committed_one_by_one(
    app: FastAPI, client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card(1_000)
    services = app.state.services
    [template] = await sale_entries_of(app, client, [number], "B-2")
    # One batch at a time: the first sale goes alone, the other five leave together.
    sizes: list[int] = []
    serial = Ledger(services.pool, max_in_flight=1, on_batch=sizes.append)
    sales = [replace(template, transaction_id=f"B-2-{number}-{i}") for i in range(1, 7)]
    sales[3] = replace(sales[3], tier_spend="not a number")  # type: ignore[arg-type]  # fails in Postgres
    outcomes = await asyncio.gather(*(serial.commit_sale(s) for s in sales), return_exceptions=True)
    assert sizes[:2] == [1, 5]
    # The one sale Postgres could not take is told so as bad input; the others commit.
    assert isinstance(outcomes[3], InvalidInput)
    assert isinstance(outcomes[3].__cause__, asyncpg.DataError)
    assert all(isinstance(o, Committed) for i, o in enumerate(outcomes) if i != 3)
    redeemed = await ledger_db.fetchval(
        "SELECT -sum(e.points) FROM ledger_entries e JOIN cards c USING (card_id)"
        " WHERE c.number = $1 AND e.kind = 'redemption'",
        number,
    )
    assert redeemed == 6 * 10


async def test_one_cards_sales_in_a_batch_are_decided_in_arrival_order(
    app: FastAPI, client: httpx.AsyncClient, new_card: NewCard
) -> None:
    first, second = await new_card(100), await new_card(100)
    services = app.state.services
    captured = await sale_entries_of(app, client, [first, second], "B-3")
    by_card = {entry.card: entry for entry in captured}
    serial = Ledger(services.pool, max_in_flight=1)
    # Both cards now hold 90: for each, 90 then 1 more; the second card's sales come
    # first in the queue, the batch is sorted by card, each card's order is kept.
    queue = [
        replace(by_card[second], transaction_id=f"B-3-{second}-1", points_redeemed=90),
        replace(by_card[first], transaction_id=f"B-3-{first}-1", points_redeemed=90),
        replace(by_card[second], transaction_id=f"B-3-{second}-2", points_redeemed=1),
        replace(by_card[first], transaction_id=f"B-3-{first}-2", points_redeemed=1),
    ]
    warm = serial.commit_sale(replace(by_card[first], transaction_id=f"B-3-{first}-0"))
    outcomes = await asyncio.gather(warm, *(serial.commit_sale(s) for s in queue))
    assert isinstance(outcomes[0], Replayed)
    assert [type(o).__name__ for o in outcomes[1:]] == [
        "Committed",
        "Committed",
        "Refused",
        "Refused",
    ]
    assert {o.reason for o in outcomes[3:]} == {RefusalReason.INSUFFICIENT}  # type: ignore[union-attr]


async def test_a_commit_marks_the_cached_state_stale_and_an_older_one_cannot_return(
    app: FastAPI, client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card(1_000)
    services = app.state.services
    before = await services.cards.get(number, datetime.now(UTC), services.programs.current)
    assert before is not None and before.spendable_points(datetime.now(UTC)) == 1_000
    sale = {**shirts(number, redeem=300), "transaction_id": f"B-4-{number}"}
    assert (await post(client, "/v1/commit", sale)).status_code == 200
    version = await ledger_db.fetchval("SELECT ledger_version FROM cards WHERE number = $1", number)
    entry = await services.redis.hgetall(card_key(number))
    assert entry == {b"v": str(version).encode(), b"s": b""}
    # A reader that read the ledger before the sale comes late: its state stays out.
    assert not await services.card_cache.put(before, datetime.now(UTC).date())
    shown = (await post(client, "/v1/calculate", shirts(number))).json()
    assert shown["card"]["balance"] == 700
    assert (await services.redis.hget(card_key(number), "s")) != b""
