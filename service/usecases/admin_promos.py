"""Promo code batches: N unique random codes under a prefix, tied to promo rules of the
current program; and the state of a code as the till would judge it now."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import invalid_field
from service.rules.document import ProgramDocument
from service.storage.promo_batches import BatchSpec

# No 0/O, 1/I/L: codes are read aloud and typed at the till.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MAX_ROUNDS = 20


class BatchStore(Protocol):
    async def create(self, batch_id: str, spec: BatchSpec, author: str) -> None: ...

    async def add_codes(self, batch_id: str, spec: BatchSpec, codes: Sequence[str]) -> int: ...


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
