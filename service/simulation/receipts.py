"""A period of receipts as columns, the simulation's input (SPEC §10.1).

One ``ReceiptSet`` holds receipts in time order as plain numpy arrays: a row per receipt
(time, store, card, channel, payment method, points asked for) and a row per line (sku,
category, brand, quantity, unit price), names kept once in vocabularies. It comes from a
receipts file (``read_receipts``: CSV, or parquet with the ``files`` extra) or from
columns already in memory (``receipt_set``: the Complete Journey benchmark).

The file is long, one row per line, a receipt's rows together:

| column | meaning |
| --- | --- |
| ``receipt_id`` | any text; the rows of one receipt share it |
| ``timestamp`` | ISO 8601 with its UTC offset, when the sale happened |
| ``store_id`` | the store; ``region`` and ``timezone`` (IANA) may follow, else "" and UTC |
| ``card`` | the card number; empty: a sale without a card |
| ``channel`` | ``offline`` (default) or ``online`` |
| ``payment_method`` | optional, as the POS sends it |
| ``redeem_points`` | points the customer asked to pay with: a number or ``max``; empty: 0 |
| ``sku``, ``category``, ``brand`` | the line's goods (category and brand may be empty) |
| ``quantity`` | decimal text, at most 3 places (``0.532``) |
| ``unit_price`` | kopecks |
| ``excluded`` | optional, ``1`` for a line the POS keeps out of loyalty |
| ``returns`` | optional: on a return's rows, the ``receipt_id`` of the sale returned |
| ``line`` | on a return's rows: the line returned, its place on that sale from 1 |

A return (``POST /v1/refund`` of part of a sale) is one or more rows with ``returns``
set: ``receipt_id`` names the return (its rows together, as a receipt's), ``timestamp``
is when it happened, ``line`` and ``quantity`` what goes back; the other columns are
not read. A sale's returns may not give back more of a line than it sold. Rows without
``returns`` (or files without the column) are sales.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.domain.errors import InvalidInput
from service.domain.receipt import MAX_LINES, MAX_QUANTITY, MAX_UNIT_PRICE, StoreInfo
from service.domain.units import quantity_milli

IntArray = npt.NDArray[np.int64]

NO_RECEIPTS = "no_receipts_in_period"  # the code of a period of the ledger with no sale
REDEEM_MAX = -1  # ``redeem`` of a receipt whose customer asked to pay all that is allowed
CHANNELS = ("offline", "online")
REQUIRED_COLUMNS = ("receipt_id", "timestamp", "store_id", "sku", "quantity", "unit_price")


@dataclass(frozen=True, slots=True)
class Returns:
    """Partial returns of the set's sales, in time order (stable): a row per line
    returned. ``sale`` is the receipt, ``line`` the line's index in the set's line
    columns, ``quantity`` thousandths, ``at`` seconds since the epoch; ``refund`` numbers
    the returns (the rows of one return share it)."""

    sale: IntArray
    line: IntArray
    quantity: IntArray
    at: IntArray
    refund: IntArray

    def __len__(self) -> int:
        return int(self.sale.shape[0])


NO_RETURNS = Returns(*(np.zeros(0, dtype=np.int64) for _ in range(5)))


@dataclass(frozen=True, slots=True)
class ReceiptSet:
    """Receipts in time order; receipt ``b``'s lines are ``line_ptr[b]:line_ptr[b + 1]``.

    Indexes point into the vocabularies (``card``, ``payment``, ``category``, ``brand``
    are -1 for none). ``occurred`` is seconds since the epoch (UTC); ``channel`` indexes
    ``CHANNELS``; ``redeem`` is points asked for, or ``REDEEM_MAX``.
    """

    occurred: IntArray
    store: IntArray
    card: IntArray
    channel: IntArray
    payment: IntArray
    redeem: IntArray
    line_ptr: IntArray
    sku: IntArray
    category: IntArray
    brand: IntArray
    quantity: IntArray  # thousandths
    unit_price: IntArray  # kopecks
    excluded: IntArray  # 1: kept out of loyalty by the POS
    stores: tuple[StoreInfo, ...]
    cards: tuple[str, ...]
    skus: tuple[str, ...]
    categories: tuple[str, ...]
    brands: tuple[str, ...]
    payment_methods: tuple[str, ...]
    returns: Returns = NO_RETURNS

    def __len__(self) -> int:
        return int(self.occurred.shape[0])

    @property
    def line_count(self) -> int:
        return int(self.sku.shape[0])


def factorize(values: Iterable[Any]) -> tuple[IntArray, tuple[str, ...]]:
    """Each value's index in the vocabulary of distinct values (first seen first);
    None and "" are -1."""
    vocabulary: dict[str, int] = {}
    add = vocabulary.setdefault
    codes = [-1 if v is None or v == "" else add(str(v), len(vocabulary)) for v in values]
    return np.array(codes, dtype=np.int64), tuple(vocabulary)


def receipt_set(
    *,
    receipt_of_line: IntArray,
    occurred: IntArray,
    store_ids: Sequence[str],
    stores: Mapping[str, StoreInfo],
    cards: Sequence[str | None],
    lines: Mapping[str, Any],
    channels: Sequence[str] | None = None,
    payment_methods: Sequence[str | None] | None = None,
    redeem: IntArray | None = None,
    returns: Mapping[str, IntArray] | None = None,
) -> ReceiptSet:
    """A set from columns: a row per receipt (``occurred`` ... ``redeem``) and a row per
    line (``lines``: ``sku``, ``category``, ``brand`` as sequences of text or None,
    ``quantity`` thousandths, ``unit_price``, optional ``excluded``), ``receipt_of_line``
    the receipt row of each line, ascending. ``returns``: a row per line returned,
    ``sale`` (the receipt row), ``line`` (its index on that receipt, from 0),
    ``quantity`` (thousandths), ``at`` (seconds), optional ``refund`` (the rows of one
    return share it; default: a return per row). Receipts are put in time order (stable)."""
    count = len(occurred)
    sizes = np.bincount(receipt_of_line, minlength=count)
    if np.any(np.diff(receipt_of_line) < 0):
        raise InvalidInput("the lines of each receipt must be together, receipts in order")
    _check_sizes(sizes, lines)
    order = np.argsort(occurred, kind="stable")
    line_order = _lines_in_order(sizes, order)
    store, store_names = factorize(store_ids)
    card, card_numbers = factorize(cards)
    payment, methods = factorize(payment_methods or [None] * count)
    sku, skus = factorize(np.asarray(lines["sku"], dtype=object)[line_order])
    category, categories = factorize(np.asarray(lines["category"], dtype=object)[line_order])
    brand, brands = factorize(np.asarray(lines["brand"], dtype=object)[line_order])
    excluded = lines.get("excluded")
    line_ptr = np.r_[0, np.cumsum(sizes[order])].astype(np.int64)
    quantity = np.asarray(lines["quantity"], dtype=np.int64)[line_order]
    return ReceiptSet(
        occurred=np.asarray(occurred, dtype=np.int64)[order],
        store=store[order],
        card=card[order],
        channel=_channel_codes(channels, count)[order],
        payment=payment[order],
        redeem=(np.zeros(count, np.int64) if redeem is None else np.asarray(redeem))[order],
        line_ptr=line_ptr,
        sku=sku,
        category=category,
        brand=brand,
        quantity=quantity,
        unit_price=np.asarray(lines["unit_price"], dtype=np.int64)[line_order],
        excluded=(
            np.zeros(len(line_order), np.int64)
            if excluded is None
            else np.asarray(excluded, dtype=np.int64)[line_order]
        ),
        stores=tuple(stores.get(s, StoreInfo(s, "", "UTC")) for s in store_names),
        cards=card_numbers,
        skus=skus,
        categories=categories,
        brands=brands,
        payment_methods=methods,
        returns=_returns(returns, order, sizes, line_ptr, quantity),
    )


def _returns(
    columns: Mapping[str, IntArray] | None,
    order: IntArray,
    sizes: IntArray,
    line_ptr: IntArray,
    sold: IntArray,
) -> Returns:
    """The returns with their sales and lines in the set's order, checked, in time order."""
    if columns is None or not len(columns["sale"]):
        return NO_RETURNS
    sale_row = np.asarray(columns["sale"], dtype=np.int64)
    on_receipt = np.asarray(columns["line"], dtype=np.int64)
    quantity = np.asarray(columns["quantity"], dtype=np.int64)
    at = np.asarray(columns["at"], dtype=np.int64)
    refund = np.asarray(columns.get("refund", np.arange(len(sale_row))), dtype=np.int64)
    if sale_row.min() < 0 or sale_row.max() >= len(sizes):
        raise InvalidInput("a return names a sale that is not in the receipts")
    if on_receipt.min() < 0 or np.any(on_receipt >= sizes[sale_row]):
        raise InvalidInput("a return names a line its sale does not have")
    if quantity.min() <= 0:
        raise InvalidInput("a returned quantity must be positive")
    place = np.empty_like(order)
    place[order] = np.arange(len(order), dtype=np.int64)
    sale = place[sale_row]
    line = line_ptr[sale] + on_receipt
    returned = np.bincount(line, weights=quantity, minlength=len(sold))
    if np.any(returned > sold):
        raise InvalidInput("returns give back more of a line than its sale sold")
    by_time = np.argsort(at, kind="stable")
    return Returns(sale[by_time], line[by_time], quantity[by_time], at[by_time], refund[by_time])


