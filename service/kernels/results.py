"""The one answer builder: what either evaluator computed, as the answer the POS is shown.

Both evaluators end in a ``RawOutcome`` (the reference builds it as it goes, the
kernels' output arrays become one in ``raw_outcome``), and ``build_answer`` turns it
into an ``Answer``: by column, no per-line or per-rule objects. /v1/calculate,
/v1/commit and a draft's dry run all show this one answer (``usecases.views``).

Column-wise because the answer's objects were most of the evaluation's Python time:
on the benchmark's 10-line receipt (demo program) the kernel call and the answer's
dicts took 47 µs this way against 61 µs through ~30 frozen dataclasses per receipt
(best of 7 interleaved rounds, idle 2-core dev box).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.domain.calculation import (
    CalculationContext,
    Gift,
    Message,
    PromoVerdict,
    StampProgress,
    Totals,
)
from service.domain.fiscal import Position, fiscal_positions
from service.domain.limits import RuleUse
from service.domain.receipt import Receipt
from service.kernels._layout import T_REDEEMABLE, T_REDEEMED
from service.kernels.facts import CodeCheck, ReceiptFacts
from service.rules.codes import REASONS
from service.rules.compiler import CompiledProgram

IntArray = npt.NDArray[np.int64]
Applied = tuple[str, str, int]  # rule id, name, discount on the line
# rule id, name, applied, reason, amount, points: the fields of a rule's verdict in the answer
Verdict = tuple[str, str, bool, str | None, int, int]

_REASON_TEXT: tuple[str | None, ...] = tuple(reason or None for reason in REASONS)


class RawOutcome(NamedTuple):
    """One evaluation's numbers. Per line: ``discounts``, ``points_paid``, ``points_earned``
    and ``finals`` (amount - discount - points paid). ``applied`` holds (line, rule index,
    amount) in the order the discounts were given; ``verdicts`` (rule index, reason or
    None, amount, points) per candidate rule, in evaluation order, and beside them each
    one's ``stamps_added`` and ``stamps_free`` (0 but for stamp rules)."""

    discounts: list[int]
    points_paid: list[int]
    points_earned: list[int]
    finals: list[int]
    applied: Sequence[Sequence[int]]
    verdicts: list[tuple[int, str | None, int, int]]
    redeemable_max: int
    redeemed: int
    stamps_added: list[int]
    stamps_free: list[int]


class Answer(NamedTuple):
    """A receipt's calculation (SPEC §3), by column.

    Line ``i`` is ``line_ids[i]``, ``amounts[i]``, ... ``applied[i]`` (its discounts in the
    order they were given); ``rules`` holds a verdict per candidate rule. ``tier_spend``
    is what the sale adds to the card's tier spend, ``budget_use`` what it takes of
    campaign budgets, ``rule_uses`` the uses it takes of capped rules: the ledger records
    them on commit. ``fiscal`` holds each line's fiscal positions.
    """

    program_version: int
    line_ids: list[str]
    amounts: tuple[int, ...]
    discounts: list[int]
    points_paid: list[int]
    finals: list[int]
    points_earned: list[int]
    applied: list[list[Applied]]
    rules: list[Verdict]
    totals: Totals
    promo_codes: tuple[PromoVerdict, ...]
    gifts: tuple[Gift, ...]
    messages: tuple[Message, ...]
    free_delivery: bool
    tier_before: str | None
    tier_after: str | None
    budget_use: dict[str, int]
    tier_spend: int
    fiscal: list[tuple[Position, ...]]
    rule_uses: tuple[RuleUse, ...]  # a use of each capped rule that applied
    # Money from a wallet (usecases.wallets.pay_from_wallet): per line, and the wallet's
    # number, the kopecks it pays and what it held before; None: no wallet was asked.
    wallet_paid: list[int] | None = None
    wallet: tuple[str, int, int] | None = None
    # The card's stamp cards that the receipt's goods touch, after the sale.
    stamps: tuple[StampProgress, ...] = ()


def raw_outcome(
    line_out: IntArray, verdicts: IntArray, applied: IntArray, totals: IntArray
) -> RawOutcome:
    """The kernels' outputs (``verdicts`` and ``applied`` cut to their counts) as a
    ``RawOutcome``: columns through ``tolist``, so every number is a Python int."""
    redeemable_max, redeemed = totals[T_REDEEMABLE : T_REDEEMED + 1].tolist()
    discounts, points_paid, points_earned, finals = line_out.T.tolist()  # O_* order
    rules, reasons, amounts, points, added, free = verdicts.T.tolist()  # V_* order
    reason_texts = [_REASON_TEXT[reason] for reason in reasons]
    return RawOutcome(
        discounts,
        points_paid,
        points_earned,
        finals,
        applied.tolist(),  # A_LINE, A_RULE, A_AMOUNT
        list(zip(rules, reason_texts, amounts, points, strict=True)),
        redeemable_max,
        redeemed,
        added,
        free,
    )


