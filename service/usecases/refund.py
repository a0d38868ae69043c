"""Use cases: return goods of a committed sale, or cancel it whole.

The reversal is exact per line (``service.domain.reversal``); the program's policy
decides what happens to earned points the customer has already spent. The steps run in
one ledger transaction with the sale's row locked (``Returns.session``), so two returns
of one sale, or a return and a commit of the same card, never interleave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from service.domain.errors import Conflict, IdempotencyConflict
from service.domain.reversal import ReturnRequest, Reversal, Shortfall, reverse, settle_shortfall
from service.domain.units import quantity_text
from service.usecases.ports import CardAfter, CardStates, Programs, Returns, ReturnSession


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).digest()


async def refund(
    store_id: str,
    transaction_id: str,
    refund_id: str,
    lines: Mapping[str, int] | None,
    *,
    now: datetime,
    programs: Programs,
    cards: CardStates,
    returns: Returns,
    cancel: bool = False,
) -> dict[str, Any]:
    """Return ``lines`` (line id -> thousandths; None: all that is left) of the sale; the
    answer, or the first answer again for a refund id already recorded."""
    program = programs.current
    settings = program.settings
    tiers = program.document.tiers
    request = ReturnRequest(
        store_id=store_id,
        transaction_id=transaction_id,
        refund_id=refund_id,
        request_hash=_digest(transaction_id, refund_id, None if lines is None else dict(lines)),
        lines=lines,
        now=now,
        policy=settings.refund_spent_policy,
        point_value=settings.point_value,
        cancel=cancel,
        tiers_on_return=tuple((t.code, t.threshold) for t in tiers.levels)
        if tiers.downgrade == "on_return" and tiers.levels
        else None,
        tier_window_start=None
        if tiers.window_days is None
        else now - timedelta(days=tiers.window_days),
    )
    async with returns.session(request) as session:
        recorded = await session.recorded()
        if recorded is not None:
            if (recorded.transaction_id, recorded.request_hash) != (
                transaction_id,
                request.request_hash,
            ):
                raise IdempotencyConflict("this refund_id was already used for another return")
            return recorded.response
        response = await _return(session, request)
    for number in (session.sale.card, session.referrer, session.stamps_card):
        if number is not None:
            await cards.refresh(number, now, program)
    return response


async def _return(session: ReturnSession, request: ReturnRequest) -> dict[str, Any]:
    sale = session.sale
    if sale.cancelled:
        raise Conflict("the sale was cancelled", code="sale_cancelled")
    returned = await session.returned_so_far()
    reversal = reverse(sale.lines, sale.points_redeemed, returned, request.lines)
    on_card = None
    coupons: tuple[list[str], int] = ([], 0)
    if sale.card is not None:
        if reversal.complete:
            coupons = await session.void_coupons()
        on_card = await _reverse_on_card(session, request, reversal, coupons[1])
    wallet = None
    if reversal.wallet_back:
        wallet = await session.give_back_to_wallet(reversal.wallet_back)
    now_returned = dict(returned)
    for line in reversal.lines:
        now_returned[line.line_id] = now_returned.get(line.line_id, 0) + line.quantity
    await session.return_limits(now_returned, reversal.complete)
    if reversal.complete:
        await session.release_promo_codes()
    if request.cancel:
        await session.mark_cancelled()
    answer = return_answer(request, reversal, on_card, wallet)
    _rewards_answer(answer, reversal, coupons)
    return await session.record(reversal, answer)


async def _reverse_on_card(
    session: ReturnSession, request: ReturnRequest, reversal: Reversal, coupon_points: int = 0
) -> tuple[Shortfall, CardAfter, int]:
    """Earned points back from the card, spent ones back to it (on rewards too: the
    returned lines' share, and ``coupon_points`` of the coupons voided), the shortfall
    settled by the program's policy, the tier spend taken back (and the tier with it,
    where the program moves tiers down at a return). A sale reversed whole no longer
    counts as a purchase, its stamps move back, and a referee's first purchase takes both
    referral bonuses back with it."""
    missing = await session.take_back_earned(reversal.points_earned_back)
    referral = 0
    if reversal.complete:
        referral, referral_missing = await session.take_back_referral()
        missing += referral_missing
        await session.uncount_purchase()
        await session.take_back_stamps()
    await session.give_back_spent(reversal.points_paid_back)
    await session.give_back_rewards(reversal.reward_points_back + coupon_points)
    cash = reversal.money - reversal.wallet_back  # a wallet's money goes back to it, whole
    shortfall = settle_shortfall(request.policy, missing, cash, request.point_value)
    if shortfall.debt:
        await session.owe(shortfall.debt)
    if reversal.tier_spend:
        await session.take_back_tier_spend(reversal.tier_spend)
        if request.tiers_on_return is not None:
            await session.move_tier_down(request.tiers_on_return, request.tier_window_start)
    return shortfall, await session.card_after(reversal), referral


def _rewards_answer(
    answer: dict[str, Any], reversal: Reversal, coupons: tuple[list[str], int]
) -> None:
    """Where the sale redeemed rewards: their points given back (per line, for the lines'
    discounts; in all, with the coupons voided) and the coupons voided."""
    codes, coupon_points = coupons
    if not reversal.reward_points_back and not codes:
        return
    for shown, line in zip(answer["lines"], reversal.lines, strict=True):
        shown["reward_points_returned"] = line.reward_points_back
    answer["totals"]["reward_points_returned"] = reversal.reward_points_back + coupon_points
    answer["coupons_voided"] = codes


def return_answer(
    request: ReturnRequest,
    reversal: Reversal,
    on_card: tuple[Shortfall, CardAfter, int] | None,
    wallet: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The POS's answer to a return (``RefundResponse``); where the sale paid from a
    wallet, what goes back to it, which the till does not pay out."""
    shortfall, card, referral = on_card if on_card is not None else (Shortfall(0, 0), None, 0)
    answer: dict[str, Any] = {
        "refund_id": request.refund_id,
        "transaction_id": request.transaction_id,
        "status": "cancelled" if request.cancel else "refunded",
        "lines": [
            {"line_id": line.line_id, "quantity": quantity_text(line.quantity),
             "amount": line.money, "points_returned": line.points_paid_back,
             "points_taken": line.points_earned_back}
            for line in reversal.lines
        ],
        "totals": {
            "amount": reversal.money, "withhold": shortfall.withhold,
            "cash_refund": reversal.money - shortfall.withhold,
            "points_returned": reversal.points_paid_back,
            "points_taken": reversal.points_earned_back, "debt": shortfall.debt,
            "referral_taken": referral,
        },
        "policy": request.policy,
        "card": None if card is None else {
            "number": card.number, "status": card.status, "tier": card.tier,
            "balance": card.balance, "pending": card.pending,
        },
    }  # fmt: skip
    if reversal.wallet_back:
        for shown, line in zip(answer["lines"], reversal.lines, strict=True):
            shown["wallet_returned"] = line.wallet_back
        totals = answer["totals"]
        totals["wallet_returned"] = reversal.wallet_back
        totals["cash_refund"] -= reversal.wallet_back
        if wallet is not None:
            answer["wallet"] = {"number": wallet[0], "status": wallet[1]}
    return answer


async def cancel(
    store_id: str,
    transaction_id: str,
    *,
    now: datetime,
    programs: Programs,
    cards: CardStates,
    returns: Returns,
) -> dict[str, Any]:
    """Void a committed sale entirely (whatever was not returned yet); idempotent."""
    return await refund(
        store_id,
        transaction_id,
        f"cancel:{transaction_id}",
        None,
        now=now,
        programs=programs,
        cards=cards,
        returns=returns,
        cancel=True,
    )
