"""The wallets' request and answer bodies (SPEC §4 item 34): the till's (a sale, a top-up,
a balance) and the back office's (issue, batches, block, replace, history, the report)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from service.api.schemas import CardNumber, Identifier, Timestamp
from service.domain.receipt import MAX_RECEIPT_AMOUNT

Kopecks = Annotated[StrictInt, Field(ge=1, le=MAX_RECEIPT_AMOUNT)]
WalletKind = Literal["certificate", "ewallet"]


def _config(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": list(examples)})


class WalletOut(BaseModel):
    number: str
    kind: WalletKind
    status: Literal["issued", "active", "blocked", "replaced", "expired"] = Field(
        description="issued: a certificate not sold yet; expired: past its expiry, its money gone"
    )
    nominal: int | None = Field(description="a certificate's face value in kopecks")
    balance: int = Field(description="kopecks it holds (0 unless active)")
    card: str | None = Field(description="an e-wallet's card")
    batch: str | None
    expires_at: str | None
    replaced_by: str | None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{
            "number": "2900000000017", "kind": "certificate", "status": "active",
            "nominal": 300000, "balance": 120000, "card": None, "batch": None,
            "expires_at": "2027-12-07T12:00:00+00:00", "replaced_by": None,
        }]}
    )  # fmt: skip


class TillWalletOut(WalletOut):
    replayed: bool = Field(description="true: this transaction was recorded before")


class WalletSellIn(BaseModel):
    store_id: Identifier
    transaction_id: Identifier = Field(description="the till's receipt of the sale")
    amount: Kopecks | None = Field(
        default=None, description="for a certificate without a face value: what it holds"
    )

    model_config = _config({"store_id": "msk-001", "transaction_id": "R-0042"})


class WalletTopUpIn(BaseModel):
    store_id: Identifier
    transaction_id: Identifier
    amount: Kopecks

    model_config = _config({"store_id": "msk-001", "transaction_id": "R-0043", "amount": 50000})


class WalletIssueIn(BaseModel):
    kind: WalletKind = "certificate"
    number: Identifier | None = Field(
        default=None, description="absent: the next of the chain's EAN-13 wallet numbers"
    )
    nominal: Kopecks | None = Field(default=None, description="a certificate's face value")
    card: CardNumber | None = Field(default=None, description="an e-wallet's card")
    validity_days: int | None = Field(
        default=None, ge=1, le=36_500, description="days it lives from its sale (default:"
        " the program's wallets.validity_days)"
    )  # fmt: skip
    expires_at: Timestamp | None = Field(default=None, description="a fixed expiry instead")

    model_config = _config({"kind": "certificate", "nominal": 300000})


class WalletBatchIn(BaseModel):
    count: int = Field(ge=1, le=10_000)
    nominal: Kopecks | None = None
    validity_days: int | None = Field(default=None, ge=1, le=36_500)
    expires_at: Timestamp | None = None

    model_config = _config({"count": 100, "nominal": 100000})


class WalletBatchOut(BaseModel):
    batch: str = Field(description="the batch's id: its numbers print from .../batches/{id}/print")
    count: int
    first: str
    last: str

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"batch": "20261207-1a2b3c4d", "count": 100,
                                         "first": "2900000000017", "last": "2900000001007"}]}
    )  # fmt: skip


class WalletReplaceIn(BaseModel):
    number: Identifier | None = Field(default=None, description="the new wallet's number")
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    model_config = _config({"reason": "lost"})


class WalletStatusIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    model_config = _config({"reason": "reported stolen"})


class WalletEntryOut(BaseModel):
    entry_id: int
    kind: Literal["sale", "top_up", "payment", "refund", "expiry", "transfer"]
    amount: int = Field(description="kopecks in (+) or out (-)")
    store_id: str | None
    transaction_id: str | None
    refund_id: str | None
    created_at: str


class WalletHistoryOut(BaseModel):
    wallet: WalletOut
    entries: list[WalletEntryOut]
    next_before: int | None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{
            "wallet": WalletOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
            "entries": [
                {"entry_id": 7, "kind": "payment", "amount": -180000, "store_id": "msk-001",
                 "transaction_id": "R-0042", "refund_id": None,
                 "created_at": "2026-12-07T12:05:00+00:00"},
                {"entry_id": 3, "kind": "sale", "amount": 300000, "store_id": "msk-001",
                 "transaction_id": "R-0040", "refund_id": None,
                 "created_at": "2026-12-07T12:00:00+00:00"},
            ],
            "next_before": None,
        }]}
    )  # fmt: skip


class WalletKindTotalOut(BaseModel):
    kind: WalletKind
    wallets: int
    balance: int


class WalletMonthOut(BaseModel):
    month: str | None = Field(description="YYYY-MM of expiry; null: never expires")
    wallets: int
    balance: int


class WalletMovementOut(BaseModel):
    kind: str
    entries: int
    amount: int


class WalletReportOut(BaseModel):
    at: datetime
    liability: int = Field(description="kopecks live wallets hold: owed to their holders")
    by_kind: list[WalletKindTotalOut]
    by_expiry_month: list[WalletMonthOut]
    movements: list[WalletMovementOut] = Field(description="every movement so far, by kind")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{
            "at": "2026-12-07T12:00:00+00:00", "liability": 1_200_000,
            "by_kind": [{"kind": "certificate", "wallets": 5, "balance": 1_200_000}],
            "by_expiry_month": [{"month": "2027-12", "wallets": 5, "balance": 1_200_000}],
            "movements": [{"kind": "payment", "entries": 3, "amount": -300_000},
                          {"kind": "sale", "entries": 5, "amount": 1_500_000}],
        }]}
    )  # fmt: skip
