"""WAL written per sale (SPEC §8: at most 2 KB), and what each part of a sale writes.

``wal_mark`` reads ``pg_current_wal_lsn()`` and the number of receipts before a run,
``wal_per_sale`` the same after it: the WAL the server wrote between the two marks,
divided by the sales the run committed. It counts everything the server wrote in that
time, so it is exact only on a server nothing else writes to (`make bench`'s embedded
Postgres; on a shared server other writers count too).

``wal_parts`` splits that stretch of WAL with pg_walinspect (a contrib extension,
shipped with the embedded Postgres wheel; created if missing): by table (each record
counted under the relation of its first block, its toast table and indexes under the
table; records without blocks, such as commits, apart) and by kind of record, with the
full-page images (the first change to a page after a checkpoint writes the whole page)
apart from the changes themselves. Postgres 16 or later (``pg_get_wal_block_info``);
older servers get the split by kind of record only.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from service.storage.postgres.pool import connect


async def wal_mark(dsn: str) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        lsn, sales = await conn.fetchrow(
            "SELECT pg_current_wal_insert_lsn(), (SELECT count(*) FROM receipts)"
        )
    finally:
        await conn.close()
    return {"lsn": int(lsn), "sales": int(sales)}  # asyncpg reads a pg_lsn as an int


async def wal_per_sale(dsn: str, before: dict[str, Any]) -> dict[str, Any]:
    """The WAL and the sales since ``before`` (``wal_mark``), and their split."""
    after = await wal_mark(dsn)
    conn = await connect(dsn)
    try:
        wal = after["lsn"] - before["lsn"]
        parts = await _parts(conn, before["lsn"], after["lsn"])
    finally:
        await conn.close()
    sales = after["sales"] - before["sales"]
    return {"bytes": wal, "sales": sales, "per_sale": wal / max(sales, 1),
            "start": before["lsn"], "end": after["lsn"], **parts}  # fmt: skip


_BY_KIND = """
SELECT "resource_manager/record_type" AS kind, count::bigint,
       record_size::bigint, fpi_size::bigint
FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, per_record => true)
WHERE count > 0 ORDER BY combined_size DESC
"""

# Each record under its first block's relation; an index or a toast table under the
# table it serves. record_length includes the record's full-page images.
_BY_TABLE = """
WITH first AS (
    SELECT DISTINCT ON (b.start_lsn) b.record_length,
           sum(b.block_fpi_length) OVER (PARTITION BY b.start_lsn) AS fpi,
           CASE WHEN b.reldatabase = (SELECT oid FROM pg_database
                                      WHERE datname = current_database())
                THEN pg_filenode_relation(
                    CASE WHEN b.reltablespace = (SELECT dattablespace FROM pg_database
                                                 WHERE datname = current_database())
                         THEN 0 ELSE b.reltablespace END, b.relfilenode) END AS rel
    FROM pg_get_wal_block_info($1::pg_lsn, $2::pg_lsn, false) b
    ORDER BY b.start_lsn, b.block_id
), owner AS (  -- an index counts under its table, a toast table under its owner
    SELECT f.record_length, f.fpi, c.relkind, coalesce(x.indrelid, f.rel) AS heap
    FROM first f
    LEFT JOIN pg_class c ON c.oid = f.rel
    LEFT JOIN pg_index x ON x.indexrelid = f.rel
)
SELECT coalesce(p.relname, h.relname, 'other database or dropped') AS tbl,
       sum(o.record_length)::bigint AS bytes, sum(o.fpi)::bigint AS fpi,
       coalesce(sum(o.record_length) FILTER (WHERE o.relkind = 'i'), 0)::bigint AS index_bytes,
       count(*) AS records
FROM owner o
LEFT JOIN pg_class h ON h.oid = o.heap
LEFT JOIN pg_class p ON p.reltoastrelid = o.heap
GROUP BY 1 ORDER BY 2 DESC
"""


async def _parts(conn: asyncpg.Connection, start: int, end: int) -> dict[str, Any]:
    """The split, or none where pg_walinspect cannot be had or read (a server without
    the contrib modules, a role that may not create it or read the WAL)."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        return await _split(conn, start, end)
    except (asyncpg.PostgresError, OSError) as error:
        return {"kinds": [], "tables": [], "unsplit": f"{type(error).__name__}: {error}"}


async def _split(conn: asyncpg.Connection, start: int, end: int) -> dict[str, Any]:
    kinds = [dict(r) for r in await conn.fetch(_BY_KIND, start, end)]
    version = int(await conn.fetchval("SHOW server_version_num"))
    tables = [dict(r) for r in await conn.fetch(_BY_TABLE, start, end)] if version >= 160000 else []
    return {"kinds": kinds, "tables": tables}


def wal_line(wal: dict[str, Any]) -> str:
    """One paragraph: per sale, in all and by table (their indexes' share), and the
    full-page images."""
    n = max(wal["sales"], 1)
    fpi = sum(k["fpi_size"] for k in wal["kinds"])
    tables = "; ".join(
        f"{t['tbl']} {t['bytes'] / n:.0f} B"
        + (f" (indexes {t['index_bytes'] / n:.0f})" if t["index_bytes"] else "")
        for t in wal["tables"][:8]
    )
    kinds = "; ".join(
        f"{k['kind'].strip()} {(k['record_size'] + k['fpi_size']) / n:.0f} B"
        for k in wal["kinds"][:8]
    )
    listed = sum(t["bytes"] for t in wal["tables"])
    other = wal["bytes"] - listed
    by_table = (
        f"by table (records by their first block; indexes and toast under their table): "
        f"{tables}; records without a block, page headers and padding {other / n:.0f} B; "
        if wal["tables"]
        else ""
    )
    if "unsplit" in wal:
        return (
            f"{wal['per_sale']:.0f} B of WAL per sale ({wal['bytes'] / 1e6:.1f} MB over"
            f" {wal['sales']} sales); not split by pg_walinspect ({wal['unsplit']})."
        )
    return (
        f"{wal['per_sale']:.0f} B of WAL per sale ({wal['bytes'] / 1e6:.1f} MB over "
        f"{wal['sales']} sales), of which full-page images {fpi / n:.0f} B; {by_table}"
        f"by kind of record: {kinds}."
    )
