"""The OpenAPI document: every request and response of the API has an example."""

from __future__ import annotations

from typing import Any

import httpx


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = media.get("schema", {})
    ref = schema.get("$ref")
    if ref is not None:
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return bool(schema.get("examples"))


async def test_every_request_and_response_has_an_example(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    api = {p: ops for p, ops in document["paths"].items() if p.startswith("/v1/")}
    assert len([p for p in api if p.startswith("/v1/admin/")]) >= 30
    missing = []
    for path, operations in api.items():
        for method, operation in operations.items():
            bodies = operation.get("requestBody", {}).get("content", {})
            missing += [
                f"{method} {path} request {m}"
                for m, media in bodies.items()
                if not _has_example(document, media)
            ]
            for status, response in operation["responses"].items():
                missing += [
                    f"{method} {path} {status} {m}"
                    for m, media in response.get("content", {}).items()
                    if not _has_example(document, media)
                ]
    assert missing == [], "\n".join(missing)
