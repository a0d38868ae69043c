"""Returns and cancellations on the ledger: one transaction each, the steps the use case
(``service.usecases.refund``) takes, written as ledger entries.

The sale's receipt row is locked first, then its card: a refund and a commit of the
same card serialise on the card row, two refunds of one sale on the receipt row.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.errors import NotFound
from service.domain.reversal import ReturnRequest, Reversal, SoldLine, budget_back
from service.storage.postgres.pool import database_errors
from service.usecases.ports import CardAfter, RecordedReturn, SoldSale


def _sold_lines(raw: list[dict[str, Any]]) -> tuple[SoldLine, ...]:
    return tuple(
        SoldLine(
            line["line_id"],
            line["quantity"],
            line["amount"],
            line["discount"],
            line["points_paid"],
            line["final_amount"],
            line["points_earned"],
            line.get("wallet_paid", 0),
            line.get("reward_points", 0),
        )
        for line in raw
    )


class PostgresReturnSession:
    """``ReturnSession`` on one connection inside its transaction."""

    def __init__(
        self, conn: asyncpg.Connection, req: ReturnRequest, row: asyncpg.Record, number: str | None
    ) -> None:
        self._conn = conn
        self._req = req
        self._card_id: int | None = row["card_id"]
        self._card_locked = False
        self.recorded_response: dict[str, Any] | None = None  # what ``record`` stored
        self.referrer: str | None = None
        self.stamps_card: str | None = None
        self.sale = SoldSale(
            number, row["status"] == "cancelled", _sold_lines(row["lines"]), row["points_redeemed"]
        )

    async def recorded(self) -> RecordedReturn | None:
        row = await self._conn.fetchrow(
            "SELECT transaction_id, request_hash, response FROM refunds"
            " WHERE store_id = $1 AND refund_id = $2",
            self._req.store_id,
            self._req.refund_id,
        )
        if row is None:
            return None
        return RecordedReturn(row["transaction_id"], bytes(row["request_hash"]), row["response"])

    async def returned_so_far(self) -> dict[str, int]:
        rows = await self._conn.fetch(
            "SELECT lines FROM refunds WHERE store_id = $1 AND transaction_id = $2",
            self._req.store_id,
            self._req.transaction_id,
        )
        returned: dict[str, int] = {}
        for row in rows:
            for line in row["lines"]:
                returned[line["line_id"]] = returned.get(line["line_id"], 0) + line["quantity"]
        return returned

    async def return_limits(self, returned: Mapping[str, int], complete: bool) -> None:
        req = self._req
        rows = await self._conn.fetch(
            "SELECT rule_id, period, budget_used, budget_returned, released_at FROM rule_uses"
            " WHERE store_id = $1 AND transaction_id = $2 ORDER BY rule_id FOR UPDATE",
            req.store_id,
            req.transaction_id,
        )
        backs = [
            (row["rule_id"], budget_back(row["budget_used"], self.sale.lines, returned)
             - row["budget_returned"])
            for row in rows
        ]  # fmt: skip
        given = [(rule_id, back) for rule_id, back in backs if back > 0]
        released = [
            (row["rule_id"], row["period"])
            for row in rows
            if complete and row["period"] is not None and row["released_at"] is None
        ]
        if given:  # in rule order, as commits lock them
            await self._conn.executemany(
                "UPDATE campaign_budgets SET used = used - $2 WHERE rule_id = $1", given
            )
            await self._conn.executemany(
                "UPDATE rule_uses SET budget_returned = budget_returned + $4"
                " WHERE store_id = $1 AND transaction_id = $2 AND rule_id = $3",
                [(req.store_id, req.transaction_id, rule_id, back) for rule_id, back in given],
            )
        if released:
            await self._conn.execute(
                "UPDATE rule_uses SET released_at = $3 WHERE store_id = $1"
                " AND transaction_id = $2 AND period IS NOT NULL AND released_at IS NULL",
                req.store_id,
                req.transaction_id,
                req.now,
            )
            await self._conn.executemany(
                "UPDATE rule_use_counts SET uses = uses - 1 WHERE rule_id = $1 AND period = $2",
                released,
            )

    async def take_back_earned(self, points: int) -> int:
        if points == 0:
            return 0
        await self._lock_card()
        assert self._card_id is not None
        return await self._take_back(self._card_id, "accrual", points)

    async def take_back_referral(self) -> tuple[int, int]:
        req = self._req
        sale = await self._conn.fetchrow(
            "SELECT c.referred_by, r.number AS referrer FROM cards c"
            " LEFT JOIN cards r ON r.card_id = c.referred_by WHERE c.card_id = $1",
            self._card_id,
        )
        grants = await self._conn.fetch(
            "SELECT card_id, points FROM ledger_entries WHERE kind = 'referral'"
            " AND store_id = $1 AND transaction_id = $2 AND card_id = ANY($3)",
            req.store_id,
            req.transaction_id,
            [self._card_id, sale["referred_by"]],
        )
        granted = {row["card_id"]: row["points"] for row in grants}
        if not granted:
            return 0, 0
        await self._lock_card()  # the referee's card, then the referrer's
        missing = 0
        for card_id, points in granted.items():
            if card_id == self._card_id:
                missing = await self._take_back(card_id, "referral", points)
                continue
            await self._conn.execute("SELECT 1 FROM cards WHERE card_id = $1 FOR UPDATE", card_id)
            left = await self._take_back(card_id, "referral", points)
            if left:  # the referrer spent the bonus: the card owes it (no cash to keep back)
                await self._owe_on(card_id, left, "refund_referral")
            await self._bump(card_id)
            self.referrer = sale["referrer"]
        return sum(granted.values()), missing

    async def uncount_purchase(self) -> None:
        await self._lock_card()
        await self._conn.execute(
            "UPDATE cards SET purchase_count = purchase_count - 1"
            " WHERE card_id = $1 AND purchase_count > 0",
            self._card_id,
        )

    async def take_back_stamps(self) -> None:
        """The sale's moves of stamp cards, released and taken back from the card that
        holds them now (the sale's, or the one that replaced it)."""
        await self._lock_card()
        req = self._req
        # A card that replaced the sale's holds its stamps now: locked after the sale's
        # card (as a referrer's), before its counts change.
        others = await self._conn.fetch(
            "SELECT card_id, number FROM cards WHERE card_id <> $3 AND card_id IN ("
            " SELECT card_id FROM stamp_moves WHERE store_id = $1 AND transaction_id = $2"
            " AND released_at IS NULL) ORDER BY card_id FOR UPDATE",
            req.store_id,
            req.transaction_id,
            self._card_id,
        )
        await self._conn.execute(
            """
            WITH released AS (
                UPDATE stamp_moves SET released_at = $3
                WHERE store_id = $1 AND transaction_id = $2 AND released_at IS NULL
                RETURNING card_id, rule_id, added - used AS moved
            )
            UPDATE card_stamps s SET have = s.have - r.moved
            FROM released r WHERE s.card_id = r.card_id AND s.rule_id = r.rule_id
            """,
            req.store_id,
            req.transaction_id,
            req.now,
        )
        for other in others:
            await self._bump(other["card_id"])
            self.stamps_card = other["number"]

    async def move_tier_down(
        self, tiers: tuple[tuple[str, int], ...], window_start: datetime | None
    ) -> None:
        await self._lock_card()
        await self._conn.execute(
            """
            WITH moved AS (
                UPDATE cards c SET tier = r.tier
                FROM loyalty_tier_reached($1, (SELECT tier FROM cards WHERE card_id = $1),
                                          $2, $3::jsonb, 0) r
                WHERE c.card_id = $1 AND c.tier IS NOT NULL AND r.downgrade
                RETURNING c.card_id, c.number, r.tier AS new_tier,
                          (SELECT tier FROM cards WHERE card_id = $1) AS old_tier
            )
            INSERT INTO outbox (card_id, kind, payload)
            SELECT card_id, 'tier_change',
                   jsonb_build_object('card', number, 'from', old_tier, 'to', new_tier)
            FROM moved WHERE loyalty_event_wanted('tier_change')
            """,
            self._card_id,
            window_start,
            [list(tier) for tier in tiers],
        )

    async def _take_back(self, card_id: int, granted_as: str, points: int) -> int:
        """Take back ``points`` the sale gave the card as ``granted_as`` (its accrual or a
        referral bonus): from that grant's own lot first, then from the card's other
        active lots; the points no lot held."""
        req = self._req
        kind = self._kind(f"refund_{granted_as}")
        lot = await self._conn.fetchrow(
            """
            SELECT l.lot_id, l.remaining FROM ledger_entries e
            JOIN point_lots l ON l.card_id = e.card_id AND l.lot_id = e.lot_id
            WHERE e.card_id = $1 AND e.kind = $4 AND e.store_id = $2
              AND e.transaction_id = $3
            FOR UPDATE OF l
            """,
            card_id,
            req.store_id,
            req.transaction_id,
            granted_as,
        )
        left = points
        if lot is not None and lot["remaining"] > 0:
            take = min(lot["remaining"], left)
            await self._conn.execute(
                "UPDATE point_lots SET remaining = remaining - $3"
                " WHERE card_id = $1 AND lot_id = $2",
                card_id,
                lot["lot_id"],
                take,
            )
            await self._entry_on(card_id, kind, -take, lot["lot_id"])
            left -= take
        if left > 0:
            taken: int = await self._conn.fetchval(
                "SELECT loyalty_take_points($1, $2, $3, $4, $5, $6, $7)",
                card_id,
                left,
                req.now,
                kind,
                req.store_id,
                req.transaction_id,
                req.refund_id,
            )
            left -= taken
        return left

    async def give_back_spent(self, points: int) -> None:
        await self._give_back(points, "redemption")

    async def give_back_rewards(self, points: int) -> None:
        await self._give_back(points, "reward")

    async def void_coupons(self) -> tuple[list[str], int]:
        """Revoke the sale's coupons no sale has used (a use a return released counts as
        none), under their rows' locks; the codes, and the points they cost."""
        await self._lock_card()  # the card before its coupons, as a commit takes them
        rows = await self._conn.fetch(
            """
            WITH sold AS (
                SELECT unnest(coupons) AS code, points / count AS price FROM reward_redemptions
                WHERE store_id = $1 AND transaction_id = $2 AND kind = 'coupon'
            ), unused AS (
                SELECT p.code FROM promo_codes p JOIN sold USING (code)
                WHERE p.revoked_at IS NULL AND p.uses = 0 ORDER BY p.code FOR UPDATE OF p
            )
            UPDATE promo_codes p SET revoked_at = $3 FROM unused u, sold s
            WHERE p.code = u.code AND s.code = u.code
            RETURNING p.code, s.price
            """,
            self._req.store_id,
            self._req.transaction_id,
            self._req.now,
        )
        return sorted(row["code"] for row in rows), sum(row["price"] for row in rows)

    async def _give_back(self, points: int, spent_as: str) -> None:
        """Give ``points`` the sale took as ``spent_as`` back to the lots they came from,
        the last taken first, with their expiry."""
        if points == 0:
            return
        await self._lock_card()
        rows = await self._conn.fetch(
            """
            SELECT e.lot_id, -sum(e.points) AS out FROM ledger_entries e
            WHERE e.card_id = $1 AND e.store_id = $2 AND e.transaction_id = $3
              AND e.kind IN ($4, 'refund_' || $4) AND e.lot_id IS NOT NULL
            GROUP BY e.lot_id HAVING -sum(e.points) > 0
            ORDER BY max(e.entry_id) DESC
            """,
            self._card_id,
            self._req.store_id,
            self._req.transaction_id,
            spent_as,
        )
        left = points
        for row in rows:
            if left == 0:
                break
            give = min(row["out"], left)
            await self._conn.execute(
                "UPDATE point_lots SET remaining = remaining + $3"
                " WHERE card_id = $1 AND lot_id = $2",
                self._card_id,
                row["lot_id"],
                give,
            )
            await self._entry(f"refund_{spent_as}", give, row["lot_id"])
            left -= give

    async def owe(self, points: int) -> None:
        await self._lock_card()
        assert self._card_id is not None
        await self._owe_on(self._card_id, points, "refund_accrual")

    async def give_back_to_wallet(self, amount: int) -> tuple[str, str] | None:
        req, conn = self._req, self._conn
        number = await conn.fetchval(
            "SELECT number FROM wallet_entries WHERE store_id = $1 AND transaction_id = $2"
            " AND kind = 'payment'",
            req.store_id,
            req.transaction_id,
        )
        if number is None:
            return None
        await self._lock_card()  # the card before the wallet, as a commit takes them
        while True:  # to the wallet that replaced it, if it was replaced
            wallet = await conn.fetchrow(
                "SELECT number, status, replaced_by, expires_at <= $2 AS lapsed FROM wallets"
                " WHERE number = $1 FOR UPDATE",
                number,
                req.now,
            )
            if wallet["replaced_by"] is None:
                break
            number = wallet["replaced_by"]
        await conn.execute(
            "UPDATE wallets SET balance = balance + $2 WHERE number = $1", number, amount
        )
        await conn.execute(
            "INSERT INTO wallet_entries (number, kind, amount, store_id, transaction_id,"
            " refund_id, created_at) VALUES ($1, 'refund', $2, $3, $4, $5, $6)",
            number, amount, req.store_id, req.transaction_id, req.refund_id, req.now,
        )  # fmt: skip
        status = wallet["status"]
        if status == "expired" or wallet["lapsed"]:
            await conn.execute(
                "UPDATE wallets SET balance = balance - $2, status = 'expired' WHERE number = $1",
                number,
                amount,
            )
            await conn.execute(
                "INSERT INTO wallet_entries (number, kind, amount, refund_id, created_at)"
                " VALUES ($1, 'expiry', $2, $3, $4)",
                number, -amount, req.refund_id, req.now,
            )  # fmt: skip
            status = "expired"
        return number, status

    async def _owe_on(self, card_id: int, points: int, kind: str) -> None:
        await self._conn.execute(
            "UPDATE cards SET debt = debt + $2 WHERE card_id = $1", card_id, points
        )
        await self._entry_on(card_id, self._kind(kind), -points, None)

    async def _bump(self, card_id: int) -> None:
        """Another card this return changed: its cached state is stale."""
        await self._conn.execute(
            "UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = $1", card_id
        )

    async def take_back_tier_spend(self, amount: int) -> None:
        req = self._req
        await self._lock_card()
        await self._conn.execute(
            "INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            self._card_id,
            -amount,
            req.now,
            req.store_id,
            req.transaction_id,
        )

    async def release_promo_codes(self) -> None:
        codes = await self._conn.fetch(
            """
            UPDATE promo_code_uses SET released_at = $3
            WHERE store_id = $1 AND transaction_id = $2 AND released_at IS NULL
            RETURNING code
            """,
            self._req.store_id,
            self._req.transaction_id,
            self._req.now,
        )
        await self._conn.execute(
            "UPDATE promo_codes SET uses = uses - 1 WHERE code = ANY($1) AND max_uses IS NOT NULL",
            [row["code"] for row in codes],
        )

    async def mark_cancelled(self) -> None:
        await self._conn.execute(
            "UPDATE receipts SET status = 'cancelled' WHERE store_id = $1 AND transaction_id = $2",
            self._req.store_id,
            self._req.transaction_id,
        )

    async def card_after(self, reversal: Reversal) -> CardAfter:
        req = self._req
        await self._lock_card()
        card = await self._conn.fetchrow(
            """
            WITH bumped AS (
                UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = $1
                RETURNING card_id, number, status, tier
            )
            SELECT u.number, u.status, u.tier, b.balance, b.pending
            FROM bumped u CROSS JOIN LATERAL loyalty_balance(u.card_id, $2) b
            """,
            self._card_id,
            req.now,
        )
        await self._conn.execute(
            "INSERT INTO outbox (card_id, kind, payload) VALUES ($1, $2, $3)",
            self._card_id,
            "cancel" if req.cancel else "refund",
            {
                "card": card["number"],
                "store_id": req.store_id,
                "transaction_id": req.transaction_id,
                "refund_id": req.refund_id,
                "points_taken": reversal.points_earned_back,
                "points_returned": reversal.points_paid_back,
            },
        )
        return CardAfter(
            card["number"], card["status"], card["tier"], card["balance"], card["pending"]
        )

    async def record(self, reversal: Reversal, response: dict[str, Any]) -> dict[str, Any]:
        req = self._req
        stored: dict[str, Any] = await self._conn.fetchval(
            "INSERT INTO refunds (store_id, refund_id, transaction_id, card_id, request_hash,"
            " lines, response, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " RETURNING response",
            req.store_id,
            req.refund_id,
            req.transaction_id,
            self._card_id,
            req.request_hash,
            [{"line_id": line.line_id, "quantity": line.quantity} for line in reversal.lines],
            response,
            req.now,
        )
        self.recorded_response = stored
        return stored

    async def _lock_card(self) -> None:
        """The card's row, locked once per return (a commit of the card waits for it)."""
        if not self._card_locked:
            await self._conn.execute(
                "SELECT 1 FROM cards WHERE card_id = $1 FOR UPDATE", self._card_id
            )
            self._card_locked = True

    def _kind(self, kind: str) -> str:
        return kind.replace("refund_", "cancel_") if self._req.cancel else kind

    async def _entry(self, kind: str, points: int, lot_id: int | None) -> None:
        assert self._card_id is not None
        await self._entry_on(self._card_id, self._kind(kind), points, lot_id)

    async def _entry_on(self, card_id: int, kind: str, points: int, lot_id: int | None) -> None:
        req = self._req
        await self._conn.execute(
            """
            INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id,
                                        refund_id, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            card_id,
            kind,
            points,
            lot_id,
            req.store_id,
            req.transaction_id,
            req.refund_id,
            req.now,
        )


def _unwatched(cancel: bool, totals: dict[str, int]) -> None:
    """What a ledger nobody watches does with a recorded return (scripts, tests)."""


class ReturnsLedger:
    def __init__(
        self,
        pool: asyncpg.Pool,
        on_recorded: Callable[[bool, dict[str, int]], None] = _unwatched,
    ) -> None:
        self._pool = pool
        # Told of each return once its transaction committed: (a cancel?, its totals).
        self.on_recorded = on_recorded

    @contextlib.asynccontextmanager
    async def session(self, req: ReturnRequest) -> AsyncIterator[PostgresReturnSession]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT r.card_id, c.number, r.status, r.lines, r.points_redeemed"
                " FROM receipts r LEFT JOIN cards c USING (card_id)"
                " WHERE r.store_id = $1 AND r.transaction_id = $2 FOR UPDATE OF r",
                req.store_id,
                req.transaction_id,
            )
            if row is None:
                raise NotFound("no committed sale with this transaction_id", code="sale_not_found")
            session = PostgresReturnSession(conn, req, row, row["number"])
            yield session
        if session.recorded_response is not None:  # a new return, committed
            self.on_recorded(req.cancel, session.recorded_response["totals"])
