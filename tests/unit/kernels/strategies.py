"""Hypothesis strategies: random valid programs, receipts, cards and contexts.

Small vocabularies on purpose, so that targets, exclusions, groups, ties in
priority and promo codes collide often.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from service.domain.calculation import CalculationContext
from service.domain.card import CardState, PointLot, PromoCodeState
from service.domain.limits import period_key, use_key
from service.domain.receipt import Receipt, ReceiptLine, StoreInfo
from service.rules.document import DISCOUNT_EFFECTS

SKUS = ["A", "B", "C", "D", "E"]
CATEGORIES = ["c1", "c2", "c3"]
BRANDS = ["b1", "b2"]
SEGMENTS = ["vip", "staff", "students"]
METHODS = ["cash", "card", "sbp"]
STORES = [
    StoreInfo("s1", "r1", "Europe/Moscow"),
    StoreInfo("s2", "r2", "Asia/Yekaterinburg"),
    StoreInfo("s3", "r1", "UTC"),
]
TIER_CODES = ["t0", "t1", "t2"]
GROUPS = ["g1", "g2"]
START = datetime(2026, 3, 1, tzinfo=UTC)
DISCOUNTS = sorted(DISCOUNT_EFFECTS)
OTHERS = [
    "accrual_rate",
    "points_multiplier",
    "points_per_unit",
    "bonus_points",
    "no_earn",
    "no_pay_with_points",
    "gift",
    "free_delivery",
]

percents = st.sampled_from(["0.5", "1", "5", "10", "12.5", "33.33", "50", "100"])


def _subset(values: list[str], most: int = 2) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=most, unique=True)


@st.composite
def effects(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    money = st.integers(1, 50_000)
    values: dict[str, st.SearchStrategy[Any]] = {
        "percent": st.fixed_dictionaries({"percent": percents}),
        "amount": st.fixed_dictionaries({"amount": money}),
        "fixed_price": st.fixed_dictionaries({"price": st.integers(0, 20_000)}),
        "nth_item": st.fixed_dictionaries({"n": st.integers(2, 4), "percent": percents}),
        "cheapest": st.fixed_dictionaries(
            {"units": st.integers(1, 3), "percent": percents, "dearest": st.booleans()},
            optional={"every": st.integers(1, 4)},
        ),
        "stamps": st.fixed_dictionaries(
            {"every": st.integers(2, 4)},
            optional={"count": st.sampled_from(["units", "receipts"]), "percent": percents},
        ),
        "bundle": st.fixed_dictionaries(
            {"quantity": st.integers(2, 3), "price": st.integers(0, 30_000)}
        ),
        "quantity_steps": st.just(
            {"steps": [{"from": "2", "percent": "5"}, {"from": "3.5", "percent": "10"}]}
        ),
        "subtotal_steps": st.just(
            {"steps": [{"from": 10_000, "percent": "3"}, {"from": 30_000, "percent": "7.5"}]}
        ),
        "accrual_rate": st.fixed_dictionaries({"percent": percents}),
        "points_multiplier": st.fixed_dictionaries(
            {"multiplier": st.sampled_from(["1.5", "2", "3", "1.125"])}
        ),
        "points_per_unit": st.fixed_dictionaries({"points": st.integers(1, 5)}),
        "bonus_points": st.fixed_dictionaries({"points": st.integers(1, 300)}),
        "no_earn": st.fixed_dictionaries({"discounted_only": st.booleans()}),
        "no_pay_with_points": st.fixed_dictionaries({"discounted_only": st.booleans()}),
        "gift": st.just({"sku": "GIFT", "quantity": "1"}),
    }
    body = draw(values.get(kind, st.just({})))
    return {"type": kind, **body}


@st.composite
def requirements(draw: st.DrawFn) -> dict[str, Any]:
    """A ``requires`` group: goods named by SKU, category and/or brand (some the receipts
    never hold), with or without a minimum quantity and amount."""
    names = {"skus": [*SKUS, "NEVER"], "categories": CATEGORIES, "brands": BRANDS}
    first = draw(st.sampled_from(sorted(names)))
    need: dict[str, Any] = {
        first: draw(st.lists(st.sampled_from(names[first]), min_size=1, max_size=2, unique=True))
    }
    for field, values in names.items():
        chosen = draw(_subset(values, 1))
        if field != first and chosen:
            need[field] = chosen
    if draw(st.booleans()):
        need["min_quantity"] = draw(st.sampled_from(["0.5", "1", "2", "3.5"]))
    if draw(st.booleans()):
        need["min_amount"] = draw(st.sampled_from([1, 5_000, 40_000]))
    return need


@st.composite
def conditions(draw: st.DrawFn, tier_codes: list[str], promo: bool) -> dict[str, Any]:
    options: dict[str, st.SearchStrategy[Any]] = {
        "tiers": st.lists(st.sampled_from(tier_codes), min_size=1, max_size=2, unique=True)
        if tier_codes
        else st.nothing(),
        "segments": _subset(SEGMENTS),
        "channels": _subset(["offline", "online"], 1),
        "payment_methods": _subset(METHODS),
        "pickup": st.booleans(),
        "dates": st.sampled_from(
            [{"from": "2026-03-01", "to": "2026-03-03"}, {"from": "2026-03-04", "to": "2026-12-31"}]
        ),
        "weekdays": _subset(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], 4),
        "hours": st.sampled_from(
            [{"from": "09:00", "to": "18:00"}, {"from": "22:00", "to": "06:00"}]
        ),
        "on_holidays": st.booleans(),
        "birthday_window_days": st.integers(0, 3),
        "purchase_number": st.sampled_from([{"equals": 1}, {"every": 2}, {"every": 3}]),
        "min_subtotal": st.integers(1, 40_000),
        "min_quantity": st.sampled_from(["1", "2.5", "3"]),
        "requires": st.lists(requirements(), min_size=1, max_size=2),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(options)), max_size=3, unique=True))
    result: dict[str, Any] = {}
    for name in chosen:
        value = draw(options[name])
        if value != [] and not (name == "tiers" and not tier_codes):
            result[name] = value
    if promo:
        result["promo_code"] = True
    return result


@st.composite
def targets(draw: st.DrawFn) -> dict[str, Any]:
    target: dict[str, Any] = {
        "skus": draw(_subset(SKUS)),
        "categories": draw(_subset(CATEGORIES, 1)),
        "brands": draw(_subset(BRANDS, 1)),
    }
    if draw(st.integers(0, 3)) == 0:
        target["exclude"] = {"skus": draw(_subset(SKUS, 1)), "brands": draw(_subset(BRANDS, 1))}
    if draw(st.integers(0, 4)) == 0:
        target["stores"] = draw(_subset(["s1", "s2"], 1))
        target["regions"] = draw(_subset(["r1", "r2"], 1))
    return target


@st.composite
def rules(draw: st.DrawFn, index: int, tier_codes: list[str], stamps: int = 1) -> dict[str, Any]:
    """``stamps``: how many more times than other discounts a stamp card is drawn."""
    kind = draw(st.sampled_from(DISCOUNTS + DISCOUNTS + OTHERS + ["stamps"] * 2 * (stamps - 1)))
    if kind == "tier_discount" and not tier_codes:
        kind = "percent"
    rule: dict[str, Any] = {
        "id": f"r{index}",
        "name": f"Rule {index}",
        "priority": draw(st.integers(0, 3)),
        "target": draw(targets()),
        "conditions": draw(conditions(tier_codes, promo=draw(st.integers(0, 7)) == 0)),
        "effect": draw(effects(kind)),
    }
    if kind in DISCOUNTS:
        stacking = draw(st.sampled_from(["exclusive", "best_of", "additive", "compounding"]))
        rule["stacking"] = stacking
        if stacking == "best_of":
            rule["group"] = draw(st.sampled_from([GROUPS[0], *GROUPS]))
    if kind in DISCOUNTS or kind in OTHERS[:4]:
        if draw(st.integers(0, 4)) == 0:
            rule["max_per_receipt"] = draw(st.integers(1, 20_000))
        if draw(st.integers(0, 4)) == 0:
            rule["budget"] = draw(st.integers(1, 50_000))
    if draw(st.integers(0, 3)) == 0:
        rule["max_uses"] = draw(st.integers(1, 3))
    if draw(st.integers(0, 3)) == 0:
        rule["max_uses_per_card"] = draw(st.integers(1, 2))
    if ("max_uses" in rule or "max_uses_per_card" in rule) and draw(st.booleans()):
        rule["uses_period"] = draw(st.sampled_from(["day", "week", "month"]))
    if draw(st.booleans()):
        rule["threshold_basis"] = draw(st.sampled_from(["original", "after_discounts"]))
    return rule


@st.composite
def programs(draw: st.DrawFn, most_rules: int = 8, stamps: int = 1) -> dict[str, Any]:
    tier_count = draw(st.sampled_from([0, 1, 2, 3, 3]))
    tier_codes = TIER_CODES[:tier_count]
    thresholds = sorted(
        draw(
            st.lists(st.integers(0, 100_000), min_size=tier_count, max_size=tier_count, unique=True)
        )
    )
    tiers = [
        {
            "code": code,
            "name": code.upper(),
            "threshold": threshold,
            "accrual_percent": draw(st.none() | percents),
            "discount_percent": draw(st.sampled_from(["0", "5", "10"])),
        }
        for code, threshold in zip(tier_codes, thresholds, strict=True)
    ]
    rule_list = [
        draw(rules(i, tier_codes, stamps)) for i in range(draw(st.integers(0, most_rules)))
    ]
    promo_rules = [r["id"] for r in rule_list if r["conditions"].get("promo_code")]
    promo_codes = [
        {
            "code": f"CODE{k}",
            "rules": [rule_id],
            "per_card_limit": draw(st.none() | st.just(1)),
            "max_uses": draw(st.none() | st.integers(1, 3)),
            "valid_to": draw(st.none() | st.just("2026-06-30")),
        }
        for k, rule_id in enumerate(promo_rules)
    ]
    return {
        "name": "random",
        "points": {
            "point_value": draw(st.sampled_from([1, 10, 100])),
            "accrual_percent": draw(st.sampled_from(["0", "1", "2.5", "5"])),
            "rounding": draw(st.sampled_from(["down", "half_up", "up"])),
            "max_share_percent": draw(st.sampled_from(["0", "30", "50", "100"])),
            "min_line_amount": draw(st.sampled_from([0, 1, 100])),
            "max_points_per_receipt": draw(st.none() | st.integers(1, 200)),
            "max_points_per_card_day": draw(st.none() | st.integers(1, 300)),
            "min_balance_to_spend": draw(st.sampled_from([0, 0, 50, 500])),
            "min_receipt_to_spend": draw(st.sampled_from([0, 0, 5_000, 50_000])),
            "max_redeem_per_receipt": draw(st.none() | st.integers(1, 300)),
            "offer_card_threshold": draw(st.none() | st.integers(0, 50_000)),
            "fiscal_mode": draw(st.sampled_from(["discount", "tender"])),
        },
        "tiers": {"levels": tiers},
        "holidays": ["2026-03-08", "2026-05-01"],
        "groups": [{"id": g} for g in GROUPS],
        "rules": rule_list,
        "promo_codes": promo_codes,
    }


@st.composite
def receipt_lines(draw: st.DrawFn) -> tuple[ReceiptLine, ...]:
    count = draw(st.integers(0, 8))
    return tuple(
        ReceiptLine(
            line_id=str(i),
            sku=draw(st.sampled_from([*SKUS, "Z"])),
            quantity=draw(st.sampled_from([1000, 2000, 3000, 5000, 532, 1500, 1, 2750, 12345])),
            unit_price=draw(st.sampled_from([0, 1, 99, 150, 1999, 4999, 12_345, 35_000])),
            category=draw(st.none() | st.sampled_from(CATEGORIES)),
            brand=draw(st.none() | st.sampled_from(BRANDS)),
            excluded=draw(st.integers(0, 7)) == 0,
        )
        for i in range(count)
    )


@st.composite
def cards(draw: st.DrawFn, now: datetime) -> CardState | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    day = timedelta(days=1)
    lots = tuple(
        PointLot(
            k,
            draw(st.integers(0, 2_000)),
            now + draw(st.sampled_from([-30, -1, 2])) * day,
            now + draw(st.sampled_from([-2, 1, 100])) * day,
        )
        for k in range(draw(st.integers(0, 3)))
    )
    return CardState(
        number="2000000000015",
        status=draw(st.sampled_from(["active"] * 6 + ["blocked", "inactive"])),
        tier=draw(st.none() | st.sampled_from([*TIER_CODES, "unknown"])),
        tier_spend=draw(st.integers(0, 120_000)),
        lots=lots,
        birthday=draw(
            st.none() | st.sampled_from([date(1990, 3, 2), date(1988, 2, 29), date(2000, 12, 31)])
        ),
        segments=frozenset(draw(_subset(SEGMENTS))),
        purchase_count=draw(st.integers(0, 5)),
        personal_discount_bp=draw(st.sampled_from([0, 250, 1000])),
        points_earned_today=draw(st.integers(0, 300)),
        promo_uses={"CODE0": 1} if draw(st.booleans()) else {},
        rule_uses=draw(_rule_uses(now)),
        stamps=draw(_stamps()),
    )


def _stamps() -> st.SearchStrategy[dict[str, int]]:
    """Stamps collected towards rules r0-r5 (some of them stamp rules), below ``every``,
    at or past it (a free item that could not be given), or below zero (a cancel took
    back stamps the card had used)."""
    return st.dictionaries(
        st.sampled_from([f"r{k}" for k in range(6)]), st.integers(-2, 9), max_size=3
    )


@st.composite
def _rule_uses(draw: st.DrawFn, when: datetime) -> dict[str, int]:
    """Uses of rules r0-r3 so far, for good or in the period of ``when``'s date (the
    store's date, in most stores' zones)."""
    periods = ["", *(period_key(p, when.date()) for p in ("day", "week", "month"))]
    keys = [use_key(f"r{k}", period) for k in range(4) for period in periods]
    return {key: draw(st.integers(0, 3)) for key in draw(_subset(keys, 4))}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Receipt, CalculationContext]:
    when = START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 10)))
    store = draw(st.sampled_from(STORES))
    card = draw(cards(when))
    codes = draw(st.lists(st.sampled_from(["CODE0", "code1", "CODE2", "DB1", "NOPE"]), max_size=3))
    receipt = Receipt(
        store_id=store.store_id,
        timestamp=when,
        lines=draw(receipt_lines()),
        card=card.number if card else None,
        channel=draw(st.sampled_from(["offline", "online"])),
        payment_method=draw(st.none() | st.sampled_from(METHODS)),
        pickup=draw(st.booleans()),
        promo_codes=tuple(codes),
        redeem_points=draw(st.integers(0, 3_000)),
        redeem_max=draw(st.booleans()),
    )
    held = PromoCodeState(
        "DB1",
        rule_id=draw(st.sampled_from(["r0", "r1", "r2"])),
        uses_left=draw(st.none() | st.integers(0, 2)),
    )
    ctx = CalculationContext(
        store=store,
        now=when,
        card=card,
        promo_codes={"DB1": held},
        promo_total_uses={"CODE0": draw(st.integers(0, 3))},
        budgets_used={
            f"r{k}": draw(st.integers(0, 60_000)) for k in range(draw(st.integers(0, 3)))
        },
        rule_uses=draw(_rule_uses(when)),
    )
    return receipt, ctx
