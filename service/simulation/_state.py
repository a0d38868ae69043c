"""Card state between kernel calls: the loops a simulation runs around ``_evaluate_batch``.

A chunk of receipts, no card twice in it, goes through three steps: ``_before`` fills
each receipt's card facts (tier, purchase number, active points, points earned today)
from the state the earlier chunks left; the batch kernel evaluates the chunk; ``_after``
writes what each sale did back into the state (points spent from the oldest lots
first, a new lot pending then valid, tier spend) and adds up the outcome.

A card's lots and tier spend are its own receipts in time order, linked by
``next_of_card``: lot ``l`` is what receipt ``l`` earned. ``lot_head[c]`` is the card's
oldest receipt whose lot may still hold points, ``window_head[c]`` its oldest receipt
still in the tier window. Lots are taken oldest first: with the program's one validity
that is the order of their expiry (SPEC §4 item 24).

Times are seconds since the epoch; ``clock[b]`` is when receipt ``b``'s balances are
read (its own time, or one processing time for all).

Stamp cards: ``card_stamps[c, s]`` is card ``c``'s progress on the program's ``s``-th
stamp rule; ``_stamps_before`` gives each receipt its card's row by rule, and
``_stamps_after`` moves it by what the sale added less what its free units used.
"""

# Kernels take their types from the arrays numba sees; annotations would only repeat them.
# mypy: allow-untyped-defs

from __future__ import annotations

import numpy as np

from service.kernels._jit import jit
from service.kernels._layout import (
    F_ACTIVE_POINTS,
    F_EARNED_TODAY,
    F_PURCHASE,
    F_TIER,
    L_AMOUNT,
    L_EXCLUDED,
    O_DISCOUNT,
    O_EARNED,
    O_PAID,
    T_REDEEMED,
    V_AMOUNT,
    V_FREE,
    V_POINTS,
    V_REASON,
    V_RULE,
    V_STAMPS,
)

DAY_S = 86_400
NEVER = np.iinfo(np.int64).max

# state[c, column]
(
    S_LOT_HEAD,
    S_WINDOW_HEAD,
    S_WINDOW_SUM,
    S_PURCHASES,
    S_EARNED_DAY,
    S_EARNED_ON_DAY,
    S_DEBT,  # points a return took back that the card had spent (negative_balance policy)
    S_TIER,  # the tier the card holds (index; -1 below the lowest): the highest reached
) = range(8)
STATE_COLUMNS = 8
# lots[l, column]
LOT_LEFT, LOT_ACTIVATES, LOT_EXPIRES, LOT_EXPIRED, LOT_SPEND = range(5)
LOT_COLUMNS = 5
# per_receipt[b, column]
P_DISCOUNT, P_EARNED, P_REDEEMED, P_PAID, P_TIER_AFTER, P_TOUCHED = range(6)
RECEIPT_COLUMNS = 6
# per_rule[r, column]
R_DISCOUNT, R_POINTS, R_RECEIPTS = range(3)
RULE_COLUMNS = 3
# settings[position]
(
    G_PENDING_S,
    G_VALIDITY_S,  # -1: points never expire
    G_WINDOW_S,  # -1: tier spend counts for good
    # 1: no scheduled job runs between the sales (one balance time for all, a ledger sent
    # the period late): a card keeps the tier it reached though a return lowers its spend
    # (unless the program moves it down at the return); 0: the tier its spend reaches at
    # each sale, as if the scheduled downgrade had run before it
    G_KEEP_TIER,
) = range(4)


@jit
def _tier_reached(thresholds, spend):
    """Index of the highest tier whose threshold ``spend`` reaches; -1 below the lowest."""
    reached = -1
    for k in range(thresholds.shape[0]):
        if spend >= thresholds[k]:
            reached = k
    return reached


@jit
def _active_points(state, lots, next_of_card, c, b, now):
    """The card's points spendable at ``now`` (lots of its receipts before ``b``); lots
    found expired are closed (their points counted in ``LOT_EXPIRED``)."""
    active = 0
    lot = state[c, S_LOT_HEAD]
    while lot != b:
        left = lots[lot, LOT_LEFT]
        if left > 0:
            if lots[lot, LOT_EXPIRES] <= now:
                lots[lot, LOT_EXPIRED] += left
                lots[lot, LOT_LEFT] = 0
            elif lots[lot, LOT_ACTIVATES] <= now:
                active += left
        lot = next_of_card[lot]
    head = state[c, S_LOT_HEAD]
    while head != b and lots[head, LOT_LEFT] == 0:
        head = next_of_card[head]
    state[c, S_LOT_HEAD] = head
    return active