def _lines_in_order(sizes: IntArray, order: IntArray) -> IntArray:
    """The line positions of receipts taken in ``order``, each receipt's lines together."""
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    moved = sizes[order]
    new_starts = np.r_[0, np.cumsum(moved)[:-1]].astype(np.int64)
    total = int(moved.sum())
    return np.repeat(starts[order] - new_starts, moved) + np.arange(total, dtype=np.int64)


def _check_sizes(sizes: IntArray, lines: Mapping[str, Any]) -> None:
    if sizes.size and (sizes.min() < 1 or sizes.max() > MAX_LINES):
        raise InvalidInput(f"every receipt needs 1 to {MAX_LINES} lines")
    quantity = np.asarray(lines["quantity"], dtype=np.int64)
    price = np.asarray(lines["unit_price"], dtype=np.int64)
    if quantity.size and (quantity.min() <= 0 or quantity.max() > MAX_QUANTITY):
        raise InvalidInput("a line's quantity is out of range")
    if price.size and (price.min() < 0 or price.max() > MAX_UNIT_PRICE):
        raise InvalidInput("a line's unit price is out of range")


def _channel_codes(channels: Sequence[str] | None, count: int) -> IntArray:
    if channels is None:
        return np.zeros(count, dtype=np.int64)
    codes = {name: i for i, name in enumerate(CHANNELS)}
    try:
        return np.array([codes[c or "offline"] for c in channels], dtype=np.int64)
    except KeyError as exc:
        raise InvalidInput(f"unknown channel {exc.args[0]!r}") from None


