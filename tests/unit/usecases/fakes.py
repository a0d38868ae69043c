"""In-memory fakes of the ports the use cases depend on (service/usecases/ports.py): the
use cases' logic tested in milliseconds, beside the integration tests on real servers."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from service.domain.card import CardState, PointLot, PromoCodeState
from service.domain.receipt import StoreInfo
from service.domain.reversal import ReturnRequest, Reversal
from service.rules.compiler import CompiledProgram
from service.usecases.ports import (
    CalculationRecord,
    CardAfter,
    Committed,
    RecordedReturn,
    RecordedSale,
    RefusalReason,
    Refused,
    RenderedCalculation,
    Replayed,
    SaleEntry,
    SaleOutcome,
    SoldSale,
)


class FakePrograms:
    def __init__(self, *programs: CompiledProgram) -> None:
        self._by_version = {p.version: p for p in programs}
        self._current = programs[-1]

    @property
    def current(self) -> CompiledProgram:
        return self._current

    async def get(self, version: int) -> CompiledProgram:
        return self._by_version[version]

    async def at(self, when: datetime) -> CompiledProgram:
        return self._current


class FakeStores:
    def __init__(self, *stores: StoreInfo) -> None:
        self._stores = {s.store_id: s for s in stores}

    def get(self, store_id: str) -> StoreInfo | None:
        return self._stores.get(store_id)


class FakeCards:
    """Card states by number; ``load`` is the ledger's view, ``get`` the cache's."""

    def __init__(self, *cards: CardState) -> None:
        self.cards = {c.number: c for c in cards}
        self.refreshed: list[str] = []

    async def get(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        return self.cards.get(number)

    async def load(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        return self.cards.get(number)

    async def refresh(self, number: str, now: datetime, program: CompiledProgram) -> None:
        self.refreshed.append(number)

    def spend(self, number: str, points: int) -> None:
        """Points spent elsewhere: taken from the card's first lot."""
        card = self.cards[number]
        first, *rest = card.lots
        lot = PointLot(first.lot_id, first.points - points, first.activates_at, first.expires_at)
        self.cards[number] = replace(card, lots=(lot, *rest))


class FakeRecords:
    def __init__(self) -> None:
        self.records: dict[str, CalculationRecord] = {}

    async def save(self, calculation_id: str, record: RenderedCalculation) -> None:
        self.records[calculation_id] = orjson.loads(orjson.dumps(record))  # as Redis keeps it

    async def load(self, calculation_id: str) -> CalculationRecord | None:
        return self.records.get(calculation_id)


@dataclass
class FakePromotions:
    budgets_used: Mapping[str, int] = field(default_factory=dict)
    code_uses: Mapping[str, int] = field(default_factory=dict)
    rule_uses: Mapping[str, int] = field(default_factory=dict)
    refreshed: int = 0

    async def refresh(self) -> None:
        self.refreshed += 1

    async def held_codes(self, codes: Iterable[str]) -> dict[str, PromoCodeState]:
        return {}

    async def forget(self, codes: Iterable[str]) -> None:
        return None


class FakeLedger:
    """Receipts by (store, transaction id), decided as the SQL function decides them: a
    recorded id answers its stored response (or a conflict), then the balance check."""

    def __init__(self, cards: FakeCards) -> None:
        self._cards = cards
        self.receipts: dict[tuple[str, str], RecordedSale] = {}
        self.commits = 0

    async def commit_sale(self, entry: SaleEntry) -> SaleOutcome:
        key = (entry.store_id, entry.transaction_id)
        if key in self.receipts:
            recorded = self.receipts[key]
            if recorded.request_hash != entry.request_hash:
                return Refused(RefusalReason.CONFLICT)
            return Replayed(copy.deepcopy(recorded.response))
        if entry.card is not None and entry.points_redeemed:
            card = self._cards.cards[entry.card]
            balance = sum(lot.points for lot in card.lots)
            if balance < entry.points_redeemed:
                return Refused(RefusalReason.INSUFFICIENT, balance=balance)
            self._cards.spend(entry.card, entry.points_redeemed)
        self.commits += 1
        response = dict(copy.deepcopy(entry.response))
        self.receipts[key] = RecordedSale(entry.request_hash, response)
        return Committed(copy.deepcopy(response))

    async def recorded_sale(self, store_id: str, transaction_id: str) -> RecordedSale | None:
        return self.receipts.get((store_id, transaction_id))


class FakeReturnSession:
    """One sale's returns in memory: the card's points as one number, debt apart."""

    def __init__(self, returns: FakeReturns, request: ReturnRequest) -> None:
        self._returns, self._request = returns, request
        self.sale = returns.sale
        self.referrer: str | None = None
        self.stamps_card: str | None = None

    async def take_back_referral(self) -> tuple[int, int]:
        return 0, 0

    async def uncount_purchase(self) -> None:
        self._returns.purchases_uncounted += 1

    async def take_back_stamps(self) -> None:
        self._returns.stamps_taken_back += 1

    async def move_tier_down(
        self, tiers: tuple[tuple[str, int], ...], window_start: datetime | None
    ) -> None:
        self._returns.tier_checks += 1

    async def recorded(self) -> RecordedReturn | None:
        return self._returns.recorded.get(self._request.refund_id)

    async def returned_so_far(self) -> dict[str, int]:
        returned: dict[str, int] = {}
        for lines in self._returns.returned:
            for line_id, quantity in lines.items():
                returned[line_id] = returned.get(line_id, 0) + quantity
        return returned

    async def return_limits(self, returned: Mapping[str, int], complete: bool) -> None:
        self._returns.limits_returned.append((dict(returned), complete))

    async def take_back_earned(self, points: int) -> int:
        taken = min(points, self._returns.points)
        self._returns.points -= taken
        return points - taken

    async def give_back_spent(self, points: int) -> None:
        self._returns.points += points

    async def give_back_rewards(self, points: int) -> None:
        self._returns.points += points

    async def void_coupons(self) -> tuple[list[str], int]:
        return [], 0

    async def owe(self, points: int) -> None:
        self._returns.debt += points

    async def take_back_tier_spend(self, amount: int) -> None:
        self._returns.tier_spend -= amount

    async def release_promo_codes(self) -> None:
        self._returns.codes_released = True

    async def mark_cancelled(self) -> None:
        self.sale = replace(self.sale, cancelled=True)
        self._returns.sale = self.sale

    async def card_after(self, reversal: Reversal) -> CardAfter:
        balance = self._returns.points - self._returns.debt
        return CardAfter(self.sale.card or "", "active", "base", balance, 0)

    async def record(self, reversal: Reversal, response: dict[str, Any]) -> dict[str, Any]:
        request = self._request
        self._returns.returned.append({line.line_id: line.quantity for line in reversal.lines})
        self._returns.recorded[request.refund_id] = RecordedReturn(
            request.transaction_id, request.request_hash, copy.deepcopy(response)
        )
        return response


class FakeReturns:
    """The ledger of one sale, for the return use cases: the card's spendable points and debt."""

    def __init__(self, sale: SoldSale, points: int) -> None:
        self.sale, self.points, self.debt, self.tier_spend = sale, points, 0, 0
        self.recorded: dict[str, RecordedReturn] = {}
        self.returned: list[dict[str, int]] = []
        self.codes_released = False
        self.limits_returned: list[tuple[dict[str, int], bool]] = []
        self.purchases_uncounted = 0
        self.stamps_taken_back = 0
        self.tier_checks = 0

    @contextlib.asynccontextmanager
    async def session(self, request: ReturnRequest) -> AsyncIterator[FakeReturnSession]:
        yield FakeReturnSession(self, request)
