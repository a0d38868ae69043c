"""Back office: the rewards catalogue (SPEC §4 item 31): entries priced in points that
the till redeems on calculate and commit (``"rewards"`` in a receipt)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.api.deps import Rewards, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.reward_schemas import RewardChangeIn, RewardIn, RewardOut, RewardsOut
from service.api.routers.admin_common import ERRORS, PREFIX, author
from service.usecases import admin_rewards as use

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/rewards", tags=["admin: rewards"], responses=ERRORS
)

CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("", response_model=RewardOut, status_code=201, summary="Add a reward to the catalogue")
async def create_reward(body: RewardIn, admin: Rewards, services: ServicesDep) -> OrjsonResponse:
    entry = body.model_dump(exclude_none=True, exclude={"percent"})
    if body.percent is not None:
        entry["percent_bp"] = body.percent
    created = await use.create(
        services.rewards, services.programs.current.document, entry, author(admin),
        datetime.now(UTC),
    )  # fmt: skip
    return OrjsonResponse(created, 201)


@router.get("", response_model=RewardsOut, summary="The catalogue, a page at a time")
async def list_rewards(
    admin: Rewards,
    services: ServicesDep,
    archived: Annotated[bool, Query(description="archived entries too")] = False,
    after: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="cursor")
    ] = None,
) -> OrjsonResponse:
    answer = await use.page(services.rewards, archived=archived, after=after, now=datetime.now(UTC))
    return OrjsonResponse(answer)


@router.get("/{code}", response_model=RewardOut, summary="A reward and how often it was redeemed")
async def get_reward(code: CodePath, admin: Rewards, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.get(services.rewards, code, datetime.now(UTC)))


@router.patch(
    "/{code}",
    response_model=RewardOut,
    summary="Change a reward's name, price, dates or limit; archive or restore it",
)
async def change_reward(
    code: CodePath, body: RewardChangeIn, admin: Rewards, services: ServicesDep
) -> OrjsonResponse:
    # Given as null: a date or the limit is lifted; a name or a price cannot be.
    changes = {
        key: value
        for key, value in body.model_dump(exclude_unset=True, exclude={"archived"}).items()
        if value is not None or key not in ("name", "price")
    }
    changed = await use.change(
        services.rewards, code, changes, body.archived, author(admin), datetime.now(UTC)
    )
    return OrjsonResponse(changed)
