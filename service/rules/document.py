"""The program document: the validated, versioned JSON format of a chain's loyalty program.

Marketing edits it, the admin API stores it as a new version, the compiler turns it
into arrays. Money is integer kopecks; percentages are decimals in the document
("5", "12.5") and basis points once parsed; quantities are decimals ("1", "0.5") and
thousandths once parsed; multipliers are decimals ("2", "1.5") and thousandths once
parsed. ``model_dump(mode="json", by_alias=True)`` gives the document back in its
own format. See service/rules/README.md for the format with an example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from service.domain.errors import ProgramInvalid

FORMAT_VERSION = 1
MAX_MONEY = 10**9  # kopecks: 10 million roubles, far above any single rule amount
MAX_POINTS = 10**9
MAX_RULES = 20_000
MAX_BITMASK_VALUES = 62  # tiers, payment methods: each a bit of an int64 in the kernels
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DISCOUNT_EFFECTS = frozenset(
    {
        "percent",
        "amount",
        "fixed_price",
        "nth_item",
        "bundle",
        "quantity_steps",
        "subtotal_steps",
        "tier_discount",
        "personal_discount",
        "cheapest",
        "stamps",
    }
)
EARNING_EFFECTS = frozenset(
    {"accrual_rate", "points_multiplier", "points_per_unit", "bonus_points"}
)
_CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,63}$")
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


def _decimal_scaled(value: Any, scale: int, what: str) -> int:
    """Parse a decimal given as text or integer into an integer of ``1/scale`` units, exactly."""
    if isinstance(value, bool | float):
        raise ValueError(f'{what} must be a decimal written as text, e.g. "12.5"')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} must be a decimal number") from None
    scaled = number * scale
    if not number.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"{what} allows at most {len(str(scale)) - 1} decimal places")
    return int(scaled)


def percent_bp(value: Any) -> int:
    """A percentage given as text ("7.5") or an integer, in basis points (750)."""
    return _decimal_scaled(value, 100, "a percentage")


def _scaled_text(value: int, scale: int) -> str:
    text = format(Decimal(value) / scale, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


Percent = Annotated[
    int,
    BeforeValidator(lambda v: _decimal_scaled(v, 100, "a percentage")),
    Field(ge=0, le=10_000),
    PlainSerializer(lambda bp: _scaled_text(bp, 100), return_type=str),
]
PositivePercent = Annotated[Percent, Field(gt=0)]
Quantity = Annotated[
    int,
    BeforeValidator(lambda v: _decimal_scaled(v, 1000, "a quantity")),
    Field(gt=0, le=10**7),
    PlainSerializer(lambda milli: _scaled_text(milli, 1000), return_type=str),
]
Multiplier = Annotated[
    int,
    BeforeValidator(lambda v: _decimal_scaled(v, 1000, "a multiplier")),
    Field(gt=1000, le=10_000),
    PlainSerializer(lambda permille: _scaled_text(permille, 1000), return_type=str),
]
Money = Annotated[int, Field(ge=0, le=MAX_MONEY, strict=True)]
PositiveMoney = Annotated[int, Field(gt=0, le=MAX_MONEY, strict=True)]
Points = Annotated[int, Field(gt=0, le=MAX_POINTS, strict=True)]
Identifier = Annotated[str, Field(pattern=_ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PointSettings(_Model):
    """How points are earned and spent; percentages apply to kopecks, then ``point_value``."""

    point_value: int = Field(default=100, ge=1, le=10_000, strict=True)
    accrual_percent: Percent = 0
    rounding: Literal["down", "half_up", "up"] = "down"
    pending_days: int = Field(default=0, ge=0, le=3650)
    validity_days: int | None = Field(default=None, ge=1, le=36_500)
    max_share_percent: Percent = 10_000
    min_line_amount: Money = 0
    max_points_per_receipt: Points | None = None
    max_points_per_card_day: Points | None = None
    # Spending thresholds (SPEC §4 item 32): points are spent only from a card whose active
    # balance is at least min_balance_to_spend, on a receipt whose amount after discounts
    # is at least min_receipt_to_spend kopecks, and at most max_redeem_per_receipt points.
    min_balance_to_spend: int = Field(default=0, ge=0, le=MAX_POINTS, strict=True)
    min_receipt_to_spend: Money = 0
    max_redeem_per_receipt: Points | None = None
    welcome_points: int = Field(default=0, ge=0, le=MAX_POINTS)
    referral_points: int = Field(default=0, ge=0, le=MAX_POINTS)
    refund_spent_policy: Literal["negative_balance", "withhold"] = "negative_balance"
    # How long a calculation that asks for it ("hold": true) holds the points it shows
    # (SPEC §3.5): other tills cannot spend them meanwhile; its commit takes them.
    hold_seconds: int = Field(default=120, ge=1, le=3600)
    # Offline allowances (SPEC §3.5): at most this many points held for one till, for
    # this many hours, spendable while it is offline; 0 points: none granted.
    offline_allowance_points: int = Field(default=1_000, ge=0, le=MAX_POINTS, strict=True)
    offline_allowance_hours: int = Field(default=4, ge=1, le=72)
    # SPEC §3.4's points_fiscal_mode: points paid lower the fiscal positions' prices
    # ("discount"), or the positions keep the price after discounts and the points are
    # a separate tender ("tender": each line's points_paid).
    fiscal_mode: Literal["discount", "tender"] = "discount"
    offer_card_threshold: Money | None = None


class WalletSettings(_Model):
    """Gift certificates and e-wallets (SPEC §4 item 34)."""

    # Whether the money a wallet pays earns points, as money paid otherwise does.
    earn_points: bool = True
    # Days a certificate lives from its sale, unless it was issued with its own; None: for
    # good. E-wallets live for good unless issued with a validity.
    validity_days: int | None = Field(default=365, ge=1, le=36_500)
    # The most an e-wallet may hold after a top-up; None: no limit.
    max_balance: Money | None = None


class EventSettings(_Model):
    """Events for the chain's CRM (SPEC §4 item 37)."""

    # The ``birthday`` webhook goes this many days before a customer's birthday (0: on
    # the day), once a year per card.
    birthday_days_ahead: int = Field(default=7, ge=0, le=60)


