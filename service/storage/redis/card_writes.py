"""The card cache told about the ledger's writes, a commit batch at a time.

A committed sale changes its card's state; the ledger returns the card's new ledger
version, and one pipelined round trip marks every card of the batch stale at that
version, through the cache's set-if-newer script: the cached state is dropped and the
version stays, so a slow reader that read the ledger before the sale cannot put its
older state back, and the card's next calculation reads the ledger afresh and caches
that. The batch's sales are answered after the round trip, so the card's next
calculation sees the sale. Redis being down loses the mark, never a point: until the
entry expires a calculation may show the balance before the sale, and the ledger
re-checks any spend under the card's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from service.storage.redis.cache import _SET_IF_NEWER, CARD_TTL_S, card_key
from service.storage.redis.resp import RespClient, RespUnavailable

_log = logging.getLogger(__name__)

STALE = b""  # a cached state with no payload: a miss that keeps its version


class CardStateWriter:
    def __init__(self, resp: RespClient, ttl_s: int = CARD_TTL_S) -> None:
        self._resp = resp
        self._ttl = str(ttl_s)

    async def mark_stale(self, versions: Iterable[tuple[str, int]]) -> None:
        """For each (card number, ledger version): unless a newer version is cached,
        drop the cached state and keep that version."""
        commands = [
            ("EVAL", _SET_IF_NEWER, "1", card_key(number), str(version), STALE, self._ttl)
            for number, version in versions
        ]
        if not commands:
            return
        try:
            await self._resp.pipeline(commands)
        except (RespUnavailable, OSError):
            _log.warning("card cache unavailable; %d cards not marked stale", len(commands))
