"""The marketing console (/console, SPEC §11) through HTTP, without a browser: sign-in
and its cookie, pages per role, the rule form with the API's error at the field, a dry
run, publish and rollback seen by /v1/calculate, a simulation and its chart, a card
found by phone, a report as CSV, both languages; no page names another host."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service import background
from service.console import forms
from service.console.web import KEY_COOKIE, LANGUAGE_COOKIE, POLICY
from service.domain.access import Role
from service.storage.postgres.keys import create_key
from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON_AT
from tests.conftest import ADMIN, ADMIN_KEY, POS, POS_KEY
from tests.e2e.admin_helpers import card_number, new_customer, phone
from tests.e2e.test_pos_api import receipt

PAGES = ("/console/programs", "/console/calendar", "/console/cards", "/console/reports",
         "/console/promo-codes", "/console/keys", "/console/analytics",
         "/console/analytics/pilot")  # fmt: skip
_ANY_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@pytest.fixture(scope="module")
async def keys(app: FastAPI, demo_database: str) -> AsyncIterator[dict[Role, str]]:
    conn = await connect(demo_database)
    try:
        made = {
            role: await create_key(conn, name=f"console {role}", role=role)
            for role in (Role.MARKETING, Role.ANALYST)
        }
    finally:
        await conn.close()
    await background.refresh_keys(app.state.services)
    yield {Role.ADMIN: ADMIN_KEY, Role.POS: POS_KEY, **made}


def browser(app: FastAPI, key: str | None = None, language: str = "en") -> httpx.AsyncClient:
    """A client as a browser: its own cookies (signed in with ``key``), no redirects."""
    cookies = {LANGUAGE_COOKIE: language, **({KEY_COOKIE: key} if key else {})}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://loyalty.test", cookies=cookies
    )


class _Fields(HTMLParser):
    """The page's references (src, href, action) and its field errors by field name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.errors: dict[str, str] = {}
        self._fields: list[str] = []
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action") and v]
        if "data-field" in found:
            self._fields.append(found["data-field"] or "")
        self._in_error = tag == "em" and "field-error" in (found.get("class") or "")

    def handle_data(self, data: str) -> None:
        if self._in_error and self._fields:
            self.errors[self._fields[-1]] = data.strip()
            self._in_error = False


def parsed(html: str) -> _Fields:
    parser = _Fields()
    parser.feed(html)
    return parser


