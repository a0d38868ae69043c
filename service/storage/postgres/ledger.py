"""The ledger of record: sales written by ``loyalty_commit``, grouped into batches.

A sale waits for nothing when the ledger is idle: it is sent alone at once. While
``max_in_flight`` batches are already at Postgres, the sales that arrive queue up and
leave together in the next batch: one statement, one round trip and one WAL flush for
all of them (``loyalty_commit_many``, migration 0004). Each sale in a batch is decided on
its own; a refused sale writes nothing and does not affect the others. Postgres writes a
batch's plain card sales together, one statement per table (migration 0005).

A batch is sent with its card sales in card-number order, so two batches lock cards in
the same order. If a batch fails as a whole (a deadlock with a refund or a referral
grant, two workers racing on the same anonymous receipt id), nothing of it was written,
and its sales are committed again one by one, each with its own outcome or error.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from service.domain.errors import Unavailable
from service.storage.postgres.pool import database_errors
from service.storage.redis.card_writes import CardStateWriter
from service.usecases.ports import (
    RECEIPT_LINE_FIELDS,
    Committed,
    RecordedSale,
    RefusalReason,
    Refused,
    Replayed,
    SaleEntry,
    SaleOutcome,
)

_log = logging.getLogger(__name__)

_Waiting = tuple[dict[str, Any], "asyncio.Future[dict[str, Any]]"]


def _card_order(waiting: _Waiting) -> str:
    card = waiting[0].get("card")
    return "" if card is None else str(card)


_RECEIPT_LINE_FIELDS = frozenset(RECEIPT_LINE_FIELDS)


def stored_response(entry: SaleEntry) -> dict[str, Any]:
    """The answer as the receipt row keeps it: without its lines when each line it shows
    is the entry's receipt line less the six ``_RECEIPT_LINE_FIELDS`` (always so for the
    sales usecases/commit.py makes), for the row's ``lines`` give them back: the commit
    functions answer through loyalty_receipt_answer, a replay as the first answer, byte
    for byte. 123-312 B less per receipt row of 1 to 12 lines (docs/performance.md)."""
    response = entry.response
    shown = response.get("lines")
    if not isinstance(shown, list) or len(shown) != len(entry.lines):
        return response
    fields = len(_RECEIPT_LINE_FIELDS)
    for line, answer in zip(entry.lines, shown, strict=True):
        # all six beside the answer's own: ~5 µs for 10 lines (a set difference of the
        # keys instead took 20)
        if not (
            len(line) == len(answer) + fields
            and line.keys() >= _RECEIPT_LINE_FIELDS
            and answer.items() <= line.items()
        ):
            return response
    return {key: value for key, value in response.items() if key != "lines"}


def sale_json(entry: SaleEntry) -> dict[str, Any]:
    """The sale as ``loyalty_commit_many`` reads it (a jsonb element per sale): the
    entry's fields under their names, times as ISO 8601, pairs as two-element arrays;
    the response as the receipt row keeps it (``stored_response``)."""
    sale: dict[str, Any] = {
        "now": entry.now.isoformat(), "store_id": entry.store_id,
        "transaction_id": entry.transaction_id, "request_hash": entry.request_hash,
        "calculation_id": entry.calculation_id, "program_version": entry.program_version,
        "card": entry.card, "occurred_at": entry.occurred_at.isoformat(),
        "subtotal": entry.subtotal, "discount": entry.discount,
        "points_paid": entry.points_paid, "amount_due": entry.amount_due,
        "points_redeemed": entry.points_redeemed, "points_earned": entry.points_earned,
        "lines": entry.lines, "response": stored_response(entry),
        "activates_at": entry.activates_at.isoformat(),
        "expires_at": None if entry.expires_at is None else entry.expires_at.isoformat(),
        "tier_spend": entry.tier_spend,
        "tier_window_start": None if entry.tier_window_start is None
        else entry.tier_window_start.isoformat(),
        "tiers": [list(t) for t in entry.tiers], "promo_codes": list(entry.promo_codes),
        "budgets": [list(b) for b in entry.budgets],
        "rule_uses": [list(u) for u in entry.rule_uses], "held": entry.held,
        "allowance": entry.allowance,
        "referral_points": entry.referral_points, "channel": entry.channel,
        "payment_method": entry.payment_method,
    }  # fmt: skip
    if entry.wallet is not None:  # absent otherwise: loyalty_commit_many's plain sales
        sale["wallet"] = {"number": entry.wallet[0], "amount": entry.wallet[1]}
    if entry.rewards:  # the same: a sale that redeems rewards goes through loyalty_commit
        sale["rewards"] = list(entry.rewards)
    if entry.stamps:  # the same
        sale["stamps"] = [list(move) for move in entry.stamps]
    return sale


def sale_outcome(outcome: dict[str, Any]) -> SaleOutcome:
    """The function's outcome for one sale, typed."""
    kind = outcome["outcome"]
    if kind == "committed":
        return Committed(outcome["response"], outcome.get("referrer"))
    if kind == "replay":
        return Replayed(outcome["response"])
    return Refused(
        RefusalReason(kind), outcome.get("balance"), outcome.get("status"), outcome.get("code")
    )


