"""Back office: reports, each a JSON page (`cursor`, `limit`) or a streamed CSV export
(`format=csv`: every row, read page by page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from service.api.admin_schemas import (
    BalancesOut,
    BreakageOut,
    EntriesOut,
    HealthReportOut,
    LiabilityOut,
    PromotionsOut,
    Slug,
)
from service.api.csv_export import csv_content, csv_response, people_language
from service.api.deps import Reports, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX
from service.api.schemas import CardNumber, Timestamp
from service.api.wallet_schemas import WalletReportOut
from service.usecases import admin_reports as reports
from service.usecases.admin_reports import Fetch, Page, Period

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/reports", tags=["admin: reports"], responses=ERRORS
)

Format = Annotated[Literal["json", "csv"], Query(description="csv: every row, streamed")]
Cursor = Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.:|+-]*$")]
PageSize = Annotated[int, Query(ge=1, le=1000)]
Since = Annotated[Timestamp | None, Query(description="default: 30 days before until")]
Until = Annotated[Timestamp | None, Query(description="default: now")]
CSV_PAGE = 1000

BALANCE_COLUMNS = ("number", "status", "tier", "customer_id", "balance", "pending", "debt")
ENTRY_COLUMNS = ("entry_id", "card", "created_at", "kind", "points", "store_id",
                 "transaction_id", "refund_id", "reason", "author")  # fmt: skip
PROMOTION_COLUMNS = ("rule_id", "name", "receipts", "discount", "points_on_receipts")
LIABILITY_COLUMNS = ("month", "active", "pending", "points", "value")
BREAKAGE_COLUMNS = ("month", "points_expired", "cards", "value")


def _period(since: Since = None, until: Until = None) -> Period:
    return reports.period(since, until, datetime.now(UTC))


PeriodDep = Annotated[Period, Depends(_period)]


@dataclass(frozen=True, slots=True)
class Listing:
    """How a report is asked for: a JSON page from ``cursor``, or every row as CSV."""

    format: str
    cursor: str | None
    limit: int
    language: str | None  # a CSV for people: headers and money in this language

    async def answer(self, name: str, columns: tuple[str, ...], fetch: Fetch) -> Response:
        if self.format == "csv":
            return await csv_response(
                f"{name}.csv", columns, lambda after: fetch(after, CSV_PAGE), self.language
            )
        rows, next_cursor = await fetch(self.cursor, self.limit)
        return OrjsonResponse({"rows": rows, "next_cursor": next_cursor})


def _listing(
    request: Request,
    services: ServicesDep,
    format: Format = "json",
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Listing:
    return Listing(format, cursor, limit, people_language(request, services.settings.language))


ListingDep = Annotated[Listing, Depends(_listing)]


def _csv_example(columns: tuple[str, ...], row: str) -> dict[int | str, dict[str, Any]]:
    return csv_content(",".join(columns) + "\n" + row + "\n")


@router.get(
    "/balances",
    response_model=BalancesOut,
    responses=_csv_example(BALANCE_COLUMNS, "2000000000022,active,silver,2,5000,120,0"),
    summary="Every card's balance, pending points and debt",
)
async def balances(
    admin: Reports,
    services: ServicesDep,
    listing: ListingDep,
) -> Response:
    fetch = reports.balances(services.reports, datetime.now(UTC))
    return await listing.answer("balances", BALANCE_COLUMNS, fetch)


_ENTRY_CSV = _csv_example(
    ENTRY_COLUMNS, "981,2000000000022,2026-11-22T10:00:00+00:00,accrual,99,msk-001,R-0001,,,"
)


@router.get(
    "/cards/{number}/history",
    response_model=EntriesOut,
    responses=_ENTRY_CSV,
    summary="Accruals, redemptions and every other ledger entry of a card, oldest first",
)
async def card_history(
    number: CardNumber,
    admin: Reports,
    services: ServicesDep,
    period: PeriodDep,
    listing: ListingDep,
) -> Response:
    fetch = reports.card_history(services.reports, number, period)
    return await listing.answer(f"card-{number}", ENTRY_COLUMNS, fetch)


@router.get(
    "/stores/{store_id}/history",
    response_model=EntriesOut,
    responses=_ENTRY_CSV,
    summary="Ledger entries of sales, returns and cancellations in a store, oldest first",
)
async def store_history(
    store_id: Slug,
    admin: Reports,
    services: ServicesDep,
    period: PeriodDep,
    listing: ListingDep,
) -> Response:
    fetch = reports.store_history(services.reports, store_id, period)
    return await listing.answer(f"store-{store_id}", ENTRY_COLUMNS, fetch)


@router.get(
    "/promotions",
    response_model=PromotionsOut,
    responses=_csv_example(PROMOTION_COLUMNS, "tier-discount,Tier discount,412,7321500,40210"),
    summary="Promotion effectiveness: receipts, discount given, points (by sale time)",
)
async def promotions(
    admin: Reports,
    services: ServicesDep,
    period: PeriodDep,
    listing: ListingDep,
) -> Response:
    fetch = reports.promotions(services.reports, period)
    return await listing.answer("promotions", PROMOTION_COLUMNS, fetch)


@router.get(
    "/health",
    response_model=HealthReportOut,
    responses=csv_content("receipts,receipts_with_card,participation_bp\n1000,640,6400\n"),
    summary="Program health: participation, redeemed to earned, average receipts",
)
async def health(
    admin: Reports,
    services: ServicesDep,
    period: PeriodDep,
    request: Request,
    format: Format = "json",
) -> Response:
    row = await reports.health_report(services.reports, period)
    if format == "csv":
        columns = tuple(row)
        language = people_language(request, services.settings.language)
        return await csv_response("health.csv", columns, lambda _after: _one(row), language)
    return OrjsonResponse(row)


async def _one(row: dict[str, Any]) -> Page:
    return [row], None


@router.get(
    "/liability",
    response_model=LiabilityOut,
    responses=_csv_example(LIABILITY_COLUMNS, "2027-01,25000,1200,26200,2620000"),
    summary="Outstanding points by month of expiry, and what they are worth",
)
async def liability(
    admin: Reports,
    services: ServicesDep,
    listing: ListingDep,
) -> Response:
    fetch = reports.liability(services.reports, services.programs, datetime.now(UTC))
    return await listing.answer("liability", LIABILITY_COLUMNS, fetch)


@router.get(
    "/breakage",
    response_model=BreakageOut,
    responses=_csv_example(BREAKAGE_COLUMNS, "2026-10,3100,12,310000"),
    summary="Breakage: points that expired unspent, by month",
)
async def breakage(
    admin: Reports,
    services: ServicesDep,
    listing: ListingDep,
) -> Response:
    fetch = reports.breakage(services.reports, services.programs)
    return await listing.answer("breakage", BREAKAGE_COLUMNS, fetch)


@router.get(
    "/wallets",
    response_model=WalletReportOut,
    summary="Wallets: what live ones hold (the liability), by kind and month of expiry, and"
    " every movement by kind",
)
async def wallets(admin: Reports, services: ServicesDep) -> OrjsonResponse:
    now = datetime.now(UTC)
    return OrjsonResponse({"at": now.isoformat(), **await services.wallets.report(now)})
