"""The program's analytics on a hand-counted period, and their sums against the run's."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from service.domain.errors import InvalidInput
from service.rules.demo import DEMO_STORES
from service.simulation.analytics import analytics
from service.simulation.engine import prepare, simulate
from service.simulation.receipts import ReceiptSet, receipt_set
from tests.unit.simulation.generated import generated
from tests.unit.simulation.test_engine import START, demo

# (day, store, card, amount in kopecks): five sales over 150 days
SALES = [
    (0, "msk-001", "2000000100001", 100_000),
    (1, "msk-001", None, 50_000),
    (40, "web", "2000000100002", 200_000),
    (100, "msk-001", "2000000100001", 300_000),
    (150, "web", "2000000100003", 80_000),
]


def one_line_receipts(sales: list[tuple[int, str, str | None, int]]) -> ReceiptSet:
    """(day from START, store, card, amount): a receipt of one line each ("web": online)."""
    return receipt_set(
        receipt_of_line=np.arange(len(sales)),
        occurred=np.array([int((START + timedelta(days=d)).timestamp()) for d, *_ in sales]),
        store_ids=[s for _, s, _, _ in sales],
        stores={s.store_id: s for s in DEMO_STORES},
        cards=[c for _, _, c, _ in sales],
        channels=["online" if s == "web" else "offline" for _, s, _, _ in sales],
        lines={"sku": ["TEE-1"] * len(sales), "category": ["tops"] * len(sales),
               "brand": [None] * len(sales), "quantity": [1000] * len(sales),
               "unit_price": [a for *_, a in sales]},
    )  # fmt: skip


def period():  # type: ignore[no-untyped-def]
    prepared = prepare(one_line_receipts(SALES))
    return prepared, simulate(prepared, demo())


def test_by_store_as_counted_by_hand() -> None:
    prepared, run = period()
    figures = analytics(prepared, run.per_receipt, "store", churn_days=90)
    shop, web = figures["msk-001"], figures["web"]
    assert (shop.receipts, shop.receipts_with_card) == (3, 2)
    assert (shop.average_receipt_with_card, shop.average_receipt_without_card) == (200_000, 50_000)
    assert (shop.active_members, shop.new_members, shop.churned_members) == (1, 1, 0)
    assert (shop.purchase_frequency_milli, shop.ltv) == (2_000, 400_000)
    assert (web.receipts, web.average_receipt_with_card, web.average_receipt_without_card) == (
        2, 140_000, 0,
    )  # fmt: skip
    # the second card last bought 110 days before the period's end: churned at 90 days
    assert (web.active_members, web.new_members, web.churned_members) == (2, 2, 1)
    assert analytics(prepared, run.per_receipt, "store", churn_days=120)["web"].churned_members == 0


def test_groups_channels_and_months_add_up_to_the_run() -> None:
    prepared, run = (lambda p: (p, simulate(p, demo())))(
        prepare(generated(300, seed=31, start=START))
    )
    total_earned = int(run.per_receipt[:, 1].sum())
    for by in ("store", "channel", "month"):
        figures = analytics(prepared, run.per_receipt, by)  # type: ignore[arg-type]
        assert sum(f.receipts for f in figures.values()) == 300
        assert sum(f.points_earned for f in figures.values()) == total_earned
        assert sum(f.new_members for f in figures.values()) == len(prepared.receipts.cards)
    grouped = analytics(
        prepared, run.per_receipt, "group", groups={"msk-001": "moscow", "web": "moscow"}
    )
    assert set(grouped) == {"moscow", "other"}
    figures = analytics(prepared, run.per_receipt, "month")
    ratio = [f.redeemed_per_earned_bp for f in figures.values() if f.points_earned]
    assert ratio and all(r >= 0 for r in ratio)
    with pytest.raises(InvalidInput):
        analytics(prepared, run.per_receipt, "region")  # type: ignore[arg-type]
