"""Back office: webhook subscriptions to ledger events, and their deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.admin_schemas import (
    DeliveriesOut,
    OkOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhooksOut,
)
from service.api.deps import ServicesDep, Webhooks
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, Before, Limit, author, next_cursor
from service.usecases import admin_webhooks as use

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/webhooks", tags=["admin: webhooks"], responses=ERRORS
)

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "",
    response_model=WebhookCreatedOut,
    status_code=201,
    summary="Subscribe a URL to ledger events (signed with HMAC-SHA256, retried)",
)
async def create(body: WebhookIn, admin: Webhooks, services: ServicesDep) -> OrjsonResponse:
    created = await use.subscribe(
        services.webhooks,
        str(body.url),
        body.url.host or "",
        body.events,
        body.secret,
        author(admin),
        allow_private=services.settings.webhook_allow_private,
    )
    return OrjsonResponse(created, 201)


@router.get("", response_model=WebhooksOut, summary="Subscriptions (secrets are not shown)")
async def subscriptions(admin: Webhooks, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse({"webhooks": await use.subscriptions(services.webhooks)})


@router.delete("/{subscription_id}", response_model=OkOut, summary="Unsubscribe")
async def delete(
    subscription_id: WebhookId, admin: Webhooks, services: ServicesDep
) -> OrjsonResponse:
    await use.unsubscribe(services.webhooks, subscription_id, author(admin))
    return OrjsonResponse({"ok": True})


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveriesOut,
    summary="Deliveries, newest event first: status, attempts, last error",
)
async def deliveries(
    subscription_id: WebhookId,
    admin: Webhooks,
    services: ServicesDep,
    before: Before = None,
    limit: Limit = 50,
) -> OrjsonResponse:
    rows = await use.deliveries(services.webhooks, subscription_id, before, limit)
    return OrjsonResponse({"deliveries": rows, "next_cursor": next_cursor(rows, "event_id", limit)})
