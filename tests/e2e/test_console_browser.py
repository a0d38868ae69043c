"""The console in a real browser (headless Chromium, Debian's package, driven by
Playwright; ``make browser-test``, CI too), in Russian and English, with every request
that would leave 127.0.0.1 aborted and recorded: sign in, a rule made with the form and
its field error, a dry run, publish and the rule applied by /v1/calculate, rollback, a
simulation and its chart, a card found by phone, a report downloaded; an analyst key
cannot edit. With ``LOYALTY_CONSOLE_SCREENSHOTS=<folder>`` it saves the main screens
there (docs/console.md shows them)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.domain.access import Role
from service.storage.postgres.keys import create_key
from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON_AT
from tests.conftest import ADMIN, POS
from tests.e2e.admin_helpers import card_number, phone
from tests.e2e.servers import Served, two_workers
from tests.e2e.test_docs_offline import CHROMIUM, LOCAL_HOSTS

SHOTS = os.environ.get("LOYALTY_CONSOLE_SCREENSHOTS")
HEADERS = ("receipt_id,timestamp,store_id,card,channel,redeem_points,sku,category,brand,"
           "quantity,unit_price")  # fmt: skip
# The screens docs/console.md shows (most in English, two in Russian).
SHOWN = frozenset({"programs-en", "editor-error-en", "editor-ru", "dry-run-en", "simulation-en",
                   "card-ru", "report-en", "calendar-en"})  # fmt: skip
TEXTS = {  # what each language shows, where the test looks for it
    "en": {"programs": "Programs", "saved": "Saved.", "month": "Month"},
    "ru": {"programs": "Программы", "saved": "Сохранено.", "month": "Месяц"},
}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (the dev extra has it)")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium (make browser-test does)")
    from playwright.async_api import async_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses root otherwise
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def console_keys(demo_database: str) -> dict[Role, str]:
    conn = await connect(demo_database)
    try:
        return {
            role: await create_key(conn, name=f"browser {role}", role=role)
            for role in (Role.MARKETING, Role.ANALYST)
        }
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def served(
    demo_database: str, clean_redis: str, console_keys: dict[Role, str]
) -> AsyncIterator[Served]:
    async with two_workers(demo_database, clean_redis) as server:
        yield server


class Offline:
    """A browser context that reaches 127.0.0.1 only, and what its pages tried otherwise."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.left: list[str] = []  # requests for another host (aborted)
        self.errors: list[str] = []  # script errors, refusals by the page's policy

    @classmethod
    async def open(cls, browser: Any, language: str = "en") -> Offline:
        offline = cls(await browser.new_context(
            viewport={"width": 1280, "height": 800}, accept_downloads=True,
            locale="ru-RU" if language == "ru" else "en-GB"))  # fmt: skip
        await offline.context.route("**/*", offline._local_only)
        return offline

    async def _local_only(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            self.left.append(route.request.url)
            await route.abort("internetdisconnected")

    async def page(self) -> Any:
        page = await self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", self._on_failure)
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        return page

    def _on_failure(self, request: Any) -> None:
        if request.failure == "csp":
            self.errors.append(f"refused by the policy: {request.url}")

    async def close(self) -> None:
        await self.context.close()
        assert self.left == [], self.left
        assert self.errors == [], self.errors


async def shot(page: Any, name: str) -> None:
    if SHOTS and name in SHOWN:  # Playwright makes the folder
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


async def sign_in(page: Any, url: str, key: str, language: str) -> None:
    await page.goto(f"{url}/console")
    await page.locator(f"#lang-{language}").click()
    await page.locator("input[name=key]").fill(key)
    await page.locator("form[action='/console/login'] button").click()
    await page.wait_for_url("**/console/programs")


async def current_version(api: httpx.AsyncClient) -> int:
    versions = (await api.get("/v1/admin/programs", headers=ADMIN)).json()["versions"]
    return int(next(v["version"] for v in versions if v["current"]))


async def discount_becomes(api: httpx.AsyncClient, category: str, wanted: int) -> None:
    """Both workers calculate a 1,000-rouble line of ``category`` with ``wanted`` off."""
    for _ in range(100):
        sale = {"store_id": "msk-001", "timestamp": datetime.now(UTC).isoformat(),
                "lines": [{"line_id": "1", "sku": "B-1", "category": category,
                           "quantity": "1", "unit_price": 100_000}]}  # fmt: skip
        answer = (await api.post("/v1/calculate", json=sale, headers=POS)).json()
        if answer["totals"]["discount"] == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(answer["totals"])


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "ru"])
async def test_the_main_flows_in_chromium_with_no_network(
    browser: Any, served: Served, console_keys: dict[Role, str], language: str
) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=20_000)
    texts, rule_id = TEXTS[language], f"browser-{language}"
    offline = await Offline.open(browser, language)
    page = await offline.page()
    async with httpx.AsyncClient(base_url=served.url) as api:
        previous = await current_version(api)
        await sign_in(page, served.url, console_keys[Role.MARKETING], language)
        await expect(page.locator("h1")).to_have_text(texts["programs"])
        await shot(page, f"programs-{language}")

        # A draft, a rule typed into the form: the API's refusal shows at the field.
        await page.locator("#new-draft").click()
        await page.wait_for_url("**/console/programs/*")
        draft = int(page.url.rsplit("/", 1)[1].partition("?")[0])
        form = page.locator("#rule-form")
        await form.locator("input[name=id]").fill(rule_id)
        await form.locator("input[name=name]").fill(f"Browser {language}: -25%")
        await form.locator("input[name=priority]").fill("90")
        await form.locator("select[name='effect.type']").select_option("percent")
        await form.locator("input[name='effect.percent']").fill("25.555")
        await form.locator("input[name='target.categories']").fill(rule_id)
        await page.locator("#save-rule").click()
        error = page.locator("[data-field='effect.percent'] .field-error")
        await expect(error).to_contain_text("2 decimal places")
        await page.locator("[data-field='effect.percent']").scroll_into_view_if_needed()
        await shot(page, f"editor-error-{language}")
        await form.locator("input[name='effect.percent']").fill("25")
        await page.locator("#save-rule").click()
        await expect(page.locator("#saved")).to_have_text(texts["saved"])
        await expect(page.locator("textarea[name=document]")).to_contain_text(f'"{rule_id}"')
        await shot(page, f"editor-{language}")

        # A dry run of a typed basket: the rule applied, the others say why not.
        await page.locator("#to-dry-run").click()
        friday_noon = FRIDAY_NOON_AT.strftime("%Y-%m-%dT%H:%M")
        await page.locator("input[name='timestamp']").fill(friday_noon)
        await page.locator("input[name='card']").fill("2000000000022")
        for name, value in (("sku", "B-1"), ("category", rule_id), ("quantity", "2"),
                            ("unit_price", "1000")):  # fmt: skip
            await page.locator(f"input[name='lines[0].{name}']").fill(value)
        await page.locator("#run").click()
        await expect(page.locator(f"tr.applied[data-rule='{rule_id}']")).to_be_visible()
        await expect(page.locator("tr.not-applied").first).to_be_visible()
        await page.locator("#result").scroll_into_view_if_needed()
        await shot(page, f"dry-run-{language}")

        # Publish: /v1/calculate applies the rule on both workers; roll back: it does not.
        await page.goto(f"{served.url}/console/programs/{draft}")
        await page.locator("#publish").click()
        await expect(page.locator("#done")).to_be_visible()
        await discount_becomes(api, rule_id, 25_000)
        await page.locator(f"tr[data-version='{previous}'] button[name=rollback]").click()
        await expect(page.locator("#done")).to_be_visible()
        await discount_becomes(api, rule_id, 0)
        await page.goto(f"{served.url}/console/calendar")
        await expect(page.locator("#timeline")).to_be_visible()
        await shot(page, f"calendar-{language}")

        # A what-if simulation of the draft and its charts.
        await page.goto(f"{served.url}/console/programs/{draft}/simulate")
        sold = FRIDAY_NOON_AT.isoformat()
        receipts = "\n".join([HEADERS] + [
            f"r{i},{sold},msk-001,2000000000022,offline,0,B-{i},{rule_id},,1,{100_000 + i}"
            for i in range(6)
        ])  # fmt: skip
        await page.locator("textarea[name=receipts]").fill(receipts)
        await page.locator("#start-simulation").click()
        await expect(page.locator("#job-status[data-status='done']")).to_be_visible()
        chart = page.locator("img[data-chart='cost-per-rule']")
        await expect(chart).to_be_visible()
        await page.wait_for_function(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
        await shot(page, f"simulation-{language}")

        # A card found by the phone as people type it.
        number, mobile = card_number(), phone()
        customer = await api.post("/v1/admin/customers", headers=ADMIN,
                                  json={"name": "Browser Customer", "phone": mobile})  # fmt: skip
        issued = await api.post("/v1/admin/cards", headers=ADMIN, json={
            "number": number, "customer_id": customer.json()["customer_id"]})  # fmt: skip
        assert issued.status_code == 201, issued.text
        await page.goto(f"{served.url}/console/cards")
        await page.locator("input[name=q]").fill(f"8 {mobile[2:5]} {mobile[5:8]}-{mobile[8:]}")
        await page.locator("#card-search button").click()
        await expect(page.locator("#card-number")).to_have_text(number)
        await shot(page, f"card-{language}")

        # A report with its chart, downloaded as CSV in the page's language.
        await page.goto(f"{served.url}/console/reports?report=liability")
        await expect(page.locator("#report-rows")).to_be_visible()
        await shot(page, f"report-{language}")
        async with page.expect_download() as download_info:
            await page.locator("#download-csv").click()
        download = await download_info.value
        saved = Path(await download.path())
        csv = await asyncio.to_thread(saved.read_text, encoding="utf-8-sig")
        assert csv.startswith(texts["month"]), csv[:200]
    await offline.close()


@pytest.mark.browser
async def test_an_analyst_key_cannot_edit(
    browser: Any, served: Served, console_keys: dict[Role, str]
) -> None:
    from playwright.async_api import expect

    offline = await Offline.open(browser)
    page = await offline.page()
    await sign_in(page, served.url, console_keys[Role.ANALYST], "en")
    await expect(page.locator("nav.menu a[href='/console/cards']")).to_have_count(0)
    await expect(page.locator("#new-draft")).to_have_count(0)
    await page.locator("#versions tr.current a").first.click()
    await expect(page.locator("#read-only")).to_be_visible()
    await expect(page.locator("#save-rule")).to_have_count(0)
    await expect(page.locator("#rule-form input[name=id]")).to_be_disabled()
    await expect(page.locator("textarea[name=document]")).to_have_attribute("readonly", "")
    version = page.url.rsplit("/", 1)[1]
    # Sent anyway (the cookie goes with it): the API refuses the analyst's key.
    refused = await page.request.post(
        f"{served.url}/console/programs/{version}/rules", form={"id": "x", "name": "x"}
    )
    assert refused.status == 403
    await offline.close()
