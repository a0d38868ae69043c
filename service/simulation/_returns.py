"""Returns in a simulation: what the ledger's ``POST /v1/refund`` does to a card, applied
between kernel calls (``service.usecases.refund``, ``storage/postgres/refunds.py``).

The amounts are ``service.domain.reversal``'s, line by line, exactly as the ledger
reverses them: ``reverse`` over the sale's lines as the kernel evaluated them (amount,
discount, kopecks paid with points, final amount, points earned) and the points it
redeemed. On the card, in the ledger's order:

- the earned points taken back come from the sale's own lot first, then from the card's
  other active lots, oldest first; what no lot holds is settled by the program's
  ``refund_spent_policy`` (``settle_shortfall``): debt, repaid from the next accruals
  and counted against the balance until then;
- a sale returned whole no longer counts as a purchase;
- the redeemed points given back go to the lots the sale took them from, the last one
  first (the lots a sale spent from are recorded by ``_state._spend_points`` for the
  sales a return reaches);
- the tier spend taken back lowers the card's spend at once; the tier it holds moves
  down then only where the program says ``tiers.downgrade: on_return``, else at the
  scheduled downgrade (``_state.G_KEEP_TIER``: with one balance time for all, never
  within the period; otherwise before the card's next sale). The ledger dates it at the
  return; here it is booked on the card's last receipt at or before the return, so it
  leaves the tier window with that receipt (the same as the ledger's but for a return
  made long after its card's last sale, near the window's edge).

A return applies after the card's last receipt at or before its time (``anchors``) and
before the card's next one; with one balance time for all (``balances_as_of``) it reads
the lots at that time, as the ledger that is sent the period late does.
- the campaign budgets the sale used give back what ``budget_back`` says (in proportion
  to the goods returned, all of it once everything is), as the ledger's refund does;
- a sale returned whole takes back what it moved on the card's stamp cards (the stamps
  it added go, those its free units used come back), as the ledger's cancel does.

Not reversed: welcome and referral points (not simulated).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from service.domain.reversal import SoldLine, budget_back, reverse, settle_shortfall
from service.kernels._layout import L_AMOUNT, L_QUANTITY, O_DISCOUNT, O_EARNED, O_FINAL, O_PAID
from service.simulation import _state
from service.simulation.receipts import ReceiptSet, Returns

IntArray = npt.NDArray[np.int64]

# per_return[k, column], a row per return (``Returns.refund``)
(
    RT_MONEY,  # kopecks the customer paid in money for what went back
    RT_POINTS_BACK,  # redeemed points given back to the card
    RT_POINTS_TAKEN,  # earned points taken back (from lots or as debt)
    RT_DEBT,  # of those, points the card's lots did not hold
    RT_TIER_SPEND,  # kopecks of tier spend taken back
) = range(5)
RETURN_COLUMNS = 5


@dataclass
class BudgetUses:
    """The campaign budgets' running use (``budget_used``, per rule, shared with the
    loop), what each returned sale used of them (sale -> [(rule, used)]) and what its
    returns have given back so far ((sale, rule) -> given)."""

    budget_used: IntArray
    used: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    given: dict[tuple[int, int], int] = field(default_factory=dict)

    def give_back(self, sale: int, lines: tuple[SoldLine, ...], returned: dict[str, int]) -> None:
        for rule, used in self.used.get(sale, ()):
            total = budget_back(used, lines, returned)
            before = self.given.get((sale, rule), 0)
            self.budget_used[rule] -= total - before
            self.given[(sale, rule)] = total


@dataclass
class StampMoves:
    """Each card's stamp cards (``card_stamps``, shared with the loop: ``_state``'s
    docstring) and what each sale that a return reaches moved on them (sale -> [(stamp
    slot, change)])."""

    card_stamps: IntArray
    moved: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def take_back(self, sale: int, card: int) -> None:
        """The sale, returned whole, no longer moves its card's stamps."""
        for slot, change in self.moved.pop(sale, ()):
            self.card_stamps[card, slot] -= change


@dataclass(frozen=True)
class Plan:
    """The returns in processing order: ``refunds`` holds each return's rows of
    ``Returns`` (sale, line, quantity in processing order), ``anchor`` the processing
    index after which it applies, ``at`` its time; sorted by anchor, then time.
    ``spent_ptr`` gives each receipt its room to record the lots it spends from."""

    anchor: IntArray
    at: IntArray
    sale: IntArray
    rows: list[tuple[IntArray, IntArray]]  # per return: (lines, quantities)
    number: IntArray  # the return's ``Returns.refund``
    spent_ptr: IntArray


