"""What a return reverses of a committed sale, line by line, exactly.

A line sold in quantity Q carries amounts (discount, money paid, points paid, points
earned). Returning q of it, after r were returned before, reverses

    share(x) = floor(x * (r + q) / Q) - floor(x * r / Q)

of each amount x. The shares of successive returns telescope, so returning a line in
any number of steps reverses exactly x in the end, never more, never a negative share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.domain.errors import InvalidInput, QuantityExceeded
from service.domain.money import allocate_largest_remainder


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    store_id: str
    transaction_id: str
    refund_id: str
    request_hash: bytes
    lines: Mapping[str, int] | None  # line id -> thousandths; None: everything left
    now: datetime
    policy: str  # "negative_balance" | "withhold"
    point_value: int
    cancel: bool = False
    # The program's tiers ([code, threshold], ascending) and the spend window's start, for
    # a tier moved down at once by a return (``tiers.downgrade: on_return``); None: not.
    tiers_on_return: tuple[tuple[str, int], ...] | None = None
    tier_window_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class SoldLine:
    """One line as committed; money in kopecks, quantity in thousandths."""

    line_id: str
    quantity: int
    amount: int
    discount: int
    points_paid: int
    final_amount: int
    points_earned: int
    wallet_paid: int = 0  # kopecks of final_amount paid from a wallet
    reward_points: int = 0  # points the sale's rewards charged for the line's discount


@dataclass(frozen=True, slots=True)
class LineReversal:
    line_id: str
    quantity: int
    money: int  # kopecks the customer paid in money for what is returned
    points_paid_back: int  # points to give back to the card
    points_earned_back: int  # points to take back from the card
    tier_spend: int  # kopecks of tier spend to take back
    wallet_back: int = 0  # kopecks of ``money`` that go back to the wallet that paid them
    reward_points_back: int = 0  # rewards' points to give back to the card


@dataclass(frozen=True, slots=True)
class Reversal:
    lines: tuple[LineReversal, ...]
    complete: bool  # after this return, everything sold has been returned

    @property
    def money(self) -> int:
        return sum(line.money for line in self.lines)

    @property
    def points_paid_back(self) -> int:
        return sum(line.points_paid_back for line in self.lines)

    @property
    def points_earned_back(self) -> int:
        return sum(line.points_earned_back for line in self.lines)

    @property
    def tier_spend(self) -> int:
        return sum(line.tier_spend for line in self.lines)

    @property
    def wallet_back(self) -> int:
        return sum(line.wallet_back for line in self.lines)

    @property
    def reward_points_back(self) -> int:
        return sum(line.reward_points_back for line in self.lines)


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Earned points a return should take back that the card has already spent."""

    withhold: int  # kopecks kept back from the cash refund
    debt: int  # points the card owes, repaid from its next accruals


def settle_shortfall(policy: str, points: int, cash_refund: int, point_value: int) -> Shortfall:
    """The program's policy for earned points already spent: ``withhold`` keeps back their
    value from the cash refund, in whole points, as far as the refund goes, and the rest
    becomes debt; ``negative_balance`` makes all of it debt."""
    withheld = min(points, cash_refund // point_value) if policy == "withhold" else 0
    return Shortfall(withhold=withheld * point_value, debt=points - withheld)


def budget_back(used: int, lines: Sequence[SoldLine], returned: Mapping[str, int]) -> int:
    """The part of a campaign budget a sale used (``used`` kopecks or points) that its
    returns give back once ``returned`` (line id -> thousandths, every return so far) is
    returned: in proportion to the goods' amounts returned, all of it when everything is.
    Each return gives back the difference from the last, so the parts add up to ``used``."""
    whole = sum(line.amount for line in lines)
    if all(returned.get(line.line_id, 0) >= line.quantity for line in lines):
        return used
    if whole == 0:
        return 0
    # sum(amount × returned / quantity) / whole, over one common denominator, rounded down
    numerator, denominator = 0, 1
    for line in lines:
        back = returned.get(line.line_id, 0)
        if back:
            numerator = numerator * line.quantity + line.amount * back * denominator
            denominator *= line.quantity
    return used * numerator // (denominator * whole)


def share(amount: int, before: int, now: int, total: int) -> int:
    """The part of ``amount`` that returning ``now`` of ``total`` (``before`` gone) reverses."""
    return amount * (before + now) // total - amount * before // total


def points_paid_per_line(lines: Sequence[SoldLine], points_redeemed: int) -> list[int]:
    """The sale's redeemed points split over lines in proportion to the kopecks they paid."""
    weights = [line.points_paid for line in lines]
    if points_redeemed == 0 or not any(weights):
        return [0] * len(lines)
    return allocate_largest_remainder(points_redeemed, weights)


def returning_quantities(
    lines: Sequence[SoldLine], returned: Mapping[str, int], asked: Mapping[str, int] | None
) -> dict[str, int]:
    """Quantities this return takes back: ``asked``, or all that is left when None."""
    sold = {line.line_id: line.quantity for line in lines}
    if asked is None:
        return {k: q - returned.get(k, 0) for k, q in sold.items() if q > returned.get(k, 0)}
    for line_id, quantity in asked.items():
        if line_id not in sold:
            raise InvalidInput(f"the sale has no line {line_id!r}", code="unknown_line")
        left = sold[line_id] - returned.get(line_id, 0)
        if quantity > left:
            raise QuantityExceeded(
                f"line {line_id!r}: returning {quantity / 1000:g}, only {left / 1000:g} left",
                extra={"line_id": line_id, "returnable": left},
            )
    return {k: q for k, q in asked.items() if q > 0}


def reverse(
    lines: Sequence[SoldLine],
    points_redeemed: int,
    returned: Mapping[str, int],
    asked: Mapping[str, int] | None,
) -> Reversal:
    """Reverse what returning ``asked`` (None: everything left) undoes of the sale."""
    now = returning_quantities(lines, returned, asked)
    if not now:
        raise InvalidInput("nothing is left to return on this sale", code="nothing_to_return")
    paid_points = points_paid_per_line(lines, points_redeemed)
    reversed_lines = []
    for line, points in zip(lines, paid_points, strict=True):
        q = now.get(line.line_id, 0)
        if q == 0:
            continue
        r = returned.get(line.line_id, 0)
        reversed_lines.append(
            LineReversal(
                line_id=line.line_id,
                quantity=q,
                money=share(line.final_amount, r, q, line.quantity),
                points_paid_back=share(points, r, q, line.quantity),
                points_earned_back=share(line.points_earned, r, q, line.quantity),
                tier_spend=share(line.amount - line.discount, r, q, line.quantity),
                wallet_back=share(line.wallet_paid, r, q, line.quantity),
                reward_points_back=share(line.reward_points, r, q, line.quantity),
            )
        )
    complete = all(
        returned.get(line.line_id, 0) + now.get(line.line_id, 0) == line.quantity for line in lines
    )
    return Reversal(tuple(reversed_lines), complete)
