"""CSV imports written to Postgres: one transaction, a savepoint per row, so that a row
the database refuses (a taken phone, a card issued before) is reported, not fatal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from service.domain.errors import DomainError
from service.storage.postgres.admin_cards import insert_card, link_card
from service.storage.postgres.customers import insert_customer
from service.storage.postgres.pool import database_errors
from service.usecases.admin_cards import NewCard, Welcome


async def _register(
    conn: asyncpg.Connection,
    number: str,
    customer_id: int,
    welcome: Welcome | None,
    author: str,
) -> None:
    """Link the card if it was issued before (from stock), else issue it to the customer."""
    exists = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cards WHERE number = $1)", number)
    if exists:
        await link_card(conn, number, customer_id, welcome, author)
    else:
        await insert_card(conn, NewCard(number, customer_id=customer_id), welcome, author)


async def _customer_row(
    conn: asyncpg.Connection, row: dict[str, Any], welcome: Welcome | None, author: str
) -> str | None:
    card = row.pop("card", None)
    customer_id = await insert_customer(conn, row, author)
    if card is not None:
        await _register(conn, card, customer_id, welcome, author)
    return card


async def _card_row(
    conn: asyncpg.Connection, row: dict[str, Any], welcome: Welcome | None, author: str
) -> str | None:
    phone = row.pop("phone", None)
    customer_id = None
    if phone is not None:
        customer_id = await conn.fetchval(
            "SELECT customer_id FROM customers WHERE phone = $1", phone
        )
        if customer_id is None:
            raise DomainError("phone: no customer with this phone", code="customer_not_found")
    await insert_card(conn, NewCard(customer_id=customer_id, **row), welcome, author)
    return str(row["number"])


async def import_rows(
    pool: asyncpg.Pool,
    kind: str,
    rows: Sequence[tuple[int, dict[str, Any]]],
    welcome: Welcome | None,
    author: str,
) -> tuple[list[str], list[tuple[int, str]]]:
    """Import (line, row) pairs of ``kind`` "customers" or "cards"; returns the card
    numbers touched and the (line, reason) of each row refused."""
    write = _customer_row if kind == "customers" else _card_row
    touched: list[str] = []
    rejected: list[tuple[int, str]] = []
    async with database_errors(), pool.acquire() as conn, conn.transaction():
        for line, row in rows:
            try:
                async with conn.transaction():
                    card = await write(conn, dict(row), welcome, author)
            except DomainError as error:
                rejected.append((line, _reason(error)))
                continue
            if card is not None:
                touched.append(card)
    return touched, rejected


def _reason(error: DomainError) -> str:
    fields = error.extra.get("fields")
    if fields:
        return "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return error.message
