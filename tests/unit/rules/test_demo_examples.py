"""Worked examples on the demo program "Style" (SPEC §9), one mechanic at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from service.domain.card import CardState, PointLot
from service.domain.errors import ProgramInvalid
from service.domain.receipt import ReceiptLine
from service.rules.demo import demo_program
from service.rules.document import parse_program
from tests.unit.rules.builders import (
    BASE_CARD,
    DEMO,
    EKB,
    GOLD_CARD,
    MOSCOW,
    SATURDAY_NOON,
    SILVER_CARD,
    WEB,
    Evaluator,
    applied,
    birthday_in,
    calculate,
    card,
    check_invariants,
    codes,
    dress,
    item,
    program,
    verdict,
)


def test_anonymous_sale_gets_promotions_but_earns_nothing(evaluate: Evaluator) -> None:
    result = calculate(evaluate, [item("1", "MOJITO", 2, 45_000, "drinks"), dress("2", 120_000)])
    assert applied(result, "1") == {"happy-hours": 18_000}
    assert result.totals.points_earned == 0
    assert verdict(result, "tier-discount")[:2] == (False, "no_card")
    assert verdict(result, "mojito-points")[:2] == (False, "no_card")
    assert codes(result) == ["offer_card"]
    check_invariants(result, DEMO)


def test_no_card_offer_below_the_threshold(evaluate: Evaluator) -> None:
    result = calculate(evaluate, [dress("1", 99_999)])
    assert "offer_card" not in codes(result)


def test_base_card_earns_one_percent_rounded_down_per_receipt(evaluate: Evaluator) -> None:
    # 1,234.56 + 333.33 roubles at 1 %: 12.3456 + 3.3333 = 15.68 points, rounded down to 15.
    lines = [dress("1", 123_456), item("2", "T-1", 1, 33_333, "tops")]
    result = calculate(evaluate, lines, BASE_CARD, when=SATURDAY_NOON)
    assert result.totals.discount == 0
    assert result.totals.points_earned == 15
    assert result.points_earned == [12, 3]
    assert result.tier_before == "base"


def test_silver_gets_five_percent_and_earns_three(evaluate: Evaluator) -> None:
    result = calculate(evaluate, [dress("1", 200_000)], SILVER_CARD, when=SATURDAY_NOON)
    assert applied(result, "1") == {"tier-discount": 10_000}
    # paid 1,900 roubles at 3 % = 57 points
    assert result.totals.points_earned == 57
    assert verdict(result, "birthday")[:2] == (False, "not_birthday")


def test_gold_tier_discount_beats_an_equal_birthday_discount(evaluate: Evaluator) -> None:
    gold = card(tier_spend=6_000_000, points=0, birthday=birthday_in(0, SATURDAY_NOON))
    result = calculate(evaluate, [dress("1", 100_000)], gold, when=SATURDAY_NOON)
    assert applied(result, "1") == {"tier-discount": 10_000}
    assert verdict(result, "birthday")[:2] == (False, "beaten_in_group")
    assert "birthday" in codes(result)


def test_birthday_window_beats_silver(evaluate: Evaluator) -> None:
    silver = card(tier_spend=1_500_000, birthday=birthday_in(-3, SATURDAY_NOON))
    result = calculate(evaluate, [dress("1", 100_000)], silver, when=SATURDAY_NOON)
    assert applied(result, "1") == {"birthday": 10_000}
    assert verdict(result, "tier-discount")[:2] == (False, "beaten_in_group")
    outside = card(tier_spend=1_500_000, birthday=birthday_in(-4, SATURDAY_NOON))
    result = calculate(evaluate, [dress("1", 100_000)], outside, when=SATURDAY_NOON)
    assert applied(result, "1") == {"tier-discount": 5_000}


def test_jeans_steps_compound_on_the_tier_price(evaluate: Evaluator) -> None:
    jeans = [item("1", "J-32", 3, 300_000, "jeans")]
    result = calculate(evaluate, jeans, SILVER_CARD, when=SATURDAY_NOON)
    # 9,000 roubles: silver 5 % = 450, then 5 % of the 8,550 left = 427.50 (half up)
    assert applied(result, "1") == {"tier-discount": 45_000, "jeans-steps": 42_750}
    two = calculate(evaluate, [item("1", "J-32", 2, 300_000, "jeans")], when=SATURDAY_NOON)
    assert verdict(two, "jeans-steps")[:2] == (False, "below_quantity")
    five = [item("1", "J-32", 2, 300_000, "jeans"), item("2", "J-30", 3, 200_000, "jeans")]
    result = calculate(evaluate, five, when=SATURDAY_NOON)
    assert result.totals.discount == 120_000  # 10 % of 12,000 roubles, no card


def test_happy_hours_are_exclusive_on_drinks(evaluate: Evaluator) -> None:
    lines = [item("1", "MOJITO", 2, 45_000, "drinks"), dress("2", 100_000)]
    result = calculate(evaluate, lines, SILVER_CARD)
    assert applied(result, "1") == {"happy-hours": 18_000}
    assert applied(result, "2") == {"tier-discount": 5_000}
    assert verdict(result, "mojito-points") == (True, None, 0, 6)
    # paid: 720 + 950 roubles at 3 % = 50.1 points, + 6 for the two Mojitos
    assert result.totals.points_earned == 56


def test_happy_hours_follow_the_store_clock(evaluate: Evaluator) -> None:
    drinks = [item("1", "LATTE", 1, 25_000, "drinks")]
    at_seven = datetime(2026, 11, 20, 19, 0, tzinfo=MOSCOW)
    assert verdict(calculate(evaluate, drinks, when=at_seven), "happy-hours")[1] == "outside_hours"
    assert verdict(calculate(evaluate, drinks, when=SATURDAY_NOON), "happy-hours")[1] == "weekday"
    # 15:30 in Moscow is 17:30 in Yekaterinburg
    afternoon = datetime(2026, 11, 20, 15, 30, tzinfo=MOSCOW)
    assert verdict(calculate(evaluate, drinks, when=afternoon), "happy-hours")[1] == "outside_hours"
    assert verdict(calculate(evaluate, drinks, store=EKB, when=afternoon), "happy-hours")[0]


def test_autumn10_once_per_card_in_its_dates(evaluate: Evaluator) -> None:
    result = calculate(evaluate, [dress()], BASE_CARD, promo_codes=(" autumn10 ",))
    assert applied(result, "1") == {"autumn10": 34_990}
    assert [(p.code, p.status, p.reason) for p in result.promo_codes] == [
        ("AUTUMN10", "accepted", None)
    ]
    used = card(points=0, promo_uses={"AUTUMN10": 1})
    result = calculate(evaluate, [dress()], used, promo_codes=("AUTUMN10",))
    assert result.promo_codes[0].reason == "used_up"
    assert verdict(result, "autumn10")[:2] == (False, "promo_code_missing")
    december = datetime(2026, 12, 1, 12, 0, tzinfo=MOSCOW)
    result = calculate(evaluate, [dress()], BASE_CARD, when=december, promo_codes=("AUTUMN10",))
    assert result.promo_codes[0].reason == "expired"
    september = datetime(2026, 9, 30, 12, 0, tzinfo=MOSCOW)
    result = calculate(evaluate, [dress()], BASE_CARD, when=september, promo_codes=("AUTUMN10",))
    assert result.promo_codes[0].reason == "inactive"


def test_promo_code_rejections(evaluate: Evaluator) -> None:
    shirt = [item("1", "S-1", 1, 100_000, "shirts")]
    result = calculate(evaluate, shirt, BASE_CARD, promo_codes=("AUTUMN10", "NOPE"))
    assert [(p.status, p.reason) for p in result.promo_codes] == [
        ("rejected", "not_applicable"),
        ("rejected", "unknown"),
    ]
    anonymous = calculate(evaluate, [dress()], promo_codes=("AUTUMN10",))
    assert anonymous.promo_codes[0].reason == "not_applicable"


def test_gift_and_free_delivery(evaluate: Evaluator) -> None:
    big = [dress("1", 500_000)]
    result = calculate(evaluate, big)
    assert [(g.sku, g.quantity, g.rule_id) for g in result.gifts] == [
        ("GIFT-SCARF", 1000, "gift-scarf")
    ]
    assert not result.free_delivery
    assert verdict(result, "free-delivery")[:2] == (False, "channel")
    online = calculate(evaluate, [dress("1", 300_000)], store=WEB, channel="online")
    assert online.free_delivery and not online.gifts
    small = calculate(evaluate, [dress("1", 299_999)], store=WEB, channel="online")
    assert verdict(small, "free-delivery")[:2] == (False, "below_threshold")


def test_gift_cards_neither_earn_nor_take_points(evaluate: Evaluator) -> None:
    lines = [item("1", "GC-5000", 1, 500_000, "gift-cards"), dress("2", 100_000)]
    result = calculate(evaluate, lines, GOLD_CARD, when=SATURDAY_NOON, redeem_max=True)
    gift_card, other = 0, 1
    assert result.discounts[gift_card] == 0
    assert result.points_paid[gift_card] == 0 and result.points_earned[gift_card] == 0
    # dress: 1,000 - 10 % = 900 roubles; half of it may be paid with points
    assert result.totals.points_redeemable_max == 450
    assert result.points_paid[other] == 45_000
    # paid 450 roubles at 5 % = 22.5 points
    assert result.points_earned[other] == 22


def test_points_paid_within_share_floor_and_balance(evaluate: Evaluator) -> None:
    lines = [dress("1", 100_000), item("2", "SOCK", 1, 150, "socks")]
    result = calculate(evaluate, lines, BASE_CARD, when=SATURDAY_NOON, redeem_points=10_000)
    # half of 1,001.50 roubles is 500.75: at most 500 points
    assert result.totals.points_redeemable_max == 500
    assert result.totals.points_redeemed == 500
    assert "points_limited" in codes(result)
    poor = card(points=120)
    result = calculate(evaluate, lines, poor, when=SATURDAY_NOON, redeem_max=True)
    assert result.totals.points_redeemed == 120
    assert sum(result.points_paid) == 12_000
    assert all(
        final >= min(amount, 100)
        for final, amount in zip(result.finals, result.amounts, strict=True)
    )
    check_invariants(result, DEMO)


def test_every_line_keeps_one_rouble(evaluate: Evaluator) -> None:
    lines = [item(str(i), f"SKU{i}", 1, 200, "misc") for i in range(4)]
    result = calculate(evaluate, lines, BASE_CARD, when=SATURDAY_NOON, redeem_max=True)
    # 8 roubles, half is 4 but each line keeps 1: at most 4 roubles = 4 points
    assert result.totals.points_redeemed == 4
    assert result.finals == [100, 100, 100, 100]


def test_pending_and_expired_points_are_never_spent(evaluate: Evaluator) -> None:
    now = SATURDAY_NOON
    lots = (
        PointLot(1, 300, now - timedelta(days=20), now + timedelta(days=1)),
        PointLot(2, 400, now + timedelta(days=3), now + timedelta(days=368)),
        PointLot(3, 500, now - timedelta(days=400), now - timedelta(seconds=1)),
    )
    holder = card(points=0, lots=lots)
    result = calculate(evaluate, [dress("1", 500_000)], holder, when=now, redeem_max=True)
    assert result.totals.points_redeemed == 300
    assert holder.pending_points(now) == 400


def test_blocked_card_neither_earns_nor_spends(evaluate: Evaluator) -> None:
    blocked = card(tier_spend=1_500_000, points=500, status="blocked")
    result = calculate(
        evaluate, [dress("1", 100_000)], blocked, when=SATURDAY_NOON, redeem_max=True
    )
    assert result.totals.points_earned == 0 and result.totals.points_redeemed == 0
    assert verdict(result, "tier-discount")[:2] == (False, "card_inactive")
    assert "card_inactive" in codes(result)


def test_tier_upgrade_after_the_crossing_sale(evaluate: Evaluator) -> None:
    near = card(tier_spend=990_000)
    result = calculate(evaluate, [dress("1", 20_000)], near, when=SATURDAY_NOON)
    assert (result.tier_before, result.tier_after) == ("base", "silver")
    assert "tier_upgrade" in codes(result)
    assert result.tier_spend == 20_000
    # the upgrade counts from the next sale: this one still earns the base 1 %
    assert result.totals.points_earned == 2


def test_friday_evening_example(evaluate: Evaluator) -> None:
    """The SPEC §3 receipt on the silver demo card with AUTUMN10 and 500 points."""
    lines = [dress("1"), item("2", "MOJITO", 2, 45_000, "drinks")]
    result = calculate(evaluate, lines, SILVER_CARD, promo_codes=("AUTUMN10",), redeem_points=500)
    assert applied(result, "1") == {"tier-discount": 17_495, "autumn10": 34_990}
    assert result.totals.discount == 70_485
    # 50 % of 3,694.15 roubles after discounts
    assert result.totals.points_redeemable_max == 1_847
    assert result.points_paid == [40_255, 9_745]
    # money paid 3,194.15 roubles at 3 % = 95.8 -> 95, plus 3 x 2 Mojitos
    assert result.totals.points_earned == 101
    assert result.totals.amount_due == 319_415
    check_invariants(result, DEMO)


def test_spending_thresholds_balance_receipt_and_most_per_receipt(evaluate: Evaluator) -> None:
    # SPEC §4 item 32: points are spent from a balance of at least 500, on a receipt of at
    # least 2,000 roubles after discounts, at most 300 points a receipt.
    thresholds = {"min_balance_to_spend": 500, "min_receipt_to_spend": 200_000,
                  "max_redeem_per_receipt": 300}  # fmt: skip
    compiled = program(points={**demo_program()["points"], **thresholds})
    lines = [dress("1", 300_000)]  # 1,500 roubles may be paid with points (half)

    def redeemable(holder: CardState, sale: list[ReceiptLine]) -> int:
        result = calculate(evaluate, sale, holder, when=SATURDAY_NOON, compiled=compiled,
                           redeem_max=True)  # fmt: skip
        check_invariants(result, compiled)
        assert result.totals.points_redeemed == result.totals.points_redeemable_max
        return result.totals.points_redeemable_max

    assert redeemable(card(points=1_000), lines) == 300  # the most per receipt
    assert redeemable(card(points=499), lines) == 0  # below the balance to spend from
    assert redeemable(card(points=500), lines) == 300
    assert redeemable(card(points=1_000), [dress("1", 199_999)]) == 0  # below the receipt
    assert redeemable(card(points=1_000), [dress("1", 200_000)]) == 300
    # Without them, the demo's own limits: half of the receipt, within the balance.
    result = calculate(evaluate, lines, card(points=1_000), when=SATURDAY_NOON, redeem_max=True)
    assert result.totals.points_redeemable_max == 1_000


def test_requires_goods_other_than_the_target(evaluate: Evaluator) -> None:
    # SPEC §4 item 28: "buy a suit, get the tie at half price"; "3 shirts: 10% off the order".
    rules = [
        {"id": "suit-tie", "name": "Ties at half price with a suit", "priority": 40,
         "target": {"categories": ["ties"]},
         "conditions": {"requires": [{"categories": ["suits"]}]},
         "effect": {"type": "percent", "percent": "50"}},
        {"id": "three-shirts", "name": "3 shirts: 10% off the order", "priority": 20,
         "target": {}, "conditions": {"requires": [
             {"categories": ["shirts"], "min_quantity": "3", "min_amount": 300_000}]},
         "effect": {"type": "percent", "percent": "10"}},
    ]  # fmt: skip
    compiled = program(rules=rules, groups=[], promo_codes=[])
    suit, tie = item("1", "SUIT-1", 1, 2_000_000, "suits"), item("2", "TIE-1", 1, 300_000, "ties")
    with_suit = calculate(evaluate, [suit, tie], when=SATURDAY_NOON, compiled=compiled)
    assert applied(with_suit, "2") == {"suit-tie": 150_000}
    assert applied(with_suit, "1") == {}
    alone = calculate(evaluate, [tie], when=SATURDAY_NOON, compiled=compiled)
    assert verdict(alone, "suit-tie")[:2] == (False, "requires_not_met")
    # The suit excluded by the till does not count.
    excluded = item("1", "SUIT-1", 1, 2_000_000, "suits", excluded=True)
    assert verdict(
        calculate(evaluate, [excluded, tie], when=SATURDAY_NOON, compiled=compiled), "suit-tie"
    )[:2] == (False, "requires_not_met")

    shirts = item("3", "SHIRT", 3, 100_000, "shirts")
    order = calculate(evaluate, [shirts, tie], when=SATURDAY_NOON, compiled=compiled)
    assert applied(order, "3") == {"three-shirts": 30_000}
    assert applied(order, "2") == {"three-shirts": 30_000}  # the whole order, not the shirts
    two = calculate(evaluate, [item("3", "SHIRT", 2, 150_000, "shirts")], when=SATURDAY_NOON,
                    compiled=compiled)  # fmt: skip
    assert verdict(two, "three-shirts")[:2] == (False, "requires_not_met")
    cheap = calculate(evaluate, [item("3", "SHIRT", 3, 99_999, "shirts")], when=SATURDAY_NOON,
                      compiled=compiled)  # fmt: skip
    assert verdict(cheap, "three-shirts")[:2] == (False, "requires_not_met")  # below 3,000 roubles
    check_invariants(order, compiled)


def test_a_requirement_names_goods() -> None:
    document = {**demo_program(), "rules": [{
        "id": "r", "name": "r", "target": {}, "conditions": {"requires": [{"min_quantity": "2"}]},
        "effect": {"type": "percent", "percent": "5"}}]}  # fmt: skip
    with pytest.raises(ProgramInvalid) as error:
        parse_program(document)
    assert error.value.errors[0]["field"] == "rules[0].conditions.requires[0]"
    assert "names skus, categories or brands" in error.value.errors[0]["message"]


def test_the_cheapest_or_dearest_units(evaluate: Evaluator) -> None:
    # SPEC §4 item 29: the cheapest item free once per receipt; the dearest of every 3 at 50%.
    rules = [
        {"id": "cheapest-free", "name": "The cheapest top free", "priority": 40,
         "target": {"categories": ["tops"]}, "effect": {"type": "cheapest"}},
        {"id": "dearest-half", "name": "Dearest of every 3 jeans at half price", "priority": 30,
         "target": {"categories": ["jeans"]},
         "effect": {"type": "cheapest", "dearest": True, "every": 3, "percent": "50"}},
    ]  # fmt: skip
    compiled = program(rules=rules, groups=[], promo_codes=[])
    tops = [item("1", "T-1", 2, 150_000, "tops"), item("2", "T-2", 1, 90_000, "tops")]
    result = calculate(evaluate, tops, when=SATURDAY_NOON, compiled=compiled)
    # one unit, the cheapest, free but for the 1 rouble every line keeps (min_line_amount)
    assert applied(result, "2") == {"cheapest-free": 89_900}
    assert applied(result, "1") == {}

    jeans = [item("3", "J-1", 2, 500_000, "jeans"), item("4", "J-2", 5, 300_000, "jeans")]
    result = calculate(evaluate, jeans, when=SATURDAY_NOON, compiled=compiled)
    # 7 units: 2 of every 3, so the 2 dearest units (J-1) at half price
    assert applied(result, "3") == {"dearest-half": 500_000}
    assert applied(result, "4") == {}
    few = calculate(evaluate, jeans[:1], when=SATURDAY_NOON, compiled=compiled)
    assert verdict(few, "dearest-half")[:2] == (False, "below_quantity")
    check_invariants(result, compiled)


def test_a_threshold_on_original_prices_or_after_earlier_discounts(evaluate: Evaluator) -> None:
    # SPEC §4 item 33: "from 3,000 roubles, 5% more" after a 20% sale of higher priority.
    rules = [
        {"id": "sale", "name": "Dresses -20%", "priority": 50,
         "target": {"categories": ["dresses"]}, "effect": {"type": "percent", "percent": "20"}},
        {"id": "original", "name": "From 3,000 on original prices", "priority": 10,
         "conditions": {"min_subtotal": 300_000}, "effect": {"type": "percent", "percent": "5"}},
        {"id": "after", "name": "From 3,000 after the sale", "priority": 10,
         "threshold_basis": "after_discounts",
         "conditions": {"min_subtotal": 300_000}, "effect": {"type": "percent", "percent": "5"}},
        {"id": "steps", "name": "Steps after the sale", "priority": 5,
         "threshold_basis": "after_discounts",
         "effect": {"type": "subtotal_steps", "steps": [{"from": 200_000, "percent": "1"},
                                                        {"from": 300_000, "percent": "2"}]}},
    ]  # fmt: skip
    compiled = program(rules=rules, groups=[], promo_codes=[])
    result = calculate(evaluate, [dress("1", 350_000)], when=SATURDAY_NOON, compiled=compiled)
    # 3,500 roubles; after the sale 2,800: the original-price threshold holds, the other not
    assert verdict(result, "original")[:2] == (True, None)
    assert verdict(result, "after")[:2] == (False, "below_threshold")
    # the steps see what is left after the sale and the 5% (2,800 - 175 = 2,625): the
    # 1% step, not the 2% one the original 3,500 would reach; 1% of the line (additive)
    assert applied(result, "1")["steps"] == 3_500
    check_invariants(result, compiled)


COFFEE_CARDS = [
    {"id": "coffee-6", "name": "Every 6th coffee free", "priority": 40,
     "target": {"categories": ["coffee"]}, "effect": {"type": "stamps", "every": 6}},
    {"id": "third-visit", "name": "Every 3rd visit with a pastry: the pastry free",
     "priority": 30, "target": {"categories": ["pastry"]},
     "effect": {"type": "stamps", "every": 3, "count": "receipts"}},
]  # fmt: skip


def _stamps(result: Any, rule_id: str) -> tuple[int, int, int, int]:
    """A stamp card's (have, of, added, free) after the sale."""
    found = next(s for s in result.stamps if s.rule_id == rule_id)
    return found.have, found.every, found.added, found.free


