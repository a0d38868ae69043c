"""Back office: API keys (admin keys only). The secret is in the creation's answer and
nowhere else; a revocation reaches every worker within a second."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.api.admin_schemas import KeyCreatedOut, KeyIn, KeyOut, KeysOut
from service.api.deps import Keys, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, author
from service.usecases import admin_keys as use

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/keys", tags=["admin: keys"], responses=ERRORS
)

KeyRef = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{8,32}$", description="the key's id or shown prefix")
]


@router.post("", response_model=KeyCreatedOut, status_code=201, summary="Make a key")
async def create(body: KeyIn, admin: Keys, services: ServicesDep) -> OrjsonResponse:
    new = use.NewKey(body.name, body.role, tuple(body.stores), body.expires_at)
    made = await use.create(services.key_store, new, "api", author(admin), datetime.now(UTC))
    return OrjsonResponse(made, 201)


@router.get("", response_model=KeysOut, summary="Every key, without secrets, oldest first")
async def keys(
    admin: Keys,
    services: ServicesDep,
    include_revoked: Annotated[bool, Query(description="revoked keys too")] = False,
) -> OrjsonResponse:
    return OrjsonResponse({"keys": await use.keys(services.key_store, include_revoked)})


@router.post("/{key}/revoke", response_model=KeyOut, summary="Revoke a key (every worker, 1 s)")
async def revoke(key: KeyRef, admin: Keys, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.revoke(services.key_store, key, author(admin)))