def build_answer(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    facts: ReceiptFacts,
    raw: RawOutcome,
) -> Answer:
    """The answer from one evaluation's numbers, the same for both evaluators."""
    summary = _AppliedSummary(program, raw, facts)
    spend = _tier_spend(receipt, raw, facts)
    tier_after = _tier_after(facts, program, spend)
    return Answer(
        program.version,
        [line.line_id for line in receipt.lines],
        facts.amounts,
        raw.discounts,
        raw.points_paid,
        raw.finals,
        raw.points_earned,
        _applied_per_line(program, raw),
        _verdicts(program, raw),
        _totals(facts, raw),
        _promo_verdicts(facts.codes, summary.applied_ids),
        tuple(summary.gifts),
        _messages(receipt, ctx, program, facts, raw, tier_after, summary.birthday),
        summary.free_delivery,
        facts.tier_before,
        tier_after,
        summary.budget_use,
        spend,
        _fiscal(receipt, program, raw),
        tuple(summary.rule_uses),
        stamps=_stamps(program, facts, raw) if program.stamp_rules else (),
    )


def _stamps(
    program: CompiledProgram, facts: ReceiptFacts, raw: RawOutcome
) -> tuple[StampProgress, ...]:
    """Each candidate stamp rule's progress on an active card, after the sale."""
    card = facts.card
    if card is None:
        return ()
    progress = []
    for (r, *_), added, free in zip(raw.verdicts, raw.stamps_added, raw.stamps_free, strict=True):
        every = program.stamp_every[r]
        if every:
            rule_id = program.rule_ids[r]
            have = card.stamps.get(rule_id, 0) + added - free * every
            progress.append(StampProgress(rule_id, program.rule_names[r], have, every, added, free))
    return tuple(progress)


def _fiscal(
    receipt: Receipt, program: CompiledProgram, raw: RawOutcome
) -> list[tuple[Position, ...]]:
    """Each line's fiscal positions, for what the customer pays for it: after the points
    too, or before them where the program reports points as a tender (SPEC §3.4)."""
    pays = raw.finals
    if program.settings.fiscal_mode == "tender":
        pays = [final + paid for final, paid in zip(pays, raw.points_paid, strict=True)]
    return [
        fiscal_positions(line.quantity, amount)
        for line, amount in zip(receipt.lines, pays, strict=True)
    ]


def _applied_per_line(program: CompiledProgram, raw: RawOutcome) -> list[list[Applied]]:
    ids, names = program.rule_ids, program.rule_names
    per_line: list[list[Applied]] = [[] for _ in raw.discounts]
    for line, r, amount in raw.applied:
        per_line[line].append((ids[r], names[r], amount))
    return per_line


def _verdicts(program: CompiledProgram, raw: RawOutcome) -> list[Verdict]:
    ids, names = program.rule_ids, program.rule_names
    return [
        (ids[r], names[r], True, None, amount, points)
        if reason is None
        else (ids[r], names[r], False, reason, 0, 0)
        for r, reason, amount, points in raw.verdicts
    ]


class _AppliedSummary:
    """One pass over the rules that applied: their ids, gifts, delivery, birthday, budget
    use, the uses of capped rules."""

    def __init__(self, program: CompiledProgram, raw: RawOutcome, facts: ReceiptFacts) -> None:
        self.applied_ids: set[str] = set()
        self.rule_uses: list[RuleUse] = []
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
            if info.capped:
                self.rule_uses.append(facts.rule_uses[info.rule_id])


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
        messages.append(Message("offer_card"))
    if ctx.card is not None and facts.card is None:
        messages.append(Message("card_inactive", (("status", ctx.card.status),)))
    if facts.birthday_distance == 0 or birthday_rule_applied:
        messages.append(Message("birthday"))
    if tier_after != facts.tier_before:
        messages.append(Message("tier_upgrade", (("tier", program.tier_name(tier_after)),)))
    wanted = receipt.redeem_points
    if not receipt.redeem_max and wanted > raw.redeemed:
        messages.append(
            Message("points_limited", (("max", raw.redeemable_max), ("wanted", wanted)))
        )
    return tuple(messages)
