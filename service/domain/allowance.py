"""Offline allowances (SPEC §3.5): points of a card held for one till for a few hours, in
a token the service signs, so that the till may spend them while it is offline and have
its sales accepted when it syncs, whatever happened to the card meanwhile.

A token is ``<payload>.<signature>``, both base64url: the payload is the allowance as
JSON, the signature its HMAC-SHA256 under the deployment's secret. A token that does not
verify, names another card or store, or has expired is refused; one spent to its end is
refused by the ledger, which holds what is left of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

import orjson

from service.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Allowance:
    allowance_id: str  # the ledger's hold of its points
    card: str
    store_id: str
    points: int
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, allowance: Allowance) -> str:
    payload = orjson.dumps(
        [allowance.allowance_id, allowance.card, allowance.store_id, allowance.points,
         allowance.expires_at.isoformat()]
    )  # fmt: skip
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(
    secret: bytes, token: str, *, card: str | None, store_id: str, now: datetime
) -> Allowance:
    """The allowance ``token`` grants, if it is the service's, for this card and store, and
    still running; else ``InvalidInput`` (``allowance_invalid``, ``allowance_expired``)."""
    try:
        payload_text, signature_text = token.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except ValueError:
        raise InvalidInput(
            "the allowance is not one this service issued", code="allowance_invalid"
        ) from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidInput("the allowance is not one this service issued", code="allowance_invalid")
    allowance_id, holder, store, points, until = orjson.loads(payload)
    allowance = Allowance(allowance_id, holder, store, points, datetime.fromisoformat(until))
    if allowance.card != card or allowance.store_id != store_id:
        raise InvalidInput(
            "the allowance was granted for another card or store", code="allowance_invalid"
        )
    if allowance.expires_at <= now:
        raise InvalidInput("the allowance has expired", code="allowance_expired")
    return allowance
