"""The pilot report finds a planted 5% uplift in two stores, and finds none in noise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from service.domain.errors import InvalidInput
from service.simulation.pilot import pilot_report

STORES = [f"s{i}" for i in range(10)]
PILOT, CONTROL = ["s0", "s1"], [f"s{i}" for i in range(2, 10)]
FIRST_DAY = date(2025, 1, 6)
START = date(2025, 3, 3)  # 56 days before, 56 after


def receipts(seed: int, planted: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """112 days of 10 stores, about 150 receipts a store and day, amounts lognormal
    (their spread two thirds of the mean) around each store's own level, busier weekends,
    a chain-wide rise of 3% after the start; the pilot stores' receipts ``planted``
    larger after it."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(150_000, 250_000, size=len(STORES))
    occurred, store, sales = [], [], []
    for d in range(112):
        day = FIRST_DAY + timedelta(days=d)
        after = day >= START
        weekend = 1.15 if day.weekday() >= 5 else 1.0
        for s in range(len(STORES)):
            n = rng.poisson(150)
            factor = weekend * (1.03 if after else 1.0)
            if after and STORES[s] in PILOT:
                factor *= 1 + planted
            amounts = level[s] * factor * rng.lognormal(-0.18, 0.6, size=n)
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            occurred += [int(noon.timestamp()) + int(x) for x in rng.integers(-3600, 3600, n)]
            store += [s] * n
            sales += amounts.astype(np.int64).tolist()
    return np.array(occurred), np.array(store), np.array(sales)


def report(seed: int, planted: float):  # type: ignore[no-untyped-def]
    occurred, store, sales = receipts(seed, planted)
    return pilot_report(
        occurred, store, sales, STORES, ["UTC"] * len(STORES),
        pilot=PILOT, control=CONTROL, starts=START,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_planted_five_percent_is_found_and_measured(seed: int) -> None:
    found = report(seed, 0.05)
    estimate = found.average_receipt
    assert estimate.found
    assert estimate.low_bp <= 500 <= estimate.high_bp
    assert 300 <= estimate.uplift_bp <= 700
    assert found.sales_per_store_day.found
    assert found.pilot_after.average_receipt > found.pilot_before.average_receipt


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_alone_is_not_taken_for_an_uplift(seed: int) -> None:
    estimate = report(seed, 0.0).average_receipt
    assert not estimate.found
    assert estimate.low_bp < 0 < estimate.high_bp


def test_groups_must_be_known_and_apart() -> None:
    occurred, store, sales = receipts(1, 0.0)
    with pytest.raises(InvalidInput):
        pilot_report(occurred, store, sales, STORES, ["UTC"] * 10,
                     pilot=["s0"], control=["s0", "s2"], starts=START)  # fmt: skip
    with pytest.raises(InvalidInput):
        pilot_report(occurred, store, sales, STORES, ["UTC"] * 10,
                     pilot=["nowhere"], control=["s2"], starts=START)  # fmt: skip
