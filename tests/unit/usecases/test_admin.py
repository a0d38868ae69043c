"""Back-office use cases over in-memory ports: the decisions they own, in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.domain.errors import InvalidInput
from service.usecases import admin_promos, admin_reports, admin_webhooks

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Subscriptions:
    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}

    async def create(self, url: str, events: list[str], secret: str, author: str) -> int:
        self.rows[len(self.rows) + 1] = {"url": url, "events": events, "created_by": author}
        return len(self.rows)

    async def subscriptions(self, subscription_id: int | None = None) -> list[dict[str, Any]]:
        if subscription_id is None:
            return list(self.rows.values())
        return [{"subscription_id": subscription_id, **self.rows[subscription_id]}]


async def test_a_webhook_to_a_private_address_is_refused_unless_allowed() -> None:
    store = Subscriptions()
    with pytest.raises(InvalidInput) as refused:
        await admin_webhooks.subscribe(
            store, "http://10.0.0.7/x", "10.0.0.7", ["accrual"], None, "it", allow_private=False
        )  # type: ignore[arg-type]
    assert refused.value.extra["fields"][0]["field"] == "url" and store.rows == {}
    made = await admin_webhooks.subscribe(
        store,
        "http://10.0.0.7/x",
        "10.0.0.7",  # type: ignore[arg-type]
        ["refund", "accrual", "refund"],
        None,
        "it",
        allow_private=True,
    )
    assert made["events"] == ["accrual", "refund"] and made["secret"].startswith("whsec_")


class Codes:
    def __init__(self) -> None:
        self.revoked: list[str] = []

    async def revoke_code(self, code: str, author: str) -> None:
        self.revoked.append(code)

    async def revoke_batch(self, batch_id: str, author: str) -> list[str]:
        return [f"C{i:05d}" for i in range(2500)]

    async def code(self, code: str) -> dict[str, Any]:
        return {"code": code, "revoked_at": NOW, "valid_from": None, "valid_to": None,
                "max_uses": 1, "uses": 0}  # fmt: skip


class Forgotten:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def forget(self, codes: Any) -> None:
        self.calls.append(list(codes))


async def test_revoked_codes_leave_the_tills_cache_too() -> None:
    store, cache = Codes(), Forgotten()
    row = await admin_promos.revoke_code(store, cache, "autumn-x", "it", NOW)  # type: ignore[arg-type]
    assert store.revoked == ["AUTUMN-X"] and cache.calls == [["AUTUMN-X"]]
    assert row["code"] == "AUTUMN-X" and row["state"] == "revoked"
    cache.calls.clear()
    await admin_promos.revoke_batch(store, cache, "b_1", "it")  # type: ignore[arg-type]
    assert [len(chunk) for chunk in cache.calls] == [1000, 1000, 500]


def test_a_report_period_defaults_to_the_last_30_days_and_must_run_forward() -> None:
    within = admin_reports.period(None, None, NOW)
    assert (within.since, within.until) == (NOW - timedelta(days=30), NOW)
    with pytest.raises(InvalidInput):
        admin_reports.period(NOW, NOW - timedelta(days=1), NOW)
