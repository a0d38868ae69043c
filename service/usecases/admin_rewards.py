"""Back office: the rewards catalogue (SPEC §4 item 31), managed by marketing.

An entry is created with its kind and effect, which never change afterwards (sales and
their returns read them back): its name, price, dates and per-receipt limit may change,
and it is archived (off the till) or restored. A coupon's rule must be a promo rule of
the current program, as a promo code batch's must."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from service.domain.errors import invalid_field
from service.domain.reward import Reward
from service.rules.document import ProgramDocument

PAGE = 100


class RewardStore(Protocol):
    async def create(self, entry: dict[str, Any], author: str) -> dict[str, Any]: ...

    async def get(self, code: str) -> dict[str, Any]:
        """The entry; ``NotFound`` for an unknown one."""
        ...

    async def page(
        self, *, archived: bool, after: str | None, limit: int
    ) -> list[dict[str, Any]]: ...

    async def change(
        self, code: str, changes: dict[str, Any], archived: bool | None, author: str, now: datetime
    ) -> dict[str, Any]: ...


def check_coupon_rule(document: ProgramDocument, rule_id: str | None) -> None:
    """A coupon unlocks a rule of the current program that asks for a promo code."""
    if rule_id is None:
        return
    rule = next((rule for rule in document.rules if rule.id == rule_id), None)
    if rule is None:
        raise invalid_field("rule_id", f"no rule {rule_id!r} in the program")
    if not rule.conditions.promo_code:
        raise invalid_field("rule_id", f"rule {rule_id!r} lacks conditions.promo_code")


def _percent_text(bp: int) -> str:
    """Basis points as the percent they are: 1000 as "10", 750 as "7.5"."""
    text = format(Decimal(bp) / 100, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def entry_view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An entry as the back office sees it: its percent as text, its state now."""
    bp = row.pop("percent_bp")
    row["percent"] = None if bp is None else _percent_text(bp)
    state = Reward(
        row["code"], row["name"], row["kind"], row["price"], valid_from=row["valid_from"],
        valid_to=row["valid_to"], archived=row["archived_at"] is not None,
    ).state_at(now)  # fmt: skip
    return {**row, "status": state}


async def create(
    store: RewardStore, document: ProgramDocument, entry: dict[str, Any], author: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    check_coupon_rule(document, entry.get("rule_id"))
    return entry_view(await store.create(entry, author), now)


async def get(store: RewardStore, code: str, now: datetime) -> dict[str, Any]:
    return entry_view(await store.get(code), now)


async def page(
    store: RewardStore, *, archived: bool, after: str | None, now: datetime
) -> dict[str, Any]:
    """A page of entries in code order, with the cursor of the next (None: the last)."""
    rows = await store.page(archived=archived, after=after, limit=PAGE)
    return {
        "rewards": [entry_view(row, now) for row in rows],
        "next_cursor": rows[-1]["code"] if len(rows) == PAGE else None,
    }


async def change(
    store: RewardStore, code: str, changes: dict[str, Any], archived: bool | None, author: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    return entry_view(await store.change(code, changes, archived, author, now), now)
