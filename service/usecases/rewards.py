"""Use cases: the rewards catalogue (SPEC §4 item 31), at the till and in the back office.

At the till a receipt asks for rewards (``"rewards": [{"code": ..., "count": n}]``);
``redeem`` screens them against the catalogue and the card, keeps their points out of
what the receipt may pay with (held, as another till's hold is, for the engine), and
gives their discounts on what the lines still cost after the engine's answer
(``service.domain.reward``). The answer shows each reward asked: redeemed with its
points, its discount per line (or the coupon it issues), or refused with a reason; a
commit refuses a receipt whose rewards are not all redeemed. The ledger
(``loyalty_commit``) takes the points from the card's lots under its lock, records the
redemption, issues the coupons (single-use promo codes bound to the card) and queues a
``reward_issued`` event; a return gives the points back with their expiry and voids
coupons not used yet.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.card import CardState
from service.domain.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from service.domain.fiscal import fiscal_positions
from service.domain.receipt import Receipt
from service.domain.reward import (
    LineRoom,
    Reward,
    Verdict,
    give,
    line_points,
    points_reserved,
    screen,
)
from service.domain.wallet import points_without_wallet
from service.kernels import Answer
from service.rules.compiler import CompiledProgram

# The engine sees a reward's points as held by this pseudo-calculation: not there to pay.
RESERVED = "\x00rewards"
_FOREVER = datetime.max.replace(tzinfo=UTC)
COUPON_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # as promo codes: read aloud, typed
COUPON_LENGTH = 10

Evaluate = Callable[[CardState | None], Awaitable[Answer]]


def skus_on(receipt: Receipt) -> dict[str, int]:
    """Thousandths of each SKU on the lines the till did not exclude."""
    units: dict[str, int] = {}
    for line in receipt.lines:
        if not line.excluded:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


def reserved_card(card: CardState | None, points: int) -> CardState | None:
    """The card as the engine should see it: ``points`` of it spent on rewards already."""
    if card is None or points == 0:
        return card
    return dataclasses.replace(card, holds=(*card.holds, (RESERVED, points, _FOREVER)))


async def redeem(
    receipt: Receipt,
    card: CardState | None,
    catalogue: dict[str, Reward],
    program: CompiledProgram,
    *,
    now: datetime,
    own_hold: str | None,
    evaluate: Evaluate,
) -> tuple[Answer, tuple[Verdict, ...]]:
    """The engine's answer with the receipt's rewards given, and each reward's verdict.
    A reward that finds no room on the lines is refused and its points freed, and the
    receipt evaluated again without it (at most once per reward)."""
    verdicts = screen(
        receipt.rewards,
        catalogue,
        card_active=card is not None and card.is_active,
        points=0 if card is None else card.spendable_points(now, own_hold),
        skus=skus_on(receipt),
        rule_ids=frozenset(program.rule_index),
        now=receipt.timestamp,
    )
    for _ in range(len(verdicts) + 1):
        reserved = points_reserved(verdicts)
        result = await evaluate(reserved_card(card, reserved))
        verdicts = give(verdicts, _rooms(receipt, result, program))
        if points_reserved(verdicts) == reserved:
            break
    return with_rewards(result, verdicts, receipt, program), tuple(verdicts)


def _rooms(receipt: Receipt, result: Answer, program: CompiledProgram) -> list[LineRoom]:
    floor = program.settings.min_line_amount
    return [
        LineRoom(line.sku, line.quantity, amount - discount, final - min(amount, floor),
                 line.excluded)
        for line, amount, discount, final in zip(
            receipt.lines, result.amounts, result.discounts, result.finals, strict=True
        )
    ]  # fmt: skip


def with_rewards(
    result: Answer, verdicts: Sequence[Verdict], receipt: Receipt, program: CompiledProgram
) -> Answer:
    """The answer with the rewards' discounts on its lines: each line's discount, final
    amount, fiscal positions and what it applied; the receipt's totals; the tier spend
    (a reward is a discount); the points earned shrunk in proportion to the money the
    rewards' points now pay (as for points paid, what points pay earns nothing)."""
    given = [v for v in verdicts if v.redeemed and v.lines]
    if not given:
        return result
    count = len(result.line_ids)
    off = [sum(v.lines[i] for v in given) for i in range(count)]
    total = sum(off)
    discounts = [d + o for d, o in zip(result.discounts, off, strict=True)]
    finals = [f - o for f, o in zip(result.finals, off, strict=True)]
    applied = [list(a) for a in result.applied]
    for verdict in given:
        assert verdict.reward is not None
        for i, part in enumerate(verdict.lines):
            if part:
                applied[i].append((f"reward:{verdict.reward.code}", verdict.reward.name, part))
    tender = program.settings.fiscal_mode == "tender"
    fiscal = [
        fiscal_positions(line.quantity, final + (paid if tender else 0)) if o else positions
        for line, final, paid, o, positions in zip(
            receipt.lines, finals, result.points_paid, off, result.fiscal, strict=True
        )
    ]
    due = result.totals.amount_due
    earned, kept = points_without_wallet(
        result.points_earned, [verdict[5] for verdict in result.rules], total, due
    )
    rules = [(*verdict[:5], points) for verdict, points in zip(result.rules, kept, strict=True)]
    totals = dataclasses.replace(
        result.totals,
        discount=result.totals.discount + total,
        amount_due=due - total,
        points_earned=sum(earned),
    )
    return result._replace(
        discounts=discounts, finals=finals, applied=applied, fiscal=fiscal, rules=rules,
        points_earned=earned, totals=totals, tier_spend=max(result.tier_spend - total, 0),
    )  # fmt: skip


