"""API keys, their roles, and the principals they authenticate (SPEC §3.1).

A key is a random secret shown once. The database keeps only its SHA-256 digest
(keys are high-entropy, so a slow password hash adds nothing) and a short lookup
id derived from it; the digest is compared in constant time. Each worker holds the
active keys in memory and re-reads them every half second, so authentication on the
hot path costs no round trip and a revocation reaches every worker within a second.

What a key may do is its role's: ``PERMISSIONS`` is the one table (the README shows
it; tests/e2e/test_roles.py holds every route to it). A POS key acts only for its
own stores.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from service.domain.errors import Forbidden, Unauthenticated

KEY_PREFIX = "lk_"
SHOWN_PREFIX = 10  # characters of a key kept to recognise it in lists: "lk_" and 7 more


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING = "marketing"
    ANALYST = "analyst"
    POS = "pos"


class Permission(StrEnum):
    """What a route needs; each route needs exactly one."""

    SELL = "sell"  # calculate, commit, refund, cancel (a POS key: its own stores)
    REGISTER = "register"  # the cashier's registration: customer, consent, card
    LOOK_UP_CARDS = "look up cards"  # /v1/cards: balance, history, by phone
    READ_CARDS = "read cards and customers"
    ADJUST_POINTS = "adjust points"
    MANAGE_CARDS = "issue, block, link and replace cards; change customers"
    ERASE_CUSTOMERS = "erase customers"
    IMPORT = "import customers and cards"
    READ_PROGRAMS = "read programs"
    TRY_PROGRAMS = "validate and dry-run programs"
    CHANGE_PROGRAMS = "change, publish and roll back programs"
    PROMO_CODES = "manage promo codes"
    REWARDS = "manage the rewards catalogue"
    REPORTS = "read reports"
    READ_STORES = "read stores and regions"
    CHANGE_STORES = "change stores and regions"
    WEBHOOKS = "manage webhooks"
    AUDIT = "read the audit log"
    KEYS = "manage API keys"


P = Permission
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MARKETING: frozenset({
        P.LOOK_UP_CARDS, P.READ_CARDS, P.ADJUST_POINTS, P.READ_PROGRAMS, P.TRY_PROGRAMS,
        P.CHANGE_PROGRAMS, P.PROMO_CODES, P.REWARDS, P.REPORTS, P.READ_STORES,
    }),
    Role.ANALYST: frozenset({P.READ_PROGRAMS, P.TRY_PROGRAMS, P.REPORTS, P.READ_STORES}),
    Role.POS: frozenset({P.SELL, P.REGISTER, P.LOOK_UP_CARDS}),
}  # fmt: skip
"""Each role's permissions: SPEC §3.1's table, one row per role."""
_GRANTED: dict[str, frozenset[Permission]] = {
    role.value: perms for role, perms in PERMISSIONS.items()
}


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: str  # a Role's value
    store_ids: frozenset[str]

    def ensure_store(self, store_id: str) -> None:
        """Refuse a POS key acting for a store it is not bound to (other roles are not
        bound to stores: what they may do at all is their permissions')."""
        if store_id not in self.store_ids and self.role == "pos":
            raise Forbidden(f"this key may not act for store {store_id!r}")

    def ensure(self, permission: Permission) -> None:
        """Refuse (403) what the key's role does not grant."""
        if permission not in _GRANTED[self.role]:
            raise Forbidden(f"a {self.role} key may not {permission.value}")


@dataclass(frozen=True, slots=True)
class StoredKey:
    principal: Principal
    secret_hash: bytes
    expires_at: float | None = None  # POSIX seconds; None: never


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
        self.used: set[str] = set()  # key ids seen since the last ``take_used``

    def replace(self, keys: Iterable[StoredKey]) -> None:
        self._keys = {k.principal.key_id: k for k in keys}

    def take_used(self) -> set[str]:
        """The key ids that authenticated a request since the last call."""
        used, self.used = self.used, set()
        return used

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
        if stored.expires_at is not None and stored.expires_at <= time.time():
            raise Unauthenticated("this API key has expired")
        self.used.add(stored.principal.key_id)
        return stored.principal
