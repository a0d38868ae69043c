"""Returns in the simulation: the ledger's reversal (service.domain.reversal) applied to
the card between its sales, at the return's place in time (SPEC §10.1, issue 19)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from service.domain.errors import InvalidInput
from service.domain.reversal import SoldLine, reverse
from service.kernels._layout import O_DISCOUNT, O_EARNED, O_FINAL, O_PAID
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.demo import DEMO_STORES, demo_program
from service.rules.document import parse_program
from service.simulation import _returns, _state
from service.simulation.engine import Assumptions, Prepared, Run, prepare, simulate
from service.simulation.receipts import REDEEM_MAX, ReceiptSet, read_receipts, receipt_set
from service.simulation.report import summarize

# A Monday morning, far from every dated rule of the demo; no clock is read.
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
CARD = "2000000100001"
STORES = {s.store_id: s for s in DEMO_STORES}


def program(**tiers: object) -> CompiledProgram:
    doc = copy.deepcopy(demo_program())
    doc["tiers"].update(tiers)
    return compile_program(parse_program(doc), 1)


def sales(
    baskets: list[tuple[timedelta, list[tuple[int, int]], int]],
    returns: list[tuple[int, int, int, timedelta]] = (),  # type: ignore[assignment]
) -> ReceiptSet:
    """One card's sales (when, [(quantity, unit price)], points asked) of plain goods and
    returns (sale, line, quantity, when)."""
    receipt_of_line, quantity, price = [], [], []
    for b, (_, lines, _) in enumerate(baskets):
        for q, p in lines:
            receipt_of_line.append(b)
            quantity.append(q)
            price.append(p)
    count = len(receipt_of_line)
    return receipt_set(
        receipt_of_line=np.array(receipt_of_line, dtype=np.int64),
        occurred=np.array([int((START + at).timestamp()) for at, _, _ in baskets], np.int64),
        store_ids=["msk-001"] * len(baskets),
        stores=STORES,
        cards=[CARD] * len(baskets),
        redeem=np.array([r for _, _, r in baskets], dtype=np.int64),
        lines={"sku": ["PLAIN"] * count, "category": ["plain"] * count,
               "brand": [None] * count, "quantity": quantity, "unit_price": price},
        returns={
            "sale": np.array([r[0] for r in returns], dtype=np.int64),
            "line": np.array([r[1] for r in returns], dtype=np.int64),
            "quantity": np.array([r[2] for r in returns], dtype=np.int64),
            "at": np.array([int((START + r[3]).timestamp()) for r in returns], np.int64),
        },
    )  # fmt: skip


DAY, HOUR = timedelta(days=1), timedelta(hours=1)
prepare_cache: dict[int, Prepared] = {}
# 2 x 6,000 roubles reach Silver (10,000); one back leaves 6,000: Base again
TIER_SALES = [(timedelta(0), [(2000, 600_000)], 0), (DAY, [(1000, 100_000)], 0)]


def test_a_return_lowers_the_spend_and_the_next_sale_sees_it() -> None:
    demo = program()
    kept = simulate(prepare(sales(TIER_SALES)), demo)
    returned = simulate(prepare(sales(TIER_SALES, [(0, 0, 1000, HOUR)])), demo)
    assert kept.per_receipt[1, _state.P_DISCOUNT] == 5_000  # Silver's 5%
    assert returned.per_receipt[1, _state.P_DISCOUNT] == 0  # Base: the return took it back
    assert returned.per_receipt[0].tolist() == kept.per_receipt[0].tolist()  # the sale as sold
    back = returned.per_return[0]
    assert back[_returns.RT_TIER_SPEND] == 600_000
    assert back[_returns.RT_POINTS_TAKEN] == kept.per_receipt[0, _state.P_EARNED] // 2


def test_a_late_ledger_keeps_the_tier_until_the_scheduled_downgrade() -> None:
    """Read at one processing time (make replay), no downgrade job runs between the
    sales: the card keeps Silver; a program that moves tiers down on return does not."""
    receipts = sales(TIER_SALES, [(0, 0, 1000, HOUR)])
    late = Assumptions(balances_as_of=START + timedelta(days=30))
    scheduled = simulate(prepare(receipts), program(), late)
    on_return = simulate(prepare(receipts), program(downgrade="on_return"), late)
    assert scheduled.per_receipt[1, _state.P_DISCOUNT] == 5_000
    assert on_return.per_receipt[1, _state.P_DISCOUNT] == 0


def test_the_amounts_are_the_ledgers_reversal_of_the_sale() -> None:
    """Points paid with and earned, split over lines as the ledger splits them."""
    baskets = [
        (timedelta(0), [(3000, 200_000), (1000, 150_000)], 0),
        (30 * DAY, [(2000, 120_000), (5000, 30_000), (1000, 99_900)], REDEEM_MAX),
        (31 * DAY, [(1000, 50_000)], 0),
    ]
    returns = [(1, 1, 2000, 30 * DAY + HOUR), (1, 0, 1000, 30 * DAY + 2 * HOUR)]
    prepared = prepare(sales(baskets, returns))
    run = simulate(prepared, program())
    prepare_cache[id(run)] = prepared
    redeemed = int(run.per_receipt[1, _state.P_REDEEMED])
    assert redeemed > 0
    lines = _sold(run, 1)
    first = reverse(lines, redeemed, {}, {"1": 2000})
    second = reverse(lines, redeemed, {"1": 2000}, {"0": 1000})
    assert first.points_paid_back > 0 and second.points_earned_back > 0
    for row, reversal in zip(run.per_return.tolist(), (first, second), strict=True):
        assert row[_returns.RT_MONEY] == reversal.money
        assert row[_returns.RT_POINTS_BACK] == reversal.points_paid_back
        assert row[_returns.RT_POINTS_TAKEN] == reversal.points_earned_back
        assert row[_returns.RT_TIER_SPEND] == reversal.tier_spend
    summary = summarize(prepared, run)
    assert summary.returns == 2
    assert summary.points_given_back == first.points_paid_back + second.points_paid_back
    # every point accounted for: earned, less taken back, plus given back
    assert summary.points_owed == 0
    assert (
        summary.points_redeemed + summary.points_expired + summary.liability_points
        == summary.points_earned - summary.points_taken_back + summary.points_given_back
    )


def _sold(run: Run, sale: int) -> tuple[SoldLine, ...]:
    """The sale's lines as the kernel evaluated them (one card: processing order is time
    order), as the ledger commits them."""
    receipts = prepare_cache[id(run)].processing
    first, last = int(receipts.line_ptr[sale]), int(receipts.line_ptr[sale + 1])
    return tuple(
        SoldLine(str(i - first), int(receipts.quantity[i]),
                 int(receipts.quantity[i] * receipts.unit_price[i] // 1000),
                 *(int(run.per_line[i, k]) for k in (O_DISCOUNT, O_PAID, O_FINAL, O_EARNED)))
        for i in range(first, last)
    )  # fmt: skip


def test_points_spent_before_the_return_become_debt_repaid_from_the_next_accrual() -> None:
    late = Assumptions(balances_as_of=START + timedelta(days=60))
    baskets = [
        (timedelta(0), [(1000, 500_000)], 0),  # earns 1% of 5,000 roubles
        (DAY, [(1000, 300_000)], REDEEM_MAX),  # spends them
        (2 * DAY, [(1000, 400_000)], 0),
        (3 * DAY, [(1000, 400_000)], REDEEM_MAX),
    ]
    plain = simulate(prepare(sales(baskets)), program(), late)
    run = simulate(prepare(sales(baskets, [(0, 0, 1000, DAY + HOUR)])), program(), late)
    earned_first = int(plain.per_receipt[0, _state.P_EARNED])
    assert plain.per_receipt[1, _state.P_REDEEMED] == earned_first  # all of them spent
    back = run.per_return[0]
    assert back[_returns.RT_POINTS_TAKEN] == earned_first
    # taken from the sale's own lot (empty), then the card's active lots (the second
    # sale's, active when read late); the rest is owed (negative_balance)
    second = int(run.per_receipt[1, _state.P_EARNED])
    debt = earned_first - second
    assert debt > 0
    assert back[_returns.RT_DEBT] == debt
    # the third sale's accrual repays the debt first: the fourth sale has less to spend
    third = int(run.per_receipt[2, _state.P_EARNED])
    assert run.per_receipt[3, _state.P_REDEEMED] == max(third - debt, 0)
    assert run.per_receipt[1:3, :3].tolist() == plain.per_receipt[1:3, :3].tolist()


def test_a_debt_left_at_the_end_comes_off_the_liability() -> None:
    late = Assumptions(balances_as_of=START + timedelta(days=60))
    baskets = [
        (timedelta(0), [(1000, 500_000)], 0),  # earns 1% of 5,000 roubles
        (DAY, [(1000, 300_000)], REDEEM_MAX),  # spends them, earns a little
    ]
    prepared = prepare(sales(baskets, [(0, 0, 1000, DAY + HOUR)]))
    run = simulate(prepared, program(), late)
    summary = summarize(prepared, run)
    owed = int(run.per_return[0, _returns.RT_DEBT])
    assert owed > 0 and summary.points_owed_at_end == owed == int(run.debt.sum())
    # the card holds less than it owes: nothing of it is owed to the customer
    assert summary.liability_points < owed
    assert summary.liability_net_points == 0 == summary.expected_breakage_points
    # with no return, nothing owed: the net liability is the liability
    plain_prepared = prepare(sales(baskets))
    plain = summarize(plain_prepared, simulate(plain_prepared, program(), late))
    assert plain.points_owed_at_end == 0
    assert plain.liability_net_points == plain.liability_points > 0
    assert plain.liability_net_value == plain.liability_value


def test_a_return_gives_its_sale_s_campaign_budget_back() -> None:
    """A rule with a budget of 100 roubles: the first sale uses all of it; returned whole,
    it gives the budget back (as the ledger's refund does), and a later sale gets the
    discount again; returned by half, half of it."""
    document = copy.deepcopy(demo_program())
    document["rules"].append(
        {"id": "budgeted", "name": "10% off, 100 roubles in all", "priority": 1,
         "target": {"categories": ["plain"]}, "effect": {"type": "percent", "percent": "10"},
         "budget": 10_000}
    )  # fmt: skip
    budgeted = compile_program(parse_program(document), 1)
    baskets = [(timedelta(0), [(2000, 50_000)], 0), (2 * DAY, [(1000, 100_000)], 0)]
    rule = budgeted.rule_ids.index("budgeted")

    def used(returns: list[tuple[int, int, int, timedelta]]) -> list[int]:
        run = simulate(prepare(sales(baskets, returns)), budgeted)
        return [int(x) for x in run.per_rule[:, _state.R_DISCOUNT].tolist()[rule : rule + 1]]

    kept = used([])
    assert kept == [10_000]  # the first sale's 10% of 1,000 roubles: the whole budget
    whole = used([(0, 0, 2000, DAY)])
    assert whole == [20_000]  # given back: the second sale gets 10% of 1,000 again
    half = used([(0, 0, 1000, DAY)])
    assert half == [15_000]  # half of it given back: the second sale gets that much


def test_a_sale_returned_whole_takes_its_stamps_back() -> None:
    """Every 3rd unit free: 2 units, then 1 more is the free third; the first sale returned
    whole before the second takes its 2 stamps back (as the ledger's cancel does), and
    the third unit is paid for. Returned by half, the stamps stay."""
    document = copy.deepcopy(demo_program())
    document["rules"].append(
        {"id": "third-free", "name": "Every 3rd plain free", "priority": 1,
         "target": {"categories": ["plain"]}, "effect": {"type": "stamps", "every": 3}}
    )  # fmt: skip
    stamped = compile_program(parse_program(document), 1)
    baskets = [(timedelta(0), [(2000, 50_000)], 0), (2 * DAY, [(1000, 100_000)], 0)]
    rule = stamped.rule_ids.index("third-free")

    def given(returns: list[tuple[int, int, int, timedelta]]) -> int:
        run = simulate(prepare(sales(baskets, returns)), stamped)
        return int(run.per_rule[rule, _state.R_DISCOUNT])

    assert given([]) == 99_900  # the third unit free, but for the rouble a line keeps
    assert given([(0, 0, 2000, DAY)]) == 0
    assert given([(0, 0, 1000, DAY)]) == 99_900


def test_returns_from_the_receipts_file(tmp_path: Path) -> None:
    path = tmp_path / "period.csv"
    path.write_text(
        "receipt_id,timestamp,store_id,card,redeem_points,sku,category,quantity,unit_price,"
        "returns,line\n"
        f"s1,2025-03-03T09:00:00+00:00,msk-001,{CARD},,PLAIN,plain,2,600000,,\n"
        f"s2,2025-03-04T09:00:00+00:00,msk-001,{CARD},,PLAIN,plain,1,100000,,\n"
        "r1,2025-03-03T10:00:00+00:00,,,,,,1,,s1,1\n"
    )
    receipts = read_receipts(path)
    assert len(receipts) == 2
    assert receipts.returns.sale.tolist() == [0]
    assert receipts.returns.line.tolist() == [0]
    assert receipts.returns.quantity.tolist() == [1000]
    run = simulate(prepare(receipts), program())
    assert run.per_receipt[1, _state.P_DISCOUNT] == 0  # as the in-memory test above
    path.write_text(path.read_text() + "r2,2025-03-03T11:00:00+00:00,,,,,,2,,s1,1\n")
    with pytest.raises(InvalidInput, match="more of a line"):
        read_receipts(path)
