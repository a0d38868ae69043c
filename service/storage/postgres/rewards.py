"""The rewards catalogue in Postgres (migration 0018): what the back office manages and
what a sale reads. The redemptions themselves are written by ``loyalty_commit`` and
given back by returns (storage/postgres/refunds.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.errors import Conflict, NotFound
from service.domain.reward import Reward
from service.storage.postgres import audit
from service.storage.postgres.pool import database_errors

_COLUMNS = """
    r.code, r.name, r.kind, r.price, r.percent_bp, r.amount, r.sku, r.rule_id, r.coupon_days,
    r.valid_from, r.valid_to, r.max_per_receipt, r.archived_at, r.created_by, r.created_at,
    r.updated_at,
    (SELECT count(*) FROM reward_redemptions d WHERE d.reward_code = r.code) AS redemptions
"""
# What the back office may change of an entry; its kind and effect stay as sales saw them.
CHANGEABLE = ("name", "price", "valid_from", "valid_to", "max_per_receipt")


def _reward(row: asyncpg.Record) -> Reward:
    return Reward(
        code=row["code"], name=row["name"], kind=row["kind"], price=row["price"],
        percent_bp=row["percent_bp"] or 0, amount=row["amount"] or 0, sku=row["sku"],
        rule_id=row["rule_id"], coupon_days=row["coupon_days"], valid_from=row["valid_from"],
        valid_to=row["valid_to"], max_per_receipt=row["max_per_receipt"],
        archived=row["archived_at"] is not None,
    )  # fmt: skip


class PostgresRewards:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def catalogue(self, codes: Sequence[str]) -> dict[str, Reward]:
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT * FROM rewards WHERE code = ANY($1)", list(dict.fromkeys(codes))
            )
        return {row["code"]: _reward(row) for row in rows}

    async def create(self, entry: dict[str, Any], author: str) -> dict[str, Any]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    """
                    INSERT INTO rewards (code, name, kind, price, percent_bp, amount, sku,
                        rule_id, coupon_days, valid_from, valid_to, max_per_receipt, created_by)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                    """,
                    entry["code"], entry["name"], entry["kind"], entry["price"],
                    entry.get("percent_bp"), entry.get("amount"), entry.get("sku"),
                    entry.get("rule_id"), entry.get("coupon_days"), entry.get("valid_from"),
                    entry.get("valid_to"), entry.get("max_per_receipt"), author,
                )  # fmt: skip
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a reward {entry['code']!r} exists", code="reward_exists") from None
            await audit.record(conn, author, "reward.create", f"reward:{entry['code']}", entry)
            return await self._get(conn, entry["code"])

    async def get(self, code: str) -> dict[str, Any]:
        async with database_errors():
            return await self._get(self._pool, code)

    async def page(self, *, archived: bool, after: str | None, limit: int) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM rewards r"
                " WHERE ($1 OR r.archived_at IS NULL) AND ($2::text IS NULL OR r.code > $2)"
                " ORDER BY r.code LIMIT $3",
                archived,
                after,
                limit,
            )
        return [dict(row) for row in rows]

    async def change(
        self, code: str, changes: dict[str, Any], archived: bool | None, author: str, now: datetime
    ) -> dict[str, Any]:
        """Set ``changes`` (of ``CHANGEABLE``) and archive or restore the entry."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM rewards WHERE code = $1 FOR UPDATE", code)
            if row is None:
                raise NotFound(f"no reward {code!r}", code="reward_not_found")
            merged = {key: changes.get(key, row[key]) for key in CHANGEABLE}
            if (
                merged["valid_from"] is not None
                and merged["valid_to"] is not None
                and merged["valid_to"] <= merged["valid_from"]
            ):
                raise Conflict("valid_to must be after valid_from", code="reward_dates")
            archived_at = row["archived_at"]
            if archived is not None:
                archived_at = (archived_at or now) if archived else None
            await conn.execute(
                "UPDATE rewards SET name = $2, price = $3, valid_from = $4, valid_to = $5,"
                " max_per_receipt = $6, archived_at = $7, updated_at = $8 WHERE code = $1",
                code, merged["name"], merged["price"], merged["valid_from"], merged["valid_to"],
                merged["max_per_receipt"], archived_at, now,
            )  # fmt: skip
            details = dict(changes)
            if archived is not None:
                details["archived"] = archived
            await audit.record(conn, author, "reward.change", f"reward:{code}", details)
            return await self._get(conn, code)

    async def _get(self, conn: asyncpg.Connection | asyncpg.Pool, code: str) -> dict[str, Any]:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM rewards r WHERE r.code = $1", code)
        if row is None:
            raise NotFound(f"no reward {code!r}", code="reward_not_found")
        return dict(row)
