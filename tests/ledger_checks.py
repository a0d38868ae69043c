"""The ledger's invariants (service/storage/postgres/invariants.py), checked over a whole database
when a test session is done with it (the session's own and the fuzzing server's):
whatever order the tests ran in, the ledger they leave must hold every one."""

from __future__ import annotations

from service.storage.postgres.invariants import broken_invariants
from service.storage.postgres.pool import connect


async def assert_ledger_holds(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        broken = await broken_invariants(conn)
    finally:
        await conn.close()
    assert broken == {}, f"ledger invariants broken: {broken}"
