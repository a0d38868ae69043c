"""Compile a program document into flat integer arrays for the kernels.

One row per active rule, in evaluation order (higher priority first, ties in
document order), one column per condition or effect parameter. Rules are indexed
by the SKU, category and brand their target names, so that the work for a receipt
line grows with the rules that can touch it, not with all rules; rules that name
none of them (whole-receipt rules) sit in one list of their own. Store targeting is
a per-store mask, built on first use and kept. The arrays travel to the kernels as one
``ProgramArrays``; this package never imports the kernels.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from service.domain.calculation import Gift
from service.domain.calendars import public_holidays
from service.domain.limits import RuleCap
from service.rules.codes import (
    CHANNEL_BITS,
    EFFECT_CODES,
    STACKING_CODES,
    STAMP_COUNTS,
    WEEKDAY_BITS,
)
from service.rules.document import (
    CheapestEffect,
    Exclusion,
    GiftEffect,
    PointSettings,
    ProgramDocument,
    PromoCode,
    Requirement,
    Rule,
    StampsEffect,
    Target,
)

IntArray = npt.NDArray[np.int64]
NO_LIMIT = -1
FAR_FUTURE = 10**9  # a date ordinal after any real date

# Columns of ProgramArrays.table: one name per rule parameter.
(
    R_KIND,
    R_MODE,
    R_GROUP,
    R_VALUE,
    R_N,
    R_FLAG,
    R_MAX,
    R_BUDGET,
    R_STEP_START,
    R_STEP_END,
    C_CHANNELS,
    C_PAYMENTS,
    C_PICKUP,
    C_DATE_FROM,
    C_DATE_TO,
    C_WEEKDAYS,
    C_HOUR_FROM,
    C_HOUR_TO,
    C_HOLIDAY,
    C_NEEDS_CARD,
    C_TIERS,
    C_SEG_START,
    C_SEG_END,
    C_BIRTHDAY,
    C_PN_EQUALS,
    C_PN_EVERY,
    C_PROMO,
    C_MIN_SUBTOTAL,
    C_MIN_QUANTITY,
    C_REQ_START,
    C_REQ_END,
    R_EVERY,
    R_BASIS,
) = range(33)
TABLE_COLUMNS = 33

# Columns of ProgramArrays.requirements: a rule's ``requires`` groups, each the keys it
# names (``requirement_keys[Q_KEY_START:Q_KEY_END]``) and its minimums.
Q_KEY_START, Q_KEY_END, Q_MIN_QUANTITY, Q_MIN_AMOUNT = range(4)

# Positions in ProgramArrays.point_settings.
(
    S_POINT_VALUE,
    S_BASE_RATE,
    S_ROUNDING,
    S_MAX_SHARE,
    S_MIN_LINE,
    S_MAX_RECEIPT,
    S_MAX_DAY,
    S_MIN_BALANCE,
    S_MIN_RECEIPT,
    S_MAX_REDEEM,
) = range(10)


class ProgramArrays(NamedTuple):
    """Everything of a program the kernels read, passed to them as one argument.

    Rules by the keys their targets name: ``include_rules[include_ptr[k]:include_ptr[k + 1]]``
    for key ``k`` (``exclude_*`` the same for exclusions); ``all_lines_rules`` name none.
    """

    table: IntArray  # rules x TABLE_COLUMNS, in evaluation order
    step_from: IntArray  # the steps of rule r: [table[r, R_STEP_START], table[r, R_STEP_END])
    step_bp: IntArray
    segment_ids: IntArray  # the segments of rule r: [table[r, C_SEG_START], table[r, C_SEG_END])
    include_ptr: IntArray
    include_rules: IntArray
    exclude_ptr: IntArray
    exclude_rules: IntArray
    all_lines_rules: IntArray
    tier_accrual_bp: IntArray  # by tier index
    tier_discount_bp: IntArray
    point_settings: IntArray  # S_* positions
    requirements: IntArray  # groups x 4 (Q_*): rule r's are [C_REQ_START, C_REQ_END)
    requirement_keys: IntArray


@dataclass(frozen=True, slots=True)
class AppliedInfo:
    """What a result needs of a rule that applied, looked up once per program, not per receipt."""

    rule_id: str
    name: str
    gift: Gift | None
    free_delivery: bool
    birthday: bool  # a birthday rule applied: the cashier is told
    has_budget: bool  # its use goes into ``budget_use``
    capped: bool  # a use cap counts the sales it applies to (``rule_uses``)


@dataclass(slots=True)
class CompiledProgram:
    """A program version ready to evaluate; immutable once built except the store-mask cache.

    The fields after ``no_budget_use`` are derived in ``__post_init__``: per-receipt
    lookups (a rule's id and name, a tier threshold) read them instead of walking the
    document's pydantic models on every receipt.
    """

    version: int
    document: ProgramDocument
    rules: tuple[Rule, ...]
    rule_index: dict[str, int]
    arrays: ProgramArrays
    sku_keys: dict[str, int]
    category_keys: dict[str, int]
    brand_keys: dict[str, int]
    payment_bits: dict[str, int]
    segment_vocabulary: dict[str, int]
    tier_codes: tuple[str, ...]
    tier_threshold: IntArray
    holidays: frozenset[date]
    promo_codes: dict[str, PromoCode]
    no_budget_use: IntArray
    rule_ids: tuple[str, ...] = field(init=False)
    rule_names: tuple[str, ...] = field(init=False)
    applied_info: tuple[AppliedInfo, ...] = field(init=False)
    tier_thresholds: tuple[int, ...] = field(init=False)
    settings: PointSettings = field(init=False)  # the document's point settings
    rule_count: int = field(init=False)
    no_segments: npt.NDArray[np.uint8] = field(init=False)  # a card in no known segment
    no_unlocked: IntArray = field(init=False)  # no rule unlocked by a promo code
    caps: tuple[RuleCap, ...] = field(init=False)  # the rules with use caps
    # Stamp cards: each rule's ``every`` (0: not a stamp rule), and the stamp rules' indexes.
    stamp_every: tuple[int, ...] = field(init=False)
    stamp_rules: tuple[int, ...] = field(init=False)
    no_stamps: IntArray = field(init=False)  # a card with no stamps: 0 for every rule
    _store_masks: dict[tuple[str, str], npt.NDArray[np.uint8]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rule_ids = tuple(rule.id for rule in self.rules)
        self.rule_names = tuple(rule.name for rule in self.rules)
        self.applied_info = tuple(_applied_info(rule) for rule in self.rules)
        self.tier_thresholds = tuple(self.tier_threshold.tolist())
        self.settings = self.document.points
        self.rule_count = len(self.rules)
        self.no_segments = np.zeros(len(self.segment_vocabulary), dtype=np.uint8)
        self.no_unlocked = np.zeros(0, dtype=np.int64)
        self.caps = tuple(
            RuleCap(rule.id, rule.max_uses, rule.max_uses_per_card, rule.uses_period)
            for rule in self.rules
            if rule.max_uses is not None or rule.max_uses_per_card is not None
        )
        self.stamp_every = tuple(
            rule.effect.every if isinstance(rule.effect, StampsEffect) else 0 for rule in self.rules
        )
        self.stamp_rules = tuple(r for r, every in enumerate(self.stamp_every) if every)
        self.no_stamps = np.zeros(len(self.rules), dtype=np.int64)

    def tier_index(self, code: str | None) -> int:
        """Rank of a tier code in the ladder; -1 for None or a code the program lacks."""
        return self.tier_codes.index(code) if code in self.tier_codes else -1

    def tier_name(self, code: str | None) -> str:
        for tier in self.document.tiers.levels:
            if tier.code == code:
                return tier.name
        return code or ""

    def tier_for_spend(self, spend: int) -> str | None:
        """The highest tier whose threshold ``spend`` reaches; None below the lowest."""
        position = bisect.bisect_right(self.tier_thresholds, spend) - 1
        return self.tier_codes[position] if position >= 0 else None

    def store_mask(self, store_id: str, region: str) -> npt.NDArray[np.uint8]:
        """1 for each rule whose store targeting admits this store; built once per store."""
        key = (store_id, region)
        mask = self._store_masks.get(key)
        if mask is None:
            mask = np.fromiter(
                (_admits_store(rule, store_id, region) for rule in self.rules),
                dtype=np.uint8,
                count=len(self.rules),
            )
            self._store_masks[key] = mask
        return mask


def _applied_info(rule: Rule) -> AppliedInfo:
    effect = rule.effect
    return AppliedInfo(
        rule_id=rule.id,
        name=rule.name,
        gift=Gift(effect.sku, effect.quantity, rule.id) if isinstance(effect, GiftEffect) else None,
        free_delivery=effect.type == "free_delivery",
        birthday=rule.conditions.birthday_window_days is not None,
        has_budget=rule.budget is not None,
        capped=rule.max_uses is not None or rule.max_uses_per_card is not None,
    )


def _admits_store(rule: Rule, store_id: str, region: str) -> bool:
    target = rule.target
    if not (target.stores or target.regions):
        return True
    return store_id in target.stores or region in target.regions


def evaluation_order(document: ProgramDocument) -> tuple[Rule, ...]:
    """Active rules, higher priority first; equal priorities keep document order."""
    active = [rule for rule in document.rules if rule.active]
    return tuple(sorted(active, key=lambda rule: -rule.priority))


def compile_program(doc: ProgramDocument, version: int) -> CompiledProgram:
    rules = evaluation_order(doc)
    tiers = doc.tiers.levels
    payment_bits = _vocabulary(m for r in rules for m in r.conditions.payment_methods)
    segments = _vocabulary(s for r in rules for s in r.conditions.segments)
    group_ids = {group.id: i for i, group in enumerate(doc.groups)}
    tier_codes = tuple(tier.code for tier in tiers)
    steps_from: list[int] = []
    steps_bp: list[int] = []
    segment_ids: list[int] = []
    table = np.zeros((len(rules), TABLE_COLUMNS), dtype=np.int64)
    for row, rule in enumerate(rules):
        _fill_effect(table[row], rule, group_ids, steps_from, steps_bp)
        _fill_conditions(table[row], rule, payment_bits, tier_codes, segments, segment_ids)
    keys = _Keys(rules)
    requirements, requirement_keys = keys.requirements(rules, table)
    include_ptr, include_rules = keys.index(rules, include=True)
    exclude_ptr, exclude_rules = keys.index(rules, include=False)
    base_rate = doc.points.accrual_percent
    arrays = ProgramArrays(
        table=table,
        step_from=np.array(steps_from, dtype=np.int64),
        step_bp=np.array(steps_bp, dtype=np.int64),
        segment_ids=np.array(segment_ids, dtype=np.int64),
        include_ptr=include_ptr,
        include_rules=include_rules,
        exclude_ptr=exclude_ptr,
        exclude_rules=exclude_rules,
        all_lines_rules=np.array(
            [i for i, rule in enumerate(rules) if rule.target.all_lines], dtype=np.int64
        ),
        tier_accrual_bp=np.array(
            [base_rate if t.accrual_percent is None else t.accrual_percent for t in tiers],
            dtype=np.int64,
        ),
        tier_discount_bp=np.array([t.discount_percent for t in tiers], dtype=np.int64),
        point_settings=_point_settings(doc.points),
        requirements=requirements,
        requirement_keys=requirement_keys,
    )
    return CompiledProgram(
        version=version,
        document=doc,
        rules=rules,
        rule_index={rule.id: i for i, rule in enumerate(rules)},
        arrays=arrays,
        sku_keys=keys.skus,
        category_keys=keys.categories,
        brand_keys=keys.brands,
        payment_bits=payment_bits,
        segment_vocabulary=segments,
        tier_codes=tier_codes,
        tier_threshold=np.array([t.threshold for t in tiers], dtype=np.int64),
        holidays=frozenset(doc.holidays)
        | (public_holidays(doc.holiday_calendar) if doc.holiday_calendar else frozenset()),
        promo_codes={promo.code.strip().upper(): promo for promo in doc.promo_codes},
        no_budget_use=np.zeros(len(rules), dtype=np.int64),
    )


def _vocabulary(values: Iterable[str]) -> dict[str, int]:
    vocabulary: dict[str, int] = {}
    for value in values:
        vocabulary.setdefault(value, len(vocabulary))
    return vocabulary


def _effect_parameters(rule: Rule) -> tuple[int, int, int]:
    """(value, n, flag) of an effect; steps are stored apart."""
    effect = rule.effect
    value = 0
    for name in ("percent", "amount", "price", "points", "multiplier"):
        if hasattr(effect, name):
            value = getattr(effect, name)
            break
    n = getattr(effect, "n", 0) or (effect.quantity if effect.type == "bundle" else 0)
    if isinstance(effect, CheapestEffect):
        return value, effect.units, int(effect.dearest)
    if isinstance(effect, StampsEffect):  # R_N: what a stamp counts (STAMP_COUNTS)
        return value, STAMP_COUNTS[effect.count], 0
    return value, n, int(getattr(effect, "discounted_only", False))


def _fill_effect(
    row: IntArray,
    rule: Rule,
    group_ids: dict[str, int],
    steps_from: list[int],
    steps_bp: list[int],
) -> None:
    row[R_KIND] = EFFECT_CODES[rule.effect.type]
    row[R_MODE] = STACKING_CODES[rule.stacking]
    row[R_GROUP] = group_ids[rule.group] if rule.group is not None else -1
    row[R_VALUE], row[R_N], row[R_FLAG] = _effect_parameters(rule)
    row[R_MAX] = NO_LIMIT if rule.max_per_receipt is None else rule.max_per_receipt
    row[R_BUDGET] = NO_LIMIT if rule.budget is None else rule.budget
    row[R_STEP_START] = len(steps_from)
    for step in getattr(rule.effect, "steps", ()):
        steps_from.append(step.from_)
        steps_bp.append(step.percent)
    row[R_STEP_END] = len(steps_from)
    row[R_EVERY] = getattr(rule.effect, "every", None) or 0
    row[R_BASIS] = int(rule.threshold_basis == "after_discounts")


def _fill_conditions(
    row: IntArray,
    rule: Rule,
    payment_bits: dict[str, int],
    tier_codes: tuple[str, ...],
    segments: dict[str, int],
    segment_ids: list[int],
) -> None:
    cond = rule.conditions
    row[C_CHANNELS] = sum(CHANNEL_BITS[c] for c in set(cond.channels))
    row[C_PAYMENTS] = sum(1 << payment_bits[m] for m in set(cond.payment_methods))
    row[C_PICKUP] = -1 if cond.pickup is None else int(cond.pickup)
    row[C_DATE_FROM] = cond.dates.from_.toordinal() if cond.dates else 0
    row[C_DATE_TO] = cond.dates.to.toordinal() if cond.dates else FAR_FUTURE
    row[C_WEEKDAYS] = sum(WEEKDAY_BITS[d] for d in set(cond.weekdays))
    row[C_HOUR_FROM] = cond.hours.from_.hour * 60 + cond.hours.from_.minute if cond.hours else -1
    row[C_HOUR_TO] = cond.hours.to.hour * 60 + cond.hours.to.minute if cond.hours else -1
    row[C_HOLIDAY] = -1 if cond.on_holidays is None else int(cond.on_holidays)
    row[C_NEEDS_CARD] = int(rule.needs_card)
    row[C_TIERS] = sum(1 << tier_codes.index(code) for code in set(cond.tiers))
    row[C_SEG_START] = len(segment_ids)
    segment_ids.extend(segments[s] for s in cond.segments)
    row[C_SEG_END] = len(segment_ids)
    days = cond.birthday_window_days
    row[C_BIRTHDAY] = -1 if days is None else days
    number = cond.purchase_number
    row[C_PN_EQUALS] = number.equals or 0 if number else 0
    row[C_PN_EVERY] = number.every or 0 if number else 0
    row[C_PROMO] = int(cond.promo_code)
    row[C_MIN_SUBTOTAL] = cond.min_subtotal or 0
    row[C_MIN_QUANTITY] = cond.min_quantity or 0


class _Keys:
    """One id space for every SKU, category and brand that a rule's target or its
    ``requires`` names."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.skus: dict[str, int] = {}
        self.categories: dict[str, int] = {}
        self.brands: dict[str, int] = {}
        self.count = 0
        for rule in rules:
            parts: list[Target | Exclusion | Requirement] = [rule.target, rule.target.exclude]
            for part in [*parts, *rule.conditions.requires]:
                self._add(self.skus, part.skus)
                self._add(self.categories, part.categories)
                self._add(self.brands, part.brands)

    def requirements(self, rules: tuple[Rule, ...], table: IntArray) -> tuple[IntArray, IntArray]:
        """Every rule's ``requires`` groups (Q_* columns) and the keys each names; fills
        the rules' C_REQ_START and C_REQ_END."""
        groups: list[list[int]] = []
        flat: list[int] = []
        for row, rule in enumerate(rules):
            table[row, C_REQ_START] = len(groups)
            for need in rule.conditions.requires:
                named = sorted(
                    {self.skus[v] for v in need.skus}
                    | {self.categories[v] for v in need.categories}
                    | {self.brands[v] for v in need.brands}
                )
                groups.append([len(flat), len(flat) + len(named), need.min_quantity or 1,
                               need.min_amount or 0])  # fmt: skip
                flat.extend(named)
            table[row, C_REQ_END] = len(groups)
        shaped = np.array(groups, dtype=np.int64).reshape(len(groups), 4)
        return shaped, np.array(flat, dtype=np.int64)

    def _add(self, keys: dict[str, int], values: list[str]) -> None:
        for value in values:
            if value not in keys:
                keys[value] = self.count
                self.count += 1

    def index(self, rules: tuple[Rule, ...], *, include: bool) -> tuple[IntArray, IntArray]:
        """(ptr, rules): the rules naming key ``k`` are ``rules[ptr[k]:ptr[k + 1]]``."""
        buckets: list[list[int]] = [[] for _ in range(self.count)]
        for row, rule in enumerate(rules):
            part = rule.target if include else rule.target.exclude
            named = (
                [self.skus[v] for v in part.skus]
                + [self.categories[v] for v in part.categories]
                + [self.brands[v] for v in part.brands]
            )
            for key in set(named):
                buckets[key].append(row)
        ptr = np.zeros(self.count + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(bucket) for bucket in buckets])
        flat = [row for bucket in buckets for row in bucket]
        return ptr, np.array(flat, dtype=np.int64)


def _point_settings(points: PointSettings) -> IntArray:
    values = [0] * 10
    values[S_POINT_VALUE] = points.point_value
    values[S_BASE_RATE] = points.accrual_percent
    values[S_ROUNDING] = ("down", "half_up", "up").index(points.rounding)
    values[S_MAX_SHARE] = points.max_share_percent
    values[S_MIN_LINE] = points.min_line_amount
    values[S_MAX_RECEIPT] = points.max_points_per_receipt or NO_LIMIT
    values[S_MAX_DAY] = points.max_points_per_card_day or NO_LIMIT
    values[S_MIN_BALANCE] = points.min_balance_to_spend
    values[S_MIN_RECEIPT] = points.min_receipt_to_spend
    values[S_MAX_REDEEM] = points.max_redeem_per_receipt or NO_LIMIT
    return np.array(values, dtype=np.int64)
