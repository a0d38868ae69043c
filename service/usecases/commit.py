"""Use case: commit a paid sale to the ledger of record.

What is recorded is what the customer was shown: the calculation kept under its id
when it matches the receipt, otherwise a recalculation with the program version the
id pinned (or the current one when there was no calculation). The ledger then
re-checks, under the card's row lock, what only it can know: the receipt id is new,
the points are still there, promo codes still have uses left.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from service.domain.allowance import Allowance
from service.domain.errors import (
    Conflict,
    DomainError,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidInput,
    NotFound,
    Unavailable,
)
from service.domain.limits import RuleUse
from service.domain.receipt import Receipt
from service.domain.wallet import wallet_insufficient
from service.rules.compiler import CompiledProgram
from service.usecases.allowances import checked_allowance
from service.usecases.calculate import (
    SalePorts,
    check_lateness,
    check_receipt,
    evaluate,
    fingerprint,
    pinned_version,
    receipt_json,
)
from service.usecases.ports import (
    RECEIPT_LINE_FIELDS,
    CalculationRecord,
    CalculationRecords,
    Committed,
    Ledger,
    RefusalReason,
    Refused,
    Replayed,
    SaleEntry,
)
from service.usecases.rewards import ledger_rewards, refuse_unredeemed

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sale:
    receipt: Receipt
    transaction_id: str
    calculation_id: str | None
    allowance: str | None = None  # an offline till's allowance token, spent from


@dataclass(frozen=True, slots=True)
class Shown:
    """What the customer was shown, and what the ledger needs besides."""

    view: dict[str, Any]
    program: CompiledProgram
    budget_use: dict[str, int]
    tier_spend: int
    rule_uses: tuple[RuleUse, ...]
    held: bool = False  # its calculation held points (known from its record)


def request_hash(transaction_id: str, receipt_text: bytes) -> str:
    """Idempotency digest: the same sale sent again hashes the same (the calculation id
    aside). The digest of ``orjson.dumps([transaction_id, receipt])``, written around
    the receipt's ``receipt_json`` rather than serialising the receipt a second time."""
    text = b"[" + orjson.dumps(transaction_id) + b"," + receipt_text + b"]"
    return hashlib.sha256(text).hexdigest()


async def _shown(
    sale: Sale,
    receipt_text: bytes,
    *,
    now: datetime,
    ports: SalePorts,
    own_hold: str | None,
    language: str,
) -> Shown:
    version = pinned_version(sale.calculation_id)
    programs = ports.programs
    program = await (
        programs.at(sale.receipt.timestamp) if version is None else programs.get(version)
    )
    if sale.calculation_id is not None:
        record = await _kept(ports.records, sale.calculation_id)
        if record is not None and record["fingerprint"] == fingerprint(receipt_text):
            _refuse_short_redemption(sale.receipt, record["view"], None)
            refuse_unredeemed(record["view"])
            uses = tuple(RuleUse(*use) for use in record.get("rule_uses", ()))  # type: ignore[arg-type]
            held = bool(record.get("held", False))
            return Shown(
                record["view"], program, record["budget_use"], record["tier_spend"], uses, held
            )
    receipt = sale.receipt
    card = None if receipt.card is None else await ports.cards.load(receipt.card, now, program)
    calc = await evaluate(receipt, card, program, now=now, ports=ports, calculation_id=own_hold)
    view = {"calculation_id": sale.calculation_id, **calc.view(language)}
    balance = None if card is None else card.spendable_points(now, own_hold)
    _refuse_short_redemption(receipt, view, balance, allowance=sale.allowance is not None)
    refuse_unredeemed(view)
    result = calc.result
    # Without its record, whether the calculation held points is not known here: the
    # ledger takes its hold if it has one (a hold spent but left open would keep its
    # points from other tills until it lapsed; a Redis Cluster run of the holds test
    # showed it), at the cost of the one-by-one path for this sale.
    held = sale.calculation_id is not None
    return Shown(view, program, dict(result.budget_use), result.tier_spend, result.rule_uses, held)


def _refuse_short_redemption(
    receipt: Receipt, view: Mapping[str, Any], balance: int | None, allowance: bool = False
) -> None:
    """The customer agreed to spend ``receipt.redeem_points``: a sale that would spend
    fewer is refused and nothing is written, never silently repriced (the till collects
    the difference in cash only if told). 409 when the card's balance, now lower than
    when it was shown, is what holds it back; else 422 with the most this receipt allows
    (the program's share cap and floors). ``"redeem_points": "max"`` takes what it can."""
    totals = view["totals"]
    redeemed = totals["points_redeemed"]
    if receipt.redeem_max or redeemed >= receipt.redeem_points:
        return
    if balance is not None and redeemed >= balance and allowance:
        raise _allowance_refused(balance)
    if balance is not None and redeemed >= balance:
        raise InsufficientPoints(
            "the card no longer holds the points asked for", extra={"balance": balance}
        )
    raise InvalidInput(
        "redeem_points is more than this receipt allows",
        code="redeem_over_limit",
        extra={"points_redeemable_max": totals["points_redeemable_max"]},
    )


