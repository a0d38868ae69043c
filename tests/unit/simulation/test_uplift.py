"""The uplift forecast (SPEC §10.2): the seed article's worked example, then the table."""

from __future__ import annotations

import pytest

from service.domain.errors import InvalidInput
from service.simulation.uplift import (
    SCENARIOS,
    CustomerGroup,
    UpliftAssumptions,
    conversion_for,
    forecast,
    receipt_uplift,
)


def test_the_worked_example_of_the_spec() -> None:
    # An online basket of 2,030 roubles brought to the 3,000-rouble threshold by a gift:
    # 970 roubles more, the gift 150 (5% of the receipt), delivery 350: 470, 23% of 2,030.
    one = receipt_uplift(203_000, 300_000, "online", UpliftAssumptions())
    assert (one.addon, one.gift, one.delivery, one.discount) == (97_000, 15_000, 35_000, 0)
    assert one.uplift == 47_000
    assert round(one.share_bp / 100) == 23


def test_offline_pays_no_delivery_and_a_capped_gift() -> None:
    assumptions = UpliftAssumptions(gift_cost_cap=10_000, discount_bp=300)
    one = receipt_uplift(203_000, 300_000, "offline", assumptions)
    assert (one.gift, one.discount, one.delivery) == (10_000, 9_000, 0)
    assert one.uplift == 97_000 - 10_000 - 9_000


def test_conversion_falls_with_the_distance_and_stops_at_the_add_on_share() -> None:
    assumptions = UpliftAssumptions()
    for scenario in SCENARIOS:
        rates = [conversion_for(d, scenario, assumptions) for d in (1_000, 3_000, 5_000, 7_000)]
        assert rates == sorted(rates, reverse=True) and rates[-1] > 0
        assert conversion_for(8_001, scenario, assumptions) == 0  # beyond 80% of the receipt
    assert conversion_for(1_000, "pessimistic", assumptions) < conversion_for(
        1_000, "optimistic", assumptions
    )


def test_twelve_months_by_scenario_channel_and_kind() -> None:
    groups = [
        # 1,000 online customers at the example's distance (47.8% of their receipt),
        # buying twice a month: moderate converts 5% of 2,000 receipts = 100 a month.
        CustomerGroup("online", "loyal", 1_000, 203_000, 300_000, 2_000),
        CustomerGroup("offline", "new", 500, 150_000, 200_000, 1_000),
        CustomerGroup("offline", "loyal", 100, 100_000, 500_000, 4_000),  # too far: none
    ]
    result = forecast(groups, UpliftAssumptions())
    online = [r for r in result.rows if r.scenario == "moderate" and r.channel == "online"]
    assert [r.month for r in online] == list(range(1, 13))
    assert {r.converted_receipts for r in online} == {100}
    assert {r.uplift for r in online} == {100 * 47_000}
    assert {r.addon_sales - r.program_cost for r in online} == {100 * 47_000}
    totals = result.totals()
    assert (
        totals["pessimistic"]["total"] < totals["moderate"]["total"] < totals["optimistic"]["total"]
    )
    assert totals["moderate"]["online"] == 12 * 100 * 47_000
    assert result.as_json()["assumptions"]["addon_share_bp"] == 8_000  # the default, shown


def test_assumptions_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidInput):
        UpliftAssumptions(addon_share_bp=12_000)
    with pytest.raises(InvalidInput):
        UpliftAssumptions(conversion_bp={"moderate": (1, 2, 3, 4)})
    with pytest.raises(InvalidInput):
        receipt_uplift(300_000, 300_000, "online", UpliftAssumptions())
