"""The per-receipt arrays the wrapper fills and the kernels read: their groups and columns.

The kernels take three arguments, each a tuple of arrays: the program's
(``rules.compiler.ProgramArrays``), the receipt's (``ReceiptArrays``) and the outputs
(``Outputs``). Python passes them as plain tuples in field order and the entry kernels
name them (``_engine._evaluate_one``): numba types a plain tuple of arrays in C, a
NamedTuple in Python on every call. Calling a kernel that does nothing with the three
groups took 3.1 µs of CPU that way against 6.1 µs with the NamedTuples (2-core dev box).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FlagArray = npt.NDArray[np.uint8]


class ReceiptArrays(NamedTuple):
    store_mask: FlagArray  # 1 for each rule the store admits
    budget_used: IntArray  # by rule: campaign budget already used, or USES_EXHAUSTED
    lines: IntArray  # lines x LINE_COLUMNS
    facts: IntArray  # FACT_COUNT
    segments: FlagArray  # 1 for each segment of the program's vocabulary the card is in
    unlocked: IntArray  # rules an accepted promo code unlocks
    stamps: IntArray  # by rule: the stamps the card has collected (stamp rules)


class Outputs(NamedTuple):
    line_out: IntArray  # lines x OUTPUT_COLUMNS
    verdicts: IntArray  # a row per candidate rule: V_* columns
    applied: IntArray  # a row per discount given to a line: A_* columns
    totals: IntArray  # T_* positions


# budget_used[r] for a rule whose use caps leave this sale no use (facts.used_up): the
# rule does not apply, with reason uses_exhausted. A budget's use is never negative.
USES_EXHAUSTED = -1

# lines[i, column]
L_QUANTITY, L_PRICE, L_AMOUNT, L_EXCLUDED, L_SKU, L_CATEGORY, L_BRAND = range(7)
LINE_COLUMNS = 7

# facts[position]
(
    F_CHANNEL,
    F_PAYMENT,
    F_PICKUP,
    F_DATE,
    F_WEEKDAY,
    F_MINUTE,
    F_HOLIDAY,
    F_CARD,
    F_CARD_REASON,
    F_TIER,
    F_BIRTHDAY,
    F_PURCHASE,
    F_PERSONAL,
    F_ACTIVE_POINTS,
    F_REDEEM,
    F_REDEEM_MAX,
    F_EARNED_TODAY,
    F_LOYALTY_SUBTOTAL,
) = range(18)
FACT_COUNT = 18

# line_out[i, column]; O_FINAL = amount - discount - points paid
O_DISCOUNT, O_PAID, O_EARNED, O_FINAL = range(4)
OUTPUT_COLUMNS = 4
# verdicts[k, column]; a stamp rule's stamps added by the sale and its free units given
V_RULE, V_REASON, V_AMOUNT, V_POINTS, V_STAMPS, V_FREE = range(6)
VERDICT_COLUMNS = 6
# applied[k, column]
A_LINE, A_RULE, A_AMOUNT = range(3)
# totals[position]
T_VERDICTS, T_APPLIED, T_REDEEMABLE, T_REDEEMED = range(4)
