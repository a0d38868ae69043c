"""What both evaluators share: the receipt's facts before, and the result after.

Before: local time in the store's zone, the card's tier and balance, promo codes
checked against their limits. After: the raw per-line numbers of either evaluator
become a ``CalculationResult`` with messages, gifts, promo verdicts and budget use.
The rules themselves (conditions, discounts, points) are evaluated twice, by
``reference`` in plain Python and by ``service.kernels`` in numba, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from service.domain.calculation import (
    AppliedRule,
    CalculationContext,
    CalculationResult,
    Gift,
    LineResult,
    Message,
    PromoVerdict,
    RuleVerdict,
    Totals,
)
from service.domain.card import CardState
from service.domain.errors import InvalidInput
from service.domain.money import line_amount
from service.domain.receipt import Receipt
from service.rules.compiler import CompiledProgram

# Above these the kernels' 64-bit products could overflow; no real receipt comes near.
MAX_LINES = 1_000
MAX_QUANTITY = 10**7  # thousandths: 10,000 units or kilograms on one line
MAX_UNIT_PRICE = 10**9  # kopecks
MAX_RECEIPT_AMOUNT = 10**9  # kopecks: 10 million roubles
MAX_REDEEM_POINTS = 10**12


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """A presented promo code after its own checks; ``reason`` None means it unlocks rules."""

    code: str
    reason: str | None
    rule_ids: tuple[str, ...]


class ReceiptFacts(NamedTuple):
    """Receipt-level values both evaluators read; ``card`` is None unless it may earn/spend.

    A NamedTuple rather than a frozen dataclass: built once per receipt, and a frozen
    dataclass's __init__ sets each of these 17 fields through ``object.__setattr__``
    (with keywords 6.1 µs against 1.3 µs, measured on the 2-core dev box).
    """

    local_date: date
    weekday: int  # 0 = Monday
    minute: int  # minute of the local day
    holiday: bool
    card: CardState | None
    card_reason: str | None  # why card conditions fail: "no_card", "card_inactive"
    tier_index: int  # -1: no tier
    tier_before: str | None
    birthday_distance: int  # days to the nearest birthday; -1 when unknown
    purchase_number: int  # this purchase is the card's n-th
    active_points: int
    personal_bp: int  # the card's personal discount, held within 0..100 %
    amounts: tuple[int, ...]
    subtotal: int
    loyalty_subtotal: int  # lines not excluded by the POS, at original prices
    codes: tuple[CodeCheck, ...]
    unlocked_rules: frozenset[str]


@dataclass(slots=True)
class RawOutcome:
    """Per-line numbers of one evaluation; verdicts are (rule index, reason, amount, points)."""

    discounts: list[int]
    points_paid: list[int]
    points_earned: list[int]
    applied: list[list[tuple[int, int]]]
    verdicts: list[tuple[int, str | None, int, int]]
    redeemable_max: int
    redeemed: int


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class LineAmounts(NamedTuple):
    """A receipt's line amounts (kopecks, ``money.line_amount``) and their sums."""

    amounts: tuple[int, ...]
    subtotal: int
    loyalty_subtotal: int  # lines not excluded by the POS


def check_receipt_fields(receipt: Receipt) -> None:
    """Refuse a receipt whose size, timestamp or points asked for the engine cannot take."""
    if len(receipt.lines) > MAX_LINES:
        raise InvalidInput(f"a receipt holds at most {MAX_LINES} lines", code="too_many_lines")
    if receipt.timestamp.tzinfo is None:
        raise InvalidInput("the receipt timestamp needs a time zone", code="naive_timestamp")
    if not 0 <= receipt.redeem_points <= MAX_REDEEM_POINTS:
        raise InvalidInput("redeem_points is out of range", code="invalid_redeem_points")


