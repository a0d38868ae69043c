"""Customers: personal data, kept apart from the ledger so that it can be erased on
request while every card and ledger entry stays (anonymised)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from service.domain.errors import Conflict, NotFound
from service.storage.postgres import audit
from service.storage.postgres.pool import database_errors
from service.usecases.admin_cards import Welcome

# The columns an API request may set; everything else is the database's.
FIELDS = ("name", "phone", "email", "birthday", "attributes", "segments")
_UNIQUE_FIELDS = {"customers_phone_key": "phone", "customers_email_key": "email"}

_SELECT = """
SELECT cu.customer_id, cu.name, cu.phone, cu.email, cu.birthday, cu.attributes, cu.segments,
       cu.created_at, cu.erased_at,
       coalesce((SELECT array_agg(c.number ORDER BY c.card_id) FROM cards c
                  WHERE c.customer_id = cu.customer_id), '{}') AS cards,
       coalesce((SELECT jsonb_agg(jsonb_build_object('channel', k.channel, 'given', k.given,
                                                    'given_at', k.given_at,
                                                    'store_id', k.store_id) ORDER BY k.channel)
                  FROM (SELECT DISTINCT ON (channel) channel, given, given_at, store_id
                        FROM consents WHERE customer_id = cu.customer_id
                        ORDER BY channel, consent_id DESC) k), '[]') AS consents
FROM customers cu
"""


def taken(error: asyncpg.UniqueViolationError) -> Conflict:
    field = _UNIQUE_FIELDS.get(error.constraint_name or "", "customer")
    return Conflict(
        f"another customer has this {field}",
        code="customer_exists",
        extra={"fields": [{"field": field, "message": "already taken"}]},
    )


async def insert_customer(conn: asyncpg.Connection, data: Mapping[str, Any], author: str) -> int:
    """A new customer in the caller's transaction (a savepoint guards the unique keys)."""
    columns = [f for f in FIELDS if f in data]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    try:
        async with conn.transaction():
            customer_id: int = await conn.fetchval(
                f"INSERT INTO customers ({', '.join(columns)}) VALUES ({placeholders})"
                " RETURNING customer_id",
                *(data[c] for c in columns),
            )
    except asyncpg.UniqueViolationError as error:
        raise taken(error) from None
    await audit.record(conn, author, "customer.create", f"customer:{customer_id}")
    return customer_id


class Customers:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, data: Mapping[str, Any], author: str) -> int:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            return await insert_customer(conn, data, author)

    async def update(self, customer_id: int, changes: Mapping[str, Any], author: str) -> list[str]:
        """Apply ``changes``; returns the customer's card numbers (their cached state
        carries birthday and segments)."""
        columns = [f for f in FIELDS if f in changes]
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await self._live(conn, customer_id)
            if columns:
                try:
                    await conn.execute(
                        f"UPDATE customers SET {sets} WHERE customer_id = $1",
                        customer_id,
                        *(changes[c] for c in columns),
                    )
                except asyncpg.UniqueViolationError as error:
                    raise taken(error) from None
            # Field names only: the audit log outlives an erasure, personal data must not.
            details = {"fields": columns}
            await audit.record(conn, author, "customer.update", f"customer:{customer_id}", details)
            return await self._cards(conn, customer_id)

    async def erase(self, customer_id: int, author: str) -> list[str]:
        """Erase the personal data; cards, balances and the ledger stay. Returns the cards."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await self._live(conn, customer_id)
            await conn.execute(
                """
                UPDATE customers SET name = NULL, phone = NULL, email = NULL, birthday = NULL,
                    attributes = '{}', segments = '{}', erased_at = now()
                WHERE customer_id = $1
                """,
                customer_id,
            )
            numbers = await self._cards(conn, customer_id)
            await conn.execute(
                "UPDATE cards SET ledger_version = ledger_version + 1 WHERE customer_id = $1",
                customer_id,
            )
            await audit.record(conn, author, "customer.erase", f"customer:{customer_id}")
            return numbers

    async def get(self, customer_id: int) -> dict[str, Any]:
        async with database_errors():
            row = await self._pool.fetchrow(f"{_SELECT} WHERE cu.customer_id = $1", customer_id)
        if row is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        return dict(row)

    async def find(self, *, phone: str | None, email: str | None) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                f"{_SELECT} WHERE ($1::text IS NULL OR cu.phone = $1)"
                " AND ($2::text IS NULL OR cu.email = $2) ORDER BY cu.customer_id LIMIT 50",
                phone,
                email,
            )
        return [dict(row) for row in rows]

    async def export_page(
        self, after: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Customers (not erased) by id after ``after``, each with its cards and the consent
        in force per channel as columns (``consent_sms`` ...: true, false, or none given);
        the cursor of the next page."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"{_SELECT} WHERE cu.erased_at IS NULL AND cu.customer_id > $1"
                " ORDER BY cu.customer_id LIMIT $2",
                after or 0,
                limit,
            )
        page = [_exported(dict(row)) for row in rows]
        return page, (rows[-1]["customer_id"] if len(rows) == limit else None)

    async def import_rows(
        self,
        kind: str,
        rows: Sequence[tuple[int, dict[str, Any]]],
        welcome: Welcome | None,
        author: str,
        dry_run: bool = False,
    ) -> tuple[list[str], list[tuple[int, str]], int]:
        """Import (line, row) pairs of ``kind`` "customers" or "cards"; the card numbers
        touched, the (line, reason) of each row refused, the rows unchanged."""
        # Here, not at the top: service.storage.postgres.imports writes with this module's
        # insert_customer.
        from service.storage.postgres.imports import import_rows

        return await import_rows(self._pool, kind, rows, welcome, author, dry_run)

    @staticmethod
    async def _live(conn: asyncpg.Connection, customer_id: int) -> None:
        erased = await conn.fetchval(
            "SELECT erased_at IS NOT NULL FROM customers WHERE customer_id = $1 FOR UPDATE",
            customer_id,
        )
        if erased is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        if erased:
            raise Conflict(f"customer {customer_id} was erased", code="customer_erased")

    @staticmethod
    async def _cards(conn: asyncpg.Connection, customer_id: int) -> list[str]:
        rows = await conn.fetch(
            "SELECT number FROM cards WHERE customer_id = $1 ORDER BY card_id", customer_id
        )
        return [row["number"] for row in rows]


CONSENT_CHANNELS = ("sms", "email", "push", "messengers", "calls")


def _exported(row: dict[str, Any]) -> dict[str, Any]:
    given = {c["channel"]: c["given"] for c in row.pop("consents")}
    row.pop("erased_at", None)
    return {**row, **{f"consent_{channel}": given.get(channel) for channel in CONSENT_CHANNELS}}
