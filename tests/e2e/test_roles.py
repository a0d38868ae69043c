"""Keys and roles (SPEC §3.1): every route needs exactly one permission, and each cell of
the permission table (a permission, a role) holds on every route that needs it: a role
without the permission gets 403 before anything is read, a role with it gets past the
check. The README's table is the one in service/domain/access.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from service import background
from service.api.json_route import route_permissions
from service.domain.access import PERMISSIONS, Permission, Role
from service.storage.postgres.keys import create_key
from service.storage.postgres.pool import connect
from tests.conftest import ADMIN_KEY, POS_KEY

# Path parameters that name nothing: an allowed request ends in 404 or 422, never a change.
PATH_VALUES = {
    "number": "2999999999997", "card": "2999999999997", "customer_id": "999999",
    "version": "999999", "store_id": "no-such-store", "region_id": "no-such-region",
    "batch_id": "999999", "code": "NOSUCHCODE", "subscription_id": "999999",
    "key": "nosuchkey123", "calculation_id": "c_1_nosuchcalculation", "job_id": "999999",
    "batch": "no-such-batch",
    "chart": "liability",
}  # fmt: skip


def _routes(app: FastAPI) -> list[tuple[APIRoute, str]]:
    """Every /v1 route with each of its methods."""
    routes = (context.original_route for context in iter_route_contexts(app.routes))
    return [
        (route, method)
        for route in routes
        if isinstance(route, APIRoute) and route.path.startswith("/v1")
        for method in sorted(route.methods)
    ]


def _url(route: APIRoute) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], route.path)


@pytest.fixture(scope="module")
async def keys(app: FastAPI, demo_database: str) -> AsyncIterator[dict[Role, str]]:
    conn = await connect(demo_database)
    try:
        made = {
            role: await create_key(conn, name=f"roles test {role}", role=role)
            for role in (Role.MARKETING, Role.ANALYST)
        }
    finally:
        await conn.close()
    await background.refresh_keys(app.state.services)
    yield {Role.ADMIN: ADMIN_KEY, Role.POS: POS_KEY, **made}


def test_every_route_needs_exactly_one_permission(app: FastAPI) -> None:
    for route, method in _routes(app):
        assert len(route_permissions(route.dependant)) == 1, f"{method} {route.path}"


def test_every_permission_is_needed_by_a_route(app: FastAPI) -> None:
    needed = {p for route, _ in _routes(app) for p in route_permissions(route.dependant)}
    assert needed == set(Permission)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
async def test_each_cell_of_the_permission_table(
    app: FastAPI,
    client: httpx.AsyncClient,
    keys: dict[Role, str],
    permission: Permission,
    role: Role,
) -> None:
    granted = permission in PERMISSIONS[role]
    headers = {"Authorization": f"Bearer {keys[role]}"}
    for route, method in _routes(app):
        if route_permissions(route.dependant) != (permission,):
            continue
        body = {} if route.body_field is not None else None
        response = await client.request(method, _url(route), json=body, headers=headers)
        where = f"{role} {method} {route.path}: {response.status_code} {response.text[:200]}"
        if granted:
            assert response.status_code not in (401, 403) and response.status_code < 500, where
        else:
            assert response.status_code == 403, where
            assert response.json()["error"] == "forbidden", where


def test_the_readme_shows_the_permission_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    header = "| permission | " + " | ".join(role.value for role in Role) + " |"
    assert header in readme
    for permission in Permission:
        cells = " | ".join("yes" if permission in PERMISSIONS[r] else "-" for r in Role)
        assert f"| {permission.value} | {cells} |" in readme, permission
