"""Runs after the integration suite (files run in name order): every card's balance,
as its lots hold it, equals the sum of its ledger entries."""

import asyncpg


async def test_every_balance_equals_its_ledger(ledger_db: asyncpg.Connection) -> None:
    mismatched = await ledger_db.fetch(
        """
        SELECT c.number, c.debt,
               (SELECT coalesce(sum(points), 0) FROM ledger_entries e
                 WHERE e.card_id = c.card_id) AS entries,
               (SELECT coalesce(sum(remaining), 0) FROM point_lots l
                 WHERE l.card_id = c.card_id) AS lots
        FROM cards c
        WHERE (SELECT coalesce(sum(points), 0) FROM ledger_entries e WHERE e.card_id = c.card_id)
           <> (SELECT coalesce(sum(remaining), 0) FROM point_lots l WHERE l.card_id = c.card_id)
              - c.debt
        """
    )
    assert [dict(r) for r in mismatched] == []
    cards = await ledger_db.fetchval("SELECT count(*) FROM cards")
    entries = await ledger_db.fetchval("SELECT count(*) FROM ledger_entries")
    assert cards > 20 and entries > 50  # the suite did write a ledger worth checking
