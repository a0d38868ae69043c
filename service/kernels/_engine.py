"""The numba twin of ``reference``: the same phases over plain arrays.

Each function mirrors the reference method of the same name; where the reference
builds a list, these fill an array they are given. ``_evaluate`` takes the program's
arrays as one ``ProgramArrays`` and the receipt's as one ``ReceiptArrays``; the kernels
it calls take the arrays they read (the groups below say why). Reasons are the integer
codes of ``service.rules.codes.REASONS``; a negative number returned where an amount
is expected is a reason, negated.
"""

# Kernels take their types from the arrays numba sees; annotations would only repeat them.
# mypy: allow-untyped-defs

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.kernels._allocation import _allocate, _divide_rounded, _spread
from service.kernels._jit import jit, jit_inline
from service.kernels._layout import (
    A_AMOUNT,
    A_LINE,
    A_RULE,
    F_ACTIVE_POINTS,
    F_BIRTHDAY,
    F_CARD,
    F_CARD_REASON,
    F_CHANNEL,
    F_DATE,
    F_EARNED_TODAY,
    F_HOLIDAY,
    F_LOYALTY_SUBTOTAL,
    F_MINUTE,
    F_PAYMENT,
    F_PERSONAL,
    F_PICKUP,
    F_PURCHASE,
    F_REDEEM,
    F_REDEEM_MAX,
    F_TIER,
    F_WEEKDAY,
    L_AMOUNT,
    L_BRAND,
    L_CATEGORY,
    L_EXCLUDED,
    L_PRICE,
    L_QUANTITY,
    L_SKU,
    O_DISCOUNT,
    O_EARNED,
    O_FINAL,
    O_PAID,
    T_APPLIED,
    T_REDEEMABLE,
    T_REDEEMED,
    T_VERDICTS,
    V_AMOUNT,
    V_FREE,
    V_POINTS,
    V_REASON,
    V_RULE,
    V_STAMPS,
    FlagArray,
    IntArray,
    Outputs,
    ReceiptArrays,
)
from service.rules.codes import EFFECT_CODES, REASON_CODES, STACKING_CODES
from service.rules.compiler import (
    C_BIRTHDAY,
    C_CHANNELS,
    C_DATE_FROM,
    C_DATE_TO,
    C_HOLIDAY,
    C_HOUR_FROM,
    C_HOUR_TO,
    C_MIN_QUANTITY,
    C_MIN_SUBTOTAL,
    C_NEEDS_CARD,
    C_PAYMENTS,
    C_PICKUP,
    C_PN_EQUALS,
    C_PN_EVERY,
    C_PROMO,
    C_REQ_END,
    C_REQ_START,
    C_SEG_END,
    C_SEG_START,
    C_TIERS,
    C_WEEKDAYS,
    Q_KEY_END,
    Q_KEY_START,
    Q_MIN_AMOUNT,
    Q_MIN_QUANTITY,
    R_BASIS,
    R_BUDGET,
    R_EVERY,
    R_FLAG,
    R_GROUP,
    R_KIND,
    R_MAX,
    R_MODE,
    R_N,
    R_STEP_END,
    R_STEP_START,
    R_VALUE,
    S_BASE_RATE,
    S_MAX_DAY,
    S_MAX_RECEIPT,
    S_MAX_REDEEM,
    S_MAX_SHARE,
    S_MIN_BALANCE,
    S_MIN_LINE,
    S_MIN_RECEIPT,
    S_POINT_VALUE,
    S_ROUNDING,
    ProgramArrays,
)

OVERFLOW = -1  # an output buffer is too small: the caller grows it and calls again

_PERCENT = EFFECT_CODES["percent"]
_AMOUNT = EFFECT_CODES["amount"]
_FIXED_PRICE = EFFECT_CODES["fixed_price"]
_NTH_ITEM = EFFECT_CODES["nth_item"]
_BUNDLE = EFFECT_CODES["bundle"]
_QUANTITY_STEPS = EFFECT_CODES["quantity_steps"]
_TIER_DISCOUNT = EFFECT_CODES["tier_discount"]
_PERSONAL_DISCOUNT = EFFECT_CODES["personal_discount"]
_CHEAPEST = EFFECT_CODES["cheapest"]
_STAMPS = EFFECT_CODES["stamps"]
_LAST_DISCOUNT = EFFECT_CODES["stamps"]
_ACCRUAL_RATE = EFFECT_CODES["accrual_rate"]
_POINTS_MULTIPLIER = EFFECT_CODES["points_multiplier"]
_POINTS_PER_UNIT = EFFECT_CODES["points_per_unit"]
_BONUS_POINTS = EFFECT_CODES["bonus_points"]
_LAST_EARNING = EFFECT_CODES["bonus_points"]
_NO_EARN = EFFECT_CODES["no_earn"]
_NO_PAY = EFFECT_CODES["no_pay_with_points"]
_EXCLUSIVE = STACKING_CODES["exclusive"]
_BEST_OF = STACKING_CODES["best_of"]
_COMPOUNDING = STACKING_CODES["compounding"]