async def test_the_console_is_not_in_the_api_document(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/console")]


async def test_sign_in_keeps_the_key_in_an_httponly_cookie(
    app: FastAPI, keys: dict[Role, str]
) -> None:
    async with browser(app) as anonymous:
        assert (await anonymous.get("/console/programs")).headers["location"] == "/console/login"
        page = await anonymous.get("/console/login")
        assert page.status_code == 200 and page.headers["content-security-policy"] == POLICY
        wrong = await anonymous.post("/console/login", data={"key": "lk_nonsense"})
        assert wrong.status_code == 401 and "The key is not accepted." in wrong.text
        till = await anonymous.post("/console/login", data={"key": POS_KEY})
        assert till.status_code == 403  # a POS key is for the till, not the console
        signed = await anonymous.post("/console/login", data={"key": keys[Role.MARKETING]})
        assert signed.status_code == 303 and signed.headers["location"] == "/console"
        cookie = signed.headers["set-cookie"]
        assert f"{KEY_COOKIE}=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie and "Path=/console" in cookie
        assert (await anonymous.get("/console/programs")).status_code == 200
        out = await anonymous.post("/console/logout")
        assert out.headers["location"] == "/console/login"
        assert (await anonymous.get("/console/programs")).status_code == 303


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_every_page_renders_with_only_the_services_own_files(
    app: FastAPI, language: str
) -> None:
    async with browser(app, ADMIN_KEY, language) as admin:
        current = await _current(admin)
        pages = (*PAGES, f"/console/programs/{current}", f"/console/programs/{current}/dry-run",
                 f"/console/programs/{current}/simulate", "/console/reports?report=promotions",
                 f"/console/programs/diff?a={current}&b={current}")  # fmt: skip
        for path in pages:
            page = await admin.get(path)
            assert page.status_code == 200, (path, page.text[:500])
            assert page.headers["content-security-policy"] == POLICY
            assert _ANY_URL.findall(page.text) == [], f"{path} names another host"
            for url in parsed(page.text).urls:
                assert url.startswith(("/console", "?")), (path, url)
                if url.startswith("/console/static/"):
                    assert (await admin.get(url)).status_code == 200, url
        calendar = (await admin.get("/console/calendar")).text
        assert 'id="timeline"' in calendar and "autumn10" in calendar  # a dated campaign
        programs = (await admin.get("/console/programs")).text
        assert ("Программы" if language == "ru" else "Programs") in programs
        assert f'lang="{language}"' in programs


async def _current(client: httpx.AsyncClient) -> int:
    versions = (await client.get("/v1/admin/programs", headers=ADMIN)).json()["versions"]
    return int(next(v["version"] for v in versions if v["current"]))


def _rule_form(**changes: str) -> dict[str, Any]:
    form: dict[str, Any] = {
        "original_id": "", "id": "console-socks", "name": "Console: socks -30%",
        "priority": "90", "stacking": "additive", "active": "on", "effect.type": "percent",
        "effect.percent": "30", "target.categories": "console-socks",
    }  # fmt: skip
    return {**form, **changes}


async def test_a_rule_made_with_the_form_dry_run_published_and_rolled_back(
    app: FastAPI, client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    previous = await _current(client)
    socks = receipt(lines=[{"line_id": "1", "sku": "SOCK-1", "category": "console-socks",
                            "quantity": "2", "unit_price": 50_000}])  # fmt: skip
    del socks["card"]  # no card: no tier discount beside the rule
    async with browser(app, keys[Role.MARKETING], "ru") as marketing:
        created = await marketing.post("/console/programs", data={"template": ""})
        assert created.status_code == 303, created.text
        draft = int(re.findall(r"/programs/(\d+)", created.headers["location"])[0])

        bad = await marketing.post(f"/console/programs/{draft}/rules",
                                   data=_rule_form(**{"effect.percent": "тридцать"}))  # fmt: skip
        assert bad.status_code == 422
        assert parsed(bad.text).errors["effect.percent"] == "a percentage must be a decimal number"
        assert 'value="тридцать"' in bad.text  # what was typed stays to be corrected

        needs = await marketing.post(f"/console/programs/{draft}/rules", data=_rule_form(
            **{"conditions.requires[0].categories": "suits",
               "conditions.requires[0].min_amount": "-5"}))  # fmt: skip
        assert needs.status_code == 422
        assert parsed(needs.text).errors["conditions.requires[0].min_amount"]
        saved = await marketing.post(f"/console/programs/{draft}/rules", data=_rule_form())
        assert saved.status_code == 303 and "rule=console-socks" in saved.headers["location"]
        editor = await marketing.get(saved.headers["location"])
        assert '"console-socks"' in editor.text  # the JSON beside the form has it
        diff = await marketing.get("/console/programs/diff", params={"a": previous, "b": draft})
        assert '<code class="added">console-socks</code>' in diff.text

        basket = {"store_id": "msk-001",
                  "timestamp": FRIDAY_NOON_AT.strftime("%Y-%m-%dT%H:%M"), "card": "2000000000022",
                  "lines[0].sku": "SOCK-1", "lines[0].category": "console-socks",
                  "lines[0].quantity": "2", "lines[0].unit_price": "500"}  # fmt: skip
        dry = await marketing.post(f"/console/programs/{draft}/dry-run", data=basket)
        assert dry.status_code == 200, dry.text
        assert 'data-rule="console-socks"' in dry.text and "300,00" in dry.text  # 30% of 1,000
        # Each rule that did not apply says why, in Russian.
        assert re.search(r'class="not-applied"[^\n]*<td>[А-ЯЁ][^<]+</td></tr>', dry.text)
        wrong = await marketing.post(f"/console/programs/{draft}/dry-run",
                                     data={**basket, "lines[0].quantity": "-1"})  # fmt: skip
        assert wrong.status_code == 422 and "lines[0].quantity" in parsed(wrong.text).errors

        await _until_discount(client, socks, 0)
        published = await marketing.post(f"/console/programs/{draft}/publish")
        assert published.status_code == 303, published.text
        try:
            await _until_discount(client, socks, 30_000)
        finally:
            back = await marketing.post(f"/console/programs/{previous}/rollback")
            assert back.status_code == 303, back.text
        await _until_discount(client, socks, 0)
        listing = await marketing.get("/console/programs?done=rollback")
        assert "Откат выполнен." in listing.text


async def _until_discount(client: httpx.AsyncClient, sale: dict[str, Any], wanted: int) -> None:
    for _ in range(60):
        # A receipt is calculated under the version in force at its time (SPEC §3.3): now.
        sale["timestamp"] = datetime.now(UTC).isoformat()
        answer = await client.post("/v1/calculate", json=sale, headers=POS)
        if answer.json()["totals"]["discount"] == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(answer.json()["totals"])


async def test_every_field_the_rule_form_reads_is_on_the_page(app: FastAPI) -> None:
    """A field the mapping reads but the page lacks would drop that setting on a save."""
    async with browser(app, ADMIN_KEY) as admin:
        editor = await admin.get(f"/console/programs/{await _current(admin)}")
    rendered = set(re.findall(r'name="([^"]+)"', editor.text))
    assert forms.rule_field_names() <= rendered, forms.rule_field_names() - rendered
    points = {f"points.{name}" for name, _, _ in forms.POINT_SETTINGS}
    assert points <= rendered, points - rendered


async def test_an_analyst_reads_and_never_edits(app: FastAPI, keys: dict[Role, str]) -> None:
    async with browser(app, keys[Role.ANALYST]) as analyst:
        current = await _current_of(analyst)
        editor = await analyst.get(f"/console/programs/{current}")
        assert editor.status_code == 200 and 'id="read-only"' in editor.text
        assert 'id="save-rule"' not in editor.text and 'id="publish"' not in editor.text
        menu = (await analyst.get("/console/programs")).text
        assert "/console/reports" in menu and "/console/cards" not in menu
        assert "/console/keys" not in menu
        refused = await analyst.post(f"/console/programs/{current}/rules", data=_rule_form())
        assert refused.status_code == 403 and "forbidden" in refused.text
        assert (await analyst.post(f"/console/programs/{current}/publish")).status_code == 403
        assert (await analyst.post("/console/programs", data={})).status_code == 403
        assert (await analyst.get("/console/cards")).status_code == 403
        assert (await analyst.get("/console/keys")).status_code == 403
        assert (await analyst.get("/console/reports")).status_code == 200


async def _current_of(client: httpx.AsyncClient) -> int:
    listing = (await client.get("/console/programs")).text
    return int(re.findall(r'data-version="(\d+)" class="current"', listing)[0])


async def test_a_card_found_by_phone_with_its_balance_and_history(
    app: FastAPI, client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    customer = await new_customer(client)
    number = card_number()
    issued = await client.post(
        "/v1/admin/cards",
        headers=ADMIN,
        json={"number": number, "customer_id": customer["customer_id"]},
    )
    assert issued.status_code == 201, issued.text
    phone = customer["phone"]  # +7955..., typed as people do: 8 955 123-45-67
    local = f"8 {phone[2:5]} {phone[5:8]}-{phone[8:10]}-{phone[10:]}"
    async with browser(app, keys[Role.MARKETING]) as marketing:
        found = await marketing.get("/console/cards", params={"q": local})
        assert found.headers["location"] == f"/console/cards/{number}"
        adjusted = await marketing.post(
            f"/console/cards/{number}/adjust", data={"points": "250", "reason": "console test"}
        )
        assert adjusted.status_code == 303, adjusted.text
        refused = await marketing.post(
            f"/console/cards/{number}/adjust", data={"points": "0", "reason": "nothing"}
        )
        assert refused.status_code == 422 and parsed(refused.text).errors.get("points")
        card = await marketing.get(f"/console/cards/{number}")
        balance = (await client.get(f"/v1/admin/cards/{number}", headers=ADMIN)).json()["balance"]
        assert f'<span id="balance">{balance}</span>' in card.text and "console test" in card.text
        by_mail = await marketing.get("/console/cards", params={"q": "nobody@example.com"})
        assert "Nothing found." in by_mail.text


@pytest.mark.parametrize(("language", "header"), [("en", "Month"), ("ru", "Месяц")])
async def test_a_report_with_its_chart_and_csv(
    app: FastAPI, keys: dict[Role, str], language: str, header: str
) -> None:
    async with browser(app, keys[Role.ANALYST], language) as analyst:
        page = await analyst.get("/console/reports", params={"report": "liability"})
        assert page.status_code == 200 and 'href="/console/reports/liability.csv"' in page.text
        csv = await analyst.get("/console/reports/liability.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]
        assert csv.text.lstrip("\ufeff").startswith(header)


async def test_analytics_with_its_chart_csv_and_a_pilot_report(
    app: FastAPI, client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    day = datetime.now(UTC).date()
    for days_ago, store in ((3, "msk-001"), (3, "ekb-001"), (1, "msk-001"), (1, "ekb-001")):
        at = datetime.combine(day, time(12), UTC) - timedelta(days=days_ago)
        sale = receipt(transaction_id=f"CONSOLE-AN-{store}-{days_ago}-{at.timestamp()}",
                       timestamp=at.isoformat(), store_id=store)  # fmt: skip
        del sale["card"]  # the demo card's spend is other tests' business
        assert (await client.post("/v1/commit", json=sale, headers=POS)).status_code == 200
    period = {"since": (day - timedelta(days=5)).isoformat(), "until": day.isoformat()}
    async with browser(app, keys[Role.ANALYST], "ru") as analyst:
        page = await analyst.get("/console/analytics", params={**period, "by": "store"})
        assert page.status_code == 200, page.text[:500]
        assert 'id="figures-chart"' in page.text and "msk-001" in page.text
        assert "Средний чек с картой, руб." in page.text  # the column's header in Russian
        csv = await analyst.get("/console/analytics.csv", params={**period, "by": "store"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        bad = await analyst.get("/console/analytics", params={"since": "someday"})
        assert bad.status_code == 422 and 'id="errors"' in bad.text
        asked = {**period, "pilot": "msk-001", "control": "ekb-001",
                 "starts": (day - timedelta(days=2)).isoformat()}  # fmt: skip
        pilot = await analyst.get("/console/analytics/pilot", params=asked)
        assert pilot.status_code == 200 and 'id="pilot-report"' in pilot.text, pilot.text[:500]
        chart = await analyst.get("/console/analytics/pilot.svg", params=asked)
        assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
        unknown = await analyst.get("/console/analytics/pilot", params={**asked, "pilot": "x"})
        assert unknown.status_code == 422 and 'id="errors"' in unknown.text


async def test_a_simulation_with_its_charts(app: FastAPI, keys: dict[Role, str]) -> None:
    sold = FRIDAY_NOON_AT.isoformat()
    rows = "\n".join(
        f"r{i},{sold},msk-001,2000000000022,offline,0,TEE-{i},tops,,1,{100_000 + i}"
        for i in range(5)
    )
    header = "receipt_id,timestamp,store_id,card,channel,redeem_points,sku,category,brand," \
        "quantity,unit_price\n"  # fmt: skip
    async with browser(app, keys[Role.MARKETING]) as marketing:
        current = await _current_of(marketing)
        assumptions = {"spending": "none", "breakage_percent": "25",
                       "balances_as_of": FRIDAY_NOON_AT.date().isoformat()}  # fmt: skip
        started = await marketing.post(f"/console/programs/{current}/simulate",
                                       data={"receipts": header + rows, **assumptions})  # fmt: skip
        assert started.status_code == 303, started.text
        job = started.headers["location"]
        for _ in range(200):
            page = await marketing.get(job)
            if 'data-status="running"' not in page.text:
                break
            assert page.headers["refresh"] == "1"
            await asyncio.sleep(0.05)
        assert 'data-status="done"' in page.text, page.text
        assert re.search(
            r"<td title=\"breakage_rate_bp\">[^<]+</td><td>2500</td>", page.text
        )  # as assumed
        bad = await marketing.post(
            f"/console/programs/{current}/simulate",
            data={"receipts": header + rows, "redeem_share": "2"},
        )
        assert bad.status_code == 422 and "redeem_share" in bad.text
        charts = re.findall(r'src="(/console/simulations/\d+/charts/[a-z-]+\.svg)"', page.text)
        assert len(charts) == 4
        chart = await marketing.get(charts[0])
        assert chart.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in chart.content


async def test_a_dry_run_of_a_recent_real_receipt(
    app: FastAPI, client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    sale = receipt(transaction_id=f"CONSOLE-{datetime.now(UTC).timestamp()}",
                   timestamp=datetime.now(UTC).isoformat(),
                   lines=[{"line_id": "1", "sku": "JEANS-9", "category": "jeans",
                           "quantity": "2.5", "unit_price": 199_950}])  # fmt: skip
    del sale["card"]  # the demo card's spend is other tests' business
    committed = await client.post("/v1/commit", json=sale, headers=POS)
    assert committed.status_code == 200, committed.text
    recent = await client.get("/v1/admin/receipts/recent", params={"limit": 5}, headers=ADMIN)
    mine = next(
        r for r in recent.json()["receipts"] if r["transaction_id"] == sale["transaction_id"]
    )
    assert mine["lines"][0] | {"quantity": "2.5", "unit_price": 199_950} == mine["lines"][0]
    async with browser(app, keys[Role.ANALYST]) as analyst:
        version = await _current_of(analyst)
        key = f"msk-001|{sale['transaction_id']}"
        listing = await analyst.get(f"/console/programs/{version}/dry-run")
        assert f'value="{key}"' in listing.text
        picked = await analyst.get(f"/console/programs/{version}/dry-run", params={"receipt": key})
        assert 'name="lines[0].sku" value="JEANS-9"' in picked.text
        assert 'name="lines[0].unit_price" value="1999.50"' in picked.text


async def test_a_dry_run_time_is_typed_in_the_stores_own_zone(
    app: FastAPI, keys: dict[Role, str]
) -> None:
    """Happy hours run 17:00-19:00 in the store's local time: 18:00 typed for the
    Yekaterinburg store (UTC+5) is inside them there (in Moscow time it would be 20:00)."""
    async with browser(app, keys[Role.ANALYST]) as analyst:
        version = await _current_of(analyst)
        evening = FRIDAY_NOON_AT.date().isoformat() + "T18:00"
        basket = {"store_id": "ekb-001", "timestamp": evening, "lines[0].sku": "MOJITO",
                  "lines[0].category": "drinks", "lines[0].unit_price": "450"}  # fmt: skip
        dry = await analyst.post(f"/console/programs/{version}/dry-run", data=basket)
        assert dry.status_code == 200, dry.text[:500]
        assert 'class="applied" data-rule="happy-hours"' in dry.text


async def test_times_that_are_not_times_are_refused_at_their_field(
    app: FastAPI, keys: dict[Role, str]
) -> None:
    async with browser(app, keys[Role.MARKETING]) as marketing:
        version = await _current_of(marketing)
        dry = await marketing.post(
            f"/console/programs/{version}/dry-run",
            data={
                "store_id": "msk-001",
                "timestamp": "tomorrow",
                "lines[0].sku": "X",
                "lines[0].unit_price": "1",
            },
        )
        assert dry.status_code == 422 and "timestamp" in parsed(dry.text).errors
        simulated = await marketing.post(
            f"/console/programs/{version}/simulate",
            data={"since": "someday", "until": "2026-01-01"},
        )
        assert simulated.status_code == 422
        scheduled = await marketing.post(
            f"/console/programs/{version}/schedule", data={"publish_at": "soon"}
        )
        assert scheduled.status_code == 422  # the API's refusal, on the error page


async def test_a_promo_code_batch_made_downloaded_and_revoked(
    app: FastAPI, keys: dict[Role, str]
) -> None:
    async with browser(app, keys[Role.MARKETING], "ru") as marketing:
        page = await marketing.get("/console/promo-codes")
        assert page.status_code == 200 and 'value="autumn10"' in page.text
        refused = await marketing.post(
            "/console/promo-codes", data={"count": "0", "rule_ids": "autumn10"}
        )
        assert refused.status_code == 422 and parsed(refused.text).errors.get("count")
        made = await marketing.post(
            "/console/promo-codes",
            data={"count": "3", "prefix": "CON-", "rule_ids": "autumn10", "single_use": "on"},
        )
        assert made.status_code == 303, made.text
        batch = await marketing.get(made.headers["location"])
        batch_id = re.findall(r'id="batch" data-batch="(b_[0-9a-f]+)"', batch.text)[0]
        listed = re.search(r'id="batches".*?</section>', batch.text, re.S)
        assert listed and f'data-batch="{batch_id}"' in listed.group(0)  # the newest listed
        csv = await marketing.get(f"/console/promo-codes/batches/{batch_id}.csv")
        assert csv.status_code == 200 and csv.text.count("\nCON-") == 3
        revoked = await marketing.post(f"/console/promo-codes/batches/{batch_id}/revoke")
        assert revoked.status_code == 303
        again = await marketing.get(revoked.headers["location"])
        assert "отозвана" in again.text
    async with browser(app, keys[Role.ANALYST]) as analyst:
        assert (await analyst.get("/console/promo-codes")).status_code == 403


async def test_an_admin_makes_a_key_shown_once_and_revokes_it(app: FastAPI) -> None:
    async with browser(app, ADMIN_KEY) as admin:
        made = await admin.post("/console/keys", data={"name": "console made", "role": "analyst"})
        assert made.status_code == 201
        key = re.findall(r'<code id="new-key">([^<]+)</code>', made.text)[0]
        assert key not in (await admin.get("/console/keys")).text  # never shown again
        await background.refresh_keys(app.state.services)
        async with browser(app) as newcomer:
            signed = await newcomer.post("/console/login", data={"key": key})
            assert signed.status_code == 303
            key_id = re.findall(r'data-key="([0-9a-f]+)"><td>console made<', made.text)[0]
            assert (await admin.post(f"/console/keys/{key_id}/revoke")).status_code == 303
            await background.refresh_keys(app.state.services)
            assert (await newcomer.get("/console/programs")).status_code == 303  # to sign-in
        refused = await admin.post("/console/keys", data={"name": "", "role": "analyst"})
        assert refused.status_code == 422 and parsed(refused.text).errors.get("name")


async def test_an_import_checked_then_done_with_the_refused_rows_by_line(
    app: FastAPI, keys: dict[Role, str]
) -> None:
    good = phone()
    rows = f"Телефон;ФИО\n{good};Анна Импорт\nне телефон;Борис\n".encode("cp1251")
    async with browser(app, ADMIN_KEY, "ru") as admin:
        files = {"file": ("clients.csv", rows, "text/csv")}
        form = {"kind": "customers", "columns": "Телефон=phone;ФИО=name", "action": "check"}
        checked = await admin.post("/console/import", data=form, files=files)
        assert checked.status_code == 200, checked.text
        assert 'data-dry-run="true"' in checked.text
        assert re.search(r"<tr><td>3</td><td>[^<]*phone", checked.text)  # line 3 refused
        assert '<b id="imported">1</b>' in checked.text
        content = re.findall(r'name="content" value="([^"]+)"', checked.text)[0]
        done = await admin.post(
            "/console/import", data={**form, "action": "import", "content": content}
        )
        assert done.status_code == 200 and 'data-dry-run="false"' in done.text
        found = (await admin.get("/v1/admin/customers", params={"phone": good},
                                 headers=ADMIN)).json()  # fmt: skip
        assert found["customers"][0]["name"] == "Анна Импорт"
    # Marketing may not import (SPEC §3.1): the menu leaves it out, the page refuses.
    async with browser(app, keys[Role.MARKETING]) as marketing:
        assert "/console/import" not in (await marketing.get("/console/programs")).text
        assert (await marketing.get("/console/import")).status_code == 403


async def test_the_tiers_form_with_its_field_error(app: FastAPI, keys: dict[Role, str]) -> None:
    async with browser(app, keys[Role.MARKETING]) as marketing:
        created = await marketing.post("/console/programs", data={"template": "tiers"})
        version = int(re.findall(r"/programs/(\d+)", created.headers["location"])[0])
        editor = await marketing.get(f"/console/programs/{version}")
        assert 'name="tiers.levels[2].code" value="gold"' in editor.text
        form = {
            "tiers.window_days": "365",
            "tiers.levels[0].code": "base",
            "tiers.levels[0].name": "Base",
            "tiers.levels[0].threshold": "0",
            "tiers.levels[1].code": "vip",
            "tiers.levels[1].name": "VIP",
            "tiers.levels[1].threshold": "20000",
            "tiers.levels[1].accrual_percent": "x",
        }
        bad = await marketing.post(f"/console/programs/{version}/tiers", data=form)
        assert bad.status_code == 422
        assert parsed(bad.text).errors["tiers.levels[1].accrual_percent"]
        form["tiers.levels[1].accrual_percent"] = "7"
        saved = await marketing.post(f"/console/programs/{version}/tiers", data=form)
        assert saved.status_code == 303, saved.text
        tiers = (await marketing.get(f"/v1/admin/programs/{version}", headers=ADMIN)).json()
        assert [t["code"] for t in tiers["document"]["tiers"]["levels"]] == ["base", "vip"]
        assert tiers["document"]["tiers"]["levels"][1]["threshold"] == 2_000_000
        # A group that a best_of rule names cannot go: the API says so beside the form.
        editor = await marketing.get(f"/console/programs/{version}")
        assert 'name="groups[0].id" value="personal"' in editor.text
        kept = await marketing.post(f"/console/programs/{version}/groups",
                                    data={"groups[0].id": "other"})  # fmt: skip
        assert kept.status_code == 422 and 'id="errors"' in kept.text
        # The points settings: the API's refusal at the field, roubles kept in kopecks.
        points = {"points.point_value": "1", "points.max_share_percent": "150",
                  "points.fiscal_mode": "tender"}  # fmt: skip
        bad = await marketing.post(f"/console/programs/{version}/points", data=points)
        assert bad.status_code == 422 and parsed(bad.text).errors["points.max_share_percent"]
        points["points.max_share_percent"] = "30"
        saved = await marketing.post(f"/console/programs/{version}/points", data=points)
        assert saved.status_code == 303, saved.text
        kept = (await marketing.get(f"/v1/admin/programs/{version}", headers=ADMIN)).json()
        assert kept["document"]["points"] == {"point_value": 100, "max_share_percent": "30",
                                              "fiscal_mode": "tender"}  # fmt: skip
        # Wallets, the birthday notice and holidays on the same form.
        more = {**points, "wallets.max_balance": "5000", "wallets.earn_points": "false",
                "events.birthday_days_ahead": "99", "holidays": "2026-03-08"}  # fmt: skip
        bad = await marketing.post(f"/console/programs/{version}/points", data=more)
        assert bad.status_code == 422 and parsed(bad.text).errors["events.birthday_days_ahead"]
        more["events.birthday_days_ahead"] = "3"
        saved = await marketing.post(f"/console/programs/{version}/points", data=more)
        assert saved.status_code == 303, saved.text
        kept = (await marketing.get(f"/v1/admin/programs/{version}", headers=ADMIN)).json()
        assert kept["document"]["wallets"] == {"max_balance": 500_000, "earn_points": False}
        assert kept["document"]["events"] == {"birthday_days_ahead": 3}
        assert kept["document"]["holidays"] == ["2026-03-08"]
        # Declared promo codes: an unknown rule is refused at the code's field.
        codes = await marketing.post(f"/console/programs/{version}/codes", data={
            "promo_codes[0].code": "CONSOLE5", "promo_codes[0].rules": "nowhere"})  # fmt: skip
        assert codes.status_code == 422
        assert "nowhere" in parsed(codes.text).errors["promo_codes[0].rules"]
        codes = await marketing.post(f"/console/programs/{version}/codes", data={
            "promo_codes[0].code": "CONSOLE5", "promo_codes[0].rules": "autumn10",
            "promo_codes[0].single_use": "on"})  # fmt: skip
        assert codes.status_code == 303, codes.text
        document = (await marketing.get(f"/v1/admin/programs/{version}", headers=ADMIN)).json()
        assert document["document"]["promo_codes"] == [
            {"code": "CONSOLE5", "rules": ["autumn10"], "single_use": True}
        ]
        assert (await marketing.post(f"/console/programs/{version}/delete")).status_code == 303