class Tier(_Model):
    code: Identifier
    name: str = Field(min_length=1, max_length=100)
    threshold: Money
    accrual_percent: Percent | None = None
    discount_percent: Percent = 0


class TierSettings(_Model):
    """Tiers by spend; ``window_days`` None counts lifetime spend, a number a rolling window."""

    window_days: int | None = Field(default=None, ge=1, le=3650)
    # When a card whose spend fell below its tier's threshold moves down: at the scheduled
    # review (the ledger job), or at once when a return takes the spend back.
    downgrade: Literal["scheduled", "on_return"] = "scheduled"
    levels: list[Tier] = Field(default_factory=list, max_length=MAX_BITMASK_VALUES)

    @model_validator(mode="after")
    def _thresholds_ascend(self) -> TierSettings:
        thresholds = [tier.threshold for tier in self.levels]
        if any(a >= b for a, b in pairwise(thresholds)):
            raise ValueError("tier thresholds must be strictly increasing in the order listed")
        return self


class Group(_Model):
    id: Identifier
    name: str = Field(default="", max_length=100)


class Exclusion(_Model):
    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)


class Target(_Model):
    """Which lines a rule touches. No skus, categories or brands: every line."""

    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    stores: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    exclude: Exclusion = Field(default_factory=lambda: Exclusion())

    @property
    def all_lines(self) -> bool:
        return not (self.skus or self.categories or self.brands)


class DateRange(_Model):
    """Store-local dates, both inclusive."""

    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.from_ > self.to:
            raise ValueError("'from' is after 'to'")
        return self


