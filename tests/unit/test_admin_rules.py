"""The back office's pure rules: signatures, backoff, report figures, codes, CSV rows."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from service.api.admin_schemas import CardRow
from service.domain.errors import InvalidInput
from service.usecases.admin_import import decode, parse_rows
from service.usecases.admin_promos import ALPHABET, code_state, random_codes
from service.usecases.admin_reports import average, health, ratio_bp
from service.usecases.admin_webhooks import RetryPolicy, signature


def test_signature_is_hmac_sha256_of_time_and_body() -> None:
    expected = hmac.new(b"k", b"1.{}", hashlib.sha256).hexdigest()
    assert signature("k", 1, b"{}") == f"t=1,v1={expected}"


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(timeout_s=5, max_attempts=12, backoff_s=1, backoff_max_s=60)
    delays = [policy.delay(n).total_seconds() for n in (1, 2, 3, 7, 12)]
    assert delays == [1, 2, 4, 60, 60]


def test_ratios_and_averages_are_integers_rounded_down() -> None:
    assert ratio_bp(1, 3) == 3333 and ratio_bp(5, 0) is None
    assert average(10, 3) == 3 and average(10, 0) is None
    row = {"receipts": 4, "receipts_with_card": 3, "points_earned": 0, "points_redeemed": 0,
           "sales_with_card": 1000, "sales_without_card": 7}  # fmt: skip
    figures = health(row)
    assert figures["participation_bp"] == 7500 and figures["redeemed_to_earned_bp"] is None
    assert figures["average_receipt_with_card"] == 333
    assert figures["average_receipt_without_card"] == 7


def test_random_codes_are_distinct_and_unambiguous() -> None:
    codes = random_codes("X-", 6, 500)
    assert len(set(codes)) == 500
    assert all(c.startswith("X-") and set(c[2:]) <= set(ALPHABET) for c in codes)
    assert not set("01OIL") & set(ALPHABET)


def test_code_state_order() -> None:
    now = datetime.now(UTC)
    row = {"revoked_at": None, "valid_from": None, "valid_to": None, "max_uses": 1, "uses": 0}
    assert code_state(row, now) == "active"
    assert code_state({**row, "uses": 1}, now) == "used_up"
    assert code_state({**row, "valid_to": now - timedelta(days=1)}, now) == "expired"
    assert code_state({**row, "valid_from": now + timedelta(days=1)}, now) == "not_yet_valid"
    assert code_state({**row, "revoked_at": now, "uses": 1}, now) == "revoked"


def test_csv_rows_report_bad_lines_by_file_line() -> None:
    text = b'number,kind\n2000000000015,physical\n"12\n34",virtual\n2000000000022,plastic\n'
    rows, rejected = parse_rows(text, CardRow, ("number",), max_rows=10)
    assert [r.line for r in rows] == [2]
    assert [(r.line, r.reason.split(":")[0]) for r in rejected] == [(4, "number"), (5, "kind")]
    with pytest.raises(InvalidInput):
        parse_rows(b"kind\nphysical\n", CardRow, ("number",), max_rows=10)
    with pytest.raises(InvalidInput):
        parse_rows(text, CardRow, ("number",), max_rows=2)
    assert decode("Размер;Клуб".encode("cp1251")) == "Размер;Клуб"  # what 1C writes
    assert decode("\ufeffРазмер".encode()) == "Размер"  # UTF-8, its BOM dropped
    with pytest.raises(InvalidInput):
        decode(b"\x98")  # neither UTF-8 nor Windows-1251