def test_stamp_cards(evaluate: Evaluator) -> None:
    # SPEC §4 item 36: "every 6th coffee free", the progress shown to the customer.
    compiled = program(rules=COFFEE_CARDS, groups=[], promo_codes=[])
    latte = item("1", "LATTE", 2, 25_000, "coffee")
    fresh = calculate(evaluate, [latte], card(), when=SATURDAY_NOON, compiled=compiled)
    assert _stamps(fresh, "coffee-6") == (2, 6, 2, 0)  # "2 of 6"
    assert verdict(fresh, "coffee-6")[:2] == (False, "not_enough_stamps")
    assert fresh.totals.discount == 0

    # 5 stamps and a coffee: the sixth is free (but for the rouble a line keeps), and the
    # card starts again.
    one = item("1", "LATTE", 1, 25_000, "coffee")
    sixth = calculate(
        evaluate, [one], card(stamps={"coffee-6": 5}), when=SATURDAY_NOON, compiled=compiled
    )
    assert applied(sixth, "1") == {"coffee-6": 24_900}
    assert _stamps(sixth, "coffee-6") == (0, 6, 1, 1)

    # 4 stamps and three coffees: the sixth is in this receipt, and it is the cheapest one;
    # the seventh is the first stamp of the next card.
    three = [item("1", "LATTE", 2, 25_000, "coffee"), item("2", "ESPRESSO", 1, 12_000, "coffee")]
    holder = card(stamps={"coffee-6": 4})
    mixed = calculate(evaluate, three, holder, when=SATURDAY_NOON, compiled=compiled)
    assert applied(mixed, "2") == {"coffee-6": 11_900}
    assert applied(mixed, "1") == {}
    assert _stamps(mixed, "coffee-6") == (1, 6, 3, 1)
    check_invariants(mixed, compiled)

    # Counting receipts: a visit with pastries is one stamp, however many it holds; the
    # third visit's cheapest pastry is free.
    pastries = [
        item("3", "CROISSANT", 2, 15_000, "pastry"),
        item("4", "ECLAIR", 1, 9_000, "pastry"),
    ]
    third = calculate(
        evaluate, pastries, card(stamps={"third-visit": 2}), when=SATURDAY_NOON, compiled=compiled
    )
    assert applied(third, "4") == {"third-visit": 8_900}
    assert _stamps(third, "third-visit") == (0, 3, 1, 1)

    # Without a card there are no stamps to count.
    anonymous = calculate(evaluate, three, when=SATURDAY_NOON, compiled=compiled)
    assert verdict(anonymous, "coffee-6")[:2] == (False, "no_card")
    assert anonymous.stamps == ()

    # Progress is the card's per rule id: a new version that puts another rule first, so
    # that the stamp card moves in the arrays, reads the same progress.
    first = {
        "id": "first", "name": "Tops -5%", "priority": 90, "target": {"categories": ["tops"]},
        "effect": {"type": "percent", "percent": "5"},
    }  # fmt: skip
    later = program(rules=[first, *COFFEE_CARDS], groups=[], promo_codes=[])
    assert later.rule_index["coffee-6"] != compiled.rule_index["coffee-6"]
    again = calculate(evaluate, three, holder, when=SATURDAY_NOON, compiled=later)
    assert (again.stamps, again.discounts) == (mixed.stamps, mixed.discounts)


@pytest.mark.parametrize(
    ("effect", "field", "message"),
    [
        ({"type": "stamps"}, "rules[0].effect.every", "Field required"),
        ({"type": "stamps", "every": 1}, "rules[0].effect.every", "greater than or equal to 2"),
        ({"type": "stamps", "every": 6, "count": "visits"}, "rules[0].effect.count", "'units'"),
        ({"type": "stamps", "every": 6, "percent": "0"}, "rules[0].effect.percent", "than 0"),
    ],
)
def test_a_stamp_card_is_validated(effect: dict[str, Any], field: str, message: str) -> None:
    document = {**demo_program(), "rules": [{"id": "r", "name": "r", "effect": effect}],
                "promo_codes": [], "groups": []}  # fmt: skip
    with pytest.raises(ProgramInvalid) as error:
        parse_program(document)
    assert error.value.errors[0]["field"] == field
    assert message in error.value.errors[0]["message"]
