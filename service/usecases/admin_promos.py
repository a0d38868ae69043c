"""Promo code batches: N unique random codes under a prefix, tied to promo rules of the
current program; their revocation; and the state of a code as the till would judge it now.
Codes are matched case-insensitively: they are kept in capitals."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import invalid_field
from service.rules.document import ProgramDocument
from service.usecases.ports import PromotionState


@dataclass(frozen=True, slots=True)
class BatchSpec:
    count: int
    prefix: str
    rule_ids: tuple[str, ...]
    max_uses: int | None
    per_card_limit: int | None
    valid_from: datetime | None
    valid_to: datetime | None


# No 0/O, 1/I/L: codes are read aloud and typed at the till.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_ROUNDS = 20
CODES_PAGE = 1000

# A page of codes and the cursor of the next one (None: the last page).
CodePages = Callable[[str | None], Awaitable[tuple[list[dict[str, Any]], str | None]]]


class BatchStore(Protocol):
    async def create(self, batch_id: str, spec: BatchSpec, author: str) -> None: ...

    async def add_codes(self, batch_id: str, spec: BatchSpec, codes: Sequence[str]) -> int: ...

    async def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch and its uses; ``NotFound`` for an unknown one."""
        ...

    async def batches(self, *, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Batches newest first (``number``: their order of creation, the cursor)."""
        ...

    async def codes(
        self, batch_id: str, *, after: str | None, limit: int
    ) -> list[dict[str, Any]]: ...

    async def code(self, code: str) -> dict[str, Any]: ...

    async def revoke_code(self, code: str, author: str) -> None: ...

    async def revoke_batch(self, batch_id: str, author: str) -> list[str]:
        """Revoke every code of the batch; the codes."""
        ...


def random_codes(prefix: str, length: int, count: int) -> list[str]:
    """``count`` distinct codes: the prefix and ``length`` random characters."""
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(prefix + "".join(secrets.choice(ALPHABET) for _ in range(length)))
    return sorted(codes)


def check_rules(document: ProgramDocument, rule_ids: Sequence[str]) -> None:
    """Each rule must exist in the current program and be one that a code unlocks."""
    rules = {rule.id: rule for rule in document.rules}
    for index, rule_id in enumerate(rule_ids):
        rule = rules.get(rule_id)
        if rule is None:
            raise invalid_field(f"rule_ids[{index}]", f"no rule {rule_id!r} in the program")
        if not rule.conditions.promo_code:
            raise invalid_field(
                f"rule_ids[{index}]", f"rule {rule_id!r} lacks conditions.promo_code"
            )


async def generate(
    store: BatchStore, document: ProgramDocument, spec: BatchSpec, length: int, author: str
) -> str:
    """Create the batch and its codes; returns the batch id. Codes already taken (by
    chance, or by another batch) are drawn again."""
    check_rules(document, spec.rule_ids)
    batch_id = "b_" + secrets.token_hex(6)
    await store.create(batch_id, spec, author)
    missing = spec.count
    for _ in range(MAX_ROUNDS):
        if missing == 0:
            return batch_id
        missing -= await store.add_codes(batch_id, spec, random_codes(spec.prefix, length, missing))
    raise invalid_field("length", "too few free codes of this prefix and length; make it longer")


async def create_batch(
    store: BatchStore, document: ProgramDocument, spec: BatchSpec, length: int, author: str
) -> dict[str, Any]:
    """Generate the batch; the batch as recorded, with every code."""
    batch_id = await generate(store, document, spec, length, author)
    batch = await store.batch(batch_id)
    codes = await store.codes(batch_id, after=None, limit=spec.count)
    return {**batch, "codes": [c["code"] for c in codes]}


async def batches(store: BatchStore, before: int | None, limit: int) -> list[dict[str, Any]]:
    """The batches, newest first, a page of ``limit`` before the one numbered ``before``."""
    return await store.batches(before=before, limit=limit)


async def batch(store: BatchStore, batch_id: str) -> dict[str, Any]:
    """A batch, its rules and limits, and how many of its codes were used."""
    return await store.batch(batch_id)


async def batch_codes(store: BatchStore, batch_id: str) -> CodePages:
    """The batch's codes in order, a page at a time; ``NotFound`` now, before any page,
    for an unknown batch."""
    await store.batch(batch_id)

    async def page(after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        rows = await store.codes(batch_id, after=after, limit=CODES_PAGE)
        return rows, rows[-1]["code"] if len(rows) == CODES_PAGE else None

    return page


async def revoke_batch(
    store: BatchStore, promotions: PromotionState, batch_id: str, author: str
) -> None:
    """Revoke every code of the batch; the tills' cached states of them are dropped."""
    codes = await store.revoke_batch(batch_id, author)
    for chunk in chunks(codes):
        await promotions.forget(chunk)


async def code_status(store: BatchStore, code: str, now: datetime) -> dict[str, Any]:
    """A code, its uses and its state at ``now``."""
    row = await store.code(code.upper())
    return {**row, "state": code_state(row, now)}


async def revoke_code(
    store: BatchStore, promotions: PromotionState, code: str, author: str, now: datetime
) -> dict[str, Any]:
    """Revoke one code (one the program declares stays); the code as it now stands."""
    await store.revoke_code(code.upper(), author)
    await promotions.forget([code.upper()])
    return await code_status(store, code, now)


def code_state(row: dict[str, Any], now: datetime) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["valid_from"] is not None and now < row["valid_from"]:
        return "not_yet_valid"
    if row["valid_to"] is not None and now > row["valid_to"]:
        return "expired"
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "used_up"
    return "active"


def chunks(items: Sequence[str], size: int = 1000) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
