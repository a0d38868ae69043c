"""Cards in the back office: issue (one or a range), block, link to a customer, replace
a lost card, manual adjustments. Every change bumps the card's ledger version, so that
a cached state of the card is never preferred to the new one.

The ledger invariant holds throughout: for every card, the sum of its entries equals
the points left in its lots minus its debt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.domain.errors import Conflict, InsufficientPoints, NotFound
from service.storage.postgres import audit
from service.storage.postgres.idempotency import claim, settle
from service.storage.postgres.pool import database_errors
from service.usecases.admin_cards import Adjustment, NewCard, Welcome
from service.usecases.ports import IdempotentRequest


def card_not_found(number: str) -> NotFound:
    return NotFound("no such loyalty card", code="card_not_found", extra={"card": number})


async def _locked_card(conn: asyncpg.Connection, number: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM cards WHERE number = $1 FOR UPDATE", number)
    if row is None:
        raise card_not_found(number)
    return row


async def _bump(conn: asyncpg.Connection, *card_ids: int) -> None:
    await conn.execute(
        "UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = ANY($1)",
        list(card_ids),
    )


async def _customer_exists(conn: asyncpg.Connection, customer_id: int) -> None:
    found = await conn.fetchval(
        "SELECT erased_at IS NULL FROM customers WHERE customer_id = $1", customer_id
    )
    if found is None:
        raise NotFound(f"no customer {customer_id}", code="customer_not_found")
    if not found:
        raise Conflict(f"customer {customer_id} was erased", code="customer_erased")


async def grant_welcome(conn: asyncpg.Connection, card_id: int, welcome: Welcome | None) -> int:
    """Welcome points on registration, unless this card already had them."""
    if welcome is None or welcome.points <= 0:
        return 0
    had = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM ledger_entries WHERE card_id = $1 AND kind = 'welcome')",
        card_id,
    )
    if had:
        return 0
    await conn.execute(
        "SELECT loyalty_grant($1, $2, 'welcome', $3, $4, NULL, NULL)",
        card_id,
        welcome.points,
        welcome.activates_at,
        welcome.expires_at,
    )
    return welcome.points


async def insert_card(
    conn: asyncpg.Connection, card: NewCard, welcome: Welcome | None, author: str
) -> int:
    """A new card (and its welcome points when issued to a customer), in the caller's
    transaction."""
    if card.customer_id is not None:
        await _customer_exists(conn, card.customer_id)
    referrer = None
    if card.referred_by is not None:
        referrer = await conn.fetchval(
            "SELECT card_id FROM cards WHERE number = $1", card.referred_by
        )
        if referrer is None:
            raise card_not_found(card.referred_by)
    try:
        async with conn.transaction():
            card_id: int = await conn.fetchval(
                "INSERT INTO cards (number, kind, status, customer_id, referred_by)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING card_id",
                card.number,
                card.kind,
                card.status,
                card.customer_id,
                referrer,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "a card with this number exists",
            code="card_exists",
            extra={"fields": [{"field": "number", "message": "already issued"}]},
        ) from None
    if card.customer_id is not None:
        await grant_welcome(conn, card_id, welcome)
    await audit.record(conn, author, "card.issue", f"card:{card_id}")
    # For the chain's CRM (webhook ``card_issued``): a card made one by one (the back
    # office, a registration, an import), not a printer's range of stock.
    await conn.execute(
        "INSERT INTO outbox (card_id, kind, payload) VALUES ($1, 'card_issued', $2)",
        card_id,
        {"card": card.number, "kind": card.kind, "status": card.status,
         "customer_id": card.customer_id},
    )  # fmt: skip
    return card_id


async def set_personal_discount(
    conn: asyncpg.Connection, card: asyncpg.Record, bp: int, reason: str, author: str
) -> bool:
    """The card's personal discount (basis points; the ``personal_discount`` effect grants
    it), its change in the audit log with the old value; the card is locked by the caller.
    Whether it changed."""
    if card["personal_discount_bp"] == bp:
        return False
    await conn.execute(
        "UPDATE cards SET personal_discount_bp = $2, ledger_version = ledger_version + 1"
        " WHERE card_id = $1",
        card["card_id"],
        bp,
    )
    details = {"from_bp": card["personal_discount_bp"], "to_bp": bp, "reason": reason}
    await audit.record(conn, author, "card.personal_discount", f"card:{card['card_id']}", details)
    return True


async def link_card(
    conn: asyncpg.Connection, number: str, customer_id: int, welcome: Welcome | None, author: str
) -> int:
    """Link a card to a customer (registration); returns the welcome points granted."""
    card = await _locked_card(conn, number)
    await _customer_exists(conn, customer_id)
    if card["customer_id"] not in (None, customer_id):
        raise Conflict("the card belongs to another customer", code="card_linked")
    await conn.execute(
        "UPDATE cards SET customer_id = $2 WHERE card_id = $1", card["card_id"], customer_id
    )
    granted = await grant_welcome(conn, card["card_id"], welcome)
    await _bump(conn, card["card_id"])
    await audit.record(
        conn, author, "card.link", f"card:{card['card_id']}", {"customer_id": customer_id}
    )
    return granted


class CardAdmin:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def issue(self, card: NewCard, welcome: Welcome | None, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await insert_card(conn, card, welcome, author)

    async def issue_range(self, numbers: list[str], kind: str, status: str, author: str) -> int:
        """Issue every number given; numbers already issued are skipped. Returns how many
        were issued."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            issued: int = await conn.fetchval(
                """
                WITH issued AS (
                    INSERT INTO cards (number, kind, status)
                    SELECT n, $2, $3 FROM unnest($1::text[]) AS n
                    ON CONFLICT (number) DO NOTHING RETURNING 1)
                SELECT count(*) FROM issued
                """,
                numbers,
                kind,
                status,
            )
            details = {"first": numbers[0], "last": numbers[-1], "issued": issued}
            await audit.record(conn, author, "card.issue_range", f"cards:{kind}", details)
        return issued

    async def set_status(self, number: str, status: str, reason: str, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            card = await _locked_card(conn, number)
            if card["replaced_by"] is not None and status == "active":
                raise Conflict("a replaced card stays blocked", code="card_replaced")
            await conn.execute(
                "UPDATE cards SET status = $2, ledger_version = ledger_version + 1"
                " WHERE card_id = $1",
                card["card_id"],
                status,
            )
            details = {"from": card["status"], "to": status, "reason": reason}
            await audit.record(conn, author, "card.status", f"card:{card['card_id']}", details)

    async def set_personal_discount(self, number: str, bp: int, reason: str, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await set_personal_discount(conn, await _locked_card(conn, number), bp, reason, author)

    async def link(
        self, number: str, customer_id: int, welcome: Welcome | None, author: str
    ) -> int:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            return await link_card(conn, number, customer_id, welcome, author)

    async def view(self, number: str, now: datetime) -> dict[str, Any]:
        async with database_errors():
            row = await self._pool.fetchrow(_VIEW_SQL, number, now)
        if row is None:
            raise card_not_found(number)
        return dict(row)

    async def adjust(
        self, adjustment: Adjustment, now: datetime, idempotency: IdempotentRequest | None
    ) -> dict[str, Any]:
        """Credit (a new lot) or debit (soonest-expiring points first) with reason and
        author; returns the card as the adjustment left it (for a request whose
        ``Idempotency-Key`` was used already: the first answer, and nothing is done).
        A debit never goes beyond the spendable balance."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            if idempotency is not None and (stored := await claim(conn, idempotency)):
                return stored
            await _adjust(conn, adjustment, now)
            view = dict(await conn.fetchrow(_VIEW_SQL, adjustment.number, now))
            return view if idempotency is None else await settle(conn, idempotency, view)

    async def replace(self, old: str, new: str, kind: str, author: str) -> int:
        return await replace_card(self._pool, old, new, kind, author)

    async def adjustments(
        self, number: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                """
                SELECT a.adjustment_id, a.points, a.reason, a.author, a.created_at
                FROM adjustments a JOIN cards c USING (card_id)
                WHERE c.number = $1 AND ($2::bigint IS NULL OR a.adjustment_id < $2)
                ORDER BY a.adjustment_id DESC LIMIT $3
                """,
                number,
                before,
                limit,
            )
        return [dict(row) for row in rows]


async def _adjust(conn: asyncpg.Connection, adjustment: Adjustment, now: datetime) -> int:
    points, reason, author = adjustment.points, adjustment.reason, adjustment.author
    card = await _locked_card(conn, adjustment.number)
    card_id = card["card_id"]
    if points < 0:
        balance = await conn.fetchval(
            "SELECT b.balance FROM loyalty_balance($1, $2) b", card_id, now
        )
        if balance < -points:
            raise InsufficientPoints(
                "the card has fewer spendable points than the debit",
                extra={"balance": max(balance, 0)},
            )
    adjustment_id: int = await conn.fetchval(
        "INSERT INTO adjustments (card_id, points, reason, author, created_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING adjustment_id",
        card_id,
        points,
        reason,
        author,
        now,
    )
    ref = f"adj:{adjustment_id}"
    if points > 0:
        await conn.execute(
            "SELECT loyalty_grant($1, $2, 'adjustment', $3, $4, NULL, $5)",
            card_id,
            points,
            now,
            adjustment.expires_at,
            ref,
        )
    else:
        await conn.execute(
            "SELECT loyalty_take_points($1, $2, $3, 'adjustment', NULL, $4, NULL)",
            card_id,
            -points,
            now,
            ref,
        )
        await _bump(conn, card_id)
    details = {"points": points, "reason": reason, "adjustment_id": adjustment_id}
    await audit.record(conn, author, "card.adjust", f"card:{card_id}", details)
    return adjustment_id


_VIEW_SQL = """
SELECT c.number, c.kind, c.status, c.tier, c.customer_id, c.personal_discount_bp,
       c.purchase_count, c.debt, c.created_at,
       (SELECT r.number FROM cards r WHERE r.card_id = c.replaced_by) AS replaced_by,
       (SELECT r.number FROM cards r WHERE r.card_id = c.referred_by) AS referred_by,
       b.balance, b.pending
FROM cards c CROSS JOIN LATERAL loyalty_balance(c.card_id, $2) b WHERE c.number = $1
"""


async def _replacement_target(conn: asyncpg.Connection, number: str, kind: str) -> asyncpg.Record:
    """The new card: a fresh one, or one issued from stock that nobody has used yet."""
    row = await conn.fetchrow(
        """
        SELECT c.*, EXISTS (SELECT 1 FROM ledger_entries e WHERE e.card_id = c.card_id) AS used
        FROM cards c WHERE number = $1 FOR UPDATE
        """,
        number,
    )
    if row is None:
        await conn.execute("INSERT INTO cards (number, kind) VALUES ($1, $2)", number, kind)
        return await _locked_card(conn, number)
    if row["used"] or row["customer_id"] is not None or row["replaced_by"] is not None:
        raise Conflict(
            "the new card is already in use",
            code="card_in_use",
            extra={"fields": [{"field": "new_number", "message": "already in use"}]},
        )
    return row


async def _move_points(
    conn: asyncpg.Connection, old: asyncpg.Record, new: asyncpg.Record, author: str
) -> int:
    """Every open lot of the old card moves to the new one with its own activation and
    expiry; debt moves too. Returns the points moved."""
    lots = await conn.fetch(
        "SELECT lot_id, remaining, activates_at, expires_at FROM point_lots"
        " WHERE card_id = $1 AND is_open ORDER BY lot_id FOR UPDATE",
        old["card_id"],
    )
    entry = (
        "INSERT INTO ledger_entries (card_id, kind, points, lot_id, transaction_id, reason,"
        " author) VALUES ($1, 'adjustment', $2, $3, $4, 'card replaced', $5)"
    )
    for lot in lots:
        await conn.execute(
            "UPDATE point_lots SET remaining = 0 WHERE card_id = $1 AND lot_id = $2",
            old["card_id"],
            lot["lot_id"],
        )
        await conn.execute(
            entry,
            old["card_id"],
            -lot["remaining"],
            lot["lot_id"],
            f"replaced-by:{new['number']}",
            author,
        )
        lot_id = await conn.fetchval(
            "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
            " source) VALUES ($1, $2, $2, $3, $4, 'replacement') RETURNING lot_id",
            new["card_id"],
            lot["remaining"],
            lot["activates_at"],
            lot["expires_at"],
        )
        await conn.execute(
            entry, new["card_id"], lot["remaining"], lot_id, f"replaces:{old['number']}", author
        )
    if old["debt"]:
        await conn.execute(
            entry, old["card_id"], old["debt"], None, f"replaced-by:{new['number']}", author
        )
        await conn.execute(
            entry, new["card_id"], -old["debt"], None, f"replaces:{old['number']}", author
        )
    return sum(lot["remaining"] for lot in lots)


async def replace_card(
    pool: asyncpg.Pool, old_number: str, new_number: str, kind: str, author: str
) -> int:
    """Move a lost card's balance, debt, tier, spend history, stamp cards and customer to
    a new card; the old one is blocked for good. One transaction. Returns the points
    moved."""
    if old_number == new_number:
        raise Conflict("a card cannot replace itself", code="card_in_use")
    async with database_errors(), pool.acquire() as conn, conn.transaction():
        old = await _locked_card(conn, old_number)
        if old["replaced_by"] is not None:
            raise Conflict("this card was already replaced", code="card_replaced")
        new = await _replacement_target(conn, new_number, kind)
        moved = await _move_points(conn, old, new, author)
        await conn.execute(
            """
            INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)
            SELECT $2, amount, occurred_at, store_id, transaction_id FROM tier_spend
            WHERE card_id = $1
            """,
            old["card_id"],
            new["card_id"],
        )
        # Stamp cards: the counts, and the sales' moves a cancel of them takes back.
        await conn.execute(
            """
            WITH gone AS (DELETE FROM card_stamps WHERE card_id = $1 RETURNING rule_id, have)
            INSERT INTO card_stamps AS s (card_id, rule_id, have)
            SELECT $2, rule_id, have FROM gone
            ON CONFLICT (card_id, rule_id) DO UPDATE SET have = s.have + excluded.have
            """,
            old["card_id"],
            new["card_id"],
        )
        await conn.execute(  # moved whole: card_id distributes the table (sharding plan)
            """
            WITH gone AS (DELETE FROM stamp_moves WHERE card_id = $1 RETURNING *)
            INSERT INTO stamp_moves (store_id, transaction_id, card_id, rule_id, added, used,
                                     moved_at, released_at)
            SELECT store_id, transaction_id, $2, rule_id, added, used, moved_at, released_at
            FROM gone
            """,
            old["card_id"],
            new["card_id"],
        )
        await conn.execute(
            """
            UPDATE cards n SET tier = o.tier, personal_discount_bp = o.personal_discount_bp,
                purchase_count = o.purchase_count, referred_by = o.referred_by,
                customer_id = o.customer_id, debt = o.debt, status = 'active',
                ledger_version = n.ledger_version + 1
            FROM cards o WHERE o.card_id = $1 AND n.card_id = $2
            """,
            old["card_id"],
            new["card_id"],
        )
        await conn.execute(
            "UPDATE cards SET status = 'blocked', replaced_by = $2, customer_id = NULL, debt = 0,"
            " ledger_version = ledger_version + 1 WHERE card_id = $1",
            old["card_id"],
            new["card_id"],
        )
        details = {"new_card_id": new["card_id"], "points": moved, "debt": old["debt"]}
        await audit.record(conn, author, "card.replace", f"card:{old['card_id']}", details)
    return moved
