"""``loyalty keys create | list | revoke``: API keys from the command line, against the
configured database (or the embedded one in the data folder), with or without the
service running. This is how a deployment gets its first admin key (SPEC §3.1):

    KEY=$(loyalty keys create --role admin --name "ops: Anna")

``create`` prints the new key alone on standard output and everything else on standard
error, so that a script or a Kubernetes Job can capture it; it is shown this once. The
same use cases answer /v1/admin/keys.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.access import Role
from service.domain.errors import DomainError
from service.local.embedded import start_embedded
from service.settings import Settings
from service.storage.postgres.keys import KeyStore
from service.storage.postgres.migrate import upgrade_async
from service.storage.postgres.pool import create_pool
from service.usecases import admin_keys

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="make, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; prints it alone on stdout, once")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", required=True, help="whose key it is: a till, a system, a person")
    create.add_argument(
        "--stores", default="", help="a POS key's stores, comma-separated (msk-001,ekb-001)"
    )
    create.add_argument(
        "--expires", help="when it stops working: an ISO time (2027-06-30T00:00+03:00) or 90d/12h"
    )
    listing = actions.add_parser("list", help="every key, without secrets")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = actions.add_parser("revoke", help="revoke a key by its id or shown prefix")
    revoke.add_argument("key", help="the key's id or its shown prefix (from `loyalty keys list`)")


def expiry(text: str | None, now: datetime) -> datetime | None:
    """``--expires``: an ISO time with its offset, or a duration from now (90d, 12h, 30m)."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + timedelta(**{_UNITS[unit]: amount})
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("--expires needs a UTC offset, e.g. 2027-06-30T00:00+03:00")
    return moment


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``loyalty keys <action>``; 0 on success, 1 with the reason on stderr otherwise."""
    servers = start_embedded(
        settings.data_dir, need_postgres=settings.database_url is None, need_redis=False
    )
    try:
        url = settings.database_url or servers.database_url
        assert url is not None
        return asyncio.run(_run(url, args))
    except (DomainError, ValueError) as exc:
        print(f"loyalty keys {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        servers.stop()


async def _run(url: str, args: argparse.Namespace) -> int:
    await upgrade_async(url)  # the first key may come before the service's first start
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        return await _act(KeyStore(pool), args)
    finally:
        await pool.close()


async def _act(store: KeyStore, args: argparse.Namespace) -> int:
    author = f"cli ({_user()})"
    now = datetime.now(UTC)
    if args.action == "create":
        stores = tuple(s.strip() for s in args.stores.split(",") if s.strip())
        new = admin_keys.NewKey(args.name, args.role, stores, expiry(args.expires, now))
        made = await admin_keys.create(store, new, "cli", author, now)
        print(
            f"made {made['role']} key {made['prefix']}... ({made['key_id']}) for {made['name']!r};"
            " it is shown this once: keep it now",
            file=sys.stderr,
        )
        print(made["key"])
        return 0
    if args.action == "revoke":
        revoked = await admin_keys.revoke(store, args.key, author)
        print(
            f"revoked {revoked['prefix']}... ({revoked['key_id']}) {revoked['name']!r}",
            file=sys.stderr,
        )
        return 0
    rows = await admin_keys.keys(store, include_revoked=args.all)
    if args.json:
        for row in rows:
            print(json.dumps(row, default=_json_value))
    else:
        print(_table(rows))
    return 0


def _user() -> str:
    """Who ran the command, for the audit log (a container's user may have no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _table(rows: list[dict[str, Any]]) -> str:
    def when(value: datetime | None) -> str:
        return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    header = ("PREFIX", "ID", "NAME", "ROLE", "STORES", "CREATED", "EXPIRES", "LAST USED", "STATE")
    lines = [header] + [
        (
            f"{row['prefix'] or '?'}...",
            row["key_id"],
            row["name"],
            row["role"],
            ",".join(row["store_ids"]) or "-",
            when(row["created_at"]),
            when(row["expires_at"]),
            when(row["last_used_at"]),
            "revoked" if row["revoked_at"] else "active",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
