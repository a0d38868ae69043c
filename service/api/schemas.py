"""Pydantic schemas of the POS API (/v1): the integration contract, kept stable.

Money is integer kopecks; quantities are decimals with at most 3 places (weighted
goods) and become integer thousandths inside; the hot path passes domain values.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
)

from service.domain.contacts import normalize_phone
from service.domain.frozen import frozen_instances
from service.domain.receipt import (
    MAX_LINES,
    MAX_QUANTITY,
    MAX_RECEIPT_AMOUNT,
    MAX_REDEEM_POINTS,
    MAX_UNIT_PRICE,
    Receipt,
    ReceiptLine,
)
from service.domain.reward import RewardAsk
from service.domain.units import quantity_milli
from service.domain.wallet import WalletAsk

# The receipt's bounds are the domain's (service/domain/receipt.py); the configured limit
# of lines (LOYALTY_MAX_LINES, at most MAX_LINES) is checked after parsing.
MAX_QUANTITY_UNITS = Decimal(MAX_QUANTITY) / 1000

# Postgres text and jsonb cannot hold a NUL character: refused at the field, named.
NO_NUL = r"^[^\x00]*$"
INT64_MAX = 2**63 - 1


def _representable(moment: datetime) -> datetime:
    """A moment every layer can hold and shift by a century either way: Python's years
    run 1-9999, and converting 0001-01-01T00:00+01:00 to UTC overflows."""
    if not 1900 <= moment.year <= 9000:
        raise ValueError("the year must be between 1900 and 9000")
    return moment


Timestamp = Annotated[AwareDatetime, AfterValidator(_representable)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
Label = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
CardNumber = Annotated[
    str, Field(pattern=r"^[0-9]{8,19}$", description="card number: 8 to 19 digits")
]
Phone = Annotated[
    str,
    Field(max_length=40, description="as people type it: +79001234567, 8 900 123-45-67,"
          " +7 (900) 123-45-67, 9001234567 (Russian unless it says otherwise)"),
    AfterValidator(normalize_phone),
]  # fmt: skip
PromoCode = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Quantity = Annotated[
    Decimal,
    Field(gt=0, le=MAX_QUANTITY_UNITS, decimal_places=3, description="at most 3 decimals"),
]


# Examples shown in the OpenAPI document (the demo program's numbers).
_LINE_EXAMPLE: dict[str, Any] = {
    "line_id": "1",
    "amount": 349900,
    "discount": 17495,
    "points_paid": 50000,
    "final_amount": 282405,
    "points_earned": 84,
    "applied": [{"rule_id": "tier-discount", "name": "Tier discount", "amount": 17495}],
    "fiscal_positions": [{"quantity": "1", "unit_price": 282405, "amount": 282405}],
}
_TOTALS_EXAMPLE: dict[str, Any] = {
    "subtotal": 349900,
    "discount": 17495,
    "points_redeemable_max": 1662,
    "points_redeemed": 500,
    "amount_due": 282405,
    "points_earned": 84,
}
_CARD_EXAMPLE: dict[str, Any] = {
    "number": "2000000000022",
    "status": "active",
    "tier": "silver",
    "balance": 5000,
    "pending": 120,
    "expiring": [{"date": "2026-12-15", "points": 300}],
    "next_tier": {"tier": "gold", "spend_needed": 3500000},
}
_RULE_EXAMPLE: dict[str, Any] = {
    "rule_id": "happy-hours", "name": "Happy hours: drinks -20%", "applied": False,
    "reason": "outside_hours", "amount": 0, "points": 0,
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineIn(_Strict):
    line_id: Identifier
    sku: Identifier
    category: Label | None = None
    brand: Label | None = None
    quantity: Quantity
    unit_price: StrictInt = Field(ge=0, le=MAX_UNIT_PRICE, description="kopecks per unit")
    excluded: bool = Field(default=False, description="outside loyalty: no discount, no points")


EXAMPLE_LINE: dict[str, JsonValue] = {
    "line_id": "1",
    "sku": "460001",
    "category": "dresses",
    "quantity": "1",
    "unit_price": 349900,
}


_SALE_EXAMPLE: dict[str, JsonValue] = {
    "store_id": "msk-001",
    "terminal_id": "pos-07",
    "timestamp": "2026-11-22T18:05:00+03:00",
    "card": "2000000000022",
    "payment_method": "card",
    "redeem_points": 500,
}


class WalletIn(_Strict):
    number: Identifier = Field(description="the gift certificate's or e-wallet's number")
    amount: Annotated[StrictInt, Field(ge=1, le=MAX_RECEIPT_AMOUNT)] | Literal["max"] = Field(
        description="kopecks to pay from it (at most what is left to pay), or 'max'"
    )


RewardCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
RewardKind = Literal["percent_off", "amount_off", "free_product", "coupon"]


class RewardAskIn(_Strict):
    code: RewardCode
    count: StrictInt = Field(default=1, ge=1, le=1000, description="multiples of its price")


class CouponOut(BaseModel):
    rule_id: str = Field(description="the promo rule the coupon unlocks on a later receipt")
    valid_days: int
    codes: list[str] | None = Field(
        default=None, description="the codes issued, one per multiple (in a commit's answer)"
    )
    valid_to: str | None = None


class RewardRedeemedOut(BaseModel):
    code: str
    count: int
    status: Literal["redeemed", "rejected"]
    reason: str | None = Field(
        description="why it was refused: unknown, archived, not_yet_valid, expired,"
        " over_limit, card_not_active, insufficient_points, not_applicable"
    )
    name: str | None
    kind: RewardKind | None
    points: int = Field(description="points it charges (0 when refused)")
    discount: int = Field(description="kopecks it takes off this receipt, over the lines")
    balance: int | None = Field(
        default=None, description="insufficient_points: the points left for it"
    )
    coupon: CouponOut | None = None


class ReceiptIn(_Strict):
    store_id: Identifier
    terminal_id: Identifier | None = None
    timestamp: Timestamp = Field(description="when the sale happened, with its UTC offset")
    card: CardNumber | None = None
    channel: Literal["offline", "online"] = "offline"
    payment_method: Identifier | None = None
    pickup: bool = False
    promo_codes: list[PromoCode] = Field(default_factory=list, max_length=10)
    redeem_points: Annotated[StrictInt, Field(ge=0, le=MAX_REDEEM_POINTS)] | Literal["max"] = Field(
        default=0, description="points the customer asks to spend, or 'max'"
    )
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)
    wallet: WalletIn | None = Field(
        default=None,
        description="pay part of the receipt from a gift certificate or e-wallet, after the"
        " discounts and the points (SPEC §4 item 34)",
    )
    rewards: list[RewardAskIn] = Field(
        default_factory=list,
        max_length=10,
        description="rewards from the catalogue bought with the card's points, each in whole"
        " multiples of its price (SPEC §4 item 31); a reward named twice is refused",
    )

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    **_SALE_EXAMPLE,
                    "channel": "offline",
                    "promo_codes": ["AUTUMN10"],
                    "lines": [
                        {
                            "line_id": "1",
                            "sku": "460001",
                            "category": "dresses",
                            "brand": "Style",
                            "quantity": "1",
                            "unit_price": 349900,
                        },
                        {
                            "line_id": "2",
                            "sku": "MOJITO",
                            "category": "drinks",
                            "quantity": "2",
                            "unit_price": 45000,
                        },
                    ],
                }
            ]
        },
    )


class CalculateRequest(ReceiptIn):
    hold: StrictBool = Field(
        default=False,
        description="hold the points this calculation spends for the program's hold time"
        " (points.hold_seconds): other tills cannot spend them meanwhile, the commit with"
        " this calculation_id takes them, DELETE /v1/calculations/{id} frees them",
    )


class AllowanceRequest(_Strict):
    store_id: Identifier
    card: CardNumber
    points: StrictInt = Field(ge=1, le=MAX_REDEEM_POINTS, description="points to hold")

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"store_id": "msk-001", "card": "2000000000022",
                                         "points": 500}]},
    )  # fmt: skip


class AllowanceOut(BaseModel):
    allowance: str = Field(description="the signed allowance the till keeps and commits with")
    card: str
    points: int = Field(description="points held for the till (at most those asked for)")
    expires_at: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"allowance": "WyJhXzEyMyIsIjIwMDAwMDAwMDAwMjIiXQ.c2ln",
                                         "card": "2000000000022", "points": 500,
                                         "expires_at": "2026-12-07T16:00:00+00:00"}]}
    )  # fmt: skip


class ReleasedOut(BaseModel):
    calculation_id: str
    released: int = Field(description="points freed (0: already taken, lapsed or released)")
    money_released: int = Field(default=0, description="kopecks of a wallet freed")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"calculation_id": "c_1_019a5e0c2f1b8e2d4c6a8f0e1d3b",
                                         "released": 500}]}
    )  # fmt: skip


class HoldOut(BaseModel):
    points: int = Field(description="points held for this calculation (0: none)")
    money: int = Field(default=0, description="kopecks of the wallet held for it (0: none)")
    expires_at: str = Field(description="when the hold lapses by itself")


class CommitRequest(ReceiptIn):
    transaction_id: Identifier = Field(description="the POS's own receipt id; idempotency key")
    calculation_id: Annotated[str, Field(max_length=80)] | None = Field(
        default=None, description="the calculation the customer was shown, if any"
    )
    allowance: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        default=None,
        description="an offline till's allowance (POST /v1/allowances) the sale's points are"
        " spent from: accepted within it whatever happened to the card meanwhile",
    )

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    **_SALE_EXAMPLE,
                    "transaction_id": "R-0001",
                    "calculation_id": "c_1_019a5e0c2f1b8e2d4c6a8f0e1d3b",
                    "lines": [EXAMPLE_LINE],
                }
            ]
        },
    )


class AppliedRuleOut(BaseModel):
    rule_id: str
    name: str
    amount: int


class FiscalPositionOut(BaseModel):
    """A position of the fiscal register (54-FZ): ``unit_price × quantity = amount`` in
    kopecks for whole units, ``round_half_up(unit_price × quantity) = amount`` for
    weighted goods (SPEC §3.4)."""

    quantity: str = Field(description="units, or kilograms with at most 3 decimals")
    unit_price: int
    amount: int


class LineOut(BaseModel):
    line_id: str
    amount: int
    discount: int
    points_paid: int
    final_amount: int
    points_earned: int
    applied: list[AppliedRuleOut]
    wallet_paid: int | None = Field(
        default=None, description="kopecks of final_amount paid from the wallet (with one)"
    )
    reward_points: int | None = Field(
        default=None, description="the rewards' points spent on this line's discount"
    )
    fiscal_positions: list[FiscalPositionOut] = Field(
        description="what the customer pays for the line, as fiscal register positions: the"
        " final amount, or the amount after discounts where the program reports points as a"
        " tender (points.fiscal_mode)"
    )


class TotalsOut(BaseModel):
    subtotal: int
    discount: int
    points_redeemable_max: int
    points_redeemed: int
    amount_due: int
    points_earned: int
    wallet_paid: int | None = Field(default=None, description="kopecks paid from the wallet")
    left_to_pay: int | None = Field(
        default=None, description="amount_due less wallet_paid: what other tenders pay"
    )
    reward_points: int | None = Field(
        default=None, description="points the rewards redeemed charge (with rewards asked)"
    )


class WalletPaidOut(BaseModel):
    number: str
    paid: int = Field(description="kopecks the wallet pays of this receipt")
    balance: int = Field(description="what it may pay before this receipt")
    balance_after: int


class ExpiringOut(BaseModel):
    date: str
    points: int


class NextTierOut(BaseModel):
    tier: str
    spend_needed: int


class StampCardOut(BaseModel):
    rule_id: str
    name: str
    have: int = Field(
        description="stamps collected towards the next free item (below zero: a cancel took"
        " back stamps a free item had used)"
    )
    of: int = Field(description="the stamps that make a free item (the rule's every)")


class StampsOut(StampCardOut):
    """A stamp card after the sale (SPEC §4 item 36)."""

    added: int = Field(description="stamps this receipt adds")
    free: int = Field(description="units this receipt gives free, each using ``of`` stamps")


class CardOut(BaseModel):
    number: str
    status: str
    tier: str | None
    balance: int
    pending: int
    expiring: list[ExpiringOut]
    next_tier: NextTierOut | None
    stamps: list[StampCardOut] | None = Field(
        default=None, description="the program's stamp cards and the card's progress on each"
    )

    model_config = ConfigDict(json_schema_extra={"examples": [_CARD_EXAMPLE]})


class CardFoundOut(BaseModel):
    number: str


class CardsFoundOut(BaseModel):
    cards: list[CardFoundOut]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cards": [{"number": "2000000000022"}]}]}
    )


class PromoCodeOut(BaseModel):
    code: str
    status: Literal["accepted", "rejected"]
    reason: str | None = None


class GiftOut(BaseModel):
    sku: str
    quantity: str


class RuleOut(BaseModel):
    rule_id: str
    name: str
    applied: bool
    reason: str | None = None
    amount: int
    points: int


class MessageOut(BaseModel):
    code: str
    text: str


class CalculationOut(BaseModel):
    """A calculation's answer (SPEC §3); /v1/calculate adds the id a commit refers to."""

    program_version: int
    lines: list[LineOut]
    totals: TotalsOut
    card: CardOut | None
    promo_codes: list[PromoCodeOut]
    gifts: list[GiftOut]
    free_delivery: bool
    rules: list[RuleOut]
    messages: list[MessageOut]
    wallet: WalletPaidOut | None = None
    rewards: list[RewardRedeemedOut] | None = None
    stamps: list[StampsOut] | None = Field(
        default=None,
        description="the card's stamp cards that the receipt's goods touch, after the sale",
    )


