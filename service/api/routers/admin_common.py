"""What every back office router shares: the error table for OpenAPI, authorship, ids."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Header, Path, Query

from service.api.schemas import error_responses
from service.domain.access import Principal
from service.usecases.ports import IdempotentRequest

PREFIX = "/v1/admin"
MAX_INT4 = 2**31 - 1

ERRORS = error_responses(
    {
        403: "not an admin key",
        404: "no such object",
        409: "contradicts the recorded state",
        422: "malformed input; `fields` names each field",
    }
)

VersionPath = Annotated[int, Path(ge=1, le=MAX_INT4, description="program version")]
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="cursor of the next page")]
Limit = Annotated[int, Query(ge=1, le=1000)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="a key of the caller's choosing (e.g. a UUID): a retry with the same key"
        " and the same request gets the first answer and moves nothing again; the same key"
        " with another request is 409 idempotency_conflict",
    ),
]


def idempotent_request(
    principal: Principal, key: str, operation: str, asked: dict[str, Any]
) -> IdempotentRequest:
    """The request under its ``Idempotency-Key``, scoped by the API key that sent it."""
    digest = hashlib.sha256(orjson.dumps(asked, option=orjson.OPT_SORT_KEYS)).digest()
    return IdempotentRequest(principal.key_id, key, operation, digest)


def author(principal: Principal) -> str:
    """Who did it, as the audit log and the ledger record it: the key's name and id."""
    return f"{principal.name} ({principal.key_id})"


def next_cursor(rows: list[dict[str, Any]], key: str, limit: int) -> Any:
    return rows[-1][key] if len(rows) == limit else None


# A chart answered as PNG or SVG (``format``), declared for the OpenAPI document.
IMAGE_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"},
                          "example": "(the PNG image's bytes)"},
            "image/svg+xml": {"schema": {"type": "string"},
                              "example": '<svg xmlns="http://www.w3.org/2000/svg">...</svg>'},
        },
        "description": "the chart",
    }
}  # fmt: skip
