"""The program's own analytics and the pilot report (SPEC §10.3) over a period of the
ledger: what the chain's sales recorded, not a simulation of them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from service.domain.errors import InvalidInput
from service.simulation.analytics import Dimension, Figures, analytics
from service.simulation.engine import prepare
from service.simulation.pilot import PilotReport, pilot_of_receipts
from service.simulation.receipts import NO_RECEIPTS, ReceiptSet, receipt_sales
from service.simulation.uplift import CustomerGroup
from service.simulation.uplift_groups import customer_groups

ReadPeriod = Callable[[datetime, datetime], Awaitable[tuple[ReceiptSet, npt.NDArray[np.int64]]]]
MAX_PERIOD_DAYS = 731  # two years: a year against the one before it


def _checked(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need their UTC offset", code="naive_timestamp")
    if until <= since:
        raise InvalidInput("until must come after since", code="invalid_period")
    if (until - since).days > MAX_PERIOD_DAYS:
        raise InvalidInput(f"a period of at most {MAX_PERIOD_DAYS} days", code="period_too_long")


async def figures(
    read_period: ReadPeriod,
    since: datetime,
    until: datetime,
    by: Dimension,
    churn_days: int,
) -> dict[str, Figures]:
    """The period's figures per store, store group (the store's region), channel or
    month, with the points each sale recorded."""
    _checked(since, until)
    try:
        receipts, recorded = await read_period(since, until)
    except InvalidInput as refused:
        if refused.code == NO_RECEIPTS:
            return {}  # a quiet period: no slice to show
        raise
    regions = {store.store_id: store.region for store in receipts.stores}

    def work() -> dict[str, Figures]:
        return analytics(prepare(receipts), recorded, by, groups=regions, churn_days=churn_days)

    return await asyncio.to_thread(work)


async def pilot(
    read_period: ReadPeriod,
    since: datetime,
    until: datetime,
    pilot_stores: Collection[str],
    control_stores: Collection[str],
    starts: date,
) -> PilotReport:
    """The pilot stores against the control stores, before and after ``starts`` (their
    local day), over the period's sales."""
    _checked(since, until)
    receipts, _ = await read_period(since, until)
    return await asyncio.to_thread(
        pilot_of_receipts, receipts, pilot=pilot_stores, control=control_stores, starts=starts
    )


async def uplift_groups(
    read_period: ReadPeriod, since: datetime, until: datetime, threshold: int, new_days: int
) -> list[CustomerGroup]:
    """The uplift forecast's customer groups from the period's sales (SPEC §10.2)."""
    _checked(since, until)
    receipts, _ = await read_period(since, until)
    return await asyncio.to_thread(
        customer_groups, receipts, receipt_sales(receipts), threshold,
        since=int(since.timestamp()), until=int(until.timestamp()), new_days=new_days,
    )  # fmt: skip


def pilot_json(report: PilotReport) -> dict[str, Any]:
    out = asdict(report)
    for name in ("average_receipt", "sales_per_store_day"):
        out[name]["found"] = getattr(report, name).found
    return out