@jit
def _window_spend(state, lots, next_of_card, occurred, c, b, now, window_s):
    """The card's tier spend within the window ending at ``now``."""
    if window_s >= 0:
        head = state[c, S_WINDOW_HEAD]
        while head != b and occurred[head] < now - window_s:
            state[c, S_WINDOW_SUM] -= lots[head, LOT_SPEND]
            head = next_of_card[head]
        state[c, S_WINDOW_HEAD] = head
    return state[c, S_WINDOW_SUM]


@jit
def _before(
    start, end, card, occurred, clock, next_of_card, state, lots, thresholds, settings, facts
):
    """Fill the card facts of receipts ``start:end`` (``facts`` holds their rows)."""
    for b in range(start, end):
        c = card[b]
        if c < 0:
            continue
        now = clock[b]
        if state[c, S_LOT_HEAD] < 0:  # the card's first receipt
            state[c, S_LOT_HEAD] = b
            state[c, S_WINDOW_HEAD] = b
        row = facts[b - start]
        spend = _window_spend(state, lots, next_of_card, occurred, c, b, now, settings[G_WINDOW_S])
        row[F_TIER] = _tier_reached(thresholds, spend)
        if settings[G_KEEP_TIER] == 1:
            row[F_TIER] = max(row[F_TIER], state[c, S_TIER])
        row[F_PURCHASE] = state[c, S_PURCHASES] + 1
        # the balance: active points less the debt, never below zero (spendable_points)
        active = _active_points(state, lots, next_of_card, c, b, now) - state[c, S_DEBT]
        row[F_ACTIVE_POINTS] = max(active, 0)
        row[F_EARNED_TODAY] = (
            state[c, S_EARNED_ON_DAY] if state[c, S_EARNED_DAY] == now // DAY_S else 0
        )


@jit
def _spend_points(state, lots, next_of_card, c, b, now, points, spent_ptr, spent):
    """Take ``points`` from the card's active lots, oldest first; where receipt ``b`` has
    room in ``spent`` (a sale a return reaches later), each lot and what it gave, in order
    (``spent[spent_ptr[b]:spent_ptr[b + 1]]``, rows ``(lot, points)``, -1 after the last)."""
    lot = state[c, S_LOT_HEAD]
    row = spent_ptr[b]
    while points > 0 and lot != b:
        left = lots[lot, LOT_LEFT]
        if left > 0 and lots[lot, LOT_ACTIVATES] <= now < lots[lot, LOT_EXPIRES]:
            taken = min(left, points)
            lots[lot, LOT_LEFT] = left - taken
            points -= taken
            if row < spent_ptr[b + 1]:
                spent[row, 0] = lot
                spent[row, 1] = taken
                row += 1
        lot = next_of_card[lot]
    if row < spent_ptr[b + 1]:
        spent[row, 0] = -1


@jit
def _after(
    start, end, card, occurred, clock, next_of_card, state, lots, thresholds, settings,
    line_ptr, lines, facts, written, has_budget, budget_used, per_receipt, per_rule,
    spent_ptr, spent,
):  # fmt: skip
    """Write what receipts ``start:end`` did into the state and the outcome.

    ``written`` is the batch kernel's output tuple for the chunk (``BatchOutputs``' order);
    ``line_ptr`` and ``lines`` the chunk's own."""
    line_out, verdicts, verdict_ptr, _applied, _applied_ptr, totals = written
    for b in range(start, end):
        k = b - start
        discount = earned = paid = spend = 0
        for i in range(line_ptr[k], line_ptr[k + 1]):
            discount += line_out[i, O_DISCOUNT]
            earned += line_out[i, O_EARNED]
            paid += line_out[i, O_PAID]
            if lines[i, L_EXCLUDED] == 0:
                spend += lines[i, L_AMOUNT] - line_out[i, O_DISCOUNT]
        redeemed = totals[k, T_REDEEMED]
        out = per_receipt[b]
        out[P_DISCOUNT] = discount
        out[P_EARNED] = earned
        out[P_REDEEMED] = redeemed
        out[P_PAID] = paid
        out[P_TOUCHED] = 0
        out[P_TIER_AFTER] = -1
        for v in range(verdict_ptr[k], verdict_ptr[k + 1]):
            if verdicts[v, V_REASON] != 0:
                continue
            r = verdicts[v, V_RULE]
            per_rule[r, R_DISCOUNT] += verdicts[v, V_AMOUNT]
            per_rule[r, R_POINTS] += verdicts[v, V_POINTS]
            per_rule[r, R_RECEIPTS] += 1
            if has_budget[r]:
                budget_used[r] += verdicts[v, V_AMOUNT] + verdicts[v, V_POINTS]
            out[P_TOUCHED] = 1
        c = card[b]
        if c < 0:
            continue
        _settle_card(
            state, lots, next_of_card, occurred, clock, settings, c, b, redeemed, earned, spend,
            spent_ptr, spent,
        )  # fmt: skip
        tier_before = facts[k, F_TIER]
        out[P_TIER_AFTER] = max(tier_before, _tier_reached(thresholds, state[c, S_WINDOW_SUM]))
        state[c, S_TIER] = out[P_TIER_AFTER]


