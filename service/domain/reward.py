"""The rewards catalogue (SPEC §4 item 31): rewards priced in points, redeemed at the
till in whole multiples of their price.

A reward is a percent or an amount off this receipt, a free unit of a product, or a
coupon: a single-use promo code bound to the card that unlocks a promo rule of the
program on a later receipt ("10 points: 10% off the next order"). ``count`` multiples
cost ``count × price`` points and give ``count`` times the reward (percents add up to
100% at most, each multiple of a free product is one more unit, each coupon is a code).

What a reward gives on this receipt comes after the rules' discounts and the points
paid, before a wallet: it lowers what each line still costs, never below the line's
floor (``points.min_line_amount``), and only on lines the till did not exclude from
loyalty. Its points come out of the card's balance like spent points (FIFO by expiry),
so a reward's points are not there to pay with. These functions are pure; the use case
(``usecases.rewards``) applies them to an answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service.domain.money import allocate_largest_remainder

KINDS = ("percent_off", "amount_off", "free_product", "coupon")
BP_SCALE = 10_000  # basis points in 100%
UNIT = 1000  # thousandths in one unit


@dataclass(frozen=True, slots=True)
class RewardAsk:
    """What the till asks for: ``count`` multiples of the reward ``code``."""

    code: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Reward:
    """A catalogue entry. ``percent_bp`` (percent_off) and ``amount`` (amount_off, kopecks)
    are per multiple; ``sku`` is a free product's; a coupon unlocks ``rule_id`` (a promo
    rule of the program) for ``coupon_days`` from the sale."""

    code: str
    name: str
    kind: str
    price: int
    percent_bp: int = 0
    amount: int = 0
    sku: str | None = None
    rule_id: str | None = None
    coupon_days: int | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    max_per_receipt: int | None = None
    archived: bool = False

    def state_at(self, now: datetime) -> str:
        """``active``, or why the till may not redeem it now."""
        if self.archived:
            return "archived"
        if self.valid_from is not None and now < self.valid_from:
            return "not_yet_valid"
        if self.valid_to is not None and now >= self.valid_to:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One asked reward on a receipt: ``reason`` None when it is redeemed, its ``points``
    then charged. ``lines`` the discount it gives each line and ``line_points`` its
    points split over the lines in the same proportion (for returns); both empty for a
    coupon and for a refused reward."""

    ask: RewardAsk
    reward: Reward | None
    reason: str | None
    points: int = 0
    lines: tuple[int, ...] = ()
    line_points: tuple[int, ...] = ()
    extra: Mapping[str, int] = field(default_factory=dict)

    @property
    def redeemed(self) -> bool:
        return self.reason is None

    @property
    def discount(self) -> int:
        return sum(self.lines)


@dataclass(frozen=True, slots=True)
class LineRoom:
    """A line as a reward sees it: what it costs after the rules' discounts (the weight of
    a percent), and how much lower it may still go (its final amount less its floor)."""

    sku: str
    quantity: int
    cost: int
    room: int
    excluded: bool


def screen(
    asks: Sequence[RewardAsk],
    catalogue: Mapping[str, Reward],
    *,
    card_active: bool,
    points: int,
    skus: Mapping[str, int],
    rule_ids: frozenset[str],
    now: datetime,
) -> list[Verdict]:
    """What the receipt's own facts decide, before any amount: each asked reward is
    known, active, within its per-receipt limit, for an active card, coupled to a rule
    or a product the receipt has (``skus``: thousandths of each SKU on lines not
    excluded), and affordable from ``points`` in the order asked. Refused ones carry a
    reason; the rest their points, not yet their lines."""
    verdicts = []
    left = points
    for ask in asks:
        reward = catalogue.get(ask.code)
        reason = _reason(ask, reward, card_active, skus, rule_ids, now)
        cost = 0 if reward is None else reward.price * ask.count
        extra: dict[str, int] = {}
        if reason is None and cost > left:
            reason, extra = "insufficient_points", {"balance": left}
        if reason is not None:
            verdicts.append(Verdict(ask, reward, reason, extra=extra))
            continue
        left -= cost
        verdicts.append(Verdict(ask, reward, None, cost))
    return verdicts


