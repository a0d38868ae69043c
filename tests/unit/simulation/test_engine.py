"""The simulation engine against the naive one-sale-at-a-time simulator (generated.py),
and what its summaries must add up to."""

from __future__ import annotations

import copy
import csv
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from service.domain.errors import InvalidInput
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.demo import demo_program
from service.rules.document import parse_program
from service.simulation import engine
from service.simulation.engine import Assumptions, prepare, simulate
from service.simulation.receipts import REDEEM_MAX, ReceiptSet, read_receipts
from service.simulation.report import compare, summarize
from tests.unit.simulation.generated import generated, naive_totals

# A fixed period: the simulation reads no clock, and neither do these tests.
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def demo() -> CompiledProgram:
    return compile_program(parse_program(demo_program()), 1)


def short_lived() -> CompiledProgram:
    """Points active at once and valid 30 days, tiers over 60 days: expiry and
    downgrades happen within a generated period."""
    doc = copy.deepcopy(demo_program())
    doc["points"].update(pending_days=0, validity_days=30)
    doc["tiers"]["window_days"] = 60
    doc["tiers"]["levels"][1]["threshold"] = 300_000
    return compile_program(parse_program(doc), 2)


def per_receipt(run: engine.Run) -> list[tuple[int, int, int]]:
    return [tuple(row) for row in run.per_receipt[:, :3].tolist()]  # type: ignore[misc]


@pytest.mark.parametrize("make_program", [demo, short_lived])
def test_every_receipt_as_the_naive_simulator_has_it(make_program) -> None:
    receipts = generated(400, seed=3, start=START, cards=15)
    program = make_program()
    run = simulate(prepare(receipts), program)
    assert per_receipt(run) == naive_totals(receipts, program)
    assert run.per_receipt[:, engine._state.P_REDEEMED].sum() > 0  # points were spent


def test_stamp_cards_carry_each_cards_progress_from_sale_to_sale() -> None:
    doc = copy.deepcopy(demo_program())
    doc["rules"].append(
        {"id": "drinks-4", "name": "Every 4th drink free", "priority": 80,
         "target": {"categories": ["drinks"]}, "effect": {"type": "stamps", "every": 4}}
    )  # fmt: skip
    program = compile_program(parse_program(doc), 3)
    receipts = generated(400, seed=7, start=START, cards=15)
    run = simulate(prepare(receipts), program)
    assert per_receipt(run) == naive_totals(receipts, program)
    drinks = program.rule_index["drinks-4"]
    assert run.per_rule[drinks, engine._state.R_RECEIPTS] > 10  # free drinks were given


def test_balances_read_at_one_processing_time_as_a_late_ledger() -> None:
    receipts = generated(300, seed=5, start=START, cards=10, days=200)
    program = demo()
    as_of = START + timedelta(days=201)
    late = simulate(prepare(receipts), program, Assumptions(balances_as_of=as_of))
    assert per_receipt(late) == naive_totals(receipts, program, as_of=as_of)
    on_time = simulate(prepare(receipts), program)
    # Read late, every lot of the period is active already: more is spent.
    assert late.per_receipt[:, 2].sum() > on_time.per_receipt[:, 2].sum()


def test_points_are_accounted_for_spent_expired_or_still_owed() -> None:
    receipts = generated(500, seed=7, start=START, cards=8)
    prepared = prepare(receipts)
    summary = summarize(prepared, simulate(prepared, short_lived()))
    assert summary.points_expired > 0
    assert (
        summary.points_redeemed + summary.points_expired + summary.liability_points
        == summary.points_earned
    )
    assert sum(summary.liability_by_expiry_month.values()) == summary.liability_points
    assert summary.liability_value == summary.liability_points * 100
    assert sum(s.receipts for s in summary.per_store.values()) == len(receipts)
    assert sum(s.discount for s in summary.per_month.values()) == summary.discount
    assert sum(r.discount for r in summary.per_rule) == summary.discount
    mix = summary.tier_mix
    assert len({tier for month in mix.values() for tier in month}) >= 2
    month_of = [date.fromordinal(d).strftime("%Y-%m") for d in prepared.local_date.tolist()]
    for month, counts in mix.items():
        buyers = {
            c
            for c, m in zip(receipts.card.tolist(), month_of, strict=True)
            if m == month and c >= 0
        }
        assert sum(counts.values()) == len(buyers)


