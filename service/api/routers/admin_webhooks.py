"""Back office: webhook subscriptions to ledger events, and their deliveries."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path

from service.api.admin_schemas import (
    DeliveriesOut,
    OkOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhooksOut,
)
from service.api.deps import AdminDep, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, Before, Limit, author, next_cursor
from service.domain.addresses import is_private_literal
from service.domain.errors import invalid_field

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/webhooks", tags=["admin: webhooks"], responses=ERRORS
)

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "", response_model=WebhookCreatedOut, status_code=201,
    summary="Subscribe a URL to ledger events (signed with HMAC-SHA256, retried)",
)  # fmt: skip
async def create(body: WebhookIn, admin: AdminDep, services: ServicesDep) -> OrjsonResponse:
    if not services.settings.webhook_allow_private and is_private_literal(body.url.host or ""):
        raise invalid_field(
            "url", "a webhook may not target a loopback, private or link-local address"
        )
    secret = body.secret or "whsec_" + secrets.token_urlsafe(24)
    events: list[str] = sorted(set(body.events))
    subscription_id = await services.webhooks.create(str(body.url), events, secret, author(admin))
    created = (await services.webhooks.subscriptions(subscription_id))[0]
    return OrjsonResponse({**created, "secret": secret}, 201)


@router.get("", response_model=WebhooksOut, summary="Subscriptions (secrets are not shown)")
async def subscriptions(admin: AdminDep, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse({"webhooks": await services.webhooks.subscriptions()})


@router.delete("/{subscription_id}", response_model=OkOut, summary="Unsubscribe")
async def delete(
    subscription_id: WebhookId, admin: AdminDep, services: ServicesDep
) -> OrjsonResponse:
    await services.webhooks.deactivate(subscription_id, author(admin))
    return OrjsonResponse({"ok": True})


@router.get(
    "/{subscription_id}/deliveries", response_model=DeliveriesOut,
    summary="Deliveries, newest event first: status, attempts, last error",
)  # fmt: skip
async def deliveries(
    subscription_id: WebhookId, admin: AdminDep, services: ServicesDep, before: Before = None,
    limit: Limit = 50,
) -> OrjsonResponse:  # fmt: skip
    rows = await services.webhooks.deliveries(subscription_id, before=before, limit=limit)
    return OrjsonResponse({"deliveries": rows, "next_cursor": next_cursor(rows, "event_id", limit)})
