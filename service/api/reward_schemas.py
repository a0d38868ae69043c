"""The rewards catalogue's bodies (SPEC §4 item 31): what a receipt asks for and what its
answer shows, and the back office's entries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from service.api.schemas import Identifier, Label, RewardCode, RewardKind, Timestamp
from service.domain.receipt import MAX_RECEIPT_AMOUNT
from service.domain.reward import KINDS
from service.rules.document import Percent

assert set(RewardKind.__args__) == set(KINDS)  # type: ignore[attr-defined]
PointsPrice = Annotated[StrictInt, Field(ge=1, le=10**9, description="points per multiple")]
PerReceipt = Annotated[StrictInt, Field(ge=1, le=1000)]


def _config(*examples: dict[str, Any], strict: bool = True) -> ConfigDict:
    return ConfigDict(
        extra="forbid" if strict else "ignore", json_schema_extra={"examples": list(examples)}
    )


_REWARD_EXAMPLE: dict[str, Any] = {
    "code": "NEXT10", "name": "10% off the next order", "kind": "coupon", "price": 10,
    "percent": None, "amount": None, "sku": None, "rule_id": "coupon10", "coupon_days": 30,
    "valid_from": None, "valid_to": None, "max_per_receipt": 1, "status": "active",
    "archived_at": None, "created_by": "marketing (3f2a9c0d1e4b5a6c)",
    "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
    "redemptions": 12,
}  # fmt: skip


class RewardIn(BaseModel):
    """A catalogue entry: its kind says which of ``percent``, ``amount``, ``sku`` or
    ``rule_id`` and ``coupon_days`` it needs, and it takes no other."""

    code: RewardCode
    name: Label
    kind: RewardKind
    price: PointsPrice
    percent: Percent | None = Field(default=None, description="percent_off: per multiple")
    amount: Annotated[StrictInt, Field(ge=1, le=MAX_RECEIPT_AMOUNT)] | None = Field(
        default=None, description="amount_off: kopecks per multiple"
    )
    sku: Identifier | None = Field(default=None, description="free_product: one unit of it")
    rule_id: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="coupon: a promo rule of the program the coupon unlocks"
    )
    coupon_days: Annotated[StrictInt, Field(ge=1, le=3660)] | None = Field(
        default=None, description="coupon: days it stays valid from the sale"
    )
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None
    max_per_receipt: PerReceipt | None = None

    model_config = _config(
        {"code": "NEXT10", "name": "10% off the next order", "kind": "coupon", "price": 10,
         "rule_id": "coupon10", "coupon_days": 30, "max_per_receipt": 1},
        {"code": "COFFEE", "name": "A free coffee", "kind": "free_product", "price": 150,
         "sku": "COFFEE-M"},
        {"code": "OFF500", "name": "500 roubles off", "kind": "amount_off", "price": 500,
         "amount": 50000},
    )  # fmt: skip

    @model_validator(mode="after")
    def _fields_of_kind(self) -> RewardIn:
        needed = {
            "percent_off": ("percent",), "amount_off": ("amount",), "free_product": ("sku",),
            "coupon": ("rule_id", "coupon_days"),
        }  # fmt: skip
        own = needed[self.kind]
        for kind_fields in needed.values():
            for name in kind_fields:
                given = getattr(self, name) is not None
                if name in own and not given:
                    raise ValueError(f"a {self.kind} reward needs {name}")
                if name not in own and given:
                    raise ValueError(f"a {self.kind} reward takes no {name}")
        if self.percent == 0:
            raise ValueError("percent must be above 0")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class RewardChangeIn(BaseModel):
    """What may change of an entry: its kind and effect stay as sales saw them (make a new
    entry and archive this one instead). ``archived`` takes it off the till or back."""

    name: Label | None = None
    price: PointsPrice | None = None
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None
    max_per_receipt: PerReceipt | None = None
    archived: bool | None = None

    model_config = _config({"price": 12, "max_per_receipt": 2}, {"archived": True})


class RewardOut(BaseModel):
    code: str
    name: str
    kind: RewardKind
    price: int
    percent: str | None
    amount: int | None
    sku: str | None
    rule_id: str | None
    coupon_days: int | None
    valid_from: datetime | None
    valid_to: datetime | None
    max_per_receipt: int | None
    status: Literal["active", "archived", "not_yet_valid", "expired"]
    archived_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    redemptions: int = Field(description="sales that redeemed it")

    model_config = _config(_REWARD_EXAMPLE, strict=False)


class RewardsOut(BaseModel):
    rewards: list[RewardOut]
    next_cursor: str | None

    model_config = _config({"rewards": [_REWARD_EXAMPLE], "next_cursor": None}, strict=False)
