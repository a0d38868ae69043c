"""Alembic environment: migrations are SQL scripts run by asyncpg itself.

The URL comes from the caller (``service.storage.postgres.migrate.upgrade``); nothing is read
from an ini file so that the installed package migrates wherever it runs.

Alembic keeps its version table through SQLAlchemy's asyncpg dialect, while the
migrations hand their scripts to the same asyncpg connection directly
(``sqlscript.execute_script``: the dialect would prepare them, one statement each). So
the transaction is the driver's: opened here around the whole run, and SQLAlchemy is
told to leave transactions alone (AUTOCOMMIT, i.e. no BEGIN or COMMIT of its own). A run
is all or nothing: a failed migration leaves the database at the revision it started
from.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.transaction():
                await connection.run_sync(_run)
    finally:
        await engine.dispose()


url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    assert url is not None
    asyncio.run(_run_online(url))
