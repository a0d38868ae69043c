"""HTTP through the real app, lifespan on, against the session's Postgres and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN_KEY, POS_KEY


def app_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        demo_admin_key=ADMIN_KEY,
        demo_pos_key=POS_KEY,
        api_key_refresh_s=0.2,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
async def app(demo_database: str, clean_redis: str) -> AsyncIterator[FastAPI]:
    application = create_app(app_settings(demo_database, clean_redis))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as c:
        yield c


POS = {"Authorization": f"Bearer {POS_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