class HoursWindow(_Model):
    """Store-local time of day; 'from' inclusive, 'to' exclusive; wraps past midnight."""

    from_: time = Field(alias="from")
    to: time

    @model_validator(mode="after")
    def _not_empty(self) -> HoursWindow:
        if self.from_ == self.to:
            raise ValueError("'from' equals 'to': the window is empty")
        if self.from_.second or self.to.second:
            raise ValueError("hours are whole minutes (HH:MM)")
        return self


class PurchaseNumber(_Model):
    """The customer's n-th purchase (``equals``) or every n-th purchase (``every``)."""

    equals: int | None = Field(default=None, ge=1)
    every: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _one_of(self) -> PurchaseNumber:
        if (self.equals is None) == (self.every is None):
            raise ValueError("give exactly one of 'equals' and 'every'")
        return self


class Requirement(_Model):
    """Goods the receipt must hold besides the rule's target ("buy 3 of A, get 10% off
    the order"): its lines (not excluded by the till) naming one of these SKUs,
    categories or brands, together at least ``min_quantity`` and ``min_amount`` (before
    discounts); with neither given, any quantity of them."""

    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    min_quantity: Quantity | None = None
    min_amount: PositiveMoney | None = None

    @model_validator(mode="after")
    def _names_goods(self) -> Requirement:
        if not (self.skus or self.categories or self.brands):
            raise ValueError("a requirement names skus, categories or brands")
        return self


class Conditions(_Model):
    """All given conditions must hold; an empty list means no restriction."""

    tiers: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    channels: list[Literal["offline", "online"]] = Field(default_factory=list)
    payment_methods: list[str] = Field(default_factory=list)
    pickup: bool | None = None
    dates: DateRange | None = None
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list
    )
    hours: HoursWindow | None = None
    on_holidays: bool | None = None
    birthday_window_days: int | None = Field(default=None, ge=0, le=31)
    purchase_number: PurchaseNumber | None = None
    promo_code: bool = False
    min_subtotal: PositiveMoney | None = None
    min_quantity: Quantity | None = None
    # Goods besides the target, every group of which the receipt must hold.
    requires: list[Requirement] = Field(default_factory=list, max_length=10)

    @property
    def needs_card(self) -> bool:
        return bool(
            self.tiers
            or self.segments
            or self.birthday_window_days is not None
            or self.purchase_number is not None
        )


class PercentEffect(_Model):
    type: Literal["percent"]
    percent: PositivePercent


class AmountEffect(_Model):
    """A fixed amount off the rule's lines together, split over them by amount."""

    type: Literal["amount"]
    amount: PositiveMoney


class FixedPriceEffect(_Model):
    """Each unit of the rule's lines costs ``price`` (never raises a price)."""

    type: Literal["fixed_price"]
    price: Money


class NthItemEffect(_Model):
    """Every ``n``-th unit, the cheapest ones, at ``percent`` off ("3 for 2": n=3, 100)."""

    type: Literal["nth_item"]
    n: int = Field(ge=2, le=100)
    percent: PositivePercent = 10_000


class CheapestEffect(_Model):
    """The ``units`` cheapest (``dearest``: dearest) units of the rule's lines at
    ``percent`` off: once per receipt, or ``units`` for every ``every`` units the lines
    hold ("the cheapest item free", "the dearest of every 3 at 50%")."""

    type: Literal["cheapest"]
    units: int = Field(default=1, ge=1, le=100)
    every: int | None = Field(default=None, ge=1, le=100)
    percent: PositivePercent = 10_000
    dearest: bool = False


class StampsEffect(_Model):
    """A stamp card ("every 6th coffee free"): each whole unit of the rule's lines
    (``count: units``), or each receipt holding one (``receipts``), adds a stamp to the
    card; the unit that makes ``every`` (the cheapest of the receipt's) is at
    ``percent`` off, and the count starts again. The card's progress, ``have`` of
    ``every``, is kept per rule id and shown in the answer."""

    type: Literal["stamps"]
    every: int = Field(ge=2, le=100)
    count: Literal["units", "receipts"] = "units"
    percent: PositivePercent = 10_000


