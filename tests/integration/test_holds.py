"""Points held for a till (SPEC §3.5, issue 23): a calculation that asks to hold the points
it shows keeps them from other tills until its commit takes them, its till releases them,
or the hold lapses by itself; an offline till's allowance holds points it spends when it
syncs, whatever happened to the card meanwhile.

A database of its own (the demo program with a one-second hold time), cards of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.domain.allowance import Allowance, sign
from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import POS
from tests.integration.conftest import OwnProgram, own_program

HOLD_SECONDS = 2  # short, for the lapse; long enough for a loaded CI between calculate and commit


@pytest.fixture
async def holding(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    document = demo_program_now()
    document["points"] = {**document["points"], "hold_seconds": HOLD_SECONDS}
    async with own_program(server_url, redis_url, document) as served:
        yield served


async def _card(url: str, points: int) -> str:
    number = f"76{int.from_bytes(os.urandom(4), 'big'):011d}"
    conn = await connect(url)
    try:
        card_id = await conn.fetchval(
            "INSERT INTO cards (number) VALUES ($1) RETURNING card_id", number
        )
        lot = await conn.fetchval(
            "INSERT INTO point_lots (card_id, points, remaining, activates_at, source)"
            " VALUES ($1, $2, $2, now() - interval '30 days', 'adjustment') RETURNING lot_id",
            card_id,
            points,
        )
        await conn.execute(
            "INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)"
            " VALUES ($1, 'adjustment', $2, $3, 'opening balance', 'tests')",
            card_id,
            points,
            lot,
        )
    finally:
        await conn.close()
    return number


def _sale(card: str, redeem: int | str, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": card, "redeem_points": redeem,
        "lines": [{"line_id": "1", "sku": "J-1", "category": "jeans", "quantity": "1",
                   "unit_price": 1_000_000}],
        **extra,
    }  # fmt: skip


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers=POS)


async def _balance(client: httpx.AsyncClient, card: str) -> int:
    return int((await client.get(f"/v1/cards/{card}", headers=POS)).json()["balance"])


async def test_two_tills_holding_one_card_are_never_refused_for_each_others_points(
    holding: OwnProgram,
) -> None:
    client, url, _ = holding
    card = await _card(url, 1_000)
    first = (await _post(client, "/v1/calculate", _sale(card, 700, hold=True))).json()
    assert first["hold"]["points"] == 700 and first["totals"]["points_redeemed"] == 700
    # The second till sees what the first holds as not spendable, and holds the rest.
    second = (await _post(client, "/v1/calculate", _sale(card, 700, hold=True))).json()
    assert second["hold"]["points"] == 300 and second["totals"]["points_redeemed"] == 300
    # A third till, without a hold, cannot take held points at commit.
    grab = await _post(client, "/v1/commit", _sale(card, 100, transaction_id="H-grab"))
    assert grab.status_code == 409 and grab.json()["error"] == "insufficient_points"
    done = await asyncio.gather(
        _post(client, "/v1/commit", _sale(card, 700, transaction_id="H-1",
                                           calculation_id=first["calculation_id"])),
        _post(client, "/v1/commit", _sale(card, 300, transaction_id="H-2",
                                           calculation_id=second["calculation_id"])),
    )  # fmt: skip
    assert [r.status_code for r in done] == [200, 200], [r.text for r in done]
    assert await _balance(client, card) == 0


async def test_a_commit_without_its_calculation_record_still_takes_its_hold(
    holding: OwnProgram,
) -> None:
    """The commit recalculates when the kept calculation does not match (here the till sent
    another terminal; a lost record is the same path): it spends the held points and takes
    the hold, so that the card's other points stay spendable by other tills."""
    client, url, _ = holding
    card = await _card(url, 1_000)
    shown = (await _post(client, "/v1/calculate", _sale(card, 700, hold=True))).json()
    assert shown["hold"]["points"] == 700
    sale = _sale(card, 700, transaction_id="L-1", calculation_id=shown["calculation_id"],
                 terminal_id="pos-other")  # fmt: skip
    assert (await _post(client, "/v1/commit", sale)).status_code == 200
    conn = await connect(url)
    try:
        taken = await conn.fetchval(
            "SELECT taken_at IS NOT NULL FROM point_holds WHERE calculation_id = $1",
            shown["calculation_id"],
        )
    finally:
        await conn.close()
    assert taken
    rest = await _post(client, "/v1/commit", _sale(card, 300, transaction_id="L-2"))
    assert rest.status_code == 200, rest.text


async def test_holds_racing_on_one_card_never_hold_more_than_it_has(holding: OwnProgram) -> None:
    client, url, _ = holding
    card = await _card(url, 1_000)
    shown = await asyncio.gather(
        *(_post(client, "/v1/calculate", _sale(card, 300, hold=True)) for _ in range(6))
    )
    held = [r.json()["hold"]["points"] for r in shown]
    assert sum(held) == 1_000 and all(
        r.json()["totals"]["points_redeemed"] == h for r, h in zip(shown, held, strict=True)
    ), held
    done = await asyncio.gather(
        *(
            _post(client, "/v1/commit", _sale(card, r.json()["totals"]["points_redeemed"],
                                              transaction_id=f"R-{i}",
                                              calculation_id=r.json()["calculation_id"]))
            for i, r in enumerate(shown)
        )
    )  # fmt: skip
    assert {r.status_code for r in done} == {200}, [r.text for r in done]
    assert await _balance(client, card) == 0


