"""In-memory views every worker keeps: the stores, the current compiled program and
which version was in force when.

Both are replaced whole (one reference assignment), so a request sees either the
old or the new version, never a mixture.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from service.domain.errors import NotFound, Unavailable
from service.domain.receipt import StoreInfo
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.document import parse_program

_log = logging.getLogger(__name__)


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
        self._switched: list[datetime] = []
        self._switched_to: list[int] = []
        self._current_since: datetime | None = None
        self.taken_up_at: datetime | None = None  # when this worker swapped to the current

    @property
    def current(self) -> CompiledProgram:
        if self._program is None:
            raise Unavailable("no loyalty program is published yet", code="no_program")
        return self._program

    @property
    def version(self) -> int | None:
        return None if self._program is None else self._program.version

    def swap(self, program: CompiledProgram, switches: Sequence[tuple[datetime, int]] = ()) -> None:
        """``program`` current from now; ``switches`` (oldest first) say which version was
        in force when, for receipts sent late (none known: ``program`` for every time)."""
        self._remember(program)
        self._program = program
        self._switched = [when for when, _ in switches]
        self._switched_to = [version for _, version in switches]
        # The current version's own switch: a receipt from after it needs no search.
        self._current_since = self._switched[-1] if switches else None
        self.taken_up_at = datetime.now(UTC)

    async def at(self, when: datetime) -> CompiledProgram:
        """The version in force at ``when``: the last one switched to at or before it, the
        first one for a time before any switch (SPEC §3.3, late receipts)."""
        program = self.current
        since = self._current_since
        if since is None or when >= since:
            return program
        position = max(bisect.bisect_right(self._switched, when) - 1, 0)
        version = self._switched_to[position]
        return program if version == program.version else await self.get(version)

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


class ProgramSource(Protocol):
    """Where program versions are kept (the ledger's database)."""

    async def current_document(self) -> tuple[int, dict[str, Any]] | None: ...

    async def document(self, version: int) -> dict[str, Any] | None: ...

    async def switches(self) -> list[tuple[datetime, int]]: ...


async def compile_version(source: ProgramSource, version: int) -> CompiledProgram | None:
    """A version compiled (in a thread: a large program takes a while); None if unknown."""
    document = await source.document(version)
    if document is None:
        return None
    return await asyncio.to_thread(compile_program, parse_program(document), version)


async def load_current(source: ProgramSource, holder: ProgramHolder) -> None:
    """Compile the current program if its version differs from the one held, and swap."""
    current = await source.current_document()
    if current is None or current[0] == holder.version:
        return
    version, document = current
    compiled = await asyncio.to_thread(compile_program, parse_program(document), version)
    holder.swap(compiled, await source.switches())
    _log.info("program loaded", extra={"program_version": version})