class BundleEffect(_Model):
    """Every ``quantity`` units of the rule's lines together cost ``price``."""

    type: Literal["bundle"]
    quantity: int = Field(ge=2, le=100)
    price: Money


class QuantityStep(_Model):
    from_: Quantity = Field(alias="from")
    percent: PositivePercent


class SubtotalStep(_Model):
    from_: PositiveMoney = Field(alias="from")
    percent: PositivePercent


def _check_ascending(values: list[int]) -> None:
    if any(a >= b for a, b in pairwise(values)):
        raise ValueError("steps must be listed with strictly increasing 'from'")


class QuantityStepsEffect(_Model):
    """Percent off by the quantity of the rule's lines (the highest step reached)."""

    type: Literal["quantity_steps"]
    steps: list[QuantityStep] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _ascending(self) -> QuantityStepsEffect:
        _check_ascending([step.from_ for step in self.steps])
        return self


class SubtotalStepsEffect(_Model):
    """Percent off by the amount of the rule's lines (the highest step reached)."""

    type: Literal["subtotal_steps"]
    steps: list[SubtotalStep] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _ascending(self) -> SubtotalStepsEffect:
        _check_ascending([step.from_ for step in self.steps])
        return self


class TierDiscountEffect(_Model):
    """The discount of the card's tier (``tiers.levels[].discount_percent``)."""

    type: Literal["tier_discount"]


class PersonalDiscountEffect(_Model):
    """The card's own personal discount."""

    type: Literal["personal_discount"]


class AccrualRateEffect(_Model):
    """Extra points: ``percent`` of the amount paid in money on the rule's lines."""

    type: Literal["accrual_rate"]
    percent: PositivePercent


class PointsMultiplierEffect(_Model):
    """Base accrual on the rule's lines times ``multiplier`` (the extra part is this rule's)."""

    type: Literal["points_multiplier"]
    multiplier: Multiplier


class PointsPerUnitEffect(_Model):
    type: Literal["points_per_unit"]
    points: Points


class BonusPointsEffect(_Model):
    """A fixed number of points for the receipt, when the rule's lines are bought."""

    type: Literal["bonus_points"]
    points: Points


class NoEarnEffect(_Model):
    type: Literal["no_earn"]
    discounted_only: bool = False


class NoPayWithPointsEffect(_Model):
    type: Literal["no_pay_with_points"]
    discounted_only: bool = False


class GiftEffect(_Model):
    type: Literal["gift"]
    sku: str = Field(min_length=1, max_length=64)
    quantity: Quantity = 1000


class FreeDeliveryEffect(_Model):
    type: Literal["free_delivery"]


Effect = Annotated[
    PercentEffect
    | AmountEffect
    | FixedPriceEffect
    | NthItemEffect
    | CheapestEffect
    | StampsEffect
    | BundleEffect
    | QuantityStepsEffect
    | SubtotalStepsEffect
    | TierDiscountEffect
    | PersonalDiscountEffect
    | AccrualRateEffect
    | PointsMultiplierEffect
    | PointsPerUnitEffect
    | BonusPointsEffect
    | NoEarnEffect
    | NoPayWithPointsEffect
    | GiftEffect
    | FreeDeliveryEffect,
    Field(discriminator="type"),
]
EFFECT_TYPES = frozenset(DISCOUNT_EFFECTS | EARNING_EFFECTS) | {
    "no_earn",
    "no_pay_with_points",
    "gift",
    "free_delivery",
}


