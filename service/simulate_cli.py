"""``loyalty simulate``: a period of receipts under a draft program and the current one,
side by side (SPEC §10.1), from the command line under a progress bar.

    loyalty simulate (--receipts year.parquet | --from-ledger --since ISO --until ISO)
        --draft draft.json [--current current.json] [--spending recorded|none|share]
        [--redeem-share 0.15] [--balances-as-of ISO] [--breakage-percent N] [--out DIR]

The current program is ``--current`` (a program document, or ``demo``), else the one in
force in the ledger (``LOYALTY_DATABASE_URL``). ``--from-ledger`` takes the ledger's own
committed receipts of the period and their returns instead of a file
(``service/storage/postgres/simulation_receipts.py``). Nothing is written to the ledger. It
prints the main figures of both and their difference; ``--out`` also writes
``simulation.json``, ``simulation.csv`` and the charts (PNG) there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tqdm import tqdm

from service.domain.errors import DomainError, InvalidInput
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.demo import demo_program
from service.rules.document import parse_program
from service.settings import Settings
from service.simulation.engine import Assumptions, prepare
from service.simulation.receipts import ReceiptSet, read_receipts
from service.simulation.report import Comparison, compare

SHOWN = (
    ("receipts", "receipts"),
    ("sales", "kopecks"),
    ("discount", "kopecks"),
    ("points_earned", "points"),
    ("points_earned_value", "kopecks"),
    ("points_redeemed", "points"),
    ("points_expired", "points"),
    ("liability_points", "points"),
    ("expected_breakage_points", "points"),
    ("receipts_touched", "receipts"),
    ("customers_touched", "cards"),
    ("returns", "returns"),
    ("points_taken_back", "points"),
    ("points_given_back", "points"),
)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """0 when done; 2 when an input was refused (said on stderr)."""
    try:
        current = _current_program(settings, args.current)
        draft = compile_program(parse_program(_document(args.draft)), current.version + 1)
        assumptions = Assumptions(
            spending=args.spending,
            redeem_share=args.redeem_share,
            balances_as_of=_time(args.balances_as_of),
        )
        receipts = (
            _from_ledger(settings, args.since, args.until)
            if args.from_ledger
            else read_receipts(args.receipts)
        )
        prepared = prepare(receipts)
        with tqdm(
            total=2 * len(receipts), unit="receipt", desc="simulating", file=sys.stderr
        ) as bar:
            result = compare(
                prepared, current, draft, assumptions,
                progress=lambda done: bar.update(done - bar.n),
                breakage_rate_bp=_basis_points(args.breakage_percent),
            )  # fmt: skip
    except (DomainError, OSError, ValueError) as exc:
        print(f"loyalty simulate: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "simulation.json").write_text(json.dumps(result.as_json(), indent=1))
        (args.out / "simulation.csv").write_text(result.as_csv())
        write_charts(result, args.out)
    return 0


def write_charts(result: Comparison, folder: Path) -> None:
    """The simulation's charts as PNG files beside its JSON and CSV."""
    from service.simulation import charts

    drawn = {
        "liability.png": charts.liability_by_month(result),
        "cost-per-rule.png": charts.cost_per_rule(result),
        "tier-mix-current.png": charts.tier_mix(result.current),
        "tier-mix-draft.png": charts.tier_mix(result.draft),
    }
    for name, image in drawn.items():
        (folder / name).write_bytes(image)


def table(result: Comparison) -> str:
    difference = result.difference()
    rows = [f"{'figure':<26}{'current':>16}{'draft':>16}{'difference':>16}  unit"]
    for figure, unit in SHOWN:
        rows.append(
            f"{figure:<26}{getattr(result.current, figure):>16,}"
            f"{getattr(result.draft, figure):>16,}{difference[figure]:>16,}  {unit}"
        )
    return "\n".join(rows)


def _document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: a program document is a JSON object")
    return document


def _current_program(settings: Settings, given: str | None) -> CompiledProgram:
    if given == "demo":
        return compile_program(parse_program(demo_program()), 1)
    if given is not None:
        return compile_program(parse_program(_document(Path(given))), 1)
    if settings.database_url is None:
        raise InvalidInput("no --current and no LOYALTY_DATABASE_URL to read the current program")
    version, document = asyncio.run(_ledger_program(settings.database_url))
    return compile_program(parse_program(document), version)


async def _ledger_program(url: str) -> tuple[int, dict[str, Any]]:
    from service.storage.postgres.pool import create_pool
    from service.storage.postgres.programs import current_program

    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        current = await current_program(pool)
    finally:
        await pool.close()
    if current is None:
        raise InvalidInput("the ledger has no current program")
    return current[0], current[1]


def _from_ledger(settings: Settings, since: str | None, until: str | None) -> ReceiptSet:
    if since is None or until is None:
        raise InvalidInput("--from-ledger needs --since and --until")
    start, end = datetime.fromisoformat(since), datetime.fromisoformat(until)
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("--since and --until need their UTC offset", code="naive_timestamp")
    if settings.database_url is None:
        raise InvalidInput("--from-ledger needs LOYALTY_DATABASE_URL")
    return asyncio.run(_ledger_receipts(settings.database_url, start, end))


async def _ledger_receipts(url: str, since: datetime, until: datetime) -> ReceiptSet:
    from service.storage.postgres.pool import connect
    from service.storage.postgres.simulation_receipts import ledger_receipts

    conn = await connect(url)
    try:
        return await ledger_receipts(conn, since, until)
    finally:
        await conn.close()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _basis_points(percent: Decimal | None) -> int | None:
    if percent is None:
        return None
    if not 0 <= percent <= 100:
        raise InvalidInput("--breakage-percent is between 0 and 100")
    return int(percent * 100)
