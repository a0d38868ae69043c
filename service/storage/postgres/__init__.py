"""Adapters that talk to Postgres: the ledger of record, its repositories, migrations and
SQL functions."""
