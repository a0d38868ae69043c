"""The reference evaluator: plain Python, written for clarity; the definition of correct.

The numba kernels (``service.kernels.evaluate``) compute the same numbers from arrays
and the tests, and every worker's warm-up, hold the two equal. It reads the program's
rules as the document states them, not the compiler's arrays, so that a mistake in the
compiler shows as a difference too. Phases, in order (service/rules/README.md explains
each):

1. candidates: rules whose store targeting admits the store and whose target names
   a SKU, category or brand on the receipt (or every line);
2. discounts, by priority, with stacking (exclusive, best_of within a group,
   additive on the original price, compounding on the price left), never a line
   below its floor;
3. restrictions (no earning, no paying with points), gifts, free delivery;
4. points paid: asked for (or "max"), within balance, share cap and floors;
5. points earned: base rate of the tier plus earning rules, rounded per receipt,
   then caps per receipt and per card per day.
"""

from __future__ import annotations

from service.domain.calculation import CalculationContext
from service.domain.money import (
    BP_SCALE,
    MILLI,
    allocate_largest_remainder,
    divide_rounded,
    line_amount,
    percent_of,
    spread_by_remainder,
)
from service.domain.receipt import Receipt, ReceiptLine
from service.kernels.facts import ReceiptFacts, receipt_facts
from service.kernels.results import Answer, RawOutcome, build_answer
from service.rules.compiler import CompiledProgram
from service.rules.document import (
    WEEKDAYS,
    AmountEffect,
    BundleEffect,
    CheapestEffect,
    FixedPriceEffect,
    NthItemEffect,
    PercentEffect,
    QuantityStepsEffect,
    Requirement,
    Rule,
    StampsEffect,
    SubtotalStepsEffect,
)

Plan = tuple[int, list[int], list[int]]  # (total, weights, caps) over the available lines


def evaluate(receipt: Receipt, ctx: CalculationContext, program: CompiledProgram) -> Answer:
    """Calculate a receipt: discounts, points paid and earned, explanations."""
    facts = receipt_facts(receipt, ctx, program)
    raw = _Evaluation(receipt, ctx, program, facts).run()
    return build_answer(receipt, ctx, program, facts, raw)


def includes(rule: Rule, line: ReceiptLine) -> bool:
    """Whether the rule's target names this line (before its exclusions)."""
    target = rule.target
    return (
        target.all_lines
        or line.sku in target.skus
        or line.category in target.categories
        or line.brand in target.brands
    )


def matches(rule: Rule, line: ReceiptLine) -> bool:
    """Whether the rule's target takes this line: named and not excluded by the target."""
    exclude = rule.target.exclude
    excluded = (
        line.sku in exclude.skus
        or line.category in exclude.categories
        or line.brand in exclude.brands
    )
    return includes(rule, line) and not excluded


def in_hours(minute: int, start: int, end: int) -> bool:
    """[start, end) in minutes of the day; a window with start > end wraps past midnight."""
    return start <= minute < end if start < end else minute >= start or minute < end