def test_a_draft_beside_the_current_program() -> None:
    receipts = generated(300, seed=11, start=START)
    doc = copy.deepcopy(demo_program())
    doc["points"]["accrual_percent"] = "2"
    doc["tiers"]["levels"][0]["accrual_percent"] = "2"
    doc["rules"].append(
        {"id": "tops-10", "name": "Tops -10%", "priority": 1, "stacking": "additive",
         "target": {"categories": ["tops"]}, "effect": {"type": "percent", "percent": "10"}}
    )  # fmt: skip
    draft = compile_program(parse_program(doc), 2)
    seen: list[int] = []
    result = compare(prepare(receipts), demo(), draft, progress=seen.append)
    assert seen[-1] == 2 * len(receipts) and seen == sorted(seen)
    assert per_receipt(simulate(prepare(receipts), draft)) == naive_totals(receipts, draft)
    rules = {row["rule_id"]: row for row in result.as_json()["per_rule"]}
    assert rules["tops-10"]["current"]["receipts"] == 0 < rules["tops-10"]["draft"]["receipts"]
    difference = result.difference()
    assert difference["discount"] == result.draft.discount - result.current.discount > 0
    assert difference["points_earned"] > 0
    assert "total,,discount," in result.as_csv()


def test_the_same_receipts_from_a_csv_file(tmp_path: Path) -> None:
    receipts = generated(120, seed=13, start=START)
    path = tmp_path / "receipts.csv"
    write_csv(receipts, path)
    again = read_receipts(path)
    program = demo()
    assert per_receipt(simulate(prepare(again), program)) == per_receipt(
        simulate(prepare(receipts), program)
    )


def test_chunks_never_hold_a_card_twice_and_keep_each_cards_order() -> None:
    receipts = generated(600, seed=17, start=START, cards=5)
    prepared = prepare(receipts)
    bounds = prepared.chunks.tolist()
    assert bounds[0] == 0 and bounds[-1] == len(receipts)
    card = prepared.processing.card
    for start, end in itertools.pairwise(bounds):
        cards = card[start:end]
        cards = cards[cards >= 0]
        assert len(np.unique(cards)) == len(cards)
    assert sorted(prepared.order.tolist()) == list(range(len(receipts)))
    for c in range(len(receipts.cards)):
        assert np.all(np.diff(prepared.order[card == c]) > 0)
    assert np.array_equal(prepared.processing.occurred, receipts.occurred[prepared.order])


def test_use_caps_are_refused_not_ignored() -> None:
    doc = copy.deepcopy(demo_program())
    doc["rules"][0]["max_uses"] = 10
    program = compile_program(parse_program(doc), 3)
    with pytest.raises(InvalidInput, match="use caps"):
        simulate(prepare(generated(10, seed=1, start=START)), program)


def write_csv(receipts: ReceiptSet, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["receipt_id", "timestamp", "store_id", "region", "timezone", "card",
                         "channel", "redeem_points", "sku", "category", "brand", "quantity",
                         "unit_price"])  # fmt: skip
        for b in range(len(receipts)):
            store = receipts.stores[int(receipts.store[b])]
            c, redeem = int(receipts.card[b]), int(receipts.redeem[b])
            stamp = datetime.fromtimestamp(int(receipts.occurred[b]), UTC).isoformat()
            for i in range(int(receipts.line_ptr[b]), int(receipts.line_ptr[b + 1])):
                category, brand = int(receipts.category[i]), int(receipts.brand[i])
                writer.writerow([
                    f"r{b}", stamp, store.store_id, store.region, store.timezone,
                    "" if c < 0 else receipts.cards[c], ("offline", "online")[receipts.channel[b]],
                    "max" if redeem == REDEEM_MAX else redeem, receipts.skus[receipts.sku[i]],
                    "" if category < 0 else receipts.categories[category],
                    "" if brand < 0 else receipts.brands[brand],
                    f"{receipts.quantity[i] / 1000:.3f}", receipts.unit_price[i],
                ])  # fmt: skip
