"""In-memory views every worker keeps: the stores and the current compiled program.

Both are replaced whole (one reference assignment), so a request sees either the
old or the new version, never a mixture.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from service.domain.errors import NotFound, Unavailable
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


ProgramLoader = Callable[[int], Awaitable[CompiledProgram | None]]


class ProgramHolder:
    """The current program, plus recent versions that calculations pinned (for commits)."""

    KEEP_VERSIONS = 8

    def __init__(
        self, program: CompiledProgram | None = None, loader: ProgramLoader | None = None
    ) -> None:
        self._program = program
        self._loader = loader
        self._recent: dict[int, CompiledProgram] = {}

    @property
    def current(self) -> CompiledProgram:
        if self._program is None:
            raise Unavailable("no loyalty program is published yet", code="no_program")
        return self._program

    @property
    def version(self) -> int | None:
        return None if self._program is None else self._program.version

    def swap(self, program: CompiledProgram) -> None:
        self._remember(program)
        self._program = program

    def _remember(self, program: CompiledProgram) -> None:
        self._recent[program.version] = program
        while len(self._recent) > self.KEEP_VERSIONS:
            del self._recent[min(self._recent)]

    async def get(self, version: int) -> CompiledProgram:
        """A given version: the current one, a recent one, or loaded and compiled."""
        program = self._recent.get(version)
        if program is None and self._loader is not None:
            program = await self._loader(version)
            if program is not None:
                self._remember(program)
        if program is None:
            raise NotFound(f"program version {version} does not exist", code="program_not_found")
        return program
