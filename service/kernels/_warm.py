"""A small program and receipts that walk every kernel once (compile or load from cache)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.domain.calculation import CalculationContext
from service.domain.card import CardState, PointLot
from service.domain.receipt import Receipt, ReceiptLine
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.demo import DEMO_STORES, demo_program
from service.rules.document import parse_program


def warm_receipts() -> tuple[CompiledProgram, list[Receipt], list[CalculationContext]]:
    program = compile_program(parse_program(demo_program()), version=0)
    when = datetime(2026, 11, 20, 15, 5, tzinfo=UTC)
    lot = PointLot(1, 1_000, when - timedelta(days=30), when + timedelta(days=30))
    card = CardState("2000000000015", tier_spend=1_500_000, lots=(lot,))
    lines = (
        ReceiptLine("1", "460001", 1_000, 349_900, "dresses", "Style"),
        ReceiptLine("2", "MOJITO", 2_000, 45_000, "drinks"),
        ReceiptLine("3", "J-32", 3_000, 300_000, "jeans"),
    )
    store = DEMO_STORES[0]
    receipts = [
        Receipt(store.store_id, when, lines, card=card.number, redeem_max=True),
        Receipt(store.store_id, when, lines[:1]),
    ]
    ctxs = [CalculationContext(store, when, card), CalculationContext(store, when, None)]
    return program, receipts, ctxs
