"""The receipt's JSON text, digested into calculation fingerprints and the ledger's
request hashes, must stay byte for byte what ``orjson.dumps`` writes for the
dataclass: stored hashes are compared with new ones on every replayed commit. A receipt
that pays from no wallet is written without the ``wallet`` key, as it was before wallets,
and one that asks for no reward without ``rewards``: its stored hash still matches."""

from __future__ import annotations

import hashlib
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from service.domain.receipt import Receipt, ReceiptLine
from service.domain.reward import RewardAsk
from service.domain.wallet import WalletAsk
from service.usecases.calculate import receipt_json
from service.usecases.commit import request_hash

texts = st.text(max_size=12)
maybe_texts = st.none() | texts
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5, minutes=-30))]
)

lines = st.builds(
    ReceiptLine,
    line_id=texts,
    sku=texts,
    quantity=st.integers(0, 10**12),
    unit_price=st.integers(0, 10**12),
    category=maybe_texts,
    brand=maybe_texts,
    excluded=st.booleans(),
)

receipts = st.builds(
    Receipt,
    store_id=texts,
    timestamp=st.datetimes(timezones=zones),
    lines=st.lists(lines, max_size=6).map(tuple),
    card=maybe_texts,
    terminal_id=maybe_texts,
    channel=texts,
    payment_method=maybe_texts,
    pickup=st.booleans(),
    promo_codes=st.lists(texts, max_size=3).map(tuple),
    redeem_points=st.integers(0, 10**9),
    redeem_max=st.booleans(),
    wallet=st.none()
    | st.builds(WalletAsk, number=texts, amount=st.integers(0, 10**9), pay_max=st.booleans()),
    rewards=st.lists(st.builds(RewardAsk, code=texts, count=st.integers(1, 1000)), max_size=3).map(
        tuple
    ),
)


def dataclass_json(value: object) -> bytes:
    """What orjson writes for the dataclass, less a ``wallet`` that is None and
    ``rewards`` that are none."""
    written = orjson.loads(orjson.dumps(value))
    if written.get("wallet", 0) is None:
        del written["wallet"]
    if written.get("rewards", 0) == []:
        del written["rewards"]
    return orjson.dumps(written)


@given(receipts)
def test_receipt_json_is_what_orjson_writes_for_the_dataclass(receipt: Receipt) -> None:
    assert receipt_json(receipt) == dataclass_json(receipt)


@given(receipts, texts)
def test_request_hash_digests_the_transaction_id_and_the_receipt(
    receipt: Receipt, transaction_id: str
) -> None:
    expected = hashlib.sha256(
        b"[" + orjson.dumps(transaction_id) + b"," + dataclass_json(receipt) + b"]"
    ).hexdigest()
    assert request_hash(transaction_id, receipt_json(receipt)) == expected


def test_receipt_json_names_every_field() -> None:
    receipt = Receipt(
        "s", datetime(2026, 11, 22, tzinfo=UTC), (ReceiptLine("1", "a", 1, 2),),
        wallet=WalletAsk("GC-1", 100), rewards=(RewardAsk("NEXT10", 2),),
    )  # fmt: skip
    written = orjson.loads(receipt_json(receipt))
    assert list(written) == [field.name for field in fields(Receipt)]
    assert list(written["lines"][0]) == [field.name for field in fields(ReceiptLine)]


def test_a_receipt_without_rewards_hashes_as_before_them() -> None:
    """The request hash of a sale committed before rewards existed, pinned."""
    line = ReceiptLine("1", "460001", 1000, 349900)
    receipt = Receipt(
        "msk-001", datetime(2026, 11, 22, 15, tzinfo=UTC), (line,), card="2000000000022"
    )
    text = (
        b'{"store_id":"msk-001","timestamp":"2026-11-22T15:00:00+00:00","lines":[{"line_id":'
        b'"1","sku":"460001","quantity":1000,"unit_price":349900,"category":null,"brand":null,'
        b'"excluded":false}],"card":"2000000000022","terminal_id":null,"channel":"offline",'
        b'"payment_method":null,"pickup":false,"promo_codes":[],"redeem_points":0,'
        b'"redeem_max":false}'
    )
    assert receipt_json(receipt) == text
    assert request_hash("R-1", text) == hashlib.sha256(b'["R-1",' + text + b"]").hexdigest()
