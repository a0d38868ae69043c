"""A Russian chain's everyday inputs (SPEC §12, issue 18): phones as people type them, and
cards numbered as EAN-13 with their check digits.

A database of its own whose program numbers its cards as EAN-13.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from stdnum import ean

from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program


@pytest.fixture
async def chain(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    async with own_program(
        server_url, redis_url, {**demo_program_now(), "card_number_format": "ean13"}
    ) as served:
        yield served


def _body(seed: int) -> str:
    """A twelve-digit EAN body of this test run's own."""
    return f"29{seed:010d}"


async def test_three_spellings_of_a_phone_find_one_customer(chain: OwnProgram) -> None:
    client, _, _ = chain
    seed = int.from_bytes(os.urandom(4), "big") % 10**7
    body = _body(seed)
    card = body + ean.calc_check_digit(body)
    digits = f"900{seed:07d}"
    code, exchange, pair, last = digits[:3], digits[3:6], digits[6:8], digits[8:]
    registration = {
        "store_id": "msk-001", "card": card,
        "customer": {"name": "Анна Петрова", "phone": f"+7 ({code}) {exchange}-{pair}-{last}"},
    }  # fmt: skip
    made = await client.post("/v1/registrations", json=registration, headers=POS)
    assert made.status_code == 201, made.text
    for spelling in (f"8 {code} {exchange}-{pair}-{last}", f"+7{digits}", digits):
        found = await client.get("/v1/cards", params={"phone": spelling}, headers=POS)
        assert found.status_code == 200, (spelling, found.text)
        assert found.json() == {"cards": [{"number": card}]}, spelling
    wrong = await client.get("/v1/cards", params={"phone": "8 900 12"}, headers=POS)
    assert wrong.status_code == 422


async def test_a_range_is_issued_as_valid_ean13_numbers(chain: OwnProgram) -> None:
    client, _, _ = chain
    first = _body(int.from_bytes(os.urandom(3), "big") % 10**7 * 1000)
    last = f"{int(first) + 99:012d}"
    issued = await client.post(
        "/v1/admin/cards/ranges", json={"first": first, "last": last}, headers=ADMIN
    )
    assert issued.status_code == 201, issued.text
    assert issued.json() == {"requested": 100, "issued": 100}
    printed = await client.get(
        "/v1/admin/cards/ranges/print", params={"first": first, "last": last}, headers=ADMIN
    )
    assert printed.status_code == 200 and printed.headers["content-type"].startswith("text/csv")
    header, *numbers = printed.text.split()
    assert header == "number" and len(numbers) == 100
    assert all(len(n) == 13 and ean.is_valid(n) for n in numbers)
    assert [n[:12] for n in numbers] == [f"{int(first) + k:012d}" for k in range(100)]
    # A misread barcode is refused as such, not looked up as another card.
    good = numbers[0]
    misread = good[:5] + str((int(good[5]) + 1) % 10) + good[6:]
    line = {"line_id": "1", "sku": "A", "quantity": "1", "unit_price": 1000}
    sale = {"store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": misread, "lines": [line]}
    refused = await client.post("/v1/calculate", json=sale, headers=POS)
    assert refused.status_code == 422 and refused.json()["error"] == "card_number_invalid"
    known = await client.post("/v1/calculate", json={**sale, "card": good}, headers=POS)
    assert known.status_code == 200, known.text
    bad = {"store_id": "msk-001", "card": misread, "customer": {"name": "X"}}
    answer = await client.post("/v1/registrations", json=bad, headers=POS)
    assert answer.status_code == 422 and answer.json()["error"] == "card_number_invalid"


async def test_an_import_refuses_numbers_the_format_does_not_allow(chain: OwnProgram) -> None:
    client, _, _ = chain
    body = _body(int.from_bytes(os.urandom(3), "big") % 10**7 * 1000 + 500)
    good = body + ean.calc_check_digit(body)
    bad = body[:-1] + str((int(body[-1]) + 1) % 10) + ean.calc_check_digit(body)
    upload = f"number,status\n{good},inactive\n{bad},inactive\n".encode()
    answer = await client.post(
        "/v1/admin/import/cards", content=upload, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["imported"] == 1
    assert [(r["line"], r["reason"][:5]) for r in answer.json()["rejected"]] == [(3, "card:")]
