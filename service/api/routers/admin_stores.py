"""Back office: stores and regions. A change reaches the other workers with their
periodic re-read (LOYALTY_API_KEY_REFRESH_S); this worker sees it at once."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.admin_schemas import RegionIn, RegionsOut, Slug, StoreIn, StoreOut, StoresOut
from service.api.deps import ChangeStores, ReadStores, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, author
from service.usecases import admin_stores as use

router = APIRouter(route_class=JsonRoute, prefix=PREFIX, tags=["admin: stores"], responses=ERRORS)


@router.get("/regions", response_model=RegionsOut, summary="Regions with their stores")
async def regions(admin: ReadStores, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse({"regions": await use.regions(services.store_admin)})


@router.put("/regions/{region_id}", response_model=RegionsOut, summary="Create or rename a region")
async def put_region(
    region_id: Slug, body: RegionIn, admin: ChangeStores, services: ServicesDep
) -> OrjsonResponse:
    every = await use.put_region(services.store_admin, region_id, body.name, author(admin))
    return OrjsonResponse({"regions": every})


@router.get("/stores", response_model=StoresOut, summary="Every store, active or not")
async def stores(admin: ReadStores, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse({"stores": await use.stores(services.store_admin)})


@router.get("/stores/{store_id}", response_model=StoreOut, summary="One store")
async def store(store_id: Slug, admin: ReadStores, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.store(services.store_admin, store_id))


@router.put(
    "/stores/{store_id}",
    response_model=StoreOut,
    summary="Create or change a store (its region must exist)",
)
async def put_store(
    store_id: Slug, body: StoreIn, admin: ChangeStores, services: ServicesDep
) -> OrjsonResponse:
    changed = await use.put_store(
        services.store_admin,
        services.stores,
        store_id,
        body.name,
        body.region,
        body.timezone,
        body.active,
        author(admin),
    )
    return OrjsonResponse(changed)
