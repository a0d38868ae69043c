"""Wallets (SPEC §4 item 34): gift certificates and e-wallets holding money in kopecks,
spent at the till as a tender beside points.

A wallet pays after the discounts and the points: at most what is left to pay, split
over the lines in proportion to what each still costs (largest remainder, exact to the
kopeck). Whether the money it pays earns points is the program's ``wallets.earn_points``:
where it does not, each line earns on the part other tenders pay, and the points the
sale would have earned shrink in the same proportion, split again over lines and rules
so that every split still sums to its total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from stdnum import ean

from service.domain.errors import Conflict, NotFound
from service.domain.money import allocate_largest_remainder

KINDS = ("certificate", "ewallet")
STATUSES = ("issued", "active", "blocked", "replaced", "expired")
NUMBER_PREFIX = "29"  # EAN-13's in-store range, where the chain's cards do not go (20-28)


@dataclass(frozen=True, slots=True)
class WalletAsk:
    """What the till asks of a wallet on a receipt: pay ``amount`` kopecks, or as much as
    it can (``pay_max``)."""

    number: str
    amount: int = 0
    pay_max: bool = False


@dataclass(frozen=True, slots=True)
class WalletState:
    """A wallet as a calculation reads it: ``held`` is what other calculations hold of it."""

    number: str
    kind: str
    status: str
    balance: int
    held: int
    expires_at: datetime | None

    def state_at(self, now: datetime) -> str:
        """Its status at ``now``: an active wallet past its expiry is ``expired`` at once,
        whether or not the expiry job has closed it."""
        if self.status == "active" and self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return self.status

    def spendable(self, now: datetime) -> int:
        return max(self.balance - self.held, 0) if self.state_at(now) == "active" else 0


def wallet_payment(ask: WalletAsk, wallet: WalletState | None, due: int, now: datetime) -> int:
    """What the wallet pays of ``due`` kopecks: what was asked (all it may, for ``max``).
    A wallet that is unknown, not active, or cannot pay what was asked is refused."""
    if wallet is None:
        raise NotFound(f"no wallet {ask.number}", code="wallet_not_found")
    status = wallet.state_at(now)
    if status != "active":
        raise Conflict(
            f"wallet {ask.number} is {status}", code="wallet_not_active", extra={"status": status}
        )
    spendable = wallet.spendable(now)
    if ask.pay_max:
        return min(spendable, due)
    if ask.amount > spendable:
        raise wallet_insufficient(spendable)
    return min(ask.amount, due)


def wallet_insufficient(balance: int) -> Conflict:
    return Conflict(
        "the wallet does not hold the money asked for",
        code="wallet_insufficient",
        extra={"wallet_balance": balance},
    )


def split_payment(amount: int, finals: Sequence[int]) -> list[int]:
    """``amount`` (at most their sum) over the lines, in proportion to what each still
    costs: no line is paid more than it costs."""
    if amount == 0:
        return [0] * len(finals)
    return allocate_largest_remainder(amount, finals, finals)


def points_without_wallet(
    earned: Sequence[int], rule_points: Sequence[int], paid: int, due: int
) -> tuple[list[int], list[int]]:
    """The points a sale earns when money from a wallet does not earn: the total in the
    proportion of ``due`` that other tenders pay (rounded down: never a point the money
    did not earn), split over the lines and over the rules in proportion to what each
    earned before."""
    if paid == 0 or due == 0:
        return list(earned), list(rule_points)
    kept = sum(earned) * (due - paid) // due
    lines = allocate_largest_remainder(kept, earned, earned) if kept else [0] * len(earned)
    rules_total = sum(rule_points)
    rules_kept = min(rules_total * (due - paid) // due, rules_total)
    rules = (
        allocate_largest_remainder(rules_kept, rule_points, rule_points)
        if rules_kept
        else [0] * len(rule_points)
    )
    return lines, rules


def wallet_number(serial: int, prefix: str = NUMBER_PREFIX) -> str:
    """The ``serial``-th number of the chain's wallets: EAN-13, ``prefix`` and the serial
    in the twelve digits before the check digit, so that a till scans a certificate's
    barcode as it scans a card's and a misread is refused."""
    body = f"{prefix}{serial:0{12 - len(prefix)}d}"
    if len(body) != 12:
        raise ValueError("wallet numbers have run out for this prefix")
    return body + ean.calc_check_digit(body)
