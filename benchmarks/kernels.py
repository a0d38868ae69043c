"""Kernel vs reference evaluator: time per receipt at growing program and receipt sizes.

    .venv/bin/python -m benchmarks.kernels            # prints the table, updates docs
    .venv/bin/python -m benchmarks.kernels --no-write # prints only

Two program shapes per size: "mixed", where one rule in twenty can touch the receipt
(at least ten), and "10 + idle", where ten rules can touch it and all others target
goods, categories or stores the receipt does not have. Every figure is reported as a
ratio to a reference measured in the same run (SPEC §8): kernel speed-up over the
reference, and the kernel's cost at N rules over its cost at 10 rules.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from benchmarks.docs import replace_section
from service import kernels
from service.domain.calculation import CalculationContext
from service.domain.card import CardState, PointLot
from service.domain.receipt import Receipt, ReceiptLine, StoreInfo
from service.kernels import reference
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.document import parse_program

RULE_COUNTS = (10, 100, 1_000, 5_000)
LINE_COUNTS = (10, 30, 100)
CATEGORIES = [f"cat{k}" for k in range(10)]
STORE = StoreInfo("msk-001", "moscow", "Europe/Moscow")
WHEN = datetime(2026, 11, 20, 15, 5, tzinfo=UTC)
COMMAND = ".venv/bin/python -m benchmarks.kernels"


def _touching_rule(i: int) -> dict[str, Any]:
    """A rule that can touch the receipt: its target names a category on it."""
    category = CATEGORIES[i % len(CATEGORIES)]
    shapes: list[dict[str, Any]] = [
        {"effect": {"type": "percent", "percent": "5"}, "stacking": "additive"},
        {"effect": {"type": "percent", "percent": "7"}, "stacking": "best_of", "group": "g"},
        {
            "effect": {"type": "quantity_steps", "steps": [{"from": "2", "percent": "3"}]},
            "stacking": "compounding",
        },
        {"effect": {"type": "accrual_rate", "percent": "2"}},
        {
            "effect": {"type": "points_per_unit", "points": 1},
            "conditions": {"hours": {"from": "09:00", "to": "21:00"}},
        },
        {
            "effect": {"type": "amount", "amount": 10_000},
            "conditions": {"min_subtotal": 100_000},
            "stacking": "compounding",
        },
        {"effect": {"type": "percent", "percent": "10"}, "conditions": {"weekdays": ["sat"]}},
        {"effect": {"type": "nth_item", "n": 3}},
    ]
    shape = shapes[i % len(shapes)]
    return {
        "id": f"t{i}",
        "name": f"touching {i}",
        "priority": i % 7,
        "target": {"categories": [category]},
        **shape,
    }


def _idle_rule(i: int) -> dict[str, Any]:
    """A rule that cannot touch the receipt: other goods, or another store."""
    if i % 5 == 0:
        target: dict[str, Any] = {"categories": [CATEGORIES[i % 10]], "stores": ["ekb-001"]}
    elif i % 2:
        target = {"skus": [f"OTHER-{i}", f"OTHER-{i + 1}"]}
    else:
        target = {"categories": [f"other-{i % 400}"], "brands": [f"brand-{i % 50}"]}
    return {
        "id": f"i{i}",
        "name": f"idle {i}",
        "priority": i % 7,
        "target": target,
        "effect": {"type": "percent", "percent": "15"},
    }


def program(rule_count: int, touching: int) -> CompiledProgram:
    rules = [_touching_rule(i) for i in range(touching)]
    rules += [_idle_rule(i) for i in range(rule_count - touching)]
    document = {
        "name": "bench",
        "points": {"accrual_percent": "1", "max_share_percent": "50", "min_line_amount": 100},
        "tiers": {"levels": [{"code": "base", "name": "Base", "threshold": 0}]},
        "groups": [{"id": "g"}],
        "rules": rules,
    }
    return compile_program(parse_program(document), version=1)


def scenario(line_count: int) -> tuple[Receipt, CalculationContext]:
    lines = tuple(
        ReceiptLine(
            str(j),
            f"SKU-{j}",
            1_000 + 1_000 * (j % 3),
            10_000 + 137 * j,
            CATEGORIES[j % 10],
            f"house-{j % 3}",
        )
        for j in range(line_count)
    )
    lot = PointLot(1, 5_000, WHEN - timedelta(days=30), WHEN + timedelta(days=300))
    card = CardState("2000000000022", tier_spend=1_500_000, lots=(lot,))
    receipt = Receipt(STORE.store_id, WHEN, lines, card=card.number, redeem_points=300)
    return receipt, CalculationContext(STORE, WHEN, card)


def per_call(function: Callable[[], object], budget: float = 0.4) -> float:
    """Best-of-three seconds per call, each round repeating until ``budget`` seconds pass."""
    function()
    best = float("inf")
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget / 3:
                break
        best = min(best, elapsed / calls)
    return best


def kernel_call(
    receipt: Receipt, ctx: CalculationContext, compiled: CompiledProgram
) -> Callable[[], object]:
    """The numba kernel alone, on arrays prepared once: what SPEC §8 compares.

    Reaches into the package's private helpers on purpose: a benchmark, not an API.
    """
    from service.kernels import _evaluate_one, _inputs
    from service.kernels._layout import OUTPUT_COLUMNS, VERDICT_COLUMNS

    _, arrays = _inputs(receipt, ctx, compiled)
    count = len(receipt.lines)
    outputs = (
        np.empty((count, OUTPUT_COLUMNS), dtype=np.int64),
        np.empty((compiled.rule_count, VERDICT_COLUMNS), dtype=np.int64),
        np.empty((count * compiled.rule_count + 8, 3), dtype=np.int64),
        np.empty(4, dtype=np.int64),
    )
    program_arrays, receipt_arrays = tuple(compiled.arrays), tuple(arrays)
    return lambda: _evaluate_one(program_arrays, receipt_arrays, outputs)


def measure() -> list[dict[str, Any]]:
    rows = []
    for shape in ("mixed", "10 + idle"):
        for rule_count in RULE_COUNTS:
            touching = max(10, rule_count // 20) if shape == "mixed" else 10
            compiled = program(rule_count, min(touching, rule_count))
            for line_count in LINE_COUNTS:
                rows.append(measure_cell(compiled, line_count) | {"shape": shape})
    return rows


def measure_cell(compiled: CompiledProgram, line_count: int) -> dict[str, Any]:
    """Seconds per receipt on each path; the two evaluators must agree first."""
    receipt, ctx = scenario(line_count)
    assert kernels.evaluate(receipt, ctx, compiled) == reference.evaluate(receipt, ctx, compiled)
    batch = ([receipt] * 100, [ctx] * 100)
    return {
        "rules": compiled.rule_count,
        "lines": line_count,
        "reference": per_call(lambda: reference.evaluate(receipt, ctx, compiled)),
        "evaluate": per_call(lambda: kernels.evaluate(receipt, ctx, compiled)),
        "kernel": per_call(kernel_call(receipt, ctx, compiled)),
        "batch": per_call(lambda: kernels.evaluate_batch(*batch, compiled)) / 100,
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = {(r["shape"], r["lines"]): r for r in rows if r["rules"] == 10}
    out = [
        "| program | rules | lines | kernel vs reference | evaluate() vs reference "
        "| batch vs reference | evaluate() cost vs 10 rules | kernel µs | evaluate() µs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        at_ten = base[(r["shape"], r["lines"])]
        out.append(
            f"| {r['shape']} | {r['rules']:,} | {r['lines']} "
            f"| {r['reference'] / r['kernel']:.0f}x | {r['reference'] / r['evaluate']:.0f}x "
            f"| {r['reference'] / r['batch']:.0f}x | {r['evaluate'] / at_ten['evaluate']:.2f}x "
            f"| {r['kernel'] * 1e6:.0f} | {r['evaluate'] * 1e6:.0f} |"
        )
    return "\n".join(out)


def write_section(text: str) -> None:
    """Replace the "Kernels" section of docs/performance.md, leaving the others alone."""
    section = (
        "## Kernels\n\n"
        f"Reproduce with `{COMMAND}` (benchmarks/kernels.py explains the program shapes).\n"
        "Ratios are measured in one run on the same machine; the µs columns are context only.\n"
        '"kernel" is the numba call on prepared arrays (the SPEC §8 comparison); '
        '"evaluate()" is the public entry point, adding the Python work around it '
        '(store-local facts, input arrays, the column-wise answer); "batch" is '
        '`evaluate_batch` over 100 receipts, per receipt. In "mixed" one rule in '
        "twenty can touch the receipt, so its cost grows with those rules; in "
        '"10 + idle" only ten can, and the cost should stay flat.\n\n'
        f"{text}\n"
    )
    replace_section("Kernels", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    kernels.warm_up()
    text = table(measure())
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
