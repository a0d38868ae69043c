"""The demo program of SPEC §9 with its stores, customers, cards and keys.

Loaded once into an empty database so that a newcomer sees every family of
mechanics at work; the README's examples and the end-to-end tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from service.rules.demo import DEMO_STORES, demo_program
from service.rules.document import parse_program
from service.storage.postgres.keys import create_key
from service.storage.postgres.programs import publish_new_version
from service.storage.postgres.stores import upsert_stores
from service.usecases.admin_programs import declared_codes

STORE_NAMES = {"msk-001": "Style Moscow", "ekb-001": "Style Yekaterinburg", "web": "Style online"}


@dataclass(frozen=True)
class DemoCard:
    number: str
    points: int
    spend: int  # kopecks of purchase history backing the tier
    status: str = "active"
    phone: str | None = None
    name: str | None = None
    birthday: date | None = None


DEMO_CARDS = (
    DemoCard("2000000000015", 1_000, 0, phone="+79000000001", name="Anna Petrova",
             birthday=date(1990, 3, 15)),
    DemoCard("2000000000022", 5_000, 1_500_000, phone="+79000000002", name="Boris Ivanov",
             birthday=date(1985, 7, 20)),
    DemoCard("2000000000039", 20_000, 6_000_000, phone="+79000000003", name="Vera Smirnova",
             birthday=date(1978, 12, 5)),
    DemoCard("2000000000046", 500, 0, status="blocked"),
    DemoCard("2000000000053", 0, 0),
)  # fmt: skip


async def _insert_card(conn: asyncpg.Connection, card: DemoCard, now: datetime) -> None:
    customer_id = None
    if card.phone is not None:
        customer_id = await conn.fetchval(
            "INSERT INTO customers (name, phone, birthday) VALUES ($1, $2, $3) "
            "RETURNING customer_id",
            card.name,
            card.phone,
            card.birthday,
        )
    card_id = await conn.fetchval(
        "INSERT INTO cards (number, status, customer_id, ledger_version) VALUES ($1, $2, $3, 1) "
        "RETURNING card_id",
        card.number,
        card.status,
        customer_id,
    )
    if card.points:
        lot_id = await conn.fetchval(
            "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)"
            " VALUES ($1, $2, $2, $3, $4, 'adjustment') RETURNING lot_id",
            card_id,
            card.points,
            now,
            now + timedelta(days=365),
        )
        await conn.execute(
            "INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)"
            " VALUES ($1, 'adjustment', $2, $3, 'demo opening balance', 'demo')",
            card_id,
            card.points,
            lot_id,
        )
    if card.spend:
        await conn.execute(
            "INSERT INTO tier_spend (card_id, amount, occurred_at) VALUES ($1, $2, $3)",
            card_id,
            card.spend,
            now - timedelta(days=30),
        )


async def load_demo(
    conn: asyncpg.Connection, now: datetime | None = None, *, document: dict[str, Any] | None = None
) -> bool:
    """Load the demo program (or ``document``, a variant of it), stores and cards into an
    empty database; False if not empty."""
    now = now or datetime.now(UTC)
    async with conn.transaction():
        await conn.execute("LOCK TABLE program_current IN EXCLUSIVE MODE")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM program_current)"):
            return False
        await upsert_stores(
            conn, [(s, STORE_NAMES.get(s.store_id, s.store_id)) for s in DEMO_STORES]
        )
        document = document or demo_program()
        codes = declared_codes(parse_program(document))
        await publish_new_version(conn, document, author="demo", codes=codes)
        for card in DEMO_CARDS:
            await _insert_card(conn, card, now)
    return True


async def ensure_demo_keys(
    conn: asyncpg.Connection, *, admin_key: str | None, pos_key: str | None
) -> tuple[str, str]:
    """Store the demo admin and POS keys (new random ones where not given) and return them."""
    admin = await create_key(conn, name="demo admin", role="admin", key=admin_key, origin="demo")
    pos = await create_key(
        conn,
        name="demo pos",
        role="pos",
        store_ids=[s.store_id for s in DEMO_STORES],
        key=pos_key,
        origin="demo",
    )
    return admin, pos
