"""``loyalty``: serve, migrate, load the demo.

``loyalty serve`` with no ``LOYALTY_DATABASE_URL`` / ``LOYALTY_REDIS_URL`` starts an
embedded Postgres and Redis in the data folder, migrates, loads the demo program on
first start, prints the URL and the demo keys, and serves; Ctrl-C stops everything
it started, and the data stays for the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from service import keys_cli
from service.api.logs import configure_logging
from service.local.embedded import EmbeddedServers, start_embedded
from service.settings import Settings
from service.storage.postgres.migrate import upgrade
from service.storage.postgres.pool import connect


def _with_servers(settings: Settings) -> tuple[Settings, EmbeddedServers]:
    """Start embedded servers for whatever is not configured; return settings that point at them."""
    servers = start_embedded(
        settings.data_dir,
        need_postgres=settings.database_url is None,
        need_redis=settings.redis_url is None,
    )
    update = {
        k: v
        for k, v in (("database_url", servers.database_url), ("redis_url", servers.redis_url))
        if v
    }
    return settings.model_copy(update=update), servers


def _demo_keys(settings: Settings) -> tuple[str | None, str | None]:
    """Demo keys: fixed by settings, else the ones generated on an earlier start."""
    saved = settings.data_dir / "demo-keys.json"
    admin, pos = settings.demo_admin_key, settings.demo_pos_key
    if saved.exists():
        data = json.loads(saved.read_text())
        admin, pos = admin or data.get("admin"), pos or data.get("pos")
    return admin, pos


def _save_demo_keys(settings: Settings, admin: str, pos: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "demo-keys.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"admin": admin, "pos": pos}, handle)


async def _prepare(settings: Settings) -> tuple[str, str] | None:
    """Load the demo into an empty database and make sure its keys work."""
    from service.local.demo import ensure_demo_keys, load_demo

    assert settings.database_url is not None
    conn = await connect(settings.database_url)
    try:
        loaded = await load_demo(conn)
        has_demo = loaded or await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM stores WHERE store_id = 'msk-001')"
        )
        if not has_demo:
            return None
        admin, pos = _demo_keys(settings)
        return await ensure_demo_keys(conn, admin_key=admin, pos_key=pos)
    finally:
        await conn.close()


def _metrics_dir(settings: Settings) -> Path:
    """A fresh folder for prometheus multiprocess files (stale ones would be merged in)."""
    folder = (settings.metrics_dir or settings.data_dir / "metrics").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def serve(settings: Settings) -> int:
    from service.startup import PortUnavailable, check_port

    try:  # first: a taken port is told at once, before any server starts
        check_port(settings.host, settings.port)
    except PortUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    settings, servers = _with_servers(settings)
    try:
        assert settings.database_url is not None
        upgrade(settings.database_url)
        keys = asyncio.run(_prepare(settings)) if settings.should_load_demo else None
        if keys is not None:
            _save_demo_keys(settings, *keys)
        # Before the app is imported: prometheus_client picks its mode at import.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir(settings))
        from service import supervisor

        config, socks = supervisor.preload(settings)  # checks the port again
        return supervisor.Supervisor(
            config, socks, hang_s=settings.worker_hang_s, on_ready=lambda: _announce(settings, keys)
        ).run()
    except PortUnavailable as exc:  # taken meanwhile
        print(exc, file=sys.stderr)
        return 1
    finally:
        servers.stop()


def _announce(settings: Settings, keys: tuple[str, str] | None) -> None:
    """The banner, once the service answers /readyz: where it is, and what to try."""
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"Loyalty engine: {url} is ready  (API docs: {url}/docs)"]
    if keys is not None:
        lines += [
            f"  admin key: {keys[0]}",
            f"  POS key:   {keys[1]}  (msk-001, ekb-001, web)",
            "Try it: a demo card (README.md, 'Try it', goes on to a sale):",
            f"  curl -s -H 'Authorization: Bearer {keys[1]}' {url}/v1/cards/2000000000022",
        ]
    else:
        lines.append(f"Try it: {url}/docs lists every call, with examples")
    lines.append("Ctrl-C stops it.")
    print("\n".join(lines), flush=True)


def migrate(settings: Settings) -> int:
    settings, servers = _with_servers(settings)
    try:
        assert settings.database_url is not None
        upgrade(settings.database_url)
        print("schema is up to date")
    finally:
        servers.stop()
    return 0


def expire(settings: Settings) -> int:
    """Run the ledger jobs once: points expiry and tier downgrades (they also run
    in-process every LOYALTY_EXPIRE_INTERVAL_S)."""
    from datetime import UTC, datetime

    from service.rules.document import parse_program
    from service.storage.postgres.expiry import run_ledger_jobs
    from service.storage.postgres.pool import create_pool
    from service.storage.postgres.programs import current_program
    from service.storage.redis.cache import CardCache, create_client, is_cluster

    async def run() -> list[str] | None:
        assert settings.database_url is not None and settings.redis_url is not None
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        cluster = await is_cluster(
            settings.redis_url, settings.redis_timeout_s, configured=settings.redis_cluster
        )
        redis = create_client(settings.redis_url, settings.redis_timeout_s, cluster=cluster)
        try:
            current = await current_program(pool)
            if current is None:
                return []
            tiers = parse_program(current[1]).tiers
            numbers = await run_ledger_jobs(pool, tiers, datetime.now(UTC))
            for number in numbers or ():
                await CardCache(redis).forget(number)
            return numbers
        finally:
            await redis.aclose()
            await pool.close()

    settings, servers = _with_servers(settings)
    try:
        numbers = asyncio.run(run())
    finally:
        servers.stop()
    print("another expiry run is in progress" if numbers is None else f"{len(numbers)} cards")
    return 0


def _add_import_parser(commands: Any) -> None:
    command = commands.add_parser("import", help="import customers or cards from CSV or XLSX")
    command.add_argument("kind", choices=["customers", "cards"])
    command.add_argument("file", type=Path, help="CSV (UTF-8 or Windows-1251) or XLSX")
    command.add_argument(
        "--columns", help="the file's own column names for ours: 'Телефон=phone;ФИО=name'"
    )
    command.add_argument("--dry-run", action="store_true", help="check every row; write nothing")


def _add_simulate_parser(commands: Any) -> None:
    """``loyalty simulate`` (service/simulate_cli.py, loaded only when it runs)."""
    command = commands.add_parser(
        "simulate", help="replay receipts under a draft program beside the current one"
    )
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--receipts", type=Path, help="CSV or parquet")
    source.add_argument(
        "--from-ledger",
        action="store_true",
        help="the ledger's own committed receipts of --since..--until (LOYALTY_DATABASE_URL)",
    )
    command.add_argument("--since", help="with --from-ledger: the period's start (ISO)")
    command.add_argument("--until", help="with --from-ledger: the period's end, excluded (ISO)")
    command.add_argument("--draft", type=Path, required=True, help="the draft program (JSON)")
    command.add_argument(
        "--current", help="the current program (JSON file, or 'demo'); default: the ledger's"
    )
    command.add_argument(
        "--spending",
        choices=("recorded", "none", "share"),
        default="recorded",
        help="points asked for: as the file says (default), none, or 'max' by a share",
    )
    command.add_argument(
        "--redeem-share", type=float, default=0.15, help="with --spending share (default 0.15)"
    )
    command.add_argument(
        "--balances-as-of", help="read every balance at this ISO time (default: at each sale)"
    )
    command.add_argument(
        "--breakage-percent",
        type=Decimal,
        help="share of the final liability never spent (default: 1 - redeemed/earned)",
    )
    command.add_argument(
        "--out", type=Path, help="folder for simulation.json, .csv and the charts (PNG)"
    )


def _add_analysis_parsers(commands: Any) -> None:
    """``loyalty forecast``, ``pilot`` and ``analytics`` (service/analysis_cli.py, loaded
    when run)."""
    forecast_cmd = commands.add_parser("forecast", help="uplift forecast of a threshold")
    forecast_cmd.add_argument("--groups", type=Path, required=True, help="customer groups (CSV)")
    forecast_cmd.add_argument(
        "--addon-share",
        type=Decimal,
        default=Decimal(80),
        help="the largest add-on, % of the average receipt (default 80)",
    )
    forecast_cmd.add_argument(
        "--gift-share",
        type=Decimal,
        default=Decimal(5),
        help="the gift's cost, % of the receipt (default 5)",
    )
    forecast_cmd.add_argument("--gift-cap", type=int, help="the gift costs at most (kopecks)")
    forecast_cmd.add_argument(
        "--discount",
        type=Decimal,
        default=Decimal(0),
        help="discount the threshold grants, % (default 0)",
    )
    forecast_cmd.add_argument(
        "--delivery",
        type=int,
        default=35_000,
        help="an online delivery's cost, kopecks (default 35000)",
    )
    forecast_cmd.add_argument("--months", type=int, default=12, help="default 12")
    forecast_cmd.add_argument("--out", type=Path, help="folder for forecast.json, .csv, .png")
    pilot_cmd = commands.add_parser("pilot", help="pilot stores against control stores")
    pilot_cmd.add_argument("--receipts", type=Path, required=True, help="CSV or parquet")
    pilot_cmd.add_argument("--pilot", required=True, help="store ids, comma-separated")
    pilot_cmd.add_argument("--control", required=True, help="store ids, comma-separated")
    pilot_cmd.add_argument("--starts", required=True, help="the pilot's first day (ISO date)")
    pilot_cmd.add_argument("--out", type=Path, help="folder for pilot.json and pilot.png")
    analytics_cmd = commands.add_parser(
        "analytics", help="a period's figures per store, group, channel or month"
    )
    source = analytics_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--receipts", type=Path, help="CSV or parquet")
    source.add_argument(
        "--from-ledger", action="store_true", help="the ledger's own receipts of the period"
    )
    analytics_cmd.add_argument("--since", help="with --from-ledger: the period's start (ISO)")
    analytics_cmd.add_argument("--until", help="with --from-ledger: its end, excluded (ISO)")
    analytics_cmd.add_argument(
        "--current", help="the program (JSON file, or 'demo'); default: the ledger's"
    )
    analytics_cmd.add_argument(
        "--by", choices=("store", "group", "channel", "month"), default="store"
    )
    analytics_cmd.add_argument("--groups", type=Path, help="store_id,group (CSV), for --by group")
    analytics_cmd.add_argument("--churn-days", type=int, default=90, help="default 90")
    analytics_cmd.add_argument("--out", type=Path, help="folder for analytics.json and .csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loyalty", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the service (embedded servers if needed)")
    serve_cmd.add_argument("--port", type=int, help="override LOYALTY_PORT")
    serve_cmd.add_argument("--workers", type=int, help="override LOYALTY_WORKERS")
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("expire", help="expire points past validity, move down lapsed tiers")
    keys_cli.add_parser(commands)
    _add_import_parser(commands)
    _add_simulate_parser(commands)
    _add_analysis_parsers(commands)
    args = parser.parse_args(argv)

    overrides = {k: v for k, v in vars(args).items() if k in ("port", "workers") and v}
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    if args.command == "serve":
        return serve(settings)
    if args.command == "expire":
        return expire(settings)
    if args.command == "keys":
        return keys_cli.run(settings, args)
    if args.command == "import":
        # Here, not at the top: the import's modules (the API's schemas, the engine) are
        # most of a second that every other command, `loyalty keys` above all, would pay.
        from service import import_cli

        return import_cli.run(settings, args)
    if args.command in ("forecast", "pilot", "analytics"):
        from service import analysis_cli  # here, not at the top: numpy, matplotlib

        if args.command == "analytics":
            return analysis_cli.run_analytics(settings, args)
        return (
            analysis_cli.run_forecast(args)
            if args.command == "forecast"
            else analysis_cli.run_pilot(args)
        )
    if args.command == "simulate":
        from service import simulate_cli  # here, not at the top: numpy and the engine

        return simulate_cli.run(settings, args)
    return migrate(settings)


if __name__ == "__main__":
    sys.exit(main())
