"""Driver errors become domain errors by their class, the last resort answers in the
documented shape, and the webhook address rule: no I/O."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import asyncpg
import orjson
import pytest

from service.api.middleware import ObservabilityMiddleware
from service.domain.addresses import is_private_literal, is_public_address
from service.domain.errors import InvalidInput, Unavailable
from service.storage.postgres.pool import domain_error


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.InternalClientError("cannot switch to state 12"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        ConnectionResetError(),
    ],
)
def test_the_database_going_away_is_unavailable(exc: Exception) -> None:
    assert isinstance(domain_error(exc), Unavailable)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"),
        asyncpg.exceptions.NumericValueOutOfRangeError("bigint out of range"),
        asyncpg.exceptions.CheckViolationError("violates check constraint"),
    ],
)
def test_input_the_ledger_cannot_hold_is_invalid_input(exc: Exception) -> None:
    assert isinstance(domain_error(exc), InvalidInput)


def test_a_bug_stays_a_bug() -> None:
    assert domain_error(asyncpg.exceptions.UndefinedColumnError("no such column")) is None
    assert domain_error(KeyError("x")) is None


def test_the_last_resort_answers_500_in_the_documented_shape() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": "/x", "method": "GET", "headers": []}
    middleware = ObservabilityMiddleware(failing, SimpleNamespace(state=SimpleNamespace()))
    for _ in range(2):  # no exception: the server keeps the connection
        sent.clear()
        asyncio.run(middleware(scope, receive, send))
        assert sent[0]["status"] == 500 and len(sent[0]["headers"]) == 3
        body = orjson.loads(sent[1]["body"])
        assert body == {"error": "internal_error", "detail": "internal error"}


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("127.0.0.1", True),
        ("10.0.0.5", True),
        ("172.16.3.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("[::1]", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),
        ("224.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
        ("crm.example.com", False),
    ],
)
def test_webhook_targets_by_address(host: str, private: bool) -> None:
    assert is_private_literal(host) is private


def test_resolved_addresses_must_be_public() -> None:
    assert is_public_address("8.8.8.8")
    assert not is_public_address("127.0.0.53")
    assert not is_public_address("fe80::1%eth0")
