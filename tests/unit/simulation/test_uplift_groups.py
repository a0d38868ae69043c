"""The uplift forecast's customer groups built from a period's receipts, counted by hand."""

from __future__ import annotations

import pytest

from service.domain.errors import InvalidInput
from service.simulation.receipts import ReceiptSet, receipt_sales
from service.simulation.uplift import CustomerGroup
from service.simulation.uplift_groups import customer_groups
from tests.unit.simulation.test_analytics import one_line_receipts
from tests.unit.simulation.test_engine import START

DAY = 86_400
THRESHOLD = 300_000  # 3,000 roubles
# (day, store, card, amount): a 120-day period
SALES = [
    (1, "msk-001", "A", 200_000), (40, "msk-001", "A", 240_000),  # loyal, avg 2,200
    (5, "msk-001", "B", 210_000), (90, "web", "B", 230_000),      # loyal, avg 2,200
    (100, "web", "C", 250_000), (110, "web", "C", 250_000),       # new, online, 2,500
    (50, "msk-001", "D", 400_000),                                # above: left out
    (60, "msk-001", "E", 50_000),                                 # 500: 500% away
    (70, "msk-001", None, 10_000),                                # no card
]  # fmt: skip


def _receipts() -> ReceiptSet:
    return one_line_receipts(SALES)


def test_cards_grouped_by_channel_kind_and_distance() -> None:
    receipts = _receipts()
    since = int(START.timestamp())
    until = since + 120 * DAY
    groups = customer_groups(receipts, receipt_sales(receipts), THRESHOLD, since=since,
                             until=until, new_days=30)  # fmt: skip
    # two receipts in 120 days: 2 x 2,629,746 s / 10,368,000 s = 0.507 a month
    two = 2 * 1000 * 2_629_746 // (120 * DAY)
    assert groups == [
        # A and B tie their channels (B: one each way): offline; 800 away from 2,200: 36%
        CustomerGroup("offline", "loyal", 2, 220_000, THRESHOLD, two),
        # E: 2,500 from 500 is 500% away: the last band
        CustomerGroup("offline", "loyal", 1, 50_000, THRESHOLD, two // 2),
        # C: first bought on day 100 of 120, within the last 30 days: new; 20% away
        CustomerGroup("online", "new", 1, 250_000, THRESHOLD, two),
    ]


def test_nothing_to_group_and_bad_input() -> None:
    receipts = _receipts()
    since = int(START.timestamp())
    assert customer_groups(receipts, receipt_sales(receipts), 10_000, since=since,
                           until=since + 120 * DAY) == []  # fmt: skip
    with pytest.raises(InvalidInput):
        customer_groups(receipts, receipt_sales(receipts), 0, since=since, until=since + DAY)
