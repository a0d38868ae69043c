"""Use case: calculate a receipt (a stateless preview; writes nothing to the ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service import kernels
from service.domain.calculation import CalculationContext, CalculationResult
from service.domain.card import CardState
from service.domain.errors import InvalidInput, NotFound
from service.domain.receipt import Receipt, StoreInfo
from service.rules.compiler import CompiledProgram
from service.usecases.ports import CardStates, Programs, Stores


@dataclass(frozen=True, slots=True)
class Calculation:
    receipt: Receipt
    store: StoreInfo
    card: CardState | None
    program: CompiledProgram
    result: CalculationResult
    now: datetime


@dataclass(frozen=True, slots=True)
class ReceiptLimits:
    max_lines: int
    max_future_skew: timedelta


def check_receipt(receipt: Receipt, now: datetime, limits: ReceiptLimits) -> None:
    """Refuse receipts no POS should send; the message says what to fix."""
    if len(receipt.lines) > limits.max_lines:
        raise InvalidInput(
            f"a receipt may have at most {limits.max_lines} lines", code="too_many_lines"
        )
    seen: set[str] = set()
    for line in receipt.lines:
        if line.line_id in seen:
            raise InvalidInput(f"line_id {line.line_id!r} appears twice", code="duplicate_line_id")
        seen.add(line.line_id)
    if receipt.timestamp - now > limits.max_future_skew:
        raise InvalidInput(
            "the receipt's timestamp is in the future; check the till's clock",
            code="timestamp_in_future",
        )


async def calculate(
    receipt: Receipt,
    *,
    now: datetime,
    limits: ReceiptLimits,
    stores: Stores,
    programs: Programs,
    cards: CardStates,
) -> Calculation:
    check_receipt(receipt, now, limits)
    store = stores.get(receipt.store_id)
    if store is None:
        raise NotFound(f"unknown store {receipt.store_id!r}", code="store_not_found")
    program = programs.current
    card = None
    if receipt.card is not None:
        card = await cards.get(receipt.card, now, program)
        if card is None:
            raise NotFound("no such loyalty card", code="card_not_found")
    context = CalculationContext(store=store, now=now, card=card)
    result = kernels.evaluate(receipt, context, program)
    return Calculation(receipt, store, card, program, result, now)
