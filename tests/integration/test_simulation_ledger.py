"""The ledger's own committed receipts as a simulation's input (SPEC §10.1, issue 19):
committed lines keep category, brand, unit price and ``excluded``; a period's sales and
their returns come back as a ``ReceiptSet`` that simulates to what the ledger committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import numpy as np

from service.rules.compiler import compile_program
from service.rules.document import parse_program
from service.simulation import _state
from service.simulation.engine import prepare, simulate
from service.storage.postgres.programs import current_program
from service.storage.postgres.simulation_receipts import ledger_receipts
from tests.integration.conftest import NewCard
from tests.integration.test_sales import post, shirts


async def test_a_period_of_the_ledger_simulates_to_what_it_committed(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card()
    first = {**shirts(number, lines=2, days_ago=0.2), "transaction_id": f"SIM-A-{number}"}
    first["lines"][1].update(category="shirts", brand="basic")
    assert (await post(client, "/v1/commit", first)).status_code == 200
    back = {
        "store_id": "msk-001", "transaction_id": first["transaction_id"],
        "refund_id": f"SIM-R-{number}", "lines": [{"line_id": "2", "quantity": "1"}],
    }  # fmt: skip
    assert (await post(client, "/v1/refund", back)).status_code == 200
    second = {**shirts(number, days_ago=0.1), "transaction_id": f"SIM-B-{number}"}
    assert (await post(client, "/v1/commit", second)).status_code == 200
    stored = await ledger_db.fetchval(
        "SELECT lines FROM receipts WHERE transaction_id = $1", first["transaction_id"]
    )
    assert (stored[1]["category"], stored[1]["brand"]) == ("shirts", "basic")
    assert (stored[1]["unit_price"], stored[1]["excluded"]) == (50_000, False)

    now = datetime.now(UTC)
    receipts = await ledger_receipts(ledger_db, now - timedelta(days=1), now)
    card = receipts.cards.index(number)
    mine = np.flatnonzero(receipts.card == card)
    assert len(mine) == 2
    lines = slice(int(receipts.line_ptr[mine[0]]), int(receipts.line_ptr[mine[0] + 1]))
    assert [receipts.categories[c] for c in receipts.category[lines]] == ["shirts", "shirts"]
    assert receipts.unit_price[lines].tolist() == [50_000, 50_000]
    returns = receipts.returns
    ours = np.flatnonzero(np.isin(returns.sale, mine))
    assert returns.sale[ours].tolist() == [mine[0]]
    assert returns.line[ours].tolist() == [lines.start + 1]
    assert returns.quantity[ours].tolist() == [1000]
    # placed after the card's sale the ledger had committed before the return: the first
    assert returns.at[ours].tolist() == [receipts.occurred[mine[0]]]

    current = await current_program(ledger_db)
    assert current is not None
    program = compile_program(parse_program(current[1]), current[0])
    run = simulate(prepare(receipts), program)
    committed = await ledger_db.fetch(
        "SELECT discount, points_earned, points_redeemed FROM receipts"
        " WHERE transaction_id = ANY($1) ORDER BY occurred_at",
        [first["transaction_id"], second["transaction_id"]],
    )
    assert run.per_receipt[mine, : _state.P_PAID].tolist() == [list(r) for r in committed]
