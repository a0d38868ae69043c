"""API keys as a managed resource (SPEC §3.1): made from the command line or the API,
shown once, revoked on every worker within a second; in production only keys that were
made so are accepted. And the cashier's registration at the till with a POS key."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from service.domain.access import SHOWN_PREFIX
from tests.clock import FRIDAY_NOON
from tests.conftest import ADMIN, ADMIN_KEY, POS, POS_KEY, fresh_database, load_test_demo
from tests.e2e.servers import loyalty, two_workers


def _loyalty(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return loyalty(database_url, "keys", *args)


async def _status(client: httpx.AsyncClient, key: str, path: str = "/v1/admin/keys") -> int:
    return (await client.get(path, headers={"Authorization": f"Bearer {key}"})).status_code


async def _until(within_s: float, check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until ``check()`` answers True; fails after ``within_s``."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within_s} s")


@pytest.fixture(scope="module")
async def production_database(server_url: str) -> AsyncIterator[str]:
    async with fresh_database(server_url, "loyalty_keys") as url:
        await load_test_demo(url)  # the demo program and stores, and demo keys
        yield url


async def test_production_accepts_only_keys_made_by_the_command(
    production_database: str, redis_url: str
) -> None:
    made = await asyncio.to_thread(
        _loyalty, production_database, "create", "--role", "admin", "--name", "ops: test"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert made.stdout == key + "\n" and key.startswith("lk_"), "the key alone on stdout"
    assert "shown this once" in made.stderr
    pos = await asyncio.to_thread(
        _loyalty, production_database, "create", "--role", "pos", "--name", "till 7",
        "--stores", "msk-001", "--expires", "30d",
    )  # fmt: skip
    assert pos.returncode == 0, pos.stderr
    pos_key = pos.stdout.strip()
    settings = {"LOYALTY_ENVIRONMENT": "production", "LOYALTY_LOAD_DEMO": "false"}
    async with (
        two_workers(production_database, redis_url, demo_keys=False, **settings) as served,
        httpx.AsyncClient(base_url=served.url) as client,
    ):
        for _ in range(6):  # both workers, whichever answers
            assert await _status(client, ADMIN_KEY) == 401  # the demo's keys: refused
            assert await _status(client, POS_KEY, "/v1/cards/2000000000022") == 401
            assert await _status(client, key) == 200
            assert await _status(client, pos_key, "/v1/cards/2000000000022") == 200
            assert await _status(client, pos_key) == 403  # a POS key manages no keys

        listed = await asyncio.to_thread(_loyalty, production_database, "list")
        assert listed.returncode == 0 and key[:SHOWN_PREFIX] in listed.stdout
        assert key not in listed.stdout and pos_key not in listed.stdout

        revoked = await asyncio.to_thread(
            _loyalty, production_database, "revoke", pos_key[:SHOWN_PREFIX]
        )
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()

        async def refused_everywhere() -> bool:
            statuses = [await _status(client, pos_key, "/v1/cards/2000000000022") for _ in range(8)]
            return all(status == 401 for status in statuses)

        await _until(2.0, refused_everywhere)
        assert time.monotonic() - started < 1.5  # a second, and the probe's own requests

        again = await asyncio.to_thread(_loyalty, production_database, "revoke", "nosuchkey1")
        assert again.returncode == 1 and "no API key" in again.stderr


async def test_the_command_refuses_what_the_api_refuses(production_database: str) -> None:
    for args, field in (
        (["--role", "pos", "--name", "till"], "stores"),
        (["--role", "analyst", "--name", "x", "--stores", "msk-001"], "stores"),
        (["--role", "pos", "--name", "x", "--stores", "nowhere"], "stores"),
        (["--role", "admin", "--name", "x", "--expires", "2020-01-01T00:00+00:00"], "expires_at"),
    ):
        made = await asyncio.to_thread(_loyalty, production_database, "create", *args)
        assert made.returncode == 1 and field in made.stderr and made.stdout == "", args


async def test_keys_through_the_api(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/v1/admin/keys",
        json={"name": "till 9", "role": "pos", "stores": ["msk-001"]},
        headers=ADMIN,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    key = body["key"]
    assert body["prefix"] == key[:SHOWN_PREFIX] and body["origin"] == "api"
    sale = {"Authorization": f"Bearer {key}"}

    async def works() -> bool:
        return await _status(client, key, "/v1/cards/2000000000022") == 200

    await _until(1.5, works)
    listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
    mine = next(k for k in listed if k["key_id"] == body["key_id"])
    assert "key" not in mine and mine["role"] == "pos" and mine["store_ids"] == ["msk-001"]
    refused = await client.post(
        "/v1/admin/keys", json={"name": "x", "role": "pos", "stores": []}, headers=ADMIN
    )
    assert refused.status_code == 422 and refused.json()["fields"][0]["field"] == "stores"
    assert (await client.post("/v1/admin/keys", json={}, headers=sale)).status_code == 403

    revoked = await client.post(f"/v1/admin/keys/{body['key_id']}/revoke", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None

    async def refused_now() -> bool:
        return await _status(client, key, "/v1/cards/2000000000022") == 401

    assert await _until(1.5, refused_now) < 1.0
    unknown = await client.post("/v1/admin/keys/nosuchkey123/revoke", headers=ADMIN)
    assert unknown.status_code == 404


async def test_the_cashier_registers_a_customer_and_hands_over_a_card(
    client: httpx.AsyncClient,
) -> None:
    number = f"29{time.time_ns() % 10**11:011d}"
    registration = {
        "store_id": "msk-001",
        "card": number,
        "customer": {"name": "Anna Petrova", "phone": f"+7900{time.time_ns() % 10**7:07d}",
                     "birthday": "1990-03-15", "attributes": {"size": "M"}},
        "consents": [{"channel": "sms", "given": True}, {"channel": "email", "given": False}],
    }  # fmt: skip
    made = await client.post("/v1/registrations", json=registration, headers=POS)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["card"]["number"] == number and body["card"]["customer_id"] is not None
    assert body["customer"]["cards"] == [number]
    consents = {c["channel"]: c["given"] for c in body["customer"]["consents"]}
    assert consents == {"sms": True, "email": False}
    again = await client.post("/v1/registrations", json=registration, headers=POS)
    assert again.status_code == 200 and again.json()["customer"] == body["customer"]

    other_store = await client.post(
        "/v1/registrations", json={**registration, "store_id": "spb-001"}, headers=POS
    )
    assert other_store.status_code == 403
    taken = {**registration, "customer": {**registration["customer"], "phone": "+79990000001"}}
    assert (await client.post("/v1/registrations", json=taken, headers=POS)).status_code == 409

    withdrawn = await client.post(
        "/v1/consents",
        json={"store_id": "msk-001", "card": number,
              "consents": [{"channel": "sms", "given": False}]},
        headers=POS,
    )  # fmt: skip
    assert withdrawn.status_code == 200, withdrawn.text
    assert {c["channel"]: c["given"] for c in withdrawn.json()["consents"]}["sms"] is False
    exported = await client.get("/v1/admin/export/customers", headers=ADMIN)
    assert exported.status_code == 200, exported.text
    mine = next(row for row in csv.DictReader(io.StringIO(exported.text)) if number in row["cards"])
    assert (mine["consent_sms"], mine["consent_email"], mine["consent_push"]) == (
        "false",
        "false",
        "",
    )

    line = {"line_id": "1", "sku": "460001", "quantity": "1", "unit_price": 1000}
    sale = {"store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": number, "lines": [line]}
    assert (await client.post("/v1/calculate", json=sale, headers=POS)).status_code == 200