_CHANNEL = REASON_CODES["channel"]
_PAYMENT_METHOD = REASON_CODES["payment_method"]
_PICKUP = REASON_CODES["pickup"]
_OUTSIDE_DATES = REASON_CODES["outside_dates"]
_WEEKDAY = REASON_CODES["weekday"]
_OUTSIDE_HOURS = REASON_CODES["outside_hours"]
_HOLIDAY = REASON_CODES["holiday"]
_TIER = REASON_CODES["tier"]
_SEGMENT = REASON_CODES["segment"]
_NOT_BIRTHDAY = REASON_CODES["not_birthday"]
_PURCHASE_NUMBER = REASON_CODES["purchase_number"]
_PROMO_CODE_MISSING = REASON_CODES["promo_code_missing"]
_BELOW_THRESHOLD = REASON_CODES["below_threshold"]
_BUDGET_EXHAUSTED = REASON_CODES["budget_exhausted"]
_USES_EXHAUSTED = REASON_CODES["uses_exhausted"]
_REQUIRES_NOT_MET = REASON_CODES["requires_not_met"]
_NO_MATCHING_LINES = REASON_CODES["no_matching_lines"]
_BELOW_QUANTITY = REASON_CODES["below_quantity"]
_BLOCKED_BY_EXCLUSIVE = REASON_CODES["blocked_by_exclusive"]
_ALREADY_DISCOUNTED = REASON_CODES["already_discounted"]
_AT_FLOOR = REASON_CODES["at_floor"]
_ZERO_AMOUNT = REASON_CODES["zero_amount"]
_BEATEN_IN_GROUP = REASON_CODES["beaten_in_group"]
_NO_PERSONAL_DISCOUNT = REASON_CODES["no_personal_discount"]
_POINTS_CAP = REASON_CODES["points_cap"]
_NOT_ENOUGH_STAMPS = REASON_CODES["not_enough_stamps"]

_BP = 10_000
_MILLI = 1_000

BoolArray = npt.NDArray[np.bool_]


# -- groups of arrays --------------------------------------------------------------
#
# Inside the engine each kernel takes the arrays it reads, grouped where they travel
# together. Not the whole ProgramArrays and ReceiptArrays: numba increfs and decrefs
# every array of every argument on each call, and kernels called once per candidate
# rule with those 18 arrays took the kernel from 71 to 134 µs on the 1,000-rule,
# 30-line benchmark receipt (2-core dev box). For the same reason the small checks run
# per candidate are compiled into their callers (``jit_inline``), and ``_discount_shares``
# and the plans read the groups' fields where they use them instead of naming them
# first (that receipt's kernel: 77 µs of CPU with the names, 73 without).


class _Conditions(NamedTuple):
    """What a rule's receipt-level conditions read."""

    table: IntArray
    segment_ids: IntArray
    budget_used: IntArray
    facts: IntArray
    segments: FlagArray
    unlocked: IntArray
    lines: IntArray  # the receipt's (``requires`` reads them)
    requirements: IntArray
    requirement_keys: IntArray
    discounts: IntArray  # given so far (``threshold_basis: after_discounts`` reads them)
    stamps: IntArray  # by rule: the card's stamps (stamp rules read them)


class _Rates(NamedTuple):
    """What a percent-type effect reads besides the rule's row."""

    step_from: IntArray
    step_bp: IntArray
    tier_discount_bp: IntArray


class _Discounting(NamedTuple):
    """A receipt's lines while discounts are given (per line but ``incl``)."""

    incl: FlagArray  # incl[i, k] = 1: candidate k's target takes line i
    discounts: IntArray  # given so far
    floors: IntArray  # what the line keeps at least
    locked: BoolArray  # an exclusive rule discounted the line: nothing else may
    no_skip: BoolArray  # all False: ``_matched`` skipping nothing


class _Plan(NamedTuple):
    """A discount's lines still open to it and, for each, its base amount, its room
    above the floor, and the effect's weight and cap (``_effect_plan`` fills these)."""

    available: IntArray
    base: IntArray
    room: IntArray
    weights: IntArray
    caps: IntArray


# -- candidates ------------------------------------------------------------------


@jit
def _candidates(lines, inc_ptr, inc_rules, all_rules, store_mask, mark, out):
    """Rules the store admits whose target names a line's SKU, category or brand, or every line."""
    count = 0
    for i in range(lines.shape[0]):
        for column in (L_SKU, L_CATEGORY, L_BRAND):
            key = lines[i, column]
            if key < 0:
                continue
            for j in range(inc_ptr[key], inc_ptr[key + 1]):
                r = inc_rules[j]
                if store_mask[r] and not mark[r]:
                    mark[r] = 1
                    out[count] = r
                    count += 1
    for j in range(all_rules.shape[0]):
        r = all_rules[j]
        if store_mask[r] and not mark[r]:
            mark[r] = 1
            out[count] = r
            count += 1
    out[:count].sort()
    return count