def plan(processing: ReceiptSet, next_of_card: IntArray) -> Plan:
    """Where each return of ``processing.returns`` applies (``next_of_card`` links each
    card's receipts in processing order, which keeps every card's time order)."""
    returns: Returns = processing.returns
    size = len(processing)
    if not len(returns):
        empty = np.zeros(0, dtype=np.int64)
        return Plan(empty, empty, empty, [], empty, np.zeros(size + 1, dtype=np.int64))
    numbers, first = np.unique(returns.refund, return_index=True)
    sale = returns.sale[first]
    at = returns.at[first]
    anchor = sale.copy()
    occurred = processing.occurred
    for k in range(len(anchor)):  # the card's last receipt at or before the return
        if processing.card[sale[k]] < 0:
            continue
        following = next_of_card[anchor[k]]
        while following >= 0 and occurred[following] <= at[k]:
            anchor[k] = following
            following = next_of_card[following]
    order = np.lexsort((at, anchor))
    rows = []
    for k in order.tolist():
        mine = returns.refund == numbers[k]
        rows.append((returns.line[mine], returns.quantity[mine]))
    # room for the lots a returned sale spends from: at most its card's earlier receipts
    rank = _rank_in_card(processing.card, next_of_card)
    room = np.zeros(size, dtype=np.int64)
    returned = np.unique(sale)
    room[returned] = rank[returned] + 1
    spent_ptr = np.r_[0, np.cumsum(room)].astype(np.int64)
    return Plan(anchor[order], at[order], sale[order], rows, numbers[order], spent_ptr)


def _rank_in_card(card: IntArray, next_of_card: IntArray) -> IntArray:
    """Each receipt's number of earlier receipts of its card."""
    rank = np.zeros(len(card), dtype=np.int64)
    has_previous = np.zeros(len(card), dtype=bool)
    linked = next_of_card[next_of_card >= 0]
    has_previous[linked] = True
    for head in np.flatnonzero((card >= 0) & ~has_previous).tolist():
        k, b = 0, head
        while b >= 0:
            rank[b] = k
            k += 1
            b = int(next_of_card[b])
    return rank


