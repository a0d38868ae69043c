"""Integer codes shared by the compiler, the kernels and the result builder.

The kernels see effects, stacking modes, channels and reasons as small integers;
these tables are the one place that names them.
"""

from __future__ import annotations

EFFECT_CODES = {
    "percent": 0,
    "amount": 1,
    "fixed_price": 2,
    "nth_item": 3,
    "bundle": 4,
    "quantity_steps": 5,
    "subtotal_steps": 6,
    "tier_discount": 7,
    "personal_discount": 8,
    "cheapest": 9,
    "stamps": 10,  # the last discount: the kernels take codes up to it as discounts
    "accrual_rate": 11,
    "points_multiplier": 12,
    "points_per_unit": 13,
    "bonus_points": 14,
    "no_earn": 15,
    "no_pay_with_points": 16,
    "gift": 17,
    "free_delivery": 18,
}
STAMP_COUNTS = {"units": 0, "receipts": 1}
STACKING_CODES = {"exclusive": 0, "best_of": 1, "additive": 2, "compounding": 3}
CHANNEL_BITS = {"offline": 1, "online": 2}
WEEKDAY_BITS = {
    name: 1 << day for day, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
}
ROUNDING_CODES = {"down": 0, "half_up": 1, "up": 2}

# Why a rule did not apply; index = the code the kernels write. "" means applied.
REASONS = (
    "",
    "channel",
    "payment_method",
    "pickup",
    "outside_dates",
    "weekday",
    "outside_hours",
    "holiday",
    "no_card",
    "card_inactive",
    "tier",
    "segment",
    "not_birthday",
    "purchase_number",
    "promo_code_missing",
    "below_threshold",
    "budget_exhausted",
    "no_matching_lines",
    "below_quantity",
    "blocked_by_exclusive",
    "already_discounted",
    "at_floor",
    "zero_amount",
    "beaten_in_group",
    "no_personal_discount",
    "points_cap",
    "uses_exhausted",
    "requires_not_met",
    "not_enough_stamps",
)
REASON_CODES = {reason: code for code, reason in enumerate(REASONS)}
