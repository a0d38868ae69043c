"""Pilot report (SPEC §10.3): a group of stores running a change against a control
group, before and after the day it started.

The estimate is a difference in differences of ratios: how much the pilot stores'
figure grew from before to after, beyond what the control stores' grew,

    uplift = (pilot after / pilot before) / (control after / control before) - 1,

for the average receipt and for sales per store and day. Its 99% interval comes from
a bootstrap over days (each resample draws the period's days with replacement, on both
sides of the start, and recomputes the estimate; a fixed seed makes the report the same
on every run). The uplift is reported as found when the interval leaves out zero: at
99% rather than 95%, so that noise alone is taken for an uplift once in a hundred
reports, not once in twenty (a chain compares many pilots).
Receipts are read from a ``ReceiptSet``; days are store-local.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from service.domain.errors import InvalidInput
from service.domain.receipt import StoreInfo
from service.simulation import receipts as receipt_sets
from service.simulation.receipts import ReceiptSet
from service.simulation.timezones import local_times

FloatArray = npt.NDArray[np.float64]
BP = 10_000
RESAMPLES = 2_000
SEED = 20_261_207


@dataclass(frozen=True, slots=True)
class Estimate:
    """An uplift in basis points with its 99% interval; ``found``: the interval leaves out 0."""

    uplift_bp: int
    low_bp: int
    high_bp: int

    @property
    def found(self) -> bool:
        return self.low_bp > 0 or self.high_bp < 0


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One group's totals on one side of the start (kopecks, receipts, store-days)."""

    receipts: int
    sales: int
    store_days: int

    @property
    def average_receipt(self) -> int:
        return self.sales // self.receipts if self.receipts else 0


@dataclass(frozen=True, slots=True)
class PilotReport:
    pilot_before: GroupFigures
    pilot_after: GroupFigures
    control_before: GroupFigures
    control_after: GroupFigures
    average_receipt: Estimate
    sales_per_store_day: Estimate


def pilot_report(
    receipts_occurred: npt.NDArray[np.int64],
    receipt_store: npt.NDArray[np.int64],
    receipt_sales: npt.NDArray[np.int64],
    store_ids: list[str],
    timezones: list[str],
    *,
    pilot: Collection[str],
    control: Collection[str],
    starts: date,
) -> PilotReport:
    """The report over receipts given by time (seconds), store index and amount (kopecks)."""
    pilot_ix, control_ix = _indexes(store_ids, pilot), _indexes(store_ids, control)
    if not pilot_ix or not control_ix or set(pilot_ix) & set(control_ix):
        raise InvalidInput("a pilot group and a control group of known stores, none in both")
    stores = tuple(StoreInfo(s, "", tz) for s, tz in zip(store_ids, timezones, strict=True))
    local_date, _ = local_times(receipts_occurred, receipt_store, stores)
    days, day_index = np.unique(local_date, return_inverse=True)
    day_index = day_index.reshape(-1)
    after_day = days >= starts.toordinal()
    if after_day.all() or not after_day.any():
        raise InvalidInput("the receipts must cover days both before and after the start")
    # sales and receipts per (group, day): group 0 pilot, 1 control, 2 neither
    group = np.full(len(store_ids), 2, dtype=np.int64)
    group[pilot_ix], group[control_ix] = 0, 1
    cell = group[receipt_store] * len(days) + day_index
    size = 3 * len(days)
    exact = np.zeros(size, dtype=np.int64)  # kopecks summed as integers (SPEC §2)
    np.add.at(exact, cell, receipt_sales)
    sales = exact.reshape(3, -1)
    counts = np.bincount(cell, minlength=size).reshape(3, -1)
    stores_in = np.array([len(pilot_ix), len(control_ix)], dtype=np.float64)
    ahead = ~after_day
    pilot_before, pilot_after, control_before, control_after = (
        GroupFigures(
            int(counts[g, side].sum()), int(sales[g, side].sum()), int(stores_in[g] * side.sum())
        )
        for g in (0, 1)
        for side in (ahead, after_day)
    )
    # The estimates are ratios, in floating point: no amount of money is computed from them.
    as_float = sales.astype(np.float64), counts.astype(np.float64)
    return PilotReport(
        pilot_before,
        pilot_after,
        control_before,
        control_after,
        average_receipt=_estimate(*as_float, after_day, None),
        sales_per_store_day=_estimate(*as_float, after_day, stores_in),
    )


def pilot_of_receipts(
    receipts: ReceiptSet, *, pilot: Collection[str], control: Collection[str], starts: date
) -> PilotReport:
    """The report over a receipts set: each receipt's sales are its lines' amounts."""
    return pilot_report(
        receipts.occurred, receipts.store, receipt_sets.receipt_sales(receipts),
        [s.store_id for s in receipts.stores], [s.timezone for s in receipts.stores],
        pilot=pilot, control=control, starts=starts,
    )  # fmt: skip


def _indexes(store_ids: list[str], chosen: Collection[str]) -> list[int]:
    position = {s: i for i, s in enumerate(store_ids)}
    unknown = [s for s in chosen if s not in position]
    if unknown:
        raise InvalidInput(f"unknown stores: {', '.join(sorted(unknown))}")
    return [position[s] for s in chosen]


def _ratio_uplift(
    sales: FloatArray, counts: FloatArray, weights: FloatArray, after: npt.NDArray[np.bool_],
    stores: FloatArray | None,
) -> float:  # fmt: skip
    """The difference in differences of one (re)sample of days, ``weights`` per day."""
    values = []
    for g in (0, 1):
        for side in (~after, after):
            total = float((sales[g] * weights * side).sum())
            per = (
                float((counts[g] * weights * side).sum())
                if stores is None
                else float((weights * side).sum()) * stores[g]
            )
            values.append(total / per if per else float("nan"))
    pilot_before, pilot_after, control_before, control_after = values
    return (pilot_after / pilot_before) / (control_after / control_before) - 1


def _estimate(
    sales: FloatArray, counts: FloatArray, after: npt.NDArray[np.bool_], stores: FloatArray | None
) -> Estimate:
    ones = np.ones(sales.shape[1])
    point = _ratio_uplift(sales, counts, ones, after, stores)
    rng = np.random.default_rng(SEED)
    before_days, after_days = np.flatnonzero(~after), np.flatnonzero(after)
    draws = []
    for _ in range(RESAMPLES):
        weights = np.zeros(sales.shape[1])
        for days in (before_days, after_days):
            np.add.at(weights, rng.choice(days, size=len(days)), 1.0)
        draws.append(_ratio_uplift(sales, counts, weights, after, stores))
    low, high = np.nanpercentile(draws, [0.5, 99.5])
    return Estimate(_bp(point), _bp(low), _bp(high))


def _bp(share: float) -> int:
    return round(share * BP)
