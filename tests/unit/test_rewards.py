"""The rewards' pure rules (service/domain/reward.py): what the receipt's facts refuse,
and the discounts over the lines, exact to the kopeck and within each line's room."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.domain.reward import LineRoom, Reward, RewardAsk, Verdict, give, screen

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
PCT = Reward("PCT10", "10% off", "percent_off", 10, percent_bp=1000, max_per_receipt=3)
OFF = Reward("OFF500", "500 off", "amount_off", 500, amount=50_000)
COFFEE = Reward("COFFEE", "A free coffee", "free_product", 150, sku="COFFEE")
NEXT = Reward("NEXT10", "10% next", "coupon", 10, rule_id="coupon10", coupon_days=30)
CATALOGUE = {r.code: r for r in (PCT, OFF, COFFEE, NEXT)}


def _screen(asks: list[RewardAsk], points: int = 1_000, **facts: object) -> list[Verdict]:
    return screen(
        asks, CATALOGUE, card_active=bool(facts.get("card_active", True)), points=points,
        skus={"COFFEE": 2000}, rule_ids=frozenset({"coupon10"}), now=NOW,
    )  # fmt: skip


def test_screening_explains_each_refusal() -> None:
    archived = Reward("OLD", "old", "percent_off", 1, percent_bp=100, archived=True)
    later = Reward("LATER", "later", "percent_off", 1, percent_bp=100,
                   valid_from=NOW + timedelta(days=1))  # fmt: skip
    catalogue = {**CATALOGUE, "OLD": archived, "LATER": later}
    asks = [RewardAsk("NOPE"), RewardAsk("OLD"), RewardAsk("LATER"), RewardAsk("PCT10", 4),
            RewardAsk("COFFEE", 3), RewardAsk("PCT10", 2), RewardAsk("OFF500", 2)]  # fmt: skip
    verdicts = screen(asks, catalogue, card_active=True, points=1_000,
                      skus={"COFFEE": 2000}, rule_ids=frozenset(), now=NOW)  # fmt: skip
    assert [v.reason for v in verdicts] == [
        "unknown", "archived", "not_yet_valid", "over_limit", "not_applicable", None,
        "insufficient_points",
    ]  # fmt: skip
    assert verdicts[5].points == 20 and verdicts[6].extra == {"balance": 980}
    assert [v.reason for v in _screen([RewardAsk("NEXT10")], card_active=False)] == [
        "card_not_active"
    ]


def test_percent_amount_and_free_units_take_the_room_in_turn() -> None:
    lines = [LineRoom("COFFEE", 3000, 45_000, 44_900, False),
             LineRoom("S-1", 1000, 30_000, 29_900, False),
             LineRoom("GIFT", 1000, 10_000, 9_900, True)]  # fmt: skip
    verdicts = give(_screen([RewardAsk("COFFEE", 2), RewardAsk("OFF500")]), lines)
    coffee, off = verdicts
    assert coffee.lines == (30_000, 0, 0) and coffee.line_points == (300, 0, 0)
    assert off.lines == (14_900, 29_900, 0)  # less than 500 roubles: the room left
    percent = give(_screen([RewardAsk("PCT10", 2)]), lines)[0]
    assert percent.discount == 15_000 and percent.lines[2] == 0  # excluded lines: none


def test_a_reward_with_no_room_is_refused_and_charges_nothing() -> None:
    lines = [LineRoom("S-1", 1000, 30_000, 0, False)]
    [verdict] = give(_screen([RewardAsk("PCT10")]), lines)
    assert (verdict.reason, verdict.points, verdict.lines) == ("not_applicable", 0, ())


def test_a_coupon_gives_nothing_on_this_receipt() -> None:
    lines = [LineRoom("S-1", 1000, 30_000, 29_900, False)]
    [verdict] = give(_screen([RewardAsk("NEXT10", 2)]), lines)
    assert verdict.redeemed and verdict.points == 20 and verdict.discount == 0


rooms = st.lists(
    st.tuples(st.integers(1, 5000), st.integers(0, 10**7), st.integers(0, 10**7), st.booleans()),
    min_size=1, max_size=8,
).map(lambda rows: [
    LineRoom("COFFEE" if i % 2 else "S", qty, cost, min(room, cost), excluded)
    for i, (qty, cost, room, excluded) in enumerate(rows)
])  # fmt: skip
asks = st.lists(
    st.tuples(st.sampled_from(["PCT10", "OFF500", "COFFEE"]), st.integers(1, 3)),
    max_size=3, unique_by=lambda ask: ask[0],
).map(lambda pairs: [RewardAsk(code, count) for code, count in pairs])  # fmt: skip


@given(rooms, asks)
def test_every_split_is_exact_and_within_the_room(
    lines: list[LineRoom], wanted: list[RewardAsk]
) -> None:
    verdicts = give(_screen(wanted, points=10**6), lines)
    taken = [0] * len(lines)
    for verdict in verdicts:
        if not verdict.redeemed:
            assert verdict.points == 0 and verdict.lines == ()
            continue
        assert len(verdict.lines) == len(lines) and min(verdict.lines) >= 0
        assert sum(verdict.line_points) == verdict.points
        assert all(p == 0 for p, d in zip(verdict.line_points, verdict.lines, strict=True) if not d)
        taken = [t + d for t, d in zip(taken, verdict.lines, strict=True)]
    for line, total in zip(lines, taken, strict=True):
        assert total <= (0 if line.excluded else line.room)
