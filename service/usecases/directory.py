"""In-memory views every worker keeps: the stores and the current compiled program.

Both are replaced whole (one reference assignment), so a request sees either the
old or the new version, never a mixture.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.domain.errors import Unavailable
from service.domain.receipt import StoreInfo
from service.rules.compiler import CompiledProgram


class StoreDirectory:
    def __init__(self, stores: Iterable[StoreInfo] = ()) -> None:
        self._stores = {s.store_id: s for s in stores}

    def replace(self, stores: Iterable[StoreInfo]) -> None:
        self._stores = {s.store_id: s for s in stores}

    def get(self, store_id: str) -> StoreInfo | None:
        return self._stores.get(store_id)

    def __len__(self) -> int:
        return len(self._stores)


class ProgramHolder:
    def __init__(self, program: CompiledProgram | None = None) -> None:
        self._program = program

    @property
    def current(self) -> CompiledProgram:
        if self._program is None:
            raise Unavailable("no loyalty program is published yet", code="no_program")
        return self._program

    @property
    def version(self) -> int | None:
        return None if self._program is None else self._program.version

    def swap(self, program: CompiledProgram) -> None:
        self._program = program