def read_receipts(path: Path) -> ReceiptSet:
    """A receipts file: ``.parquet`` (needs pyarrow, the ``files`` extra) or CSV."""
    if path.suffix.lower() == ".parquet":
        return from_rows(_parquet_columns(path))
    return receipts_from_csv(path.read_bytes())


def receipts_from_csv(data: bytes) -> ReceiptSet:
    """The receipts of a CSV file's bytes (UTF-8, with or without a BOM)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("a receipts file is UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidInput(f"the receipts file lacks the columns {', '.join(missing)}")
    rows = list(reader)
    if not rows:
        raise InvalidInput("the receipts file holds no receipt")
    try:
        return from_rows(
            {name: [row.get(name) for row in rows] for name in reader.fieldnames or ()}
        )
    except (ValueError, TypeError) as exc:  # a number or a time that is not one
        raise InvalidInput(f"the receipts file: {exc}") from None


def _parquet_columns(path: Path) -> dict[str, list[Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the install
        raise InvalidInput("parquet needs pyarrow: pip install 'loyalty-engine[files]'") from None
    table = pq.read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise InvalidInput(f"the receipts file lacks the columns {', '.join(missing)}")
    return {name: table.column(name).to_pylist() for name in table.column_names}


def from_rows(columns: Mapping[str, Sequence[Any]]) -> ReceiptSet:
    """A set from the file's columns (one entry per line row; a return's rows have
    ``returns`` set)."""
    marks = columns.get("returns")
    if marks is not None and any(m not in (None, "") for m in marks):
        is_return = [m not in (None, "") for m in marks]
        sales = {k: [v for v, r in zip(vs, is_return, strict=True) if not r]
                 for k, vs in columns.items()}  # fmt: skip
        back = {k: [v for v, r in zip(vs, is_return, strict=True) if r]
                for k, vs in columns.items()}  # fmt: skip
        return _sales_from_rows(sales, _return_columns(sales["receipt_id"], back))
    return _sales_from_rows(columns)


def _return_columns(
    sale_ids: Sequence[Any], rows: Mapping[str, Sequence[Any]]
) -> dict[str, IntArray]:
    """``receipt_set``'s returns from the file's return rows: the sale as its receipt row
    (the index of its ``receipt_id`` among the sales', first seen first)."""
    if "line" not in rows:
        raise InvalidInput("the receipts file has returns but no line column")
    _, names = factorize(sale_ids)
    row_of = {name: i for i, name in enumerate(names)}
    sale = []
    for returned in rows["returns"]:
        row = row_of.get(str(returned))
        if row is None:
            raise InvalidInput(f"a return names the sale {returned!r}, not in the file")
        sale.append(row)
    refund, _ = factorize(rows["receipt_id"])
    try:
        return {
            "sale": np.array(sale, dtype=np.int64),
            "line": np.array([int(line) - 1 for line in rows["line"]], dtype=np.int64),
            "quantity": np.array([_quantity(q) for q in rows["quantity"]], dtype=np.int64),
            "at": np.array([_epoch(t) for t in rows["timestamp"]], dtype=np.int64),
            "refund": refund,
        }
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the receipts file's returns: {exc}") from None


def _sales_from_rows(
    columns: Mapping[str, Sequence[Any]], returns: Mapping[str, IntArray] | None = None
) -> ReceiptSet:
    ids = columns["receipt_id"]
    receipt_of_line, _ = factorize(ids)
    heads = np.flatnonzero(np.r_[True, receipt_of_line[1:] != receipt_of_line[:-1]])
    if len(heads) != int(receipt_of_line.max(initial=-1)) + 1:
        raise InvalidInput("the rows of each receipt must be together")

    def first(name: str) -> list[Any]:
        values = columns.get(name)
        return [None] * len(heads) if values is None else [values[i] for i in heads.tolist()]

    stores = _store_infos(columns)
    return receipt_set(
        receipt_of_line=receipt_of_line,
        occurred=np.array([_epoch(t) for t in first("timestamp")], dtype=np.int64),
        store_ids=[str(s) for s in first("store_id")],
        stores=stores,
        cards=[None if c in (None, "") else str(c) for c in first("card")],
        channels=[c or "offline" for c in first("channel")],
        payment_methods=first("payment_method"),
        redeem=np.array([_redeem(r) for r in first("redeem_points")], dtype=np.int64),
        lines={
            "sku": [str(s) for s in columns["sku"]],
            "category": columns.get("category") or [None] * len(ids),
            "brand": columns.get("brand") or [None] * len(ids),
            "quantity": [_quantity(q) for q in columns["quantity"]],
            "unit_price": [int(p) for p in columns["unit_price"]],
            "excluded": [int(e or 0) for e in columns.get("excluded") or [0] * len(ids)],
        },
        returns=returns,
    )


def _store_infos(columns: Mapping[str, Sequence[Any]]) -> dict[str, StoreInfo]:
    regions, zones = columns.get("region"), columns.get("timezone")
    infos: dict[str, StoreInfo] = {}
    for i, store in enumerate(columns["store_id"]):
        if store not in infos:
            infos[str(store)] = StoreInfo(
                str(store),
                (regions[i] or "") if regions else "",
                (zones[i] or "UTC") if zones else "UTC",
            )
    return infos


def _epoch(text: Any) -> int:
    stamp = text if isinstance(text, datetime) else datetime.fromisoformat(str(text))
    if stamp.tzinfo is None:
        raise InvalidInput("every timestamp needs its UTC offset", code="naive_timestamp")
    return int(stamp.timestamp())


def _redeem(value: Any) -> int:
    if value in (None, ""):
        return 0
    if str(value).strip().lower() == "max":
        return REDEEM_MAX
    points = int(value)
    if points < 0:
        raise InvalidInput("redeem_points must not be negative")
    return points


def _quantity(value: Any) -> int:
    try:
        return quantity_milli(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        raise InvalidInput(f"quantity {value!r}: a decimal with at most 3 places") from None


def from_ledger(
    sales: Sequence[Mapping[str, Any]],
    refunds: Sequence[Mapping[str, Any]],
    stores: Mapping[str, StoreInfo],
) -> ReceiptSet:
    """The ledger's own committed receipts as a set (``loyalty simulate --from-ledger``).

    ``sales``: the ``receipts`` rows (``store_id``, ``transaction_id``, ``occurred_at``,
    ``card``: the card's number or None, ``points_redeemed``, ``lines``: the committed
    lines, ``channel`` and ``payment_method`` where kept); ``refunds``: the ``refunds``
    rows of those sales (``store_id``, ``transaction_id``, ``lines``: line id and
    quantity, ``placed_at``: when in the period it applies), each a return.
    What the ledger does not keep: what the customer asked to redeem (the points the sale
    redeemed are asked for); sales committed before migration 0021 kept no channel (taken
    as ``offline``) and no payment method. Lines committed before issue 19 lack category,
    brand, unit price and ``excluded``: rules that target categories or brands cannot match
    them, the unit price is the line's amount over its quantity (rounded), none is excluded.
    """
    if not sales:
        raise InvalidInput("the ledger holds no committed receipt in the period", code=NO_RECEIPTS)
    receipt_of_line: list[int] = []
    line_columns: dict[str, list[Any]] = {
        k: [] for k in ("sku", "category", "brand", "quantity", "unit_price", "excluded")
    }
    place: dict[tuple[str, str], tuple[int, dict[str, int]]] = {}
    for b, sale in enumerate(sales):
        line_index: dict[str, int] = {}
        for k, line in enumerate(sale["lines"]):
            receipt_of_line.append(b)
            line_index[str(line["line_id"])] = k
            quantity = int(line["quantity"])
            price = line.get("unit_price")
            if price is None:
                price = (int(line["amount"]) * 1000 + quantity // 2) // quantity
            line_columns["sku"].append(str(line["sku"]))
            line_columns["category"].append(line.get("category"))
            line_columns["brand"].append(line.get("brand"))
            line_columns["quantity"].append(quantity)
            line_columns["unit_price"].append(int(price))
            line_columns["excluded"].append(int(bool(line.get("excluded", False))))
        place[(sale["store_id"], sale["transaction_id"])] = (b, line_index)
    back: dict[str, list[int]] = {"sale": [], "line": [], "quantity": [], "at": [], "refund": []}
    for number, refund in enumerate(refunds):
        sale_place = place.get((refund["store_id"], refund["transaction_id"]))
        if sale_place is None:
            continue
        b, line_index = sale_place
        for line in refund["lines"]:
            back["sale"].append(b)
            back["line"].append(line_index[str(line["line_id"])])
            back["quantity"].append(int(line["quantity"]))
            back["at"].append(_epoch(refund["placed_at"]))
            back["refund"].append(number)
    return receipt_set(
        receipt_of_line=np.array(receipt_of_line, dtype=np.int64),
        occurred=np.array([_epoch(s["occurred_at"]) for s in sales], dtype=np.int64),
        store_ids=[str(s["store_id"]) for s in sales],
        stores=stores,
        cards=[s["card"] for s in sales],
        channels=[s.get("channel") or "offline" for s in sales],
        payment_methods=[s.get("payment_method") for s in sales],
        redeem=np.array([int(s["points_redeemed"]) for s in sales], dtype=np.int64),
        lines=line_columns,
        returns={k: np.array(v, dtype=np.int64) for k, v in back.items()},
    )


def receipt_sales(receipts: ReceiptSet) -> IntArray:
    """Each receipt's sales: its lines' amounts (kopecks, each line rounded as the engine
    rounds it)."""
    amounts = (receipts.quantity * receipts.unit_price + 500) // 1000
    if not len(receipts):
        return amounts[:0]
    return np.add.reduceat(amounts, receipts.line_ptr[:-1]).astype(np.int64)
