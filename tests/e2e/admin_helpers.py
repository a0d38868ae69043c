"""Helpers of the back office tests: unique numbers and phones, so that tests sharing
the demo database never meet each other's cards and customers."""

from __future__ import annotations

import itertools
import os
from typing import Any

import asyncpg
import httpx

from tests.conftest import ADMIN

_serial = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)


def card_number() -> str:
    return f"29{next(_serial):011d}"


def card_range(size: int) -> tuple[str, str]:
    """The first and last of ``size`` consecutive numbers no other helper call hands out."""
    first = next(_serial)
    for _ in range(size - 1):
        next(_serial)
    return f"29{first:011d}", f"29{first + size - 1:011d}"


def phone() -> str:
    """A Russian mobile number (+7 955 ...) no other helper call hands out."""
    return f"+7955{next(_serial) % 10**7:07d}"


async def new_customer(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Test Customer", "phone": phone(), **fields}
    response = await client.post("/v1/admin/customers", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_card(client: httpx.AsyncClient, points: int = 0, **fields: Any) -> str:
    """A fresh card with ``points`` credited by an adjustment."""
    number = card_number()
    response = await client.post(
        "/v1/admin/cards", json={"number": number, **fields}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    if points:
        credit = await client.post(
            f"/v1/admin/cards/{number}/adjustments",
            json={"points": points, "reason": "test balance"},
            headers=ADMIN,
        )
        assert credit.status_code == 201, credit.text
    return number


async def add_lot(
    conn: asyncpg.Connection, number: str, points: int, activates_ago: str, expires_in: str
) -> None:
    """Credit the card a lot with dates no API would give (SQL intervals, e.g. '2 days';
    a negative ``expires_in`` for a lot already past its expiry), with its ledger entry."""
    card_id = await conn.fetchval("SELECT card_id FROM cards WHERE number = $1", number)
    lot = await conn.fetchval(
        "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)"
        " VALUES ($1, $2, $2, now() - $3::text::interval, now() + $4::text::interval, 'adjustment')"
        " RETURNING lot_id",
        card_id,
        points,
        activates_ago,
        expires_in,
    )
    await conn.execute(
        "INSERT INTO ledger_entries (card_id, kind, points, lot_id) VALUES ($1, 'adjustment',"
        " $2, $3)",
        card_id,
        points,
        lot,
    )


def fields(response: httpx.Response) -> set[str]:
    return {f["field"] for f in response.json().get("fields", [])}