def check_receipt(receipt: Receipt) -> LineAmounts:
    """The line amounts, after refusing input outside the engine's exact range."""
    check_receipt_fields(receipt)
    amounts = []
    for line in receipt.lines:
        if not (0 < line.quantity <= MAX_QUANTITY and 0 <= line.unit_price <= MAX_UNIT_PRICE):
            raise InvalidInput(f"line {line.line_id}: quantity or price out of range")
        amounts.append(line_amount(line.quantity, line.unit_price))
    if sum(amounts) > MAX_RECEIPT_AMOUNT:
        raise InvalidInput("the receipt amount is out of range", code="amount_out_of_range")
    loyalty = sum(a for a, ln in zip(amounts, receipt.lines, strict=True) if not ln.excluded)
    return LineAmounts(tuple(amounts), sum(amounts), loyalty)


def receipt_facts(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    checked: LineAmounts | None = None,
) -> ReceiptFacts:
    """``checked``: the line amounts when the caller checked and computed them itself (the
    kernels do, in the pass that builds their line array); by default ``check_receipt``."""
    amounts = check_receipt(receipt) if checked is None else checked
    local = receipt.timestamp.astimezone(zone(ctx.store.timezone))
    today = local.date()
    card = ctx.card if ctx.card is not None and ctx.card.is_active else None
    tier_before = _tier_before(ctx.card, program)
    codes = check_promo_codes(receipt, ctx, program, today, card)
    return ReceiptFacts(
        local_date=today,
        weekday=today.weekday(),
        minute=local.hour * 60 + local.minute,
        holiday=today in program.holidays,
        card=card,
        card_reason=None if card else ("no_card" if ctx.card is None else "card_inactive"),
        tier_index=program.tier_index(tier_before),
        tier_before=tier_before,
        birthday_distance=birthday_distance(card.birthday, today) if card else -1,
        purchase_number=card.purchase_count + 1 if card else 0,
        active_points=card.spendable_points(ctx.now) if card else 0,
        personal_bp=min(max(card.personal_discount_bp, 0), 10_000) if card else 0,
        amounts=amounts.amounts,
        subtotal=amounts.subtotal,
        loyalty_subtotal=amounts.loyalty_subtotal,
        codes=codes,
        unlocked_rules=frozenset(
            r for check in codes if check.reason is None for r in check.rule_ids
        ),
    )


def _tier_before(card: CardState | None, program: CompiledProgram) -> str | None:
    if card is None:
        return None
    return card.tier if card.tier is not None else program.tier_for_spend(card.tier_spend)


def birthday_distance(birthday: date | None, today: date) -> int:
    """Days between ``today`` and the nearest birthday (29 February counts as the 28th)."""
    if birthday is None:
        return -1
    return min(
        abs((_birthday_in(birthday, year) - today).days)
        for year in (today.year - 1, today.year, today.year + 1)
    )


def _birthday_in(birthday: date, year: int) -> date:
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def check_promo_codes(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    local_date: date,
    card: CardState | None,
) -> tuple[CodeCheck, ...]:
    """Each presented code once, upper-cased, checked against its own dates and limits."""
    checks: list[CodeCheck] = []
    seen: set[str] = set()
    for raw in receipt.promo_codes:
        code = raw.strip().upper()
        if code in seen:
            continue
        seen.add(code)
        checks.append(_check_code(code, receipt, ctx, program, local_date, card))
    return tuple(checks)


def _check_code(
    code: str,
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    local_date: date,
    card: CardState | None,
) -> CodeCheck:
    declared = program.promo_codes.get(code)
    if declared is not None:
        if declared.valid_from is not None and local_date < declared.valid_from:
            return CodeCheck(code, "inactive", ())
        if declared.valid_to is not None and local_date > declared.valid_to:
            return CodeCheck(code, "expired", ())
        limit = declared.total_limit
        if limit is not None and ctx.promo_total_uses.get(code, 0) >= limit:
            return CodeCheck(code, "used_up", ())
        reason = _per_card_reason(code, declared.per_card_limit, card)
        return CodeCheck(code, reason, tuple(declared.rules) if reason is None else ())
    held = ctx.promo_codes.get(code)
    if held is None:
        return CodeCheck(code, "unknown", ())
    if not held.active or (held.valid_from is not None and receipt.timestamp < held.valid_from):
        return CodeCheck(code, "inactive", ())
    if held.valid_to is not None and receipt.timestamp > held.valid_to:
        return CodeCheck(code, "expired", ())
    if held.uses_left is not None and held.uses_left <= 0:
        return CodeCheck(code, "used_up", ())
    reason = _per_card_reason(code, held.per_card_limit, card)
    if reason is None and held.rule_id not in program.rule_index:
        reason = "not_applicable"
    return CodeCheck(code, reason, (held.rule_id,) if reason is None else ())


