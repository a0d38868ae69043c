"""Webhook subscriptions and deliveries. Outbox events are fanned out to the
subscriptions that want them (one delivery row each), then delivered with retries.

Several workers may run the same job: rows are claimed with ``FOR UPDATE SKIP LOCKED``
and a claimed delivery is leased (its next attempt moved past the send timeout), so an
attempt is made by one worker at a time and a worker that dies mid-send loses nothing.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from service.domain.errors import NotFound
from service.storage.postgres import audit
from service.storage.postgres.pool import database_errors
from service.usecases.admin_webhooks import Delivery

# Outbox kinds to subscription event names: a sale is an accrual and/or a redemption.
_FAN_OUT = """
WITH events AS (
    SELECT event_id, kind, payload FROM outbox WHERE published_at IS NULL
    ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED
), named AS (
    SELECT e.event_id, name FROM events e, LATERAL unnest(CASE e.kind
        WHEN 'sale' THEN array_remove(ARRAY[
            CASE WHEN (e.payload ->> 'points_earned')::bigint > 0 THEN 'accrual' END,
            CASE WHEN (e.payload ->> 'points_redeemed')::bigint > 0 THEN 'redemption' END],
            NULL)
        ELSE ARRAY[e.kind] END) AS name
), fanned AS (
    INSERT INTO webhook_deliveries (subscription_id, event_id, event)
    SELECT s.subscription_id, n.event_id, n.name
    FROM named n JOIN webhook_subscriptions s ON s.active AND n.name = ANY (s.events)
    ON CONFLICT DO NOTHING
)
UPDATE outbox SET published_at = now() WHERE event_id IN (SELECT event_id FROM events)
"""

_CLAIM = """
WITH due AS (
    SELECT subscription_id, event_id, event FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $3
FROM due, webhook_subscriptions s, outbox o
WHERE (d.subscription_id, d.event_id, d.event) = (due.subscription_id, due.event_id, due.event)
  AND s.subscription_id = d.subscription_id AND o.event_id = d.event_id
RETURNING d.subscription_id, d.event_id, d.event, d.attempts, s.url, s.secret, s.active,
          o.payload, o.created_at
"""

# Lots expiring soon get one "expiring" event each, whoever runs the scan.
_EXPIRING = """
WITH due AS (
    SELECT p.card_id, p.lot_id, p.remaining, p.expires_at FROM point_lots p
    WHERE p.is_open AND p.expires_at > $1 AND p.expires_at <= $2
      AND NOT EXISTS (SELECT 1 FROM expiry_notices n
                       WHERE n.card_id = p.card_id AND n.lot_id = p.lot_id)
    ORDER BY p.expires_at LIMIT $3
), noted AS (
    INSERT INTO expiry_notices (card_id, lot_id) SELECT card_id, lot_id FROM due
    ON CONFLICT DO NOTHING RETURNING card_id, lot_id
)
INSERT INTO outbox (card_id, kind, payload)
SELECT d.card_id, 'expiring',
       jsonb_build_object('card', c.number, 'points', d.remaining, 'expires_at', d.expires_at)
FROM due d JOIN noted USING (card_id, lot_id) JOIN cards c USING (card_id)
"""


# Customers whose birthday falls on one of the days given (month * 100 + day, with the
# year it falls in) get one "birthday" event per active card and year.
_BIRTHDAYS = """
WITH days AS (
    SELECT * FROM unnest($1::int[], $2::int[], $3::date[]) AS d(md, year, day)
), due AS (
    SELECT c.card_id, c.number, cu.customer_id, d.year, d.day FROM days d
    JOIN customers cu
      ON extract(month FROM cu.birthday)::int * 100 + extract(day FROM cu.birthday)::int = d.md
     AND cu.birthday IS NOT NULL AND cu.erased_at IS NULL
    JOIN cards c ON c.customer_id = cu.customer_id AND c.status = 'active'
    WHERE NOT EXISTS (SELECT 1 FROM birthday_notices n
                       WHERE n.card_id = c.card_id AND n.year = d.year)
    LIMIT $4
), noted AS (
    INSERT INTO birthday_notices (card_id, year) SELECT card_id, year FROM due
    ON CONFLICT DO NOTHING RETURNING card_id
)
INSERT INTO outbox (card_id, kind, payload)
SELECT d.card_id, 'birthday',
       jsonb_build_object('card', d.number, 'customer_id', d.customer_id, 'birthday', d.day)
FROM due d JOIN noted USING (card_id)
"""


def birthday_days(today: date, ahead: int) -> tuple[list[int], list[int], list[date]]:
    """The days from ``today`` to ``ahead`` days on, as (month * 100 + day, year, date);
    a birthday on 29 February counts on the 28th in a year that has no 29th."""
    mds, years, days = [], [], []
    for k in range(ahead + 1):
        day = today + timedelta(days=k)
        mds.append(day.month * 100 + day.day)
        years.append(day.year)
        days.append(day)
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            mds.append(229)
            years.append(day.year)
            days.append(day)
    return mds, years, days


# What the outbox still owes, read on every back-office round: deliveries pending (counted
# up to BACKLOG_COUNT_MAX, so that a huge backlog costs no more than a large one), and the
# oldest event not delivered yet: not fanned out (the first unpublished event by the
# partial index, event order being creation order), or fanned out to a delivery pending.
BACKLOG_COUNT_MAX = 100_000
_BACKLOG = f"""
SELECT (SELECT count(*) FROM (SELECT FROM webhook_deliveries WHERE status = 'pending'
                              LIMIT {BACKLOG_COUNT_MAX}) owed) AS pending,
       coalesce(extract(epoch FROM now() - least(
           (SELECT created_at FROM outbox WHERE published_at IS NULL
            ORDER BY event_id LIMIT 1),
           (SELECT created_at FROM outbox WHERE event_id = (
                SELECT min(event_id) FROM webhook_deliveries WHERE status = 'pending')))),
           0)::float8 AS oldest_age_s
"""


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the outbox still owes: deliveries pending, and how old the oldest event is that
    is not delivered yet (0 when none is)."""

    pending: int
    oldest_age_s: float


class Webhooks:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, url: str, events: list[str], secret: str, author: str) -> int:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            subscription_id: int = await conn.fetchval(
                "INSERT INTO webhook_subscriptions (url, secret, events, created_by)"
                " VALUES ($1, $2, $3, $4) RETURNING subscription_id",
                url,
                secret,
                events,
                author,
            )
            subject = f"webhook:{subscription_id}"
            await audit.record(conn, author, "webhook.create", subject, {"events": events})
        return subscription_id

    async def subscriptions(self, subscription_id: int | None = None) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT subscription_id, url, events, active, created_by, created_at"
                " FROM webhook_subscriptions WHERE $1::bigint IS NULL OR subscription_id = $1"
                " ORDER BY subscription_id",
                subscription_id,
            )
        if subscription_id is not None and not rows:
            raise NotFound(f"no webhook {subscription_id}", code="webhook_not_found")
        return [dict(row) for row in rows]

    async def deactivate(self, subscription_id: int, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "UPDATE webhook_subscriptions SET active = false WHERE subscription_id = $1"
                " RETURNING 1",
                subscription_id,
            )
            if found is None:
                raise NotFound(f"no webhook {subscription_id}", code="webhook_not_found")
            await audit.record(conn, author, "webhook.delete", f"webhook:{subscription_id}")

    async def deliveries(
        self, subscription_id: int, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        await self.subscriptions(subscription_id)
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT event_id, event, status, attempts, next_attempt_at, last_error,"
                " delivered_at FROM webhook_deliveries WHERE subscription_id = $1"
                " AND ($2::bigint IS NULL OR event_id < $2) ORDER BY event_id DESC, event LIMIT $3",
                subscription_id,
                before,
                limit,
            )
        return [dict(row) for row in rows]

    async def wanted(self, event: str) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM webhook_subscriptions"
                " WHERE active AND $1 = ANY (events))",
                event,
            )
        )

    async def note_expiring(self, now: datetime, within: timedelta, limit: int = 5000) -> None:
        await self._pool.execute(_EXPIRING, now, now + within, limit)

    async def note_birthdays(self, today: date, ahead: int, limit: int = 5000) -> None:
        """A ``birthday`` event for each active card whose customer's birthday is within
        ``ahead`` days of ``today``, once a year."""
        mds, years, days = birthday_days(today, ahead)
        await self._pool.execute(_BIRTHDAYS, mds, years, days, limit)

    async def fan_out(self, limit: int = 1000) -> int:
        """Turn up to ``limit`` new outbox events into deliveries; returns how many events."""
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(_FAN_OUT, limit)
        return int(status.split()[-1])

    async def backlog(self) -> Backlog:
        row = await self._pool.fetchrow(_BACKLOG)
        return Backlog(row["pending"], row["oldest_age_s"])

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, now, limit, lease_until)
        return [Delivery(**dict(row)) for row in rows]

    async def settle(
        self, delivery: Delivery, *, status: str, error: str | None, retry_at: datetime | None
    ) -> None:
        await self._pool.execute(
            """
            UPDATE webhook_deliveries SET status = $4, last_error = $5,
                next_attempt_at = coalesce($6, next_attempt_at),
                delivered_at = CASE WHEN $4 = 'delivered' THEN now() END
            WHERE subscription_id = $1 AND event_id = $2 AND event = $3
            """,
            delivery.subscription_id,
            delivery.event_id,
            delivery.event,
            status,
            error,
            retry_at,
        )