class Rule(_Model):
    """One promotion. Higher ``priority`` is evaluated first; ties keep document order."""

    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    stacking: Literal["exclusive", "best_of", "additive", "compounding"] = "additive"
    group: str | None = None
    active: bool = True
    target: Target = Field(default_factory=lambda: Target())
    conditions: Conditions = Field(default_factory=lambda: Conditions())
    effect: Effect
    # What conditions.min_subtotal and the subtotal_steps effect measure (SPEC §4 item 33):
    # the lines at their original prices, or what is left of them after the discounts
    # given before this rule (rules of higher priority).
    threshold_basis: Literal["original", "after_discounts"] = "original"
    max_per_receipt: int | None = Field(default=None, ge=1, le=MAX_MONEY)
    budget: int | None = Field(default=None, ge=1, le=10**15)
    # Use caps (SPEC §4 item 30, service/domain/limits.py): sales the rule may apply to,
    # of every card and of one card, for good or per store-local day, ISO week or month.
    max_uses: int | None = Field(default=None, ge=1, le=10**12)
    max_uses_per_card: int | None = Field(default=None, ge=1, le=10**6)
    uses_period: Literal["day", "week", "month"] | None = None

    @property
    def is_discount(self) -> bool:
        return self.effect.type in DISCOUNT_EFFECTS

    @property
    def is_earning(self) -> bool:
        return self.effect.type in EARNING_EFFECTS

    @property
    def needs_card(self) -> bool:
        """Card conditions, card discounts and every earning rule need an active card."""
        # Stamps are counted on a card: a stamp rule needs one as card discounts do.
        card_effect = self.effect.type in ("tier_discount", "personal_discount", "stamps")
        counted_per_card = self.max_uses_per_card is not None
        return self.conditions.needs_card or self.is_earning or card_effect or counted_per_card


class PromoCode(_Model):
    """A code declared in the document; ``valid_from``/``valid_to`` are store-local dates."""

    code: str = Field(min_length=2, max_length=64)
    rules: list[str] = Field(min_length=1)
    single_use: bool = False
    max_uses: int | None = Field(default=None, ge=1)
    per_card_limit: int | None = Field(default=None, ge=1)
    valid_from: date | None = None
    valid_to: date | None = None

    @property
    def total_limit(self) -> int | None:
        return 1 if self.single_use else self.max_uses


class ProgramDocument(_Model):
    format: Literal[1] = 1
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    # Receipts a till sends late (SPEC §3.3): calculated under the version in force at
    # their time; older than this many days, refused with receipt_too_old.
    max_lateness_days: int = Field(default=30, ge=0, le=3650)
    # How the chain's cards are numbered (SPEC §12): free digits, or EAN-13 with a valid
    # check digit, checked on every card number the service is given.
    card_number_format: Literal["digits", "ean13"] = "digits"
    points: PointSettings = Field(default_factory=lambda: PointSettings())
    wallets: WalletSettings = Field(default_factory=lambda: WalletSettings())
    events: EventSettings = Field(default_factory=lambda: EventSettings())
    tiers: TierSettings = Field(default_factory=lambda: TierSettings())
    holidays: list[date] = Field(default_factory=list)
    # A production calendar whose public holidays and moved days off count as holidays
    # (conditions.on_holidays) beside the dates listed above: "RU", or none.
    holiday_calendar: Literal["RU"] | None = None
    groups: list[Group] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)
    promo_codes: list[PromoCode] = Field(default_factory=list)


def parse_program(data: Mapping[str, Any]) -> ProgramDocument:
    """Validate a program document; raise ``ProgramInvalid`` naming each bad field and why."""
    try:
        document = ProgramDocument.model_validate(dict(data))
    except ValidationError as exc:
        errors = [
            {
                "field": _field_path(error["loc"]),
                "message": error["msg"].removeprefix("Value error, "),
            }
            for error in exc.errors()
        ]
        raise ProgramInvalid("the program document is invalid", errors) from None
    errors = _cross_check(document)
    if errors:
        raise ProgramInvalid("the program document is invalid", errors)
    return document


def _field_path(loc: tuple[int | str, ...]) -> str:
    """("rules", 3, "effect", "percent", "percent") -> "rules[3].effect.percent"."""
    path = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not (previous == "effect" and part in EFFECT_TYPES):
            path += f".{part}" if path else part
        previous = part
    return path or "document"


