"""API keys as a managed resource (SPEC §3.1): made, listed and revoked the same way from
the command line (``loyalty keys``, how a deployment gets its first admin key, with or
without the service running) and from /v1/admin/keys. A key's secret is shown once, at
creation; what is kept is its digest and its first characters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.domain.access import Role
from service.domain.errors import invalid_field


@dataclass(frozen=True, slots=True)
class NewKey:
    name: str
    role: str
    store_ids: tuple[str, ...] = ()
    expires_at: datetime | None = None


class KeyRepository(Protocol):
    async def create(self, key: NewKey, origin: str, author: str) -> dict[str, Any]:
        """Store a new key; its view, with the secret under ``key`` (shown this once)."""
        ...

    async def keys(self, include_revoked: bool) -> list[dict[str, Any]]: ...

    async def revoke(self, key: str, author: str) -> dict[str, Any]:
        """Revoke by key id or shown prefix; ``NotFound`` if neither names one key."""
        ...

    async def known_stores(self, store_ids: tuple[str, ...]) -> set[str]: ...


async def create(
    repo: KeyRepository, key: NewKey, origin: str, author: str, now: datetime
) -> dict[str, Any]:
    """A new key for ``key.role``; a POS key names the stores it acts for (each must
    exist), other roles none. Refused (422, naming the field) otherwise."""
    if key.role not in set(Role):
        roles = ", ".join(role.value for role in Role)
        raise invalid_field("role", f"{key.role!r} is not a role; one of {roles}")
    if key.role == Role.POS and not key.store_ids:
        raise invalid_field("stores", "a POS key acts for at least one store")
    if key.role != Role.POS and key.store_ids:
        raise invalid_field("stores", f"a {key.role} key is not bound to stores")
    unknown = sorted(set(key.store_ids) - await repo.known_stores(key.store_ids))
    if unknown:
        raise invalid_field("stores", f"no such store: {', '.join(unknown)}")
    if key.expires_at is not None and key.expires_at <= now:
        raise invalid_field("expires_at", "a key cannot be made already expired")
    if not key.name.strip():
        raise invalid_field("name", "a key needs a name that says whose it is")
    return await repo.create(key, origin, author)


async def keys(repo: KeyRepository, include_revoked: bool = False) -> list[dict[str, Any]]:
    """Every key (the revoked ones too if asked), oldest first, without secrets."""
    return await repo.keys(include_revoked)


async def revoke(repo: KeyRepository, key: str, author: str) -> dict[str, Any]:
    """Revoke a key by its id or its shown prefix: every worker refuses it within a
    second. Revoking a revoked key changes nothing."""
    return await repo.revoke(key, author)
