"""The program pages: versions, the editor (rule form, points settings, the JSON beside
them), templates, dry runs, publication and rollback, simulations, diffs, the calendar."""

from __future__ import annotations

import difflib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from service.console import forms, presets
from service.console.api import Answer
from service.console.web import (
    PREFIX,
    Form,
    Session,
    form_of,
    redirect,
    render,
    secure_page,
    session,
)
from service.domain.access import Permission

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SessionDep = Annotated[Session, Depends(session)]
PROGRAMS = "/v1/admin/programs"
CHARTS = ("liability", "cost-per-rule", "tier-mix-current", "tier-mix-draft")
# The simulation's totals (service/simulation/report.py, Summary) for people; the
# figures that are kopecks are shown as roubles. A figure not named here shows its key.
FIGURES = {
    "receipts": "Receipts", "receipts_with_card": "Receipts with a card",
    "sales": "Sales, roubles", "discount": "Discount, roubles",
    "points_earned": "Points earned", "points_earned_value": "Points earned, roubles",
    "points_redeemed": "Points spent", "points_redeemed_value": "Points spent, roubles",
    "points_expired": "Points expired", "liability_points": "Liability, points",
    "liability_value": "Liability, roubles", "breakage_rate_bp": "Breakage, basis points",
    "expected_breakage_points": "Expected breakage, points",
    "receipts_touched": "Receipts a rule applied to", "customers_touched": "Cards touched",
    "returns": "Returns", "returned_money": "Money returned, roubles",
    "points_taken_back": "Points taken back", "points_given_back": "Points given back",
    "points_owed": "Points owed", "point_value": "A point is worth, roubles",
}  # fmt: skip
SIMULATION_MONEY = frozenset({"sales", "discount", "returned_money", "point_value"})
MAX_LINES = 8  # lines of the dry run's basket form
# The simulation's assumptions the form passes on as the API takes them (docs/simulation.md).
MOSCOW = "Europe/Moscow"  # times typed for no known store: the chain's own zone
ASSUMPTIONS = ("spending", "redeem_share", "breakage_percent")


