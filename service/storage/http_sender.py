"""Outgoing HTTP for webhooks (httpx)."""

from __future__ import annotations

import httpx


class HttpxSender:
    def __init__(self, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
