"""Reports for marketing and finance, and the figures derived from their rows. Every
paged report is a ``Fetch``: given a cursor and a page size, a page of rows and the next
cursor, so that the same report answers a JSON page or streams a CSV export. Ratios are
integer basis points and averages are integer kopecks rounded down: no floats near money."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from service.domain.errors import invalid_field
from service.usecases.ports import Programs

Page = tuple[list[dict[str, Any]], str | None]


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime
    until: datetime


DEFAULT_PERIOD = timedelta(days=30)

Fetch = Callable[[str | None, int], Awaitable[Page]]


class ReportStore(Protocol):
    async def balances(self, now: datetime, cursor: str | None, limit: int) -> Page: ...

    async def card_history(
        self, number: str, period: Period, cursor: str | None, limit: int
    ) -> Page: ...

    async def store_history(
        self, store_id: str, period: Period, cursor: str | None, limit: int
    ) -> Page: ...

    async def promotions(self, period: Period, cursor: str | None, limit: int) -> Page: ...

    async def health(self, period: Period) -> dict[str, Any]: ...

    async def liability(self, now: datetime, cursor: str | None, limit: int) -> Page: ...

    async def breakage(self, cursor: str | None, limit: int) -> Page: ...


def ratio_bp(part: int, whole: int) -> int | None:
    """``part / whole`` in basis points, rounded down; None when ``whole`` is zero."""
    return None if whole == 0 else part * 10_000 // whole


def average(total: int, count: int) -> int | None:
    """The mean in kopecks, rounded down; None over nothing."""
    return None if count == 0 else total // count


def health(row: dict[str, Any]) -> dict[str, Any]:
    """Program health: participation, redeemed to earned, average receipt with and without
    a card."""
    with_card = row["receipts_with_card"]
    without_card = row["receipts"] - with_card
    return {
        **row,
        "participation_bp": ratio_bp(with_card, row["receipts"]),
        "redeemed_to_earned_bp": ratio_bp(row["points_redeemed"], row["points_earned"]),
        "average_receipt_with_card": average(row["sales_with_card"], with_card),
        "average_receipt_without_card": average(row["sales_without_card"], without_card),
    }


def valued(rows: list[dict[str, Any]], points_key: str, point_value: int) -> list[dict[str, Any]]:
    """Rows with the kopecks their points are worth at the program's point value."""
    return [{**row, "value": row[points_key] * point_value} for row in rows]


def period(since: datetime | None, until: datetime | None, now: datetime) -> Period:
    """The period asked for: until ``now`` and from ``DEFAULT_PERIOD`` before its end
    unless given; it must not be empty."""
    end = until or now
    start = since or end - DEFAULT_PERIOD
    if start >= end:
        raise invalid_field("since", "must be before until")
    return Period(start, end)


def balances(store: ReportStore, now: datetime) -> Fetch:
    """Every card's balance, pending points and debt at ``now``."""
    return partial(store.balances, now)


def card_history(store: ReportStore, number: str, within: Period) -> Fetch:
    """Every ledger entry of a card in the period, oldest first."""
    return partial(store.card_history, number, within)


def store_history(store: ReportStore, store_id: str, within: Period) -> Fetch:
    """The ledger entries of sales, returns and cancellations in a store, oldest first."""
    return partial(store.store_history, store_id, within)


def promotions(store: ReportStore, within: Period) -> Fetch:
    """Each promotion's receipts, discount given and points, by sale time in the period."""
    return partial(store.promotions, within)


async def health_report(store: ReportStore, within: Period) -> dict[str, Any]:
    """The period and the program's health over it."""
    figures = health(await store.health(within))
    return {"since": within.since, "until": within.until, **figures}


def _valued_pages(fetch: Fetch, points_key: str, point_value: int) -> Fetch:
    async def valued_page(cursor: str | None, limit: int) -> Page:
        rows, next_cursor = await fetch(cursor, limit)
        return valued(rows, points_key, point_value), next_cursor

    return valued_page


def liability(store: ReportStore, programs: Programs, now: datetime) -> Fetch:
    """Points outstanding at ``now`` by month of expiry, and what they are worth at the
    current program's point value."""
    point_value = programs.current.settings.point_value
    return _valued_pages(partial(store.liability, now), "points", point_value)


def breakage(store: ReportStore, programs: Programs) -> Fetch:
    """Points that expired unspent, by month, and what they were worth at the current
    program's point value."""
    point_value = programs.current.settings.point_value
    return _valued_pages(store.breakage, "points_expired", point_value)