async def test_an_unused_hold_lapses_and_a_released_one_frees_at_once(
    holding: OwnProgram,
) -> None:
    client, url, _ = holding
    card = await _card(url, 1_000)
    held = (await _post(client, "/v1/calculate", _sale(card, 1_000, hold=True))).json()
    assert held["hold"]["points"] == 1_000
    other = (await _post(client, "/v1/calculate", _sale(card, "max"))).json()
    assert other["totals"]["points_redeemed"] == 0
    await asyncio.sleep(HOLD_SECONDS + 0.2)
    lapsed = (await _post(client, "/v1/calculate", _sale(card, "max"))).json()
    assert lapsed["totals"]["points_redeemed"] == 1_000

    again = (await _post(client, "/v1/calculate", _sale(card, 600, hold=True))).json()
    path = f"/v1/calculations/{again['calculation_id']}"
    released = await client.delete(path, headers=POS)
    assert released.status_code == 200 and released.json()["released"] == 600
    assert (await client.delete(path, headers=POS)).json()["released"] == 0  # idempotent
    spent = await _post(client, "/v1/commit", _sale(card, 1_000, transaction_id="L-1"))
    assert spent.status_code == 200, spent.text
    assert (await client.delete("/v1/calculations/c_1_nosuch", headers=POS)).status_code == 404


async def test_the_cached_holds_are_the_ledgers(holding: OwnProgram) -> None:
    """CardState.held_points, the Python twin of sql/loyalty_held.sql, on the same holds."""
    client, url, app = holding
    card = await _card(url, 1_000)
    ids = []
    for points in (100, 250):
        body = (await _post(client, "/v1/calculate", _sale(card, points, hold=True))).json()
        ids.append(body["calculation_id"])
    now = datetime.now(UTC)
    program = app.state.services.programs.current
    state = await app.state.services.cards.load(card, now, program)
    conn = await connect(url)
    try:
        for own in (None, ids[0], ids[1]):
            sql = await conn.fetchval(
                "SELECT h.held FROM cards c, loyalty_held(c.card_id, $2, $3) h WHERE c.number = $1",
                card,
                now,
                own,
            )
            assert state.held_points(now, own) == sql
        later = now + timedelta(seconds=HOLD_SECONDS + 1)
        assert (
            state.held_points(later)
            == 0
            == await conn.fetchval(
                "SELECT h.held FROM cards c, loyalty_held(c.card_id, $2, NULL) h"
                " WHERE c.number = $1",
                card,
                later,
            )
        )
    finally:
        await conn.close()


async def test_an_offline_till_spends_within_its_allowance_and_syncs_without_a_refusal(
    holding: OwnProgram,
) -> None:
    client, url, _ = holding
    card = await _card(url, 1_000)
    granted = await _post(
        client, "/v1/allowances", {"store_id": "msk-001", "card": card, "points": 400}
    )
    assert granted.status_code == 200, granted.text
    token = granted.json()["allowance"]
    assert granted.json()["points"] == 400
    # Online tills meanwhile spend all the card lets them: what the allowance holds stays.
    online = (await _post(client, "/v1/calculate", _sale(card, "max"))).json()
    assert online["totals"]["points_redeemed"] == 600
    spent = await _post(client, "/v1/commit", _sale(card, 600, transaction_id="ON-1"))
    assert spent.status_code == 200, spent.text
    grab = await _post(client, "/v1/commit", _sale(card, 100, transaction_id="ON-2"))
    assert grab.status_code == 409
    # The till syncs its offline sales, made an hour ago: accepted within the allowance.
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    synced = [
        await _post(client, "/v1/commit", _sale(card, points, transaction_id=f"OFF-{i}",
                                                timestamp=when, allowance=token))
        for i, points in enumerate((250, 150))
    ]  # fmt: skip
    assert [r.status_code for r in synced] == [200, 200], [r.text for r in synced]
    beyond = await _post(
        client,
        "/v1/commit",
        _sale(card, 10, transaction_id="OFF-9", timestamp=when, allowance=token),
    )
    assert beyond.status_code == 409 and beyond.json()["error"] == "allowance_refused"
    assert await _balance(client, card) == 0
    # A sale resent after it synced gets its answer again, allowance or not.
    again = await _post(
        client,
        "/v1/commit",
        _sale(card, 250, transaction_id="OFF-0", timestamp=when, allowance=token),
    )
    assert again.status_code == 200 and again.json() == synced[0].json()


async def test_a_forged_or_expired_allowance_is_refused(holding: OwnProgram) -> None:
    client, url, app = holding
    card, other = await _card(url, 1_000), await _card(url, 1_000)
    token = (
        await _post(client, "/v1/allowances", {"store_id": "msk-001", "card": card, "points": 300})
    ).json()["allowance"]
    payload, signature = token.split(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[3] = 900  # more points than were granted
    forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    secret = await app.state.services.secrets.secret("offline_allowance")
    expired = sign(
        secret, Allowance(raw[0], card, "msk-001", 300, datetime.now(UTC) - timedelta(seconds=1))
    )
    for i, (number, presented, error) in enumerate(
        (
            (card, f"{forged}.{signature}", "allowance_invalid"),
            (card, f"{payload}.{signature[:-2]}AA", "allowance_invalid"),
            (other, token, "allowance_invalid"),  # another card's
            (card, "not-a-token", "allowance_invalid"),
            (card, expired, "allowance_expired"),
        )
    ):
        refused = await _post(
            client, "/v1/commit", _sale(number, 100, transaction_id=f"F-{i}", allowance=presented)
        )
        assert refused.status_code == 422 and refused.json()["error"] == error, refused.text
    too_many = await _post(
        client, "/v1/allowances", {"store_id": "msk-001", "card": card, "points": 5_000}
    )
    assert too_many.status_code == 422 and too_many.json()["error"] == "allowance_too_large"