class CalculateResponse(CalculationOut):
    calculation_id: str
    hold: HoldOut | None = Field(default=None, description="present when the request asked to hold")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "calculation_id": "c_1_019a5e0c2f1b8e2d4c6a8f0e1d3b",
                    "program_version": 1,
                    "lines": [_LINE_EXAMPLE],
                    "totals": _TOTALS_EXAMPLE,
                    "card": _CARD_EXAMPLE,
                    "promo_codes": [],
                    "gifts": [],
                    "free_delivery": False,
                    "rules": [_RULE_EXAMPLE],
                    "messages": [],
                }
            ]
        }
    )


class ReturnLineIn(_Strict):
    line_id: Identifier
    quantity: Quantity


class RefundRequest(_Strict):
    store_id: Identifier
    transaction_id: Identifier = Field(description="the sale being returned")
    refund_id: Identifier = Field(description="the POS's id of this return; idempotency key")
    lines: list[ReturnLineIn] | None = Field(
        default=None, max_length=MAX_LINES, description="absent: everything left"
    )

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "store_id": "msk-001",
                    "transaction_id": "R-0001",
                    "refund_id": "RET-1",
                    "lines": [{"line_id": "1", "quantity": "1"}],
                }
            ]
        },
    )


class CancelRequest(_Strict):
    store_id: Identifier
    transaction_id: Identifier

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"store_id": "msk-001", "transaction_id": "R-0001"}]},
    )


