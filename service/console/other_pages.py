"""The console's other pages: sign-in and language, cards and customers (lookup,
balance, lots, tier progress, history, adjustments), reports with charts and CSV."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from service.console.program_pages import failed_page
from service.console.web import (
    CONSOLE_ROLES,
    KEY_COOKIE,
    LANGUAGE_COOKIE,
    PREFIX,
    Session,
    form_of,
    principal_for,
    redirect,
    render,
    secure_page,
    session,
)
from service.domain.access import Permission
from service.domain.errors import Unauthenticated
from service.i18n import LANGUAGES, column_header

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SessionDep = Annotated[Session, Depends(session)]
_DAY = 24 * 3600
# Reports the page shows: (name, the API's path, its columns, a column to chart, its label).
REPORTS: dict[str, tuple[str, tuple[str, ...], str | None, str | None]] = {
    "liability": ("/v1/admin/reports/liability", ("month", "active", "pending", "points",
                                                    "value"), "points", "month"),
    "breakage": ("/v1/admin/reports/breakage", ("month", "points_expired", "cards", "value"),
                 "points_expired", "month"),
    "promotions": ("/v1/admin/reports/promotions", ("rule_id", "name", "receipts", "discount",
                                                     "points_on_receipts"), "discount", "rule_id"),
    "balances": ("/v1/admin/reports/balances", ("number", "status", "tier", "balance",
                                                 "pending", "debt"), None, None),
}  # fmt: skip
MONEY = frozenset({"value", "discount"})


@router.get("")
async def home(request: Request) -> Response:
    return redirect("/programs" if request.cookies.get(KEY_COOKIE) else "/login")


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, None, "login.html", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Sign in with an admin, marketing or analyst key, kept in an HttpOnly cookie that
    only the console's paths receive and that no other site's page sends."""
    key = (await form_of(request)).get("key").strip()
    try:
        principal = principal_for(request, key)
    except Unauthenticated:
        return render(request, None, "login.html", 401, error="The key is not accepted.")
    if principal.role not in CONSOLE_ROLES:
        return render(request, None, "login.html", 403, error="This key cannot use the console.")
    page = redirect("")
    page.set_cookie(
        KEY_COOKIE, key, max_age=_DAY, path=PREFIX, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return page


@router.post("/logout")
async def logout(request: Request) -> Response:
    page = redirect("/login")
    page.delete_cookie(KEY_COOKIE, path=PREFIX)
    return page


@router.get("/lang/{language}")
async def choose_language(request: Request, language: str) -> Response:
    back = request.headers.get("referer", "")
    path = back.partition(request.headers.get("host", "") or "\0")[2] if back else ""
    page = redirect(path.removeprefix(PREFIX) if path.startswith(PREFIX) else "")
    if language in LANGUAGES:
        page.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * _DAY, path=PREFIX,
                        samesite="lax")  # fmt: skip
    return page


_PHONE = re.compile(r"^[+\d][\d\s()\-]{5,}$")