def _cross_check(doc: ProgramDocument) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    tier_codes = [tier.code for tier in doc.tiers.levels]
    errors += _duplicates(tier_codes, "tiers.levels[{}].code", "duplicate tier code")
    errors += _duplicates([g.id for g in doc.groups], "groups[{}].id", "duplicate group id")
    errors += _duplicates([r.id for r in doc.rules], "rules[{}].id", "duplicate rule id")
    group_ids = {group.id for group in doc.groups}
    for index, rule in enumerate(doc.rules):
        errors += _check_rule(rule, f"rules[{index}]", group_ids, set(tier_codes))
    methods = {m for rule in doc.rules for m in rule.conditions.payment_methods}
    if len(methods) > MAX_BITMASK_VALUES:
        errors.append(_error("rules", f"at most {MAX_BITMASK_VALUES} payment methods"))
    errors += _check_promo_codes(doc)
    return errors


def _check_rule(rule: Rule, path: str, groups: set[str], tiers: set[str]) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if rule.stacking == "best_of" and rule.group is None:
        errors.append(_error(f"{path}.group", "best_of rules compete within a group: name one"))
    if rule.group is not None and rule.group not in groups:
        errors.append(_error(f"{path}.group", f"unknown group {rule.group!r}"))
    if rule.group is not None and rule.stacking != "best_of":
        errors.append(_error(f"{path}.group", "only best_of rules belong to a group"))
    if not rule.is_discount and rule.stacking != "additive":
        errors.append(_error(f"{path}.stacking", "stacking applies to discount rules only"))
    if not (rule.is_discount or rule.is_earning):
        for name in ("max_per_receipt", "budget"):
            if getattr(rule, name) is not None:
                errors.append(_error(f"{path}.{name}", f"not meaningful for {rule.effect.type}"))
    if rule.uses_period is not None and rule.max_uses is None and rule.max_uses_per_card is None:
        errors.append(_error(f"{path}.uses_period", "a period for max_uses or max_uses_per_card"))
    for index, code in enumerate(rule.conditions.tiers):
        if code not in tiers:
            errors.append(_error(f"{path}.conditions.tiers[{index}]", f"unknown tier {code!r}"))
    if rule.effect.type == "tier_discount" and not tiers:
        errors.append(_error(f"{path}.effect.type", "tier_discount needs tiers.levels"))
    return errors


def _check_promo_codes(doc: ProgramDocument) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    codes = [promo.code.strip().upper() for promo in doc.promo_codes]
    errors += _duplicates(codes, "promo_codes[{}].code", "duplicate promo code")
    rules = {rule.id: rule for rule in doc.rules}
    for index, promo in enumerate(doc.promo_codes):
        path = f"promo_codes[{index}]"
        if not _CODE_PATTERN.match(codes[index]):
            errors.append(_error(f"{path}.code", "letters, digits, '-' and '_' only"))
        for k, rule_id in enumerate(promo.rules):
            rule = rules.get(rule_id)
            if rule is None:
                errors.append(_error(f"{path}.rules[{k}]", f"unknown rule {rule_id!r}"))
            elif not rule.conditions.promo_code:
                errors.append(
                    _error(f"{path}.rules[{k}]", f"rule {rule_id!r} lacks conditions.promo_code")
                )
        if promo.valid_from and promo.valid_to and promo.valid_from > promo.valid_to:
            errors.append(_error(f"{path}.valid_from", "valid_from is after valid_to"))
        if promo.single_use and promo.max_uses not in (None, 1):
            errors.append(_error(f"{path}.max_uses", "a single_use code has max_uses 1"))
    return errors


def _duplicates(values: list[str], path: str, message: str) -> list[dict[str, str]]:
    seen: set[str] = set()
    errors = []
    for index, value in enumerate(values):
        if value in seen:
            errors.append(_error(path.format(index), f"{message} {value!r}"))
        seen.add(value)
    return errors


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
