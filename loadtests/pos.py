"""What a till sends for one sale of a dataset basket (SPEC §3), for the locustfile and
the replay: the basket calculated as it grows, the commit, sometimes a partial return.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from loadtests.dataset import PosReceipt

ANONYMOUS_SHARE = 0.05  # customers who forget the card
REDEEM_SHARE = 0.15  # customers who pay with points when the card has some
REFUND_SHARE = 0.03  # sales partly returned afterwards
PAYMENT_METHODS = ("card", "cash")


@dataclass(frozen=True, slots=True)
class SalePlan:
    """How one sale goes: decided up front from a random source."""

    anonymous: bool
    redeem: bool
    redeem_max: bool  # ask for "max", else for a number of points
    refund: bool
    payment_method: str
    terminal_id: str
    steps: tuple[int, ...]  # lines scanned at each calculation; the last is all of them

    @classmethod
    def draw(cls, receipt: PosReceipt, rng: random.Random) -> SalePlan:
        anonymous = rng.random() < ANONYMOUS_SHARE
        return cls(
            anonymous=anonymous,
            redeem=not anonymous and rng.random() < REDEEM_SHARE,
            redeem_max=rng.random() < 0.5,
            refund=rng.random() < REFUND_SHARE,
            payment_method=rng.choice(PAYMENT_METHODS),
            terminal_id=f"pos-{rng.randint(1, 8)}",
            steps=growth_steps(len(receipt.lines), three=rng.random() < 0.5),
        )

    def redemption(self, balance: int) -> int | str:
        """Points to ask for, given the balance the till was shown (0: none)."""
        if not self.redeem or balance <= 0:
            return 0
        return "max" if self.redeem_max else max(1, balance // 2)


def growth_steps(lines: int, *, three: bool) -> tuple[int, ...]:
    """Lines on the till at each calculation: half, (three quarters,) all."""
    if three:
        return (math.ceil(lines / 2), math.ceil(lines * 3 / 4), lines)
    return (math.ceil(lines / 2), lines)


def receipt_body(
    receipt: PosReceipt, plan: SalePlan, *, lines: int | None = None, redeem: int | str = 0
) -> dict[str, Any]:
    """The /v1/calculate body with the first ``lines`` lines (all when None)."""
    body: dict[str, Any] = {
        "store_id": receipt.store_id,
        "terminal_id": plan.terminal_id,
        "timestamp": receipt.timestamp,
        "payment_method": plan.payment_method,
        "lines": list(receipt.lines[:lines]),
    }
    if not plan.anonymous:
        body["card"] = receipt.card
        body["redeem_points"] = redeem
    return body


def commit_body(
    receipt: PosReceipt,
    plan: SalePlan,
    *,
    transaction_id: str,
    calculation_id: str | None,
    redeem: int | str,
) -> dict[str, Any]:
    body = receipt_body(receipt, plan, redeem=redeem)
    body["transaction_id"] = transaction_id
    body["calculation_id"] = calculation_id
    return body


def refund_body(
    receipt: PosReceipt, *, transaction_id: str, refund_id: str, rng: random.Random
) -> dict[str, Any]:
    """A partial return: one unit of one or two lines."""
    picked = rng.sample(receipt.lines, k=min(len(receipt.lines), rng.choice((1, 2))))
    return {
        "store_id": receipt.store_id,
        "transaction_id": transaction_id,
        "refund_id": refund_id,
        "lines": [{"line_id": line["line_id"], "quantity": "1"} for line in picked],
    }


def expected_refusal(status: int, body: Any) -> str | None:
    """The error code of a refusal a real till meets and handles, else None.

    Only one: a commit that spends points a concurrent sale of the same card has
    already spent answers 409 ``insufficient_points`` (SPEC §3), and the till asks again.
    """
    if status == 409 and isinstance(body, dict) and body.get("error") == "insufficient_points":
        return "insufficient_points"
    return None
