"""The cashier's workflow at the till (SPEC §3.1, §3.2): register a customer in one call,
with their consent to mailings, and hand over a card (new stock is issued, a card from
the stores' stock is linked), welcome points included; record a consent given or
withdrawn later. A POS key does this at its own stores only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.domain.card_numbers import check_card_number
from service.usecases.admin_cards import CardRepository, Welcome, refresh, welcome_for
from service.usecases.admin_customers import CustomerRepository
from service.usecases.ports import CardStates, Programs


@dataclass(frozen=True, slots=True)
class Consent:
    channel: str  # sms, email, push, messengers, calls
    given: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Registration:
    store_id: str
    card: str
    customer: Mapping[str, Any]  # the customer's fields, as the back office takes them
    consents: Sequence[Consent]


class RegistrationStore(Protocol):
    async def register(
        self, registration: Registration, welcome: Welcome | None, author: str
    ) -> tuple[int, bool]: ...

    async def consent(
        self, card: str, consents: Sequence[Consent], store_id: str, author: str
    ) -> int: ...


async def register(
    store: RegistrationStore,
    customers: CustomerRepository,
    card_repo: CardRepository,
    cards: CardStates,
    programs: Programs,
    registration: Registration,
    author: str,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """The customer and the card as registered, and whether it was a retry of a
    registration made already (then nothing was written again)."""
    check_card_number(registration.card, programs.current.document.card_number_format)
    welcome = welcome_for(programs.current, now)
    customer_id, replayed = await store.register(registration, welcome, author)
    await refresh(cards, programs, [registration.card], now)
    customer = await customers.get(customer_id)
    card = await card_repo.view(registration.card, now)
    return {"customer": customer, "card": card}, replayed


async def consent(
    store: RegistrationStore,
    customers: CustomerRepository,
    card: str,
    consents: Sequence[Consent],
    store_id: str,
    author: str,
) -> dict[str, Any]:
    """Record consents given or withdrawn for the customer of ``card``; the customer."""
    return await customers.get(await store.consent(card, consents, store_id, author))
