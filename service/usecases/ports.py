"""The ports use cases depend on; ``service.storage`` implements them, tests fake them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from service.domain.card import CardState
from service.domain.receipt import StoreInfo
from service.rules.compiler import CompiledProgram


class CardStates(Protocol):
    async def get(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        """The card's current state, or None when no such card exists."""
        ...


class Stores(Protocol):
    def get(self, store_id: str) -> StoreInfo | None: ...


class Programs(Protocol):
    @property
    def current(self) -> CompiledProgram: ...
