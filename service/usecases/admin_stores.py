"""Use cases of the back office over stores and regions. A store's change reaches this
worker's directory at once, the other workers with their periodic re-read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from service.domain.receipt import StoreInfo


class StoreRepository(Protocol):
    async def put_region(self, region_id: str, name: str, author: str) -> None: ...

    async def regions(self) -> list[dict[str, Any]]: ...

    async def put_store(
        self, store_id: str, name: str, region: str, timezone: str, active: bool, author: str
    ) -> None: ...

    async def stores(self, store_id: str | None = None) -> list[dict[str, Any]]:
        """Every store, or the one ``store_id`` (``NotFound`` if there is none)."""
        ...

    async def active_stores(self) -> list[StoreInfo]: ...


class Directory(Protocol):
    def replace(self, stores: Iterable[StoreInfo]) -> None: ...


async def regions(repo: StoreRepository) -> list[dict[str, Any]]:
    """Every region with the ids of its stores."""
    return await repo.regions()


async def put_region(
    repo: StoreRepository, region_id: str, name: str, author: str
) -> list[dict[str, Any]]:
    """Create or rename a region; every region as it then stands."""
    await repo.put_region(region_id, name, author)
    return await repo.regions()


async def stores(repo: StoreRepository) -> list[dict[str, Any]]:
    """Every store, active or not."""
    return await repo.stores()


async def store(repo: StoreRepository, store_id: str) -> dict[str, Any]:
    """One store."""
    return (await repo.stores(store_id))[0]


async def put_store(
    repo: StoreRepository,
    directory: Directory,
    store_id: str,
    name: str,
    region: str,
    timezone: str,
    active: bool,
    author: str,
) -> dict[str, Any]:
    """Create or change a store (its region must exist), and give this worker's directory
    the active stores; the store as recorded."""
    await repo.put_store(store_id, name, region, timezone, active, author)
    directory.replace(await repo.active_stores())
    return await store(repo, store_id)
