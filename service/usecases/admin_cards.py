"""Use cases of the back office over cards and customers. Each writes through its
repository, then refreshes the cached state of every card it touched, so that the till
never sees a stale status, tier or balance."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from service.domain.errors import invalid_field
from service.rules.compiler import CompiledProgram
from service.storage.admin_cards import NewCard, Welcome
from service.usecases.ports import CardStates, IdempotentRequest, Programs


class CardRepository(Protocol):
    async def issue(self, card: NewCard, welcome: Welcome | None, author: str) -> None: ...

    async def set_status(self, number: str, status: str, reason: str, author: str) -> None: ...

    async def link(
        self, number: str, customer_id: int, welcome: Welcome | None, author: str
    ) -> int: ...

    async def adjust(
        self, number: str, points: int, reason: str, author: str, now: datetime,
        expires_at: datetime | None, idempotency: IdempotentRequest | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip

    async def replace(self, old: str, new: str, kind: str, author: str) -> int: ...


class CustomerRepository(Protocol):
    async def update(
        self, customer_id: int, changes: Mapping[str, Any], author: str
    ) -> list[str]: ...

    async def erase(self, customer_id: int, author: str) -> list[str]: ...


def welcome_for(program: CompiledProgram, now: datetime) -> Welcome | None:
    """The program's welcome points: spendable at once, for the program's validity."""
    points = program.document.points
    if points.welcome_points <= 0:
        return None
    validity = points.validity_days
    expires = None if validity is None else now + timedelta(days=validity)
    return Welcome(points.welcome_points, now, expires)


def adjustment_expiry(program: CompiledProgram, now: datetime) -> datetime | None:
    validity = program.document.points.validity_days
    return None if validity is None else now + timedelta(days=validity)


async def refresh(
    cards: CardStates, programs: Programs, numbers: Iterable[str], now: datetime
) -> None:
    program = programs.current
    for number in numbers:
        await cards.refresh(number, now, program)


async def issue(
    repo: CardRepository, cards: CardStates, programs: Programs, card: NewCard, author: str,
    now: datetime,
) -> None:  # fmt: skip
    await repo.issue(card, welcome_for(programs.current, now), author)
    await refresh(cards, programs, [card.number], now)


async def set_status(
    repo: CardRepository, cards: CardStates, programs: Programs, number: str, status: str,
    reason: str, author: str, now: datetime,
) -> None:  # fmt: skip
    await repo.set_status(number, status, reason, author)
    await refresh(cards, programs, [number], now)


async def link(
    repo: CardRepository, cards: CardStates, programs: Programs, number: str, customer_id: int,
    author: str, now: datetime,
) -> int:  # fmt: skip
    granted = await repo.link(number, customer_id, welcome_for(programs.current, now), author)
    await refresh(cards, programs, [number], now)
    return granted


async def adjust(
    repo: CardRepository, cards: CardStates, programs: Programs, number: str, points: int,
    reason: str, author: str, now: datetime, expires_at: datetime | None,
    idempotency: IdempotentRequest | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Credit or debit a card; the card as the adjustment left it. With an idempotency
    key already used for the same request, the first answer, and nothing moves again."""
    if expires_at is not None and expires_at <= now:
        raise invalid_field("expires_at", "points cannot arrive already expired")
    if points > 0 and expires_at is None:
        expires_at = adjustment_expiry(programs.current, now)
    card = await repo.adjust(number, points, reason, author, now, expires_at, idempotency)
    await refresh(cards, programs, [number], now)
    return card


async def replace(
    repo: CardRepository, cards: CardStates, programs: Programs, old: str, new: str, kind: str,
    author: str, now: datetime,
) -> int:  # fmt: skip
    moved = await repo.replace(old, new, kind, author)
    await refresh(cards, programs, [old, new], now)
    return moved


async def update_customer(
    repo: CustomerRepository, cards: CardStates, programs: Programs, customer_id: int,
    changes: Mapping[str, Any], author: str, now: datetime,
) -> None:  # fmt: skip
    numbers = await repo.update(customer_id, changes, author)
    await refresh(cards, programs, numbers, now)


async def erase_customer(
    repo: CustomerRepository, cards: CardStates, programs: Programs, customer_id: int,
    author: str, now: datetime,
) -> None:  # fmt: skip
    numbers = await repo.erase(customer_id, author)
    await refresh(cards, programs, numbers, now)