@jit
def _target_matrix(lines, inc_ptr, inc_rules, exc_ptr, exc_rules, all_rules, mark, position, incl):
    """incl[i, k] = 1 when candidate k's target takes line i (named, not excluded)."""
    for i in range(lines.shape[0]):
        for column in (L_SKU, L_CATEGORY, L_BRAND):
            key = lines[i, column]
            if key >= 0:
                for j in range(inc_ptr[key], inc_ptr[key + 1]):
                    if mark[inc_rules[j]]:
                        incl[i, position[inc_rules[j]]] = 1
        for j in range(all_rules.shape[0]):
            if mark[all_rules[j]]:
                incl[i, position[all_rules[j]]] = 1
        for column in (L_SKU, L_CATEGORY, L_BRAND):
            key = lines[i, column]
            if key >= 0:
                for j in range(exc_ptr[key], exc_ptr[key + 1]):
                    if mark[exc_rules[j]]:
                        incl[i, position[exc_rules[j]]] = 0


# -- conditions ------------------------------------------------------------------


@jit_inline
def _in_hours(minute, start, end):
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


@jit_inline
def _time_condition_failure(row, facts):
    if row[C_CHANNELS] and not row[C_CHANNELS] & facts[F_CHANNEL]:
        return _CHANNEL
    if row[C_PAYMENTS] and not row[C_PAYMENTS] & facts[F_PAYMENT]:
        return _PAYMENT_METHOD
    if row[C_PICKUP] >= 0 and row[C_PICKUP] != facts[F_PICKUP]:
        return _PICKUP
    if not row[C_DATE_FROM] <= facts[F_DATE] <= row[C_DATE_TO]:
        return _OUTSIDE_DATES
    if row[C_WEEKDAYS] and not (row[C_WEEKDAYS] >> facts[F_WEEKDAY]) & 1:
        return _WEEKDAY
    if row[C_HOUR_FROM] >= 0 and not _in_hours(facts[F_MINUTE], row[C_HOUR_FROM], row[C_HOUR_TO]):
        return _OUTSIDE_HOURS
    if row[C_HOLIDAY] >= 0 and row[C_HOLIDAY] != facts[F_HOLIDAY]:
        return _HOLIDAY
    return 0


@jit_inline
def _card_condition_failure(row, facts, card_segments, segment_ids):
    tier = facts[F_TIER]
    if row[C_TIERS] and (tier < 0 or not (row[C_TIERS] >> tier) & 1):
        return _TIER
    if row[C_SEG_START] < row[C_SEG_END]:
        found = False
        for j in range(row[C_SEG_START], row[C_SEG_END]):
            if card_segments[segment_ids[j]]:
                found = True
        if not found:
            return _SEGMENT
    days = row[C_BIRTHDAY]
    if days >= 0 and not 0 <= facts[F_BIRTHDAY] <= days:
        return _NOT_BIRTHDAY
    number = facts[F_PURCHASE]
    if row[C_PN_EQUALS] > 0 and number != row[C_PN_EQUALS]:
        return _PURCHASE_NUMBER
    if row[C_PN_EVERY] > 0 and number % row[C_PN_EVERY] != 0:
        return _PURCHASE_NUMBER
    return 0


@jit_inline
def _holds(need, keys, lines):
    """The receipt's lines (not excluded) naming one of the requirement's keys hold its
    minimum quantity and amount, before discounts."""
    quantity = 0
    amount = 0
    for i in range(lines.shape[0]):
        if lines[i, L_EXCLUDED]:
            continue
        hit = False
        for column in (L_SKU, L_CATEGORY, L_BRAND):
            key = lines[i, column]
            if key >= 0:
                for j in range(need[Q_KEY_START], need[Q_KEY_END]):
                    if keys[j] == key:
                        hit = True
        if hit:
            quantity += lines[i, L_QUANTITY]
            amount += lines[i, L_AMOUNT]
    return quantity >= need[Q_MIN_QUANTITY] and amount >= need[Q_MIN_AMOUNT]


@jit_inline
def _condition_failure(r, cond):
    """The first receipt-level condition of rule ``r`` that fails; 0 when all hold."""
    row = cond.table[r]
    facts = cond.facts
    if row[C_NEEDS_CARD] and facts[F_CARD] == 0:
        return facts[F_CARD_REASON]
    reason = _time_condition_failure(row, facts)
    if reason == 0:
        reason = _card_condition_failure(row, facts, cond.segments, cond.segment_ids)
    if reason != 0:
        return reason
    if row[C_PROMO]:
        found = False
        unlocked = cond.unlocked
        for j in range(unlocked.shape[0]):
            if unlocked[j] == r:
                found = True
        if not found:
            return _PROMO_CODE_MISSING
    if row[C_MIN_SUBTOTAL] > 0:
        subtotal = facts[F_LOYALTY_SUBTOTAL]
        if row[R_BASIS]:  # what is left after the discounts given so far
            subtotal = 0
            lines, discounts = cond.lines, cond.discounts
            for i in range(lines.shape[0]):
                if not lines[i, L_EXCLUDED]:
                    subtotal += lines[i, L_AMOUNT] - discounts[i]
        if subtotal < row[C_MIN_SUBTOTAL]:
            return _BELOW_THRESHOLD
    for g in range(row[C_REQ_START], row[C_REQ_END]):
        if not _holds(cond.requirements[g], cond.requirement_keys, cond.lines):
            return _REQUIRES_NOT_MET
    if cond.budget_used[r] < 0:  # USES_EXHAUSTED: no use of its caps left (_layout)
        return _USES_EXHAUSTED
    if row[R_BUDGET] >= 0 and row[R_BUDGET] - cond.budget_used[r] <= 0:
        return _BUDGET_EXHAUSTED
    return 0


