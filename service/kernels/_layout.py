"""Column positions of the per-receipt arrays the wrapper fills and the kernels read."""

from __future__ import annotations

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
# verdicts[k, column]
V_RULE, V_REASON, V_AMOUNT, V_POINTS = range(4)
# applied[k, column]
A_LINE, A_RULE, A_AMOUNT = range(3)
# totals[position]
T_VERDICTS, T_APPLIED, T_REDEEMABLE, T_REDEEMED = range(4)