@jit
def _settle_card(
    state, lots, next_of_card, occurred, clock, settings, c, b, redeemed, earned, spend,
    spent_ptr, spent,
):  # fmt: skip
    """The card after sale ``b``: points spent, the new lot (less the debt it repays, as
    the ledger's commit does), tier spend, counters."""
    now = clock[b]
    _spend_points(state, lots, next_of_card, c, b, now, redeemed, spent_ptr, spent)
    repay = min(state[c, S_DEBT], earned)
    state[c, S_DEBT] -= repay
    lot = lots[b]
    lot[LOT_LEFT] = earned - repay
    lot[LOT_ACTIVATES] = occurred[b] + settings[G_PENDING_S]
    validity = settings[G_VALIDITY_S]
    lot[LOT_EXPIRES] = NEVER
    if validity >= 0:
        lot[LOT_EXPIRES] = lot[LOT_ACTIVATES] + validity
        if lot[LOT_EXPIRES] <= now:  # a late receipt's points never arrive expired
            lot[LOT_EXPIRES] = now + validity
    lot[LOT_SPEND] = spend
    state[c, S_WINDOW_SUM] += spend
    state[c, S_PURCHASES] += 1
    day = now // DAY_S
    if state[c, S_EARNED_DAY] != day:
        state[c, S_EARNED_DAY] = day
        state[c, S_EARNED_ON_DAY] = 0
    state[c, S_EARNED_ON_DAY] += earned


@jit
def _stamped_receipts(start, end, card, card_stamps):
    """How many of receipts ``start:end`` have a card holding stamps."""
    count = 0
    for b in range(start, end):
        c = card[b]
        if c >= 0:
            for s in range(card_stamps.shape[1]):
                if card_stamps[c, s] != 0:
                    count += 1
                    break
    return count


@jit
def _stamps_before(start, end, card, card_stamps, stamp_rules, rows, index):
    """Receipt ``b``'s card's stamps by rule: ``rows[index[b - start]]`` (row 0: none).
    ``rows`` has a row for each receipt ``_stamped_receipts`` counts, zero but in the
    stamp rules' columns."""
    used = 1
    for b in range(start, end):
        k = b - start
        index[k] = 0
        c = card[b]
        if c < 0:
            continue
        holds = False
        for s in range(stamp_rules.shape[0]):
            if card_stamps[c, s] != 0:
                holds = True
        if holds:
            for s in range(stamp_rules.shape[0]):
                rows[used, stamp_rules[s]] = card_stamps[c, s]
            index[k] = used
            used += 1


@jit
def _stamps_after(start, end, card, written, stamp_slot, stamp_every, card_stamps):
    """Each card's stamps after its sale in ``start:end``: the stamps it added, less
    ``every`` for each free unit it gave."""
    verdicts, verdict_ptr = written[1], written[2]
    for b in range(start, end):
        c = card[b]
        if c < 0:
            continue
        k = b - start
        for v in range(verdict_ptr[k], verdict_ptr[k + 1]):
            r = verdicts[v, V_RULE]
            s = stamp_slot[r]
            if s >= 0:
                card_stamps[c, s] += verdicts[v, V_STAMPS] - verdicts[v, V_FREE] * stamp_every[r]
