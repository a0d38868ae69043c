"""The demo program "Style" (SPEC §9): a clothing chain with a café corner."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.domain.receipt import StoreInfo

DEMO_STORES = (
    StoreInfo(store_id="msk-001", region="moscow", timezone="Europe/Moscow"),
    StoreInfo(store_id="ekb-001", region="urals", timezone="Asia/Yekaterinburg"),
    StoreInfo(store_id="web", region="online", timezone="Europe/Moscow"),
)

_HAPPY_HOURS = {
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "hours": {"from": "17:00", "to": "19:00"},
}
_NOT_GIFT_CARDS = {"exclude": {"categories": ["gift-cards"]}}
# SPEC §9: AUTUMN10 runs from 1 October to 30 November.
AUTUMN = (date(2026, 10, 1), date(2026, 11, 30))


def demo_program(campaign: tuple[date, date] = AUTUMN) -> dict[str, Any]:
    """The "Style" program as a document of the format in service/rules/document.py.

    ``campaign`` is AUTUMN10's first and last day; tests move it around their own clock
    so that a sale of this week still falls inside it."""
    first, last = (day.isoformat() for day in campaign)
    return {
        "format": 1,
        "name": "Style",
        "description": "Demo: a clothing chain with a café corner (SPEC §9).",
        "points": {
            "point_value": 100,
            "accrual_percent": "1",
            "rounding": "down",
            "pending_days": 14,
            "validity_days": 365,
            "max_share_percent": "50",
            "min_line_amount": 100,
            "welcome_points": 200,
            "referral_points": 300,
            "refund_spent_policy": "negative_balance",
            "offer_card_threshold": 100_000,
        },
        "tiers": {
            "window_days": 365,
            "levels": [
                {"code": "base", "name": "Base", "threshold": 0, "accrual_percent": "1"},
                {
                    "code": "silver",
                    "name": "Silver",
                    "threshold": 1_000_000,
                    "accrual_percent": "3",
                    "discount_percent": "5",
                },
                {
                    "code": "gold",
                    "name": "Gold",
                    "threshold": 5_000_000,
                    "accrual_percent": "5",
                    "discount_percent": "10",
                },
            ],
        },
        "holidays": [
            "2026-01-01",
            "2026-01-07",
            "2026-02-23",
            "2026-03-08",
            "2026-05-01",
            "2026-05-09",
            "2026-06-12",
            "2026-11-04",
        ],
        "groups": [{"id": "personal", "name": "Personal discounts: the best one applies"}],
        "rules": _demo_rules(first, last),
        "promo_codes": [
            {
                "code": "AUTUMN10",
                "rules": ["autumn10"],
                "per_card_limit": 1,
                "valid_from": first,
                "valid_to": last,
            }
        ],
    }


def _demo_rules(first: str, last: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "happy-hours",
            "name": "Happy hours: drinks -20%",
            "priority": 100,
            "stacking": "exclusive",
            "target": {"categories": ["drinks"]},
            "conditions": _HAPPY_HOURS,
            "effect": {"type": "percent", "percent": "20"},
        },
        {
            "id": "mojito-points",
            "name": "Happy hours: 3 points per Mojito",
            "priority": 100,
            "target": {"skus": ["MOJITO"]},
            "conditions": _HAPPY_HOURS,
            "effect": {"type": "points_per_unit", "points": 3},
        },
        {
            "id": "tier-discount",
            "name": "Tier discount",
            "priority": 50,
            "stacking": "best_of",
            "group": "personal",
            "target": _NOT_GIFT_CARDS,
            "effect": {"type": "tier_discount"},
        },
        {
            "id": "birthday",
            "name": "Birthday -10%",
            "priority": 50,
            "stacking": "best_of",
            "group": "personal",
            "target": _NOT_GIFT_CARDS,
            "conditions": {"birthday_window_days": 3},
            "effect": {"type": "percent", "percent": "10"},
        },
        {
            "id": "jeans-steps",
            "name": "Jeans: -5% from 3, -10% from 5",
            "priority": 40,
            "stacking": "compounding",
            "target": {"categories": ["jeans"]},
            "effect": {
                "type": "quantity_steps",
                "steps": [{"from": "3", "percent": "5"}, {"from": "5", "percent": "10"}],
            },
        },
        {
            "id": "autumn10",
            "name": "AUTUMN10: dresses -10%",
            "priority": 30,
            "target": {"categories": ["dresses"]},
            "conditions": {
                "promo_code": True,
                "dates": {"from": first, "to": last},
            },
            "effect": {"type": "percent", "percent": "10"},
        },
        {
            "id": "gift-scarf",
            "name": "A scarf as a gift from 5,000 roubles",
            "conditions": {"min_subtotal": 500_000},
            "effect": {"type": "gift", "sku": "GIFT-SCARF", "quantity": "1"},
        },
        {
            "id": "free-delivery",
            "name": "Free delivery online from 3,000 roubles",
            "conditions": {"channels": ["online"], "min_subtotal": 300_000},
            "effect": {"type": "free_delivery"},
        },
        {
            "id": "gift-cards-no-earn",
            "name": "Gift cards earn no points",
            "target": {"categories": ["gift-cards"]},
            "effect": {"type": "no_earn"},
        },
        {
            "id": "gift-cards-no-points-payment",
            "name": "Gift cards cannot be paid with points",
            "target": {"categories": ["gift-cards"]},
            "effect": {"type": "no_pay_with_points"},
        },
    ]
