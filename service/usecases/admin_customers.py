"""Use cases of the back office over customers. A change refreshes the cached state of
the customer's cards (it carries birthday and segments); each answers with the customer
as then recorded."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import invalid_field
from service.usecases.admin_cards import refresh
from service.usecases.ports import CardStates, Programs

NOT_NULL = ("attributes", "segments")  # present in a change only with a value


class CustomerRepository(Protocol):
    async def create(self, data: Mapping[str, Any], author: str) -> int: ...

    async def update(
        self, customer_id: int, changes: Mapping[str, Any], author: str
    ) -> list[str]: ...

    async def erase(self, customer_id: int, author: str) -> list[str]: ...

    async def get(self, customer_id: int) -> dict[str, Any]:
        """The customer; ``NotFound`` for an unknown one."""
        ...

    async def find(self, *, phone: str | None, email: str | None) -> list[dict[str, Any]]: ...


async def create(repo: CustomerRepository, data: Mapping[str, Any], author: str) -> dict[str, Any]:
    return await repo.get(await repo.create(data, author))


async def customer(repo: CustomerRepository, customer_id: int) -> dict[str, Any]:
    """One customer, erased or not."""
    return await repo.get(customer_id)


async def find(
    repo: CustomerRepository, phone: str | None, email: str | None
) -> list[dict[str, Any]]:
    """The customers with this phone and this email (either may be left out, not both)."""
    if phone is None and email is None:
        raise invalid_field("phone", "give a phone or an email to search by")
    return await repo.find(phone=phone, email=email)


async def update(
    repo: CustomerRepository,
    cards: CardStates,
    programs: Programs,
    customer_id: int,
    changes: Mapping[str, Any],
    author: str,
    now: datetime,
) -> dict[str, Any]:
    """Change the fields given in ``changes``; a list or mapping field cannot be null."""
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            raise invalid_field(name, "cannot be null; send an empty value")
    numbers = await repo.update(customer_id, changes, author)
    await refresh(cards, programs, numbers, now)
    return await repo.get(customer_id)


async def erase(
    repo: CustomerRepository,
    cards: CardStates,
    programs: Programs,
    customer_id: int,
    author: str,
    now: datetime,
) -> dict[str, Any]:
    """Erase the personal data; cards, balances and the ledger stay, anonymised."""
    numbers = await repo.erase(customer_id, author)
    await refresh(cards, programs, numbers, now)
    return await repo.get(customer_id)
