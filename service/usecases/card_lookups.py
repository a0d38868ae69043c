"""Card lookups for the till and support: the card as the POS sees it, its ledger
history, the cards of a phone number."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import NotFound
from service.usecases.ports import CardStates, Programs
from service.usecases.views import card_view


class CardQueries(Protocol):
    async def history(
        self, number: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]] | None:
        """Ledger entries newest first below entry id ``before``; None for no such card."""
        ...

    async def by_phone(self, phone: str) -> list[str]: ...


def _no_card() -> NotFound:
    return NotFound("no such loyalty card", code="card_not_found")


async def by_phone(queries: CardQueries, phone: str) -> list[str]:
    """The numbers of the cards registered to the (not erased) customer with ``phone``."""
    return await queries.by_phone(phone)


async def card(cards: CardStates, programs: Programs, number: str, now: datetime) -> dict[str, Any]:
    """Balance (active, pending, expiring), tier and progress to the next, at ``now``."""
    program = programs.current
    state = await cards.get(number, now, program)
    if state is None:
        raise _no_card()
    return card_view(state, program, None, now)


async def history(
    queries: CardQueries, number: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """A card's ledger entries, newest first, below entry id ``before``."""
    entries = await queries.history(number, before=before, limit=limit)
    if entries is None:
        raise _no_card()
    return entries