class ReturnLineOut(BaseModel):
    line_id: str
    quantity: str
    amount: int = Field(description="kopecks the customer paid in money for what is returned")
    points_returned: int = Field(description="spent points given back to the card")
    points_taken: int = Field(description="earned points taken back from the card")
    wallet_returned: int | None = Field(
        default=None, description="kopecks of amount given back to the wallet that paid them"
    )
    reward_points_returned: int | None = Field(
        default=None, description="points the sale's rewards took for this line, given back"
    )


class ReturnTotalsOut(BaseModel):
    amount: int
    withhold: int = Field(description="kopecks kept back for earned points already spent")
    cash_refund: int = Field(
        description="what the POS pays back: amount - withhold - wallet_returned"
    )
    points_returned: int
    points_taken: int
    debt: int = Field(description="points the card now owes (negative-balance policy)")
    referral_taken: int = Field(
        description="referral bonus points taken back from this card and the referrer's,"
        " when a referee's first purchase is reversed whole (a cancel or a full return)"
    )
    wallet_returned: int | None = None
    reward_points_returned: int | None = Field(
        default=None,
        description="points spent on the sale's rewards given back: the returned lines' share"
        " of the discounts', and the price of each coupon voided (a return of the whole sale)",
    )


class WalletBackOut(BaseModel):
    number: str
    status: str = Field(description="the wallet's status after: money back to an expired one"
                        " expires with it")  # fmt: skip


