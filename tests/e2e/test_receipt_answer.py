"""A sale's receipt row keeps its answer without the per-line results its ``lines``
already hold (migration 0022, issue 21's WAL per sale): the answer, the replay's answer
and a row written the old way all come back whole, byte for byte."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import httpx
import orjson

from service.storage.postgres.ledger import stored_response
from service.usecases.ports import RECEIPT_LINE_FIELDS, SaleEntry
from tests.conftest import POS
from tests.e2e.admin_helpers import new_card
from tests.e2e.test_pos_api import receipt

DRESS = {"line_id": "1", "sku": "460001", "category": "dresses", "quantity": "1",
         "unit_price": 349900}  # fmt: skip
JEANS = {"line_id": "2", "sku": "470001", "category": "jeans", "quantity": "3",
         "unit_price": 459900, "brand": "Levi's"}  # fmt: skip


async def _row(database_url: str, transaction_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.set_type_codec("jsonb", encoder=orjson.dumps, decoder=orjson.loads,
                                  schema="pg_catalog", format="text")  # fmt: skip
        row = await conn.fetchrow(
            "SELECT lines, response, loyalty_receipt_answer(lines, response) AS answer"
            " FROM receipts WHERE store_id = 'msk-001' AND transaction_id = $1",
            transaction_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_the_row_keeps_the_answer_without_its_lines_and_gives_it_back_whole(
    client: httpx.AsyncClient, demo_database: str
) -> None:
    card = await new_card(client, points=1000)
    tx = f"RA-{os.urandom(4).hex()}"
    sale = receipt(card=card, lines=[DRESS, JEANS], redeem_points=300, transaction_id=tx)
    first = await client.post("/v1/commit", json=sale, headers=POS)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert len(answer["lines"]) == 2 and answer["totals"]["points_redeemed"] == 300

    row = await _row(demo_database, tx)
    assert "lines" not in row["response"]  # stored once, in the row's lines
    assert [line["sku"] for line in row["lines"]] == ["460001", "470001"]
    assert row["answer"] == answer
    again = await client.post("/v1/commit", json=sale, headers=POS)
    assert (again.status_code, again.content) == (200, first.content)


async def test_a_row_written_with_its_lines_is_read_as_it_is(
    client: httpx.AsyncClient, demo_database: str
) -> None:
    card = await new_card(client, points=0)
    tx = f"RA-{os.urandom(4).hex()}"
    sale = receipt(card=card, lines=[DRESS], transaction_id=tx)
    first = await client.post("/v1/commit", json=sale, headers=POS)
    assert first.status_code == 200, first.text
    conn = await asyncpg.connect(demo_database)
    try:  # as a row stored before migration 0022, with one line's result changed
        await conn.execute(
            "UPDATE receipts SET response = response || jsonb_build_object('lines',"
            ' \'[{"line_id": "1", "as": "stored"}]\'::jsonb)'
            " WHERE store_id = 'msk-001' AND transaction_id = $1",
            tx,
        )
    finally:
        await conn.close()
    again = await client.post("/v1/commit", json=sale, headers=POS)
    assert again.status_code == 200, again.text
    assert again.json()["lines"] == [{"line_id": "1", "as": "stored"}]
    assert {k: v for k, v in again.json().items() if k != "lines"} == {
        k: v for k, v in first.json().items() if k != "lines"
    }


async def test_the_function_takes_off_the_fields_the_ledger_leaves_out(demo_database: str) -> None:
    """loyalty_receipt_answer (SQL) and the ledger (RECEIPT_LINE_FIELDS) name the same
    fields: a line with every one of them and a result comes back as the result."""
    line = {**{field: f"x-{field}" for field in RECEIPT_LINE_FIELDS}, "amount": 100}
    conn = await asyncpg.connect(demo_database)
    try:
        answer = await conn.fetchval(
            "SELECT loyalty_receipt_answer($1::text::jsonb, '{}')::text",
            orjson.dumps([line, {"line_id": "2"}]).decode(),
        )
    finally:
        await conn.close()
    assert orjson.loads(answer) == {"lines": [{"amount": 100}, {"line_id": "2"}]}


def _entry(shown: list[dict[str, Any]], lines: list[dict[str, Any]]) -> SaleEntry:
    entry = SaleEntry.__new__(SaleEntry)
    object.__setattr__(entry, "lines", tuple(lines))
    object.__setattr__(entry, "response", {"status": "committed", "lines": shown})
    return entry


def test_lines_are_left_in_the_answer_unless_the_receipt_lines_give_them_back() -> None:
    shown = [{"line_id": "1", "amount": 100, "discount": 0}]
    whole = [{**shown[0], "sku": "A", "quantity": "1", "unit_price": 100,
              "category": None, "brand": None, "excluded": False}]  # fmt: skip
    assert stored_response(_entry(shown, whole)) == {"status": "committed"}
    # an answer's line that says something its receipt line does not (or says it
    # otherwise), or a receipt line with a field the answer lacks: kept whole
    for lines in (
        [{**whole[0], "discount": 5}],
        [{**whole[0], "note": "x"}],
        [{k: v for k, v in whole[0].items() if k != "amount"}],
        whole * 2,
    ):
        kept = stored_response(_entry(shown, lines))
        assert kept["lines"] == shown
    shown_sku = [{**shown[0], "sku": "A"}]  # a field of both: the answer's own
    assert stored_response(_entry(shown_sku, whole))["lines"] == shown_sku
    older = [{k: v for k, v in whole[0].items() if k != "brand"}]  # without all six
    assert stored_response(_entry(shown, older))["lines"] == shown