class _Evaluation:
    def __init__(
        self,
        receipt: Receipt,
        ctx: CalculationContext,
        program: CompiledProgram,
        facts: ReceiptFacts,
    ) -> None:
        self.receipt = receipt
        self.lines = receipt.lines
        self.ctx = ctx
        self.program = program
        self.facts = facts
        self.amounts = list(facts.amounts)
        min_line = program.settings.min_line_amount
        self.floors = [min(amount, min_line) for amount in self.amounts]
        count = len(self.lines)
        self.discounts = [0] * count
        self.points_paid = [0] * count
        self.locked = [False] * count
        self.no_earn = [False] * count
        self.no_pay = [False] * count
        self.applied: list[tuple[int, int, int]] = []  # (line, rule, amount), as given
        self.verdicts: dict[int, tuple[str | None, int, int]] = {}
        # Stamp rules: (stamps added, free units given), and the free units each would
        # give if it applies.
        self.stamp_moves: dict[int, tuple[int, int]] = {}
        self.stamps_owed: dict[int, int] = {}

    def run(self) -> RawOutcome:
        candidates = self._candidates()
        self._discounts(candidates)
        self._restrictions_and_benefits(candidates)
        redeemable, redeemed = self._redeem()
        earned = self._earn(candidates)
        return RawOutcome(
            discounts=self.discounts,
            points_paid=self.points_paid,
            points_earned=earned,
            finals=[self._paid(i) for i in range(len(self.lines))],
            applied=self.applied,
            verdicts=[(r, *self.verdicts[r]) for r in candidates],
            redeemable_max=redeemable,
            redeemed=redeemed,
            stamps_added=[self.stamp_moves.get(r, (0, 0))[0] for r in candidates],
            stamps_free=[self.stamp_moves.get(r, (0, 0))[1] for r in candidates],
        )

    # -- candidates and conditions -------------------------------------------------

    def _candidates(self) -> list[int]:
        store = self.ctx.store
        return [
            r
            for r, rule in enumerate(self.program.rules)
            if (
                not (rule.target.stores or rule.target.regions)
                or store.store_id in rule.target.stores
                or store.region in rule.target.regions
            )
            and (rule.target.all_lines or any(includes(rule, line) for line in self.lines))
        ]

    def _budget_left(self, rule: Rule) -> int | None:
        if rule.budget is None:
            return None
        return rule.budget - self.ctx.budgets_used.get(rule.id, 0)

    def _condition_failure(self, rule: Rule) -> str | None:
        """The first receipt-level condition that fails, in the documented order."""
        facts, receipt, cond = self.facts, self.receipt, rule.conditions
        if rule.needs_card and facts.card is None:
            return facts.card_reason
        checks = (
            (bool(cond.channels) and receipt.channel not in cond.channels, "channel"),
            (
                bool(cond.payment_methods) and receipt.payment_method not in cond.payment_methods,
                "payment_method",
            ),
            (cond.pickup is not None and receipt.pickup != cond.pickup, "pickup"),
            (
                cond.dates is not None
                and not cond.dates.from_ <= facts.local_date <= cond.dates.to,
                "outside_dates",
            ),
            (bool(cond.weekdays) and WEEKDAYS[facts.weekday] not in cond.weekdays, "weekday"),
            (cond.hours is not None and not self._in_hours(rule), "outside_hours"),
            (cond.on_holidays is not None and facts.holiday != cond.on_holidays, "holiday"),
        )
        for failed, reason in checks:
            if failed:
                return reason
        return self._card_condition_failure(rule) or self._amount_condition_failure(rule)

    def _in_hours(self, rule: Rule) -> bool:
        hours = rule.conditions.hours
        assert hours is not None
        start = hours.from_.hour * 60 + hours.from_.minute
        end = hours.to.hour * 60 + hours.to.minute
        return in_hours(self.facts.minute, start, end)

    def _card_condition_failure(self, rule: Rule) -> str | None:
        facts, cond, card = self.facts, rule.conditions, self.facts.card
        if cond.tiers and facts.tier_before not in cond.tiers:
            return "tier"
        if cond.segments and (card is None or not set(cond.segments) & card.segments):
            return "segment"
        days = cond.birthday_window_days
        if days is not None and not 0 <= facts.birthday_distance <= days:
            return "not_birthday"
        number = cond.purchase_number
        if number is not None:
            n = facts.purchase_number
            hit = n == number.equals if number.equals is not None else n % (number.every or 1) == 0
            if not hit:
                return "purchase_number"
        return None

    def _amount_condition_failure(self, rule: Rule) -> str | None:
        cond = rule.conditions
        if cond.promo_code and rule.id not in self.facts.unlocked_rules:
            return "promo_code_missing"
        if cond.min_subtotal is not None and self._subtotal(rule) < cond.min_subtotal:
            return "below_threshold"
        if not all(self._holds(need) for need in cond.requires):
            return "requires_not_met"
        if rule.id in self.facts.used_up:
            return "uses_exhausted"
        budget_left = self._budget_left(rule)
        if budget_left is not None and budget_left <= 0:
            return "budget_exhausted"
        return None

    def _subtotal(self, rule: Rule) -> int:
        """The receipt's lines the till did not exclude: at their original prices, or
        less the discounts given so far (``threshold_basis``)."""
        if rule.threshold_basis == "original":
            return self.facts.loyalty_subtotal
        return sum(
            self.amounts[i] - self.discounts[i]
            for i, line in enumerate(self.lines)
            if not line.excluded
        )

    def _holds(self, need: Requirement) -> bool:
        """The receipt holds the goods ``need`` names (lines the till did not exclude), in
        the quantity and amount it asks for, before discounts."""
        quantity = amount = 0
        for i, line in enumerate(self.lines):
            if not line.excluded and (
                line.sku in need.skus or line.category in need.categories
                or line.brand in need.brands
            ):  # fmt: skip
                quantity += line.quantity
                amount += self.amounts[i]
        return quantity >= (need.min_quantity or 1) and amount >= (need.min_amount or 0)

    def _matched(self, rule: Rule) -> list[int]:
        """Lines the rule takes: its target, not excluded by the POS."""
        return [i for i, line in enumerate(self.lines) if not line.excluded and matches(rule, line)]

    def _receipt_checks(self, rule: Rule, matched: list[int]) -> str | None:
        """Conditions, then that the rule has lines, then its minimum quantity."""
        reason = self._condition_failure(rule)
        if reason is not None:
            return reason
        if not matched:
            return "no_matching_lines"
        minimum = rule.conditions.min_quantity
        if minimum is not None and sum(self.lines[i].quantity for i in matched) < minimum:
            return "below_quantity"
        return None

    # -- discounts ----------------------------------------------------------------

    def _discounts(self, candidates: list[int]) -> None:
        rules = self.program.rules
        done: set[int] = set()
        for r in candidates:
            rule = rules[r]
            if not rule.is_discount or r in done:
                continue
            if rule.stacking == "best_of":
                members = [m for m in candidates if rules[m].group == rule.group]
                self._best_of(members)
                done.update(members)
                continue
            outcome = self._discount_shares(r)
            if isinstance(outcome, str):
                self.verdicts[r] = (outcome, 0, 0)
                continue
            for i, amount in outcome.items():
                self._give(r, i, amount)
                self.locked[i] = self.locked[i] or rule.stacking == "exclusive"
            self.verdicts[r] = (None, sum(outcome.values()), 0)
            self._stamps_used(r)

    def _stamps_used(self, r: int) -> None:
        """A stamp rule that applied gave the free units its stamps were owed."""
        if r in self.stamp_moves:
            self.stamp_moves[r] = (self.stamp_moves[r][0], self.stamps_owed[r])

    def _give(self, r: int, line: int, amount: int) -> None:
        self.discounts[line] += amount
        self.applied.append((line, r, amount))

    def _best_of(self, members: list[int]) -> None:
        """Each line takes the largest discount any member offers it; ties: higher priority."""
        offers: dict[int, dict[int, int]] = {}
        for r in members:
            outcome = self._discount_shares(r)
            if isinstance(outcome, str):
                self.verdicts[r] = (outcome, 0, 0)
            else:
                offers[r] = outcome
        won: dict[int, int] = dict.fromkeys(offers, 0)
        for i in range(len(self.lines)):
            best, best_amount = -1, 0
            for r, outcome in offers.items():
                if outcome.get(i, 0) > best_amount:
                    best, best_amount = r, outcome[i]
            if best >= 0:
                self._give(best, i, best_amount)
                won[best] += best_amount
        for r, total in won.items():
            self.verdicts[r] = (None, total, 0) if total else ("beaten_in_group", 0, 0)
            if total:
                self._stamps_used(r)

    def _discount_shares(self, r: int) -> dict[int, int] | str:
        """The rule's discount per available line (positive amounts only), or why none."""
        rule = self.program.rules[r]
        matched = self._matched(rule)
        reason = self._receipt_checks(rule, matched)
        if reason is not None:
            return reason
        owed = 0
        if isinstance(rule.effect, StampsEffect):
            added, owed = self._stamps_owed(r, rule.effect, matched)
            self.stamp_moves[r] = (added, 0)
            if owed == 0:
                return "not_enough_stamps"
        exclusive = rule.stacking == "exclusive"
        available = [
            i for i in matched if not self.locked[i] and not (exclusive and self.discounts[i] > 0)
        ]
        if not available:
            blocked = any(self.locked[i] for i in matched)
            return "blocked_by_exclusive" if blocked else "already_discounted"
        self.stamps_owed[r] = min(owed, sum(self.lines[i].quantity // MILLI for i in available))
        compounding = rule.stacking == "compounding"
        base = [self.amounts[i] - (self.discounts[i] if compounding else 0) for i in available]
        room = [self.amounts[i] - self.floors[i] - self.discounts[i] for i in available]
        plan = self._effect_plan(rule, matched, available, base, room, owed)
        if isinstance(plan, str):
            return plan
        total, weights, caps = plan
        total = min(total, sum(caps), *self._rule_limits(rule))
        if total <= 0:
            return "at_floor" if sum(room) == 0 else "zero_amount"
        shares = allocate_largest_remainder(total, weights, caps)
        return {i: share for i, share in zip(available, shares, strict=True) if share > 0}

    def _rule_limits(self, rule: Rule) -> list[int]:
        limits = [] if rule.max_per_receipt is None else [rule.max_per_receipt]
        budget_left = self._budget_left(rule)
        return limits if budget_left is None else [*limits, budget_left]

    def _stamps_owed(self, r: int, effect: StampsEffect, matched: list[int]) -> tuple[int, int]:
        """The stamps this sale adds (the rule's whole units, or 1 for a receipt holding
        one) and the free units the card is owed with them: one per ``every`` stamps."""
        units = sum(self.lines[i].quantity // MILLI for i in matched)
        added = units if effect.count == "units" else min(units, 1)
        card = self.facts.card
        assert card is not None  # a stamp rule needs a card
        reached = card.stamps.get(self.program.rules[r].id, 0) + added
        return added, reached // effect.every if reached > 0 else 0

    def _effect_plan(
        self,
        rule: Rule,
        matched: list[int],
        available: list[int],
        base: list[int],
        room: list[int],
        owed: int = 0,
    ) -> Plan | str:
        effect = rule.effect
        if isinstance(effect, AmountEffect):
            return effect.amount, base, room
        if isinstance(effect, FixedPriceEffect):
            wants = [
                max(0, b - line_amount(self.lines[i].quantity, effect.price))
                for i, b in zip(available, base, strict=True)
            ]
            caps = [min(w, c) for w, c in zip(wants, room, strict=True)]
            return sum(caps), wants, caps
        if isinstance(effect, NthItemEffect | BundleEffect | CheapestEffect | StampsEffect):
            return self._unit_plan(effect, available, base, room, owed)
        bp = self._percent(rule, matched)
        if isinstance(bp, str):
            return bp
        return percent_of(sum(base), bp), base, room

    def _percent(self, rule: Rule, matched: list[int]) -> int | str:
        """The rate of a percent-type effect for this receipt, or why there is none."""
        effect = rule.effect
        if isinstance(effect, PercentEffect):
            return effect.percent
        if effect.type == "tier_discount":
            index = self.facts.tier_index
            bp = self.program.document.tiers.levels[index].discount_percent if index >= 0 else 0
            return bp if bp > 0 else "tier"
        if effect.type == "personal_discount":
            return self.facts.personal_bp or "no_personal_discount"
        if isinstance(effect, QuantityStepsEffect):
            reached = sum(self.lines[i].quantity for i in matched)
            steps = [(step.from_, step.percent) for step in effect.steps]
            short = "below_quantity"
        else:
            assert isinstance(effect, SubtotalStepsEffect)
            after = rule.threshold_basis == "after_discounts"
            reached = sum(self.amounts[i] - (self.discounts[i] if after else 0) for i in matched)
            steps = [(step.from_, step.percent) for step in effect.steps]
            short = "below_threshold"
        rates = [percent for start, percent in steps if start <= reached]
        return rates[-1] if rates else short

    def _unit_plan(
        self,
        effect: NthItemEffect | BundleEffect | CheapestEffect | StampsEffect,
        available: list[int],
        base: list[int],
        room: list[int],
        owed: int,
    ) -> Plan | str:
        """n-th item, bundles, the cheapest units and a stamp card's ``owed`` free units:
        whole units, cheapest first for the n-th item and stamps, dearest for bundles,
        either for ``cheapest``."""
        units = [self.lines[i].quantity // MILLI for i in available]
        if isinstance(effect, StampsEffect):
            groups = min(owed, sum(units))
            sign = 1
        elif isinstance(effect, CheapestEffect):
            times = 1 if effect.every is None else sum(units) // effect.every
            groups = min(effect.units * times, sum(units))
            sign = -1 if effect.dearest else 1
        else:
            size = effect.n if isinstance(effect, NthItemEffect) else effect.quantity
            groups = sum(units) // size
            sign = 1 if effect.type == "nth_item" else -1
        if groups == 0:
            return "below_quantity"
        to_take = groups if effect.type != "bundle" else groups * size
        order = sorted(
            range(len(available)), key=lambda k: (sign * self.lines[available[k]].unit_price, k)
        )
        values = [0] * len(available)
        for k in order:
            taken = min(units[k], to_take)
            to_take -= taken
            values[k] = base[k] * taken * MILLI // self.lines[available[k]].quantity
        if isinstance(effect, NthItemEffect | CheapestEffect | StampsEffect):
            total = percent_of(sum(values), effect.percent)
        else:
            total = max(0, sum(values) - groups * effect.price)
        return total, values, [min(v, c) for v, c in zip(values, room, strict=True)]

    # -- restrictions, gifts, delivery ----------------------------------------------

    def _restrictions_and_benefits(self, candidates: list[int]) -> None:
        for r in candidates:
            rule = self.program.rules[r]
            if rule.is_discount or rule.is_earning:
                continue
            matched = self._matched(rule)
            if getattr(rule.effect, "discounted_only", False):
                matched = [i for i in matched if self.discounts[i] > 0]
            reason = self._receipt_checks(rule, matched)
            self.verdicts[r] = (reason, 0, 0)
            if reason is None and rule.effect.type in ("no_earn", "no_pay_with_points"):
                flags = self.no_earn if rule.effect.type == "no_earn" else self.no_pay
                for i in matched:
                    flags[i] = True

    # -- points paid -------------------------------------------------------------

    def _redeem(self) -> tuple[int, int]:
        """Points paid: within balance, share of eligible goods, line floors; spread exactly."""
        if self.facts.card is None:
            return 0, 0
        settings = self.program.settings
        eligible = [
            i for i, line in enumerate(self.lines) if not line.excluded and not self.no_pay[i]
        ]
        after_discount = [self.amounts[i] - self.discounts[i] for i in eligible]
        room = [self.amounts[i] - self.discounts[i] - self.floors[i] for i in eligible]
        share_cap = sum(after_discount) * settings.max_share_percent // BP_SCALE
        most = min(share_cap, sum(room)) // settings.point_value
        receipt_after = sum(self.amounts) - sum(self.discounts)
        if (
            self.facts.active_points < settings.min_balance_to_spend
            or receipt_after < settings.min_receipt_to_spend
        ):
            most = 0
        if settings.max_redeem_per_receipt is not None:
            most = min(most, settings.max_redeem_per_receipt)
        redeemable = min(self.facts.active_points, most)
        wanted = redeemable if self.receipt.redeem_max else self.receipt.redeem_points
        redeemed = min(wanted, redeemable)
        if redeemed > 0:
            shares = allocate_largest_remainder(
                redeemed * settings.point_value, after_discount, room
            )
            for i, share in zip(eligible, shares, strict=True):
                self.points_paid[i] = share
        return redeemable, redeemed

    # -- points earned -------------------------------------------------------------

    def _earn(self, candidates: list[int]) -> list[int]:
        count = len(self.lines)
        earning = [r for r in candidates if self.program.rules[r].is_earning]
        if self.facts.card is None:
            for r in earning:
                self.verdicts[r] = (self.facts.card_reason, 0, 0)
            return [0] * count
        components = [self._base_points()]
        rules_with_points = []
        for r in earning:
            outcome = self._rule_points(self.program.rules[r])
            if isinstance(outcome, str):
                self.verdicts[r] = (outcome, 0, 0)
            else:
                components.append(outcome)
                rules_with_points.append(r)
        line_points = [sum(component[i] for component in components) for i in range(count)]
        totals = [sum(component) for component in components]
        allowed = self._points_allowed()
        if allowed is not None and sum(totals) > allowed:
            line_points = allocate_largest_remainder(allowed, line_points, line_points)
            totals = allocate_largest_remainder(allowed, totals, totals)
        for r, points in zip(rules_with_points, totals[1:], strict=True):
            self.verdicts[r] = (None, 0, points) if points else ("points_cap", 0, 0)
        return line_points

    def _paid(self, i: int) -> int:
        return self.amounts[i] - self.discounts[i] - self.points_paid[i]

    def _earns(self, i: int) -> bool:
        return not self.lines[i].excluded and not self.no_earn[i]

    def _base_rate(self) -> int:
        """The tier's accrual rate; the program's without a tier or when the tier has none."""
        index = self.facts.tier_index
        rate = self.program.document.tiers.levels[index].accrual_percent if index >= 0 else None
        return self.program.settings.accrual_percent if rate is None else rate

    def _rounded_spread(self, numerators: list[int], denominator: int) -> list[int]:
        total = divide_rounded(sum(numerators), denominator, self.program.settings.rounding)
        return spread_by_remainder(numerators, denominator, total)

    def _base_points(self) -> list[int]:
        """The tier's (or program's) rate on money paid, rounded per receipt."""
        rate = self._base_rate()
        numerators = [self._paid(i) * rate if self._earns(i) else 0 for i in range(len(self.lines))]
        return self._rounded_spread(numerators, BP_SCALE * self.program.settings.point_value)

    def _rule_points(self, rule: Rule) -> list[int] | str:
        matched = [i for i in self._matched(rule) if not self.no_earn[i]]
        reason = self._receipt_checks(rule, matched)
        if reason is not None:
            return reason
        points = self._effect_points(rule, set(matched))
        if isinstance(points, str):
            return points
        limits = self._rule_limits(rule)
        total = min(sum(points), *limits) if limits else sum(points)
        if total < sum(points):
            points = allocate_largest_remainder(max(total, 0), points, points)
        return points if sum(points) > 0 else "zero_amount"

    def _effect_points(self, rule: Rule, matched: set[int]) -> list[int] | str:
        effect = rule.effect
        value = self.program.settings.point_value
        count = len(self.lines)
        paid = [self._paid(i) if i in matched else 0 for i in range(count)]
        if effect.type == "bonus_points":
            if sum(paid) == 0:
                return "zero_amount"
            return allocate_largest_remainder(effect.points, paid)
        if effect.type == "accrual_rate":
            numerators = [p * effect.percent for p in paid]
            return self._rounded_spread(numerators, BP_SCALE * value)
        if effect.type == "points_multiplier":
            extra = self._base_rate() * (effect.multiplier - MILLI)
            numerators = [p * extra for p in paid]
            return self._rounded_spread(numerators, BP_SCALE * MILLI * value)
        assert effect.type == "points_per_unit"
        numerators = [
            self.lines[i].quantity * effect.points if i in matched else 0 for i in range(count)
        ]
        return self._rounded_spread(numerators, MILLI)

    def _points_allowed(self) -> int | None:
        """Points this receipt may still earn under the per-receipt and per-card-day caps."""
        settings = self.program.settings
        card = self.facts.card
        assert card is not None
        limits = []
        if settings.max_points_per_receipt is not None:
            limits.append(settings.max_points_per_receipt)
        if settings.max_points_per_card_day is not None:
            limits.append(max(0, settings.max_points_per_card_day - card.points_earned_today))
        return min(limits) if limits else None