def _reason(
    ask: RewardAsk,
    reward: Reward | None,
    card_active: bool,
    skus: Mapping[str, int],
    rule_ids: frozenset[str],
    now: datetime,
) -> str | None:
    if reward is None:
        return "unknown"
    state = reward.state_at(now)
    if state != "active":
        return state
    if reward.max_per_receipt is not None and ask.count > reward.max_per_receipt:
        return "over_limit"
    if not card_active:
        return "card_not_active"
    if reward.kind == "free_product" and skus.get(reward.sku or "", 0) < ask.count * UNIT:
        return "not_applicable"
    if reward.kind == "coupon" and reward.rule_id not in rule_ids:
        return "not_applicable"
    return None


def give(verdicts: Sequence[Verdict], lines: Sequence[LineRoom]) -> list[Verdict]:
    """The discounts the screened rewards give, in the order asked, each on the room the
    ones before it left. A reward that finds no room is refused (``not_applicable``)
    and charges nothing. Every split sums exactly to its total (largest remainder)."""
    room = [0 if line.excluded else line.room for line in lines]
    given = []
    for verdict in verdicts:
        reward = verdict.reward
        if not verdict.redeemed or reward is None or reward.kind == "coupon":
            given.append(verdict)
            continue
        parts = _discounts(reward, verdict.ask.count, lines, room)
        if sum(parts) == 0:
            given.append(Verdict(verdict.ask, reward, "not_applicable"))
            continue
        room = [r - p for r, p in zip(room, parts, strict=True)]
        points = allocate_largest_remainder(verdict.points, parts)
        given.append(
            Verdict(verdict.ask, reward, None, verdict.points, tuple(parts), tuple(points))
        )
    return given


def _discounts(reward: Reward, count: int, lines: Sequence[LineRoom], room: list[int]) -> list[int]:
    """Kopecks off each line: a percent of what the open lines cost after discounts, an
    amount over them in proportion to that cost, or the free units' share of their lines,
    each within the lines' room (a reward bigger than the room gives the room)."""
    costs = [0 if r == 0 else line.cost for line, r in zip(lines, room, strict=True)]
    if reward.kind == "free_product":
        return _free_units(reward.sku or "", count * UNIT, lines, room)
    if reward.kind == "percent_off":
        percent = min(reward.percent_bp * count, BP_SCALE)
        total = sum(line.cost for line in lines if not line.excluded) * percent // BP_SCALE
    else:
        total = reward.amount * count
    total = min(total, sum(room))
    if total == 0:
        return [0] * len(lines)
    return allocate_largest_remainder(total, costs, room)


def _free_units(sku: str, units: int, lines: Sequence[LineRoom], room: list[int]) -> list[int]:
    """``units`` thousandths of ``sku`` free, from its lines in receipt order: each unit at
    what its line costs after discounts (rounded down), within the line's room."""
    parts = [0] * len(lines)
    for i, line in enumerate(lines):
        if units == 0:
            break
        if line.sku != sku or line.excluded or line.quantity == 0:
            continue
        taken = min(units, line.quantity)
        parts[i] = min(line.cost * taken // line.quantity, room[i])
        units -= taken
    return parts


def points_reserved(verdicts: Sequence[Verdict]) -> int:
    """The points the redeemed rewards charge."""
    return sum(v.points for v in verdicts if v.redeemed)


def line_points(verdicts: Sequence[Verdict], count: int) -> list[int]:
    """The rewards' points per line (what a return of the line gives back)."""
    per_line = [0] * count
    for verdict in verdicts:
        for i, points in enumerate(verdict.line_points):
            per_line[i] += points
    return per_line
