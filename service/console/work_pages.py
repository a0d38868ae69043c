"""The console's everyday work beside the cards: promo-code batches (made for the promo
rules of the current program, their codes as CSV, revoked), a code's status, imports
with the preview of the rows refused, and the API keys (admin: made, shown once,
revoked)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from service.console.api import Answer
from service.console.program_pages import PROGRAMS, failed_page
from service.console.web import PREFIX, Form, Session, form_of, redirect, render, secure_page
from service.console.web import session as session_of
from service.domain.access import Permission

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SessionDep = Annotated[Session, Depends(session_of)]
PROMO = "/v1/admin/promo-codes"
BATCHES_SHOWN = 20  # the newest batches listed on the page
ROLES = ("marketing", "analyst", "pos", "admin")


async def _promo_rules(s: Session) -> list[dict[str, Any]]:
    """The rules of the current program that a code unlocks (``conditions.promo_code``)."""
    versions = (await s.api.get(PROGRAMS, limit=100)).body.get("versions", [])
    current = next((v["version"] for v in versions if v["current"]), None)
    if current is None:
        return []
    document = (await s.api.get(f"{PROGRAMS}/{current}")).body["document"]
    return [r for r in document.get("rules", []) if (r.get("conditions") or {}).get("promo_code")]


def _promo_page(
    request: Request, s: Session, rules: list[dict[str, Any]], status: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {"form": Form({}, {}), "errors": {}, "batch": None, "code": None,
                               "codes": [], "batches": [], **extra}  # fmt: skip
    return render(request, s, "promos.html", status, rules=rules, **context)


@router.get("/promo-codes")
async def promos(
    request: Request,
    s: SessionDep,
    batch: Annotated[str, Query(max_length=40)] = "",
    code: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Make a batch; look up a batch or a code."""
    s.require(Permission.PROMO_CODES)
    rules = await _promo_rules(s)
    found: dict[str, Answer] = {}
    if batch.strip():
        found["batch"] = await s.api.get(f"{PROMO}/batches/{batch.strip()}")
    if code.strip():
        found["code"] = await s.api.get(f"{PROMO}/{code.strip()}")
    missing = next((a for a in found.values() if not a.ok), None)
    if missing is not None:
        return _promo_page(request, s, rules, missing.status, lookup_error=missing)
    listed = await s.api.get(f"{PROMO}/batches", limit=BATCHES_SHOWN)
    batches = listed.body["batches"] if listed.ok else []
    return _promo_page(request, s, rules, batches=batches, **{k: a.body for k, a in found.items()})


def _batch_request(form: Form) -> dict[str, Any]:
    body: dict[str, Any] = {"count": _int(form.get("count")), "prefix": form.get("prefix"),
                            "rule_ids": form.lists.get("rule_ids", []),
                            "single_use": form.get("single_use") == "on"}  # fmt: skip
    for name in ("length", "max_uses", "per_card_limit"):
        if text := form.get(name).strip():
            body[name] = _int(text)
    for name in ("valid_from", "valid_to"):
        if text := form.get(name).strip():
            body[name] = f"{text}T00:00:00+03:00" if name == "valid_from" else \
                f"{text}T23:59:59+03:00"  # fmt: skip
    return body


def _int(text: str) -> int | str:
    return int(text) if text.strip().lstrip("-").isdigit() else text


@router.post("/promo-codes")
async def make_batch(request: Request, s: SessionDep) -> Response:
    form = await form_of(request)
    made = await s.api.post(f"{PROMO}/batches", _batch_request(form))
    if made.ok:
        return redirect(f"/promo-codes?batch={made.body['batch_id']}&made=1")
    if made.status == 403:
        return failed_page(request, s, made)
    errors = {f["field"]: f["message"] for f in made.fields} or {"": made.detail}
    return _promo_page(request, s, await _promo_rules(s), 422, form=form, errors=errors)


@router.get("/promo-codes/batches/{batch_id}.csv")
async def batch_csv(request: Request, s: SessionDep, batch_id: str) -> Response:
    answer = await s.api.get(f"{PROMO}/batches/{batch_id}/codes.csv")
    if not answer.ok:
        return failed_page(request, s, answer)
    page = Response(answer.content, media_type=answer.media_type or "text/csv")
    page.headers["Content-Disposition"] = answer.headers.get(
        "content-disposition", f'attachment; filename="{batch_id}.csv"'
    )
    return secure_page(page)


@router.post("/promo-codes/batches/{batch_id}/revoke")
async def revoke_batch(request: Request, s: SessionDep, batch_id: str) -> Response:
    answer = await s.api.post(f"{PROMO}/batches/{batch_id}/revoke")
    if not answer.ok:
        return failed_page(request, s, answer)
    return redirect(f"/promo-codes?batch={batch_id}")


@router.get("/keys")
async def keys(request: Request, s: SessionDep) -> Response:
    s.require(Permission.KEYS)
    return await _keys_page(request, s)


async def _keys_page(request: Request, s: Session, status: int = 200, **extra: Any) -> Response:
    answer = await s.api.get("/v1/admin/keys")
    if not answer.ok:
        return failed_page(request, s, answer)
    context: dict[str, Any] = {"made": None, "errors": {}, "form": Form({}, {}), **extra}
    return render(request, s, "keys.html", status, keys=answer.body["keys"], roles=ROLES,
                  **context)  # fmt: skip


@router.post("/keys")
async def make_key(request: Request, s: SessionDep) -> Response:
    """A new key, shown once on the page that answers (never again)."""
    form = await form_of(request)
    body: dict[str, Any] = {"name": form.get("name"), "role": form.get("role")}
    if stores := [w.strip() for w in form.get("stores").split(",") if w.strip()]:
        body["stores"] = stores
    made = await s.api.post("/v1/admin/keys", body)
    if made.ok:
        return await _keys_page(request, s, 201, made=made.body)
    if made.status == 403:
        return failed_page(request, s, made)
    errors = {f["field"]: f["message"] for f in made.fields} or {"": made.detail}
    return await _keys_page(request, s, 422, errors=errors, form=form)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, s: SessionDep, key_id: str) -> Response:
    answer = await s.api.post(f"/v1/admin/keys/{key_id}/revoke")
    if not answer.ok:
        return failed_page(request, s, answer)
    return redirect("/keys")


@router.get("/import")
async def import_page(request: Request, s: SessionDep) -> Response:
    s.require(Permission.IMPORT)
    return render(request, s, "import.html", form=Form({}, {}), report=None, content="",
                  error=None)  # fmt: skip


@router.post("/import")
async def import_file(request: Request, s: SessionDep) -> Response:
    """A file checked first (nothing written: the rows the ledger would refuse, by line
    and reason), then, from the preview, imported: the file rides along the preview page."""
    form = await form_of(request)
    kind = "cards" if form.get("kind") == "cards" else "customers"
    content = form.files.get("file") or base64.b64decode(form.get("content") or b"")
    dry_run = form.get("action") != "import"
    answer = await s.api.call(
        "POST", f"/v1/admin/import/{kind}", content=content, content_type="text/csv",
        params={"dry_run": str(dry_run).lower(), **({"columns": form.get("columns")}
                                                   if form.get("columns").strip() else {})},
    )  # fmt: skip
    if answer.status == 403:
        return failed_page(request, s, answer)
    return render(
        request, s, "import.html", 200 if answer.ok else 422, form=form,
        report=answer.body if answer.ok else None, error=None if answer.ok else answer,
        content=base64.b64encode(content).decode() if dry_run else "", kind=kind,
    )  # fmt: skip
