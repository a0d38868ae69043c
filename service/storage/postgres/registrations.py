"""The cashier's registration in one transaction: the customer, their consents, and the
card handed over (issued here if it is new stock, else linked), with welcome points."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from service.domain.errors import Conflict, NotFound
from service.storage.postgres.admin_cards import insert_card, link_card
from service.storage.postgres.customers import insert_customer
from service.storage.postgres.pool import database_errors
from service.usecases.admin_cards import NewCard, Welcome
from service.usecases.registration import Consent, Registration


async def record_consents(
    conn: asyncpg.Connection,
    customer_id: int,
    consents: Iterable[Consent],
    store_id: str,
    author: str,
) -> None:
    await conn.executemany(
        "INSERT INTO consents (customer_id, channel, given, given_at, store_id, author)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(customer_id, c.channel, c.given, c.at, store_id, author) for c in consents],
    )


# The contact each consent lets the chain's CRM use.
_CONTACT_BY_CHANNEL = {"sms": "phone", "calls": "phone", "messengers": "phone", "email": "email"}


async def _registered(
    conn: asyncpg.Connection, registration: Registration, customer_id: int
) -> None:
    """A ``customer_registered`` event for the chain's CRM: the card, the customer's id and
    consents, and the contacts only where a consent given at the till covers them (152-FZ:
    no phone or e-mail leaves for a mailing the customer did not agree to)."""
    given = {c.channel: c.given for c in registration.consents}
    contacts = {
        field: registration.customer.get(field)
        for channel, field in _CONTACT_BY_CHANNEL.items()
        if given.get(channel) and registration.customer.get(field) is not None
    }
    payload = {"card": registration.card, "customer_id": customer_id, "consents": given,
               "store_id": registration.store_id, **contacts}  # fmt: skip
    await conn.execute(
        "INSERT INTO outbox (card_id, kind, payload)"
        " SELECT card_id, 'customer_registered', $2 FROM cards WHERE number = $1",
        registration.card,
        payload,
    )


class Registrations:
    """``usecases.registration.RegistrationStore`` over the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def register(
        self, registration: Registration, welcome: Welcome | None, author: str
    ) -> tuple[int, bool]:
        """The customer id, and whether this registration had been made already (a till's
        retry: the card is linked to a customer with the same phone; nothing is written)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            card = await conn.fetchrow(
                "SELECT c.customer_id, cu.phone FROM cards c"
                " LEFT JOIN customers cu USING (customer_id)"
                " WHERE c.number = $1 FOR UPDATE OF c",
                registration.card,
            )
            phone = registration.customer.get("phone")
            if card is not None and card["customer_id"] is not None:
                if phone is not None and card["phone"] == phone:
                    return card["customer_id"], True
                raise Conflict("the card belongs to another customer", code="card_linked")
            customer_id = await insert_customer(conn, registration.customer, author)
            await record_consents(
                conn, customer_id, registration.consents, registration.store_id, author
            )
            if card is None:
                new = NewCard(registration.card, customer_id=customer_id)
                await insert_card(conn, new, welcome, author)
            else:
                await link_card(conn, registration.card, customer_id, welcome, author)
            await _registered(conn, registration, customer_id)
            return customer_id, False

    async def consent(
        self, card: str, consents: Iterable[Consent], store_id: str, author: str
    ) -> int:
        """Record consents for the customer of ``card``; their customer id."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            customer_id = await conn.fetchval(
                "SELECT customer_id FROM cards WHERE number = $1", card
            )
            if customer_id is None:
                raise NotFound("no customer is registered to this card", code="no_customer")
            await record_consents(conn, customer_id, consents, store_id, author)
            return int(customer_id)
