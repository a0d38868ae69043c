"""Wallets in the ledger (migration 0015): each movement of money an entry of
``wallet_entries``, written with the wallet's new balance under its row lock, so that the
balance is always the sum of its entries and never below zero (the table's CHECK; the
invariant check, invariants.py, holds the sum). A sale's payment is written by the commit
functions (sql/loyalty_commit.sql), a return's by refunds.py; the rest is here.

Till operations (a sale of a certificate, a top-up) are idempotent by (wallet, store,
transaction): the same request again answers the wallet as it is, marked replayed; the
same transaction with another amount is a conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound
from service.domain.wallet import WalletState, wallet_number
from service.storage.postgres import audit
from service.storage.postgres.pool import database_errors
from service.usecases.ports import NewWallet

_VIEW_COLUMNS = (
    "number, kind, status, nominal, balance, batch, expires_at, replaced_by, created_at,"
    " activated_at, (SELECT number FROM cards c WHERE c.card_id = wallets.card_id) AS card"
)


def wallet_not_found(number: str) -> NotFound:
    return NotFound(f"no wallet {number}", code="wallet_not_found", extra={"wallet": number})


def _not_active(number: str, status: str) -> Conflict:
    return Conflict(
        f"wallet {number} is {status}", code="wallet_not_active", extra={"status": status}
    )


def _view(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    status = row["status"]
    if status == "active" and row["expires_at"] is not None and row["expires_at"] <= now:
        status = "expired"
    return {
        "number": row["number"], "kind": row["kind"], "status": status,
        "nominal": row["nominal"], "balance": row["balance"] if status == "active" else 0,
        "card": row["card"], "batch": row["batch"],
        "expires_at": None if row["expires_at"] is None else row["expires_at"].isoformat(),
        "replaced_by": row["replaced_by"],
    }  # fmt: skip


async def _locked(conn: asyncpg.Connection, number: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"SELECT {_VIEW_COLUMNS}, card_id, validity_days FROM wallets WHERE number = $1 FOR UPDATE",
        number,
    )
    if row is None:
        raise wallet_not_found(number)
    return row


async def _entry(
    conn: asyncpg.Connection,
    number: str,
    kind: str,
    amount: int,
    now: datetime,
    store_id: str | None = None,
    transaction_id: str | None = None,
) -> None:
    """One movement and the balance it makes, together (the caller holds the lock)."""
    await conn.execute(
        "UPDATE wallets SET balance = balance + $2 WHERE number = $1", number, amount
    )
    await conn.execute(
        "INSERT INTO wallet_entries (number, kind, amount, store_id, transaction_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        number, kind, amount, store_id, transaction_id, now,
    )  # fmt: skip


async def _till_replay(
    conn: asyncpg.Connection, number: str, kind: str, store_id: str, transaction_id: str,
    amount: int | None,
) -> bool:  # fmt: skip
    """Whether this till operation was recorded already (the same: a replay; another
    amount: a conflict)."""
    done = await conn.fetchval(
        "SELECT amount FROM wallet_entries WHERE number = $1 AND store_id = $2"
        " AND transaction_id = $3 AND kind = $4",
        number, store_id, transaction_id, kind,
    )  # fmt: skip
    if done is None:
        return False
    if amount is not None and done != amount:
        raise IdempotencyConflict(
            "this transaction_id was already used for this wallet with another amount"
        )
    return True


class PostgresWallets:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, number: str, calculation_id: str | None) -> WalletState | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                SELECT w.number, w.kind, w.status, w.balance, w.expires_at,
                       (SELECT coalesce(sum(h.amount), 0)::bigint FROM wallet_holds h
                        WHERE h.number = w.number AND h.taken_at IS NULL
                          AND h.released_at IS NULL AND h.expires_at > now()
                          AND h.calculation_id IS DISTINCT FROM $2) AS held
                FROM wallets w WHERE w.number = $1
                """,
                number,
                calculation_id,
            )
        if row is None:
            return None
        return WalletState(
            row["number"], row["kind"], row["status"], row["balance"], row["held"],
            row["expires_at"],
        )  # fmt: skip

    async def hold(
        self,
        number: str,
        calculation_id: str,
        store_id: str,
        amount: int,
        now: datetime,
        until: datetime,
    ) -> bool:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT balance, status, expires_at FROM wallets WHERE number = $1 FOR UPDATE",
                number,
            )
            if row is None or row["status"] != "active":
                return False
            if row["expires_at"] is not None and row["expires_at"] <= now:
                return False
            held = await conn.fetchval(
                "SELECT coalesce(sum(amount), 0)::bigint FROM wallet_holds WHERE number = $1"
                " AND taken_at IS NULL AND released_at IS NULL AND expires_at > $2"
                " AND calculation_id <> $3",
                number, now, calculation_id,
            )  # fmt: skip
            if row["balance"] - held < amount:
                return False
            await conn.execute(
                "INSERT INTO wallet_holds (number, calculation_id, store_id, amount, created_at,"
                " expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (number, calculation_id) DO UPDATE SET amount = EXCLUDED.amount,"
                " expires_at = EXCLUDED.expires_at, released_at = NULL",
                number, calculation_id, store_id, amount, now, until,
            )  # fmt: skip
        return True

    async def release(
        self, calculation_id: str, now: datetime, may_release: Callable[[str], None]
    ) -> int | None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT number, store_id, amount, taken_at IS NULL AND released_at IS NULL"
                " AND expires_at > $2 AS open FROM wallet_holds WHERE calculation_id = $1"
                " FOR UPDATE",
                calculation_id,
                now,
            )
            if not rows:
                return None
            for row in rows:
                may_release(row["store_id"])
            await conn.execute(
                "UPDATE wallet_holds SET released_at = $2 WHERE calculation_id = $1"
                " AND taken_at IS NULL AND released_at IS NULL",
                calculation_id,
                now,
            )
        return sum(row["amount"] for row in rows if row["open"])

    async def sell(
        self,
        number: str,
        store_id: str,
        transaction_id: str,
        amount: int | None,
        now: datetime,
        validity_days: int | None,
    ) -> tuple[dict[str, Any], bool]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await _locked(conn, number)
            if await _till_replay(conn, number, "sale", store_id, transaction_id, amount):
                return _view(await _locked(conn, number), now), True
            if row["kind"] != "certificate":
                raise Conflict("only a certificate is sold; top an e-wallet up",
                               code="wallet_not_sellable")  # fmt: skip
            if row["status"] != "issued":
                raise _not_active(number, row["status"])
            value = row["nominal"] if amount is None else amount
            if value is None:
                raise InvalidInput("this certificate has no face value: give the amount",
                                   code="wallet_amount_needed")  # fmt: skip
            if row["nominal"] is not None and value != row["nominal"]:
                raise InvalidInput(
                    f"the certificate's face value is {row['nominal']} kopecks",
                    code="wallet_amount_mismatch",
                    extra={"nominal": row["nominal"]},
                )
            days = row["validity_days"] or validity_days
            await conn.execute(
                "UPDATE wallets SET status = 'active', activated_at = $2,"
                " expires_at = coalesce(expires_at,"
                "                       $2::timestamptz + make_interval(days => $3::int))"
                " WHERE number = $1",
                number, now, days,
            )  # fmt: skip
            await _entry(conn, number, "sale", value, now, store_id, transaction_id)
            return _view(await _locked(conn, number), now), False

    async def top_up(
        self,
        number: str,
        store_id: str,
        transaction_id: str,
        amount: int,
        max_balance: int | None,
        now: datetime,
    ) -> tuple[dict[str, Any], bool]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await _locked(conn, number)
            if await _till_replay(conn, number, "top_up", store_id, transaction_id, amount):
                return _view(row, now), True
            if row["kind"] != "ewallet":
                raise Conflict("a certificate is not topped up", code="wallet_not_reloadable")
            status = _view(row, now)["status"]
            if status != "active":
                raise _not_active(number, status)
            if max_balance is not None and row["balance"] + amount > max_balance:
                raise Conflict(
                    f"the wallet may hold at most {max_balance} kopecks",
                    code="wallet_balance_limit",
                    extra={"max_balance": max_balance, "balance": row["balance"]},
                )
            await _entry(conn, number, "top_up", amount, now, store_id, transaction_id)
            return _view(await _locked(conn, number), now), False

    async def issue(self, new: NewWallet, author: str, now: datetime) -> dict[str, Any]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            card_id = None
            if new.card is not None:
                card_id = await conn.fetchval(
                    "SELECT card_id FROM cards WHERE number = $1", new.card
                )
                if card_id is None:
                    raise NotFound("no such loyalty card", code="card_not_found")
            number = new.number
            if number is None:
                number = wallet_number(await conn.fetchval("SELECT nextval('wallet_serial')"))
            alive = new.kind == "ewallet"
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(
                        "INSERT INTO wallets (number, kind, status, nominal, card_id, batch,"
                        " validity_days, expires_at, activated_at, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7,"
                        " coalesce($8::timestamptz,"
                        "          $10::timestamptz + make_interval(days => $11::int)),"
                        " $9, $10)"
                        f" RETURNING {_VIEW_COLUMNS}",
                        number, new.kind, "active" if alive else "issued", new.nominal,
                        card_id, new.batch, new.validity_days, new.expires_at,
                        now if alive else None, now, new.validity_days if alive else None,
                    )  # fmt: skip
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    f"a wallet numbered {number} exists",
                    code="wallet_exists",
                    extra={"fields": [{"field": "number", "message": "already issued"}]},
                ) from None
            await audit.record(conn, author, "wallet.issue", f"wallet:{number}")
        return _view(row, now)

    async def issue_batch(
        self, template: NewWallet, count: int, author: str, now: datetime
    ) -> list[str]:
        """``count`` certificates like ``template``, numbered in the chain's range, in one
        statement (row by row, 10,000 took seconds and held the connection meanwhile)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            serials = await conn.fetch(
                "SELECT nextval('wallet_serial') AS serial FROM generate_series(1, $1)", count
            )
            numbers = [wallet_number(row["serial"]) for row in serials]
            await conn.execute(
                "INSERT INTO wallets (number, kind, status, nominal, batch, validity_days,"
                " expires_at, created_at)"
                " SELECT n, 'certificate', 'issued', $2, $3, $4, $5, $6 FROM unnest($1::text[]) n",
                numbers, template.nominal, template.batch, template.validity_days,
                template.expires_at, now,
            )  # fmt: skip
            await audit.record(
                conn, author, "wallet.issue", f"wallets:{template.batch}", {"count": count}
            )
        return numbers

    async def batch(self, batch: str) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT number, kind, nominal, expires_at FROM wallets WHERE batch = $1"
                " ORDER BY number",
                batch,
            )
        if not rows:
            raise NotFound(f"no wallet batch {batch}", code="wallet_batch_not_found")
        return [
            {"number": r["number"], "kind": r["kind"], "nominal": r["nominal"],
             "expires_at": None if r["expires_at"] is None else r["expires_at"].date()}
            for r in rows
        ]  # fmt: skip

    async def view(self, number: str, now: datetime) -> dict[str, Any]:
        async with database_errors():
            row = await self._pool.fetchrow(
                f"SELECT {_VIEW_COLUMNS} FROM wallets WHERE number = $1", number
            )
        if row is None:
            raise wallet_not_found(number)
        return _view(row, now)

    async def history(self, number: str, limit: int, before: int | None) -> list[dict[str, Any]]:
        async with database_errors():
            if not await self._pool.fetchval("SELECT 1 FROM wallets WHERE number = $1", number):
                raise wallet_not_found(number)
            rows = await self._pool.fetch(
                "SELECT entry_id, kind, amount, store_id, transaction_id, refund_id, created_at"
                " FROM wallet_entries WHERE number = $1 AND ($2::bigint IS NULL OR entry_id < $2)"
                " ORDER BY entry_id DESC LIMIT $3",
                number, before, limit,
            )  # fmt: skip
        return [
            {"entry_id": r["entry_id"], "kind": r["kind"], "amount": r["amount"],
             "store_id": r["store_id"], "transaction_id": r["transaction_id"],
             "refund_id": r["refund_id"], "created_at": r["created_at"].isoformat()}
            for r in rows
        ]  # fmt: skip

    async def set_status(
        self, number: str, status: str, author: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        """Block a live wallet, or unblock a blocked one (others stay as they are)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await _locked(conn, number)
            current = _view(row, now)["status"]
            if current != {"blocked": "active", "active": "blocked"}[status]:
                raise _not_active(number, current)
            await conn.execute("UPDATE wallets SET status = $2 WHERE number = $1", number, status)
            await audit.record(
                conn,
                author,
                "wallet.status",
                f"wallet:{number}",
                {"status": status, "reason": reason},
            )
            return _view(await _locked(conn, number), now)

    async def replace(
        self, number: str, new_number: str | None, author: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        """A lost or damaged wallet: a new one takes its money, its expiry and its card
        (a ``transfer`` entry out of the old one, one into the new); the old one is
        closed as ``replaced``."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            old = await _locked(conn, number)
            status = _view(old, now)["status"]
            if status not in ("active", "blocked"):
                raise _not_active(number, status)
            if new_number is None:
                new_number = wallet_number(await conn.fetchval("SELECT nextval('wallet_serial')"))
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO wallets (number, kind, status, nominal, card_id, batch,"
                        " validity_days, expires_at, activated_at, created_at)"
                        " SELECT $2, kind, 'active', nominal, card_id, batch, validity_days,"
                        " expires_at, $3, $3 FROM wallets WHERE number = $1",
                        number, new_number, now,
                    )  # fmt: skip
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    f"a wallet numbered {new_number} exists", code="wallet_exists"
                ) from None
            balance = old["balance"]
            if balance:
                await _entry(conn, number, "transfer", -balance, now)
                await _entry(conn, new_number, "transfer", balance, now)
            await conn.execute(
                "UPDATE wallets SET status = 'replaced', replaced_by = $2 WHERE number = $1",
                number,
                new_number,
            )
            await audit.record(
                conn,
                author,
                "wallet.replace",
                f"wallet:{number}",
                {"by": new_number, "reason": reason},
            )
            return _view(await _locked(conn, new_number), now)

    async def expire(self, now: datetime) -> int:
        async with database_errors(), self._pool.acquire() as conn:
            return await expire_wallets(conn, now)

    async def report(self, now: datetime) -> dict[str, Any]:
        async with database_errors():
            kinds = await self._pool.fetch(
                "SELECT kind, count(*) AS wallets, coalesce(sum(balance), 0)::bigint AS balance"
                " FROM wallets WHERE status IN ('active', 'blocked')"
                " AND (expires_at IS NULL OR expires_at > $1) GROUP BY kind ORDER BY kind",
                now,
            )
            months = await self._pool.fetch(
                "SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,"
                " sum(balance)::bigint AS balance, count(*) AS wallets FROM wallets"
                " WHERE status IN ('active', 'blocked') AND balance > 0"
                " AND (expires_at IS NULL OR expires_at > $1)"
                " GROUP BY 1 ORDER BY 1 NULLS LAST",
                now,
            )
            movements = await self._pool.fetch(
                "SELECT kind, count(*) AS entries, sum(amount)::bigint AS amount"
                " FROM wallet_entries GROUP BY kind ORDER BY kind"
            )
        return {
            "liability": sum(r["balance"] for r in kinds),
            "by_kind": [dict(r) for r in kinds],
            "by_expiry_month": [
                {"month": r["month"], "balance": r["balance"], "wallets": r["wallets"]}
                for r in months
            ],
            "movements": [dict(r) for r in movements],
        }


async def expire_wallets(conn: asyncpg.Connection, now: datetime, batch: int = 500) -> int:
    """Close the live wallets past their expiry, ``batch`` at a time, each under its row
    lock: their money leaves as an ``expiry`` entry (the breakage). The number closed."""
    closed = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT number FROM wallets WHERE status = 'active' AND expires_at <= $1"
                " ORDER BY number LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                batch,
            )
            if not rows:
                return closed
            numbers = [r["number"] for r in rows]
            await conn.execute(
                "INSERT INTO wallet_entries (number, kind, amount, created_at)"
                " SELECT number, 'expiry', -balance, $2 FROM wallets"
                " WHERE number = ANY ($1) AND balance > 0",
                numbers, now,
            )  # fmt: skip
            await conn.execute(
                "UPDATE wallets SET status = 'expired', balance = 0 WHERE number = ANY ($1)",
                numbers,
            )
            closed += len(rows)
