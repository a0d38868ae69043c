"""Outgoing HTTP for webhooks (httpx), to public addresses only unless allowed."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx

from service.domain.addresses import is_private_literal, is_public_address


class PrivateTarget(httpx.TransportError):
    """The target resolves to an address webhooks may not reach: a failed attempt."""


class HttpxSender:
    def __init__(self, timeout_s: float, *, allow_private: bool = False) -> None:
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._allow_private = allow_private

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if not self._allow_private:
            await _refuse_private(url)
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


async def _refuse_private(url: str) -> None:
    """Resolve the target's host and refuse it if any of its addresses is not public (a
    name may have been pointed at a private address after the subscription was made)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_private_literal(host):
        raise PrivateTarget(f"{host} is not a public address")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    private = [info[4][0] for info in infos if not is_public_address(str(info[4][0]))]
    if private:
        raise PrivateTarget(f"{host} resolves to {private[0]}, not a public address")