async def _kept(records: CalculationRecords, calculation_id: str) -> CalculationRecord | None:
    try:
        return await records.load(calculation_id)
    except Exception:  # the record is an optimisation; recalculating is always correct
        _log.warning("calculation record unavailable", exc_info=True)
        return None


def _accrual_dates(
    program: CompiledProgram, occurred_at: datetime, now: datetime
) -> tuple[datetime, datetime | None]:
    """Points activate after the return window counted from the sale, then live their
    validity; a receipt sent so late that they would arrive expired has them live their
    validity from now instead (SPEC §3.3: points never arrive already expired)."""
    settings = program.settings
    activates = occurred_at + timedelta(days=settings.pending_days)
    expires = None
    if settings.validity_days is not None:
        expires = activates + timedelta(days=settings.validity_days)
        if expires <= now:
            expires = now + timedelta(days=settings.validity_days)
    return activates, expires


def _committed_lines(receipt: Receipt, view: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Per-line results as committed, with what a refund needs (sku and quantity sold) and
    what a simulation of the ledger's own receipts needs (SPEC §10.1: category, brand,
    unit price, excluded; receipts committed before issue 19 lack these four)."""
    return tuple(
        {**shown, **{field: getattr(line, field) for field in RECEIPT_LINE_FIELDS}}
        for line, shown in zip(receipt.lines, view["lines"], strict=True)
    )


def sale_entry(
    sale: Sale,
    shown: Shown,
    *,
    now: datetime,
    receipt_text: bytes,
    allowance: Allowance | None = None,
) -> SaleEntry:
    receipt, view, program = sale.receipt, shown.view, shown.program
    totals = view["totals"]
    activates_at, expires_at = _accrual_dates(program, receipt.timestamp, now)
    window = program.document.tiers.window_days
    response = {
        "transaction_id": sale.transaction_id, "status": "committed",
        **{k: view[k] for k in ("calculation_id", "program_version", "lines", "totals",
                                "promo_codes", "gifts", "free_delivery", "messages")},
    }  # fmt: skip
    wallet = view.get("wallet")
    if wallet is not None:
        response["wallet"] = wallet
    rewards: list[dict[str, Any]] = []
    if "rewards" in view:
        rewards, response["rewards"] = ledger_rewards(view, now)
    stamps = view.get("stamps")
    if stamps is not None:
        response["stamps"] = stamps
    return SaleEntry(
        now=now,
        store_id=receipt.store_id,
        transaction_id=sale.transaction_id,
        request_hash=request_hash(sale.transaction_id, receipt_text),
        calculation_id=sale.calculation_id,
        program_version=program.version,
        card=receipt.card,
        occurred_at=receipt.timestamp,
        subtotal=totals["subtotal"],
        discount=totals["discount"],
        points_paid=sum(line["points_paid"] for line in view["lines"]),
        amount_due=totals["amount_due"],
        points_redeemed=totals["points_redeemed"],
        points_earned=totals["points_earned"],
        lines=_committed_lines(receipt, view),
        response=response,
        activates_at=activates_at,
        expires_at=expires_at,
        tier_spend=shown.tier_spend,
        tier_window_start=None if window is None else now - timedelta(days=window),
        tiers=tuple((t.code, t.threshold) for t in program.document.tiers.levels),
        promo_codes=tuple(p["code"] for p in view["promo_codes"] if p["status"] == "accepted"),
        budgets=tuple(
            (rule_id, amount, program.rules[program.rule_index[rule_id]].budget or 0)
            for rule_id, amount in sorted(shown.budget_use.items())
        ),
        rule_uses=tuple(sorted(shown.rule_uses)),
        held=shown.held,
        allowance=None if allowance is None else allowance.allowance_id,
        referral_points=program.settings.referral_points,
        wallet=None if not wallet or not wallet["paid"] else (wallet["number"], wallet["paid"]),
        rewards=tuple(rewards),
        channel=receipt.channel,
        payment_method=receipt.payment_method,
        stamps=tuple(
            (s["rule_id"], s["added"], s["free"], s["of"])
            for s in stamps or ()
            if s["added"] or s["free"]
        ),
    )


def _allowance_refused(points_left: int) -> Conflict:
    return Conflict(
        "the allowance does not cover these points: spent, ended or released",
        code="allowance_refused",
        extra={"points_left": points_left},
    )


def _refusal(refused: Refused) -> DomainError:
    reason = refused.reason
    if reason is RefusalReason.CONFLICT:
        return IdempotencyConflict(
            "this transaction_id was already committed with a different receipt"
        )
    if reason is RefusalReason.INSUFFICIENT:
        return InsufficientPoints(
            "the card no longer holds the points asked for", extra={"balance": refused.balance}
        )
    if reason is RefusalReason.CARD_NOT_FOUND:
        return NotFound("no such loyalty card", code="card_not_found")
    if reason is RefusalReason.CARD_NOT_ACTIVE:
        return Conflict(f"the card is {refused.status}", code="card_not_active")
    if reason is RefusalReason.ALLOWANCE_REFUSED:
        return _allowance_refused(refused.balance or 0)
    if reason is RefusalReason.WALLET_NOT_FOUND:
        return NotFound("no such wallet", code="wallet_not_found")
    if reason is RefusalReason.WALLET_NOT_ACTIVE:
        return Conflict(
            f"the wallet is {refused.status}",
            code="wallet_not_active",
            extra={"status": refused.status},
        )
    if reason is RefusalReason.WALLET_INSUFFICIENT:
        return wallet_insufficient(refused.balance or 0)
    if reason is RefusalReason.STAMPS_CHANGED:
        return Conflict(
            f"the card no longer holds the stamps of rule {refused.code}'s free unit (another"
            " sale of the card used them); calculate the receipt again",
            code="stamps_changed",
            extra={"rule_id": refused.code},
        )
    if reason is RefusalReason.LIMIT_REACHED:
        return Conflict(
            f"rule {refused.code} no longer applies: its budget or use cap is reached;"
            " calculate the receipt again",
            code="rule_limit_reached",
            extra={"rule_id": refused.code},
        )
    return Conflict(f"promo code {refused.code} can no longer be used", code=reason.value)


async def _replayed(
    ledger: Ledger, sale: Sale, receipt_text: bytes, refusal: DomainError
) -> dict[str, Any]:
    """The stored answer of a sale already recorded under this receipt id, else ``refusal``.

    What is recorded answers for itself: a resent commit gets its first answer whatever
    the card holds now, whether the calculation record is still kept, whether the card
    was blocked since. The lookup is made only when the sale would be refused, so a new
    sale pays no round trip for it; the ledger checks the receipt id again anyway."""
    recorded = await ledger.recorded_sale(sale.receipt.store_id, sale.transaction_id)
    if recorded is None:
        raise refusal
    if recorded.request_hash != request_hash(sale.transaction_id, receipt_text):
        raise IdempotencyConflict(
            "this transaction_id was already committed with a different receipt"
        ) from refusal
    return recorded.response


async def _seen_limit(
    sale: Sale, program: CompiledProgram, *, now: datetime, ports: SalePorts
) -> None:
    """A budget or a cap was reached: the view of them, and the card's own uses, are read
    again now, so that the till's next calculation no longer applies the rule."""
    try:
        await ports.promotions.refresh()
        if sale.receipt.card is not None:
            await ports.cards.refresh(sale.receipt.card, now, program)
    except Exception:  # the background refresh catches up within seconds anyway
        _log.warning("promotion state not refreshed", exc_info=True)


