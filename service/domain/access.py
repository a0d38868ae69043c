"""API keys and the principals they authenticate: admin keys and POS keys bound to stores.

A key is a random secret shown once. The database keeps only its SHA-256 digest
(keys are high-entropy, so a slow password hash adds nothing) and a short lookup
id derived from it; the digest is compared in constant time. Each worker holds the
active keys in memory and refreshes them in the background, so authentication on
the hot path costs no round trip.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from service.domain.errors import Forbidden, Unauthenticated

KEY_PREFIX = "lk_"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: str  # "admin" | "pos"
    store_ids: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def ensure_store(self, store_id: str) -> None:
        """Refuse a POS key acting for a store it is not bound to (admins act for all)."""
        if store_id not in self.store_ids and self.role != "admin":
            raise Forbidden(f"this key may not act for store {store_id!r}")

    def ensure_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("an admin key is required")


@dataclass(frozen=True, slots=True)
class StoredKey:
    principal: Principal
    secret_hash: bytes


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_id_for(key: str) -> str:
    """The lookup id: the first 16 hex digits of the digest (not secret on its own)."""
    return key_digest(key).hex()[:16]


class KeyRing:
    """The active keys of this worker, by lookup id."""

    def __init__(self, keys: Iterable[StoredKey] = ()) -> None:
        self._keys = {k.principal.key_id: k for k in keys}

    def replace(self, keys: Iterable[StoredKey]) -> None:
        self._keys = {k.principal.key_id: k for k in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing Authorization: Bearer <key>")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("expected Authorization: Bearer <key>")
        digest = key_digest(key)
        stored = self._keys.get(digest.hex()[:16])
        if stored is None or not hmac.compare_digest(stored.secret_hash, digest):
            raise Unauthenticated("unknown or revoked API key")
        return stored.principal