class CardAfterOut(BaseModel):
    number: str
    status: str
    tier: str | None
    balance: int
    pending: int


class CommitResponse(BaseModel):
    transaction_id: str
    status: Literal["committed"]
    calculation_id: str | None
    program_version: int
    lines: list[LineOut]
    totals: TotalsOut
    promo_codes: list[PromoCodeOut]
    gifts: list[GiftOut]
    free_delivery: bool
    messages: list[MessageOut]
    card: CardAfterOut | None
    wallet: WalletPaidOut | None = None
    rewards: list[RewardRedeemedOut] | None = None
    stamps: list[StampsOut] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": "R-0001",
                    "status": "committed",
                    "calculation_id": "c_1_019a5e0c2f1b8e2d4c6a8f0e1d3b",
                    "program_version": 1,
                    "lines": [_LINE_EXAMPLE],
                    "totals": _TOTALS_EXAMPLE,
                    "promo_codes": [],
                    "gifts": [],
                    "free_delivery": False,
                    "messages": [],
                    "card": {
                        "number": "2000000000022",
                        "status": "active",
                        "tier": "silver",
                        "balance": 4500,
                        "pending": 204,
                    },
                }
            ]
        }
    )


class RefundResponse(BaseModel):
    refund_id: str
    transaction_id: str
    status: Literal["refunded", "cancelled"]
    lines: list[ReturnLineOut]
    totals: ReturnTotalsOut
    policy: Literal["negative_balance", "withhold"]
    card: CardAfterOut | None
    wallet: WalletBackOut | None = None
    coupons_voided: list[str] | None = Field(
        default=None, description="coupons the sale issued that no sale used: voided"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "refund_id": "RET-1",
                    "transaction_id": "R-0001",
                    "status": "refunded",
                    "lines": [
                        {
                            "line_id": "1",
                            "quantity": "1",
                            "amount": 282405,
                            "points_returned": 500,
                            "points_taken": 84,
                        }
                    ],
                    "totals": {
                        "amount": 282405,
                        "withhold": 0,
                        "cash_refund": 282405,
                        "points_returned": 500,
                        "points_taken": 84,
                        "debt": 0,
                        "referral_taken": 0,
                    },
                    "policy": "negative_balance",
                    "card": {
                        "number": "2000000000022",
                        "status": "active",
                        "tier": "silver",
                        "balance": 5000,
                        "pending": 120,
                    },
                }
            ]
        }
    )


