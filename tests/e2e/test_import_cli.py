"""``loyalty import``: a 1C export from the command line, with a progress bar, a dry run
first (SPEC §12, issue 18)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from service.storage.postgres.pool import connect
from tests.conftest import fresh_database, load_test_demo
from tests.e2e.servers import loyalty

ONE_C = Path(__file__).parents[1] / "data" / "1c_customers.csv"
COLUMNS = "Наименование=name;Телефон=phone;Дата рождения=birthday;Карта=card"


def _loyalty(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return loyalty(database_url, "import", *args)


async def test_a_1c_export_imports_from_the_command_line(server_url: str) -> None:
    async with fresh_database(server_url, "loyalty_import_cli") as url:
        await load_test_demo(url)
        args = ("customers", str(ONE_C), "--columns", COLUMNS)
        dry = await asyncio.to_thread(_loyalty, url, *args, "--dry-run")
        assert dry.returncode == 1, dry.stderr  # a row refused
        assert dry.stdout.strip() == "would import 3, unchanged 0, refused 1"
        assert "line 4: phone:" in dry.stderr and "importing customers" in dry.stderr
        conn = await connect(url)
        try:
            assert (
                await conn.fetchval("SELECT count(*) FROM customers WHERE name LIKE 'Петрова%'")
                == 0
            )
            done = await asyncio.to_thread(_loyalty, url, *args)
            assert done.stdout.strip() == "imported 3, unchanged 0, refused 1", done.stderr
            size = await conn.fetchval(
                "SELECT attributes ->> 'Размер одежды' FROM customers WHERE phone = '+79551002031'"
            )
            assert size == "M"
            again = await asyncio.to_thread(_loyalty, url, *args)
            assert again.stdout.strip() == "imported 0, unchanged 3, refused 1"
        finally:
            await conn.close()
        missing = await asyncio.to_thread(_loyalty, url, "customers", "/nonexistent.csv")
        assert missing.returncode == 2 and "No such file" in missing.stderr
