"""Uplift forecast of a threshold (SPEC §10.2), as the seed article on 1C builds it.

Customers are grouped by how far their receipt is from the next threshold (a tier, a
gift, free delivery). A share of them, falling with the distance, "buys up to the
threshold": the add-on is the distance itself, and only customers whose distance is
at most a share of their average receipt (80% by default) are counted at all. From
each such receipt the program's cost is taken away: the gift (at most a share of the
receipt), the discount the threshold grants, the delivery it makes free (online).
Three scenarios of conversion, twelve months, offline and online apart, new and loyal
customers apart.

Worked example (SPEC §10.2): an online basket of 2,030 roubles, the 3,000-rouble
threshold, a gift at 5% of the receipt (150 roubles) and delivery at 350 roubles: the
add-on is 970 roubles and the uplift 970 - 150 - 350 = 470 roubles, 23% of 2,030.

Money is kopecks; shares are basis points (``BP`` = 100%); the frequency is thousandths
of a purchase per month. Every assumption is a field of ``UpliftAssumptions`` with its
default, and ``Forecast.assumptions`` carries them beside the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from service.domain.errors import InvalidInput
from service.domain.money import percent_of

BP = 10_000
MONTHS = 12
SCENARIOS = ("pessimistic", "moderate", "optimistic")
# Conversion by distance, as a share of the average receipt: the upper bounds of the
# bands (bp) and each scenario's conversion in each band (bp).
DISTANCE_BANDS = (2_000, 4_000, 6_000, 8_000)
CONVERSION = {
    "pessimistic": (1_000, 500, 200, 100),
    "moderate": (2_000, 1_000, 500, 200),
    "optimistic": (3_000, 2_000, 1_000, 500),
}


@dataclass(frozen=True, slots=True)
class UpliftAssumptions:
    """The forecast's inputs besides the customers, each with its default."""

    addon_share_bp: int = 8_000  # the largest add-on a customer makes: 80% of the average receipt
    gift_share_bp: int = 500  # the gift's cost: 5% of the receipt at the threshold
    gift_cost_cap: int | None = None  # kopecks; the gift costs at most this much
    discount_bp: int = 0  # the discount the threshold grants on the receipt
    delivery_cost: int = 35_000  # kopecks: free delivery of an online receipt
    distance_bands_bp: tuple[int, ...] = DISTANCE_BANDS
    conversion_bp: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(CONVERSION))
    months: int = MONTHS

    def __post_init__(self) -> None:
        shares = (self.addon_share_bp, self.gift_share_bp, self.discount_bp)
        if any(not 0 <= s <= BP for s in shares) or self.delivery_cost < 0:
            raise InvalidInput("shares are between 0 and 100%, costs not negative")
        if list(self.distance_bands_bp) != sorted(self.distance_bands_bp):
            raise InvalidInput("distance bands go up")
        if set(self.conversion_bp) != set(SCENARIOS) or any(
            len(c) != len(self.distance_bands_bp) or not all(0 <= v <= BP for v in c)
            for c in self.conversion_bp.values()
        ):
            raise InvalidInput("one conversion per distance band for each of the three scenarios")
        if not 1 <= self.months <= 120:
            raise InvalidInput("months: 1 to 120")


@dataclass(frozen=True, slots=True)
class ReceiptUplift:
    """One receipt brought to the threshold (kopecks; ``share_bp`` of the basket)."""

    basket: int
    addon: int
    gift: int
    discount: int
    delivery: int
    uplift: int
    share_bp: int


def receipt_uplift(
    basket: int, threshold: int, channel: str, assumptions: UpliftAssumptions
) -> ReceiptUplift:
    """What a receipt of ``basket`` kopecks brought up to ``threshold`` earns the chain:
    the add-on less the gift, the discount and (online) the delivery the program gives."""
    if basket <= 0 or threshold <= basket:
        raise InvalidInput("the basket is above zero and below the threshold")
    addon = threshold - basket
    gift = percent_of(threshold, assumptions.gift_share_bp)
    if assumptions.gift_cost_cap is not None:
        gift = min(gift, assumptions.gift_cost_cap)
    discount = percent_of(threshold, assumptions.discount_bp)
    delivery = assumptions.delivery_cost if channel == "online" else 0
    uplift = addon - gift - discount - delivery
    return ReceiptUplift(basket, addon, gift, discount, delivery, uplift, uplift * BP // basket)


@dataclass(frozen=True, slots=True)
class CustomerGroup:
    """Customers of one channel and kind at about one distance from a threshold."""

    channel: str  # "offline" or "online"
    kind: str  # "new" or "loyal"
    customers: int
    average_receipt: int  # kopecks
    threshold: int  # kopecks: the receipt (or spend) the threshold asks for
    purchases_per_month_milli: int  # thousandths of a purchase a month


@dataclass(frozen=True, slots=True)
class ForecastRow:
    scenario: str
    month: int  # 1..months
    channel: str
    kind: str
    converted_receipts: int
    addon_sales: int  # kopecks
    program_cost: int  # gift, discount, delivery
    uplift: int


@dataclass(frozen=True, slots=True)
class Forecast:
    assumptions: dict[str, Any]
    rows: list[ForecastRow]

    def totals(self) -> dict[str, dict[str, int]]:
        """Per scenario, the uplift over all months: in all and per channel."""
        out: dict[str, dict[str, int]] = {s: {"total": 0} for s in SCENARIOS}
        for row in self.rows:
            bucket = out[row.scenario]
            bucket["total"] += row.uplift
            bucket[row.channel] = bucket.get(row.channel, 0) + row.uplift
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "assumptions": self.assumptions,
            "totals": self.totals(),
            "rows": [asdict(row) for row in self.rows],
        }


def conversion_for(distance_bp: int, scenario: str, assumptions: UpliftAssumptions) -> int:
    """The scenario's conversion at a distance (bp of the average receipt); 0 beyond
    the add-on share or the last band."""
    if distance_bp > assumptions.addon_share_bp:
        return 0
    for bound, conversion in zip(
        assumptions.distance_bands_bp, assumptions.conversion_bp[scenario], strict=True
    ):
        if distance_bp <= bound:
            return conversion
    return 0


def forecast(groups: list[CustomerGroup], assumptions: UpliftAssumptions) -> Forecast:
    """Each scenario, month, channel and kind: the receipts converted and their uplift.

    A group's receipts a month are its customers times their purchase frequency; the
    converted share of them each add the distance to the threshold (``receipt_uplift``).
    The months are alike: the forecast holds the customers' distances where they are."""
    sums: dict[tuple[str, str, str], list[int]] = {}
    for group in groups:
        if group.average_receipt <= 0 or group.threshold <= group.average_receipt:
            continue
        distance_bp = (group.threshold - group.average_receipt) * BP // group.average_receipt
        one = receipt_uplift(group.average_receipt, group.threshold, group.channel, assumptions)
        receipts = group.customers * group.purchases_per_month_milli
        for scenario in SCENARIOS:
            converted = receipts * conversion_for(distance_bp, scenario, assumptions) // (BP * 1000)
            total = sums.setdefault((scenario, group.channel, group.kind), [0, 0, 0, 0])
            total[0] += converted
            total[1] += converted * one.addon
            total[2] += converted * (one.gift + one.discount + one.delivery)
            total[3] += converted * one.uplift
    rows = [
        ForecastRow(scenario, month, channel, kind, *values)
        for month in range(1, assumptions.months + 1)
        for (scenario, channel, kind), values in sorted(sums.items())
    ]
    return Forecast(asdict(assumptions), rows)