class HistoryEntryOut(BaseModel):
    entry_id: int
    kind: str
    points: int
    created_at: datetime
    store_id: str | None
    transaction_id: str | None
    refund_id: str | None
    reason: str | None
    expires_at: datetime | None


class HistoryOut(BaseModel):
    entries: list[HistoryEntryOut]
    next_cursor: int | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "entries": [
                        {
                            "entry_id": 42,
                            "kind": "accrual",
                            "points": 84,
                            "created_at": "2026-11-22T15:05:10Z",
                            "store_id": "msk-001",
                            "transaction_id": "R-0001",
                            "refund_id": None,
                            "reason": None,
                            "expires_at": "2027-12-06T15:05:00Z",
                        }
                    ],
                    "next_cursor": 42,
                }
            ]
        }
    )


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str = Field(description="machine-readable code")
    detail: str = Field(description="what went wrong, for a human")
    fields: list[FieldErrorOut] | None = Field(default=None, description="each bad field (422)")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "validation_error",
                    "detail": "lines[0].unit_price: Input should be greater than or equal to 0",
                    "fields": [
                        {
                            "field": "lines[0].unit_price",
                            "message": "Input should be greater than or equal to 0",
                        }
                    ],
                },
                {
                    "error": "insufficient_points",
                    "detail": "the card no longer holds the points asked for",
                    "balance": 120,
                },
            ]
        }
    )


NO_KEY = "no key or an unknown key"
UNAVAILABLE = "the database is unavailable; retry (Retry-After)"


def error_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a router's error answers, each an ``ErrorOut``: 401 and
    503 as every key-holding route may answer them, the rest as ``described``."""
    texts = {401: NO_KEY, **described, 503: UNAVAILABLE}
    return {status: {"model": ErrorOut, "description": texts[status]} for status in sorted(texts)}


class HealthOut(BaseModel):
    status: str


class ReadinessOut(BaseModel):
    status: str
    checks: dict[str, bool]


def receipt_from(body: ReceiptIn) -> Receipt:
    """The domain receipt. On the hot path: the lines are written column by column
    (``frozen_instances``), 18 µs for 10 lines against 22 µs through the frozen
    dataclass's ``__init__`` (best of 15 interleaved rounds, 2-core dev box)."""
    redeem_max = body.redeem_points == "max"
    given = body.lines
    lines = tuple(
        frozen_instances(
            ReceiptLine,
            len(given),
            [line.line_id for line in given],
            [line.sku for line in given],
            [quantity_milli(line.quantity) for line in given],
            [line.unit_price for line in given],
            [line.category for line in given],
            [line.brand for line in given],
            [line.excluded for line in given],
        )
    )
    return Receipt(
        body.store_id,
        body.timestamp,
        lines,
        body.card,
        body.terminal_id,
        body.channel,
        body.payment_method,
        body.pickup,
        tuple(dict.fromkeys(code.upper() for code in body.promo_codes)),
        0 if redeem_max else int(body.redeem_points),
        redeem_max,
        None if body.wallet is None else _wallet_ask(body.wallet),
        tuple(RewardAsk(ask.code, ask.count) for ask in body.rewards),
    )


def _wallet_ask(wallet: WalletIn) -> WalletAsk:
    if wallet.amount == "max":
        return WalletAsk(wallet.number, 0, True)
    return WalletAsk(wallet.number, int(wallet.amount))


def return_lines(body: RefundRequest) -> dict[str, int] | None:
    """Quantities to return by line id (summed if a line is named twice); None: all."""
    if body.lines is None:
        return None
    lines: dict[str, int] = {}
    for line in body.lines:
        lines[line.line_id] = lines.get(line.line_id, 0) + quantity_milli(line.quantity)
    return lines
