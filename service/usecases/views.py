"""The engine's answer and the card as the plain JSON shapes of SPEC §3: what the POS is
shown, what a commit records and replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.domain.card import CardState
from service.domain.units import quantity_text
from service.i18n import cashier_text
from service.kernels import Answer
from service.rules.compiler import CompiledProgram

EXPIRING_WITHIN_DAYS = 30


def next_tier(program: CompiledProgram, tier: str | None, spend: int) -> tuple[str, int] | None:
    """The tier above ``tier`` and the spend still needed for it (0 if already reached,
    until the sale or the schedule moves the card up); None at the top."""
    levels = program.document.tiers.levels
    codes = [level.code for level in levels]
    position = codes.index(tier) + 1 if tier in codes else 0
    if position >= len(levels):
        return None
    above = levels[position]
    return above.code, max(above.threshold - spend, 0)


def card_view(
    card: CardState, program: CompiledProgram, result: Answer | None, now: datetime
) -> dict[str, Any]:
    """The card as the POS sees it: in the tier it had before the sale ``result`` shows,
    or, without one, its recorded tier (None: the tier its spend reaches); where the
    program has stamp cards, its progress on each (before the sale)."""
    tier = result.tier_before if result is not None else card.tier
    if tier is None:
        tier = program.tier_for_spend(card.tier_spend)
    upcoming = next_tier(program, tier, card.tier_spend)
    view = {
        "number": card.number,
        "status": card.status,
        "tier": tier,
        "balance": card.balance(now),
        "pending": card.pending_points(now),
        "expiring": [
            {"date": day.isoformat(), "points": points}
            for day, points in card.expiring(now, EXPIRING_WITHIN_DAYS)
        ],
        "next_tier": None
        if upcoming is None
        else {"tier": upcoming[0], "spend_needed": upcoming[1]},
    }
    if program.stamp_rules:
        view["stamps"] = [
            {"rule_id": program.rule_ids[r], "name": program.rule_names[r],
             "have": card.stamps.get(program.rule_ids[r], 0), "of": program.stamp_every[r]}
            for r in program.stamp_rules
        ]  # fmt: skip
    return view


def result_view(result: Answer, language: str = "en") -> dict[str, Any]:
    """The calculation as SPEC §3 shows it, from the engine's column-wise answer. Built as
    plain dicts on purpose: measured at 17 µs per 10-line receipt with orjson.dumps,
    against 41 µs when orjson writes the frozen slots dataclasses itself."""
    t = result.totals
    body = {
        "program_version": result.program_version,
        "lines": [
            {
                "line_id": line_id, "amount": amount, "discount": discount,
                "points_paid": paid, "final_amount": final, "points_earned": earned,
                "applied": [
                    {"rule_id": rule_id, "name": name, "amount": applied_amount}
                    for rule_id, name, applied_amount in applied
                ],
                "fiscal_positions": [
                    {"quantity": quantity_text(quantity), "unit_price": price, "amount": part}
                    for quantity, price, part in fiscal
                ],
            }
            for line_id, amount, discount, paid, final, earned, applied, fiscal in zip(
                result.line_ids, result.amounts, result.discounts, result.points_paid,
                result.finals, result.points_earned, result.applied, result.fiscal, strict=True,
            )
        ],
        "totals": {
            "subtotal": t.subtotal, "discount": t.discount,
            "points_redeemable_max": t.points_redeemable_max,
            "points_redeemed": t.points_redeemed, "amount_due": t.amount_due,
            "points_earned": t.points_earned,
        },
        "promo_codes": [
            {"code": p.code, "status": p.status, "reason": p.reason} for p in result.promo_codes
        ],
        "gifts": [{"sku": g.sku, "quantity": quantity_text(g.quantity)} for g in result.gifts],
        "free_delivery": result.free_delivery,
        "rules": [
            {"rule_id": rule_id, "name": name, "applied": applied, "reason": reason,
             "amount": amount, "points": points}
            for rule_id, name, applied, reason, amount, points in result.rules
        ],
        "messages": [
            {"code": m.code, "text": cashier_text(language, m.code, m.params)}
            for m in result.messages
        ],
    }  # fmt: skip
    if result.wallet is not None and result.wallet_paid is not None:
        _wallet_view(body, result.wallet, result.wallet_paid)
    if result.stamps:
        body["stamps"] = [
            {"rule_id": s.rule_id, "name": s.name, "have": s.have, "of": s.every,
             "added": s.added, "free": s.free}
            for s in result.stamps
        ]  # fmt: skip
    return body


def _wallet_view(body: dict[str, Any], wallet: tuple[str, int, int], paid: list[int]) -> None:
    """Money from a wallet: how much each line is paid from it, the total, what is left to
    pay by other tenders, and the wallet's balance before and after the sale."""
    number, total, balance = wallet
    for line, part in zip(body["lines"], paid, strict=True):
        line["wallet_paid"] = part
    totals = body["totals"]
    totals["wallet_paid"] = total
    totals["left_to_pay"] = totals["amount_due"] - total
    body["wallet"] = {
        "number": number, "paid": total, "balance": balance, "balance_after": balance - total
    }  # fmt: skip