async def commit(
    sale: Sale, *, now: datetime, ports: SalePorts, ledger: Ledger, language: str = "en"
) -> tuple[dict[str, Any], bool]:
    """Record the sale; returns (response, replayed). A replay returns the first answer."""
    receipt_text = receipt_json(sale.receipt)
    try:
        check_receipt(sale.receipt, now, ports.limits)
        check_lateness(sale.receipt, now, ports.programs.current)
        allowance = None
        if sale.allowance is not None:
            receipt = sale.receipt
            allowance = await checked_allowance(
                sale.allowance, receipt.card, receipt.store_id, now=now, ports=ports
            )
        own_hold = sale.calculation_id if allowance is None else allowance.allowance_id
        shown = await _shown(
            sale, receipt_text, now=now, ports=ports, own_hold=own_hold, language=language
        )
    except Unavailable:
        raise
    except DomainError as refusal:
        return await _replayed(ledger, sale, receipt_text, refusal), True
    entry = sale_entry(sale, shown, now=now, receipt_text=receipt_text, allowance=allowance)
    outcome = await ledger.commit_sale(entry)
    if isinstance(outcome, Refused):
        if outcome.reason is RefusalReason.LIMIT_REACHED:
            await _seen_limit(sale, shown.program, now=now, ports=ports)
        if outcome.reason is RefusalReason.STAMPS_CHANGED and sale.receipt.card is not None:
            await ports.cards.refresh(sale.receipt.card, now, shown.program)
        raise _refusal(outcome)
    await ports.promotions.forget(sale.receipt.promo_codes)
    # A committed sale's new card state is cached by the ledger, with its batch.
    if isinstance(outcome, Replayed) and sale.receipt.card is not None:
        await ports.cards.refresh(sale.receipt.card, now, shown.program)
    if isinstance(outcome, Committed) and outcome.referrer is not None:
        await ports.cards.refresh(outcome.referrer, now, shown.program)
    return outcome.response, isinstance(outcome, Replayed)
