"""SQL scripts and function sources for the migrations (see migrations/README.md).

A script, any number of statements, goes to the driver whole: asyncpg's
``Connection.execute`` without arguments sends it by the simple query protocol, and
Postgres splits it. (SQLAlchemy's asyncpg dialect prepares every statement, and a
prepared statement holds one command.) It runs inside the migration run's transaction,
which migrations/env.py opens on that same driver connection.

Each PL/pgSQL or SQL function lives in ``sql/<name>.sql``, its one definition
(``CREATE OR REPLACE FUNCTION <name>``); migrations load those files by name.
"""

from __future__ import annotations

from pathlib import Path

from alembic import context, op
from sqlalchemy.util import await_only

_SOURCES = Path(__file__).parent / "sql"


def execute_script(script: str) -> None:
    """Run ``script`` in the current migration (offline, ``--sql``: write it out)."""
    if context.is_offline_mode():
        op.execute(script)
        return
    driver = op.get_bind().connection.driver_connection
    assert driver is not None and driver.is_in_transaction(), "env.py opens the transaction"
    await_only(driver.execute(script))


def function_names() -> list[str]:
    """Every function that has a source file, in name order."""
    return sorted(path.stem for path in _SOURCES.glob("*.sql"))


def function_source(name: str) -> str:
    return (_SOURCES / f"{name}.sql").read_text(encoding="utf-8")


def load_functions(*names: str) -> None:
    """Create or replace each named function from its source file, as the file is now.

    Bodies are not checked against the schema while loading (pg_dump's scripts load
    functions so too): an early migration loads today's source, which may use a column
    that a later migration adds. tests/integration/test_schema.py checks every source
    against the head schema instead.
    """
    sources = "\n".join(function_source(name) for name in names)
    execute_script(
        f"SET LOCAL check_function_bodies = off;\n{sources}\nRESET check_function_bodies;"
    )


def drop_functions(*names: str) -> None:
    """Drop each named function if it exists (each name must have one signature)."""
    execute_script("".join(f"DROP FUNCTION IF EXISTS {name};\n" for name in names))