class Ledger:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch: int = 64,
        max_in_flight: int = 1,
        states: CardStateWriter | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """``states`` is told the cards whose cached state a batch made stale;
        ``on_batch`` the size of every batch sent (a metric)."""
        self._pool = pool
        self._states = states
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self.on_batch = on_batch
        self._queue: list[_Waiting] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def commit_sale(self, entry: SaleEntry) -> SaleOutcome:
        """Record a sale; its outcome (committed, replayed or refused). By the time it
        returns, the card's cached state is marked stale at the card's new
        ``ledger_version``.

        If the caller stops waiting, the sale may still be committed: the POS's retry
        with the same transaction id then gets the stored answer.
        """
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((sale_json(entry), future))
        self._send_batches()
        return sale_outcome(await future)

    async def recorded_sale(self, store_id: str, transaction_id: str) -> RecordedSale | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                "SELECT request_hash, loyalty_receipt_answer(lines, response) AS response"
                " FROM receipts"
                " WHERE store_id = $1 AND transaction_id = $2",
                store_id,
                transaction_id,
            )
        if row is None:
            return None
        return RecordedSale(bytes(row["request_hash"]).hex(), row["response"])

    def _send_batches(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._in_flight += 1
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Waiting]) -> None:
        try:
            batch.sort(key=_card_order)  # stable: one card's sales keep their order
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                outcomes = await self._commit_many([params for params, _ in batch])
            except Unavailable as error:  # the database is away: every sale is told so
                for _, future in batch:
                    _settle(future, error=copy.copy(error))  # one each: tracebacks differ
                return
            except Exception:  # a deadlock, a race on a receipt id, one sale's bad data
                if len(batch) > 1:
                    _log.warning("a commit batch failed; its sales go one by one", exc_info=True)
                await self._one_by_one(batch)
                return
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, outcome=outcome)
        except BaseException as error:  # never leave a caller waiting forever
            for _, future in batch:
                _settle(future, error=error)
            raise
        finally:
            self._in_flight -= 1
            self._send_batches()

    async def _one_by_one(self, batch: list[_Waiting]) -> None:
        for params, future in batch:
            try:
                outcome = await self._commit_alone(params)
            except Exception as error:
                _settle(future, error=error)
            else:
                _settle(future, outcome=outcome)

    async def _commit_alone(self, params: dict[str, Any]) -> dict[str, Any]:
        """A concurrent duplicate of an anonymous sale loses the race on the receipt's
        primary key; it is tried once more and then answers as a replay or a conflict."""
        for attempt in (1, 2):
            try:
                [outcome] = await self._commit_many([params])
                return outcome
            except asyncpg.UniqueViolationError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _commit_many(self, sales: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with database_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", sales)
        outcomes: list[dict[str, Any]] = [row[0] for row in rows]
        if self._states is not None:
            await self._states.mark_stale(
                (params["card"], outcome["ledger_version"])
                for params, outcome in zip(sales, outcomes, strict=True)
                if outcome.get("ledger_version") is not None
            )
        return outcomes

    async def close(self) -> None:
        """Wait for the batches in flight (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(
    future: asyncio.Future[dict[str, Any]],
    *,
    outcome: dict[str, Any] | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert outcome is not None
        future.set_result(outcome)
