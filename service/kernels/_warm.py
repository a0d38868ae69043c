"""The warm-up: receipts that walk every kernel once, and the check of their answers.

Numba's on-disk cache is keyed on each kernel's own source file (``_jit`` says more), so
after a change to a module a kernel reads constants from, a worker can load machine
code that no longer matches the source and answer wrongly without an error. The
warm-up therefore also evaluates its receipts with the reference and refuses to start
on any difference: about a millisecond on a start that takes hundreds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from service.domain.calculation import CalculationContext
from service.domain.card import CardState, PointLot
from service.domain.receipt import Receipt, ReceiptLine
from service.kernels import reference
from service.kernels.results import Answer
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.demo import DEMO_STORES, demo_program
from service.rules.document import parse_program


class KernelMismatch(RuntimeError):
    """The kernels answered a warm-up receipt differently from the reference evaluator."""


def warm_receipts() -> tuple[CompiledProgram, list[Receipt], list[CalculationContext]]:
    """The demo program with a stamp card on jeans added, a card's sale (tier discount,
    steps, a promo code, points paid and earned, a free pair of jeans for its stamps),
    the same sale once the promo code's rule has no use left (its cap reached), and an
    anonymous one, on a fixed date."""
    document = demo_program()
    for rule in document["rules"]:
        if rule["id"] == "autumn10":
            rule["max_uses"] = 1_000
    document["rules"].append(
        {"id": "warm-stamps", "name": "Every 4th pair of jeans free", "priority": 1,
         "target": {"categories": ["jeans"]}, "effect": {"type": "stamps", "every": 4}}
    )  # fmt: skip
    program = compile_program(parse_program(document), version=0)
    when = datetime(2026, 11, 20, 15, 5, tzinfo=UTC)
    lot = PointLot(1, 1_000, when - timedelta(days=30), when + timedelta(days=30))
    card = CardState("2000000000015", tier_spend=1_500_000, lots=(lot,), stamps={"warm-stamps": 2})
    lines = (
        ReceiptLine("1", "460001", 1_000, 349_900, "dresses", "Style"),
        ReceiptLine("2", "MOJITO", 2_000, 45_000, "drinks"),
        ReceiptLine("3", "J-32", 3_000, 300_000, "jeans"),
    )
    store = DEMO_STORES[0]
    receipts = [
        Receipt(
            store.store_id, when, lines, card=card.number, promo_codes=("AUTUMN10",),
            redeem_max=True,
        ),
        Receipt(store.store_id, when, lines[:1]),
    ]  # fmt: skip
    receipts.insert(1, receipts[0])
    used_up = CalculationContext(store, when, card, rule_uses={"autumn10": 1_000})
    ctxs = [CalculationContext(store, when, card), used_up, CalculationContext(store, when, None)]
    return program, receipts, ctxs


def check_against_reference(
    program: CompiledProgram,
    receipts: Sequence[Receipt],
    ctxs: Sequence[CalculationContext],
    answers: Mapping[str, Sequence[Answer]],
) -> None:
    """Raise ``KernelMismatch`` unless each path's answers (by its name) equal the
    reference's for the same receipts."""
    for i, (receipt, ctx) in enumerate(zip(receipts, ctxs, strict=True)):
        expected = reference.evaluate(receipt, ctx, program)
        for path, given in answers.items():
            if given[i] != expected:
                raise KernelMismatch(_mismatch(path, i, given[i], expected))


def _mismatch(path: str, receipt: int, given: Answer, expected: Answer) -> str:
    field = next(name for name in Answer._fields if getattr(given, name) != getattr(expected, name))
    return (
        f"kernels.{path} disagrees with the reference evaluator on warm-up receipt {receipt}: "
        f"{field} is {getattr(given, field)!r}, the reference says {getattr(expected, field)!r}. "
        "Numba's cache (the *.nbi/*.nbc files in service/kernels/__pycache__, or under "
        "NUMBA_CACHE_DIR) is probably stale: delete it and start again; if it persists, "
        "the kernels and the reference differ and the build is broken."
    )
