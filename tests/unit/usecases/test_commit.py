"""The commit use case over in-memory ports: what is recorded answers for itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest

from service.domain.errors import IdempotencyConflict, InsufficientPoints
from service.domain.receipt import Receipt
from service.usecases.calculate import ReceiptLimits, SalePorts, calculate
from service.usecases.commit import Sale, commit
from tests.unit.rules.builders import DEMO, FRIDAY_EVENING, MSK, card, dress
from tests.unit.usecases.fakes import (
    FakeCards,
    FakeLedger,
    FakePrograms,
    FakePromotions,
    FakeRecords,
    FakeStores,
)

NOW = FRIDAY_EVENING + timedelta(minutes=1)
LIMITS = ReceiptLimits(max_lines=1000, max_future_skew=timedelta(minutes=5))
NUMBER = "2000000000015"


class World:
    def __init__(self, points: int = 1000) -> None:
        self.cards = FakeCards(card(points=points))
        self.ledger = FakeLedger(self.cards)
        self.records = FakeRecords()
        self.ports = SalePorts(
            LIMITS,
            FakeStores(MSK),
            FakePrograms(DEMO),
            self.cards,
            self.records,
            FakePromotions(),
        )

    async def commit(self, sale: Sale) -> tuple[dict[str, object], bool]:
        return await commit(sale, now=NOW, ports=self.ports, ledger=self.ledger)

    async def calculation_id(self, receipt: Receipt) -> str:
        body = orjson.loads(await calculate(receipt, now=NOW, ports=self.ports))
        return str(body["calculation_id"])


def _receipt(redeem: int = 1000) -> Receipt:
    return Receipt(MSK.store_id, FRIDAY_EVENING, (dress(),), card=NUMBER, redeem_points=redeem)


def test_a_resent_commit_gets_its_first_answer_though_the_points_are_gone() -> None:
    world = World()
    sale = Sale(_receipt(), "T-1", None)
    first, replayed = asyncio.run(world.commit(sale))
    assert not replayed and first["totals"]["points_redeemed"] == 1000  # type: ignore[index]
    again, replayed = asyncio.run(world.commit(sale))
    assert replayed and again == first and world.ledger.commits == 1


def test_a_resent_commit_needs_no_calculation_record() -> None:
    world = World()
    receipt = _receipt()
    sale = Sale(receipt, "T-2", asyncio.run(world.calculation_id(receipt)))
    first, _ = asyncio.run(world.commit(sale))
    world.records.records.clear()  # Redis flushed, or the record's hour is over
    again, replayed = asyncio.run(world.commit(sale))
    assert replayed and again == first


def test_another_receipt_under_a_recorded_id_is_a_conflict() -> None:
    world = World()
    asyncio.run(world.commit(Sale(_receipt(), "T-3", None)))
    with pytest.raises(IdempotencyConflict):
        asyncio.run(world.commit(Sale(_receipt(redeem=500), "T-3", None)))


def test_a_new_sale_short_of_points_is_refused_and_writes_nothing() -> None:
    world = World(points=300)
    with pytest.raises(InsufficientPoints):
        asyncio.run(world.commit(Sale(_receipt(redeem=1000), "T-4", None)))
    assert world.ledger.receipts == {}