def _pretty(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


async def _version(s: Session, version: int) -> dict[str, Any]:
    answer = await s.api.get(f"{PROGRAMS}/{version}")
    if not answer.ok:
        raise Failed(answer)
    return dict(answer.body)


class Failed(Exception):
    """An API answer a page cannot go on from (404, 403): shown as the error page."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.detail)
        self.answer = answer


def failed_page(request: Request, s: Session, answer: Answer) -> Response:
    return render(request, s, "error.html", max(answer.status, 400), answer=answer)


@router.get("/programs")
async def programs(request: Request, s: SessionDep) -> Response:
    s.require(Permission.READ_PROGRAMS)
    answer = await s.api.get(PROGRAMS, limit=100)
    return render(
        request, s, "programs.html", versions=answer.body["versions"], templates=presets.TITLES
    )


@router.post("/programs")
async def new_draft(request: Request, s: SessionDep) -> Response:
    """A draft from a template over the current program (or from the current as it is)."""
    form = await form_of(request)
    versions = (await s.api.get(PROGRAMS, limit=100)).body.get("versions", [])
    current = next((v["version"] for v in versions if v["current"]), None)
    base = (await _version(s, current))["document"] if current else None
    template = form.get("template")
    document = presets.applied(template, base) if template in presets.PROGRAMS else base
    created = await s.api.post(PROGRAMS, {"document": document or presets.EMPTY})
    if not created.ok:
        return failed_page(request, s, created)
    return redirect(f"/programs/{created.body['version']}?saved=1")


def _rule_values(form: Form) -> dict[str, Any]:
    """The submitted rule form as the editor shows it again."""
    values: dict[str, Any] = dict(form.values)
    for name in ("conditions.weekdays", "conditions.channels"):
        values[name] = form.lists.get(name, [])
    for name in ("active", "conditions.promo_code", "effect.dearest", "effect.discounted_only"):
        values[name] = form.get(name) == "on"
    return values


def _rows(values: dict[str, Any], key: str, most: int) -> int:
    """The rows a table form shows: those filled in, and one empty to add."""
    return min(sum(1 for k, v in values.items() if k.endswith(f"].{key}") and v) + 1, most)


def _editor(
    request: Request,
    s: Session,
    row: dict[str, Any],
    *,
    document: dict[str, Any] | None = None,
    rule: dict[str, Any] | None = None,
    original_id: str = "",
    errors: dict[str, str] | None = None,
    other_errors: list[dict[str, str]] | None = None,
    document_text: str | None = None,
    points: dict[str, str] | None = None,
    tiers: dict[str, str] | None = None,
    groups: dict[str, str] | None = None,
    codes: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    document = row["document"] if document is None else document
    points_shown = points if points is not None else forms.points_form(document)
    tiers = tiers if tiers is not None else forms.tiers_form(document)
    groups = groups if groups is not None else forms.groups_form(document)
    codes = codes if codes is not None else forms.codes_form(document)
    errors = dict(errors or {})
    known = forms.rule_field_names() | {*points_shown, *tiers, *groups, *codes}
    other_errors = [
        *(other_errors or []),
        *({"field": k, "message": errors.pop(k)} for k in list(errors) if k not in known),
    ]
    return render(
        request, s, "editor.html", status,
        row=row, document=document, document_text=document_text or _pretty(document),
        rule=rule if rule is not None else forms.form_from_rule({"active": True}),
        original_id=original_id, errors=errors, other_errors=other_errors,
        points=points_shown, point_settings=forms.POINT_SETTINGS,
        point_choices=forms.POINT_CHOICES, max_requires=forms.MAX_REQUIRES,
        other_settings=forms.OTHER_SETTINGS, other_choices=forms.OTHER_CHOICES,
        tiers=tiers, tier_rows=_rows(tiers, "code", forms.MAX_TIERS),
        groups=groups, group_rows=_rows(groups, "id", forms.MAX_GROUPS),
        codes=codes, code_rows=_rows(codes, "code", forms.MAX_CODES),
        tier_fields=forms.TIER_FIELDS, code_fields=forms.CODE_FIELDS,
        effects=forms.EFFECTS, effect_fields=forms.EFFECT_FIELDS, stacking=forms.STACKING,
        weekdays=forms.WEEKDAYS, channels=forms.CHANNELS, rule_templates=presets.RULES,
        templates=presets.TITLES, saved=request.query_params.get("saved"),
        editable=s.can(Permission.CHANGE_PROGRAMS),
    )  # fmt: skip


@router.get("/programs/diff")
async def diff(
    request: Request,
    s: SessionDep,
    a: Annotated[int, Query(ge=1, le=2**31 - 1)],
    b: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> Response:
    s.require(Permission.READ_PROGRAMS)
    left, right = (await _version(s, a))["document"], (await _version(s, b))["document"]
    rules_a = {r["id"]: r for r in left.get("rules", [])}
    rules_b = {r["id"]: r for r in right.get("rules", [])}
    changes = {
        "added": sorted(set(rules_b) - set(rules_a)),
        "removed": sorted(set(rules_a) - set(rules_b)),
        "changed": sorted(i for i in set(rules_a) & set(rules_b) if rules_a[i] != rules_b[i]),
    }
    lines = difflib.unified_diff(
        _pretty(left).splitlines(), _pretty(right).splitlines(), f"v{a}", f"v{b}", lineterm=""
    )
    return render(request, s, "diff.html", a=a, b=b, changes=changes, lines=list(lines))


@router.get("/programs/{version}")
async def editor(
    request: Request,
    s: SessionDep,
    version: int,
    rule: Annotated[str, Query(max_length=64)] = "",
    template: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    s.require(Permission.READ_PROGRAMS)
    row = await _version(s, version)
    chosen = next((r for r in row["document"].get("rules", []) if r.get("id") == rule), None)
    if chosen is not None:
        return _editor(request, s, row, rule=forms.form_from_rule(chosen), original_id=rule)
    if template in presets.RULES:
        return _editor(request, s, row, rule=forms.form_from_rule(presets.RULES[template]))
    return _editor(request, s, row)


async def _save(s: Session, row: dict[str, Any], document: dict[str, Any]) -> Answer:
    """A draft takes the document in place; a published version gives a new draft."""
    if row["status"] == "draft":
        return await s.api.put(f"{PROGRAMS}/{row['version']}", {"document": document})
    return await s.api.post(PROGRAMS, {"document": document})


@router.post("/programs/{version}/rules")
async def save_rule(request: Request, s: SessionDep, version: int) -> Response:
    row = await _version(s, version)
    form = await form_of(request)
    original_id = form.get("original_id")
    original = next(
        (r for r in row["document"].get("rules", []) if r.get("id") == original_id), None
    )
    rule = forms.rule_from_form(form.values, form.lists, original)
    if form.get("delete") == "1" and original is not None:
        document = dict(row["document"])
        document["rules"] = [r for r in document["rules"] if r.get("id") != original_id]
        at: int | None = None
    else:
        document, at = forms.with_rule(row["document"], rule, original_id)
    saved = await _save(s, row, document)
    if saved.ok:
        chosen = "" if at is None else f"rule={rule['id']}&"
        return redirect(f"/programs/{saved.body['version']}?{chosen}saved=1")
    if saved.error != "program_invalid":
        return failed_page(request, s, saved)
    at_fields, others = forms.field_errors(saved.fields, at)
    return _editor(
        request, s, row, document=document, rule=_rule_values(form), original_id=original_id,
        errors=at_fields, other_errors=others, status=422,
    )  # fmt: skip


# The editor's forms beside the rules: each changes its part of the document.
_SECTIONS = {
    "points": forms.points_from_form,
    "tiers": forms.tiers_from_form,
    "groups": forms.groups_from_form,
    "codes": forms.codes_from_form,
}


@router.post("/programs/{version}/points")
async def save_points(request: Request, s: SessionDep, version: int) -> Response:
    return await _save_section(request, s, version, "points")


@router.post("/programs/{version}/tiers")
async def save_tiers(request: Request, s: SessionDep, version: int) -> Response:
    return await _save_section(request, s, version, "tiers")


@router.post("/programs/{version}/groups")
async def save_groups(request: Request, s: SessionDep, version: int) -> Response:
    return await _save_section(request, s, version, "groups")


@router.post("/programs/{version}/codes")
async def save_codes(request: Request, s: SessionDep, version: int) -> Response:
    return await _save_section(request, s, version, "codes")


async def _save_section(request: Request, s: Session, version: int, section: str) -> Response:
    row = await _version(s, version)
    form = await form_of(request)
    document = _SECTIONS[section](row["document"], form.values)
    saved = await _save(s, row, document)
    if saved.ok:
        return redirect(f"/programs/{saved.body['version']}?saved=1")
    if saved.error != "program_invalid":
        return failed_page(request, s, saved)
    at_fields, others = forms.field_errors(saved.fields, None)
    typed = dict(form.values)  # shown again as typed, in its own form
    return _editor(
        request, s, row, document=document, errors=at_fields, other_errors=others, status=422,
        points=typed if section == "points" else None,
        tiers=typed if section == "tiers" else None,
        groups=typed if section == "groups" else None,
        codes={**typed, **{k: True for k, v in typed.items() if v == "on"}}
        if section == "codes" else None,
    )  # fmt: skip


@router.post("/programs/{version}/document")
async def save_document(request: Request, s: SessionDep, version: int) -> Response:
    row = await _version(s, version)
    text = (await form_of(request)).get("document")
    try:
        document = json.loads(text)
    except ValueError as error:
        problem = [{"field": "document", "message": f"not JSON: {error}"}]
        return _editor(request, s, row, other_errors=problem, document_text=text, status=422)
    saved = await _save(s, row, document)
    if saved.ok:
        return redirect(f"/programs/{saved.body['version']}?saved=1")
    if saved.error != "program_invalid":
        return failed_page(request, s, saved)
    return _editor(request, s, row, other_errors=saved.fields, document_text=text, status=422)


def _basket(form: Form, zone: str = MOSCOW) -> dict[str, Any]:
    """The dry run's receipt from the basket form: money typed in roubles, the time in
    the store's time zone (``zone``)."""
    lines = []
    for i in range(MAX_LINES):
        sku = form.get(f"lines[{i}].sku").strip()
        if not sku:
            continue
        line: dict[str, Any] = {
            "line_id": str(i + 1),
            "sku": sku,
            "quantity": form.get(f"lines[{i}].quantity").strip() or "1",
            "unit_price": forms.kopecks(form.get(f"lines[{i}].unit_price")),
        }
        for name in ("category", "brand"):
            if value := form.get(f"lines[{i}].{name}").strip():
                line[name] = value
        lines.append(line)
    receipt: dict[str, Any] = {
        "store_id": form.get("store_id").strip(),
        "timestamp": moment(form.get("timestamp"), zone=zone),
        "lines": lines,
    }
    for name in ("card", "payment_method", "channel"):
        if value := form.get(name).strip():
            receipt[name] = value
    if codes := [c.strip() for c in form.get("promo_codes").split(",") if c.strip()]:
        receipt["promo_codes"] = codes
    if points := form.get("redeem_points").strip():
        receipt["redeem_points"] = int(points) if points.isdigit() else points
    return receipt  # fmt: skip


def moment(text: str, days_later: int = 0, zone: str = MOSCOW) -> str:
    """A ``datetime-local`` or date value, taken in ``zone`` (an IANA time zone; the
    chain's Moscow unless a store's is known) unless it names its offset (empty: now);
    what is not a time is sent as typed, for the API to refuse."""
    if not text:
        return datetime.now(UTC).isoformat()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return text
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(zone))
    return (at + timedelta(days=days_later)).isoformat()