class Applier:
    """Applies the returns anchored in each chunk once the chunk is written."""

    def __init__(
        self,
        returns_plan: Plan,
        receipts: ReceiptSet,
        lines: IntArray,
        line_out: IntArray,
        per_receipt: IntArray,
        clock: IntArray,
        balances_fixed: bool,
        policy: str,
        point_value: int,
        thresholds: tuple[int, ...] = (),
        down_on_return: bool = False,
    ) -> None:
        self.plan = returns_plan
        self.receipts, self.lines, self.line_out = receipts, lines, line_out
        self.per_receipt, self.clock = per_receipt, clock
        self.balances_fixed, self.policy, self.point_value = balances_fixed, policy, point_value
        self.thresholds, self.down_on_return = list(thresholds), down_on_return
        self.next = 0
        self.returned: dict[int, dict[str, int]] = {}
        self.per_return = np.zeros((len(returns_plan.anchor), RETURN_COLUMNS), dtype=np.int64)

    def through(
        self,
        end: int,
        state: IntArray,
        lots: IntArray,
        next_of_card: IntArray,
        spent: IntArray,
        budgets: BudgetUses | None = None,
        stamps: StampMoves | None = None,
    ) -> None:
        """Apply the returns anchored before processing index ``end``."""
        anchors = self.plan.anchor
        while self.next < len(anchors) and anchors[self.next] < end:
            self._apply(self.next, state, lots, next_of_card, spent, budgets, stamps)
            self.next += 1

    def _sold(self, sale: int) -> tuple[SoldLine, ...]:
        first, last = int(self.receipts.line_ptr[sale]), int(self.receipts.line_ptr[sale + 1])
        rows = self.lines[first:last].tolist()
        out = self.line_out[first:last].tolist()
        return tuple(
            SoldLine(
                str(first + i), row[L_QUANTITY], row[L_AMOUNT], o[O_DISCOUNT], o[O_PAID],
                o[O_FINAL], o[O_EARNED],
            )
            for i, (row, o) in enumerate(zip(rows, out, strict=True))
        )  # fmt: skip

    def _apply(
        self,
        k: int,
        state: IntArray,
        lots: IntArray,
        next_of_card: IntArray,
        spent: IntArray,
        budgets: BudgetUses | None,
        stamps: StampMoves | None = None,
    ) -> None:
        p = self.plan
        sale, anchor = int(p.sale[k]), int(p.anchor[k])
        line_ids, quantities = p.rows[k]
        asked: dict[str, int] = {}
        for line, quantity in zip(line_ids.tolist(), quantities.tolist(), strict=True):
            asked[str(line)] = asked.get(str(line), 0) + quantity
        returned = self.returned.setdefault(sale, {})
        redeemed = int(self.per_receipt[sale, _state.P_REDEEMED])
        sold = self._sold(sale)
        reversal = reverse(sold, redeemed, returned, asked)
        for line in reversal.lines:
            returned[line.line_id] = returned.get(line.line_id, 0) + line.quantity
        if budgets is not None:
            budgets.give_back(sale, sold, returned)
        row = self.per_return[k]
        row[RT_MONEY] = reversal.money
        row[RT_POINTS_BACK] = reversal.points_paid_back
        row[RT_POINTS_TAKEN] = reversal.points_earned_back
        row[RT_TIER_SPEND] = reversal.tier_spend
        c = int(self.receipts.card[sale])
        if c < 0:
            return
        now = int(self.clock[anchor]) if self.balances_fixed else int(p.at[k])
        missing = _take_back(state, lots, next_of_card, c, sale, anchor, now,
                             reversal.points_earned_back)  # fmt: skip
        if reversal.complete:
            state[c, _state.S_PURCHASES] = max(state[c, _state.S_PURCHASES] - 1, 0)
            if stamps is not None:
                stamps.take_back(sale, c)
        _give_back(state, lots, c, sale, self.plan.spent_ptr, spent, reversal.points_paid_back)
        shortfall = settle_shortfall(self.policy, missing, reversal.money, self.point_value)
        state[c, _state.S_DEBT] += shortfall.debt
        row[RT_DEBT] = shortfall.debt
        lots[anchor, _state.LOT_SPEND] -= reversal.tier_spend
        state[c, _state.S_WINDOW_SUM] -= reversal.tier_spend
        if self.down_on_return and reversal.tier_spend:  # tiers.downgrade: on_return
            reached = bisect.bisect_right(self.thresholds, int(state[c, _state.S_WINDOW_SUM])) - 1
            state[c, _state.S_TIER] = min(int(state[c, _state.S_TIER]), reached)


def _take_back(
    state: IntArray,
    lots: IntArray,
    next_of_card: IntArray,
    c: int,
    sale: int,
    anchor: int,
    now: int,
    points: int,
) -> int:
    """Take ``points`` from the sale's own lot, then from the card's active lots oldest
    first (``loyalty_take_points``); the points no lot held."""
    own = min(int(lots[sale, _state.LOT_LEFT]), points)
    lots[sale, _state.LOT_LEFT] -= own
    left = points - own
    lot = int(state[c, _state.S_LOT_HEAD])
    while left > 0 and 0 <= lot <= anchor:
        have = int(lots[lot, _state.LOT_LEFT])
        if have > 0 and lots[lot, _state.LOT_ACTIVATES] <= now < lots[lot, _state.LOT_EXPIRES]:
            taken = min(have, left)
            lots[lot, _state.LOT_LEFT] = have - taken
            left -= taken
        lot = int(next_of_card[lot])
    return left


def _give_back(
    state: IntArray,
    lots: IntArray,
    c: int,
    sale: int,
    spent_ptr: IntArray,
    spent: IntArray,
    points: int,
) -> None:
    """Give ``points`` back to the lots the sale spent from, the last one first."""
    if points == 0:
        return
    taken_rows = []
    for r in range(int(spent_ptr[sale]), int(spent_ptr[sale + 1])):
        if spent[r, 0] < 0:  # after the last lot the sale took from
            break
        taken_rows.append(r)
    for r in reversed(taken_rows):
        if points == 0:
            break
        lot, out = int(spent[r, 0]), int(spent[r, 1])
        give = min(out, points)
        if give <= 0:
            continue
        lots[lot, _state.LOT_LEFT] += give
        spent[r, 1] = out - give
        points -= give
        # the lot may lie behind the card's first open lot: walk from it again
        state[c, _state.S_LOT_HEAD] = min(int(state[c, _state.S_LOT_HEAD]), lot)