def _per_card_reason(code: str, limit: int | None, card: CardState | None) -> str | None:
    """A per-card limit needs a card that may use loyalty: without one it cannot be counted."""
    if limit is None:
        return None
    if card is None:
        return "not_applicable"
    return "used_up" if card.promo_uses.get(code, 0) >= limit else None


class ResultParts(NamedTuple):
    """Everything of a ``CalculationResult`` but its lines and rule verdicts: the parts
    both evaluators, and the kernels' column-wise answer, share."""

    totals: Totals
    promo_codes: tuple[PromoVerdict, ...]
    gifts: tuple[Gift, ...]
    messages: tuple[Message, ...]
    free_delivery: bool
    tier_before: str | None
    tier_after: str | None
    budget_use: dict[str, int]
    tier_spend: int


def result_parts(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    facts: ReceiptFacts,
    raw: RawOutcome,
) -> ResultParts:
    """Totals, promo verdicts, gifts, messages, tiers and budget use from the raw numbers."""
    outcome = _AppliedSummary(program, raw)
    spend = _tier_spend(receipt, raw, facts)
    tier_after = _tier_after(facts, program, spend)
    return ResultParts(
        totals=_totals(facts, raw),
        promo_codes=_promo_verdicts(facts.codes, outcome.applied_ids),
        gifts=tuple(outcome.gifts),
        messages=_messages(receipt, ctx, program, facts, raw, tier_after, outcome.birthday),
        free_delivery=outcome.free_delivery,
        tier_before=facts.tier_before,
        tier_after=tier_after,
        budget_use=outcome.budget_use,
        tier_spend=spend,
    )


def build_result(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    facts: ReceiptFacts,
    raw: RawOutcome,
    lines: tuple[LineResult, ...] | None = None,
    rules: tuple[RuleVerdict, ...] | None = None,
) -> CalculationResult:
    """Turn one evaluator's raw numbers into the full answer (identical for both).

    ``lines`` and ``rules``: the per-line results and the rule verdicts, when the
    evaluator built them itself (the kernels do, from their arrays, and then
    ``raw.applied`` is not read); by default they are built here from ``raw``, the
    plain way the tests hold the kernels' way to.
    """
    parts = result_parts(receipt, ctx, program, facts, raw)
    return CalculationResult(
        program_version=program.version,
        lines=_line_results(receipt, program, facts, raw) if lines is None else lines,
        totals=parts.totals,
        promo_codes=parts.promo_codes,
        gifts=parts.gifts,
        rules=_rule_verdicts(program, raw) if rules is None else rules,
        messages=parts.messages,
        free_delivery=parts.free_delivery,
        tier_before=parts.tier_before,
        tier_after=parts.tier_after,
        budget_use=parts.budget_use,
        tier_spend=parts.tier_spend,
    )


class _AppliedSummary:
    """One pass over the rules that applied: their ids, gifts, delivery, birthday, budget use."""

    def __init__(self, program: CompiledProgram, raw: RawOutcome) -> None:
        self.applied_ids: set[str] = set()
        self.gifts: list[Gift] = []
        self.free_delivery = False
        self.birthday = False
        self.budget_use: dict[str, int] = {}
        for r, reason, amount, points in raw.verdicts:
            if reason is not None:
                continue
            info = program.applied_info[r]
            self.applied_ids.add(info.rule_id)
            if info.gift is not None:
                self.gifts.append(info.gift)
            self.free_delivery = self.free_delivery or info.free_delivery
            self.birthday = self.birthday or info.birthday
            if info.has_budget:
                self.budget_use[info.rule_id] = amount + points


