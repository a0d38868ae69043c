"""The console speaks to the service's own API, in process: each page's calls go through
the app as an HTTP client's would (httpx's ASGI transport, no socket), with the signed-in
key and the page's language. So the console shows what the API decides, its roles, its
validation and its errors, and holds no business rule of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.types import ASGIApp

_BASE = "http://console.internal"  # never resolved: the transport calls the app itself


@dataclass(frozen=True, slots=True)
class Answer:
    """An API answer: its status, its JSON body (or None), its raw bytes and type."""

    status: int
    body: Any
    content: bytes = b""
    media_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def error(self) -> str:
        return str(self.body.get("error", "")) if isinstance(self.body, dict) else ""

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", "")) if isinstance(self.body, dict) else ""

    @property
    def fields(self) -> list[dict[str, str]]:
        found = self.body.get("fields", []) if isinstance(self.body, dict) else []
        return list(found)


class Api:
    """The API as the signed-in key sees it."""

    def __init__(self, app: ASGIApp, key: str, language: str) -> None:
        self._app = app
        self._headers = {"Authorization": f"Bearer {key}", "Accept-Language": language}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Answer:
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        transport = httpx.ASGITransport(app=self._app)
        async with httpx.AsyncClient(transport=transport, base_url=_BASE) as client:
            response = await client.request(
                method, path, json=json, params=params, content=content, headers=headers
            )
        media_type = response.headers.get("content-type", "")
        body = response.json() if media_type.startswith("application/json") else None
        kept = {k: v for k, v in response.headers.items() if k == "content-disposition"}
        return Answer(response.status_code, body, response.content, media_type, kept)

    async def get(self, path: str, **params: Any) -> Answer:
        wanted = {k: v for k, v in params.items() if v not in (None, "")}
        return await self.call("GET", path, params=wanted)

    async def post(self, path: str, json: Any = None, **params: Any) -> Answer:
        return await self.call("POST", path, json=json, params=params or None)

    async def put(self, path: str, json: Any) -> Answer:
        return await self.call("PUT", path, json=json)