@router.get("/cards")
async def cards(
    request: Request, s: SessionDep, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Find a card by its number, or the customers by phone or e-mail, and their cards."""
    s.require(Permission.READ_CARDS)
    q = q.strip()
    if not q:
        return render(request, s, "cards.html", q=q, customers=[], error=None)
    if q.isdigit() and len(q) >= 8:
        card = await s.api.get(f"/v1/admin/cards/{q}")
        if card.ok:
            return redirect(f"/cards/{q}")
    query = {"email": q} if "@" in q else {"phone": q} if _PHONE.match(q) else None
    if query is None:
        return render(request, s, "cards.html", q=q, customers=[], error="nothing")
    found = await s.api.get("/v1/admin/customers", **query)
    if not found.ok:
        return render(request, s, "cards.html", 422, q=q, customers=[], error=found.detail)
    customers = found.body["customers"]
    if len(customers) == 1 and len(customers[0]["cards"]) == 1:
        return redirect(f"/cards/{customers[0]['cards'][0]}")
    return render(request, s, "cards.html", q=q, customers=customers,
                  error=None if customers else "nothing")  # fmt: skip


async def _card_page(
    request: Request, s: Session, number: str, status: int = 200, **extra: Any
) -> Response:
    card = await s.api.get(f"/v1/admin/cards/{number}")
    if not card.ok:
        return failed_page(request, s, card)
    view = await s.api.get(f"/v1/cards/{number}")  # lots by expiry, tier progress
    history = await s.api.get(f"/v1/admin/reports/cards/{number}/history", limit=100)
    customer = None
    if card.body.get("customer_id"):
        customer = (await s.api.get(f"/v1/admin/customers/{card.body['customer_id']}")).body
    return render(
        request, s, "card.html", status, card=card.body,
        view=view.body if view.ok else None, customer=customer,
        history=list(reversed(history.body["rows"])) if history.ok else [],
        can_adjust=s.can(Permission.ADJUST_POINTS), **{"errors": {}, "form": {}, **extra},
    )  # fmt: skip


@router.get("/cards/{number}")
async def card(request: Request, s: SessionDep, number: str) -> Response:
    s.require(Permission.READ_CARDS)
    return await _card_page(request, s, number)


@router.post("/cards/{number}/adjust")
async def adjust(request: Request, s: SessionDep, number: str) -> Response:
    """Credit or debit points with a reason (the API records who and why)."""
    form = await form_of(request)
    points = form.get("points").strip()
    body = {"points": int(points) if re.fullmatch(r"-?\d+", points) else points,
            "reason": form.get("reason")}  # fmt: skip
    answer = await s.api.post(f"/v1/admin/cards/{number}/adjustments", body)
    if answer.ok:
        return redirect(f"/cards/{number}?adjusted=1")
    if answer.status == 403:
        return failed_page(request, s, answer)
    errors = {f["field"]: f["message"] for f in answer.fields} or {"points": answer.detail}
    return await _card_page(request, s, number, 422, errors=errors, form=form.values)


def chart_bars(rows: list[dict[str, Any]], value: str, label: str) -> list[dict[str, Any]]:
    """Bars for an SVG chart the template draws: label, value, and height in 0..100."""
    top = max((abs(int(r.get(value) or 0)) for r in rows), default=0) or 1
    return [
        {
            "label": str(r.get(label)),
            "value": int(r.get(value) or 0),
            "height": round(100 * abs(int(r.get(value) or 0)) / top),
        }
        for r in rows[:24]
    ]


@router.get("/reports")
async def reports(
    request: Request,
    s: SessionDep,
    report: Annotated[str, Query(max_length=40)] = "liability",
) -> Response:
    s.require(Permission.REPORTS)
    if report not in REPORTS:
        report = "liability"
    path, columns, value, label = REPORTS[report]
    answer = await s.api.get(path, limit=100)
    if not answer.ok:
        return failed_page(request, s, answer)
    rows = answer.body["rows"]
    bars = chart_bars(rows, value, label) if value and label else []
    return render(request, s, "reports.html", report=report, reports=list(REPORTS),
                  columns=columns, rows=rows, bars=bars, money=MONEY, value=value,
                  header=partial(column_header, s.language))  # fmt: skip


@router.get("/reports/{report}.csv")
async def report_csv(request: Request, s: SessionDep, report: str) -> Response:
    """Every row of the report as the API writes it for people: headers and money in the
    console's language."""
    if report not in REPORTS:
        return redirect("/reports")
    answer = await s.api.get(REPORTS[report][0], format="csv")
    if not answer.ok:
        return failed_page(request, s, answer)
    disposition = answer.headers.get("content-disposition", f'attachment; filename="{report}.csv"')
    page = Response(answer.content, media_type=answer.media_type or "text/csv")
    page.headers["Content-Disposition"] = disposition
    return secure_page(page)
