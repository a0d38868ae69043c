"""Back office: customers (create, update, find, erase) and CSV imports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import StreamingResponse

from service.api.admin_schemas import (
    CARDS_CSV,
    CUSTOMERS_CSV,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    CustomersOut,
    Email,
    ImportJobOut,
    ImportOut,
    ImportStartedOut,
    import_shape,
)
from service.api.csv_export import csv_content, csv_response, people_language
from service.api.deps import EraseCustomers, Import, ManageCards, ReadCards, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, author
from service.api.schemas import Phone
from service.api.state import Services
from service.domain.errors import invalid_field
from service.storage.postgres.customers import CONSENT_CHANNELS
from service.usecases import admin_customers as use
from service.usecases import admin_import as imports

router = APIRouter(
    route_class=JsonRoute, prefix=PREFIX, tags=["admin: customers"], responses=ERRORS
)

CustomerPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/customers", response_model=CustomerOut, status_code=201, summary="New customer")
async def create(body: CustomerIn, admin: ManageCards, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(
        await use.create(services.customers, body.model_dump(), author(admin)), 201
    )


@router.get("/customers", response_model=CustomersOut, summary="Find customers by phone or email")
async def find(
    admin: ReadCards,
    services: ServicesDep,
    phone: Annotated[Phone | None, Query(examples=["+79000000001"])] = None,
    email: Annotated[Email | None, Query(examples=["anna@example.com"])] = None,
) -> OrjsonResponse:
    return OrjsonResponse({"customers": await use.find(services.customers, phone, email)})


@router.get("/customers/{customer_id}", response_model=CustomerOut, summary="One customer")
async def get(customer_id: CustomerPath, admin: ReadCards, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.customer(services.customers, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerOut, summary="Change fields")
async def update(
    customer_id: CustomerPath, body: CustomerPatch, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    customer = await use.update(
        services.customers,
        services.cards,
        services.programs,
        customer_id,
        body.model_dump(exclude_unset=True),
        author(admin),
        datetime.now(UTC),
    )
    return OrjsonResponse(customer)


@router.post(
    "/customers/{customer_id}/erase",
    response_model=CustomerOut,
    summary="Erase personal data on request; cards and the ledger stay, anonymised",
)
async def erase(
    customer_id: CustomerPath, admin: EraseCustomers, services: ServicesDep
) -> OrjsonResponse:
    customer = await use.erase(
        services.customers,
        services.cards,
        services.programs,
        customer_id,
        author(admin),
        datetime.now(UTC),
    )
    return OrjsonResponse(customer)


def _csv_body(example: str) -> dict[str, Any]:
    content = {"text/csv": {"schema": {"type": "string"}, "example": example}}
    return {"requestBody": {"required": True, "content": content}}


async def _import(
    request: Request,
    services: Services,
    kind: str,
    who: str,
    options: ImportOptions,
) -> OrjsonResponse:
    settings = services.settings
    body = await request.body()
    if len(body) > settings.import_max_bytes:
        raise invalid_field("body", f"at most {settings.import_max_bytes} bytes per import")
    model, required, known = import_shape(kind)
    mapping = imports.column_mapping(options.columns)
    rows, rejected = imports.parse_rows(
        body, model, required, settings.import_max_rows, mapping, known
    )
    now = datetime.now(UTC)
    if options.background:
        job = await imports.start_job(
            services.import_jobs, services.customers, services.cards, services.programs, kind,
            rows, rejected, who, now, dry_run=options.dry_run,
            spawn=lambda run: services.tasks.append(asyncio.create_task(run)),
        )  # fmt: skip
        return OrjsonResponse(job, 202)
    report = await imports.import_rows(
        services.customers, services.cards, services.programs, kind, rows, rejected, who, now,
        options.dry_run,
    )  # fmt: skip
    return OrjsonResponse(imports.report_view(report))


@dataclass(frozen=True, slots=True)
class ImportOptions:
    dry_run: bool
    columns: str | None
    background: bool


def _options(
    dry_run: Annotated[
        bool, Query(description="check every row, the ledger's refusals included; write nothing")
    ] = False,
    columns: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="the upload's own column names for ours: Телефон=phone;ФИО=name",
        ),
    ] = None,
    background: Annotated[
        bool,
        Query(
            description="answer 202 with a job at once and import a chunk at a time:"
            " GET /v1/admin/import/jobs/{job_id} follows it"
        ),
    ] = False,
) -> ImportOptions:
    return ImportOptions(dry_run, columns, background)


Options = Annotated[ImportOptions, Depends(_options)]


EXPORT_COLUMNS = (
    "customer_id", "name", "phone", "email", "birthday", "segments", "cards", "created_at",
    *(f"consent_{channel}" for channel in CONSENT_CHANNELS),
)  # fmt: skip


@router.get(
    "/export/customers",
    response_class=StreamingResponse,
    responses=csv_content(
        ",".join(EXPORT_COLUMNS) + "\n2,Anna Petrova,+79001234567,anna@example.com,1990-03-15,"
        "vip,2000000001234,2026-11-20T10:00:00+00:00,true,false,,,\n"
    ),
    summary="Every customer as CSV, with cards and the consent in force per channel",
)
async def export_customers(
    request: Request, admin: ReadCards, services: ServicesDep
) -> StreamingResponse:
    language = people_language(request, services.settings.language)
    return await csv_response(
        "customers.csv",
        EXPORT_COLUMNS,
        lambda after: services.customers.export_page(after, 1000),
        language,
    )


# background=true: the job, at once, instead of the report.
BACKGROUND: dict[int | str, dict[str, Any]] = {
    202: {"model": ImportStartedOut, "description": "background=true: the import, started"}
}


@router.post(
    "/import/customers",
    response_model=ImportOut,
    responses=BACKGROUND,
    tags=["admin: import"],
    openapi_extra=_csv_body(CUSTOMERS_CSV),
    summary="Import customers (and a card each) from CSV; bad rows reported by line",
)
async def import_customers(
    request: Request, admin: Import, services: ServicesDep, options: Options
) -> OrjsonResponse:
    return await _import(request, services, "customers", author(admin), options)


@router.post(
    "/import/cards",
    response_model=ImportOut,
    responses=BACKGROUND,
    tags=["admin: import"],
    openapi_extra=_csv_body(CARDS_CSV),
    summary="Import cards from CSV (a phone registers the card); bad rows reported by line",
)
async def import_cards(
    request: Request, admin: Import, services: ServicesDep, options: Options
) -> OrjsonResponse:
    return await _import(request, services, "cards", author(admin), options)


@router.get(
    "/import/jobs/{job_id}",
    response_model=ImportJobOut,
    tags=["admin: import"],
    summary="A background import's progress, then its report",
)
async def import_job(
    job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], admin: Import, services: ServicesDep
) -> OrjsonResponse:
    return OrjsonResponse(await imports.job_view(services.import_jobs, job_id))