@jit_inline
def _matched(k, incl, lines, skip, out):
    """Lines candidate ``k`` takes, not excluded by the POS nor flagged in ``skip``."""
    count = np.int64(0)
    for i in range(lines.shape[0]):
        if incl[i, k] and not lines[i, L_EXCLUDED] and not skip[i]:
            out[count] = i
            count += 1
    return count


@jit_inline
def _quantity_failure(r, table, lines, matched, count):
    if count == 0:
        return _NO_MATCHING_LINES
    minimum = table[r, C_MIN_QUANTITY]
    if minimum > 0:
        quantity = 0
        for j in range(count):
            quantity += lines[matched[j], L_QUANTITY]
        if quantity < minimum:
            return _BELOW_QUANTITY
    return 0


# -- discounts -------------------------------------------------------------------


@jit_inline
def _percent(r, table, rates, facts, lines, matched, count, discounts):
    """The rate of a percent-type effect, or a negated reason."""
    kind = table[r, R_KIND]
    if kind == _PERCENT:
        return table[r, R_VALUE]
    if kind == _TIER_DISCOUNT:
        bp = rates.tier_discount_bp[facts[F_TIER]] if facts[F_TIER] >= 0 else 0
        return bp if bp > 0 else -_TIER
    if kind == _PERSONAL_DISCOUNT:
        return facts[F_PERSONAL] if facts[F_PERSONAL] > 0 else -_NO_PERSONAL_DISCOUNT
    column = L_QUANTITY if kind == _QUANTITY_STEPS else L_AMOUNT
    reached = 0
    after = kind != _QUANTITY_STEPS and table[r, R_BASIS] == 1
    for j in range(count):
        reached += lines[matched[j], column] - (discounts[matched[j]] if after else 0)
    rate = -(_BELOW_QUANTITY if kind == _QUANTITY_STEPS else _BELOW_THRESHOLD)
    step_from, step_bp = rates.step_from, rates.step_bp
    for s in range(table[r, R_STEP_START], table[r, R_STEP_END]):
        if step_from[s] <= reached:
            rate = step_bp[s]
    return rate


