"""Use case: an offline allowance for a till (SPEC §3.5). The points are held in the
ledger for the till's store for the program's hours; the signed token the till keeps
lets its commits spend them when it syncs (``commit`` checks it)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from service.domain.allowance import Allowance, sign, verify
from service.domain.errors import InsufficientPoints, InvalidInput, NotFound, Unavailable
from service.usecases.calculate import SalePorts

SECRET = "offline_allowance"


async def grant_allowance(
    card: str, store_id: str, points: int, *, now: datetime, ports: SalePorts
) -> dict[str, Any]:
    """Hold up to ``points`` (at most the program's allowance) of the card for the store's
    till; the signed allowance. 409 when the card has nothing to hold."""
    settings = ports.programs.current.settings
    if points > settings.offline_allowance_points:
        raise InvalidInput(
            f"an allowance holds at most {settings.offline_allowance_points} points",
            code="allowance_too_large",
            extra={"max_points": settings.offline_allowance_points},
        )
    if ports.holds is None or ports.secrets is None:
        raise Unavailable("allowances cannot be granted here", code="allowances_unavailable")
    state = await ports.cards.load(card, now, ports.programs.current)
    if state is None:
        raise NotFound("no such loyalty card", code="card_not_found")
    allowance_id = f"a_{os.urandom(12).hex()}"
    until = now + timedelta(hours=settings.offline_allowance_hours)
    held = await ports.holds.hold(card, allowance_id, store_id, points, now, until)
    if held == 0:
        raise InsufficientPoints(
            "the card has no points to hold for the till",
            extra={"balance": state.spendable_points(now)},
        )
    await ports.cards.refresh(card, now, ports.programs.current)
    allowance = Allowance(allowance_id, card, store_id, held, until)
    token = sign(await ports.secrets.secret(SECRET), allowance)
    return {"allowance": token, "card": card, "points": held, "expires_at": until.isoformat()}


async def checked_allowance(
    token: str, card: str | None, store_id: str, *, now: datetime, ports: SalePorts
) -> Allowance:
    """The allowance a syncing till's commit presents, verified: the service's, for this
    card and store, not expired (the ledger checks what is left of it)."""
    if ports.secrets is None:
        raise Unavailable("allowances cannot be checked here", code="allowances_unavailable")
    return verify(await ports.secrets.secret(SECRET), token, card=card, store_id=store_id, now=now)
