"""/docs and /redoc work with no network beyond the service: every asset their pages load
is served by the service, and nothing in them names another host. The browser test
(``make browser-test``) renders both pages in headless Chromium with every request that
leaves 127.0.0.1 aborted."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from service.api.docs import SAME_ORIGIN_ONLY
from tests.e2e.servers import Served, two_workers

PAGES = ("/docs", "/redoc")
CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
_ANY_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""")
_QUOTED_PATH = re.compile(r"""['"](/[^'"\s]*)['"]""")


class _References(HTMLParser):
    """What a page makes the browser fetch: src, href and ReDoc's spec-url attributes,
    and the paths quoted in its inline scripts (Swagger UI's document and OAuth2 page)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += _QUOTED_PATH.findall(data)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.urls


async def _assert_served(client: httpx.AsyncClient, url: str) -> None:
    """``url`` is a path of the service and answers 200, and so does every file a
    stylesheet at it names (fonts, images); data: URIs need nothing."""
    assert url.startswith("/") and not url.startswith("//"), f"{url} is not the service's"
    response = await client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    assert response.content, f"{url} is empty"
    if url.endswith(".css"):
        for inner in _CSS_URL.findall(response.text):
            if not inner.startswith("data:"):
                await _assert_served(client, urlsplit(urljoin(url, inner)).path)


@pytest.mark.parametrize("page", PAGES)
async def test_the_page_and_everything_it_loads_come_from_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == SAME_ORIGIN_ONLY
    assert _ANY_URL.findall(response.text) == [], "the page names another host"
    urls = _references(response.text)
    assert "/openapi.json" in urls
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        await _assert_served(client, url)


async def test_swagger_ui_sends_the_document_to_no_validator(client: httpx.AsyncClient) -> None:
    """Left on, Swagger UI shows a badge fetched from validator.swagger.io with the
    document's URL for any host that is not localhost."""
    assert '"validatorUrl": null' in (await client.get("/docs")).text


# The browser check: make browser-test (installs Debian's chromium) runs it; CI too.


@pytest.fixture(scope="module")
def chromium() -> Path:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (the dev extra has it)")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium (make browser-test does)")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses root otherwise
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=args)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def docs_server(demo_database: str, clean_redis: str) -> AsyncIterator[Served]:
    async with two_workers(demo_database, clean_redis) as served:
        yield served


@pytest.mark.browser
async def test_docs_and_redoc_render_in_chromium_with_no_network(
    browser: Any, docs_server: Served
) -> None:
    """Every request that would leave 127.0.0.1 is aborted, and none is even tried: the
    pages' Content-Security-Policy refuses ReDoc's logo (cdn.redoc.ly) before it is sent,
    and nothing else fails."""
    from playwright.async_api import expect

    left: list[str] = []  # requests that reached the network for another host
    refused: list[str] = []  # requests the page's policy refused, never sent
    failed: list[str] = []

    async def local_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            left.append(route.request.url)
            await route.abort("internetdisconnected")

    def on_failure(request: Any) -> None:
        (refused if request.failure == "csp" else failed).append(request.url)

    context = await browser.new_context()
    await context.route("**/*", local_only)
    page = await context.new_page()
    page.on("requestfailed", on_failure)
    page.on("pageerror", lambda error: failed.append(f"page error: {error}"))

    # Each worker builds the OpenAPI document on its first request for it, and ReDoc then
    # lays out 90-odd operations: past the default 5 s on a loaded CI (a run at 17:43 UTC
    # had the menu's tags but no operation yet). What is checked here is that the pages
    # render offline, not how fast.
    expect.set_options(timeout=30_000)
    await page.goto(f"{docs_server.url}/docs")
    await expect(page.locator(".opblock").nth(10)).to_be_attached()  # more than 10 operations
    calculate = page.locator(".opblock-summary-path[data-path='/v1/calculate']")
    await expect(calculate.first).to_be_visible()

    await page.goto(f"{docs_server.url}/redoc")
    operations = page.locator(".menu-content li[data-item-id*='/operation/']")
    await expect(operations.nth(10)).to_be_attached()  # under tags, folded but for the first
    await expect(page.get_by_role("menuitem", name="pos", exact=True)).to_be_visible()
    await expect(page.get_by_text("/v1/calculate", exact=True).first).to_be_visible()
    await context.close()
    assert left == [], left
    assert failed == [], failed
    assert not [url for url in refused if urlsplit(url).hostname in LOCAL_HOSTS], refused
