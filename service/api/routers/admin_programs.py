"""Back office: program versions (drafts, validation, dry runs, publication, schedules,
rollbacks) and the audit log."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from service.api.admin_schemas import (
    ActiveProgramOut,
    AuditOut,
    DocumentIn,
    DryRunIn,
    DryRunOut,
    OkOut,
    ScheduleIn,
    ValidationOut,
    VersionOut,
    VersionsOut,
)
from service.api.deps import Audit, ChangePrograms, ReadPrograms, ServicesDep, TryPrograms
from service.api.errors import request_language
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import (
    ERRORS,
    MAX_INT4,
    PREFIX,
    Before,
    Limit,
    VersionPath,
    author,
    next_cursor,
)
from service.api.schemas import Timestamp, receipt_from
from service.storage.postgres import audit
from service.usecases import admin_programs as programs

router = APIRouter(route_class=JsonRoute, prefix=PREFIX, tags=["admin: programs"], responses=ERRORS)

TOKEN = r"^[A-Za-z0-9_.:-]*$"  # audit subjects and actions


@router.post(
    "/programs/validate",
    response_model=ValidationOut,
    summary="Validate a program document; errors name each field",
)
async def validate(body: DocumentIn, admin: TryPrograms) -> OrjsonResponse:
    return OrjsonResponse(programs.validation_report(body.document))


@router.post(
    "/programs",
    response_model=VersionOut,
    status_code=201,
    summary="Create a draft version (a valid document; not yet in force)",
)
async def create_draft(
    body: DocumentIn, admin: ChangePrograms, services: ServicesDep
) -> OrjsonResponse:
    draft = await programs.create_draft(services.program_versions, body.document, author(admin))
    return OrjsonResponse(draft, 201)


@router.get("/programs", response_model=VersionsOut, summary="Versions, newest first")
async def list_versions(
    admin: ReadPrograms,
    services: ServicesDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT4)] = None,
    limit: Limit = 50,
) -> OrjsonResponse:
    rows = await programs.versions(services.program_versions, before, limit)
    return OrjsonResponse({"versions": rows, "next_cursor": next_cursor(rows, "version", limit)})


@router.get(
    "/programs/active",
    response_model=ActiveProgramOut,
    summary="The version the answering worker calculates with",
)
async def active(admin: ReadPrograms, services: ServicesDep) -> OrjsonResponse:
    held = services.programs
    return OrjsonResponse(
        {"version": held.version, "worker": os.getpid(), "taken_up_at": held.taken_up_at}
    )


@router.get("/programs/{version}", response_model=VersionOut, summary="One version")
async def get_version(
    version: VersionPath, admin: ReadPrograms, services: ServicesDep
) -> OrjsonResponse:
    return OrjsonResponse(await programs.version_row(services.program_versions, version))


@router.put("/programs/{version}", response_model=VersionOut, summary="Replace a draft's document")
async def update_draft(
    version: VersionPath, body: DocumentIn, admin: ChangePrograms, services: ServicesDep
) -> OrjsonResponse:
    draft = await programs.update_draft(
        services.program_versions, version, body.document, author(admin)
    )
    return OrjsonResponse(draft)


@router.delete("/programs/{version}", response_model=OkOut, summary="Delete a draft")
async def delete_draft(
    version: VersionPath, admin: ChangePrograms, services: ServicesDep
) -> OrjsonResponse:
    await programs.delete_draft(services.program_versions, version, author(admin))
    return OrjsonResponse({"ok": True})


@router.post(
    "/programs/{version}/dry-run",
    response_model=DryRunOut,
    summary="Calculate a sample receipt and card with this version (writes nothing)",
)
async def dry_run(
    version: VersionPath,
    body: DryRunIn,
    admin: TryPrograms,
    services: ServicesDep,
    request: Request,
) -> OrjsonResponse:
    view = await programs.dry_run(
        services.program_versions,
        version,
        receipt_from(body.receipt),
        now=body.now or datetime.now(UTC),
        ports=services.sale_ports,
        language=request_language(request),
    )
    return OrjsonResponse(view)


@router.post(
    "/programs/{version}/publish",
    response_model=VersionOut,
    summary="Publish a draft now: every worker switches to it within a second",
)
async def publish(
    version: VersionPath, admin: ChangePrograms, services: ServicesDep
) -> OrjsonResponse:
    published = await programs.publish(
        services.program_versions, services.program_switch, version, author(admin)
    )
    return OrjsonResponse(published)


@router.post(
    "/programs/{version}/schedule",
    response_model=VersionOut,
    summary="Publish a draft at a given time (null: unschedule)",
)
async def schedule(
    version: VersionPath, body: ScheduleIn, admin: ChangePrograms, services: ServicesDep
) -> OrjsonResponse:
    draft = await programs.schedule(
        services.program_versions, version, body.publish_at, author(admin)
    )
    return OrjsonResponse(draft)


@router.post(
    "/programs/{version}/rollback",
    response_model=VersionOut,
    summary="Make an earlier published version current again",
)
async def roll_back(
    version: VersionPath, admin: ChangePrograms, services: ServicesDep
) -> OrjsonResponse:
    current = await programs.roll_back(
        services.program_versions, services.program_switch, version, author(admin)
    )
    return OrjsonResponse(current)


@router.get(
    "/audit",
    response_model=AuditOut,
    tags=["admin: audit"],
    summary="Who changed what and when, newest first",
)
async def audit_log(
    admin: Audit,
    services: ServicesDep,
    subject: Annotated[
        str | None, Query(max_length=200, pattern=TOKEN, examples=["program"])
    ] = None,
    action: Annotated[
        str | None, Query(max_length=100, pattern=TOKEN, examples=["program.publish"])
    ] = None,
    since: Annotated[Timestamp | None, Query()] = None,
    before: Before = None,
    limit: Limit = 50,
) -> OrjsonResponse:
    rows = await audit.page(
        services.pool, subject=subject, action=action, since=since, before=before, limit=limit
    )
    return OrjsonResponse({"entries": rows, "next_cursor": next_cursor(rows, "audit_id", limit)})
