"""Use cases of the back office over cards. Each writes through its repository, then
refreshes the cached state of every card it touched, so that the till never sees a stale
status, tier or balance, and answers with the card as the ledger then has it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from service.domain.card_numbers import check_card_number, range_numbers
from service.domain.errors import invalid_field
from service.rules.compiler import CompiledProgram
from service.usecases.ports import CardStates, IdempotentRequest, Programs


@dataclass(frozen=True, slots=True)
class Welcome:
    """Points granted when a card is registered to a customer, once per card."""

    points: int
    activates_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewCard:
    number: str
    kind: str = "physical"
    status: str = "active"
    customer_id: int | None = None
    referred_by: str | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Points credited (a new lot, expiring at ``expires_at``) or debited (negative) by
    hand, with the reason and who did it."""

    number: str
    points: int
    reason: str
    author: str
    expires_at: datetime | None = None


MAX_RANGE = 100_000


class CardRepository(Protocol):
    async def issue(self, card: NewCard, welcome: Welcome | None, author: str) -> None: ...

    async def issue_range(self, numbers: list[str], kind: str, status: str, author: str) -> int: ...

    async def set_status(self, number: str, status: str, reason: str, author: str) -> None: ...

    async def link(
        self, number: str, customer_id: int, welcome: Welcome | None, author: str
    ) -> int: ...

    async def set_personal_discount(
        self, number: str, bp: int, reason: str, author: str
    ) -> None: ...

    async def adjust(
        self, adjustment: Adjustment, now: datetime, idempotency: IdempotentRequest | None
    ) -> dict[str, Any]: ...

    async def replace(self, old: str, new: str, kind: str, author: str) -> int: ...

    async def view(self, number: str, now: datetime) -> dict[str, Any]:
        """The card as the ledger has it; ``NotFound`` for an unknown card."""
        ...

    async def adjustments(
        self, number: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class IssuedRange:
    requested: int
    issued: int  # the numbers not issued before


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


async def _refreshed(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    numbers: Iterable[str],
    shown: str,
    now: datetime,
) -> dict[str, Any]:
    """Refresh the cards a write touched; the card ``shown`` as the ledger now has it."""
    await refresh(cards, programs, numbers, now)
    return await repo.view(shown, now)


async def card(repo: CardRepository, number: str, now: datetime) -> dict[str, Any]:
    """The card as the ledger has it: status, customer, balance, tier."""
    return await repo.view(number, now)


async def issue(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    new: NewCard,
    author: str,
    now: datetime,
) -> dict[str, Any]:
    check_card_number(new.number, programs.current.document.card_number_format)
    await repo.issue(new, welcome_for(programs.current, now), author)
    return await _refreshed(repo, cards, programs, [new.number], new.number, now)


def range_of(first: str, last: str, number_format: str) -> list[str]:
    """The numbers of a range in the program's card number format (at most ``MAX_RANGE``):
    as written for free digits, each with its check digit for EAN-13."""
    if number_format == "ean13":
        if len(first) not in (12, 13) or len(last) not in (12, 13):
            raise invalid_field(
                "first", "an EAN-13 range is given by 12-digit bodies or 13-digit numbers"
            )
        low, high = int(first[:12]), int(last[:12])
    else:
        if len(first) != len(last):
            raise invalid_field("last", "first and last must have the same number of digits")
        low, high = int(first), int(last)
    if not 0 <= high - low < MAX_RANGE:
        raise invalid_field("last", f"from first, at most {MAX_RANGE} numbers up")
    return range_numbers(first, last, number_format)


async def issue_range(
    repo: CardRepository,
    programs: Programs,
    first: str,
    last: str,
    kind: str,
    status: str,
    author: str,
) -> IssuedRange:
    """Issue every number of the range (``range_of``); numbers already issued are skipped."""
    numbers = range_of(first, last, programs.current.document.card_number_format)
    issued = await repo.issue_range(numbers, kind, status, author)
    return IssuedRange(len(numbers), issued)


async def set_status(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    number: str,
    status: str,
    reason: str,
    author: str,
    now: datetime,
) -> dict[str, Any]:
    await repo.set_status(number, status, reason, author)
    return await _refreshed(repo, cards, programs, [number], number, now)


async def set_personal_discount(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    number: str,
    bp: int,
    reason: str,
    author: str,
    now: datetime,
) -> dict[str, Any]:
    """The card's personal discount, which rules with the ``personal_discount`` effect
    grant; who changed it, from what, and why, in the audit log."""
    await repo.set_personal_discount(number, bp, reason, author)
    return await _refreshed(repo, cards, programs, [number], number, now)


async def link(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    number: str,
    customer_id: int,
    author: str,
    now: datetime,
) -> dict[str, Any]:
    """Register the card to the customer; the welcome points come once per card."""
    await repo.link(number, customer_id, welcome_for(programs.current, now), author)
    return await _refreshed(repo, cards, programs, [number], number, now)


async def adjust(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    adjustment: Adjustment,
    now: datetime,
    idempotency: IdempotentRequest | None = None,
) -> dict[str, Any]:
    """Credit or debit a card; the card as the adjustment left it. With an idempotency
    key already used for the same request, the first answer, and nothing moves again."""
    expires_at = adjustment.expires_at
    if expires_at is not None and adjustment.points < 0:
        raise invalid_field("expires_at", "a debit takes existing points; it has no expiry")
    if expires_at is not None and expires_at <= now:
        raise invalid_field("expires_at", "points cannot arrive already expired")
    if adjustment.points > 0 and expires_at is None:
        expires_at = adjustment_expiry(programs.current, now)
        adjustment = dataclasses.replace(adjustment, expires_at=expires_at)
    adjusted = await repo.adjust(adjustment, now, idempotency)
    await refresh(cards, programs, [adjustment.number], now)
    return adjusted


async def adjustments(
    repo: CardRepository, number: str, before: int | None, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """A card's manual adjustments, newest first, below adjustment id ``before``;
    ``NotFound`` for an unknown card (rather than an empty page)."""
    await repo.view(number, now)
    return await repo.adjustments(number, before=before, limit=limit)


async def replace(
    repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    old: str,
    new: str,
    kind: str,
    author: str,
    now: datetime,
) -> dict[str, Any]:
    """Move balance, expiry dates, tier and customer to the new card; the new card."""
    await repo.replace(old, new, kind, author)
    return await _refreshed(repo, cards, programs, [old, new], new, now)
