"""Inputs beside the receipt, and the values a calculation returns (SPEC §3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from service.domain.card import CardState, PromoCodeState
from service.domain.receipt import StoreInfo

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CalculationContext:
    """Everything a calculation reads besides the receipt and the program.

    ``now`` is processing time: balances are as of now. Rule conditions are evaluated
    as of the receipt's timestamp in the store's local time. ``promo_codes`` holds
    database-held codes keyed upper-case; ``promo_total_uses`` the uses so far (all
    cards) of codes declared in the program document; ``budgets_used`` maps a rule id
    to the part of its campaign budget already used; ``rule_uses`` the uses so far (all
    cards) of rules with use caps, by ``limits.use_key``.
    """

    store: StoreInfo
    now: datetime
    card: CardState | None
    promo_codes: Mapping[str, PromoCodeState] = field(default_factory=lambda: _EMPTY)
    promo_total_uses: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    budgets_used: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    rule_uses: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    calculation_id: str | None = None  # a commit's calculation: its own hold is its to spend


@dataclass(frozen=True, slots=True)
class Totals:
    """Receipt totals; ``points_*`` are points, the rest kopecks."""

    subtotal: int
    discount: int
    points_redeemable_max: int
    points_redeemed: int
    amount_due: int
    points_earned: int


@dataclass(frozen=True, slots=True)
class PromoVerdict:
    """``status`` is "accepted" or "rejected"; ``reason`` says why a code was rejected."""

    code: str
    status: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Gift:
    """A gift line the POS adds at zero price; ``quantity`` in thousandths."""

    sku: str
    quantity: int
    rule_id: str


@dataclass(frozen=True, slots=True)
class StampProgress:
    """A stamp card after the sale (SPEC §4 item 36): the card ``have`` stamps of the
    ``every`` that make a free item; the sale ``added`` stamps and gave ``free`` units,
    which used ``free * every`` of them."""

    rule_id: str
    name: str
    have: int
    every: int
    added: int
    free: int

    @property
    def change(self) -> int:
        """What the sale changes the card's count by: the ledger records it."""
        return self.added - self.free * self.every


@dataclass(frozen=True, slots=True)
class Message:
    """A message for the cashier, e.g. "offer_card", "birthday", "tier_upgrade": its code
    and the values its text names; the text, in the request's language, is
    ``service.i18n.cashier_text``'s."""

    code: str
    params: tuple[tuple[str, str | int], ...] = ()
