"""Card states the ledger returned after its writes, cached a batch at a time.

A commit batch returns every touched card's new state; one pipelined round trip caches
them all, each through the cache's set-if-newer script, so an older state can never
replace a newer one whatever the order of the writes. The batch's sales are answered
after that round trip, so the card's next calculation sees the sale. Redis being down
loses the write, never a point: the next read misses or finds an older version, and
the ledger re-checks any spend under the card's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

from service.domain.card import CardState
from service.storage.cache import _SET_IF_NEWER, CARD_TTL_S, card_key, encode_state
from service.storage.resp import RespClient, RespUnavailable

_log = logging.getLogger(__name__)


class CardStateWriter:
    def __init__(self, resp: RespClient, ttl_s: int = CARD_TTL_S) -> None:
        self._resp = resp
        self._ttl = str(ttl_s)

    async def write(self, states: Iterable[tuple[CardState, date]]) -> None:
        """Cache each state unless a newer version of its card is cached already."""
        commands = [
            ("EVAL", _SET_IF_NEWER, "1", card_key(state.number), str(state.ledger_version),
             encode_state(state, day), self._ttl)
            for state, day in states
        ]  # fmt: skip
        if not commands:
            return
        try:
            await self._resp.pipeline(commands)
        except (RespUnavailable, OSError):
            _log.warning("card cache unavailable; %d states not refreshed", len(commands))
