"""The sharding plan (docs/sharding-plan.json, presented in docs/scaling.md) against the
migrated schema: every table has a class, and every key Citus could not keep as it is
has its remedy written down. A new table, a new unique key or foreign key across shards,
or a distribution column that goes away, fails here until the plan decides about it.

Citus's rules, as checked here: a distributed table's primary and unique keys contain its
distribution column (and that column is never NULL); a foreign key between distributed
tables joins co-located tables on their distribution columns; a distributed table may
reference a reference table; a reference table references only reference tables; a local
(coordinator) table references only local and reference tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

PLAN_FILE = Path(__file__).resolve().parents[2] / "docs" / "sharding-plan.json"
CLASSES = {"distributed", "reference", "local"}

_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
_COLUMNS = """
SELECT c.relname AS table, a.attname AS column, a.attnotnull AS not_null,
       format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0
  AND NOT a.attisdropped
"""
# Primary keys, unique constraints and plain unique indexes alike; key columns only
# (not INCLUDE), an expression as NULL.
_UNIQUE = """
SELECT t.relname AS table, i.relname AS name, x.indisprimary AS is_primary,
       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, pos)
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             WHERE k.pos <= x.indnkeyatts ORDER BY k.pos) AS columns
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND x.indisunique
"""
_FOREIGN = """
SELECT t.relname AS table, c.conname AS name, r.relname AS referenced,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.pos) AS columns,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
             ORDER BY k.pos) AS referenced_columns
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND c.contype = 'f'
"""


@dataclass(frozen=True)
class Schema:
    tables: set[str]
    columns: dict[tuple[str, str], tuple[bool, str]]  # (table, column) -> (not null, type)
    unique: list[asyncpg.Record]
    foreign: list[asyncpg.Record]


async def read_schema(conn: asyncpg.Connection) -> Schema:
    columns = {
        (r["table"], r["column"]): (r["not_null"], r["type"]) for r in await conn.fetch(_COLUMNS)
    }
    return Schema(
        tables={r[0] for r in await conn.fetch(_TABLES)},
        columns=columns,
        unique=await conn.fetch(_UNIQUE),
        foreign=await conn.fetch(_FOREIGN),
    )


def load_plan() -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(PLAN_FILE.read_text())
    return plan


def plan_errors(plan: dict[str, Any]) -> list[str]:
    """The plan's own shape: known classes, a column and a group for each distributed
    table, a kind and a remedy for each key to change."""
    errors = []
    for table, entry in plan["tables"].items():
        if entry.get("class") not in CLASSES:
            errors.append(f"{table}: class {entry.get('class')!r} is not one of {sorted(CLASSES)}")
        elif entry["class"] == "distributed" and not (
            entry.get("column") and entry.get("colocate")
        ):
            errors.append(f"{table}: a distributed table needs a column and a colocate group")
    for key, change in plan["keys_to_change"].items():
        if not (change.get("kind") and change.get("remedy", "").strip()):
            errors.append(f"{key}: a key to change needs its kind and its remedy")
    return errors


def required_changes(schema: Schema, plan: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """What Citus could not keep as the schema has it (``table.name`` -> why), and what
    no remedy can cover (tables without a class, planned tables or columns gone)."""
    tables: dict[str, dict[str, Any]] = plan["tables"]
    needed: dict[str, str] = {}
    errors = [
        f"table {t} has no class in {PLAN_FILE.name}" for t in sorted(schema.tables - set(tables))
    ]
    errors += [
        f"planned table {t} is not in the schema" for t in sorted(set(tables) - schema.tables)
    ]

    def distributed(table: str) -> dict[str, Any] | None:
        entry = tables.get(table)
        return entry if entry is not None and entry["class"] == "distributed" else None

    group_types: dict[str, set[str]] = {}
    for table in sorted(schema.tables & set(tables)):
        entry = distributed(table)
        if entry is None:
            continue
        found = schema.columns.get((table, entry["column"]))
        if found is None:
            errors.append(f"distributed table {table} has no distribution column {entry['column']}")
            continue
        not_null, type_ = found
        group_types.setdefault(entry["colocate"], set()).add(type_)
        if not not_null:
            needed[f"{table}.{entry['column']}"] = "distribution column may be NULL"
    errors += [
        f"colocate group {group}: distribution columns of different types {sorted(types)}"
        for group, types in group_types.items()
        if len(types) > 1
    ]
    for key in schema.unique:
        entry = distributed(key["table"])
        if entry is not None and entry["column"] not in key["columns"]:
            kind = "primary key" if key["is_primary"] else "unique key"
            needed[f"{key['table']}.{key['name']}"] = (
                f"{kind} {key['columns']} without {entry['column']}"
            )
    for fk in schema.foreign:
        why = _foreign_key_problem(fk, tables)
        if why:
            needed[f"{fk['table']}.{fk['name']}"] = why
    return needed, errors


def _foreign_key_problem(fk: asyncpg.Record, tables: dict[str, dict[str, Any]]) -> str | None:
    source, target = tables.get(fk["table"]), tables.get(fk["referenced"])
    if source is None or target is None:
        return None  # reported as an unclassified table
    pair = (source["class"], target["class"])
    what = f"{fk['table']}{fk['columns']} -> {fk['referenced']}{fk['referenced_columns']}"
    if target["class"] == "reference" or pair == ("local", "local"):
        return None
    if pair != ("distributed", "distributed"):
        return f"{pair[0]} table references a {pair[1]} one: {what}"
    if source["colocate"] != target["colocate"]:
        return f"references another colocate group: {what}"
    on_columns = any(
        mine == source["column"] and theirs == target["column"]
        for mine, theirs in zip(fk["columns"], fk["referenced_columns"], strict=True)
    )
    return None if on_columns else f"not on the distribution columns: {what}"


def check(schema: Schema, plan: dict[str, Any]) -> list[str]:
    """Every way the schema and the plan disagree; empty when the plan holds."""
    needed, errors = required_changes(schema, plan)
    listed = plan["keys_to_change"]
    errors += [
        f"{key} ({why}) is not in keys_to_change with its remedy"
        for key, why in sorted(needed.items())
        if key not in listed
    ]
    errors += [
        f"keys_to_change lists {key}, which Citus could keep as it is (or is gone): update the plan"
        for key in sorted(set(listed) - set(needed))
    ]
    return errors


def test_the_plan_is_well_formed() -> None:
    assert plan_errors(load_plan()) == []


async def test_every_table_and_key_of_the_schema_is_in_the_plan(db: asyncpg.Connection) -> None:
    assert check(await read_schema(db), load_plan()) == []


async def test_the_check_fails_on_what_the_plan_has_not_decided(db: asyncpg.Connection) -> None:
    """Schema changes the plan has not seen, made in the test's rolled-back transaction."""
    plan = load_plan()
    await db.execute(
        """
        CREATE TABLE gift_cards (gift_card_id bigint PRIMARY KEY, card_id bigint);
        ALTER TABLE tier_spend ADD COLUMN reference text UNIQUE;
        ALTER TABLE point_lots ADD COLUMN receipt_store text, ADD COLUMN receipt_tx text,
            ADD FOREIGN KEY (receipt_store, receipt_tx)
                REFERENCES receipts (store_id, transaction_id);
        ALTER TABLE adjustments RENAME COLUMN card_id TO card;
        DROP TABLE expiry_notices;
        ALTER TABLE cards DROP CONSTRAINT cards_referred_by_fkey;
        """
    )
    errors = check(await read_schema(db), plan)
    expected = [
        "table gift_cards has no class",
        "planned table expiry_notices is not in the schema",
        "distributed table adjustments has no distribution column card_id",
        "tier_spend.tier_spend_reference_key (unique key ['reference'] without card_id) is not"
        " in keys_to_change",
        "point_lots.point_lots_receipt_store_receipt_tx_fkey (not on the distribution columns",
        "adjustments.adjustments_card_id_fkey (not on the distribution columns",
        "keys_to_change lists cards.cards_referred_by_fkey, which Citus could keep",
    ]
    for text in expected:
        assert any(text in error for error in errors), (text, errors)
    assert len(errors) == len(expected), errors

    # A key listed with a remedy is accepted; a plan that drops its remedy is refused.
    remedied = {**plan["keys_to_change"]}
    remedied["tier_spend.tier_spend_reference_key"] = {"kind": "unique", "remedy": "receipt_keys"}
    assert not any(
        "tier_spend_reference_key" in e
        for e in check(await read_schema(db), {**plan, "keys_to_change": remedied})
    )
    remedied["tier_spend.tier_spend_reference_key"] = {"kind": "unique", "remedy": " "}
    assert plan_errors({**plan, "keys_to_change": remedied}) == [
        "tier_spend.tier_spend_reference_key: a key to change needs its kind and its remedy"
    ]
