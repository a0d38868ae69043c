"""Use cases: return goods of a committed sale, or cancel it whole.

The reversal is exact per line (``service.domain.reversal``); the program's policy
decides what happens to earned points the customer has already spent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from service.domain.reversal import ReturnRequest
from service.usecases.ports import CardStates, Programs, Returns


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).digest()


async def refund(
    store_id: str,
    transaction_id: str,
    refund_id: str,
    lines: Mapping[str, int] | None,
    *,
    now: datetime,
    programs: Programs,
    cards: CardStates,
    returns: Returns,
    cancel: bool = False,
) -> dict[str, Any]:
    program = programs.current
    settings = program.settings
    request = ReturnRequest(
        store_id=store_id,
        transaction_id=transaction_id,
        refund_id=refund_id,
        request_hash=_digest(transaction_id, refund_id, None if lines is None else dict(lines)),
        lines=lines,
        now=now,
        policy=settings.refund_spent_policy,
        point_value=settings.point_value,
        cancel=cancel,
    )
    response, card_number = await returns.return_goods(request)
    if card_number is not None:
        await cards.refresh(card_number, now, program)
    return response


async def cancel(
    store_id: str, transaction_id: str, *, now: datetime, programs: Programs, cards: CardStates,
    returns: Returns,
) -> dict[str, Any]:  # fmt: skip
    """Void a committed sale entirely (whatever was not returned yet); idempotent."""
    return await refund(
        store_id, transaction_id, f"cancel:{transaction_id}", None, now=now, programs=programs,
        cards=cards, returns=returns, cancel=True,
    )  # fmt: skip
