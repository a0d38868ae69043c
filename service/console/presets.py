"""Templates of the common programs (the seeds' examples): each changes a program
document, the current one as a rule, so that a marketer starts a draft from it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

Document = dict[str, Any]

RULES: dict[str, dict[str, Any]] = {
    "birthday": {
        "id": "birthday-10", "name": "Birthday: 10% off", "priority": 60,
        "target": {}, "conditions": {"birthday_window_days": 3},
        "effect": {"type": "percent", "percent": "10"},
    },
    "happy-hours": {
        "id": "happy-hours-20", "name": "Happy hours: drinks -20%", "priority": 100,
        "stacking": "exclusive", "target": {"categories": ["drinks"]},
        "conditions": {"weekdays": ["mon", "tue", "wed", "thu", "fri"],
                       "hours": {"from": "17:00", "to": "19:00"}},
        "effect": {"type": "percent", "percent": "20"},
    },
    "stamps": {
        "id": "coffee-stamps", "name": "Every 6th coffee free", "priority": 50,
        "target": {"categories": ["coffee"]}, "conditions": {},
        "effect": {"type": "stamps", "every": 6, "count": "units", "percent": "100"},
    },
    "nth-free": {
        "id": "third-free", "name": "Every 3rd item free", "priority": 50,
        "target": {"categories": ["socks"]}, "conditions": {},
        "effect": {"type": "nth_item", "n": 3, "percent": "100"},
    },
}  # fmt: skip
_TIERS = {
    "window_days": 365,
    "levels": [
        {"code": "base", "name": "Base", "threshold": 0, "accrual_percent": "1"},
        {"code": "silver", "name": "Silver", "threshold": 1_000_000, "accrual_percent": "3",
         "discount_percent": "5"},
        {"code": "gold", "name": "Gold", "threshold": 5_000_000, "accrual_percent": "5",
         "discount_percent": "10"},
    ],
}  # fmt: skip


def _points_per_100_roubles(document: Document) -> None:
    """1 point for every 100 roubles, a point worth a rouble, up to 50% paid with points."""
    document.setdefault("points", {}).update(
        {"point_value": 100, "accrual_percent": "1", "max_share_percent": "50"}
    )


def _tiers(document: Document) -> None:
    document["tiers"] = copy.deepcopy(_TIERS)


def _rule(name: str) -> Callable[[Document], None]:
    def add(document: Document) -> None:
        rules = document.setdefault("rules", [])
        rule = copy.deepcopy(RULES[name])
        taken = {r.get("id") for r in rules}
        while rule["id"] in taken:
            rule["id"] += "-2"
        rules.append(rule)

    return add


PROGRAMS: dict[str, Callable[[Document], None]] = {
    "points-100": _points_per_100_roubles,
    "tiers": _tiers,
    **{name: _rule(name) for name in RULES},
}
# What the template list shows, in English (the console's catalogue translates).
TITLES = {
    "points-100": "1 point per 100 roubles, up to 50% paid with points",
    "tiers": "Tiers: Base, Silver from 10,000 roubles, Gold from 50,000",
    "birthday": "Birthday: 10% off three days around it",
    "happy-hours": "Happy hours: drinks -20% on weekdays 17:00-19:00",
    "nth-free": "Every 3rd item free",
    "stamps": "Stamp card: every 6th coffee free",
}
EMPTY: Document = {"format": 1, "name": "New program", "points": {"point_value": 100},
                   "rules": []}  # fmt: skip


def applied(name: str, base: Mapping[str, Any] | None) -> Document:
    """``base`` (the current program; an empty one where there is none) with the template."""
    document = copy.deepcopy(dict(base) if base else EMPTY)
    PROGRAMS[name](document)
    return document
