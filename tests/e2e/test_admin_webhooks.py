"""Webhooks through HTTP: ledger events reach a real receiver, signed, retried after a
failure; points about to expire are announced once per lot."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from service.storage.postgres.pool import connect
from tests.conftest import ADMIN, POS
from tests.e2e.admin_helpers import add_lot, fields, new_card
from tests.e2e.test_pos_api import receipt

WEBHOOKS = "/v1/admin/webhooks"
SECRET = "test-webhook-secret-0123456789"


class Receiver:
    """A real HTTP endpoint that records what it gets and fails the first ``failures``
    requests about ``card`` (events of other cards may arrive too)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.card = "none yet"
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                failing = outer.failures > 0 and outer.card.encode() in body
                outer.failures -= int(failing)
                outer.received.append({"headers": dict(self.headers), "body": body,
                                       "failed": failing})  # fmt: skip
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events_for(self, card: str, event: str) -> list[dict[str, Any]]:
        found = []
        for hit in self.received:
            body = orjson.loads(hit["body"])
            if body["event"] == event and body["data"].get("card") == card:
                found.append({**hit, "json": body})
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(failures=1)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()


async def _subscribe(client: httpx.AsyncClient, url: str, events: list[str]) -> int:
    body = {"url": url, "events": events, "secret": SECRET}
    created = await client.post(WEBHOOKS, json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["secret"] == SECRET
    return int(created.json()["subscription_id"])


async def _wait_for(check: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "nothing arrived in time"
        await asyncio.sleep(0.1)
    return found


async def test_an_accrual_is_delivered_signed_after_a_retry(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    subscription = await _subscribe(client, receiver.url, ["accrual", "redemption"])
    try:
        card = receiver.card = await new_card(client, points=1000)
        sale = receipt(card=card, transaction_id=f"W-{card}", redeem_points=100)
        assert (await client.post("/v1/commit", json=sale, headers=POS)).status_code == 200
        accruals = await _wait_for(
            lambda: [h for h in receiver.events_for(card, "accrual") if not h["failed"]]
        )
        hit = accruals[0]
        assert hit["json"]["data"]["points_earned"] > 0 and hit["json"]["event"] == "accrual"
        stamp, mac = hit["headers"]["X-Loyalty-Signature"].split(",")
        timestamp = int(stamp.removeprefix("t="))
        expected = hmac.new(
            SECRET.encode(), f"{timestamp}.".encode() + hit["body"], hashlib.sha256
        ).hexdigest()
        assert mac == f"v1={expected}"
        assert await _wait_for(
            lambda: [h for h in receiver.events_for(card, "redemption") if not h["failed"]]
        )
        refused = [h for h in receiver.received if h["failed"]]
        assert len(refused) == 1  # the first attempt about this card, then a retry
        event = orjson.loads(refused[0]["body"])

        async def the_retry() -> dict[str, Any]:
            # The receiver answers before the sender records the delivery: wait for it.
            deadline = time.monotonic() + 15.0
            while True:
                listing = await client.get(f"{WEBHOOKS}/{subscription}/deliveries", headers=ADMIN)
                found = next(
                    d
                    for d in listing.json()["deliveries"]
                    if d["event_id"] == event["event_id"] and d["event"] == event["event"]
                )
                if found["status"] != "pending" or time.monotonic() > deadline:
                    return dict(found)
                await asyncio.sleep(0.1)

        retried = await the_retry()
        assert retried["status"] == "delivered" and retried["attempts"] == 2
    finally:
        await client.delete(f"{WEBHOOKS}/{subscription}", headers=ADMIN)
    listed = (await client.get(WEBHOOKS, headers=ADMIN)).json()["webhooks"]
    assert next(w for w in listed if w["subscription_id"] == subscription)["active"] is False
    assert "secret" not in listed[0]


async def test_points_about_to_expire_are_announced_once(
    client: httpx.AsyncClient, receiver: Receiver, demo_database: str
) -> None:
    receiver.failures = 0
    card = await new_card(client)
    conn = await connect(demo_database)
    try:
        await add_lot(conn, card, 40, "300 days", "2 days")
    finally:
        await conn.close()
    subscription = await _subscribe(client, receiver.url, ["expiring"])
    try:
        hits = await _wait_for(lambda: receiver.events_for(card, "expiring"))
        assert hits[0]["json"]["data"]["points"] == 40
        await asyncio.sleep(2.5)  # more rounds of the job: still one notice for the lot
        assert len(receiver.events_for(card, "expiring")) == 1
    finally:
        await client.delete(f"{WEBHOOKS}/{subscription}", headers=ADMIN)


async def test_bad_subscriptions_name_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"url": "ftp://x", "events": ["accrual"]}, "url"),
        ({"url": "https://x.example", "events": ["everything"]}, "events[0]"),
        ({"url": "https://x.example", "events": []}, "events"),
        ({"url": "https://x.example", "events": ["accrual"], "secret": "short"}, "secret"),
    ]
    for body, field in cases:
        response = await client.post(WEBHOOKS, json=body, headers=ADMIN)
        assert response.status_code == 422 and fields(response) == {field}, response.text
    assert (await client.delete(f"{WEBHOOKS}/999999", headers=ADMIN)).status_code == 404
    missing = await client.get(f"{WEBHOOKS}/999999/deliveries", headers=ADMIN)
    assert missing.status_code == 404