def _picked(receipt: dict[str, Any]) -> Form:
    """The basket form filled from a real receipt (money as roubles, time in Moscow)."""
    moment = datetime.fromisoformat(receipt["occurred_at"]).astimezone(UTC) + timedelta(hours=3)
    values = {"store_id": receipt["store_id"], "card": receipt["card"] or "",
              "timestamp": moment.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    for i, line in enumerate(receipt["lines"][:MAX_LINES]):
        for name in ("sku", "category", "brand", "quantity"):
            values[f"lines[{i}].{name}"] = line.get(name) or ""
        values[f"lines[{i}].unit_price"] = forms.roubles(line["unit_price"])
    return Form(values, {})


@router.api_route("/programs/{version}/dry-run", methods=["GET", "POST"])
async def dry_run(
    request: Request,
    s: SessionDep,
    version: int,
    receipt: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """A dry run of a typed basket, or of one of the latest real receipts."""
    s.require(Permission.TRY_PROGRAMS)
    row = await _version(s, version)
    stores = (await s.api.get("/v1/admin/stores")).body
    recent = (await s.api.get("/v1/admin/receipts/recent", limit=20)).body["receipts"]
    page = {"row": row, "stores": stores, "lines": MAX_LINES, "recent": recent,
            "picked": receipt}  # fmt: skip
    if request.method == "GET":
        chosen = next((r for r in recent if f"{r['store_id']}|{r['transaction_id']}" == receipt),
                      None)  # fmt: skip
        form = _picked(chosen) if chosen else Form({}, {})
        return render(request, s, "dry_run.html", form=form, result=None, errors={}, **page)
    form = await form_of(request)
    store = request.app.state.services.stores.get(form.get("store_id").strip())
    zone = MOSCOW if store is None else store.timezone
    answer = await s.api.post(f"{PROGRAMS}/{version}/dry-run", {"receipt": _basket(form, zone)})
    errors = {f["field"].removeprefix("receipt."): f["message"] for f in answer.fields}
    if not answer.ok and not errors:
        errors = {"": answer.detail}
    return render(
        request, s, "dry_run.html", 200 if answer.ok else 422, form=form,
        result=answer.body if answer.ok else None, errors=errors, **page,
    )  # fmt: skip


@router.api_route("/programs/{version}/simulate", methods=["GET", "POST"])
async def simulate(request: Request, s: SessionDep, version: int) -> Response:
    """A what-if of the version beside the current program over the ledger's receipts of
    a period, or over a receipts file pasted as CSV."""
    s.require(Permission.TRY_PROGRAMS)
    row = await _version(s, version)
    today = datetime.now(UTC).date()
    defaults = {"since": (today - timedelta(days=30)).isoformat(), "until": today.isoformat()}
    if request.method == "GET":
        return render(request, s, "simulate.html", row=row, form=Form(defaults, {}), error=None)
    form = await form_of(request)
    assumptions = {name: form.get(name).strip() for name in ASSUMPTIONS if form.get(name).strip()}
    if as_of := form.get("balances_as_of").strip():  # a day, read at its end
        assumptions["balances_as_of"] = moment(as_of, days_later=1)
    if csv_text := form.get("receipts").strip():
        started = await s.api.call(
            "POST", f"{PROGRAMS}/{version}/simulate", content=csv_text.encode(),
            content_type="text/csv", params=assumptions,
        )  # fmt: skip
    else:
        period = {  # whole days, the last one included
            "since": moment(form.get("since") or defaults["since"]),
            "until": moment(form.get("until") or defaults["until"], days_later=1),
        }
        started = await s.api.post(f"{PROGRAMS}/{version}/simulate-ledger", **period, **assumptions)
    if not started.ok:
        return render(request, s, "simulate.html", 422, row=row, form=form, error=started)
    return redirect(f"/simulations/{started.body['job_id']}")


@router.get("/simulations/{job_id}")
async def simulation(request: Request, s: SessionDep, job_id: int) -> Response:
    s.require(Permission.READ_PROGRAMS)
    answer = await s.api.get(f"/v1/admin/simulations/{job_id}")
    if not answer.ok:
        return failed_page(request, s, answer)
    job = answer.body
    difference = (job.get("result") or {}).get("difference", {})
    money = {k for k in difference if k in SIMULATION_MONEY or k.endswith("_value")}
    page = render(request, s, "simulation.html", job=job, charts=CHARTS, money=money,
                  figures=FIGURES)  # fmt: skip
    if job["status"] == "running":
        page.headers["Refresh"] = "1"  # the page follows the job with no script
    return page


@router.get("/simulations/{job_id}/charts/{chart}.svg")
async def simulation_chart(request: Request, s: SessionDep, job_id: int, chart: str) -> Response:
    answer = await s.api.get(f"/v1/admin/simulations/{job_id}/charts/{chart}", format="svg")
    if not answer.ok:
        return failed_page(request, s, answer)
    return secure_page(Response(answer.content, media_type="image/svg+xml"))


@router.get("/calendar")
async def calendar(request: Request, s: SessionDep) -> Response:
    """The campaigns by dates: the dated rules of the current program and of each draft,
    and the drafts scheduled to be published."""
    s.require(Permission.READ_PROGRAMS)
    versions = (await s.api.get(PROGRAMS, limit=100)).body["versions"]
    shown = [v for v in versions if v["current"] or v["status"] == "draft"][:10]
    campaigns = []
    for summary in shown:
        document = (await _version(s, summary["version"]))["document"]
        for rule in document.get("rules", []):
            dates = (rule.get("conditions") or {}).get("dates")
            if dates:
                campaigns.append(
                    {
                        "version": summary["version"],
                        "current": summary["current"],
                        "rule": rule,
                        "from": dates.get("from"),
                        "to": dates.get("to"),
                    }
                )
    campaigns.sort(key=lambda c: (c["from"] or "", c["version"]))
    scheduled = [v for v in versions if v["status"] == "draft" and v["publish_at"]]
    weeks = _weeks(campaigns)
    for campaign in campaigns:
        start, end = campaign["from"] or "0000", campaign["to"] or "9999"
        campaign["weeks"] = [start <= (w + timedelta(days=6)).isoformat() and w.isoformat() <= end
                             for w in weeks]  # fmt: skip
    return render(request, s, "calendar.html", campaigns=campaigns, scheduled=scheduled,
                  weeks=weeks, this_week=_monday(datetime.now(UTC).date()))  # fmt: skip


MAX_WEEKS = 26


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _weeks(campaigns: list[dict[str, Any]]) -> list[date]:
    """The Mondays of the weeks the campaigns cover (at most ``MAX_WEEKS``)."""
    days = [date.fromisoformat(c[k]) for c in campaigns for k in ("from", "to") if c[k]]
    if not days:
        return []
    first = _monday(min(days))
    count = min((max(days) - first).days // 7 + 1, MAX_WEEKS)
    return [first + timedelta(weeks=i) for i in range(count)]


# Last: its path would take the pages' own above.
@router.post("/programs/{version}/{action}")
async def launch(request: Request, s: SessionDep, version: int, action: str) -> Response:
    """Publish now, schedule (or unschedule), roll back, or delete a draft."""
    form = await form_of(request)
    if action == "schedule":
        at = form.get("publish_at")
        when = moment(at) if at else None
        answer = await s.api.post(f"{PROGRAMS}/{version}/schedule", {"publish_at": when})
    elif action == "delete":
        answer = await s.api.call("DELETE", f"{PROGRAMS}/{version}")
        if answer.ok:
            return redirect("/programs?done=deleted")
    elif action in ("publish", "rollback"):
        answer = await s.api.post(f"{PROGRAMS}/{version}/{action}")
    else:
        return render(request, s, "error.html", 404, answer=Answer(404, {"error": "not_found"}))
    if not answer.ok:
        return failed_page(request, s, answer)
    return redirect(f"/programs?done={action}&version={version}")
