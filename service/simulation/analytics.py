"""The program's own analytics (SPEC §10.3) over a period's receipts and a simulation run.

Per store, store group, channel or month: the average receipt with and without a card,
purchase frequency, churn, active and new members, LTV, redeemed/earned ratio and goods
paid with points. A member is a card; within the period:

- active: the card bought in the slice; new: its first sale of the period is in it;
- churned: its last sale of the period is in the slice and lies more than ``churn_days``
  before the period's end (each churned card counted once, where it last bought);
- frequency: the slice's card receipts per active member (thousandths);
- LTV: the slice's sales with a card per active member (kopecks over the period);
- points: earned, redeemed, their ratio (bp), kopecks paid with points, from a
  simulation's run or as the ledger recorded each sale (``per_receipt``, ``_state.P_*``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from service.domain.errors import InvalidInput
from service.simulation import _state
from service.simulation.engine import Prepared
from service.simulation.receipts import CHANNELS
from service.simulation.report import _months, _receipt_sums

IntArray = npt.NDArray[np.int64]
BP = 10_000
DAY_S = 86_400
Dimension = Literal["store", "group", "channel", "month"]


@dataclass(frozen=True, slots=True)
class Figures:
    receipts: int
    receipts_with_card: int
    average_receipt_with_card: int  # kopecks
    average_receipt_without_card: int
    active_members: int
    new_members: int
    churned_members: int
    purchase_frequency_milli: int
    ltv: int  # kopecks per active member over the period
    points_earned: int
    points_redeemed: int
    redeemed_per_earned_bp: int
    paid_with_points: int  # kopecks


def analytics(
    prepared: Prepared,
    per_receipt: IntArray,
    by: Dimension,
    *,
    groups: Mapping[str, str] | None = None,
    churn_days: int = 90,
) -> dict[str, Figures]:
    """The figures of each slice of the period (``per_receipt``: a run's, or what the
    ledger recorded; ``groups``: store id to group name, for ``by="group"``; stores in
    none are "other")."""
    if churn_days < 1:
        raise InvalidInput("churn_days is at least 1")
    key, names = _keys(prepared, by, groups)
    receipts, rows = prepared.receipts, per_receipt
    card = receipts.card
    sales = _receipt_sums(prepared)
    with_card = card >= 0
    first, last = _first_and_last(card)
    ends = int(receipts.occurred.max(initial=0))
    churned = last & (receipts.occurred < ends - churn_days * DAY_S)
    active = _distinct_cards(key, card, len(names))
    out: dict[str, Figures] = {}
    for k, name in enumerate(names):
        mine = key == k
        carded, anonymous = mine & with_card, mine & ~with_card
        earned = int(rows[mine, _state.P_EARNED].sum())
        redeemed = int(rows[mine, _state.P_REDEEMED].sum())
        members = int(active[k])
        out[name] = Figures(
            receipts=int(mine.sum()),
            receipts_with_card=int(carded.sum()),
            average_receipt_with_card=_mean(sales[carded]),
            average_receipt_without_card=_mean(sales[anonymous]),
            active_members=members,
            new_members=int((mine & first).sum()),
            churned_members=int((mine & churned).sum()),
            purchase_frequency_milli=int(carded.sum()) * 1000 // members if members else 0,
            ltv=int(sales[carded].sum()) // members if members else 0,
            points_earned=earned,
            points_redeemed=redeemed,
            redeemed_per_earned_bp=redeemed * BP // earned if earned else 0,
            paid_with_points=int(rows[mine, _state.P_PAID].sum()),
        )
    return out


def as_rows(figures: Mapping[str, Figures]) -> list[dict[str, int | str]]:
    return [{"slice": name, **asdict(f)} for name, f in figures.items()]


def as_csv(figures: Mapping[str, Figures]) -> str:
    """A row per slice, a column per figure (the names of ``Figures``)."""
    table = io.StringIO()
    columns = ["slice", *(f for f in Figures.__dataclass_fields__)]
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(as_rows(figures))
    return table.getvalue()


def _keys(
    prepared: Prepared, by: Dimension, groups: Mapping[str, str] | None
) -> tuple[IntArray, list[str]]:
    receipts = prepared.receipts
    if by == "month":
        return _months(prepared.local_date)
    if by == "channel":
        return receipts.channel, list(CHANNELS)
    stores = [s.store_id for s in receipts.stores]
    if by == "store":
        return receipts.store, stores
    if by != "group":
        raise InvalidInput(f"analytics by store, group, channel or month, not {by!r}")
    labels = [(groups or {}).get(s, "other") for s in stores]
    names = sorted(set(labels))
    position = np.array([names.index(label) for label in labels], dtype=np.int64)
    return position[receipts.store], names


def _first_and_last(card: IntArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per receipt: is it its card's first of the period, its last (time order)."""
    first = np.zeros(len(card), dtype=bool)
    last = np.zeros(len(card), dtype=bool)
    with_card = np.flatnonzero(card >= 0)
    _, at = np.unique(card[with_card], return_index=True)
    first[with_card[at]] = True
    _, from_end = np.unique(card[with_card][::-1], return_index=True)
    last[with_card[len(with_card) - 1 - from_end]] = True
    return first, last


def _distinct_cards(key: IntArray, card: IntArray, size: int) -> IntArray:
    with_card = card >= 0
    pairs = np.unique(key[with_card] * (int(card.max(initial=0)) + 1) + card[with_card])
    return np.bincount(pairs // (int(card.max(initial=0)) + 1), minlength=size).astype(np.int64)


def _mean(values: IntArray) -> int:
    return int(values.sum()) // len(values) if len(values) else 0
