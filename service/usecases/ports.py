"""The ports use cases depend on; ``service.storage`` implements them, tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypedDict

import orjson

from service.domain.card import CardState, PromoCodeState
from service.domain.limits import RuleUse
from service.domain.receipt import StoreInfo
from service.domain.reversal import ReturnRequest, Reversal, SoldLine
from service.domain.reward import Reward
from service.domain.wallet import WalletState
from service.rules.compiler import CompiledProgram


class CardStates(Protocol):
    async def get(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        """The card's current state (from the cache where it can), or None if no such card."""
        ...

    async def load(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        """The card's state read from the ledger of record, bypassing the cache."""
        ...

    async def refresh(self, number: str, now: datetime, program: CompiledProgram) -> None:
        """Re-read the card from the ledger and cache it (after a write)."""
        ...


class Stores(Protocol):
    def get(self, store_id: str) -> StoreInfo | None: ...


class Programs(Protocol):
    @property
    def current(self) -> CompiledProgram: ...

    async def get(self, version: int) -> CompiledProgram: ...

    async def at(self, when: datetime) -> CompiledProgram:
        """The version in force at ``when`` (a receipt's time: late receipts, SPEC §3.3)."""
        ...


Answer = dict[str, object]
"""An answer as the POS receives it (a JSON object), stored and replayed as it is: the
ports carry it whole and never look inside."""


class CalculationRecord(TypedDict):
    """What a commit needs of the calculation the customer was shown."""

    fingerprint: str  # of the receipt calculated (usecases.calculate.fingerprint)
    view: Answer  # the answer shown, which the commit answers again
    budget_use: dict[str, int]  # campaign budget id -> amount the sale uses
    tier_spend: int
    rule_uses: list[list[str | int | None]]  # the sale's uses of capped rules (limits.RuleUse)
    held: bool  # it holds points of the card, which its commit takes (SPEC §3.5)


class RenderedCalculation(TypedDict):
    """A ``CalculationRecord`` as calculate keeps it: the answer shown already rendered,
    the response's own bytes embedded as they are (read back, it is the answer's dict)."""

    fingerprint: str
    view: orjson.Fragment
    budget_use: dict[str, int]
    tier_spend: int
    rule_uses: list[list[str | int | None]]
    held: bool


class CalculationRecords(Protocol):
    async def save(self, calculation_id: str, record: RenderedCalculation) -> None: ...

    async def load(self, calculation_id: str) -> CalculationRecord | None: ...


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """An admin request sent with ``Idempotency-Key``: the key, scoped by the API key that
    sent it, the operation, and the digest of what was asked."""

    scope: str
    key: str
    operation: str
    request_hash: bytes


# What a committed line holds beside the results its answer shows: what the till said of
# the line (a return reads back the sku and quantity, a simulation of the ledger's own
# receipts the rest). The ledger stores a sale's answer without its lines when they are
# these lines less these fields (storage/postgres/ledger.py); loyalty_receipt_answer,
# which gives them back, takes the same fields off (tests/e2e/test_receipt_answer.py
# holds the two equal).
RECEIPT_LINE_FIELDS = ("sku", "quantity", "unit_price", "category", "brand", "excluded")


@dataclass(frozen=True, slots=True)
class RecordedSale:
    """A sale already in the ledger: the digest of what was sent and the answer given."""

    request_hash: str  # hex, as ``service.usecases.commit.request_hash`` makes it
    response: Answer


@dataclass(frozen=True, slots=True)
class SaleEntry:
    """What the ledger records for a sale: the receipt's id and digest, its totals, what it
    moves on the card, and the answer a replay gets. ``lines`` are the answer's lines with
    the sku and quantity sold (what a return reads back); ``response`` is the answer."""

    now: datetime
    store_id: str
    transaction_id: str
    request_hash: str
    calculation_id: str | None
    program_version: int
    card: str | None
    occurred_at: datetime
    subtotal: int
    discount: int
    points_paid: int
    amount_due: int
    points_redeemed: int
    points_earned: int
    lines: tuple[Answer, ...]  # each line of the answer, with its sku and quantity
    response: Answer
    activates_at: datetime
    expires_at: datetime | None
    tier_spend: int
    tier_window_start: datetime | None
    tiers: tuple[tuple[str, int], ...]
    promo_codes: tuple[str, ...]
    budgets: tuple[tuple[str, int, int], ...]  # rule, amount the sale takes, the budget
    rule_uses: tuple[RuleUse, ...]  # in (rule, period) order
    held: bool  # its calculation holds points, which the commit takes
    allowance: str | None  # an offline till's allowance (its hold) the sale spends from
    referral_points: int
    wallet: tuple[str, int] | None = None  # a wallet's number and the kopecks it pays
    # The rewards it redeems, as loyalty_commit reads them (usecases.rewards.ledger_rewards)
    rewards: tuple[Answer, ...] = ()
    # Stamp cards the sale moves: rule, stamps added, free units given, stamps per free unit.
    stamps: tuple[tuple[str, int, int, int], ...] = ()
    channel: str = "offline"  # as the till sent them, for the analytics (SPEC §10.3)
    payment_method: str | None = None


@dataclass(frozen=True, slots=True)
class Committed:
    response: Answer
    referrer: str | None = None  # a referrer's card the sale's referral bonus credited


@dataclass(frozen=True, slots=True)
class Replayed:
    response: Answer


class RefusalReason(StrEnum):
    CONFLICT = "conflict"  # the receipt id was recorded with another receipt
    INSUFFICIENT = "insufficient"  # the card no longer holds the points
    CARD_NOT_FOUND = "card_not_found"
    CARD_NOT_ACTIVE = "card_not_active"
    PROMO_USED_UP = "promo_used_up"
    PROMO_REJECTED = "promo_rejected"  # the code is unknown to the ledger or revoked
    LIMIT_REACHED = "limit_reached"  # a rule's budget or use cap has no room left
    ALLOWANCE_REFUSED = "allowance_refused"  # spent to its end, ended, or not this card's
    WALLET_NOT_FOUND = "wallet_not_found"
    WALLET_NOT_ACTIVE = "wallet_not_active"  # blocked, replaced, expired or not sold yet
    WALLET_INSUFFICIENT = "wallet_insufficient"  # spent or held elsewhere meanwhile
    STAMPS_CHANGED = "stamps_changed"  # a free unit's stamps no longer on the card


@dataclass(frozen=True, slots=True)
class Refused:
    reason: RefusalReason
    balance: int | None = None  # INSUFFICIENT: what the card holds; WALLET_*: the wallet
    status: str | None = None  # CARD_NOT_ACTIVE: the card's status
    code: str | None = None  # PROMO_*: the promo code; LIMIT_REACHED, STAMPS_CHANGED: the rule


SaleOutcome = Committed | Replayed | Refused


class Ledger(Protocol):
    async def commit_sale(self, entry: SaleEntry) -> SaleOutcome:
        """Record a sale; its outcome. The card's new state goes to the cache with it."""
        ...

    async def recorded_sale(self, store_id: str, transaction_id: str) -> RecordedSale | None:
        """The sale recorded under this receipt id, if any."""
        ...


@dataclass(frozen=True, slots=True)
class SoldSale:
    """A committed sale as a return sees it, its row locked for the return's transaction."""

    card: str | None
    cancelled: bool
    lines: tuple[SoldLine, ...]
    points_redeemed: int


@dataclass(frozen=True, slots=True)
class RecordedReturn:
    """A return already recorded under its refund id: what was asked and the answer given."""

    transaction_id: str
    request_hash: bytes
    response: Answer


@dataclass(frozen=True, slots=True)
class CardAfter:
    number: str
    status: str
    tier: str | None
    balance: int
    pending: int


class ReturnSession(Protocol):
    """One return in one database transaction, the sale's row locked; the steps each write
    ledger entries of the return's kind (refund or cancel)."""

    sale: SoldSale
    referrer: str | None  # another card the return changed: the referrer's
    stamps_card: str | None  # another card the return changed: the one that replaced it

    async def recorded(self) -> RecordedReturn | None: ...

    async def returned_so_far(self) -> dict[str, int]:
        """Line id -> thousandths returned by the sale's earlier returns."""
        ...

    async def return_limits(self, returned: Mapping[str, int], complete: bool) -> None:
        """Give back the campaign budgets the sale used in proportion to what has now
        been returned of it (``returned``, this return included: ``reversal.budget_back``),
        and its uses of capped rules when ``complete``."""
        ...

    async def take_back_referral(self) -> tuple[int, int]:
        """The referral bonuses the sale granted (a referee's first purchase), taken back
        from both cards, each from its own lot first: the points taken back in all, and
        the referee's points no lot held (settled by the program's policy, as earned ones).
        A referrer who spent the bonus owes it: there is no cash to keep back. Sets
        ``referrer`` to the referrer's card."""
        ...

    async def uncount_purchase(self) -> None:
        """The sale no longer counts among the card's purchases."""
        ...

    async def take_back_stamps(self) -> None:
        """The stamps the sale moved on the card's stamp cards, moved back: those it added
        taken away, those its free units used given back; from the card that replaced
        the sale's, if it was replaced (sets ``stamps_card`` to it)."""
        ...

    async def move_tier_down(
        self, tiers: tuple[tuple[str, int], ...], window_start: datetime | None
    ) -> None:
        """The card down to the tier its spend now reaches, if below its own."""
        ...

    async def take_back_earned(self, points: int) -> int:
        """Take back earned points, the sale's own lot first; the points no lot held."""
        ...

    async def give_back_spent(self, points: int) -> None:
        """Give spent points back to the lots they came from, with their expiry."""
        ...

    async def give_back_rewards(self, points: int) -> None:
        """Give points spent on rewards back to the lots they came from, with their expiry."""
        ...

    async def void_coupons(self) -> tuple[list[str], int]:
        """Revoke the coupons the sale issued that no sale has used; the codes and the
        points they cost (a used coupon's points stay spent)."""
        ...

    async def owe(self, points: int) -> None: ...

    async def give_back_to_wallet(self, amount: int) -> tuple[str, str] | None:
        """Give ``amount`` kopecks the sale paid from a wallet back to it (or to the
        wallet that replaced it): its number and status after, None if the sale paid
        from none. Money back to an expired wallet expires with it."""
        ...

    async def take_back_tier_spend(self, amount: int) -> None: ...

    async def release_promo_codes(self) -> None: ...

    async def mark_cancelled(self) -> None: ...

    async def card_after(self, reversal: Reversal) -> CardAfter:
        """The card's state after the return (its version bumped, the event queued)."""
        ...

    async def record(self, reversal: Reversal, response: Answer) -> Answer:
        """Record the return; its answer as stored, which replays return byte for byte."""
        ...


class Returns(Protocol):
    def session(self, request: ReturnRequest) -> AbstractAsyncContextManager[ReturnSession]:
        """The sale under ``request`` locked (``NotFound`` if there is none) in a transaction
        that commits when the block ends, and rolls back if it raises."""
        ...


@dataclass(frozen=True, slots=True)
class Released:
    """A hold released by its till: the card, the store that held, the points freed (0:
    its commit had taken it, or it had lapsed or been released before)."""

    card: str
    store_id: str
    points: int


class Holds(Protocol):
    """Points held for calculations (SPEC §3.5)."""

    async def hold(
        self,
        card: str,
        calculation_id: str,
        store_id: str,
        points: int,
        now: datetime,
        until: datetime,
    ) -> int:
        """Hold up to ``points`` of the card for the calculation until ``until``, under the
        card's lock: at most what it may spend (its balance less others' holds). The
        points held."""
        ...

    async def release(
        self, calculation_id: str, now: datetime, may_release: Callable[[str], None]
    ) -> Released | None:
        """Free the calculation's hold, once ``may_release`` (given the store that held)
        has not raised; None if it never held."""
        ...


class Secrets(Protocol):
    async def secret(self, name: str) -> bytes:
        """The deployment's secret of that name, the same for every worker."""
        ...


class PromotionState(Protocol):
    """Campaign budgets used, uses of limited codes and of capped rules (a view a few
    seconds old), and database-held codes."""

    @property
    def budgets_used(self) -> Mapping[str, int]: ...

    @property
    def code_uses(self) -> Mapping[str, int]: ...

    @property
    def rule_uses(self) -> Mapping[str, int]: ...

    async def refresh(self) -> None:
        """Read the view again now (a commit found a budget or a cap reached)."""

    async def held_codes(self, codes: Iterable[str]) -> dict[str, PromoCodeState]: ...

    async def forget(self, codes: Iterable[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class NewWallet:
    """A wallet the back office issues: a certificate (waiting for its sale, with a face
    value or none) or a card's e-wallet (alive at once). ``number`` None: the next of the
    chain's numbers."""

    kind: str
    number: str | None = None
    nominal: int | None = None
    card: str | None = None
    validity_days: int | None = None
    expires_at: datetime | None = None
    batch: str | None = None


class Rewards(Protocol):
    """The rewards catalogue (SPEC §4 item 31) as a sale reads it."""

    async def catalogue(self, codes: Sequence[str]) -> dict[str, Reward]:
        """The rewards among ``codes`` (unknown ones left out), archived ones included."""
        ...


class Wallets(Protocol):
    """Gift certificates and e-wallets in the ledger (SPEC §4 item 34). The views are the
    wallet as the API shows it (``WalletOut``)."""

    async def get(self, number: str, calculation_id: str | None) -> WalletState | None:
        """The wallet, with what calculations other than ``calculation_id`` hold of it."""
        ...

    async def hold(
        self,
        number: str,
        calculation_id: str,
        store_id: str,
        amount: int,
        now: datetime,
        until: datetime,
    ) -> bool:
        """Hold ``amount`` of the wallet for the calculation, all of it or none (under the
        wallet's lock, at most what others do not hold)."""
        ...

    async def release(
        self, calculation_id: str, now: datetime, may_release: Callable[[str], None]
    ) -> int | None:
        """Free the money the calculation holds of a wallet; None if it never held any."""
        ...

    async def sell(
        self,
        number: str,
        store_id: str,
        transaction_id: str,
        amount: int | None,
        now: datetime,
        validity_days: int | None,
    ) -> tuple[dict[str, object], bool]: ...

    async def top_up(
        self,
        number: str,
        store_id: str,
        transaction_id: str,
        amount: int,
        max_balance: int | None,
        now: datetime,
    ) -> tuple[dict[str, object], bool]: ...

    async def issue(self, new: NewWallet, author: str, now: datetime) -> dict[str, object]:
        """Issue one wallet (a number taken: 409)."""
        ...

    async def issue_batch(
        self, template: NewWallet, count: int, author: str, now: datetime
    ) -> list[str]:
        """``count`` certificates like ``template`` in the chain's numbering; their numbers."""
        ...

    async def batch(self, batch: str) -> list[dict[str, object]]: ...

    async def view(self, number: str, now: datetime) -> dict[str, object]: ...

    async def history(
        self, number: str, limit: int, before: int | None
    ) -> list[dict[str, object]]: ...

    async def set_status(
        self, number: str, status: str, author: str, reason: str, now: datetime
    ) -> dict[str, object]: ...

    async def replace(
        self, number: str, new_number: str | None, author: str, reason: str, now: datetime
    ) -> dict[str, object]: ...

    async def expire(self, now: datetime) -> int:
        """Close the wallets past their expiry: their money leaves as an ``expiry`` entry."""
        ...

    async def report(self, now: datetime) -> dict[str, object]:
        """The liability: what live wallets hold, by kind and by month of expiry, and
        every movement by kind."""
        ...
