"""Shared fixtures: real Postgres and Redis, never mocks of them.

``LOYALTY_TEST_DATABASE_URL`` (a server where we may create databases) and
``LOYALTY_TEST_REDIS_URL`` (a Redis database the suite may wipe) point the suite at
running servers; without them it starts embedded ones in a temporary folder. Each
session works in a database of its own, created, migrated and dropped here.

``LOYALTY_TEST_REDIS=cluster`` runs the suite on a real Redis Cluster instead (3 masters,
3 replicas, started per test process from the redis-server binary: ``make test-cluster``).
Tests reach Redis through ``redis_client``, which speaks to either.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from service.api.app import create_app
from service.local.demo import ensure_demo_keys, load_demo
from service.local.embedded import EmbeddedServers, start_embedded
from service.local.redis_cluster import LocalRedisCluster, start_cluster
from service.settings import Settings
from service.storage.postgres.migrate import upgrade_async
from service.storage.postgres.pool import connect
from service.storage.redis.cache import RedisClient, create_client
from tests.clock import demo_program_now
from tests.ledger_checks import assert_ledger_holds
from tests.profiles import PROFILE  # noqa: F401 - loads the Hypothesis profile

ADMIN_KEY = "test-admin-key-0123456789abcdef"
POS_KEY = "test-pos-key-0123456789abcdef01"
POS = {"Authorization": f"Bearer {POS_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A temporary root of the session's own (``--basetemp``), removed at its end: pytest's
    shared ``pytest-of-<user>/pytest-<n>`` folders are numbered per machine, and a second
    pytest running beside this one (another checkout's, CI's) cleared this one's from under
    it. The workers of pytest-xdist take theirs inside it, as ever."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="loyalty-pytest-")
        config.add_cleanup(lambda: shutil.rmtree(config.option.basetemp, ignore_errors=True))


# Files that never reach the kernels, started first: `make test` compiles them beside the
# suite (~23 s on one core) and whatever calls them waits for that compile, so these keep
# both test processes busy meanwhile. Only the order depends on this list (make test runs
# xdist with --no-loadscope-reorder); a file missing from it, or wrongly in it, is just
# slower to start.
BESIDE_THE_COMPILE = (
    "tests/integration/test_migrate_lock.py",
    "tests/unit/test_manifests.py",
    "tests/integration/test_embedded.py",
    "tests/integration/test_multihost_dsn.py",
    "tests/integration/test_schema.py",
    "tests/integration/test_commit_set_based.py",
    "tests/unit/test_receipt_digests.py",
    "tests/integration/test_resp_client.py",
    "tests/integration/test_ledger_checks.py",
    "tests/integration/test_sharding_plan.py",
    "tests/unit/usecases/test_admin.py",
    "tests/unit/usecases/test_refund.py",
    "tests/unit/rules/test_document.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first = {path: rank for rank, path in enumerate(BESIDE_THE_COMPILE)}
    items.sort(key=lambda item: first.get(item.nodeid.partition("::")[0], len(first)))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


ON_CLUSTER = os.environ.get("LOYALTY_TEST_REDIS") == "cluster"


def redis_client(url: str, timeout_s: float = 5.0) -> RedisClient:
    """redis-py's client of the suite's Redis: a RedisCluster on a cluster run."""
    return create_client(url, timeout_s, cluster=ON_CLUSTER)


@contextlib.contextmanager
def temporary_cluster(**options: Any) -> Iterator[LocalRedisCluster]:
    """A Redis Cluster in a folder of its own, stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="loyalty-cluster-"))
    cluster = start_cluster(folder, **options)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalRedisCluster | None]:
    if not ON_CLUSTER:
        yield None
        return
    with temporary_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedServers | None]:
    need_pg = not os.environ.get("LOYALTY_TEST_DATABASE_URL")
    need_redis = not (os.environ.get("LOYALTY_TEST_REDIS_URL") or ON_CLUSTER)
    if not (need_pg or need_redis):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="loyalty-test-"))
    os.chmod(folder, 0o755)  # the embedded Postgres runs as its own user when we are root
    servers = start_embedded(folder, need_postgres=need_pg, need_redis=need_redis)
    yield servers
    servers.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(embedded: EmbeddedServers | None) -> str:
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if url:
        return url
    assert embedded is not None and embedded.database_url is not None
    return embedded.database_url


def redis_db(url: str, db: int) -> str:
    """The same Redis server, another database number (keys are per database)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":  # urlunsplit would drop the empty netloc: unix:/path
        return f"unix://{parts.path}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def worker_redis_db(url: str, offset: int = 0) -> str:
    """``url``'s database for this test process: under pytest-xdist, worker k (gw<k>) takes
    the database k below the one given, so that workers never flush each other's keys;
    ``offset`` moves further down, for a server of a test's own. A cluster has database 0
    only: each test process has a cluster of its own."""
    if ON_CLUSTER:
        return url
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    parts = urlsplit(url)
    path_db = "" if parts.scheme == "unix" else parts.path.strip("/")
    given = int(dict(parse_qsl(parts.query)).get("db", path_db or 0))
    return redis_db(url, (given - worker - offset) % 16)


@pytest.fixture(scope="session")
def redis_url(embedded: EmbeddedServers | None, redis_cluster: LocalRedisCluster | None) -> str:
    if redis_cluster is not None:
        return redis_cluster.url()
    url = os.environ.get("LOYALTY_TEST_REDIS_URL")
    if url:
        return worker_redis_db(url)
    assert embedded is not None and embedded.redis_url is not None
    return embedded.redis_url


async def _admin_execute(server_url: str, sql: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new migrated database; when its user is done, the ledger it holds is checked
    against every invariant (whatever order the tests ran in), and it is dropped."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin_execute(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    try:
        await upgrade_async(url)
        yield url
        await assert_ledger_holds(url)
    finally:
        await _admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def load_test_demo(database_url: str) -> None:
    """The demo program (AUTUMN10 running now), stores, cards and the fixed test keys."""
    conn = await connect(database_url)
    try:
        await load_demo(conn, document=demo_program_now())
        await ensure_demo_keys(conn, admin_key=ADMIN_KEY, pos_key=POS_KEY)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test session, checked and dropped at the end."""
    async with fresh_database(server_url, "loyalty_test") as url:
        yield url


@pytest.fixture(scope="session")
async def demo_database(database_url: str) -> str:
    """The session database with the demo program, stores, cards and fixed test keys."""
    await load_test_demo(database_url)
    return database_url


@pytest.fixture(scope="session")
async def clean_redis(redis_url: str) -> str:
    client = redis_client(redis_url)
    await client.flushdb()  # on a cluster: every master's
    await client.aclose()
    return redis_url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose work is rolled back after the test."""
    conn = await connect(database_url)
    tx = conn.transaction()
    await tx.start()
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


def app_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        demo_admin_key=ADMIN_KEY,
        demo_pos_key=POS_KEY,
        api_key_refresh_s=0.2,
        webhook_allow_private=True,  # the tests' receivers listen on 127.0.0.1
        **overrides,
    )


@pytest.fixture(scope="session")
async def app(demo_database: str, clean_redis: str) -> AsyncIterator[FastAPI]:
    """The service with its lifespan on, over the session's Postgres and Redis."""
    application = create_app(app_settings(demo_database, clean_redis))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as c:
        yield c