def rewards_view(body: dict[str, Any], verdicts: Sequence[Verdict]) -> None:
    """The rewards asked, in the answer: each with its status, the points it charges and
    the discount it gives (a coupon: the rule it unlocks and for how many days), or the
    reason it was refused; each line's share of the rewards' points; the points in all."""
    body["rewards"] = [_verdict_view(v) for v in verdicts]
    per_line = line_points(verdicts, len(body["lines"]))
    if any(per_line):
        for line, points in zip(body["lines"], per_line, strict=True):
            line["reward_points"] = points
    body["totals"]["reward_points"] = points_reserved(verdicts)


def _verdict_view(verdict: Verdict) -> dict[str, Any]:
    reward = verdict.reward
    shown: dict[str, Any] = {
        "code": verdict.ask.code,
        "count": verdict.ask.count,
        "status": "redeemed" if verdict.redeemed else "rejected",
        "reason": verdict.reason,
        "name": None if reward is None else reward.name,
        "kind": None if reward is None else reward.kind,
        "points": verdict.points,
        "discount": verdict.discount,
    }
    if verdict.extra:
        shown.update(verdict.extra)
    if reward is not None and reward.kind == "coupon" and verdict.redeemed:
        shown["coupon"] = {"rule_id": reward.rule_id, "valid_days": reward.coupon_days}
    return shown


def refuse_unredeemed(view: dict[str, Any]) -> None:
    """A commit spends what the customer agreed to: a reward asked but refused refuses the
    sale, with the reason the calculation showed, and nothing is written."""
    for shown in view.get("rewards", ()):
        if shown["status"] == "redeemed":
            continue
        code, reason = shown["code"], shown["reason"]
        extra = {"reward": code, "reason": reason}
        if reason == "unknown":
            raise NotFound(f"no reward {code!r} in the catalogue", code="reward_not_found")
        if reason == "insufficient_points":
            raise InsufficientPoints(
                f"the card does not hold the points reward {code!r} costs",
                extra={"balance": shown.get("balance", 0), "reward": code},
            )
        if reason == "card_not_active":
            raise Conflict("the card is not active: it spends no points", code=reason, extra=extra)
        if reason in ("archived", "not_yet_valid", "expired"):
            raise Conflict(f"reward {code!r} cannot be redeemed: {reason}",
                           code="reward_not_active", extra=extra)  # fmt: skip
        raise InvalidInput(f"reward {code!r} does not apply to this receipt: {reason}",
                           code="reward_not_applicable", extra=extra)  # fmt: skip


def coupon_code() -> str:
    """A coupon's code: ``R`` and ten random characters of the promo codes' alphabet."""
    return "R" + "".join(secrets.choice(COUPON_ALPHABET) for _ in range(COUPON_LENGTH))


def ledger_rewards(
    view: dict[str, Any], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The redeemed rewards as the ledger records them, each coupon with fresh codes
    valid for the reward's days from ``now``; and the answer's rewards with those codes."""
    entries, shown = [], []
    for reward in view.get("rewards", ()):
        reward = dict(reward)
        if reward["status"] == "redeemed":
            entry = {key: reward[key] for key in ("code", "kind", "count", "points", "discount")}
            coupon = reward.get("coupon")
            if coupon is not None:
                valid_to = now + timedelta(days=coupon["valid_days"])
                codes = [coupon_code() for _ in range(reward["count"])]
                entry["coupons"] = codes
                entry["rule_id"] = coupon["rule_id"]
                entry["valid_to"] = valid_to.isoformat()
                reward["coupon"] = {**coupon, "codes": codes, "valid_to": valid_to.isoformat()}
            entries.append(entry)
        shown.append(reward)
    return entries, shown
