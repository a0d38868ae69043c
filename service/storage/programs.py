"""Program versions in Postgres: immutable once published; one is current."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg

from service.rules.document import ProgramDocument

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def current_program(conn: Executor) -> tuple[int, dict[str, Any]] | None:
    row = await conn.fetchrow(
        """
        SELECT v.version, v.document FROM program_current c
        JOIN program_versions v USING (version)
        """
    )
    return None if row is None else (row["version"], row["document"])


async def program_version(conn: Executor, version: int) -> dict[str, Any] | None:
    document: dict[str, Any] | None = await conn.fetchval(
        "SELECT document FROM program_versions WHERE version = $1", version
    )
    return document


@dataclass(frozen=True, slots=True)
class DeclaredCode:
    """A promo code declared in a program document; its limits are enforced by the ledger."""

    code: str
    rule_ids: tuple[str, ...]
    max_uses: int | None
    per_card_limit: int | None


def declared_codes(document: ProgramDocument) -> list[DeclaredCode]:
    return [
        DeclaredCode(
            code=promo.code.strip().upper(),
            rule_ids=tuple(promo.rules),
            max_uses=promo.total_limit,
            per_card_limit=promo.per_card_limit,
        )
        for promo in document.promo_codes
    ]


async def publish_new_version(
    conn: asyncpg.Connection,
    document: Mapping[str, Any],
    *,
    author: str,
    codes: Sequence[DeclaredCode] = (),
) -> int:
    """Insert ``document`` as the next version, published and current, in one transaction.

    The promo codes it declares are upserted into ``promo_codes`` (their use counts kept),
    so that commits enforce total and per-card limits under the database's locks.
    """
    async with conn.transaction():
        # Serialises concurrent publishers: version numbers stay dense and ordered.
        await conn.execute("LOCK TABLE program_versions IN SHARE ROW EXCLUSIVE MODE")
        version: int = await conn.fetchval(
            """
            INSERT INTO program_versions (version, document, status, created_by, published_at)
            SELECT coalesce(max(version), 0) + 1, $1, 'published', $2, now()
            FROM program_versions
            RETURNING version
            """,
            dict(document), author,
        )  # fmt: skip
        await conn.execute(
            """
            INSERT INTO program_current (singleton, version) VALUES (true, $1)
            ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, switched_at = now()
            """,
            version,
        )
        await conn.executemany(
            """
            INSERT INTO promo_codes (code, rule_ids, max_uses, per_card_limit, program_version)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (code) DO UPDATE
                SET rule_ids = EXCLUDED.rule_ids, max_uses = EXCLUDED.max_uses,
                    per_card_limit = EXCLUDED.per_card_limit,
                    program_version = EXCLUDED.program_version
            """,
            [(c.code, list(c.rule_ids), c.max_uses, c.per_card_limit, version) for c in codes],
        )
        await conn.execute(
            "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)",
            author, "program.publish", f"program:{version}", {"version": version},
        )  # fmt: skip
    return version
