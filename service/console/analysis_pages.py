"""The console's analytics (SPEC §10.3): a period of the ledger per store, region,
channel or month, with a chart and its CSV, and the pilot report of a group of stores
against a control group, with its chart. Both read the API's
``/v1/admin/analysis/figures`` and ``/analysis/pilot``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from service.console.other_pages import chart_bars
from service.console.program_pages import failed_page, moment
from service.console.web import PREFIX, Session, render, secure_page, session
from service.domain.access import Permission
from service.i18n import MONEY_COLUMNS, column_header

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SessionDep = Annotated[Session, Depends(session)]
FIGURES = "/v1/admin/analysis/figures"
PILOT = "/v1/admin/analysis/pilot"
SLICES = ("store", "group", "channel", "month")
COLUMNS = (
    "slice", "receipts", "receipts_with_card", "average_receipt_with_card",
    "average_receipt_without_card", "active_members", "new_members", "churned_members",
    "purchase_frequency_milli", "ltv", "points_earned", "points_redeemed",
    "redeemed_per_earned_bp", "paid_with_points",
)  # fmt: skip
CHARTED = "average_receipt_with_card"
Text = Annotated[str, Query(max_length=200)]


def _errors(answer: Any) -> dict[str, str]:
    """The API's refusal at the form's fields (its query parameters)."""
    return {f["field"].rsplit(".", 1)[-1]: f["message"] for f in answer.fields}


@dataclass(frozen=True)
class _PeriodAsked:
    """A period's fields of a form, as the query string carries them."""

    since: Text = ""
    until: Text = ""

    def period(self) -> dict[str, str]:
        """Whole days, the last one included; ninety days to today when none are given."""
        today = datetime.now(UTC).date()
        return {
            "since": moment(self.since or (today - timedelta(days=90)).isoformat()),
            "until": moment(self.until or today.isoformat(), days_later=1),
        }


@dataclass(frozen=True)
class FiguresAsked(_PeriodAsked):
    """The figures' form (the page, its CSV)."""

    by: Text = "store"
    churn_days: Text = ""

    def query(self) -> dict[str, Any]:
        return {**self.period(), "by": self.by if self.by in SLICES
                else "store", "churn_days": self.churn_days or None}  # fmt: skip


@dataclass(frozen=True)
class PilotAsked(_PeriodAsked):
    """The pilot report's form (the page, its chart)."""

    pilot: Text = ""
    control: Text = ""
    starts: Text = ""

    @property
    def complete(self) -> bool:
        return bool(self.pilot and self.control and self.starts)

    def query(self) -> dict[str, Any]:
        return {**self.period(), "pilot": _stores(self.pilot),
                "control": _stores(self.control), "starts": self.starts}  # fmt: skip


FiguresDep = Annotated[FiguresAsked, Depends()]
PilotDep = Annotated[PilotAsked, Depends()]


def _stores(text: str) -> list[str]:
    return [store.strip() for store in text.split(",") if store.strip()]


@router.get("/analytics")
async def analytics(request: Request, s: SessionDep, asked: FiguresDep) -> Response:
    s.require(Permission.REPORTS)
    answer = await s.api.get(FIGURES, **asked.query())
    rows = answer.body["slices"] if answer.ok else []
    return render(
        request, s, "analytics.html", 200 if answer.ok else 422, form=asdict(asked),
        slices=SLICES, columns=COLUMNS, rows=rows, bars=chart_bars(rows, CHARTED, "slice"),
        money=MONEY_COLUMNS, charted=CHARTED, error=None if answer.ok else answer,
        errors={} if answer.ok else _errors(answer), header=partial(column_header, s.language),
    )  # fmt: skip


@router.get("/analytics.csv")
async def analytics_csv(request: Request, s: SessionDep, asked: FiguresDep) -> Response:
    """The figures as the API writes them for people: headers and money in the page's
    language."""
    answer = await s.api.get(FIGURES, format="csv", **asked.query())
    if not answer.ok:
        return failed_page(request, s, answer)
    page = Response(answer.content, media_type=answer.media_type or "text/csv")
    page.headers["Content-Disposition"] = answer.headers.get(
        "content-disposition", 'attachment; filename="figures.csv"'
    )
    return secure_page(page)


@router.get("/analytics/pilot")
async def pilot(request: Request, s: SessionDep, asked: PilotDep) -> Response:
    """The form, and once both groups and the start are given, the report."""
    s.require(Permission.REPORTS)
    form = asdict(asked)
    if not asked.complete:
        return render(request, s, "pilot.html", form=form, report=None, error=None, errors={})
    answer = await s.api.get(PILOT, **asked.query())
    return render(
        request, s, "pilot.html", 200 if answer.ok else 422, form=form,
        report=answer.body if answer.ok else None, error=None if answer.ok else answer,
        errors={} if answer.ok else _errors(answer),
    )  # fmt: skip


@router.get("/analytics/pilot.svg")
async def pilot_chart(request: Request, s: SessionDep, asked: PilotDep) -> Response:
    answer = await s.api.get(PILOT, format="svg", **asked.query())
    if not answer.ok:
        return failed_page(request, s, answer)
    return secure_page(Response(answer.content, media_type="image/svg+xml"))
