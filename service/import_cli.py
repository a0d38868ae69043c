"""``loyalty import customers|cards FILE``: an export from 1C or Excel into the ledger from
the command line, with a progress bar (SPEC §12). The same parsing and checks as
``POST /v1/admin/import/...``; the rows are written a chunk per transaction, so that the
bar moves and a long import holds no lock for its whole length. ``--dry-run`` checks
every row, the ledger's refusals included, and writes nothing."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime

from tqdm import tqdm

from service.api.admin_schemas import import_shape
from service.domain.errors import DomainError
from service.local.embedded import start_embedded
from service.rules.compiler import compile_program
from service.rules.document import parse_program
from service.settings import Settings
from service.storage.postgres.customers import Customers
from service.storage.postgres.pool import create_pool
from service.storage.postgres.programs import current_program
from service.usecases import admin_import as imports
from service.usecases.admin_cards import welcome_for


def run(settings: Settings, args: argparse.Namespace) -> int:
    """0 when every row was imported (or would be), 1 when some were refused (listed on
    stderr by line), 2 when the file itself was refused."""
    servers = start_embedded(
        settings.data_dir, need_postgres=settings.database_url is None, need_redis=False
    )
    try:
        url = settings.database_url or servers.database_url
        assert url is not None
        return asyncio.run(_run(url, settings, args))
    except (DomainError, OSError) as exc:
        print(f"loyalty import: {exc}", file=sys.stderr)
        return 2
    finally:
        servers.stop()


async def _run(url: str, settings: Settings, args: argparse.Namespace) -> int:
    model, required, known = import_shape(args.kind)
    rows, rejected = imports.parse_rows(
        args.file.read_bytes(), model, required, sys.maxsize,
        imports.column_mapping(args.columns), known,
    )  # fmt: skip
    pool = await create_pool(url, min_size=1, max_size=2, command_timeout=300)
    try:
        current = await current_program(pool)
        now = datetime.now(UTC)
        welcome = None
        if current is not None:
            program = compile_program(parse_program(current[1]), current[0])
            welcome = welcome_for(program, now)
            rows, misnumbered = imports.well_numbered(rows, program.document.card_number_format)
            rejected = [*rejected, *misnumbered]
        author = f"cli ({getpass.getuser()})"
        with tqdm(
            total=len(rows), unit="row", desc=f"importing {args.kind}", file=sys.stderr
        ) as bar:

            async def moved(done: int) -> None:
                bar.update(done - bar.n)

            report, _ = await imports.import_in_chunks(
                Customers(pool), args.kind, rows, rejected, welcome, author,
                dry_run=args.dry_run, progress=moved,
            )  # fmt: skip
    finally:
        await pool.close()
    for problem in report.rejected:
        print(f"line {problem.line}: {problem.reason}", file=sys.stderr)
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {report.imported}, unchanged {report.unchanged}, refused {len(report.rejected)}")
    return 1 if report.rejected else 0