@jit
def _unit_plan(r, table, lines, plan, owed):
    """n-th item (cheapest units first), bundles (dearest units first), the cheapest
    (or dearest) units, and the ``owed`` free units of a stamp card (cheapest first)."""
    count = plan.available.shape[0]
    kind = table[r, R_KIND]
    bundle = kind == _BUNDLE
    cheapest_first = kind != _BUNDLE and not (kind == _CHEAPEST and table[r, R_FLAG])
    size = table[r, R_N]
    units = 0
    keys = np.empty(count, dtype=np.int64)
    for j in range(count):
        i = plan.available[j]
        units += lines[i, L_QUANTITY] // _MILLI
        keys[j] = lines[i, L_PRICE] if cheapest_first else -lines[i, L_PRICE]
    if kind == _CHEAPEST:
        times = 1 if table[r, R_EVERY] == 0 else units // table[r, R_EVERY]
        groups = min(size * times, units)
    elif kind == _STAMPS:
        groups = min(owed, units)
    else:
        groups = units // size
    if groups == 0:
        return -_BELOW_QUANTITY
    to_take = groups * size if bundle else groups
    total_value = 0
    for j in np.argsort(keys, kind="mergesort"):
        quantity = lines[plan.available[j], L_QUANTITY]
        taken = min(quantity // _MILLI, to_take)
        to_take -= taken
        weight = plan.base[j] * taken * _MILLI // quantity
        plan.weights[j] = weight
        plan.caps[j] = min(weight, plan.room[j])
        total_value += weight
    if not bundle:
        return (total_value * table[r, R_VALUE] + _BP // 2) // _BP
    return max(0, total_value - groups * table[r, R_VALUE])


@jit
def _effect_plan(r, table, rates, facts, lines, matched, m, plan, discounts, owed):
    """Fill the plan's weights and caps; return the total or a negated reason. ``owed``:
    a stamp rule's free units (``_stamps_owed``)."""
    kind = table[r, R_KIND]
    if kind == _FIXED_PRICE:
        total = 0
        price = table[r, R_VALUE]
        for j in range(plan.available.shape[0]):
            quantity = lines[plan.available[j], L_QUANTITY]
            weight = max(0, plan.base[j] - (quantity * price + _MILLI // 2) // _MILLI)
            plan.weights[j] = weight
            plan.caps[j] = min(weight, plan.room[j])
            total += plan.caps[j]
        return total
    if kind == _NTH_ITEM or kind == _BUNDLE or kind == _CHEAPEST or kind == _STAMPS:  # noqa: SIM109 (plain compares compile simplest)
        return _unit_plan(r, table, lines, plan, owed)
    plan.weights[:] = plan.base
    plan.caps[:] = plan.room
    if kind == _AMOUNT:
        return table[r, R_VALUE]
    bp = _percent(r, table, rates, facts, lines, matched, m, discounts)
    if bp < 0:
        return bp
    return (plan.base.sum() * bp + _BP // 2) // _BP


@jit_inline
def _rule_limit(r, table, budget_used, total):
    """``total`` within the rule's per-receipt cap and what is left of its budget."""
    if table[r, R_MAX] >= 0:
        total = min(total, table[r, R_MAX])
    if table[r, R_BUDGET] >= 0:
        total = min(total, table[r, R_BUDGET] - budget_used[r])
    return total


@jit_inline
def _stamps_owed(r, table, stamps, lines, matched, m):
    """A stamp rule's stamps this sale adds (its lines' whole units, or 1 for a receipt
    holding one) and the free units the card is owed with them."""
    units = 0
    for j in range(m):
        units += lines[matched[j], L_QUANTITY] // _MILLI
    added = units if table[r, R_N] == 0 else min(units, 1)
    reached = stamps[r] + added
    owed = reached // table[r, R_EVERY] if reached > 0 else 0
    return added, owed


@jit
def _discount_shares(r, k, cond, rates, lines, state, shares, moves):
    """Rule ``r``'s discount per line into ``shares``; returns 0 or why it gives none.
    A stamp rule's stamps added go to ``moves[0]`` once its conditions hold, the free
    units it gives, if it applies, to ``moves[1]``."""
    n = lines.shape[0]
    shares[:] = 0
    moves[0] = 0
    moves[1] = 0
    matched = np.empty(n, dtype=np.int64)
    m = _matched(k, state.incl, lines, state.no_skip, matched)
    reason = _condition_failure(r, cond)
    if reason == 0:
        reason = _quantity_failure(r, cond.table, lines, matched, m)
    if reason != 0:
        return reason
    owed = 0
    if cond.table[r, R_KIND] == _STAMPS:
        added, owed = _stamps_owed(r, cond.table, cond.stamps, lines, matched, m)
        moves[0] = added
        if owed == 0:
            return _NOT_ENOUGH_STAMPS
    mode = cond.table[r, R_MODE]
    available = np.empty(m, dtype=np.int64)
    count = np.int64(0)
    blocked = False
    open_units = 0
    for j in range(m):
        i = matched[j]
        if state.locked[i]:
            blocked = True
        elif not (mode == _EXCLUSIVE and state.discounts[i] > 0):
            available[count] = i
            count += 1
            open_units += lines[i, L_QUANTITY] // _MILLI
    if count == 0:
        return _BLOCKED_BY_EXCLUSIVE if blocked else _ALREADY_DISCOUNTED
    base = np.empty(count, dtype=np.int64)
    room = np.empty(count, dtype=np.int64)
    room_sum = 0
    for j in range(count):
        i = available[j]
        given = state.discounts[i]
        base[j] = lines[i, L_AMOUNT] - (given if mode == _COMPOUNDING else 0)
        room[j] = lines[i, L_AMOUNT] - state.floors[i] - given
        room_sum += room[j]
    weights = np.empty(count, dtype=np.int64)
    caps = np.empty(count, dtype=np.int64)
    plan = _Plan(available[:count], base, room, weights, caps)
    total = _effect_plan(
        r, cond.table, rates, cond.facts, lines, matched, m, plan, state.discounts, owed
    )
    if total < 0:
        return -total
    total = _rule_limit(r, cond.table, cond.budget_used, min(total, caps.sum()))
    if total <= 0:
        return _AT_FLOOR if room_sum == 0 else _ZERO_AMOUNT
    alloc = np.empty(count, dtype=np.int64)
    _allocate(total, weights, caps, count, alloc)
    for j in range(count):
        shares[available[j]] = alloc[j]
    moves[1] = min(owed, open_units)
    return 0


@jit
def _give(r, shares, discounts, locked, lock, applied, cursor):
    """Add a rule's shares to the lines; returns the new cursor or OVERFLOW."""
    total = 0
    for i in range(shares.shape[0]):
        if shares[i] > 0:
            if cursor >= applied.shape[0]:
                return OVERFLOW, 0
            discounts[i] += shares[i]
            locked[i] = locked[i] or lock
            applied[cursor, A_LINE] = i
            applied[cursor, A_RULE] = r
            applied[cursor, A_AMOUNT] = shares[i]
            cursor += 1
            total += shares[i]
    return cursor, total


@jit
def _best_of(k, candidates, cond, rates, lines, state, done, verdicts, applied, cursor):
    """Each line takes the largest offer of the group's members; ties: the higher priority."""
    table, discounts = cond.table, state.discounts
    n = lines.shape[0]
    ncand = candidates.shape[0]
    group = table[candidates[k], R_GROUP]
    members = np.empty(ncand - k, dtype=np.int64)
    count = np.int64(0)
    for j in range(k, ncand):
        if (
            table[candidates[j], R_GROUP] == group
            and table[candidates[j], R_KIND] <= _LAST_DISCOUNT
        ):
            members[count] = j
            count += 1
    offers = np.zeros((count, n), dtype=np.int64)
    reasons = np.empty(count, dtype=np.int64)
    moves = np.zeros((count, 2), dtype=np.int64)
    for m in range(count):
        j = members[m]
        done[j] = True
        reasons[m] = _discount_shares(
            candidates[j], j, cond, rates, lines, state, offers[m], moves[m]
        )
    won = np.zeros(count, dtype=np.int64)
    winner = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        best_amount = 0
        for m in range(count):
            if reasons[m] == 0 and offers[m, i] > best_amount:
                winner[i] = m
                best_amount = offers[m, i]
    for i in range(n):
        m = winner[i]
        if m >= 0:
            if cursor >= applied.shape[0]:
                return OVERFLOW
            discounts[i] += offers[m, i]
            applied[cursor, A_LINE] = i
            applied[cursor, A_RULE] = candidates[members[m]]
            applied[cursor, A_AMOUNT] = offers[m, i]
            cursor += 1
            won[m] += offers[m, i]
    for m in range(count):
        reason = reasons[m]
        if reason == 0 and won[m] == 0:
            reason = _BEATEN_IN_GROUP
        verdicts[members[m], V_REASON] = reason
        verdicts[members[m], V_AMOUNT] = won[m]
        verdicts[members[m], V_STAMPS] = moves[m, 0]
        verdicts[members[m], V_FREE] = moves[m, 1] if reason == 0 else 0
    return cursor


@jit
def _discounts(candidates, cond, rates, lines, state, verdicts, applied):
    """Discount rules in priority order with stacking; returns the applied count or OVERFLOW."""
    table, discounts, locked = cond.table, state.discounts, state.locked
    ncand = candidates.shape[0]
    done = np.zeros(ncand, dtype=np.bool_)
    shares = np.empty(lines.shape[0], dtype=np.int64)
    moves = np.zeros(2, dtype=np.int64)
    cursor = np.int64(0)
    for k in range(ncand):
        r = candidates[k]
        if table[r, R_KIND] > _LAST_DISCOUNT or done[k]:
            continue
        if table[r, R_MODE] == _BEST_OF:
            cursor = _best_of(
                k, candidates, cond, rates, lines, state, done, verdicts, applied, cursor
            )
            if cursor == OVERFLOW:
                return OVERFLOW
            continue
        reason = _discount_shares(r, k, cond, rates, lines, state, shares, moves)
        verdicts[k, V_REASON] = reason
        verdicts[k, V_STAMPS] = moves[0]
        verdicts[k, V_FREE] = moves[1] if reason == 0 else 0
        if reason == 0:
            cursor, total = _give(
                r, shares, discounts, locked, table[r, R_MODE] == _EXCLUSIVE, applied, cursor
            )
            if cursor == OVERFLOW:
                return OVERFLOW
            verdicts[k, V_AMOUNT] = total
    return cursor


# -- restrictions, gifts, delivery -----------------------------------------------------


@jit
def _restrictions(candidates, cond, lines, incl, discounts, no_earn, no_pay, verdicts):
    table = cond.table
    n = lines.shape[0]
    matched = np.empty(n, dtype=np.int64)
    discounted_skip = np.empty(n, dtype=np.bool_)
    for k in range(candidates.shape[0]):
        r = candidates[k]
        kind = table[r, R_KIND]
        if kind <= _LAST_EARNING:
            continue
        for i in range(n):
            discounted_skip[i] = table[r, R_FLAG] == 1 and discounts[i] == 0
        m = _matched(k, incl, lines, discounted_skip, matched)
        reason = _condition_failure(r, cond)
        if reason == 0:
            reason = _quantity_failure(r, table, lines, matched, m)
        verdicts[k, V_REASON] = reason
        if reason == 0 and (kind == _NO_EARN or kind == _NO_PAY):  # noqa: SIM109
            for j in range(m):
                if kind == _NO_EARN:
                    no_earn[matched[j]] = True
                else:
                    no_pay[matched[j]] = True


# -- points paid -------------------------------------------------------------------


@jit
def _redeem(settings, lines, facts, discounts, floors, no_pay, paid_out, totals):
    """Points paid within balance, share cap and floors, spread exactly over eligible lines."""
    n = lines.shape[0]
    paid_out[:] = 0
    totals[T_REDEEMABLE] = 0
    totals[T_REDEEMED] = 0
    if facts[F_CARD] == 0:
        return
    eligible = np.empty(n, dtype=np.int64)
    after = np.empty(n, dtype=np.int64)
    room = np.empty(n, dtype=np.int64)
    count = np.int64(0)
    for i in range(n):
        if not lines[i, L_EXCLUDED] and not no_pay[i]:
            eligible[count] = i
            after[count] = lines[i, L_AMOUNT] - discounts[i]
            room[count] = after[count] - floors[i]
            count += 1
    point_value = settings[S_POINT_VALUE]
    share_cap = after[:count].sum() * settings[S_MAX_SHARE] // _BP
    most = min(share_cap, room[:count].sum()) // point_value
    # The program's spending thresholds: a balance and a receipt (after discounts) below
    # which nothing is spent, and the most one receipt may spend.
    receipt_after = np.int64(0)
    for i in range(n):
        receipt_after += lines[i, L_AMOUNT] - discounts[i]
    if facts[F_ACTIVE_POINTS] < settings[S_MIN_BALANCE] or receipt_after < settings[S_MIN_RECEIPT]:
        most = 0
    if settings[S_MAX_REDEEM] >= 0:
        most = min(most, settings[S_MAX_REDEEM])
    redeemable = min(facts[F_ACTIVE_POINTS], most)
    wanted = redeemable if facts[F_REDEEM_MAX] else facts[F_REDEEM]
    redeemed = min(wanted, redeemable)
    totals[T_REDEEMABLE] = redeemable
    totals[T_REDEEMED] = redeemed
    if redeemed > 0:
        shares = np.empty(count, dtype=np.int64)
        _allocate(redeemed * point_value, after, room, count, shares)
        for j in range(count):
            paid_out[eligible[j]] = shares[j]


# -- points earned -------------------------------------------------------------------


@jit_inline
def _base_rate(settings, tier_accrual, facts):
    return tier_accrual[facts[F_TIER]] if facts[F_TIER] >= 0 else settings[S_BASE_RATE]


@jit
def _rounded_spread(numerators, denominator, rounding, out):
    n = numerators.shape[0]
    total = _divide_rounded(numerators.sum(), denominator, rounding)
    _spread(numerators, denominator, total, n, out)


@jit
def _effect_points(r, table, settings, tier_accrual, facts, lines, paid, matched, m, out):
    """Points of an earning rule per line into ``out``; returns 0 or a reason."""
    n = lines.shape[0]
    kind = table[r, R_KIND]
    value = table[r, R_VALUE]
    numerators = np.zeros(n, dtype=np.int64)
    point_value = settings[S_POINT_VALUE]
    for j in range(m):
        i = matched[j]
        numerators[i] = lines[i, L_QUANTITY] * value if kind == _POINTS_PER_UNIT else paid[i]
    if kind == _BONUS_POINTS:
        if numerators.sum() == 0:
            return _ZERO_AMOUNT
        caps = np.full(n, value, dtype=np.int64)
        _allocate(value, numerators, caps, n, out)
        return 0
    if kind == _ACCRUAL_RATE:
        numerators *= value
        denominator = _BP * point_value
    elif kind == _POINTS_MULTIPLIER:
        numerators *= _base_rate(settings, tier_accrual, facts) * (value - _MILLI)
        denominator = _BP * _MILLI * point_value
    else:
        denominator = _MILLI
    _rounded_spread(numerators, denominator, settings[S_ROUNDING], out)
    return 0


@jit
def _rule_points(r, k, cond, settings, tier_accrual, lines, incl, paid, no_earn, out):
    table = cond.table
    n = lines.shape[0]
    out[:] = 0
    matched = np.empty(n, dtype=np.int64)
    m = _matched(k, incl, lines, no_earn, matched)
    reason = _condition_failure(r, cond)
    if reason == 0:
        reason = _quantity_failure(r, table, lines, matched, m)
    if reason == 0:
        reason = _effect_points(
            r, table, settings, tier_accrual, cond.facts, lines, paid, matched, m, out
        )
    if reason != 0:
        out[:] = 0
        return reason
    full = out.sum()
    total = _rule_limit(r, table, cond.budget_used, full)
    if total < full:
        capped = np.empty(n, dtype=np.int64)
        _allocate(max(total, 0), out, out.copy(), n, capped)
        out[:] = capped
    return 0 if out.sum() > 0 else _ZERO_AMOUNT


@jit
def _points_allowed(settings, facts):
    """Points still allowed by the per-receipt and per-card-day caps; -1: no cap."""
    allowed = settings[S_MAX_RECEIPT]
    if settings[S_MAX_DAY] >= 0:
        left_today = max(0, settings[S_MAX_DAY] - facts[F_EARNED_TODAY])
        allowed = left_today if allowed < 0 else min(allowed, left_today)
    return allowed


@jit
def _earn(
    candidates,
    cond,
    settings,
    tier_accrual,
    lines,
    state,
    points_paid,
    no_earn,
    verdicts,
    earned_out,
):
    table, facts, discounts = cond.table, cond.facts, state.discounts
    ncand = candidates.shape[0]
    n = lines.shape[0]
    earned_out[:] = 0
    earning = np.empty(ncand, dtype=np.int64)
    count = 0
    for k in range(ncand):
        kind = table[candidates[k], R_KIND]
        if _LAST_DISCOUNT < kind <= _LAST_EARNING:
            earning[count] = k
            count += 1
    if facts[F_CARD] == 0:
        for e in range(count):
            verdicts[earning[e], V_REASON] = facts[F_CARD_REASON]
        return
    paid = np.empty(n, dtype=np.int64)
    base = np.zeros(n, dtype=np.int64)
    rate = _base_rate(settings, tier_accrual, facts)
    for i in range(n):
        paid[i] = lines[i, L_AMOUNT] - discounts[i] - points_paid[i]
        if not lines[i, L_EXCLUDED] and not no_earn[i]:
            base[i] = paid[i] * rate
    components = np.zeros((count + 1, n), dtype=np.int64)
    _rounded_spread(base, _BP * settings[S_POINT_VALUE], settings[S_ROUNDING], components[0])
    owners = np.empty(count + 1, dtype=np.int64)
    used = np.int64(1)
    for e in range(count):
        k = earning[e]
        reason = _rule_points(
            candidates[k],
            k,
            cond,
            settings,
            tier_accrual,
            lines,
            state.incl,
            paid,
            no_earn,
            components[used],
        )
        verdicts[k, V_REASON] = reason
        if reason == 0:
            owners[used] = k
            used += 1
    _cap_points(settings, facts, components, used, owners, verdicts, earned_out)


@jit
def _cap_points(settings, facts, components, used, owners, verdicts, earned_out):
    """Sum the components; scale lines and rules down to the receipt and day caps."""
    n = earned_out.shape[0]
    totals = np.empty(used, dtype=np.int64)
    for c in range(used):
        totals[c] = components[c].sum()
        for i in range(n):
            earned_out[i] += components[c, i]
    allowed = _points_allowed(settings, facts)
    if allowed >= 0 and totals.sum() > allowed:
        line_points = earned_out.copy()
        _allocate(allowed, line_points, line_points, n, earned_out)
        capped = np.empty(used, dtype=np.int64)
        _allocate(allowed, totals, totals.copy(), used, capped)
        totals[:] = capped
    for c in range(1, used):
        verdicts[owners[c], V_POINTS] = totals[c]
        if totals[c] == 0:
            verdicts[owners[c], V_REASON] = _POINTS_CAP


# -- one receipt -------------------------------------------------------------------------


@jit
def _evaluate(program, receipt, out):
    """Evaluate one receipt into ``out``; 0, or OVERFLOW when a buffer is short."""
    lines, facts, verdicts = receipt.lines, receipt.facts, out.verdicts
    settings = program.point_settings
    n = lines.shape[0]
    candidates, incl = _candidate_rules(program, receipt)
    ncand = candidates.shape[0]
    if ncand > verdicts.shape[0]:
        return OVERFLOW
    for k in range(ncand):
        verdicts[k, V_RULE] = candidates[k]
        verdicts[k, V_REASON] = 0
        verdicts[k, V_AMOUNT] = 0
        verdicts[k, V_POINTS] = 0
        verdicts[k, V_STAMPS] = 0
        verdicts[k, V_FREE] = 0
    state = _discounting(lines, settings, incl)
    cond = _Conditions(
        program.table,
        program.segment_ids,
        receipt.budget_used,
        facts,
        receipt.segments,
        receipt.unlocked,
        lines,
        program.requirements,
        program.requirement_keys,
        state.discounts,
        receipt.stamps,
    )
    rates = _Rates(program.step_from, program.step_bp, program.tier_discount_bp)
    applied_count = _discounts(candidates, cond, rates, lines, state, verdicts, out.applied)
    if applied_count == OVERFLOW:
        return OVERFLOW
    discounts, no_earn, no_pay = state.discounts, np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    _restrictions(candidates, cond, lines, incl, discounts, no_earn, no_pay, verdicts)
    paid = np.empty(n, dtype=np.int64)
    _redeem(settings, lines, facts, discounts, state.floors, no_pay, paid, out.totals)
    earned = np.empty(n, dtype=np.int64)
    _earn(
        candidates,
        cond,
        settings,
        program.tier_accrual_bp,
        lines,
        state,
        paid,
        no_earn,
        verdicts,
        earned,
    )
    _write_lines(lines, discounts, paid, earned, out.line_out)
    out.totals[T_VERDICTS] = ncand
    out.totals[T_APPLIED] = applied_count
    return 0


@jit
def _candidate_rules(program, receipt):
    """The candidate rules in evaluation order, and ``incl`` (``_Discounting``'s)."""
    lines = receipt.lines
    n_rules = program.table.shape[0]
    mark = np.zeros(n_rules, dtype=np.uint8)
    buffer = np.empty(n_rules, dtype=np.int64)
    ncand = _candidates(
        lines,
        program.include_ptr,
        program.include_rules,
        program.all_lines_rules,
        receipt.store_mask,
        mark,
        buffer,
    )
    position = np.empty(n_rules, dtype=np.int64)
    for k in range(ncand):
        position[buffer[k]] = k
    incl = np.zeros((lines.shape[0], ncand), dtype=np.uint8)
    _target_matrix(
        lines,
        program.include_ptr,
        program.include_rules,
        program.exclude_ptr,
        program.exclude_rules,
        program.all_lines_rules,
        mark,
        position,
        incl,
    )
    return buffer[:ncand], incl


@jit
def _discounting(lines, settings, incl):
    """Before any discount: nothing given, nothing locked, each line's floor."""
    n = lines.shape[0]
    floors = np.empty(n, dtype=np.int64)
    for i in range(n):
        floors[i] = min(lines[i, L_AMOUNT], settings[S_MIN_LINE])
    no_skip = np.zeros(n, dtype=np.bool_)
    return _Discounting(incl, np.zeros(n, dtype=np.int64), floors, no_skip.copy(), no_skip)


@jit
def _write_lines(lines, discounts, points_paid, earned, line_out):
    for i in range(lines.shape[0]):
        line_out[i, O_DISCOUNT] = discounts[i]
        line_out[i, O_PAID] = points_paid[i]
        line_out[i, O_EARNED] = earned[i]
        line_out[i, O_FINAL] = lines[i, L_AMOUNT] - discounts[i] - points_paid[i]


@jit
def _evaluate_one(program, receipt, out):
    """Evaluate one receipt; 0, or OVERFLOW when an output buffer is short.

    Called from Python with plain tuples in ``ProgramArrays``', ``ReceiptArrays``' and
    ``Outputs``' field order (``_layout`` says why), named here.
    """
    return _evaluate(ProgramArrays(*program), ReceiptArrays(*receipt), Outputs(*out))