def _rule_verdicts(program: CompiledProgram, raw: RawOutcome) -> tuple[RuleVerdict, ...]:
    verdicts = []
    for r, reason, amount, points in raw.verdicts:
        if reason is None:
            rule = program.rules[r]
            verdicts.append(RuleVerdict(rule.id, rule.name, True, None, amount, points))
        else:
            verdicts.append(program.refusal(r, reason))
    return tuple(verdicts)


def _line_results(
    receipt: Receipt, program: CompiledProgram, facts: ReceiptFacts, raw: RawOutcome
) -> tuple[LineResult, ...]:
    rules = program.rules
    lines = []
    for i, line in enumerate(receipt.lines):
        applied = tuple(
            AppliedRule(rules[r].id, rules[r].name, amount) for r, amount in raw.applied[i]
        )
        amount, discount, paid = facts.amounts[i], raw.discounts[i], raw.points_paid[i]
        final = amount - discount - paid
        lines.append(
            LineResult(line.line_id, amount, discount, paid, final, raw.points_earned[i], applied)
        )
    return tuple(lines)


def _totals(facts: ReceiptFacts, raw: RawOutcome) -> Totals:
    discount = sum(raw.discounts)
    return Totals(
        subtotal=facts.subtotal,
        discount=discount,
        points_redeemable_max=raw.redeemable_max,
        points_redeemed=raw.redeemed,
        amount_due=facts.subtotal - discount - sum(raw.points_paid),
        points_earned=sum(raw.points_earned),
    )


def _tier_spend(receipt: Receipt, raw: RawOutcome, facts: ReceiptFacts) -> int:
    """What the sale adds to tier spend: the amount after discounts (points count as
    payment); lines the POS excluded from loyalty do not count."""
    if facts.card is None:
        return 0
    return sum(
        facts.amounts[i] - raw.discounts[i]
        for i, line in enumerate(receipt.lines)
        if not line.excluded
    )


def _tier_after(facts: ReceiptFacts, program: CompiledProgram, spend: int) -> str | None:
    """Upgrade right after the sale that crosses a threshold; never a downgrade here."""
    if facts.card is None or not program.tier_codes:
        return facts.tier_before
    reached = program.tier_for_spend(facts.card.tier_spend + spend)
    if program.tier_index(reached) > facts.tier_index:
        return reached
    return facts.tier_before


def _promo_verdicts(
    codes: tuple[CodeCheck, ...], applied_ids: set[str]
) -> tuple[PromoVerdict, ...]:
    """A valid code is accepted when a rule it unlocks applied and no earlier code claimed it."""
    claimed: set[str] = set()
    verdicts = []
    for check in codes:
        reason = check.reason
        if reason is None:
            won = [r for r in check.rule_ids if r in applied_ids and r not in claimed]
            claimed.update(won)
            reason = None if won else "not_applicable"
        verdicts.append(
            PromoVerdict(check.code, "accepted" if reason is None else "rejected", reason)
        )
    return tuple(verdicts)


def _messages(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    facts: ReceiptFacts,
    raw: RawOutcome,
    tier_after: str | None,
    birthday_rule_applied: bool,
) -> tuple[Message, ...]:
    messages = []
    threshold = program.settings.offer_card_threshold
    if ctx.card is None and threshold is not None and facts.subtotal >= threshold:
        messages.append(Message("offer_card", "Offer the customer a loyalty card."))
    if ctx.card is not None and facts.card is None:
        messages.append(
            Message("card_inactive", f"The card is {ctx.card.status}: it neither earns nor spends.")
        )
    if facts.birthday_distance == 0 or birthday_rule_applied:
        messages.append(Message("birthday", "Happy birthday! Birthday offers apply."))
    if tier_after != facts.tier_before:
        messages.append(
            Message(
                "tier_upgrade",
                f"After this sale the card moves up to {program.tier_name(tier_after)}.",
            )
        )
    wanted = receipt.redeem_points
    if not receipt.redeem_max and wanted > raw.redeemed:
        messages.append(
            Message(
                "points_limited",
                f"At most {raw.redeemable_max} of the {wanted} points asked for can be spent.",
            )
        )
    return tuple(messages)
