import pytest

from service.domain.access import (
    KeyRing,
    Permission,
    Principal,
    StoredKey,
    generate_key,
    key_digest,
    key_id_for,
)
from service.domain.errors import Forbidden, Unauthenticated


def _ring(key: str, role: str = "pos", stores: frozenset[str] = frozenset({"msk-001"})) -> KeyRing:
    principal = Principal(key_id_for(key), "till", role, stores)
    return KeyRing([StoredKey(principal, key_digest(key))])


def test_known_key_authenticates() -> None:
    key = generate_key()
    principal = _ring(key).authenticate(f"Bearer {key}")
    assert principal.role == "pos" and principal.store_ids == {"msk-001"}


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer lk_wrong", "bearer  x"]
)
def test_missing_malformed_or_unknown_key_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        _ring(generate_key()).authenticate(header)


def test_same_lookup_id_but_different_digest_is_refused() -> None:
    key = generate_key()
    ring = KeyRing([StoredKey(Principal(key_id_for(key), "x", "pos", frozenset({"s"})), b"0" * 32)])
    with pytest.raises(Unauthenticated):
        ring.authenticate(f"Bearer {key}")


def test_pos_key_is_bound_to_its_stores() -> None:
    principal = Principal("k", "till", "pos", frozenset({"msk-001"}))
    principal.ensure_store("msk-001")
    with pytest.raises(Forbidden):
        principal.ensure_store("ekb-001")
    with pytest.raises(Forbidden):
        principal.ensure(Permission.KEYS)


def test_admin_acts_for_every_store() -> None:
    admin = Principal("k", "ops", "admin", frozenset())
    admin.ensure_store("anything")
    admin.ensure(Permission.KEYS)


def test_replace_drops_revoked_keys() -> None:
    key = generate_key()
    ring = _ring(key)
    ring.replace([])
    with pytest.raises(Unauthenticated):
        ring.authenticate(f"Bearer {key}")
