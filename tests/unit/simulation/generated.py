"""Small generated receipt sets and a naive simulator written first, to hold the
simulation engine to: one ``service.kernels.reference.evaluate`` per receipt, the card
as a ``CardState`` rebuilt from plain lists before every sale."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from service.domain.calculation import CalculationContext
from service.domain.card import CardState, PointLot
from service.domain.receipt import Receipt, ReceiptLine, StoreInfo
from service.kernels import reference
from service.rules.compiler import CompiledProgram
from service.rules.demo import DEMO_STORES
from service.simulation.receipts import REDEEM_MAX, ReceiptSet, receipt_set

GOODS = (
    ("JEANS-1", "jeans", "levis", 399_000),
    ("DRESS-1", "dresses", None, 650_000),
    ("LATTE", "drinks", None, 25_000),
    ("MOJITO", "drinks", None, 45_000),
    ("TEE-1", "tops", "basic", 149_900),
    ("GC-1000", "gift-cards", None, 100_000),
    ("SCARF-1", "accessories", None, 89_900),
)


def generated(
    count: int, *, seed: int, start: datetime, cards: int = 12, days: int = 400
) -> ReceiptSet:
    """``count`` receipts over ``days`` from ``start`` in the demo stores: some without a
    card, some paying with points (a number or "max"), happy hours and weekends among them."""
    rng = random.Random(seed)
    stamps = sorted(start + timedelta(seconds=rng.randrange(days * 86_400)) for _ in range(count))
    receipt_of_line: list[int] = []
    sku, category, brand, quantity, price = [], [], [], [], []
    card_of, store_of, redeem, channels = [], [], [], []
    for b in range(count):
        store = rng.choice(DEMO_STORES)
        store_of.append(store.store_id)
        channels.append("online" if store.store_id == "web" else "offline")
        card_of.append(None if rng.random() < 0.1 else f"20000001{rng.randrange(cards):05d}")
        redeem.append(rng.choice((0, 0, 0, REDEEM_MAX, 300)))
        for _ in range(rng.randint(1, 6)):
            goods = rng.choice(GOODS)
            receipt_of_line.append(b)
            sku.append(goods[0])
            category.append(goods[1])
            brand.append(goods[2])
            quantity.append(rng.choice((1000, 1000, 2000, 3000, 5000, 532)))
            price.append(goods[3])
    return receipt_set(
        receipt_of_line=np.array(receipt_of_line, dtype=np.int64),
        occurred=np.array([int(s.timestamp()) for s in stamps], dtype=np.int64),
        store_ids=store_of,
        stores={s.store_id: s for s in DEMO_STORES},
        cards=card_of,
        channels=channels,
        redeem=np.array(redeem, dtype=np.int64),
        lines={"sku": sku, "category": category, "brand": brand, "quantity": quantity,
               "unit_price": price},
    )  # fmt: skip


@dataclass
class NaiveCard:
    lots: list[list[int]] = field(default_factory=list)  # [points left, activates, expires]
    spends: list[tuple[int, int]] = field(default_factory=list)  # (time, amount)
    purchases: int = 0
    stamps: dict[str, int] = field(default_factory=dict)  # rule -> stamps collected


def naive_totals(
    receipts: ReceiptSet, program: CompiledProgram, as_of: datetime | None = None
) -> list[tuple[int, int, int]]:
    """(discount, points earned, points redeemed) per receipt, one sale at a time."""
    cards: dict[int, NaiveCard] = defaultdict(NaiveCard)
    settings, window = program.settings, program.document.tiers.window_days
    out = []
    for b in range(len(receipts)):
        at = datetime.fromtimestamp(int(receipts.occurred[b]), UTC)
        now = as_of or at
        c = int(receipts.card[b])
        card = cards[c] if c >= 0 else None
        ctx = CalculationContext(
            store=receipts.stores[int(receipts.store[b])],
            now=now,
            card=_state(card, receipts, c, now, window, program),
        )
        answer = reference.evaluate(_receipt(receipts, b, at), ctx, program)
        totals = answer.totals
        out.append((totals.discount, totals.points_earned, totals.points_redeemed))
        if card is None:
            continue
        taken = totals.points_redeemed
        for lot in card.lots:
            if taken and lot[1] <= now.timestamp() < lot[2]:
                used = min(lot[0], taken)
                lot[0] -= used
                taken -= used
        activates = at + timedelta(days=settings.pending_days)
        expires = activates + timedelta(days=settings.validity_days or 0)
        if expires <= now:
            expires = now + timedelta(days=settings.validity_days or 0)
        card.lots.append(
            [totals.points_earned, int(activates.timestamp()), int(expires.timestamp())]
        )
        card.spends.append((int(at.timestamp()), answer.tier_spend))
        card.purchases += 1
        card.stamps.update((s.rule_id, s.have) for s in answer.stamps)
    return out


def _state(
    card: NaiveCard | None, receipts: ReceiptSet, c: int, now: datetime, window: int | None,
    program: CompiledProgram,
) -> CardState | None:  # fmt: skip
    if card is None:
        return None
    since = now.timestamp() - (window or 10**6) * 86_400
    lots = tuple(
        PointLot(i, left, datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(e, UTC))
        for i, (left, a, e) in enumerate(card.lots)
        if left > 0
    )
    return CardState(
        number=receipts.cards[c],
        tier_spend=sum(amount for t, amount in card.spends if t >= since),
        lots=lots,
        purchase_count=card.purchases,
        stamps=dict(card.stamps),
    )


def _receipt(receipts: ReceiptSet, b: int, at: datetime) -> Receipt:
    first, last = int(receipts.line_ptr[b]), int(receipts.line_ptr[b + 1])
    redeem = int(receipts.redeem[b])
    c = int(receipts.card[b])

    def name(vocabulary: tuple[str, ...], i: int) -> str | None:
        return None if i < 0 else vocabulary[i]

    return Receipt(
        store_id=receipts.stores[int(receipts.store[b])].store_id,
        timestamp=at,
        lines=tuple(
            ReceiptLine(
                line_id=str(i - first + 1),
                sku=receipts.skus[int(receipts.sku[i])],
                quantity=int(receipts.quantity[i]),
                unit_price=int(receipts.unit_price[i]),
                category=name(receipts.categories, int(receipts.category[i])),
                brand=name(receipts.brands, int(receipts.brand[i])),
            )
            for i in range(first, last)
        ),
        card=None if c < 0 else receipts.cards[c],
        channel=("offline", "online")[int(receipts.channel[b])],
        redeem_points=0 if redeem == REDEEM_MAX or c < 0 else redeem,
        redeem_max=redeem == REDEEM_MAX and c >= 0,
    )


__all__ = ["StoreInfo", "generated", "naive_totals"]
